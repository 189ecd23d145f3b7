//! Signing in to the citizens' space without FranceConnect: a one-time code sent to a phone
//! number or e-mail address the town hall holds on exactly one record of the commune (what
//! online forms declared does not count), typed back within 10 minutes. The answer to asking
//! is the same, and as quick, whether the town hall holds the address or not (the code leaves
//! apart); asking counts against the browser's address, and against the destination (3 codes
//! a quarter of an hour).

use super::details::{destination, holds};
use super::message::SOURCE;
use super::Citizen;
use crate::notify::Destination;
use crate::{App, Error, Result};
use contacthub_core::pb::{self, event::Payload};
use std::net::IpAddr;

/// What the codes of a sign-in are kept under.
fn key(tenant: &str, to: &Destination) -> String {
    match to {
        Destination::Email(m) => format!("signin/{tenant}/{m}"),
        Destination::Sms(n) => format!("signin/{tenant}/{n}"),
    }
}

impl App {
    /// Sends a sign-in code to `to` when one live record of `tenant` holds it; `Ok` either
    /// way (who asks learns nothing of who is known).
    pub async fn code_sign_in_start(
        &self,
        tenant: &str,
        source: Option<IpAddr>,
        to: &str,
    ) -> Result<()> {
        self.tenant(tenant)?;
        let dest = destination(to)?;
        if let Some(ip) = source {
            if let Err(wait) = self.follow_ups.reserve(ip) {
                tracing::warn!(source = %ip, "citizens' space: sign-in codes refused: too many from this address");
                return Err(Error::Throttled(wait));
            }
        }
        let (kind, value) = match &dest {
            Destination::Email(m) => ("email", m.as_str()),
            Destination::Sms(n) => ("phone", n.as_str()),
        };
        let mut records = Vec::new();
        for id in self.store.holders(tenant, kind, value)? {
            let id = self.store.canonical(tenant, &id)?;
            let Some(c) = self.store.citizen(tenant, &id)? else {
                continue;
            };
            let typed = c.identity.as_ref().is_some_and(|i| holds(i, &dest));
            if c.erased.is_none() && typed && !records.contains(&id) {
                records.push(id);
            }
        }
        let [citizen] = records.as_slice() else {
            tracing::info!(
                tenant,
                records = records.len(),
                "citizens' space: no sign-in code sent (not exactly one record holds the address)"
            );
            return Ok(());
        };
        let code = self.codes.issue(&key(tenant, &dest), &dest, citizen)?;
        // Sent apart, so that the answer takes as long whether a code left or not.
        let (app, tenant) = (self.clone(), tenant.to_string());
        tokio::spawn(async move {
            let _ = app.send_code_to(&tenant, &dest, &code).await;
        });
        Ok(())
    }

    /// Signs the person in with the code sent to `to`: their account (linked to the record
    /// the code was sent for, the first time).
    pub async fn code_sign_in_finish(&self, tenant: &str, to: &str, code: &str) -> Result<Citizen> {
        self.tenant(tenant)?;
        let dest = destination(to)?;
        let (dest, citizen) = self.codes.check(&key(tenant, &dest), code)?;
        let record = self.writable_citizen(tenant, &citizen)?;
        let account = self.account_id(tenant, "code", &citizen);
        let signed = Citizen {
            tenant: tenant.to_string(),
            account: account.clone(),
            given_name: record
                .identity
                .as_ref()
                .and_then(|i| i.first_names.split_whitespace().next())
                .unwrap_or_default()
                .to_string(),
        };
        if self.standing(&signed)?.is_none() {
            let mut e = self.internal_event(
                SOURCE,
                tenant,
                &format!("code/{account}/{}", self.now()),
                "",
                Payload::AccountLinked(pb::AccountLinked {
                    account_id: account,
                    citizen_id: citizen.clone(),
                    basis: pb::account_linked::Basis::OneTimeCode as i32,
                    evidence: vec![match dest {
                        Destination::Email(_) => "email".into(),
                        Destination::Sms(_) => "phone".into(),
                    }],
                    proposal_event_id: String::new(),
                    provider: "code".into(),
                }),
            );
            e.personal = Some(super::about(&citizen));
            self.write(&e).await?;
        }
        tracing::info!(tenant, "citizens' space: signed in with a one-time code");
        Ok(signed)
    }
}
