//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench dashboard`):
//! the dashboard of one commune over a year on a read model folded from 1,000,000 events of
//! that year (calls, SMS, e-mails, forms, visits, letters with their circuit, requests opened
//! on every street and answered), through gRPC as an élu's screen calls it: one client with
//! one call in flight on its own connection, then 8; p50 / p99.
//!
//! Options: `--events N` (default 1,000,000).

use contacthub_core::courrier::registration_year;
use contacthub_core::event::{contact, event_id, SCHEMA_VERSION};
use contacthub_core::pb::{self, event::Payload};
use contacthub_proto::ts;
use contacthub_proto::v1::dashboard_service_client::DashboardServiceClient;
use contacthub_tests::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000_000;
const STREETS: &[&str] = &[
    "rue Jean Jaurès",
    "rue Émile Zola",
    "avenue Charles de Gaulle",
    "rue Victor Hugo",
    "place de la Liberté",
    "rue de la République",
    "boulevard Gambetta",
    "rue Pasteur",
    "chemin des Saules",
    "allée des Tilleuls",
];
const SERVICES: &[(&str, pb::Category)] = &[
    ("etat-civil", pb::Category::EtatCivil),
    ("education", pb::Category::Scolaire),
    ("ccas", pb::Category::Ccas),
    ("voirie", pb::Category::ServicesTechniques),
    ("urbanisme", pb::Category::Urbanisme),
    ("accueil", pb::Category::Other),
];

fn internal(id: &str, at: i64, reference: &str, payload: Payload) -> pb::Event {
    pb::Event {
        event_id: event_id(GIVORS, "bench", id),
        tenant: GIVORS.into(),
        channel: pb::Channel::BackOffice as i32,
        occurred_at: Some(ts::from_micros(at)),
        recorded_at: Some(ts::from_micros(at)),
        schema_version: SCHEMA_VERSION,
        direction: pb::Direction::Internal as i32,
        source: "bench".into(),
        source_id: id.into(),
        agent_id: "agent-1".into(),
        request_id: reference.into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// A year of Givors in log order. Request references are predicted as the projector gives
/// them (per registration year, in log order), so answers can name them.
fn year_of_events(n: usize, start: i64) -> Vec<pb::Event> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut numbers: BTreeMap<i32, u64> = BTreeMap::new();
    let mut next_reference = |recorded: i64| {
        let year = registration_year(recorded);
        let n = numbers.entry(year).or_insert(0);
        *n += 1;
        format!("GIV-D-{year}-{n:06}")
    };
    let mut out = Vec::with_capacity(n + 16);
    let mut k = 0usize;
    while out.len() < n {
        k += 1;
        // Spread evenly over the year, in order.
        let at = start + (out.len() as i64 * 365 * DAY) / n as i64;
        let phone = format!("+33 6 {:08}", rng.gen_range(0..40_000));
        let party = pb::Party {
            phone,
            ..Default::default()
        };
        let id = format!("e{k}");
        let (service, category) = SERVICES[rng.gen_range(0..SERVICES.len())];
        match rng.gen_range(0..100) {
            0..=44 => {
                use pb::phone_call::Disposition as D;
                let payload = Payload::PhoneCall(pb::PhoneCall {
                    disposition: if rng.gen_bool(0.15) {
                        D::NoAnswer
                    } else {
                        D::Answered
                    } as i32,
                    duration_seconds: 90,
                    billed_seconds: 80,
                    bounced_to_accueil: rng.gen_bool(0.1),
                    ..Default::default()
                });
                out.push(contact(GIVORS, "bench", &id, at, at, payload, party));
            }
            45..=59 => {
                let payload = Payload::Sms(pb::Sms {
                    message_sid: format!("SM{k:032x}"),
                    segments: 1,
                    ..Default::default()
                });
                out.push(contact(GIVORS, "bench", &id, at, at, payload, party));
            }
            60..=74 => {
                let payload = Payload::Email(pb::Email {
                    message_id: format!("<{k}@example.fr>"),
                    mailbox: "contact".into(),
                    ..Default::default()
                });
                let mut e = contact(GIVORS, "bench", &id, at, at, payload, party);
                e.category = category as i32;
                out.push(e);
            }
            75..=84 => {
                let payload = Payload::DeskVisit(pb::DeskVisit {
                    desk: "accueil-hdv".into(),
                    duration_minutes: 10,
                    ..Default::default()
                });
                out.push(contact(GIVORS, "bench", &id, at, at, payload, party));
            }
            85..=92 => {
                // A letter, routed the next day, most answered within 40 days.
                let chrono = format!("GIV-B-{k:07}");
                let payload = Payload::Courrier(pb::Courrier {
                    kind: 1,
                    chrono: chrono.clone(),
                    addressed_to_service: service.into(),
                    ..Default::default()
                });
                let mut e = contact(GIVORS, "bench", &id, at, at, payload, party);
                e.category = category as i32;
                out.push(e);
                next_reference(at);
                out.push(internal(
                    &format!("{id}-r"),
                    at + DAY,
                    "",
                    Payload::CourrierRouted(pb::CourrierRouted {
                        chrono: chrono.clone(),
                        service: service.into(),
                        note: String::new(),
                    }),
                ));
                if rng.gen_bool(0.85) {
                    out.push(internal(
                        &format!("{id}-a"),
                        at + rng.gen_range(1..40) * DAY,
                        "",
                        Payload::CourrierAnswered(pb::CourrierAnswered {
                            chrono,
                            answer_channel: pb::Channel::Courrier as i32,
                            answer_ref: format!("S{k}"),
                        }),
                    ));
                }
            }
            _ => {
                // A request opened by an agent about a street, most answered.
                let reference = next_reference(at);
                let mut e = internal(
                    &id,
                    at,
                    "",
                    Payload::RequestOpened(pb::RequestOpened {
                        service: service.into(),
                        on_behalf_of: "conseil de quartier".into(),
                        ..Default::default()
                    }),
                );
                e.category = category as i32;
                e.personal = Some(pb::Personal {
                    subject: "Signalement".into(),
                    location: Some(pb::Address {
                        number: "1".into(),
                        street: STREETS[rng.gen_range(0..STREETS.len())].into(),
                        ..Default::default()
                    }),
                    party: Some(pb::Party {
                        name: "conseil de quartier".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                out.push(e);
                if rng.gen_bool(0.8) {
                    out.push(internal(
                        &format!("{id}-a"),
                        at + rng.gen_range(1..30) * DAY,
                        &reference,
                        Payload::RequestAnswered(pb::RequestAnswered {
                            answer_channel: pb::Channel::Email as i32,
                            answer_ref: format!("S{k}"),
                            ..Default::default()
                        }),
                    ));
                }
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let n = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let start = at(2025, 12, 1, 0, 0);
    let events = year_of_events(n, start);
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
    let dead = hub
        .store
        .counter(&contacthub_core::keys::Counter::DeadLetters)
        .unwrap();
    println!(
        "{} events of one commune over a year folded in {:.1} s ({} dead letters)",
        events.len(),
        started.elapsed().as_secs_f64(),
        dead
    );
    hub.store.flush().unwrap();
    hub.set_clock(at(2026, 11, 30, 12, 0));
    let ask = pb::GetDashboardRequest {
        tenant: GIVORS.into(),
        from_month: "2025-12".into(),
        to_month: "2026-11".into(),
    };
    for clients in [1usize, 8] {
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..clients {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", hub.addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let ask = ask.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = DashboardServiceClient::new(channel);
                let mut lat = Vec::new();
                let mut figures = None;
                for i in 0..120 {
                    let t = Instant::now();
                    let d = client
                        .get_dashboard(ask.clone())
                        .await
                        .unwrap()
                        .into_inner();
                    // The first 20 warm the connection and caches.
                    if i >= 20 {
                        lat.push(t.elapsed());
                    }
                    figures = Some(d);
                }
                (lat, figures)
            }));
        }
        let mut all = Vec::new();
        let mut last = None;
        for t in tasks {
            let (lat, d) = t.await.unwrap();
            all.extend(lat);
            last = d;
        }
        let wall = started.elapsed();
        all.sort();
        let d = last.unwrap();
        let whole = d
            .rows
            .iter()
            .find(|r| r.month.is_empty() && r.dimension == "commune")
            .and_then(|r| r.figures)
            .unwrap();
        println!(
            "GetDashboard (one commune, 12 months, {} rows; {} contacts, {} requests opened, {} answered, {} overdue now; {clients} client(s), one call in flight each): p50 {} p99 {} ({:.0} calls/s)",
            d.rows.len(),
            whole.contacts_received,
            whole.requests_opened,
            whole.requests_answered,
            whole.overdue_now,
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            all.len() as f64 / wall.as_secs_f64()
        );
    }
    hub.stop().await;
}
