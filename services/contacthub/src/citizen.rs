//! The `citizen` commands: search, show, create, update, merge, unmerge, household, over the
//! gRPC CitizenService of a running hub. Times are shown in Paris local time.

use crate::cli::*;
use crate::commands::{authed, connect, status_err};
use anyhow::{Context, Result};
use contacthub_core::render;
use contacthub_proto::v1::{self as pb, citizen_service_client::CitizenServiceClient};
use tonic::transport::Channel;

async fn client(c: &ClientArgs) -> Result<CitizenServiceClient<Channel>> {
    Ok(CitizenServiceClient::new(connect(c).await?))
}

/// `identity` with the fields given on the command line replaced.
fn apply(mut identity: pb::Identity, a: &IdentityArgs, now_us: i64) -> Result<pb::Identity> {
    if let Some(v) = &a.usage_name {
        identity.usage_name = v.clone();
    }
    if let Some(v) = &a.birth_name {
        identity.birth_name = v.clone();
    }
    if let Some(v) = &a.first_names {
        identity.first_names = v.clone();
    }
    if let Some(v) = &a.birth_date {
        identity.birth_date = v.clone();
    }
    if !a.address.is_empty() {
        identity.addresses = a
            .address
            .iter()
            .map(|line| {
                let parts: Vec<&str> = line.split('|').map(str::trim).collect();
                match parts.as_slice() {
                    [number, street, postcode, city] => Ok(pb::Address {
                        number: number.to_string(),
                        street: street.to_string(),
                        postcode: postcode.to_string(),
                        city: city.to_string(),
                        ..Default::default()
                    }),
                    _ => anyhow::bail!(
                        "--address {line:?}: write NUMBER|STREET|POSTCODE|CITY, e.g. \"12|rue Émile Zola|69700|Givors\""
                    ),
                }
            })
            .collect::<Result<_>>()?;
    }
    if !a.phone.is_empty() {
        identity.phones = a.phone.clone();
    }
    if !a.email.is_empty() {
        identity.emails = a.email.clone();
    }
    if let Some(p) = a.preferred {
        identity.preferred_channel = match p {
            PreferredChannel::Email => pb::ContactChannel::Email,
            PreferredChannel::Sms => pb::ContactChannel::Sms,
            PreferredChannel::Courrier => pb::ContactChannel::Courrier,
            PreferredChannel::Phone => pb::ContactChannel::Phone,
        } as i32;
    }
    if let Some(source) = &a.consent_source {
        identity.consent = Some(pb::Consent {
            given_at: Some(contacthub_proto::ts::from_micros(now_us)),
            source: source.clone(),
        });
    }
    if let Some(v) = &a.note {
        identity.note = v.clone();
    }
    Ok(identity)
}

fn line(hit: &pb::SearchHit) -> String {
    let c = hit.citizen.clone().unwrap_or_default();
    let mut out = format!(
        "{}  {}",
        c.citizen_id,
        if c.display_name.is_empty() {
            "(sans nom)"
        } else {
            &c.display_name
        }
    );
    if let Some(a) = c.identity.as_ref().and_then(|i| i.addresses.first()) {
        out += &format!("  {} {} {}", a.number, a.street, a.city);
    }
    if let Some(p) = c.phones.first() {
        out += &format!("  {}", contacthub_core::identity::display_phone(p));
    }
    if let Some(m) = c.emails.first() {
        out += &format!("  {m}");
    }
    if c.provisional {
        out += "  [provisoire]";
    }
    if let Some(t) = c
        .last_seen
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
    {
        out += &format!(
            "  dernier contact {}",
            contacthub_core::courrier::paris_display(t)
        );
    }
    out
}

pub async fn run(command: CitizenCommand) -> Result<()> {
    let now = chrono::Utc::now().timestamp_micros();
    match command {
        CitizenCommand::Search(a) => {
            let r = crate::rpc!(
                &a.at.client,
                search_citizens,
                pb::SearchCitizensRequest {
                    tenant: a.at.tenant.clone(),
                    query: a.query.join(" "),
                    page_size: a.limit,
                    ..Default::default()
                }
            );
            if r.hits.is_empty() {
                crate::say!("aucun usager trouvé");
            }
            for hit in &r.hits {
                crate::say!("{}", line(hit));
            }
        }
        CitizenCommand::Show(a) => {
            let c = crate::rpc!(
                &a.at.client,
                get_citizen,
                pb::GetCitizenRequest {
                    tenant: a.at.tenant.clone(),
                    citizen_id: a.citizen.clone(),
                }
            );
            crate::say_raw!("{}", render::render_citizen(&c));
        }
        CitizenCommand::Create(a) => {
            let identity = apply(pb::Identity::default(), &a.identity, now)?;
            let c = crate::rpc!(
                &a.at.client,
                create_citizen,
                pb::CreateCitizenRequest {
                    tenant: a.at.tenant.clone(),
                    identity: Some(identity),
                    ..Default::default()
                }
            );
            crate::say!("{}", c.citizen_id);
        }
        CitizenCommand::Update(a) => {
            let mut cl = client(&a.at.client).await?;
            let current = cl
                .get_citizen(authed(
                    &a.at.client,
                    pb::GetCitizenRequest {
                        tenant: a.at.tenant.clone(),
                        citizen_id: a.citizen.clone(),
                    },
                )?)
                .await
                .map_err(status_err)?
                .into_inner();
            let identity = apply(current.identity.unwrap_or_default(), &a.identity, now)?;
            let c = cl
                .update_citizen(authed(
                    &a.at.client,
                    pb::UpdateCitizenRequest {
                        tenant: a.at.tenant.clone(),
                        citizen_id: a.citizen.clone(),
                        identity: Some(identity),
                        ..Default::default()
                    },
                )?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say_raw!("{}", render::render_citizen(&c));
        }
        CitizenCommand::Merge(a) => {
            let c = crate::rpc!(
                &a.at.client,
                merge_citizens,
                pb::MergeCitizensRequest {
                    tenant: a.at.tenant.clone(),
                    citizen_id: a.citizen.clone(),
                    into_citizen_id: a.into.clone(),
                    reason: a.reason.clone(),
                }
            );
            crate::say!("{} fusionnée dans {}", a.citizen, c.citizen_id);
        }
        CitizenCommand::Unmerge(a) => {
            let c = crate::rpc!(
                &a.at.client,
                unmerge_citizen,
                pb::UnmergeCitizenRequest {
                    tenant: a.at.tenant.clone(),
                    citizen_id: a.citizen.clone(),
                    reason: a.reason.clone(),
                }
            );
            crate::say!("{} séparée", c.citizen_id);
        }
        CitizenCommand::Unresolved(a) => {
            let r = crate::rpc!(
                &a.at.client,
                list_unresolved_contacts,
                pb::ListUnresolvedContactsRequest {
                    tenant: a.at.tenant.clone(),
                    include_attached: a.all,
                    ..Default::default()
                }
            );
            if r.contacts.is_empty() {
                crate::say!("aucun contact à rattacher");
            }
            for u in &r.contacts {
                let e = u.entry.clone().unwrap_or_default();
                let when = e
                    .occurred_at
                    .as_ref()
                    .and_then(contacthub_proto::ts::to_micros)
                    .map(contacthub_core::courrier::paris_display)
                    .unwrap_or_default();
                let state = if u.attached_to.is_empty() {
                    format!("candidats : {}", u.candidates.join(", "))
                } else {
                    format!("rattaché à {}", u.attached_to)
                };
                let claimed = if u.claimed_citizen_id.is_empty() {
                    String::new()
                } else {
                    format!(", fiche inconnue citée : {}", u.claimed_citizen_id)
                };
                crate::say!("{}  {when}  {}  ({state}{claimed})", e.event_id, e.summary);
            }
        }
        CitizenCommand::Attach(a) => {
            let e = crate::rpc!(
                &a.at.client,
                attach_contact,
                pb::AttachContactRequest {
                    tenant: a.at.tenant.clone(),
                    contact_event_id: a.contact.clone(),
                    citizen_id: a.citizen.clone(),
                }
            );
            crate::say!("{} rattaché à {}", e.event_id, e.citizen_id);
        }
        CitizenCommand::Accounts(a) => {
            let r = crate::rpc!(
                &a.client,
                list_account_proposals,
                pb::ListAccountProposalsRequest {
                    tenant: a.tenant.clone(),
                }
            );
            if r.proposals.is_empty() {
                crate::say!("aucun compte à rattacher");
            }
            for p in &r.proposals {
                let i = p.identity.clone().unwrap_or_default();
                let when =
                    p.at.as_ref()
                        .and_then(contacthub_proto::ts::to_micros)
                        .map(contacthub_core::courrier::paris_display)
                        .unwrap_or_default();
                let born = chrono::NaiveDate::parse_from_str(&i.birth_date, "%Y-%m-%d")
                    .map(|d| d.format("%d/%m/%Y").to_string())
                    .unwrap_or_default();
                let candidates = if p.candidates.is_empty() {
                    "aucune fiche proche".to_string()
                } else {
                    format!("fiches proches : {}", p.candidates.join(", "))
                };
                crate::say!(
                    "{}  {when}  {} {}, né(e) le {born}  {candidates}",
                    p.event_id,
                    i.first_names,
                    i.birth_name
                );
            }
        }
        CitizenCommand::LinkAccount(a) => {
            crate::rpc!(
                &a.at.client,
                link_account,
                pb::LinkAccountRequest {
                    tenant: a.at.tenant.clone(),
                    proposal_event_id: a.proposal.clone(),
                    citizen_id: a.citizen.clone(),
                }
            );
            crate::say!("compte rattaché à {}", a.citizen);
        }
        CitizenCommand::Proposals(a) => {
            let r = crate::rpc!(
                &a.client,
                list_duplicate_proposals,
                pb::ListDuplicateProposalsRequest {
                    tenant: a.tenant.clone(),
                    limit: 0,
                }
            );
            if r.proposals.is_empty() {
                crate::say!("aucun doublon proposé");
            }
            for p in &r.proposals {
                let (c, o) = (
                    p.citizen.clone().unwrap_or_default(),
                    p.other.clone().unwrap_or_default(),
                );
                crate::say!(
                    "{}  {}  ~  {}  {}  ({})",
                    c.citizen_id,
                    c.display_name,
                    o.citizen_id,
                    o.display_name,
                    p.why
                );
            }
        }
        CitizenCommand::Erase(a) => {
            let mut dpo = contacthub_proto::v1::audit_service_client::AuditServiceClient::new(
                crate::commands::connect(&a.at.client).await?,
            );
            let done = dpo
                .erase_citizen(authed(
                    &a.at.client,
                    pb::EraseCitizenRequest {
                        tenant: a.at.tenant.clone(),
                        citizen_id: a.citizen.clone(),
                        reason: a.reason.clone(),
                    },
                )?)
                .await
                .map_err(status_err)?
                .into_inner();
            let merged = match done.merged_citizen_ids.as_slice() {
                [] => String::new(),
                ids => format!(" (avec {})", ids.join(", ")),
            };
            crate::say!(
                "données de {}{merged} effacées : {} clé(s) détruite(s)",
                done.citizen_id,
                done.keys_destroyed
            );
        }
        CitizenCommand::Export(a) => {
            let mut dpo = contacthub_proto::v1::audit_service_client::AuditServiceClient::new(
                connect(&a.at.client).await?,
            );
            let mut stream = dpo
                .export_citizen(authed(
                    &a.at.client,
                    pb::ExportCitizenRequest {
                        tenant: a.at.tenant.clone(),
                        citizen_id: a.citizen.clone(),
                    },
                )?)
                .await
                .map_err(status_err)?
                .into_inner();
            let mut zip = Vec::new();
            while let Some(chunk) = stream.message().await.map_err(status_err)? {
                zip.extend_from_slice(&chunk.data);
            }
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&a.out)
                .with_context(|| {
                    format!(
                        "creating {} (an existing file is not overwritten)",
                        a.out.display()
                    )
                })?;
            file.write_all(&zip)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", a.out.display()))?;
            crate::say!(
                "données de {} exportées dans {} ({} octets)",
                a.citizen,
                a.out.display(),
                zip.len()
            );
        }
        CitizenCommand::Dismiss(a) => {
            crate::rpc!(
                &a.at.client,
                dismiss_duplicate,
                pb::DismissDuplicateRequest {
                    tenant: a.at.tenant.clone(),
                    citizen_id: a.citizen.clone(),
                    other_citizen_id: a.other.clone(),
                    reason: a.reason.clone(),
                }
            );
            crate::say!("{} et {} : doublon écarté", a.citizen, a.other);
        }
        CitizenCommand::Household(a) => {
            let mut cl = client(&a.at.client).await?;
            let h = match (&a.add, &a.remove) {
                (Some(c), _) | (None, Some(c)) => cl
                    .set_household_member(authed(
                        &a.at.client,
                        pb::SetHouseholdMemberRequest {
                            tenant: a.at.tenant.clone(),
                            household_id: a.household.clone(),
                            citizen_id: c.clone(),
                            role: a.role.clone(),
                            member: a.add.is_some(),
                        },
                    )?)
                    .await
                    .map_err(status_err)?
                    .into_inner(),
                (None, None) => cl
                    .get_household(authed(
                        &a.at.client,
                        pb::GetHouseholdRequest {
                            tenant: a.at.tenant.clone(),
                            household_id: a.household.clone(),
                            recent: 10,
                        },
                    )?)
                    .await
                    .map_err(status_err)?
                    .into_inner(),
            };
            crate::say!("Foyer {}", h.household_id);
            for m in &h.members {
                let c = m.citizen.clone().unwrap_or_default();
                crate::say!("  {:<12} {}  {}", m.role, c.citizen_id, c.display_name);
            }
            if !h.recent.is_empty() {
                crate::say_raw!("{}", render::render_entries(&h.recent));
            }
        }
    }
    Ok(())
}
