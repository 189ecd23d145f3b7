//! The accueil's waiting line over gRPC and the command line, on both log backends: the
//! kiosk and an agent take tickets, counters call the next one for the motives they take,
//! start and close them (the visit lands in the person's timeline), the hall device reads the
//! line without anyone's name; élus, other communes and the kiosk are refused what is not
//! theirs; the report over a hand-computed day.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_proto::v1::accueil_service_client::AccueilServiceClient;
use contacthub_tests::*;
use tonic::Code;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='accueil-2'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='borne-hdv'\ntoken_sha256='{}'\ntenants=['69091']\nrole='borne'\n\
         [[agent]]\nid='maire'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='accueil-grigny'\ntoken_sha256='{}'\ntenants=['69096']\n\
         [[agent]]\nid='ccas-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("accueil"),
        token_hash("accueil-2"),
        token_hash("borne"),
        token_hash("elu"),
        token_hash("grigny"),
        token_hash("ccas"),
    ))
    .unwrap()
}

/// Monday 7 December 2026, 09:00 Paris, plus `minutes`.
fn monday(minutes: i64) -> i64 {
    at(2026, 12, 7, 8, 0) + minutes * 60_000_000
}

type Line = AccueilServiceClient<tonic::transport::Channel>;

/// The line at Givors' town hall as `token` reads it.
async fn waiting(
    line: &Line,
    token: &str,
) -> Result<tonic::Response<pb::WaitingResponse>, tonic::Status> {
    line.clone()
        .waiting(as_agent(
            token,
            pb::WaitingRequest {
                tenant: GIVORS.into(),
                site: "hdv".into(),
            },
        ))
        .await
}

/// `token` calls the next ticket at Givors' town hall for `counter`.
async fn next(
    line: &Line,
    token: &str,
    counter: u32,
) -> Result<tonic::Response<pb::CallNextResponse>, tonic::Status> {
    line.clone()
        .call_next(as_agent(
            token,
            pb::CallNextRequest {
                tenant: GIVORS.into(),
                site: "hdv".into(),
                counter,
            },
        ))
        .await
}

fn ticket(v: &pb::TicketView) -> pb::Ticket {
    v.ticket.clone().expect("a ticket")
}

async fn the_ticket_flow(backend: Backend) {
    let hub = TestHub::start_with_access(&backend, agents()).await;
    hub.register_marie().await;
    let mut line = AccueilServiceClient::new(hub.channel.clone());
    let issue = |motive: pb::Category, label: &str, citizen: &str| pb::IssueTicketRequest {
        tenant: GIVORS.into(),
        site: "hdv".into(),
        motive: motive as i32,
        motive_label: label.into(),
        citizen_id: citizen.into(),
    };

    // The kiosk takes a ticket for état civil: letter E at Givors' town hall.
    hub.set_clock(monday(0));
    let e1 = line
        .issue_ticket(as_agent("borne", issue(pb::Category::EtatCivil, "", "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket(&e1).number, "E001");
    assert_eq!(ticket(&e1).ticket_id, "hdv-20261207-E001");
    assert!(ticket(&e1).kiosk);
    assert_eq!((e1.ahead, e1.motive_fr.as_str()), (0, "État civil"));
    // The kiosk names no one.
    let refused = line
        .issue_ticket(as_agent(
            "borne",
            issue(pb::Category::EtatCivil, "", "GIV-000900"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // An agent at the pré-accueil names the person; « autre » with a word.
    hub.set_clock(monday(2));
    let a1 = line
        .issue_ticket(as_agent(
            "accueil",
            issue(pb::Category::Other, "stationnement", "GIV-000900"),
        ))
        .await
        .unwrap()
        .into_inner();
    let a1t = ticket(&a1);
    assert_eq!((a1t.number.as_str(), a1t.seq), ("A001", 2));
    assert_eq!(a1.motive_fr, "Autre : stationnement");
    assert_eq!(a1.ahead, 1, "E001 is before");
    // Someone nobody knows, a site the commune does not have, another commune, an élu.
    for (token, req, code) in [
        (
            "accueil",
            issue(pb::Category::Other, "", "GIV-999999"),
            Code::NotFound,
        ),
        (
            "accueil",
            pb::IssueTicketRequest {
                site: "annexe".into(),
                ..issue(pb::Category::Scolaire, "", "")
            },
            Code::NotFound,
        ),
        (
            "accueil",
            issue(pb::Category::Scolaire, "un mot", ""),
            Code::InvalidArgument,
        ),
        (
            "grigny",
            issue(pb::Category::Scolaire, "", ""),
            Code::PermissionDenied,
        ),
        (
            "elu",
            issue(pb::Category::Scolaire, "", ""),
            Code::PermissionDenied,
        ),
    ] {
        let e = line.issue_ticket(as_agent(token, req)).await.unwrap_err();
        assert_eq!(e.code(), code, "{token}: {e:?}");
    }

    // The hall device reads the line, without the person or the word of « autre ».
    let seen = waiting(&line, "borne").await.unwrap().into_inner();
    assert_eq!(seen.site_name, "Hôtel de ville");
    let numbers: Vec<String> = seen.waiting.iter().map(|v| ticket(v).number).collect();
    assert_eq!(numbers, ["E001", "A001"]);
    assert!(seen
        .waiting
        .iter()
        .all(|v| ticket(v).citizen_id.is_empty() && ticket(v).motive_label.is_empty()));
    assert_eq!(seen.waiting[1].motive_fr, "Autre");
    let by_agent = waiting(&line, "accueil").await.unwrap().into_inner();
    assert_eq!(ticket(&by_agent.waiting[1]).citizen_id, "GIV-000900");
    assert_eq!(
        waiting(&line, "elu").await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // Counter 3 takes état civil only; counter 1 takes everyone, oldest first.
    assert_eq!(
        next(&line, "borne", 1).await.unwrap_err().code(),
        Code::PermissionDenied,
        "the kiosk calls no one"
    );
    hub.set_clock(monday(5));
    let at3 = next(&line, "accueil-2", 3)
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        (ticket(&at3).number.as_str(), ticket(&at3).counter),
        ("E001", 3)
    );
    assert_eq!(at3.state_fr, "appelé au guichet 3");
    assert_eq!(at3.waited_minutes, 5);
    // Counter 3 has E001 open: it closes it before calling another.
    let busy = next(&line, "accueil-2", 3).await.unwrap_err();
    assert_eq!(busy.code(), Code::AlreadyExists, "{busy:?}");
    assert!(busy.message().contains("E001 en cours"), "{busy:?}");

    hub.set_clock(monday(8));
    let at1 = next(&line, "accueil", 1)
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(ticket(&at1).number, "A001");
    assert_eq!(
        next(&line, "accueil", 9).await.unwrap_err().code(),
        Code::InvalidArgument,
        "Givors' town hall has three counters"
    );
    // The screen shows the latest call first.
    let screen = waiting(&line, "borne").await.unwrap().into_inner();
    let calls: Vec<(String, u32)> = screen
        .at_counters
        .iter()
        .map(|v| (ticket(v).number, ticket(v).counter))
        .collect();
    assert_eq!(calls, [("A001".into(), 1), ("E001".into(), 3)]);
    assert!(screen.waiting.is_empty());

    // A001 is at counter 1 and sent to urbanisme; E001 never came.
    let step = |id: &str| pb::TicketRequest {
        tenant: GIVORS.into(),
        ticket_id: id.into(),
    };
    hub.set_clock(monday(9));
    let started = line
        .start_ticket(as_agent("accueil", step("hdv-20261207-A001")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state_fr, "au guichet 1");
    let close =
        |id: &str, outcome: pb::ticket_closed::Outcome, service: &str| pb::CloseTicketRequest {
            tenant: GIVORS.into(),
            ticket_id: id.into(),
            outcome: outcome as i32,
            service: service.into(),
            request_reference: String::new(),
        };
    use pb::ticket_closed::Outcome;
    let bad = line
        .close_ticket(as_agent(
            "accueil",
            close("hdv-20261207-A001", Outcome::Transferred, "cirque"),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    hub.set_clock(monday(21));
    let closed = line
        .close_ticket(as_agent(
            "accueil",
            close("hdv-20261207-A001", Outcome::Transferred, "urbanisme"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.state_fr, "orienté vers un service");
    assert_eq!(closed.handled_minutes, 12);
    let again = line
        .close_ticket(as_agent(
            "accueil",
            close("hdv-20261207-A001", Outcome::Settled, ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    hub.set_clock(monday(25));
    line.close_ticket(as_agent(
        "accueil-2",
        close("hdv-20261207-E001", Outcome::Absent, ""),
    ))
    .await
    .unwrap();

    // The visit is in Marie's timeline, at the time she reached the counter.
    let timeline = hub
        .desk()
        .get_timeline(as_agent(
            "accueil",
            pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_id("GIV-000900"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let visit = timeline
        .entries
        .iter()
        .find(|e| e.kind == "desk_visit")
        .expect("the visit at the counter");
    assert_eq!(
        visit.subject,
        "Autre : stationnement — guichet 1 : orienté vers un service (Urbanisme)"
    );
    assert_eq!(
        visit.occurred_at.as_ref().map(|t| t.seconds),
        Some(monday(9) / 1_000_000)
    );

    // The day's report: two tickets, waits of 5 and 6 minutes, 12 minutes handled.
    let report = |token: &'static str| {
        let mut line = line.clone();
        async move {
            line.report(as_agent(
                token,
                pb::AccueilReportRequest {
                    tenant: GIVORS.into(),
                    from: "2026-12-07".into(),
                    to: "2026-12-07".into(),
                    site: String::new(),
                },
            ))
            .await
        }
    };
    let r = report("elu").await.unwrap().into_inner();
    assert_eq!(
        (r.tickets, r.settled, r.transferred, r.absent),
        (2, 0, 1, 1)
    );
    assert_eq!(r.transferred_percent, 100.0);
    let motives: Vec<(String, u64, u32, u32)> = r
        .by_motive
        .iter()
        .map(|w| (w.label.clone(), w.tickets, w.wait_p50, w.handling_p50))
        .collect();
    assert_eq!(
        motives,
        [
            ("Autre".to_string(), 1, 6, 12),
            ("État civil".to_string(), 1, 5, 0)
        ]
    );
    let counters: Vec<String> = r.by_counter.iter().map(|w| w.label.clone()).collect();
    assert_eq!(
        counters,
        ["Hôtel de ville — guichet 1", "Hôtel de ville — guichet 3"]
    );
    let urbanisme = r
        .by_service
        .iter()
        .find(|s| s.service == "urbanisme")
        .expect("urbanisme's row");
    assert_eq!(
        (
            urbanisme.service_name.as_str(),
            urbanisme.tickets_transferred
        ),
        ("Urbanisme", 1)
    );
    // Monday 9 h: two arrivals.
    assert!(r
        .heat
        .iter()
        .any(|c| (c.weekday, c.hour, c.arrivals) == (1, 9, 2)));
    assert_eq!(
        report("borne").await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // Turned into a request: a reference nobody has is refused, a confidential one the agent
    // may not read too, a real one is kept and the visit joins it.
    hub.set_clock(monday(30));
    let mut line = AccueilServiceClient::new(hub.channel.clone());
    line.issue_ticket(as_agent(
        "accueil",
        issue(pb::Category::Urbanisme, "", "GIV-000900"),
    ))
    .await
    .unwrap();
    let u = next(&line, "accueil", 2)
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let id = ticket(&u).ticket_id;
    assert_eq!(id, "hdv-20261207-U001");
    let as_request = |reference: &str| pb::CloseTicketRequest {
        tenant: GIVORS.into(),
        ticket_id: id.clone(),
        outcome: Outcome::Request as i32,
        service: String::new(),
        request_reference: reference.into(),
    };
    let missing = line
        .close_ticket(as_agent("accueil", as_request("GIV-D-2026-999999")))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let opened = contacthub_proto::v1::request_service_client::RequestServiceClient::new(
        hub.channel.clone(),
    )
    .open_request(as_agent(
        "accueil",
        pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Permis de construire".into(),
            category: pb::Category::Urbanisme as i32,
            citizen_id: "GIV-000900".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap()
    .into_inner();
    // A confidential matter of the CCAS is not the accueil's to name.
    let secret = hub.ccas_request("ccas").await;
    let refused = line
        .close_ticket(as_agent("accueil", as_request(&secret.reference)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let closed = line
        .close_ticket(as_agent("accueil", as_request(&opened.reference)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.state_fr, "transformé en demande");
    assert_eq!(ticket(&closed).request_reference, opened.reference);
    // The visit joins the request it became.
    let joined = hub.store.contact_requests(
        GIVORS,
        &contacthub_core::event::event_id(GIVORS, "desk", &format!("ticket/{id}")),
    );
    assert_eq!(joined.unwrap(), vec![opened.reference.clone()]);

    // A ticket for the CCAS naming Marie: the CCAS's agents read who it is, the accueil only
    // that someone waits for the CCAS (need-to-know).
    line.issue_ticket(as_agent(
        "accueil",
        issue(pb::Category::Ccas, "", "GIV-000900"),
    ))
    .await
    .unwrap();
    let seen_by = |token: &'static str| {
        let line = line.clone();
        async move {
            waiting(&line, token)
                .await
                .unwrap()
                .into_inner()
                .waiting
                .into_iter()
                .map(|v| (v.motive_fr.clone(), ticket(&v).citizen_id))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seen_by("ccas").await,
        [("CCAS".to_string(), "GIV-000900".to_string())]
    );
    assert_eq!(
        seen_by("accueil").await,
        [("CCAS".to_string(), String::new())]
    );
    hub.set_clock(0);
}

on_every_backend!(the_ticket_flow);

/// The fenced block after `marker` in `text`: its lines, without fences.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} is not in the doc"));
    let rest = &text[at..];
    let body = &rest[rest.find("```").expect("a fenced block") + 3..];
    let body = &body[body.find('\n').unwrap_or(0) + 1..];
    body[..body.find("```").expect("a closing fence")]
        .lines()
        .map(str::to_string)
        .collect()
}

/// A command line split as a shell would (double quotes only).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The commands docs/operations.md shows, run as written (an accueil agent's token; the
/// report as an élu's), and the ticket printed as it quotes it; the kiosk's account may not
/// close a ticket; a period backwards is refused in French.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accueil_commands_run_as_the_doc_shows() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    hub.set_clock(monday(0));
    let cli = |token: &str, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        hub.cli_as(&contacthub_bin!(), token, &args)
    };
    let text = doc("operations.md");
    let commands = block_after(&text, "command line (an agent's token");
    let printed = block_after(&text, "`accueil ticket` prints the ticket").join("\n");
    assert_eq!(commands.len(), 5, "{commands:?}");
    let mut outputs = Vec::new();
    for line in &commands {
        let args = words(line);
        assert_eq!(args[0], "contacthub");
        let token = if args[2] == "report" {
            "elu"
        } else {
            "accueil"
        };
        let (ok, out) = cli(token, &args[1..]);
        assert!(ok, "{line}: {out}");
        outputs.push(out);
    }
    assert_eq!(
        outputs[0].trim_end(),
        printed,
        "the ticket as the doc quotes it"
    );
    assert!(outputs[1].contains("1 en attente"), "{}", outputs[1]);
    assert!(
        outputs[2].starts_with("E001 → guichet 3\n"),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[3].contains("réglé au premier contact"),
        "{}",
        outputs[3]
    );
    let csv = &outputs[4];
    assert!(
        csv.starts_with("\u{feff}rubrique;libellé;nombre;part (%);"),
        "{csv}"
    );
    assert!(
        csv.contains("Issue des tickets;réglé au premier contact;1;100,0;"),
        "{csv}"
    );
    assert!(csv.contains("Arrivées au guichet;lundi 09 h;1;"), "{csv}");
    // Called and closed at once on the test's fixed clock: no wait, no handling time.
    assert!(csv.contains("\nMotif;État civil;1;;0;0;0;0\n"), "{csv}");
    // The kiosk's account may not close a ticket.
    let own = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (ok, out) = cli(
        "borne",
        &own(&[
            "accueil",
            "close",
            "hdv-20261207-E001",
            "--tenant",
            "69091",
            "--outcome",
            "absent",
        ]),
    );
    assert!(!ok && out.contains("borne"), "{out}");
    let (ok, out) = cli(
        "elu",
        &own(&[
            "accueil",
            "report",
            "--tenant",
            "69091",
            "--from",
            "2026-12-31",
            "--to",
            "2026-12-01",
        ]),
    );
    assert!(!ok && out.contains("après la date de fin"), "{out}");
    // On the desk: the ticket once closed says how it ended, not « Vous êtes le prochain »;
    // a counter that is no number is refused in French.
    let desk = WebAgent::sign_in(&hub.web, "accueil").await;
    let (status, page) = desk.get("/accueil/69091/tickets/hdv-20261207-E001").await;
    assert!(status.is_success(), "{status}: {page}");
    assert!(page.contains("Ticket réglé au premier contact."), "{page}");
    assert!(!page.contains("prochain"), "{page}");
    let (status, page) = desk
        .get("/accueil/guichet?commune=69091&site=hdv&guichet=trois")
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert!(
        page.contains("Le guichet « trois » n&#39;est pas un numéro."),
        "{page}"
    );
    hub.set_clock(0);
}
