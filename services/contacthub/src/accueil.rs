//! The `accueil` commands (the waiting line at the counters and the accueil's report) over
//! the gRPC AccueilService of a running hub. Times in Paris local time.

use crate::cli::*;
use crate::commands::{authed, connect, status_err, when};
use anyhow::{Context, Result};
use contacthub_core::accueil::{csv, weekday_fr};
use contacthub_core::render::percent_fr;
use contacthub_proto::v1::{self as pb, accueil_service_client::AccueilServiceClient};
use tonic::transport::Channel;

async fn client(c: &ClientArgs) -> Result<AccueilServiceClient<Channel>> {
    Ok(AccueilServiceClient::new(connect(c).await?))
}

/// One line: number, state, motive, waited, id.
fn line(v: &pb::TicketView) -> String {
    let t = v.ticket.clone().unwrap_or_default();
    let mut out = format!(
        "{}  {:<26}  {:<24}  attente {} min",
        t.number, v.state_fr, v.motive_fr, v.waited_minutes
    );
    if v.ahead > 0 || v.estimated_wait_minutes > 0 {
        out.push_str(&format!(
            " (devant : {}, estimée : {} min)",
            v.ahead, v.estimated_wait_minutes
        ));
    }
    if !t.citizen_id.is_empty() {
        out.push_str(&format!("  fiche {}", t.citizen_id));
    }
    out.push_str(&format!("  [{}]", t.ticket_id));
    out
}

/// `contacthub accueil …`.
pub async fn run(command: AccueilCommand) -> Result<()> {
    match command {
        AccueilCommand::Ticket(a) => {
            let motive = crate::courrier::parse_category(&a.motive)?;
            let req = pb::IssueTicketRequest {
                tenant: a.site.at.tenant.clone(),
                site: a.site.site.clone(),
                motive,
                motive_label: a.label,
                citizen_id: a.citizen,
            };
            let v = client(&a.site.at.client)
                .await?
                .issue_ticket(authed(&a.site.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            let t = v.ticket.clone().unwrap_or_default();
            crate::say!("Ticket {} — {} — {}", t.number, v.site_name, v.motive_fr);
            crate::say!(
                "  arrivé le {}",
                contacthub_core::courrier::paris_display(t.arrived_us)
            );
            crate::say!(
                "  personnes avant vous : {}, attente estimée : {} min",
                v.ahead,
                v.estimated_wait_minutes
            );
            crate::say!("  identifiant : {}", t.ticket_id);
        }
        AccueilCommand::CallNext(a) => {
            let req = pb::CallNextRequest {
                tenant: a.site.at.tenant.clone(),
                site: a.site.site.clone(),
                counter: a.counter,
            };
            let r = client(&a.site.at.client)
                .await?
                .call_next(authed(&a.site.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            match r.ticket {
                Some(v) => {
                    let t = v.ticket.clone().unwrap_or_default();
                    crate::say!("{} → guichet {}", t.number, t.counter);
                    crate::say!("{}", line(&v));
                }
                None => crate::say!("personne n'attend pour le guichet {}", a.counter),
            }
        }
        AccueilCommand::Recall(a) => {
            let v = client(&a.at.client)
                .await?
                .recall(authed(&a.at.client, ticket_request(&a))?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!("{}", line(&v));
        }
        AccueilCommand::Start(a) => {
            let v = client(&a.at.client)
                .await?
                .start_ticket(authed(&a.at.client, ticket_request(&a))?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!("{}", line(&v));
        }
        AccueilCommand::Close(a) => {
            use pb::ticket_closed::Outcome;
            let req = pb::CloseTicketRequest {
                tenant: a.ticket.at.tenant.clone(),
                ticket_id: a.ticket.ticket.clone(),
                outcome: match a.outcome {
                    TicketOutcomeArg::Settled => Outcome::Settled,
                    TicketOutcomeArg::Transferred => Outcome::Transferred,
                    TicketOutcomeArg::Request => Outcome::Request,
                    TicketOutcomeArg::Absent => Outcome::Absent,
                } as i32,
                service: a.service,
                request_reference: a.request,
            };
            let v = client(&a.ticket.at.client)
                .await?
                .close_ticket(authed(&a.ticket.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!("{}", line(&v));
        }
        AccueilCommand::Waiting(a) => {
            let req = pb::WaitingRequest {
                tenant: a.at.tenant.clone(),
                site: a.site.clone(),
            };
            let w = client(&a.at.client)
                .await?
                .waiting(authed(&a.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!(
                "{} — {} : {} en attente, attente estimée {} min",
                w.site_name,
                when(&w.at),
                w.waiting.len(),
                w.estimated_wait_minutes
            );
            for v in &w.at_counters {
                crate::say!("  {}", line(v));
            }
            for v in &w.waiting {
                crate::say!("  {}", line(v));
            }
        }
        AccueilCommand::Report(a) => report(a).await?,
    }
    Ok(())
}

fn ticket_request(a: &AccueilTicketRefArgs) -> pb::TicketRequest {
    pb::TicketRequest {
        tenant: a.at.tenant.clone(),
        ticket_id: a.ticket.clone(),
    }
}

/// `contacthub accueil report`: text, or CSV for a spreadsheet.
async fn report(a: AccueilReportArgs) -> Result<()> {
    let req = pb::AccueilReportRequest {
        tenant: a.at.tenant.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        site: a.site.clone(),
    };
    let r = client(&a.at.client)
        .await?
        .report(authed(&a.at.client, req)?)
        .await
        .map_err(status_err)
        .context("accueil report")?
        .into_inner();
    if a.csv {
        crate::say_raw!("{}", csv(&r));
        return Ok(());
    }
    let day = contacthub_core::render::date_fr;
    crate::say!(
        "Accueil {} — du {} au {}{}",
        r.tenant,
        day(&r.from),
        day(&r.to),
        if r.site.is_empty() {
            String::new()
        } else {
            format!(" — site {}", r.site)
        }
    );
    crate::say!("  tickets                      {}", r.tickets);
    crate::say!(
        "  réglés au premier contact    {} ({} des tickets clos)",
        r.settled,
        percent_fr(r.settled_percent)
    );
    crate::say!(
        "  orientés vers un service     {} ({})",
        r.transferred,
        percent_fr(r.transferred_percent)
    );
    crate::say!("  transformés en demande       {}", r.to_request);
    crate::say!("  absents à l'appel            {}", r.absent);
    crate::say!(
        "  appels reçus                 {} (manqués : {}, revenus à l'accueil : {}, {})",
        r.calls,
        r.missed_calls,
        r.bounced_calls,
        percent_fr(r.bounce_back_percent)
    );
    crate::say!("  contacts en ligne            {}", r.web_contacts);
    crate::say!(
        "  hors des horaires d'ouverture appels {}, visites {}",
        r.calls_outside_hours,
        r.visits_outside_hours
    );
    for (title, rows) in [("Par motif", &r.by_motive), ("Par guichet", &r.by_counter)] {
        if rows.is_empty() {
            continue;
        }
        crate::say!("{title} (minutes : attente médiane / 90 %, traitement médian / 90 %)");
        for w in rows {
            crate::say!(
                "  {:<40} {:>5} tickets  attente {} / {}  traitement {} / {}",
                w.label,
                w.tickets,
                w.wait_p50,
                w.wait_p90,
                w.handling_p50,
                w.handling_p90
            );
        }
    }
    if !r.by_service.is_empty() {
        crate::say!("Par service");
        for s in &r.by_service {
            crate::say!(
                "  {:<40} orientés {}  appels transférés {}  revenus {} ({})",
                s.service_name,
                s.tickets_transferred,
                s.calls_transferred,
                s.calls_bounced,
                percent_fr(s.bounce_back_percent)
            );
        }
    }
    if !r.heat.is_empty() {
        crate::say!("Affluence (arrivées / appels par jour et heure)");
        for c in &r.heat {
            crate::say!(
                "  {:<9} {:02} h  arrivées {:>4}  appels {:>4}  manqués {:>4}  en ligne {:>4}",
                weekday_fr(c.weekday),
                c.hour,
                c.arrivals,
                c.calls,
                c.missed_calls,
                c.web_contacts
            );
        }
    }
    Ok(())
}
