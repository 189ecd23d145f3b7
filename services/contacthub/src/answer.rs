//! The `answer` commands (réponses écrites): preview, send and follow the written answer of
//! a request, and `outbound print-queue` (letters to print and post), over the gRPC
//! OutboundService of a running hub. Times in Paris local time.

use crate::cli::*;
use crate::commands::{authed, connect, status_err, when};
use anyhow::{Context, Result};
use contacthub_core::render::{answer_status_fr, channel_fr};
use contacthub_proto::v1::{self as pb, outbound_service_client::OutboundServiceClient};
use std::io::Read;
use tonic::transport::Channel;

async fn client(c: &ClientArgs) -> Result<OutboundServiceClient<Channel>> {
    Ok(OutboundServiceClient::new(connect(c).await?))
}

fn compose(a: &AnswerComposeArgs) -> Result<pb::ComposeAnswerRequest> {
    let text = match a.text.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the answer from standard input")?;
            s
        }
        Some(t) => t.to_string(),
        None => String::new(),
    };
    Ok(pb::ComposeAnswerRequest {
        tenant: a.at.tenant.clone(),
        reference: a.reference.clone(),
        channel: match a.channel {
            None => pb::Channel::Unspecified,
            Some(AnswerChannelArg::Email) => pb::Channel::Email,
            Some(AnswerChannelArg::Sms) => pb::Channel::Sms,
            Some(AnswerChannelArg::Courrier) => pb::Channel::Courrier,
            Some(AnswerChannelArg::Portal) => pb::Channel::WebForm,
        } as i32,
        channel_reason: a.reason.clone().unwrap_or_default(),
        subject: a.subject.clone().unwrap_or_default(),
        text,
        catalogue_answer_id: a.catalogue.clone().unwrap_or_default(),
        attach_letter: a.attach_letter,
        idempotency_key: a.idempotency_key.clone().unwrap_or_default(),
    })
}

/// How an answer goes, in French: by e-mail, SMS, letter, portal.
fn by(channel: i32) -> &'static str {
    if channel == pb::Channel::WebForm as i32 {
        "portail"
    } else {
        channel_fr(channel)
    }
}

/// One answer: id, channel, status, and its proof or its error.
fn show(a: &pb::Answer) -> Result<()> {
    crate::say!(
        "{}  {:<10}  {:<20}  rédigée {}",
        a.answer_event_id,
        by(a.channel),
        answer_status_fr(a.status),
        when(&a.composed_at)
    );
    if a.delivered_at.is_some() {
        let proof = if a.provider_message_id.is_empty() {
            format!("sha256 {}", a.pdf_sha256)
        } else {
            a.provider_message_id.clone()
        };
        crate::say!("  remise le {}  preuve {proof}", when(&a.delivered_at));
    }
    if a.segments > 0 {
        crate::say!("  {} SMS", a.segments);
    }
    if a.attempts > 1 || !a.last_error.is_empty() {
        crate::say!("  essais {}  {}", a.attempts, a.last_error);
    }
    if a.next_attempt_at.is_some() && a.status == pb::AnswerStatus::Retrying as i32 {
        crate::say!("  prochain essai {}", when(&a.next_attempt_at));
    }
    if !a.channel_reason.is_empty() {
        crate::say!("  canal choisi : {}", a.channel_reason);
    }
    Ok(())
}

pub async fn run(command: AnswerCommand) -> Result<()> {
    match command {
        AnswerCommand::Preview(a) => {
            let req = compose(&a)?;
            let p = client(&a.at.client)
                .await?
                .preview_answer(authed(&a.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            let preferred = if p.preferred {
                " (canal préféré de l'usager)"
            } else {
                ""
            };
            crate::say!("canal         {}{preferred}", by(p.channel));
            if !p.recipient.is_empty() {
                crate::say!("destinataire  {}", p.recipient);
            }
            for l in &p.postal_lines {
                crate::say!("adresse       {l}");
            }
            crate::say!("objet         {}", p.subject);
            if p.sms_segments > 0 {
                crate::say!("SMS           {} segment(s)", p.sms_segments);
            }
            crate::say!();
            crate::say!("{}", p.text);
            if let Some(path) = &a.pdf {
                if p.letter_pdf.is_empty() {
                    anyhow::bail!(
                        "no letter for this answer (courrier, or e-mail with --attach-letter)"
                    );
                }
                std::fs::write(path, &p.letter_pdf)
                    .with_context(|| format!("writing {}", path.display()))?;
                crate::say!();
                crate::say!("lettre écrite dans {}", path.display());
            }
            Ok(())
        }
        AnswerCommand::Send(a) => {
            let req = compose(&a)?;
            let answer = client(&a.at.client)
                .await?
                .send_answer(authed(&a.at.client, req)?)
                .await
                .map_err(status_err)?
                .into_inner();
            show(&answer)
        }
        AnswerCommand::Status(a) => {
            let list = client(&a.at.client)
                .await?
                .list_answers(authed(
                    &a.at.client,
                    pb::ListAnswersRequest {
                        tenant: a.at.tenant.clone(),
                        reference: a.reference.clone(),
                    },
                )?)
                .await
                .map_err(status_err)?
                .into_inner();
            if list.answers.is_empty() {
                crate::say!("aucune réponse écrite pour {}", a.reference);
            }
            for answer in &list.answers {
                show(answer)?;
            }
            Ok(())
        }
    }
}

pub async fn outbound(command: OutboundCommand) -> Result<()> {
    let OutboundCommand::PrintQueue(a) = command;
    let mut c = client(&a.at.client).await?;
    let queue = c
        .list_print_queue(authed(
            &a.at.client,
            pb::ListPrintQueueRequest {
                tenant: a.at.tenant.clone(),
            },
        )?)
        .await
        .map_err(status_err)?
        .into_inner();
    for id in &a.mark_printed {
        let item = queue
            .items
            .iter()
            .find(|i| i.answer.as_ref().is_some_and(|x| &x.answer_event_id == id))
            .with_context(|| format!("no letter {id} in the print queue"))?;
        let answer = c
            .mark_printed(authed(
                &a.at.client,
                pb::MarkPrintedRequest {
                    tenant: a.at.tenant.clone(),
                    answer_event_id: id.clone(),
                    pdf_sha256: item.pdf_sha256.clone(),
                },
            )?)
            .await
            .map_err(status_err)?
            .into_inner();
        show(&answer)?;
    }
    if !a.mark_printed.is_empty() {
        return Ok(());
    }
    if queue.items.is_empty() {
        crate::say!("aucune lettre à imprimer");
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for item in &queue.items {
        let Some(answer) = &item.answer else { continue };
        crate::say!(
            "{}  demande {}  rédigée {}  sha256 {}",
            answer.answer_event_id,
            answer.request_reference,
            when(&answer.composed_at),
            item.pdf_sha256
        );
        if let Some(dir) = &a.out {
            let path = dir.join(format!("{}.pdf", answer.answer_event_id));
            std::fs::write(&path, &item.letter_pdf)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
