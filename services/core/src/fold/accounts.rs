//! The citizens' space's accounts: one linked to a citizen record (`ua/`, and `uc/` under the
//! citizen, so an erasure ends it), or proposed to the agents (`up/`, « à rattacher »).

use super::{citizens, get_msg, Folded, Kv};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb;
use crate::Result;
use prost::Message;

/// An account is the citizen's: their timeline says so; a proposal it settles leaves the
/// agents' worklist.
pub(crate) fn linked(kv: &mut impl Kv, v: &Valid, l: &pb::AccountLinked) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    match citizens::record(kv, tenant, &l.citizen_id)? {
        Some(c) if c.erased.is_none() => {}
        _ => {
            return Ok(Err(Invalid(format!(
                "account_linked: no citizen {} to link to",
                l.citizen_id
            ))))
        }
    }
    let mut proposals = vec![l.proposal_event_id.clone()];
    if let Some(old) = get_msg::<pb::Account>(kv, &keys::account(tenant, &l.account_id))? {
        if !old.citizen_id.is_empty() && old.citizen_id != l.citizen_id {
            kv.remove(keys::citizen_account(
                tenant,
                &old.citizen_id,
                &l.account_id,
            ));
        }
        proposals.push(old.proposal_event_id);
    }
    // The identity the provider gave is the person's now: erased with their record.
    for id in proposals.iter().filter(|id| !id.is_empty()) {
        let key = keys::account_proposal(tenant, id);
        if let Some(p) = get_msg::<pb::AccountProposal>(kv, &key)? {
            for k in &p.key_ids {
                super::file_key(kv, tenant, &l.citizen_id, k)?;
            }
        }
        kv.remove(key);
    }
    let account = pb::Account {
        citizen_id: l.citizen_id.clone(),
        proposal_event_id: String::new(),
        since: v.event.occurred_at,
    };
    kv.put(
        keys::account(tenant, &l.account_id),
        account.encode_to_vec(),
    );
    kv.put(
        keys::citizen_account(tenant, &l.citizen_id, &l.account_id),
        Vec::new(),
    );
    Ok(Ok(vec![l.citizen_id.clone()]))
}

/// An account no record matched exactly waits for an agent. One already linked stays so (a
/// proposal written before the link and read after it changes nothing).
pub(crate) fn proposed(
    kv: &mut impl Kv,
    v: &Valid,
    p: &pb::AccountProposed,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::account(tenant, &p.account_id);
    let old = get_msg::<pb::Account>(kv, &key)?;
    if old.as_ref().is_some_and(|a| !a.citizen_id.is_empty()) {
        return Ok(Ok(Vec::new()));
    }
    // The keys of its earlier proposals go with the new one.
    let mut key_ids = Vec::new();
    if let Some(previous) = old.filter(|a| !a.proposal_event_id.is_empty()) {
        let key = keys::account_proposal(tenant, &previous.proposal_event_id);
        if let Some(p) = get_msg::<pb::AccountProposal>(kv, &key)? {
            key_ids = p.key_ids;
        }
        kv.remove(key);
    }
    if !v.key_id.is_empty() && !key_ids.iter().any(|k| k == v.key_id) {
        key_ids.push(v.key_id.to_string());
    }
    let personal = v.event.personal.clone().unwrap_or_default();
    let proposal = pb::AccountProposal {
        event_id: v.event.event_id.clone(),
        account_id: p.account_id.clone(),
        at: v.event.occurred_at,
        identity: personal.identity,
        fields: personal.fields,
        candidates: p.candidate_citizen_ids.clone(),
        exact_matches: p.exact_matches,
        provider: p.provider.clone(),
        key_ids,
    };
    kv.put(
        keys::account_proposal(tenant, &v.event.event_id),
        proposal.encode_to_vec(),
    );
    let account = pb::Account {
        citizen_id: String::new(),
        proposal_event_id: v.event.event_id.clone(),
        since: v.event.occurred_at,
    };
    kv.put(key, account.encode_to_vec());
    Ok(Ok(Vec::new()))
}

/// The accounts of an erased citizen end with their record.
pub(crate) fn end(kv: &mut impl Kv, tenant: &str, citizen: &str) -> Result<()> {
    let prefix = keys::citizen_accounts_prefix(tenant, citizen);
    for (k, _) in kv.scan_prefix(&prefix, usize::MAX)? {
        let account = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        kv.remove(keys::account(tenant, &account));
        kv.remove(k);
    }
    Ok(())
}
