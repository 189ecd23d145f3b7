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
    let id = canary::person(&hub, "export-person").await;
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
        .await
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

    let cli = |token: &str, args: &[&str]| hub.cli_as(&contacthub_bin!(), token, args);
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

/// The data protection officer's services answer their commune's DPO only: an accueil agent,
/// a service agent, an élu, a syndicate-wide ops agent and another commune's DPO are refused
/// on each of them, before anything is read or erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_services_refuse_every_other_role() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid = 'accueil-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
         [[agent]]\nid = 'ccas-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nservices = ['ccas']\n\
         [[agent]]\nid = 'elu-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'elu'\n\
         [[agent]]\nid = 'ops'\ntoken_sha256 = '{}'\ntenants = ['*']\nops = true\n\
         [[agent]]\nid = 'dpo-grigny'\ntoken_sha256 = '{}'\ntenants = ['69096']\nrole = 'dpo'\n\
         [[agent]]\nid = 'dpo-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'dpo'\n",
        token_hash("accueil"),
        token_hash("ccas"),
        token_hash("elu"),
        token_hash("ops"),
        token_hash("dpo-grigny"),
        token_hash("dpo"),
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let id = hub
        .hub
        .create_citizen(
            &hub.scope(GIVORS),
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: SURNAME.into(),
                    ..Default::default()
                }),
                idempotency_key: "matrix".into(),
            },
        )
        .await
        .unwrap()
        .citizen_id;
    let mut dpo = pb::audit_service_client::AuditServiceClient::new(hub.channel.clone());
    for token in ["accueil", "ccas", "elu", "ops", "dpo-grigny", "nobody"] {
        let want = if token == "nobody" {
            tonic::Code::Unauthenticated
        } else {
            tonic::Code::PermissionDenied
        };
        let reads = pb::ListReadsRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        };
        let export = pb::ExportCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: id.clone(),
        };
        let retention = pb::ApplyRetentionRequest {
            tenant: GIVORS.into(),
            apply: true,
        };
        let erase = pb::EraseCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: id.clone(),
            reason: "essai".into(),
        };
        let codes = [
            dpo.list_reads(as_agent(token, reads)).await.map(drop),
            dpo.export_citizen(as_agent(token, export)).await.map(drop),
            dpo.apply_retention(as_agent(token, retention))
                .await
                .map(drop),
            dpo.erase_citizen(as_agent(token, erase)).await.map(drop),
        ]
        .map(|r| r.unwrap_err().code());
        assert_eq!(codes, [want; 4], "{token}");
    }
    assert!(hub
        .store
        .citizen(GIVORS, &id)
        .unwrap()
        .unwrap()
        .erased
        .is_none());
    // The commune's DPO: every one of them.
    let reads = pb::ListReadsRequest {
        tenant: GIVORS.into(),
        ..Default::default()
    };
    assert!(dpo.list_reads(as_agent("dpo", reads)).await.is_ok());
    let export = pb::ExportCitizenRequest {
        tenant: GIVORS.into(),
        citizen_id: id.clone(),
    };
    assert!(dpo.export_citizen(as_agent("dpo", export)).await.is_ok());
    hub.stop().await;
}
