//! The read model's key families and what each holds of a person, pinned: for each kind of
//! event a hub writes (the demo commune with its agents' follow-up, a merge, an erasure; a
//! cluster's shared read trail is `rd/`, see `audit::on_a_cluster…`), the families its fold writes (a snapshot), and for each
//! family whether it holds personal data (names, numbers, addresses, texts: erased by making
//! the read model again from the log), ids only, or nothing of anyone. A new family fails
//! this test until it is classified here, so none slips personal data in unnoticed. What each
//! kind of event of the demo's mix costs (keys and bytes per family) is kept in
//! `docs/keys-per-event.md`, compared likewise (`UPDATE_EXPECT=1` rewrites both after a
//! reviewed change of the fold).

use contacthub_app::auth::Access;
use contacthub_app::commands;
use contacthub_core::fold::{apply, Kv, Outcome, Position};
use contacthub_core::keys::Family;
use contacthub_core::tenant::Tenants;
use contacthub_tests::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a family holds of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Names, numbers, e-mail or postal addresses, texts: in its keys or values.
    Personal,
    /// Ids only (citizens', agents', events', messages'), addresses of callers (IP).
    Ids,
    /// Nothing of anyone (positions, numbering, format, counters by service or street).
    Nothing,
}

/// Every family of [`crate::keys`], classified.
const FAMILIES: &[(&str, Holds)] = &[
    ("ac/", Holds::Nothing), // the accueil's day counts: calls, web contacts by hour, services
    ("ad/", Holds::Ids),     // the commune's agenda: start, appointment id
    ("am/", Holds::Ids),     // an appointment: kind, start, citizen id, status
    ("as/", Holds::Ids),     // a slot's bookings
    ("au/", Holds::Ids),     // a person's appointments
    ("an/", Holds::Personal), // a written answer: its text, its recipient
    ("ar/", Holds::Ids),
    ("ce/", Holds::Ids),
    ("ci/", Holds::Personal), // the citizen record
    ("ck/", Holds::Nothing),
    ("cn/", Holds::Nothing),
    ("co/", Holds::Personal), // a letter's state: its sender, notes
    ("cs/", Holds::Nothing),
    ("dd/", Holds::Ids),
    ("dl/", Holds::Personal), // a dead letter's raw bytes
    ("dx/", Holds::Personal), // search words (one typo away), in the key
    ("el/", Holds::Ids),      // whom an élu met at a permanence: élu, time, contact id
    ("ev/", Holds::Personal), // position, time, keyed fingerprint, citizen id; what a contact wrote, whole
    ("hh/", Holds::Personal), // household role
    ("id/", Holds::Personal), // identifiers (phone, e-mail), in the key
    ("ih/", Holds::Personal), // every holder of an identifier, in the key
    ("ka/", Holds::Nothing),  // the catalogue's validated answers
    ("ks/", Holds::Ids),
    ("lc/", Holds::Ids),
    ("mf/", Holds::Nothing),
    ("mg/", Holds::Ids),
    ("nq/", Holds::Ids),      // notices to send: due time, notice id
    ("nt/", Holds::Personal), // a notice: its recipient and text
    ("nx/", Holds::Personal), // search words, in the key
    ("ob/", Holds::Ids),
    ("od/", Holds::Ids),
    ("pf/", Holds::Ids), // a portal's file (its URL or report id) → its request
    ("pm/", Holds::Ids),
    ("pq/", Holds::Ids),
    ("ra/", Holds::Personal), // a contact waiting for an agent, with its party
    ("rc/", Holds::Ids),
    ("rd/", Holds::Ids), // read-trail lines: ids and the callers' addresses
    ("re/", Holds::Ids),
    ("rn/", Holds::Nothing),
    ("rp/", Holds::Ids),      // the requests a citizen asked
    ("rq/", Holds::Personal), // a request: subject, on whose behalf, resolution
    ("rt/", Holds::Ids),
    ("sk/", Holds::Ids),
    ("sq/", Holds::Nothing),
    ("sr/", Holds::Ids),
    ("st/", Holds::Nothing), // counters: by service, channel, street (a place, not a person)
    ("sx/", Holds::Personal), // a phone number that answered STOP, in the key
    ("tk/", Holds::Personal), // a ticket of the waiting line: its person, an « autre » word
    ("tl/", Holds::Personal), // timeline lines: who, subject, summary
    ("tn/", Holds::Nothing), // ticket numbering per site and day
    ("ua/", Holds::Ids),     // a citizens' space account (a keyed hash): its citizen or proposal
    ("uc/", Holds::Ids),     // a citizen's accounts
    ("up/", Holds::Personal), // an account for an agent: the identity FranceConnect gave
];

type Mem = BTreeMap<Vec<u8>, Vec<u8>>;

/// A store that records the keys each event's fold writes (bytes of key and value of the
/// last write of each).
struct Recording<'a> {
    inner: &'a mut Mem,
    written: &'a RefCell<BTreeMap<Vec<u8>, usize>>,
}

impl Kv for Recording<'_> {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        Kv::get(&*self.inner, key)
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.written
            .borrow_mut()
            .insert(key.clone(), key.len() + value.len());
        Kv::put(&mut *self.inner, key, value);
    }
    fn remove(&mut self, key: Vec<u8>) {
        Kv::remove(&mut *self.inner, key);
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> contacthub_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Kv::scan_prefix(&*self.inner, prefix, limit)
    }
}

/// What the events of one kind wrote, summed.
#[derive(Default)]
struct Cost {
    events: u64,
    keys: u64,
    bytes: u64,
    families: BTreeMap<Family, u64>,
    /// Keys of shared families ([`Family::shared`]): written once per batch of events.
    shared: u64,
}

impl Cost {
    fn add(&mut self, written: BTreeMap<Vec<u8>, usize>) {
        self.events += 1;
        for (key, bytes) in written {
            let family = Family::of(&key).expect("every key has a family");
            if family.shared() {
                self.shared += 1;
                continue;
            }
            self.keys += 1;
            self.bytes += bytes as u64;
            *self.families.entry(family).or_default() += 1;
        }
    }
}

/// `docs/keys-per-event.md`: the cost of each kind of event, as a mean per event.
fn cost_report(costs: &BTreeMap<String, Cost>) -> String {
    let mean = |n: u64, of: u64| n as f64 / of.max(1) as f64;
    // Two decimals at most, without trailing zeros.
    let short = |x: f64| {
        if x > 0.0 && x < 0.005 {
            return "<0.01".to_string();
        }
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let mut out = String::from(
        "# Keys each event writes\n\n\
         What folding each kind of event writes in the read model, as a mean per event: distinct\n\
         keys (a key written twice by one event counts once), their bytes (key and value, before\n\
         sled's own overhead) and their families (`services/core/src/keys.rs`). Measured by\n\
         `tests/families.rs` over the events `scripts/bench-vs-postgres` projects (the demo's\n\
         generator, seed 42, 40 people per commune, not sealed); the test fails when the fold's\n\
         writes change until this page is rewritten\n\
         (`UPDATE_EXPECT=1 cargo test -p contacthub-tests --test e2e families`) and reviewed.\n\
         Keys that many events rewrite (counters `st/`, numberings `sq/` `cs/` `rn/` `cn/`\n\
         `tn/`, the accueil's day `ac/`, the checkpoint `ck/`) are written once per batch of\n\
         events by the projector: they are counted apart, as shared keys.\n\n\
         | event | events | keys per event | bytes per event | shared keys | keys by family |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    let row = |name: &str, c: &Cost| {
        let families: Vec<String> = c
            .families
            .iter()
            .map(|(f, n)| {
                let prefix = String::from_utf8_lossy(f.prefix()).into_owned();
                format!("`{prefix}` {}", short(mean(*n, c.events)))
            })
            .collect();
        format!(
            "| {name} | {} | {} | {:.0} | {} | {} |\n",
            c.events,
            short(mean(c.keys, c.events)),
            mean(c.bytes, c.events),
            short(mean(c.shared, c.events)),
            families.join(" · ")
        )
    };
    let mut all = Cost::default();
    for (kind, c) in costs {
        out += &row(kind, c);
        all.events += c.events;
        all.keys += c.keys;
        all.bytes += c.bytes;
        all.shared += c.shared;
    }
    out += &row("**all**", &all);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_family_is_classified_and_what_each_kind_of_event_writes_is_pinned() {
    let hub = TestHub::start(&Backend::Embedded).await;
    contacthub::demo::load_demo(&hub.hub, 7, 12).await.unwrap();
    // What the demo does not do: a merge…
    let visitor = Access::Open.scope(None, GIVORS).unwrap();
    let some = hub.store.citizens(GIVORS).unwrap();
    let (a, b) = (some[0].citizen_id.clone(), some[1].citizen_id.clone());
    hub.hub
        .merge_citizens(
            &visitor,
            &commands::MergeCitizens {
                citizen_id: b.clone(),
                into_citizen_id: a.clone(),
                reason: "doublon".into(),
            },
        )
        .await
        .unwrap();
    // …an unmerge and a merge again, a correction, two records said to be different people,
    // a written answer.
    hub.hub
        .unmerge_citizen(
            &visitor,
            &commands::UnmergeCitizen {
                citizen_id: b.clone(),
                reason: "erreur".into(),
            },
        )
        .await
        .unwrap();
    let with_address = some[2..]
        .iter()
        .find(|x| x.identity.as_ref().is_some_and(|i| !i.addresses.is_empty()))
        .expect("a record with a postal address")
        .clone();
    let c = with_address.citizen_id.clone();
    let d = some[2..]
        .iter()
        .find(|x| x.citizen_id != c)
        .unwrap()
        .citizen_id
        .clone();
    let mut corrected = with_address.identity.clone().unwrap();
    corrected.usage_name = "Corrigé".into();
    hub.hub
        .update_citizen(
            &visitor,
            &commands::UpdateCitizen {
                citizen_id: c.clone(),
                identity: Some(corrected),
                idempotency_key: "families-update".into(),
            },
        )
        .await
        .unwrap();
    hub.hub
        .dismiss_duplicate(
            &visitor,
            &commands::DismissDuplicate {
                citizen_id: c.clone(),
                other_citizen_id: d,
                reason: "homonymes".into(),
            },
        )
        .await
        .unwrap();
    let reference = hub
        .hub
        .open_request(
            &visitor,
            &commands::OpenRequest {
                subject: "Question".into(),
                category: contacthub_core::pb::Category::EtatCivil,
                service: "etat-civil".into(),
                citizen_id: c,
                idempotency_key: "families-request".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference;
    hub.hub
        .send_answer(
            &visitor,
            &commands::ComposeAnswer {
                reference,
                channel: contacthub_core::pb::Channel::Courrier,
                text: "Réponse".into(),
                idempotency_key: "families-answer".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    hub.hub
        .merge_citizens(
            &visitor,
            &commands::MergeCitizens {
                citizen_id: b,
                into_citizen_id: a.clone(),
                reason: "doublon".into(),
            },
        )
        .await
        .unwrap();
    hub.hub
        .erase_citizen(
            &visitor,
            &commands::EraseCitizen {
                citizen_id: a,
                reason: "test".into(),
            },
        )
        .await
        .unwrap();
    hub.settle().await;

    // The hub's log, folded again, each event's writes recorded.
    let tenants = Tenants::builtin();
    let mut kv = Mem::new();
    let mut by_kind: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in contacthub_tests::canary::log_records(hub.log.as_ref()).await {
        let kind = r
            .record
            .headers
            .iter()
            .find(|(k, _)| k == contacthub_core::event::HEADER_EVENT_TYPE)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let written = RefCell::new(BTreeMap::new());
        let mut recording = Recording {
            inner: &mut kv,
            written: &written,
        };
        let pos = Position {
            partition: r.partition,
            offset: r.offset,
        };
        let outcome = apply(
            &mut recording,
            &tenants,
            pos,
            &r.record.key,
            &r.record.value,
            hub.keys.as_ref(),
        )
        .unwrap();
        assert!(
            !matches!(outcome, Outcome::DeadLettered(_)),
            "{kind}: {outcome:?}"
        );
        let written = written.into_inner();
        by_kind.entry(kind).or_default().extend(
            written
                .keys()
                .map(|k| String::from_utf8_lossy(&k[..3.min(k.len())]).into_owned()),
        );
    }
    let listed: BTreeSet<&str> = FAMILIES.iter().map(|(f, _)| *f).collect();
    let families: BTreeSet<String> = Family::ALL
        .iter()
        .map(|f| String::from_utf8_lossy(f.prefix()).into_owned())
        .collect();
    assert_eq!(
        listed,
        families.iter().map(String::as_str).collect(),
        "FAMILIES classifies every family of keys::Family, and no other"
    );
    let classified: HashMap<&str, Holds> = FAMILIES.iter().copied().collect();
    let mut snapshot = String::new();
    for (kind, families) in &by_kind {
        let shown: Vec<String> = families
            .iter()
            .map(|f| match classified.get(f.as_str()) {
                Some(Holds::Personal) => format!("{f}*"),
                Some(_) => f.clone(),
                None => panic!(
                    "the key family {f} ({kind}) is not in FAMILIES: say what it holds of a person"
                ),
            })
            .collect();
        snapshot.push_str(&format!("{kind}: {}\n", shown.join(" ")));
    }
    // `*`: the family holds personal data (erased by making the read model again).
    expect_test::expect![[r#"
        account_linked: ev/* lc/ st/ tl/* ua/ uc/
        account_proposed: ev/* st/ ua/ up/*
        answer_composed: an/* ar/ ev/* lc/ pq/ rq/* st/ tl/*
        appointment_booked: ad/ am/ as/ au/ ev/* lc/ st/ tl/*
        catalogue_answer_published: ev/* ka/ st/
        citizen_erased: ci/* ev/* lc/ st/ tl/*
        citizen_registered: ci/* dx/* ev/* id/* ih/* ks/ lc/ nx/* sk/ st/ tl/*
        citizen_updated: ci/* dx/* ev/* lc/ nx/* st/ tl/*
        courrier: ce/ ci/* co/* ev/* ks/ lc/ od/ rc/ re/ rn/ rp/ rq/* sk/ sq/ st/ tl/*
        courrier_answered: co/* ev/* lc/ rq/* st/ tl/*
        courrier_routed: co/* ev/* lc/ rq/* st/ tl/*
        desk_visit: ac/ ci/* el/ ev/* id/* ih/* lc/ st/ tl/*
        duplicate_dismissed: dd/ ev/* ks/ lc/ sk/ st/ tl/*
        email: ci/* dx/* ev/* id/* ih/* ks/ lc/ nx/* sk/ sq/ sr/ st/ tl/*
        household_membership: ci/* ev/* hh/* lc/ st/ tl/*
        identity_linked: ci/* ev/* lc/ mg/ st/ tl/*
        identity_unlinked: ci/* ev/* lc/ st/ tl/*
        notice_queued: ev/* lc/ nq/ nt/* st/ tl/*
        phone_call: ac/ ci/* ev/* id/* ih/* ks/ lc/ ra/* sk/ sq/ st/ tl/*
        request_answered: ev/* lc/ rq/* st/ tl/*
        request_assigned: ev/* lc/ rq/* st/ tl/*
        request_closed: ev/* lc/ rq/* st/ tl/*
        request_grouped: ev/* rq/* st/
        request_opened: ev/* lc/ od/ rc/ re/ rn/ rp/ rq/* rt/ sq/ st/ tl/*
        request_reopened: ev/* lc/ od/ rq/* st/ tl/*
        request_status_changed: ev/* lc/ rq/* st/ tl/*
        sms: ci/* ev/* id/* ih/* ks/ lc/ sk/ sq/ sr/ st/ tl/*
        ticket_called: ev/* st/ tk/*
        ticket_closed: ev/* st/ tk/*
        ticket_issued: ev/* st/ tk/* tn/
        ticket_started: ev/* st/ tk/*
        web_form: ac/ ci/* dx/* ev/* ih/* ks/ lc/ nx/* od/ pf/ rc/ re/ rn/ rp/ rq/* sk/ sq/ sr/ st/ tl/*
    "#]]
    .assert_eq(&snapshot);
    hub.stop().await;
}

/// The cost of each kind of event of the demo's mix, pinned in `docs/keys-per-event.md`.
#[test]
fn what_each_kind_of_event_costs_is_pinned() {
    let tenants = Tenants::builtin();
    let cfg = contacthub_core::demo::DemoConfig {
        people_per_tenant: 40,
        ..Default::default()
    };
    let mut kv = Mem::new();
    let mut costs: BTreeMap<String, Cost> = BTreeMap::new();
    for (offset, e) in contacthub_core::demo::events(&cfg, &tenants).enumerate() {
        let kind = e.payload.as_ref().map_or("", contacthub_core::event::kind);
        let written = RefCell::new(BTreeMap::new());
        let mut recording = Recording {
            inner: &mut kv,
            written: &written,
        };
        let pos = Position {
            partition: 0,
            offset: offset as u64,
        };
        let outcome = apply(
            &mut recording,
            &tenants,
            pos,
            e.tenant.as_bytes(),
            &prost::Message::encode_to_vec(&e),
            &contacthub_core::seal::NoKeys,
        )
        .unwrap();
        assert!(
            matches!(outcome, Outcome::Applied { .. }),
            "{kind}: {outcome:?}"
        );
        costs
            .entry(kind.to_string())
            .or_default()
            .add(written.into_inner());
    }
    expect_test::expect_file!["../docs/keys-per-event.md"].assert_eq(&cost_report(&costs));
}
