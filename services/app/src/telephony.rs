//! The phone that shows who calls (couplage téléphonie): the switch's events, read by the
//! adapters, announce each ring to the agent whose extension rings; the agent's desk shows the
//! caller — their record when one person holds the number, the candidates when several do,
//! « numéro inconnu » otherwise, « numéro masqué » when withheld — resolved under that agent's
//! rights and in the read trail; the call is recorded once it ends, as the one contact the
//! CDR line of the same call also names.

use crate::audit::Reading;
use crate::auth::{Scope, System};
use crate::{App, Error, Result};
use contacthub_core::identity::normalize_phone;
use contacthub_core::pb;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Where a call stands, as the switch said last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Ringing,
    Answered,
    Ended,
}

/// A call at an agent's extension, as the adapters announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    pub tenant: String,
    /// The agent whose extension rings (the adapters file maps extensions to agents).
    pub agent: String,
    /// The call's id on the switch (`Linkedid`).
    pub call: String,
    /// The caller's number as the switch gives it; `None` when withheld.
    pub caller: Option<String>,
    pub state: CallState,
    pub at_us: i64,
    /// The event id the call is recorded under once it ends (its CDR line's too).
    pub contact_event_id: String,
}

/// Who calls, as the agent's desk shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A withheld number.
    Withheld,
    /// No record holds the number (written as people write it).
    Unknown { number: String },
    /// One record: its id and name.
    Known {
        number: String,
        citizen_id: String,
        name: String,
    },
    /// Several records hold the number: (id, name) each.
    Candidates {
        number: String,
        records: Vec<(String, String)>,
    },
}

/// A call shown on the agent's desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop {
    pub call: String,
    pub caller: Caller,
    pub state: CallState,
    pub at_us: i64,
    /// The contact the call is recorded as (for its motive, once it ended).
    pub contact_event_id: String,
}

/// Rings kept for desks that fall behind; beyond, they are told to reload.
pub(crate) const RINGS: usize = 256;

impl App {
    /// Announces a ring (or its answer, or its end) to the desks watching: the adapters only.
    pub fn announce_ring(&self, actor: System, ring: Ring) -> Result<()> {
        actor.allowed(&[System::Adapters], "announce calls")?;
        // No desk watching is not an error: the call is recorded all the same.
        let _ = self.rings.send(Arc::new(ring));
        Ok(())
    }

    /// Records a call that ended, as the switch's live events tell it: the same event id as
    /// the CDR line of the call (source `phone/cdr`, the switch's `uniqueid`) and no
    /// fingerprint, so whichever comes second is the same contact, not a conflict.
    pub async fn record_live_call(&self, actor: System, mut call: pb::Event) -> Result<()> {
        actor.allowed(&[System::Adapters], "record calls")?;
        call.fingerprint.clear();
        self.append_contacts(actor, std::slice::from_ref(&call))
            .await?;
        Ok(())
    }

    /// The calls ringing at the scope's agent's extensions from now on, each with who calls,
    /// until `stopping` or the receiver goes away. For agents only (not élus, the DPO or a
    /// hall device); each record shown is in the read trail.
    pub fn watch_calls(
        &self,
        scope: &Scope,
        mut stopping: watch::Receiver<bool>,
    ) -> Result<mpsc::Receiver<Result<Pop>>> {
        let tenant = scope.commune().to_string();
        self.enter(scope, &tenant)?;
        let agent = scope.agent_id();
        if agent.is_empty() && !scope.is_open_visitor() {
            return Err(Error::Forbidden("seul un agent reçoit des appels".into()));
        }
        let mut rx = self.rings.subscribe();
        let (tx, out) = mpsc::channel(16);
        let app = self.clone();
        let scope = scope.clone();
        tokio::spawn(async move {
            loop {
                let ring = tokio::select! {
                    _ = tx.closed() => return,
                    _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => return,
                    r = rx.recv() => r,
                };
                let ring = match ring {
                    Ok(r) => r,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx
                            .send(Err(Error::Unavailable(
                                "des appels ont été manqués : rechargez la page".into(),
                            )))
                            .await;
                        return;
                    }
                    Err(_) => return,
                };
                // This agent's rings only (an open hub's visitor sees every ring of the commune).
                if ring.tenant != tenant || (!agent.is_empty() && ring.agent != agent) {
                    continue;
                }
                let pop = app.pop(&scope, &ring);
                if tx.send(pop).await.is_err() {
                    return;
                }
            }
        });
        Ok(out)
    }

    /// Who calls, resolved under `scope`.
    fn pop(&self, scope: &Scope, ring: &Ring) -> Result<Pop> {
        let caller = match ring.caller.as_deref().and_then(normalize_phone) {
            None => Caller::Withheld,
            Some(e164) => {
                let number = contacthub_core::identity::display_phone(&e164);
                let mut records: Vec<(String, String)> = Vec::new();
                for h in self.store.holders(&ring.tenant, "phone", &e164)? {
                    let id = self.store.canonical(&ring.tenant, &h)?;
                    if records.iter().any(|(r, _)| *r == id) {
                        continue;
                    }
                    let Some(c) = self.store.citizen(&ring.tenant, &id)? else {
                        continue;
                    };
                    if c.erased.is_some() {
                        continue;
                    }
                    self.read_by(scope, &id, Reading::Record, "appel entrant")?;
                    records.push((id, c.display_name));
                }
                match records.len() {
                    0 => Caller::Unknown { number },
                    1 => {
                        let (citizen_id, name) = records.remove(0);
                        Caller::Known {
                            number,
                            citizen_id,
                            name,
                        }
                    }
                    _ => Caller::Candidates { number, records },
                }
            }
        };
        Ok(Pop {
            call: ring.call.clone(),
            caller,
            state: ring.state,
            at_us: ring.at_us,
            contact_event_id: ring.contact_event_id.clone(),
        })
    }

    /// The agent who took a call says what it was about: its timeline line shows the motive
    /// (`subject`) and `category` instead of a bare call. The call must be recorded and in a
    /// citizen's timeline, and the agent must read it whole (need-to-know). Returns the
    /// citizen whose timeline it is.
    pub async fn note_contact(
        &self,
        scope: &Scope,
        contact_event_id: &str,
        category: pb::Category,
        subject: &str,
    ) -> Result<String> {
        let tenant = scope.commune().to_string();
        self.enter(scope, &tenant)?;
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(Error::Invalid("le motif de l'appel manque".into()));
        }
        contacthub_core::limits::check_chars(
            "motif",
            subject,
            contacthub_core::limits::SUBJECT_CHARS,
        )
        .map_err(Error::Invalid)?;
        let entry = self
            .store
            .applied_entry(&tenant, contact_event_id)?
            .ok_or_else(|| {
                Error::NotFound(
                    "cet appel n'est pas encore enregistré, ou il attend d'être rattaché à une fiche (« À rattacher »)"
                        .into(),
                )
            })?;
        self.contact_for_work(scope, &tenant, &entry)?;
        let mut e = self.internal_event(
            "desk",
            &tenant,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            pb::event::Payload::ContactNoted(pb::ContactNoted {
                contact_event_id: entry.event_id.clone(),
                category: category as i32,
            }),
        );
        e.personal = Some(pb::Personal {
            party: Some(pb::Party {
                citizen_id: entry.citizen_id.clone(),
                ..Default::default()
            }),
            subject: subject.to_string(),
            ..Default::default()
        });
        self.write(&e).await?;
        Ok(entry.citizen_id)
    }
}
