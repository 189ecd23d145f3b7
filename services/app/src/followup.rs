//! Following a request without an account (« suivi d'une demande »): each request has a
//! follow-up code, derived from its reference with the hub's master key (the same on every
//! hub of a log, never stored, nothing to replay), printed on receipts and shown to agents;
//! with its reference it tells where the request stands — its state, service and dates,
//! nothing personal. A wrong code says no more than an unknown reference, and counts as a
//! failed attempt of its source address (see [`crate::throttle`]).

use crate::{App, Error, Result};
use contacthub_core::pb::{Request, RequestStatus};
use contacthub_core::render::status_fr;
use contacthub_proto::ts;
use std::net::IpAddr;

/// The signs of a code: no O, 0, I or 1 to misread.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters of a code (two groups of four: 40 bits).
const CODE_CHARS: usize = 8;

/// Where a request stands, as its reference and code tell it to anyone holding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub reference: String,
    /// The commune's name.
    pub commune: String,
    /// The service handling it, by name (empty for a confidential service).
    pub service: String,
    pub status: RequestStatus,
    /// Its state in plain French (« reçue », « répondue »…).
    pub status_fr: &'static str,
    pub opened_us: Option<i64>,
    pub due_us: Option<i64>,
    pub answered_us: Option<i64>,
    pub closed_us: Option<i64>,
}

/// What a code looks like once typed: letters upper case, spaces and dashes gone.
fn normalized(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

impl App {
    /// The follow-up code of request `reference` of `tenant`, « ABCD-EFGH ».
    pub(crate) fn follow_up_code(&self, tenant: &str, reference: &str) -> String {
        let bytes = self.keyed_hash(b"contacthub follow-up key v1", &[tenant, reference]);
        let bits = bytes[..5]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let code: String = (0..CODE_CHARS)
            .map(|i| ALPHABET[((bits >> (5 * (CODE_CHARS - 1 - i))) & 31) as usize] as char)
            .collect();
        format!("{}-{}", &code[..4], &code[4..])
    }

    /// Where request `reference` stands, for whoever gives its follow-up code, from `source`.
    /// Each attempt of an address is counted before the code is checked (a right one is
    /// forgiven): past ten in a minute the address is refused, the right code too.
    pub fn track_request(
        &self,
        source: Option<IpAddr>,
        reference: &str,
        code: &str,
    ) -> Result<Tracked> {
        if let Some(ip) = source {
            if let Err(wait) = self.follow_ups.reserve(ip) {
                tracing::warn!(source = %ip, "follow-up refused: too many wrong codes from this address");
                return Err(Error::Throttled(wait));
            }
        }
        let reference = reference.trim().to_ascii_uppercase();
        let typed = normalized(code);
        let found = self.request_by_reference(&reference)?;
        // The code is computed whether the reference exists or not (an unknown commune
        // prefix skips only the read): both answers say the same.
        let tenant = found.as_ref().map_or("", |(t, _)| t.as_str());
        let expected = normalized(&self.follow_up_code(tenant, &reference));
        let same = typed.len() == expected.len()
            && typed
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        match found {
            Some((tenant, r)) if same => {
                if let Some(ip) = source {
                    self.follow_ups.forgive(ip);
                }
                Ok(self.tracked(&tenant, r))
            }
            _ => {
                tracing::info!("follow-up: no request for this reference and code");
                Err(Error::NotFound(
                    "aucune demande ne correspond à cette référence et à ce code".into(),
                ))
            }
        }
    }

    /// The request a reference names, in the commune its prefix is (`GIV-D-2026-000123`).
    fn request_by_reference(&self, reference: &str) -> Result<Option<(String, Request)>> {
        if reference.len() > 40 || !contacthub_core::identity::valid_id(reference) {
            return Ok(None);
        }
        let Some(prefix) = reference.split('-').next() else {
            return Ok(None);
        };
        let Some(tenant) = self.tenants.iter().find(|t| t.prefix == prefix) else {
            return Ok(None);
        };
        let Some(r) = self.store.request(&tenant.code, reference)? else {
            return Ok(None);
        };
        // Once everyone who asked is erased, the request answers no one.
        let mut erased = !r.requesters.is_empty();
        for who in &r.requesters {
            erased &= self
                .store
                .citizen(&tenant.code, who)?
                .is_none_or(|c| c.erased.is_some());
        }
        Ok((!erased).then(|| (tenant.code.clone(), r)))
    }

    fn tracked(&self, tenant: &str, r: Request) -> Tracked {
        let commune = self.tenants.get(tenant);
        let micros = |t: &Option<contacthub_proto::Timestamp>| t.as_ref().and_then(ts::to_micros);
        Tracked {
            commune: commune.map(|c| c.name.clone()).unwrap_or_default(),
            // A confidential service's name tells too much to whoever found the receipt.
            service: commune
                .filter(|c| c.service(&r.service).is_none_or(|s| !s.confidential))
                .map(|c| c.service_name(&r.service).to_string())
                .unwrap_or_default(),
            status: r.status(),
            status_fr: status_fr(r.status),
            opened_us: micros(&r.opened_at),
            due_us: micros(&r.due_at),
            answered_us: micros(&r.answered_at),
            closed_us: micros(&r.closed_at),
            reference: r.reference,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_typed_as_one_likes() {
        assert_eq!(normalized(" abcd-efgh "), "ABCDEFGH");
        assert_eq!(normalized("ABCD EFGH"), "ABCDEFGH");
    }
}
