//! `contacthub courrier …`: the mail room from a terminal.

use crate::cli::*;
use crate::commands::{authed, connect, parse_channel, status_err};
use anyhow::{bail, Context, Result};
use contacthub_core::courrier::paris_display;
use contacthub_core::render::category_fr;
use contacthub_proto::ts;
use contacthub_proto::v1::{self as pb, courrier_service_client::CourrierServiceClient};
use tonic::transport::Channel;

/// Scan bytes per gRPC message.
const CHUNK: usize = 256 * 1024;

async fn client(c: &ClientArgs) -> Result<CourrierServiceClient<Channel>> {
    Ok(CourrierServiceClient::new(connect(c).await?).max_decoding_message_size(64 << 20))
}

pub(crate) fn parse_category(s: &str) -> Result<i32> {
    contacthub_core::render::category_from_name(s).with_context(|| {
        format!(
            "catégorie inconnue {s:?} : état civil, scolaire, petite enfance, ccas, culture, services techniques, urbanisme, police municipale ou autre"
        )
    })
}

fn parse_kind(s: &str) -> Result<i32> {
    Ok(match s {
        "letter" | "lettre" => pb::courrier::Kind::Letter,
        "registered" | "recommande" | "recommandé" => pb::courrier::Kind::RegisteredLetter,
        "parcel" | "colis" => pb::courrier::Kind::Parcel,
        "memo" | "note" => pb::courrier::Kind::InternalMemo,
        other => bail!("unknown kind {other:?} (letter, registered, parcel, memo)"),
    } as i32)
}

fn parse_status(s: &str) -> Result<i32> {
    Ok(match s {
        "registered" => pb::CourrierStatus::Registered,
        "routed" => pb::CourrierStatus::Routed,
        "answered" => pb::CourrierStatus::Answered,
        other => bail!("unknown status {other:?} (registered, routed, answered)"),
    } as i32)
}

fn day(t: &Option<contacthub_proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(ts::to_micros)
        .map(paris_display)
        .unwrap_or_default()
}

fn line(s: &pb::CourrierState) -> String {
    let service = if !s.service_name.is_empty() {
        &s.service_name
    } else if s.service.is_empty() {
        &s.addressed_to_service
    } else {
        &s.service
    };
    format!(
        "{}  {}  {:<10} {:<20} {}",
        s.chrono,
        day(&s.received_at),
        contacthub_core::render::courrier_status_fr(s.status),
        service,
        s.subject
    )
}

fn show(s: &pb::CourrierState) -> Result<()> {
    crate::say!(
        "{}  {}",
        s.chrono,
        contacthub_core::render::courrier_status_fr(s.status)
    );
    crate::say!("  expéditeur  {} ({})", s.sender_display, s.citizen_id);
    crate::say!("  reçu le     {}", day(&s.received_at));
    crate::say!("  objet       {}", s.subject);
    crate::say!("  catégorie   {}", category_fr(s.category));
    if !s.tracking_number.is_empty() {
        crate::say!("  recommandé  {}", s.tracking_number);
    }
    for scan in &s.scans {
        crate::say!(
            "  scan        {} {} octets sha256:{}",
            scan.media_type,
            scan.size_bytes,
            scan.sha256
        );
    }
    crate::say!("  circuit :");
    for h in &s.history {
        let waited = if h.seconds_since_previous > 0 {
            format!(" (+{:.1} j)", h.seconds_since_previous as f64 / 86_400.0)
        } else {
            String::new()
        };
        crate::say!(
            "    {} {:<11} {:<20} {}{}  {}",
            day(&h.at),
            contacthub_core::render::step_fr(&h.kind),
            h.service,
            h.agent_id,
            waited,
            h.note
        );
    }
    Ok(())
}

pub async fn run(command: CourrierCommand) -> Result<()> {
    match command {
        CourrierCommand::Register(a) => {
            let mut c = client(&a.at.client).await?;
            let received_at = match &a.received {
                None => None,
                Some(d) => {
                    let date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .with_context(|| format!("--received {d:?} is not YYYY-MM-DD"))?;
                    Some(ts::from_micros(
                        date.and_hms_opt(9, 0, 0)
                            .unwrap()
                            .and_utc()
                            .timestamp_micros(),
                    ))
                }
            };
            let header = pb::CourrierHeader {
                tenant: a.at.tenant.clone(),
                sender: Some(pb::Party {
                    name: a.from_name.clone().unwrap_or_default(),
                    phone: a.from_phone.clone().unwrap_or_default(),
                    email: a.from_email.clone().unwrap_or_default(),
                    address: (!a.from_address.is_empty()).then(|| pb::PostalAddress {
                        lines: a.from_address.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                received_at,
                kind: parse_kind(&a.kind)?,
                tracking_number: a.tracking_number.clone(),
                subject: a.subject.clone(),
                category: parse_category(&a.category)?,
                addressed_to_service: a.service.clone(),
                ..Default::default()
            };
            let mut messages = vec![pb::RegisterCourrierRequest {
                part: Some(pb::register_courrier_request::Part::Header(header)),
            }];
            for (i, path) in a.scan.iter().enumerate() {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                for (k, chunk) in bytes.chunks(CHUNK).enumerate() {
                    messages.push(pb::RegisterCourrierRequest {
                        part: Some(pb::register_courrier_request::Part::Scan(pb::ScanChunk {
                            scan_index: i as u32,
                            filename: if k == 0 { name.clone() } else { String::new() },
                            data: chunk.to_vec(),
                        })),
                    });
                }
            }
            let state = c
                .register_courrier(authed(&a.at.client, tokio_stream::iter(messages))?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!("{}", state.chrono);
        }
        CourrierCommand::Show(a) => {
            let s = crate::rpc!(
                &a.at.client,
                get_courrier,
                pb::GetCourrierRequest {
                    tenant: a.at.tenant,
                    chrono: a.chrono,
                }
            );
            show(&s)?;
        }
        CourrierCommand::List(a) => {
            let r = crate::rpc!(
                &a.at.client,
                list_courrier,
                pb::ListCourrierRequest {
                    tenant: a.at.tenant,
                    service: a.service.unwrap_or_default(),
                    status: a
                        .status
                        .as_deref()
                        .map(parse_status)
                        .transpose()?
                        .unwrap_or(0),
                    overdue_only: a.overdue,
                    limit: a.limit,
                    ..Default::default()
                }
            );
            if r.courriers.is_empty() {
                crate::say!("aucun courrier");
            }
            for s in &r.courriers {
                crate::say!("{}", line(s));
            }
        }
        CourrierCommand::Route(a) => {
            let s = crate::rpc!(
                &a.at.client,
                route_courrier,
                pb::RouteCourrierRequest {
                    tenant: a.at.tenant,
                    chrono: a.chrono,
                    service: a.service,
                    note: a.note,
                    ..Default::default()
                }
            );
            crate::say!("{}", line(&s));
        }
        CourrierCommand::Step(a) => {
            let s = crate::rpc!(
                &a.at.client,
                record_step,
                pb::RecordStepRequest {
                    tenant: a.at.tenant,
                    chrono: a.chrono,
                    step: a.step,
                    note: a.note,
                    ..Default::default()
                }
            );
            crate::say!("{}", line(&s));
        }
        CourrierCommand::Answer(a) => {
            let s = crate::rpc!(
                &a.at.client,
                mark_answered,
                pb::MarkAnsweredRequest {
                    tenant: a.at.tenant,
                    chrono: a.chrono,
                    answer_channel: parse_channel(&a.channel)?,
                    answer_ref: a.reference,
                    ..Default::default()
                }
            );
            crate::say!("{}", line(&s));
        }
        CourrierCommand::Receipt(a) => {
            let r = crate::rpc!(
                &a.at.client,
                get_receipt,
                pb::GetCourrierRequest {
                    tenant: a.at.tenant,
                    chrono: a.chrono,
                }
            );
            std::fs::write(&a.out, &r.pdf)
                .with_context(|| format!("writing {}", a.out.display()))?;
            crate::say!(
                "accusé de réception {} écrit dans {}",
                r.chrono,
                a.out.display()
            );
        }
        CourrierCommand::Report(a) => {
            let r = crate::rpc!(
                &a.client,
                courrier_report,
                pb::CourrierReportRequest {
                    tenant: a.tenant,
                    ..Default::default()
                }
            );
            crate::say!(
                "enregistrés {}  orientés {}  répondus {}",
                r.registered,
                r.routed,
                r.answered
            );
            crate::say!(
                "délai de réponse : moyenne {} j, 90e centile {} j",
                contacthub_core::render::decimal_fr(r.average_days_to_answer),
                contacthub_core::render::decimal_fr(r.p90_days_to_answer)
            );
            crate::say!("en retard : {}", r.overdue.len());
            for s in &r.overdue {
                crate::say!("  {}", line(s));
            }
        }
        CourrierCommand::Unmatched(a) => {
            let c = &a.client;
            let r = crate::rpc!(
                c,
                list_unmatched_scans,
                pb::ListUnmatchedScansRequest {
                    tenant: a.tenant.clone().unwrap_or_default(),
                }
            );
            if r.scans.is_empty() {
                crate::say!("aucune numérisation en attente");
            }
            for s in r.scans {
                crate::say!("{}  {} octets  {}", s.filename, s.size_bytes, s.reason);
            }
        }
    }
    Ok(())
}
