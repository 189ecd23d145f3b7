//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench accueil`):
//! the accueil report of a large commune (Vaulx-en-Velin: its town hall and its annex) over a
//! year — every ticket of every working day with its call, start and close, the calls and
//! online forms of the same days — asked over gRPC as the desk and the CLI ask it: one client
//! with one call in flight; p50 / p99, and the fold of that year.
//!
//! Options: `--tickets-per-day N` (default 250 across the two sites).

use contacthub_core::accueil::{ticket_id, ticket_number};
use contacthub_core::event::{contact, event_id, SCHEMA_VERSION};
use contacthub_core::pb::{self, event::Payload};
use contacthub_proto::ts;
use contacthub_proto::v1::accueil_service_client::AccueilServiceClient;
use contacthub_tests::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const VAULX: &str = "69256";

fn internal(id: &str, at: i64, payload: Payload) -> pb::Event {
    pb::Event {
        event_id: event_id(VAULX, "bench", id),
        tenant: VAULX.into(),
        channel: pb::Channel::BackOffice as i32,
        occurred_at: Some(ts::from_micros(at)),
        recorded_at: Some(ts::from_micros(at)),
        schema_version: SCHEMA_VERSION,
        direction: pb::Direction::Internal as i32,
        source: "bench".into(),
        source_id: id.into(),
        agent_id: "agent-1".into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// A year of the accueil, day by day in log order.
fn year(per_day: usize) -> Vec<pb::Event> {
    let tenants = contacthub_core::tenant::Tenants::builtin();
    let commune = tenants.get(VAULX).expect("Vaulx-en-Velin");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let motives = [
        pb::Category::EtatCivil,
        pb::Category::Other,
        pb::Category::Scolaire,
        pb::Category::Ccas,
        pb::Category::Urbanisme,
    ];
    let mut out = Vec::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let last = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    while day <= last {
        let weekday = chrono::Datelike::weekday(&day).num_days_from_monday();
        if weekday < 5 && contacthub_core::hours::public_holiday(day).is_none() {
            let opening = |minute: f64| {
                contacthub_core::courrier::paris_local_to_utc_us(day.and_hms_opt(8, 30, 0).unwrap())
                    + (minute * 60e6) as i64
            };
            for (s, site) in commune.sites.iter().enumerate() {
                let n = if s == 0 {
                    per_day * 7 / 10
                } else {
                    per_day * 3 / 10
                };
                let mut arrivals: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..480.0)).collect();
                arrivals.sort_by(|a, b| a.total_cmp(b));
                let mut letters: BTreeMap<char, u64> = BTreeMap::new();
                let mut free = vec![0.0f64; site.counters as usize];
                let mut timed = Vec::new();
                for (k, arrived) in arrivals.into_iter().enumerate() {
                    let motive = motives[rng.gen_range(0..motives.len())];
                    let counter = (1..=site.counters)
                        .filter(|c| site.takes(*c, motive as i32))
                        .min_by(|a, b| free[*a as usize - 1].total_cmp(&free[*b as usize - 1]))
                        .unwrap();
                    let letter = site.letter(motive as i32);
                    let count = letters.entry(letter).or_insert(0);
                    *count += 1;
                    let id = ticket_id(&site.code, day, &ticket_number(letter, *count));
                    let called = arrived.max(free[counter as usize - 1]);
                    let closed = called + rng.gen_range(3.0..15.0);
                    free[counter as usize - 1] = closed;
                    let key = format!("{day}-{}-{k}", site.code);
                    timed.push((
                        arrived,
                        internal(
                            &format!("{key}-i"),
                            opening(arrived),
                            Payload::TicketIssued(pb::TicketIssued {
                                site: site.code.clone(),
                                motive: motive as i32,
                                kiosk: true,
                                letter: letter.to_string(),
                            }),
                        ),
                    ));
                    timed.push((
                        called,
                        internal(
                            &format!("{key}-c"),
                            opening(called),
                            Payload::TicketCalled(pb::TicketCalled {
                                ticket_id: id.clone(),
                                counter,
                            }),
                        ),
                    ));
                    timed.push((
                        called + 0.5,
                        internal(
                            &format!("{key}-s"),
                            opening(called + 0.5),
                            Payload::TicketStarted(pb::TicketStarted {
                                ticket_id: id.clone(),
                            }),
                        ),
                    ));
                    let outcome = if rng.gen_bool(0.75) {
                        pb::ticket_closed::Outcome::Settled
                    } else {
                        pb::ticket_closed::Outcome::Transferred
                    };
                    timed.push((
                        closed,
                        internal(
                            &format!("{key}-x"),
                            opening(closed),
                            Payload::TicketClosed(pb::TicketClosed {
                                ticket_id: id,
                                outcome: outcome as i32,
                                service: if outcome == pb::ticket_closed::Outcome::Transferred {
                                    "etat-civil".into()
                                } else {
                                    String::new()
                                },
                                request_reference: String::new(),
                            }),
                        ),
                    ));
                }
                timed.sort_by(|a, b| a.0.total_cmp(&b.0));
                out.extend(timed.into_iter().map(|(_, e)| e));
            }
            // Calls of the day from a few hundred regular callers.
            for k in 0..per_day {
                let minute = rng.gen_range(0.0..480.0);
                let mut e = contact(
                    VAULX,
                    "bench-call",
                    &format!("{day}-call-{k}"),
                    opening(minute),
                    opening(minute),
                    Payload::PhoneCall(pb::PhoneCall {
                        disposition: if rng.gen_bool(0.8) { 1 } else { 2 },
                        duration_seconds: 120,
                        transferred_to: if rng.gen_bool(0.2) {
                            "etat-civil".into()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    }),
                    pb::Party {
                        phone: format!("+336{:08}", rng.gen_range(0..500)),
                        ..Default::default()
                    },
                );
                e.direction = pb::Direction::Inbound as i32;
                out.push(e);
            }
        }
        day += chrono::Duration::days(1);
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let per_day = args
        .iter()
        .position(|a| a == "--tickets-per-day")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(250);
    let events = year(per_day);
    let hub = TestHub::start(&Backend::Embedded).await;
    let started = Instant::now();
    let mut last = None;
    for chunk in events.chunks(5_000) {
        last = hub.publish(chunk).await.last().copied();
    }
    let last = last.expect("events");
    hub.projector
        .wait_applied(last.partition, last.offset, Duration::from_secs(7_200))
        .await
        .expect("projected");
    println!(
        "{} events of a year of Vaulx-en-Velin's accueil ({per_day} tickets and {per_day} calls a working day) folded in {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    hub.store.flush().unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", hub.addr))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    let mut client = AccueilServiceClient::new(channel);
    let ask = pb::AccueilReportRequest {
        tenant: VAULX.into(),
        from: "2025-12-01".into(),
        to: "2026-11-30".into(),
        site: String::new(),
    };
    let mut lat = Vec::new();
    let mut tickets = 0;
    for i in 0..25 {
        let t = Instant::now();
        let r = client.report(ask.clone()).await.unwrap().into_inner();
        if i >= 5 {
            lat.push(t.elapsed());
        }
        tickets = r.tickets;
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "AccueilService.Report (a year, every site: {tickets} tickets; one client, one call in flight): p50 {:.1} ms p99 {:.1} ms (target < 1 s)",
        p(0.5).as_secs_f64() * 1000.0,
        p(0.99).as_secs_f64() * 1000.0
    );
}
