//! The data protection officer's commands, over the gRPC AuditService of a running hub: the
//! read trail of a commune (`audit`), the retention rules (`retention`); and the check of a
//! trail's chain on disk (`audit verify`).

use crate::cli::{AuditArgs, AuditCommand, RetentionArgs};
use crate::commands::{authed, connect, status_err, when};
use anyhow::{bail, Result};
use contacthub_app::audit::{self, Verdict};
use contacthub_core::courrier::paris_display;
use contacthub_proto::v1::{self as pb, audit_service_client::AuditServiceClient};

pub async fn run(a: AuditArgs) -> Result<()> {
    match a.command {
        Some(AuditCommand::Verify(v)) => verify(&v.data),
        None => reads(a).await,
    }
}

async fn reads(a: AuditArgs) -> Result<()> {
    let Some(tenant) = a.tenant else {
        bail!("indiquez la commune : --tenant INSEE (ou CONTACTHUB_TENANT)");
    };
    let mut client = AuditServiceClient::new(connect(&a.client).await?);
    let reads = client
        .list_reads(authed(
            &a.client,
            pb::ListReadsRequest {
                tenant,
                citizen_id: a.citizen.unwrap_or_default(),
                agent_id: a.agent.unwrap_or_default(),
                limit: a.limit,
            },
        )?)
        .await
        .map_err(status_err)?
        .into_inner()
        .reads;
    if reads.is_empty() {
        crate::say!("aucune consultation");
    }
    for r in reads {
        let object = if r.object.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.object)
        };
        let from = if r.address.is_empty() {
            r.via_fr
        } else {
            format!("{}, {}", r.via_fr, r.address)
        };
        crate::say!(
            "{}  {}  a consulté {}{object} de {}  [{from}]",
            when(&r.at),
            r.agent_id,
            r.what_fr,
            r.citizen_id
        );
    }
    Ok(())
}

fn verify(data: &std::path::Path) -> Result<()> {
    let path = audit::path_in(data);
    if !path.exists() {
        bail!(
            "aucun journal des consultations dans {} : vérifiez --data",
            path.display()
        );
    }
    match audit::verify(&path)? {
        Verdict::Intact { reads: 0, .. } => crate::say!("journal intact : aucune consultation"),
        Verdict::Intact {
            reads,
            first_us,
            last_us,
            head,
        } => crate::say!(
            "journal intact : {reads} consultation(s), du {} au {} ; dernière empreinte {head}",
            paris_display(first_us),
            paris_display(last_us)
        ),
        Verdict::Broken { line, why } => {
            bail!("journal altéré à la ligne {line} : {why}")
        }
    }
    Ok(())
}

/// `retention --tenant T --dry-run | --apply`: one line per record, then what was done.
pub async fn retention(a: RetentionArgs) -> Result<()> {
    let mut client = AuditServiceClient::new(connect(&a.at.client).await?);
    let answer = client
        .apply_retention(authed(
            &a.at.client,
            pb::ApplyRetentionRequest {
                tenant: a.at.tenant.clone(),
                apply: a.mode.apply,
            },
        )?)
        .await
        .map_err(status_err)?
        .into_inner();
    for d in &answer.due {
        let day = d
            .last_contact
            .as_ref()
            .and_then(contacthub_proto::ts::to_micros)
            .map(contacthub_core::courrier::paris_day)
            .unwrap_or_default();
        if d.citizen_id.is_empty() {
            crate::say!("{}  reçu(e) le {day}  {}", d.held_id, d.rule);
        } else {
            crate::say!("{}  dernier contact le {day}  {}", d.citizen_id, d.rule);
        }
    }
    let held = answer
        .due
        .iter()
        .filter(|d| d.citizen_id.is_empty())
        .count();
    let n = answer.due.len() - held;
    if answer.applied {
        crate::say!("{n} fiche(s) effacée(s)");
        if held > 0 {
            crate::say!("{held} entrée(s) en attente supprimée(s)");
        }
    } else {
        if held > 0 {
            crate::say!("{held} entrée(s) en attente à supprimer");
        }
        crate::say!(
            "{n} fiche(s) à effacer (simulation : rien n'est effacé ; --apply pour effacer)"
        );
    }
    Ok(())
}
