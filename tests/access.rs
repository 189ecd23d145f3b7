//! The right of access: the data protection officer exports everything held about a person
//! (`contacthub citizen export`), a zip with donnees.json, the original documents byte for
//! byte and a French summary; nobody else may; the export is in the read trail.

use contacthub_app::auth::{token_hash, Access, System};
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::canary::{self, *};
use contacthub_tests::*;
use std::io::Read;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_exports_everything_held_about_a_person() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid = 'accueil-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
         [[agent]]\nid = 'dpo-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'dpo'\n",
        token_hash("accueil"),
        token_hash("dpo"),
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let scope = hub.scope(GIVORS);
    let id = hub
        .hub
        .create_citizen(
            &scope,
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: SURNAME.into(),
                    first_names: FIRST.into(),
                    phones: vec![PHONE.into()],
                    ..Default::default()
                }),
                idempotency_key: "export-person".into(),
            },
        )
        .await
        .unwrap()
        .citizen_id;
    hub.hub
        .record_visit(
            &scope,
            &commands::RecordVisit {
                party: Some(pb::Party {
                    citizen_id: id.clone(),
                    ..Default::default()
                }),
                desk: "accueil-hdv".into(),
                category: pb::Category::EtatCivil,
                subject: SUBJECT.into(),
                notes: NOTES.into(),
                idempotency_key: "export-visit".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A form from the person's number, with a document.
    let document = b"%PDF-1.4 Canarixa-piece-jointe-41c2".to_vec();
    let attachment = hub
        .hub
        .store_document(System::Adapters, &document, "application/pdf", 1 << 20)
        .unwrap();
    let mut form = web_form(GIVORS, "export-form", PHONE, EMAIL, at(2026, 12, 2, 9, 0));
    form.attachments = vec![attachment];
    form.personal.as_mut().unwrap().attachment_names = vec!["justificatif.pdf".into()];
    form.personal.as_mut().unwrap().text = LETTER.into();
    hub.hub
        .append_contacts(System::Adapters, &[form])
        .await
        .unwrap();
    let reference = canary::request_opened_and_closed(&hub, &id, "export-request").await;
    hub.settle().await;

    let cli = |token: &str, args: &[&str]| {
        cli_as(
            &contacthub_bin!(),
            &format!("http://{}", hub.addr),
            token,
            hub.dir.path(),
            args,
        )
    };
    // The command as docs/operations.md shows it, run in the hub's folder.
    let doc = doc("operations.md");
    let shown = doc_line(&doc, "contacthub citizen export ", &id);
    let args: Vec<&str> = shown.split_whitespace().skip(1).collect();
    let out = hub.dir.path().join(format!("{id}.zip"));
    let (ok, said) = cli("accueil", &args);
    assert!(!ok && !out.exists(), "{said}");
    assert!(
        said.contains("réservé au délégué à la protection des données")
            || said.contains("n'est pas délégué"),
        "{said}"
    );
    let (ok, said) = cli("dpo", &args);
    assert!(ok, "{said}");
    let quoted = doc_line(&doc, "données de GIV-000001 exportées dans", &id);
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(
        said.trim(),
        quoted.replace("(8412 octets)", &format!("({size} octets)")),
        "what the doc quotes, its size aside"
    );
    let (ok, said) = cli("dpo", &args);
    assert!(!ok, "an existing file is not overwritten: {said}");

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let files: Vec<String> = zip.file_names().map(String::from).collect();
    let mut read = |name: &str| {
        let mut bytes = Vec::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the export"))
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    let data = String::from_utf8(read("donnees.json")).unwrap();
    for expected in [
        SURNAME,
        FIRST,
        PHONE,
        SUBJECT,
        NOTES,
        LETTER,
        BEHALF,
        reference.as_str(),
    ] {
        assert!(
            data.contains(expected),
            "{expected} missing from donnees.json"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(json["commune"], "Givors");
    let summary = String::from_utf8(read("resume.html")).unwrap();
    assert!(
        summary.contains("<h1>Vos données détenues par la commune de Givors</h1>"),
        "{summary}"
    );
    let pdf = files
        .iter()
        .find(|f| f.starts_with("documents/") && f.ends_with("-justificatif.pdf"))
        .unwrap_or_else(|| panic!("the form's document in {files:?}"))
        .clone();
    assert_eq!(read(&pdf), document, "the document byte for byte");

    // The export is in the read trail.
    let (ok, trail) = cli("dpo", &["audit", "--tenant", GIVORS, "--citizen", &id]);
    assert!(ok, "{trail}");
    assert!(
        trail.lines().any(|l| l.contains(&format!(
            "dpo-givors  a consulté l'export des données de {id}  [ligne de commande, 127.0.0.1]"
        ))),
        "{trail}"
    );
    hub.stop().await;
}
