//! The mail room (service courrier): register incoming letters with their scans, route them,
//! record each step of the internal circuit, mark them answered, list, report, and print the
//! acknowledgement of receipt. Every change is an event on the log; the chrono number is
//! given by the projector in log order.

use crate::auth::{Ops, Scope};
use crate::commands;
use crate::content::{Upload, UploadError};
use crate::guard::Sight;
use crate::{timestamp, App, Error, Result};
use contacthub_core::courrier::{is_overdue, report};
use contacthub_core::event::{contact, content_fingerprint, valid_chrono};
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, event::Payload, CourrierState};
use contacthub_documents::receipt_pdf;
use contacthub_proto::ts;
use prost::Message;

/// Scans per letter, at most.
pub const MAX_SCANS: usize = 50;

/// The agent recorded on a mail-room event: the caller, or the one a client names when no
/// agent calls (an open hub, a hub's own part).
fn agent_of(scope: &Scope, claimed: &str) -> String {
    scope.agent().map_or(claimed.to_string(), |a| a.id.clone())
}

/// Why scan `i` (from 0) named `name` was refused, in the agent's words.
pub fn scan_refused(i: usize, name: &str, e: &UploadError) -> String {
    let why = match e {
        UploadError::TooLarge { limit } if limit % (1 << 20) == 0 => {
            format!("dépasse la taille maximale ({} Mio)", limit >> 20)
        }
        UploadError::TooLarge { limit } => format!("dépasse la taille maximale ({limit} octets)"),
        UploadError::NotAScan => "n'est ni un PDF, ni un TIFF, ni un JPEG, ni un PNG".into(),
        UploadError::Empty => "est vide".into(),
        UploadError::Io(_) | UploadError::Objects(_) | UploadError::Config(_) => {
            "n'a pas pu être enregistré".into()
        }
    };
    format!("le scan {} ({}) {why}", i + 1, quote(name))
}

impl App {
    /// A registered letter of `tenant`, whoever asks: for the checks below only.
    pub(crate) fn letter(&self, tenant: &str, chrono: &str) -> Result<CourrierState> {
        self.tenant(tenant)?;
        if !valid_chrono(chrono) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un numéro chrono",
                quote(chrono)
            )));
        }
        self.store.courrier(tenant, chrono)?.ok_or_else(|| {
            Error::NotFound(format!(
                "aucun courrier {} dans cette commune",
                quote(chrono)
            ))
        })
    }

    /// Whether `agent` may see a letter: an agent of some services sees the letters whose
    /// request is theirs (or assigned to them), as for any request.
    fn sees_letter(&self, scope: &Scope, s: &CourrierState) -> Result<bool> {
        let Some(a) = scope.agent() else {
            return Ok(true);
        };
        if let Some(r) = self.store.request(&s.tenant, &s.request_reference)? {
            return Ok(a.sees_request(&r.service, &r.assignee_agent_id));
        }
        let service = if s.service.is_empty() {
            &s.addressed_to_service
        } else {
            &s.service
        };
        Ok(a.sees_request(service, ""))
    }

    /// A registered letter of `tenant` as `agent` may see it (another service's is not found,
    /// as in another commune).
    pub fn letter_for(&self, scope: &Scope, chrono: &str) -> Result<CourrierState> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let s = self.letter_with_sight(scope, tenant, chrono)?.0;
        self.read_letter(scope, &s, crate::audit::Reading::Letter)?;
        Ok(s)
    }

    /// Records that `scope` read letter `s` (`what`), unless only that it exists.
    fn read_letter(
        &self,
        scope: &Scope,
        s: &CourrierState,
        what: crate::audit::Reading,
    ) -> Result<()> {
        if s.withheld_service.is_empty() {
            self.read_by(scope, &s.citizen_id, what, &s.chrono)?;
        }
        Ok(())
    }

    /// Scan `n` (from 0) of a letter the caller reads, with its bytes.
    pub async fn letter_scan(
        &self,
        scope: &Scope,
        chrono: &str,
        n: usize,
    ) -> Result<(pb::Attachment, Vec<u8>)> {
        let s = self.letter_for(scope, chrono)?;
        self.document(&s.scans, n, "ce courrier n'a pas ce scan")
            .await
    }

    /// A letter as `agent` may read it, and how much they read of it.
    fn letter_with_sight(
        &self,
        scope: &Scope,
        tenant: &str,
        chrono: &str,
    ) -> Result<(CourrierState, Sight)> {
        let commune = self.tenant(tenant)?;
        let s = self.letter(tenant, chrono)?;
        if !self.sees_letter(scope, &s)? {
            return Err(Error::NotFound(format!(
                "aucun courrier {} dans cette commune",
                quote(chrono)
            )));
        }
        let (sight, service) = self.letter_sight(scope, commune, &s)?;
        Ok((
            crate::guard::letter_as_seen(s, commune, &service, sight),
            sight,
        ))
    }

    /// A letter `agent` may act on with at least `needed` sight (the mail room routes a
    /// confidential letter it may not read; only the service answers it).
    fn letter_for_work(
        &self,
        scope: &Scope,
        tenant: &str,
        chrono: &str,
        needed: Sight,
    ) -> Result<CourrierState> {
        let (s, sight) = self.letter_with_sight(scope, tenant, chrono)?;
        if sight < needed {
            let commune = self.tenant(tenant)?;
            return Err(Error::Forbidden(format!(
                "le courrier {} est une affaire confidentielle du service {} : seuls ses agents le lisent et le modifient",
                s.chrono,
                commune.service_name(&s.withheld_service)
            )));
        }
        Ok(s)
    }

    /// Checks a registration's header before its scans are read.
    pub fn check_courrier_header(&self, header: &pb::CourrierHeader) -> Result<()> {
        self.tenant(&header.tenant)?;
        let now = (self.clock)();
        let received = timestamp(&header.received_at, "received_at")?.unwrap_or(now);
        if received > now + 300_000_000 {
            return Err(Error::Invalid(
                "la date de réception est dans le futur".into(),
            ));
        }
        if header.kind == pb::courrier::Kind::RegisteredLetter as i32
            && header.tracking_number.trim().is_empty()
        {
            return Err(Error::Invalid(
                "un recommandé a besoin de son numéro de suivi".into(),
            ));
        }
        Ok(())
    }

    /// Starts receiving a scan (a temporary file, removed unless the registration succeeds).
    pub fn begin_scan(&self) -> Result<Upload> {
        self.content
            .begin(self.max_scan_bytes)
            .map_err(|e| Error::Unavailable(format!("the content store: {e}")))
    }

    /// Registers a letter with its scans (each `(file name, upload)`), once every scan is
    /// checked; returns the letter, with its chrono number, once visible.
    pub async fn register_courrier(
        &self,
        scope: &Scope,
        header: &pb::CourrierHeader,
        uploads: Vec<(String, Upload)>,
    ) -> Result<CourrierState> {
        self.enter(scope, &header.tenant)?;
        self.check_courrier_header(header)?;
        if uploads.len() > MAX_SCANS {
            return Err(Error::Invalid(format!(
                "au plus {MAX_SCANS} scans par courrier"
            )));
        }
        // Every scan checked, and the whole event valid, before any scan is kept.
        let mut attachments = Vec::new();
        let mut names = Vec::new();
        for (i, (name, upload)) in uploads.iter().enumerate() {
            attachments.push(
                upload
                    .peek()
                    .map_err(|e| Error::Invalid(scan_refused(i, name, &e)))?,
            );
            names.push(name.clone());
        }
        let now = (self.clock)();
        let received = timestamp(&header.received_at, "received_at")?.unwrap_or(now);
        let source_id = if header.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            header.idempotency_key.clone()
        };
        let payload = Payload::Courrier(pb::Courrier {
            kind: if header.kind == 0 {
                pb::courrier::Kind::Letter as i32
            } else {
                header.kind
            },
            chrono: String::new(),
            tracking_number: header.tracking_number.clone(),
            addressed_to_service: header.addressed_to_service.clone(),
        });
        let mut e = contact(
            &header.tenant,
            "courrier",
            &source_id,
            received,
            now,
            payload,
            header.sender.clone().unwrap_or_default(),
        );
        e.category = if header.category == 0 {
            pb::Category::Other as i32
        } else {
            header.category
        };
        e.agent_id = agent_of(scope, &header.agent_id);
        if let Some(p) = e.personal.as_mut() {
            p.subject = header.subject.clone();
            p.attachment_names = names;
        }
        // A retry with the same idempotency key repeats the same letter and scans.
        let scans: Vec<&[u8]> = attachments.iter().map(|a| a.sha256.as_bytes()).collect();
        let mut same = header.clone();
        same.idempotency_key.clear();
        same.received_at = None;
        let described = same.encode_to_vec();
        let mut parts = vec![described.as_slice()];
        parts.extend(scans);
        e.fingerprint = content_fingerprint(&Default::default(), &parts);
        e.attachments = attachments;
        contacthub_core::event::validate(&e, &self.tenants).map_err(|i| Error::Invalid(i.0))?;
        if self.prior(&e)? == crate::write::Prior::Other {
            return Err(Error::Conflict(format!(
                "cette clé d'idempotence a déjà servi pour un autre courrier (événement {})",
                e.event_id
            )));
        }
        for (i, (name, upload)) in uploads.into_iter().enumerate() {
            upload.finish(&self.content).await.map_err(|e| match e {
                UploadError::Io(_) | UploadError::Objects(_) | UploadError::Config(_) => {
                    tracing::error!(error = %e, "a scan could not be stored");
                    Error::Unavailable(scan_refused(i, &name, &e))
                }
                _ => Error::Invalid(scan_refused(i, &name, &e)),
            })?;
        }
        self.write(&e).await?;
        let state = self
            .store
            .courrier_by_event(&e.tenant, &e.event_id)?
            .ok_or_else(|| {
                Error::Internal(format!("letter {} projected without a record", e.event_id))
            })?;
        tracing::info!(tenant = %e.tenant, chrono = %state.chrono, scans = state.scans.len(), "courrier registered");
        Ok(state)
    }

    /// Writes a mail-room event about `chrono` and returns the letter as it is then.
    async fn bookkeeping(
        &self,
        tenant: &str,
        chrono: &str,
        caller: &Scope,
        agent: String,
        payload: Payload,
    ) -> Result<CourrierState> {
        let needed = match payload {
            Payload::CourrierAnswered(_) => Sight::Full,
            _ => Sight::Suivi,
        };
        self.letter_for_work(caller, tenant, chrono, needed)?;
        let source_id = uuid::Uuid::new_v4().to_string();
        let e = self.internal_event("courrier", tenant, &source_id, &agent, payload);
        self.write(&e).await?;
        self.letter_for(caller, chrono)
    }

    /// Routes (or reassigns) a letter to a service.
    pub async fn route_courrier(
        &self,
        scope: &Scope,
        r: &commands::RouteCourrier,
    ) -> Result<CourrierState> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if r.service.trim().is_empty() {
            return Err(Error::Invalid("indiquez le service".into()));
        }
        let payload = Payload::CourrierRouted(pb::CourrierRouted {
            chrono: r.chrono.clone(),
            service: r.service.trim().to_string(),
            note: r.note.clone(),
        });
        self.bookkeeping(
            tenant,
            &r.chrono,
            scope,
            agent_of(scope, &r.agent_id),
            payload,
        )
        .await
    }

    /// Records one step of the internal circuit.
    pub async fn record_step(
        &self,
        scope: &Scope,
        r: &commands::RecordStep,
    ) -> Result<CourrierState> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if r.step.trim().is_empty() {
            return Err(Error::Invalid("indiquez l'étape".into()));
        }
        let payload = Payload::CourrierStep(pb::CourrierStep {
            chrono: r.chrono.clone(),
            step: r.step.clone(),
            note: r.note.clone(),
        });
        self.bookkeeping(
            tenant,
            &r.chrono,
            scope,
            agent_of(scope, &r.agent_id),
            payload,
        )
        .await
    }

    /// Marks a letter answered, with how the answer went.
    pub async fn mark_answered(
        &self,
        scope: &Scope,
        r: &commands::MarkAnswered,
    ) -> Result<CourrierState> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if matches!(
            r.answer_channel,
            pb::Channel::Unspecified | pb::Channel::BackOffice
        ) {
            return Err(Error::Invalid(
                "indiquez par quel canal la réponse est partie (courrier, courriel, SMS, téléphone…)"
                    .into(),
            ));
        }
        let payload = Payload::CourrierAnswered(pb::CourrierAnswered {
            chrono: r.chrono.clone(),
            answer_channel: r.answer_channel as i32,
            answer_ref: r.answer_ref.clone(),
        });
        self.bookkeeping(
            tenant,
            &r.chrono,
            scope,
            agent_of(scope, &r.agent_id),
            payload,
        )
        .await
    }

    /// Letters of a commune by service, status, registration date and lateness.
    pub fn list_courrier(
        &self,
        scope: &Scope,
        r: &commands::CourrierQuery,
    ) -> Result<Vec<CourrierState>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?.clone();
        let since = timestamp(&r.since, "since")?.unwrap_or(i64::MIN);
        let until = timestamp(&r.until, "until")?.unwrap_or(i64::MAX);
        let now = (self.clock)();
        let seen = |s: CourrierState| -> Result<CourrierState> {
            let (sight, service) = self.letter_sight(scope, &commune, &s)?;
            Ok(crate::guard::letter_as_seen(s, &commune, &service, sight))
        };
        let limit = if r.limit == 0 {
            100
        } else {
            r.limit.min(10_000) as usize
        };
        Ok(crate::within_page(
            self.store
                .courriers(tenant)?
                .into_iter()
                .filter(|s| {
                    r.service.is_empty()
                        || s.service == r.service
                        || (s.service.is_empty() && s.addressed_to_service == r.service)
                })
                .filter(|s| {
                    r.status == pb::CourrierStatus::Unspecified || s.status == r.status as i32
                })
                .filter(|s| {
                    let at = s
                        .registered_at
                        .as_ref()
                        .and_then(ts::to_micros)
                        .unwrap_or(0);
                    at >= since && at < until
                })
                .filter(|s| !r.overdue_only || is_overdue(s, &commune, now))
                .filter(|s| self.sees_letter(scope, s).unwrap_or(false))
                .take(limit)
                .map(|s| {
                    let s = seen(s)?;
                    self.read_letter(scope, &s, crate::audit::Reading::List)?;
                    Ok(s)
                })
                .collect::<Result<Vec<_>>>()?,
        ))
    }

    /// The acknowledgement of receipt of a letter, as a PDF.
    pub fn receipt(&self, scope: &Scope, chrono: &str) -> Result<pb::Receipt> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?.clone();
        // The mail room prints it for a letter it may not read: without its subject.
        let state = self.letter_for_work(scope, tenant, chrono, Sight::Suivi)?;
        self.read_by(
            scope,
            &state.citizen_id,
            crate::audit::Reading::Letter,
            &state.chrono,
        )?;
        // The sender's name, and the postal address of their record when it has one.
        let mut recipient = vec![state.sender_display.clone()];
        // The address written on the letter, when the clerk typed it.
        let written = self
            .store
            .contact_detail(tenant, &state.event_id)?
            .and_then(|p| p.party)
            .and_then(|p| p.address)
            .filter(|a| !a.lines.is_empty() || !a.city.is_empty());
        if let Some(a) = written {
            recipient.extend(a.lines.iter().map(|l| l.trim().to_string()));
            let town = format!("{} {}", a.postal_code, a.city);
            if !town.trim().is_empty() {
                recipient.push(town.trim().to_string());
            }
        } else if let Some(a) = self
            .store
            .citizen(tenant, &state.citizen_id)?
            .and_then(|c| c.identity)
            .and_then(|i| i.addresses.into_iter().next())
        {
            let street = format!("{} {}", a.number, a.street);
            let town = format!("{} {}", a.postcode, a.city);
            recipient.extend(
                [street.trim(), a.complement.trim(), town.trim()]
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        let code = if state.request_reference.is_empty() {
            String::new()
        } else {
            self.follow_up_code(tenant, &state.request_reference)
        };
        let pdf = receipt_pdf(&state, &commune, &recipient, &code);
        Ok(pb::Receipt {
            chrono: state.chrono,
            pdf,
        })
    }

    /// Registered, routed, answered, time to answer and overdue letters of a commune.
    pub fn courrier_report(
        &self,
        scope: &Scope,
        r: &commands::Period,
    ) -> Result<pb::CourrierReportResponse> {
        let tenant = scope.commune();
        let commune = self.enter_figures(scope, tenant)?.clone();
        let since = timestamp(&r.since, "since")?.unwrap_or(i64::MIN);
        let until = timestamp(&r.until, "until")?.unwrap_or(i64::MAX);
        let states = self.store.courriers(tenant)?;
        Ok(report(&states, &commune, since, until, (self.clock)()))
    }

    /// Scans of the drop folder that match no letter, of the scope's commune (the mail room
    /// attaches them by hand).
    pub fn unmatched_scans(&self, scope: &Scope) -> Result<Vec<pb::UnmatchedScan>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        Ok(self
            .scan_inbox_leftovers()?
            .into_iter()
            .filter(|s| s.tenant == tenant)
            .collect())
    }

    /// Scans of the drop folder that match no letter, of every commune an ops caller sees
    /// (file names carry personal data; scans no commune can be told from only for an ops
    /// agent of every commune).
    pub fn all_unmatched_scans(&self, ops: &Ops) -> Result<Vec<pb::UnmatchedScan>> {
        Ok(self
            .scan_inbox_leftovers()?
            .into_iter()
            .filter(|s| {
                if s.tenant.is_empty() {
                    ops.all_communes()
                } else {
                    ops.may_read(&s.tenant)
                }
            })
            .collect())
    }

    fn scan_inbox_leftovers(&self) -> Result<Vec<pb::UnmatchedScan>> {
        match &self.scan_inbox {
            Some(dir) => crate::hotfolder::unmatched(dir, &self.tenants)
                .map_err(|e| Error::Unavailable(format!("the scan inbox: {e}"))),
            None => Ok(Vec::new()),
        }
    }
}
