//! The `request` commands (suivi des demandes): open, link, assign, answer, close, reopen,
//! show, list, over the gRPC RequestService of a running hub, and `dashboard` over its
//! DashboardService. Times in Paris local time.

use crate::cli::*;
use crate::commands::{authed, connect, parse_channel, status_err, when};
use anyhow::Result;
use contacthub_core::render::{category_fr, channel_fr, close_reason_fr, status_fr};
use contacthub_proto::v1::{
    self as pb, dashboard_service_client::DashboardServiceClient,
    request_service_client::RequestServiceClient,
};
use tonic::transport::Channel;

async fn client(c: &ClientArgs) -> Result<RequestServiceClient<Channel>> {
    Ok(RequestServiceClient::new(connect(c).await?))
}

/// One line: reference, status, due date, service, subject.
fn line(r: &pb::Request) -> String {
    format!(
        "{}  {:<22}  échéance {}  {:<18}  {}",
        r.reference,
        status_fr(r.status),
        when(&r.due_at),
        if r.service_name.is_empty() {
            &r.service
        } else {
            &r.service_name
        },
        r.subject
    )
}

fn show(r: &pb::Request) -> Result<()> {
    crate::say!("{}", line(r));
    crate::say!("  catégorie      {}", category_fr(r.category));
    crate::say!("  canal          {}", channel_fr(r.channel));
    if !r.chrono.is_empty() {
        crate::say!("  courrier       {}", r.chrono);
    }
    crate::say!("  demandeurs     {}", r.requesters.join(", "));
    if !r.on_behalf_of.is_empty() {
        crate::say!("  au nom de      {}", r.on_behalf_of);
    }
    crate::say!("  premier contact {}", when(&r.first_contact_at));
    if !r.follow_up_code.is_empty() {
        crate::say!("  code de suivi  {}", r.follow_up_code);
    }
    if !r.assignee_agent_id.is_empty() {
        crate::say!("  agent          {}", r.assignee_agent_id);
    }
    if r.answered_at.is_some() {
        crate::say!(
            "  réponse        {} par {} ({})",
            when(&r.answered_at),
            channel_fr(r.answer_channel),
            r.answer_ref
        );
    }
    if r.status == pb::RequestStatus::Closed as i32 {
        crate::say!("  clôture        {}", close_reason_fr(r));
    }
    crate::say!("  contacts       {}", r.contacts.len());
    if !r.collective.is_empty() {
        crate::say!("  collective     {}", r.collective);
    }
    if !r.members.is_empty() {
        crate::say!("  regroupe       {}", r.members.join(", "));
    }
    for h in &r.history {
        crate::say!(
            "    {} {:<9} {} {}",
            when(&h.at),
            contacthub_core::render::step_fr(&h.kind),
            h.agent_id,
            h.note
        );
    }
    Ok(())
}

pub async fn run(command: RequestCommand) -> Result<()> {
    let r = match command {
        RequestCommand::Open(a) => crate::rpc!(
            &a.at.client,
            open_request,
            pb::OpenRequestRequest {
                tenant: a.at.tenant.clone(),
                subject: a.subject.clone(),
                category: crate::courrier::parse_category(&a.category)?,
                service: a.service.clone(),
                from_contact_event_id: a.from_contact.clone().unwrap_or_default(),
                citizen_id: a.citizen.clone().unwrap_or_default(),
                on_behalf_of: a.on_behalf_of.clone().unwrap_or_default(),
                ..Default::default()
            }
        ),
        RequestCommand::Link(a) => crate::rpc!(
            &a.at.client,
            link_contact,
            pb::LinkContactRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
                contact_event_id: a.contact.clone(),
            }
        ),
        RequestCommand::Assign(a) => crate::rpc!(
            &a.at.client,
            assign_request,
            pb::AssignRequestRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
                service: a.service.clone(),
                assignee_agent_id: a.agent.clone(),
            }
        ),
        RequestCommand::Answer(a) => crate::rpc!(
            &a.at.client,
            record_answer,
            pb::RecordAnswerRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
                answer_channel: match a.channel.as_str() {
                    "portal" | "portail" => pb::Channel::WebForm as i32,
                    other => parse_channel(other)?,
                },
                answer_ref: a.answer_ref.clone(),
            }
        ),
        RequestCommand::Close(a) => crate::rpc!(
            &a.at.client,
            close_request,
            pb::CloseRequestRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
                reason: match a.reason {
                    CloseReasonArg::Answered => pb::CloseReason::Answered,
                    CloseReasonArg::Redirected => pb::CloseReason::Redirected,
                    CloseReasonArg::Duplicate => pb::CloseReason::Duplicate,
                    CloseReasonArg::Withdrawn => pb::CloseReason::Withdrawn,
                } as i32,
                redirected_to: a.redirected_to.clone(),
                duplicate_of: a.duplicate_of.clone(),
                note: a.note.clone(),
            }
        ),
        RequestCommand::Reopen(a) => crate::rpc!(
            &a.at.client,
            reopen_request,
            pb::ReopenRequestRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
            }
        ),
        RequestCommand::Group(a) => crate::rpc!(
            &a.at.client,
            group_requests,
            pb::GroupRequestsRequest {
                tenant: a.at.tenant.clone(),
                collective: a.collective.clone(),
                members: a.members.clone(),
            }
        ),
        RequestCommand::Show(a) => crate::rpc!(
            &a.at.client,
            get_request,
            pb::GetRequestRequest {
                tenant: a.at.tenant.clone(),
                reference: a.reference.clone(),
            }
        ),
        RequestCommand::List(a) => {
            let list = crate::rpc!(
                &a.at.client,
                list_requests,
                pb::ListRequestsRequest {
                    tenant: a.at.tenant.clone(),
                    service: a.service.clone(),
                    assignee_agent_id: a.agent.clone(),
                    open_only: !a.all,
                    overdue_only: a.overdue,
                    due_within_days: a.due_within,
                    unassigned_only: a.unassigned,
                    limit: a.limit,
                }
            );
            if list.requests.is_empty() {
                crate::say!("aucune demande");
            }
            for r in &list.requests {
                crate::say!("{}", line(r));
            }
            return Ok(());
        }
    };
    show(&r)
}

/// `contacthub dashboard`: the figures of a commune over months, as text or CSV.
pub async fn dashboard(a: DashboardArgs) -> Result<()> {
    use contacthub_core::dashboard::{csv, dimension_fr};
    let now = chrono::Utc::now().timestamp_micros();
    let (from, to) = contacthub_core::dashboard::period(
        a.from.as_deref().unwrap_or(""),
        a.to.as_deref().unwrap_or(""),
        now,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let req = pb::GetDashboardRequest {
        tenant: a.at.tenant.clone(),
        from_month: from,
        to_month: to,
    };
    let d = DashboardServiceClient::new(connect(&a.at.client).await?)
        .get_dashboard(authed(&a.at.client, req)?)
        .await
        .map_err(status_err)?
        .into_inner();
    if a.csv {
        crate::say_raw!("{}", csv(&d));
        return Ok(());
    }
    let pct = contacthub_core::render::percent_fr;
    crate::say!(
        "Tableau de bord {} — {} à {} (calculé le {})",
        d.tenant,
        d.from_month,
        d.to_month,
        when(&d.computed_at)
    );
    let whole = d
        .rows
        .iter()
        .find(|r| r.month.is_empty() && r.dimension == "commune");
    if let Some(f) = whole.and_then(|r| r.figures.as_ref()) {
        crate::say!("  contacts reçus               {}", f.contacts_received);
        crate::say!("  demandes ouvertes            {}", f.requests_opened);
        crate::say!(
            "  demandes répondues           {} (dans le délai : {}, {})",
            f.requests_answered,
            f.answered_in_time,
            pct(f.answered_in_time_percent)
        );
        crate::say!(
            "  délai de réponse             médiane {} j, 90 % en {} j",
            f.p50_days_to_answer,
            f.p90_days_to_answer
        );
        crate::say!("  closes sans réponse          {}", f.closed_without_answer);
        crate::say!("  en retard aujourd'hui        {}", f.overdue_now);
        crate::say!(
            "  courriers enregistrés        {} (tracés : {})",
            f.letters_registered,
            pct(f.letters_traced_percent)
        );
        crate::say!(
            "  appels reçus                 {} (manqués : {}, renvoyés à l'accueil : {})",
            f.calls_inbound,
            pct(f.missed_call_percent),
            pct(f.bounce_back_percent)
        );
        crate::say!(
            "  rendez-vous pris             {} (annulés : {}, absences : {})",
            f.appointments,
            f.appointments_cancelled,
            f.no_shows
        );
        for r in d.rows.iter().filter(|r| {
            r.month.is_empty()
                && r.dimension == "service"
                && r.figures
                    .is_some_and(|f| f.days_to_first_free_slot.is_some())
        }) {
            let days = r
                .figures
                .and_then(|f| f.days_to_first_free_slot)
                .unwrap_or_default();
            crate::say!(
                "  premier créneau libre        {} j ({})",
                contacthub_core::render::decimal_fr(days),
                r.label
            );
        }
    }
    crate::say!();
    crate::say!("  mois      contacts  ouvertes  répondues  dans le délai  médiane  90 % en");
    for r in d
        .rows
        .iter()
        .filter(|r| !r.month.is_empty() && r.dimension == "commune")
    {
        let f = r.figures.unwrap_or_default();
        crate::say!(
            "  {}  {:>8}  {:>8}  {:>9}  {:>13}  {:>5} j  {:>4} j",
            r.month,
            f.contacts_received,
            f.requests_opened,
            f.requests_answered,
            pct(f.answered_in_time_percent),
            f.p50_days_to_answer,
            f.p90_days_to_answer
        );
    }
    for dim in ["channel", "category", "service"] {
        crate::say!();
        crate::say!(
            "  par {:<24} ouvertes  répondues  dans le délai  en retard",
            dimension_fr(dim)
        );
        for r in d
            .rows
            .iter()
            .filter(|r| r.month.is_empty() && r.dimension == dim)
        {
            let f = r.figures.unwrap_or_default();
            crate::say!(
                "  {:<28} {:>8}  {:>9}  {:>13}  {:>9}",
                r.label,
                f.requests_opened,
                f.requests_answered,
                pct(f.answered_in_time_percent),
                f.overdue_now
            );
        }
    }
    if !d.recurring.is_empty() {
        crate::say!();
        crate::say!("  problèmes récurrents");
        for p in &d.recurring {
            crate::say!(
                "  {:<10} {:<40} {:>5} demandes",
                dimension_fr(&p.kind),
                p.label,
                p.requests
            );
        }
    }
    Ok(())
}
