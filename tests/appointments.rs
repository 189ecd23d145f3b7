//! Appointments end to end, on both log backends: a booking confirmed on the person's
//! preferred channel (the SMS gateway, in its wire format), moved in one step (its old slot
//! freed; a move to a taken slot keeps the old one), reminded the day before exactly once,
//! recorded missed; counted on the dashboard; another service's agent refused each time; a
//! CCAS appointment withheld from the accueil. And a request opened from an SMS acknowledged
//! on that number with its reference and follow-up code.

use contacthub_app::auth::{token_hash, Access, Scope, System};
use contacthub_app::commands;
use contacthub_core::courrier::{paris, paris_local_to_utc_us};
use contacthub_core::pb::{self, appointment::Status};
use contacthub_tests::gateway::Gateway;
use contacthub_tests::*;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='ccas-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("ccas"),
    ))
    .unwrap()
}

/// The SMS sent so far whose text holds `words`.
fn sms_with(gateway: &Gateway, words: &str) -> Vec<String> {
    gateway
        .sent()
        .into_iter()
        .filter(|s| s.body.contains(words))
        .map(|s| s.body)
        .collect()
}

async fn appointments(backend: Backend) {
    let mut hub = TestHub::start_with_access(&backend, agents()).await;
    let gateway = Gateway::start().await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\nsms_auth_token = \"{}\"\n\n[commune.sms_gateway]\napi_url = \"{}\"\naccount_sid = \"{}\"\nfrom = \"+33472000000\"\n",
        contacthub_tests::gateway::TOKEN,
        gateway.url,
        contacthub_tests::gateway::ACCOUNT,
    ))
    .await;
    let as_agent = |token: &str| -> Scope { hub.hub.access().scope(Some(token), GIVORS).unwrap() };
    let (accueil, voirie, ccas) = (as_agent("accueil"), as_agent("voirie"), as_agent("ccas"));
    let alice = hub.sms_person(GIVORS, "Martin", "06 12 34 56 78").await;
    let bruno = hub.sms_person(GIVORS, "Bernard", "06 98 76 54 32").await;
    let now = hub.hub.now();

    // The accueil books Alice's passport appointment: confirmed by SMS, on the timeline.
    let slots = hub
        .hub
        .appointment_slots(&accueil, "passeport-cni", now, 14)
        .unwrap();
    let first = slots[0].start_us;
    let booked = hub
        .hub
        .book_for(&accueil, "passeport-cni", first, &alice)
        .await
        .unwrap();
    until("the confirmation is sent", || {
        !sms_with(&gateway, "est confirmé").is_empty()
    })
    .await;
    let confirmation = &sms_with(&gateway, "est confirmé")[0];
    assert!(
        confirmation.contains("Passeport")
            && confirmation.contains(&paris(first).format("%d/%m/%Y à %H:%M").to_string()),
        "{confirmation}"
    );

    // The voirie receives no passports: it may not move, cancel or mark it.
    let later = slots
        .iter()
        .map(|s| s.start_us)
        .find(|s| paris(*s).date() > paris(first).date() + chrono::Duration::days(1))
        .expect("a slot two days after the first");
    for refused in [
        hub.hub
            .move_for(&voirie, &booked.appointment_id, later)
            .await,
        hub.hub.cancel_for(&voirie, &booked.appointment_id).await,
        hub.hub
            .record_attendance(&voirie, &booked.appointment_id, false)
            .await,
    ] {
        assert!(
            matches!(refused, Err(contacthub_app::Error::Forbidden(_))),
            "{refused:?}"
        );
    }

    // Moved in one step: the new one booked and confirmed, the old one moved, its place free.
    let moved = hub
        .hub
        .move_for(&accueil, &booked.appointment_id, later)
        .await
        .unwrap();
    assert_eq!(moved.status, Status::Booked as i32);
    assert_eq!(moved.replaces, booked.appointment_id);
    let old = hub.hub.agenda(&accueil, paris(first).date(), 1).unwrap();
    assert!(old
        .iter()
        .all(|a| a.appointment_id != booked.appointment_id));
    let free = hub
        .hub
        .appointment_slots(&accueil, "passeport-cni", now, 14)
        .unwrap();
    assert_eq!(
        free.iter().find(|s| s.start_us == first).map(|s| s.left),
        Some(2),
        "both desks free again at the first time"
    );
    until("the move is confirmed", || {
        sms_with(&gateway, "est confirmé").len() == 2
    })
    .await;

    // The CCAS receives one person at a time: Bruno holds a time; Alice's move there is
    // refused and her own appointment kept.
    let ccas_slots = hub.hub.appointment_slots(&ccas, "ccas", now, 14).unwrap();
    let (taken, hers) = (ccas_slots[0].start_us, ccas_slots[1].start_us);
    hub.hub
        .book_for(&ccas, "ccas", taken, &bruno)
        .await
        .unwrap();
    let kept = hub.hub.book_for(&ccas, "ccas", hers, &alice).await.unwrap();
    let refused = hub.hub.move_for(&ccas, &kept.appointment_id, taken).await;
    assert!(
        matches!(refused, Err(contacthub_app::Error::Conflict(_))),
        "{refused:?}"
    );
    let day = hub.hub.agenda(&ccas, paris(hers).date(), 1).unwrap();
    assert!(day.iter().any(|a| a.appointment_id == kept.appointment_id));
    // The accueil reads no CCAS appointment: not in its agenda, withheld in the timeline.
    assert!(hub
        .hub
        .agenda(&accueil, paris(hers).date(), 1)
        .unwrap()
        .iter()
        .all(|a| a.kind != "ccas"));
    let timeline = |scope: &Scope| {
        hub.hub
            .timeline(
                scope,
                &commands::TimelinePage {
                    citizen: commands::Who::Record(alice.clone()),
                    page_size: 100,
                    page_token: String::new(),
                    channels: Vec::new(),
                    since: None,
                    until: None,
                },
            )
            .unwrap()
            .entries
    };
    let seen = timeline(&accueil);
    assert!(
        seen.iter()
            .any(|e| e.summary.starts_with("Rendez-vous pris : Passeport")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .filter(|e| e.kind == "appointment_booked")
            .all(|e| e.summary.contains("Passeport")),
        "{seen:#?}"
    );
    assert!(seen.iter().any(|e| e.kind == "confidential"), "{seen:#?}");
    assert!(timeline(&ccas)
        .iter()
        .any(|e| e.kind == "appointment_booked" && !e.summary.contains("Passeport")));

    // The command line: the week's agenda from the first day shows the moved appointment to
    // the accueil; the voirie may not move the CCAS's; whether Alice came waits for its time.
    let bin = contacthub_bin!();
    let week_of = paris(later).format("%d/%m/%Y").to_string();
    let (ok, week) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "list",
            "--tenant",
            GIVORS,
            "--day",
            &week_of,
            "--week",
        ],
    );
    assert!(ok && week.contains(&moved.appointment_id), "{week}");
    let third = paris(ccas_slots[2].start_us)
        .format("%d/%m/%Y %H:%M")
        .to_string();
    let (ok, refused) = hub.cli_as(
        &bin,
        "voirie",
        &[
            "appointment",
            "move",
            "--tenant",
            GIVORS,
            &kept.appointment_id,
            "--at-time",
            &third,
        ],
    );
    assert!(!ok && refused.contains("autre service"), "{refused}");
    let (ok, out) = hub.cli_as(
        &bin,
        "ccas",
        &[
            "appointment",
            "move",
            "--tenant",
            GIVORS,
            &kept.appointment_id,
            "--at-time",
            &third,
        ],
    );
    assert!(ok && out.contains("pris") && out.contains(&third), "{out}");
    let (ok, early) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "attendance",
            "--tenant",
            GIVORS,
            &moved.appointment_id,
            "--outcome",
            "no-show",
        ],
    );
    assert!(!ok && early.contains("pas encore commencé"), "{early}");

    // The day before the moved appointment, from 10:00: one reminder per appointment of the
    // next day, however often asked (the CCAS's two fall on that day too when the first
    // passport time was a Saturday and the CCAS receives on weekdays only).
    let eve = paris(later).date() - chrono::Duration::days(1);
    let next_day = [ccas_slots[0].start_us, ccas_slots[2].start_us]
        .iter()
        .filter(|s| paris(**s).date() == paris(later).date())
        .count()
        + 1;
    hub.set_clock(paris_local_to_utc_us(eve.and_hms_opt(10, 30, 0).unwrap()));
    let first_pass = hub.hub.queue_reminders(System::Sender).await.unwrap();
    assert_eq!(first_pass, next_day, "Alice's passport appointment");
    assert_eq!(hub.hub.queue_reminders(System::Sender).await.unwrap(), 0);
    assert!(hub.hub.queue_reminders(System::Demo).await.is_err());
    until("the reminders are sent", || {
        sms_with(&gateway, "rappel de votre rendez-vous").len() >= next_day
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let reminders = sms_with(&gateway, "rappel de votre rendez-vous");
    assert_eq!(reminders.len(), next_day, "{reminders:?}");
    let passport: Vec<_> = reminders
        .iter()
        .filter(|r| r.contains("Passeport"))
        .collect();
    assert_eq!(passport.len(), 1, "{reminders:?}");
    assert!(passport[0].contains("demain"), "{}", passport[0]);
    // Just before leaving, a notice is checked still true: the same reminder the next day
    // (a retry after the night) would not go.
    let notice_of = |key: String| {
        let id = contacthub_core::event::event_id(GIVORS, "avis", &key);
        hub.store.notice(GIVORS, &id).unwrap().expect("the notice")
    };
    let reminder = notice_of(format!("rappel/{}", moved.appointment_id));
    assert_eq!(reminder.status, pb::notice::Status::Sent as i32);
    assert!(hub
        .hub
        .notice_to_send(System::Sender, reminder.clone())
        .unwrap()
        .is_ok());
    hub.set_clock(paris_local_to_utc_us(
        paris(later).date().and_hms_opt(7, 0, 0).unwrap(),
    ));
    assert_eq!(
        hub.hub.notice_to_send(System::Sender, reminder).unwrap(),
        Err("ce n'est plus la veille du rendez-vous")
    );

    // On the desk once it has begun: the voirie may not say, the accueil says she did not
    // come, once; her record shows it.
    hub.set_clock(later + 30 * 60_000_000);
    let day = paris(later).format("%Y-%m-%d").to_string();
    let desk = WebAgent::sign_in(&hub.web, "accueil").await;
    let (_, agenda) = desk
        .get(&format!("/rendez-vous?commune={GIVORS}&jour={day}"))
        .await;
    assert!(agenda.contains("value=\"absent\""), "{agenda}");
    let mark = |agent: WebAgent, csrf: String| {
        let (id, day) = (moved.appointment_id.clone(), day.clone());
        async move {
            agent
                .http
                .post(format!("{}/rendez-vous/presence", agent.base))
                .header("cookie", agent.cookie.clone())
                .form(&[
                    ("csrf", csrf),
                    ("commune", GIVORS.to_string()),
                    ("jour", day),
                    ("id", id),
                    ("presence", "absent".to_string()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let voirie_desk = WebAgent::sign_in(&hub.web, "voirie").await;
    let (_, theirs) = voirie_desk
        .get(&format!("/rendez-vous?commune={GIVORS}&jour={day}"))
        .await;
    assert_eq!(mark(voirie_desk, csrf_of(&theirs)).await, 403);
    assert_eq!(mark(desk, csrf_of(&agenda)).await, 303);
    let desk = WebAgent::sign_in(&hub.web, "accueil").await;
    let (_, agenda) = desk
        .get(&format!("/rendez-vous?commune={GIVORS}&jour={day}"))
        .await;
    assert!(
        agenda.contains("absent") && !agenda.contains("value=\"absent\""),
        "{agenda}"
    );
    assert!(hub
        .hub
        .record_attendance(&accueil, &moved.appointment_id, true)
        .await
        .is_err());
    let (_, record) = desk.get(&format!("/citoyens/{GIVORS}/{alice}")).await;
    assert!(
        record.contains("id=\"rendez-vous\"")
            && record.contains("— absent")
            && !record.contains("Entretien avec le CCAS"),
        "{record}"
    );
    hub.set_clock(0);

    // The dashboard: three bookings (a move is not one more), one no-show, and how soon the
    // état civil has a free time.
    let month = |us: i64| paris(us).format("%Y-%m").to_string();
    let d = hub
        .hub
        .dashboard(
            &accueil,
            &commands::DashboardQuery {
                from_month: month(now),
                to_month: month(later.max(now + 31 * 86_400_000_000)),
            },
        )
        .unwrap();
    let whole = |dim: &str, value: &str| {
        d.rows
            .iter()
            .find(|r| r.month.is_empty() && r.dimension == dim && r.value == value)
            .and_then(|r| r.figures)
            .unwrap_or_else(|| panic!("no {dim}={value} row: {d:#?}"))
    };
    assert_eq!(whole("commune", "").appointments, 3);
    assert_eq!(whole("commune", "").no_shows, 1);
    assert_eq!(whole("service", "etat-civil").appointments, 1);
    assert!(whole("service", "etat-civil")
        .days_to_first_free_slot
        .is_some_and(|d| (0.0..15.0).contains(&d)));

    // An SMS asks for a birth certificate; the accueil opens a request from it: the number
    // that wrote gets its acknowledgement with the reference and the follow-up code.
    let mut sms = call(GIVORS, "sms-acte", "06 55 44 33 22", hub.hub.now());
    sms.channel = pb::Channel::Sms as i32;
    sms.payload = Some(pb::event::Payload::Sms(pb::Sms {
        message_sid: "SM-acte".into(),
        ..Default::default()
    }));
    sms.personal.as_mut().unwrap().text = "Bonjour, il me faut un acte de naissance".into();
    hub.publish(&[sms.clone()]).await;
    hub.settle().await;
    let opened = hub
        .hub
        .open_request(
            &accueil,
            &commands::OpenRequest {
                subject: "Acte de naissance".into(),
                category: pb::Category::EtatCivil,
                service: "etat-civil".into(),
                from_contact_event_id: sms.event_id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let code = hub
        .hub
        .get_request(&accueil, &opened.reference)
        .unwrap()
        .follow_up_code;
    until("the acknowledgement is sent", || {
        !sms_with(&gateway, &opened.reference).is_empty()
    })
    .await;
    let ack = gateway
        .sent()
        .into_iter()
        .find(|s| s.body.contains(&opened.reference))
        .unwrap();
    assert_eq!(ack.to, "+33655443322");
    assert!(ack.body.contains(&code), "{}", ack.body);
    // The code is filled in as it leaves: the notice kept does not hold it.
    let kept = notice_of(format!("accuse/{}", opened.reference));
    assert!(!kept.text.contains(&code), "{}", kept.text);
    hub.stop().await;
}

on_every_backend!(appointments);
