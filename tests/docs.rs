//! The docs run: what the README and docs/ show is checked against what the program does (the
//! README's tour run as written against a demo hub, signatures worked out in docs/adapters.md
//! recomputed, the example posted as written, the phone report as printed).

use contacthub_tests::*;

/// The first word after `prefix` in `text`.
fn after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} is not in the doc"))
        + prefix.len();
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '`')
        .next()
        .unwrap_or_default()
}

/// The Publik call the doc shows is signed as the hub checks it, for the doc's key.
#[test]
fn the_publik_example_of_the_adapters_doc_is_signed_right() {
    let text = doc("adapters.md");
    let url = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("/v1/69091/publik?"))
        .expect("the doc shows a signed Publik call");
    let query = url.split_once('?').unwrap().1;
    let at = chrono::NaiveDateTime::parse_from_str("2026-12-03T09:14:03", "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
        .timestamp();
    assert_eq!(
        contacthub_adapters::publik::check_signed_query(
            query,
            "cle-partagee-publik-givors-0123",
            "publik-givors",
            at,
            30
        ),
        Ok("4f1c0a9e".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_signature_examples_are_what_the_hub_checks() {
    let text = doc("adapters.md");
    let fixture = std::fs::read(format!(
        "{}/fixtures/adapters/forms/exemple-doc.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let shown = after(&text, "-H 'X-Contacthub-Signature: ");
    let t: i64 = shown
        .strip_prefix("t=")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect("the example's signature starts with t=UNIX");
    assert_eq!(
        shown,
        contacthub_adapters::http::body_signature("portal-secret", t, &fixture)
    );
    // The doc's openssl command, run as written, computes the same HEX.
    let command = text
        .lines()
        .find(|l| l.contains("openssl dgst -sha256 -hmac portal-secret"))
        .and_then(|l| l.split('`').nth(1))
        .expect("the doc shows how to compute HEX with openssl");
    let o = std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && out
                .trim()
                .ends_with(shown.rsplit("sha256=").next().unwrap()),
        "{command}: {out}"
    );
    let twilio = after(&text, "header:  X-Twilio-Signature: ");
    let body = "MessageSid=SM1&From=%2B33612345678&To=%2B33472491818&Body=Bonjour";
    assert_eq!(
        twilio,
        contacthub_adapters::http::gateway_signature(
            "gateway-token",
            "https://grc.example.fr/adapters/v1/69091/sms",
            body.as_bytes()
        )
    );
    let signed = after(&text, "signed:  ");
    assert_eq!(
        signed,
        "https://grc.example.fr/adapters/v1/69091/smsBodyBonjourFrom+33612345678MessageSidSM1To+33472491818"
    );

    // The curl of the doc, as written: the file posted as it is, with the header shown, to a
    // hub whose clock reads the example's time plus four minutes; then the same request
    // replayed six minutes after it was signed: refused, nothing written.
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub
        .start_adapters("[[commune]]\ncode = \"69091\"\nhmac_secret = \"portal-secret\"\n")
        .await;
    let post = || {
        reqwest::Client::new()
            .post(format!("{url}/v1/69091/forms"))
            .header("content-type", "application/json")
            .header("x-contacthub-signature", shown)
            .body(fixture.clone())
            .send()
    };
    hub.set_clock((t + 240) * 1_000_000);
    let r = post().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(r.text().await.unwrap().contains("\"accepted\":1"));
    hub.set_clock((t + 360) * 1_000_000);
    let r = post().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("tolerance window"));
}

/// The fenced block that follows `marker` in `text`, without its fences and indentation.
fn block_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} is not in the doc"));
    let rest = &text[at..];
    let open = rest.find("```").expect("a fenced block") + 3;
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap_or(0) + 1..];
    let close = body.find("```").expect("a closing fence");
    body[..close]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_report_is_printed_as_the_adapters_doc_shows() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub
        .start_adapters("[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"9\"]\n")
        .await;
    let cdr = std::fs::read(format!(
        "{}/fixtures/adapters/Master.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/phone/cdr"))
        .body(cdr)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().as_u16() == 400,
        "{r:?}"
    );
    hub.settle().await;
    let o = std::process::Command::new(contacthub_bin!())
        .args([
            "phone-report",
            "--tenant",
            "69091",
            "--server",
            &hub.addr.to_string(),
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        block_after(&doc("adapters.md"), "it prints:"),
        printed,
        "docs/adapters.md quotes what `contacthub phone-report` prints"
    );
}

/// The README's tour, run as written against a hub serving the demo (`cargo run --release --`
/// stands for the `contacthub` binary; the hub's addresses and data folder are given in the
/// environment, as the README says): every command succeeds, and what the tour's comments
/// promise is what they print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_runs_as_written() {
    let readme =
        std::fs::read_to_string(format!("{}/../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let tour = block_after(&readme, "## A short tour");
    assert!(tour.contains("citizen search"), "{tour}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = spawn_serve(&contacthub_bin!(), &data, &["--demo".as_ref()]);
    let bin = contacthub_bin!();
    let adapters = serve.adapters.trim_start_matches("http://").to_string();
    let portal = serve.portal.trim_start_matches("http://").to_string();
    // The letter registered is the first of this year (in Paris: chrono numbers are
    // numbered by the commune's year).
    let year = contacthub_core::courrier::paris(chrono::Utc::now().timestamp_micros())
        .format("%Y")
        .to_string();
    let script = tour
        .replace("cargo run --release -q --", &bin.display().to_string())
        .replace("cargo run --release --", &bin.display().to_string())
        .replace("127.0.0.1:8080", &adapters)
        .replace("127.0.0.1:8090", &portal)
        .replace("GIV-2026-000001", &format!("GIV-{year}-000001"));
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::symlink(
        format!("{}/../tests", env!("CARGO_MANIFEST_DIR")),
        work.join("tests"),
    )
    .unwrap();
    // Every failing command is reported (not stopped at): the sample call log holds two lines
    // the hub refuses on purpose, and `ingest` says so by its exit code 3.
    let script = format!("trap 'echo \"FAILED($?): $BASH_COMMAND\" >&2' ERR\n{script}");
    let out = std::process::Command::new("bash")
        .args(["-uo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env(
            "CONTACTHUB_SERVER",
            serve.grpc.trim_start_matches("http://"),
        )
        .env("CONTACTHUB_DATA", &data)
        .env("CONTACTHUB_ADAPTERS_URL", &serve.adapters)
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let failed: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("FAILED("))
        .collect();
    assert_eq!(failed.len(), 1, "{printed}");
    assert!(
        failed[0].starts_with("FAILED(3):") && failed[0].contains("ingest phone"),
        "{printed}"
    );
    assert!(readme.contains("exits 3"), "the README says why");
    // What its comments promise.
    for promised in [
        "Marie DURAND",
        "GIV-000001",
        "06 12 34 56 78",
        "Réponse promise au plus tard le",
        &format!("GIV-D-{year}-"),
        &format!("GIV-{year}-000001"),
    ] {
        assert!(printed.contains(promised), "{promised:?} in\n{printed}");
    }
    assert!(work.join("tableau.csv").exists() && work.join("accuse.pdf").exists());
    assert!(std::fs::read_dir(work.join("a-imprimer")).unwrap().count() >= 1);
    let mut child = serve.child;
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn the_franceconnect_table_of_the_operations_doc_is_what_the_communes_file_takes() {
    let doc = include_str!("../docs/operations.md");
    let table = block_after(doc, "writes what FranceConnect gave it under its");
    let text = contacthub_core::tenant::DEFAULT_COMMUNES.replacen(
        "\n[commune.answer_days_by_category]",
        &format!("\n{table}\n\n[commune.answer_days_by_category]"),
        1,
    );
    let tenants = contacthub_core::tenant::Tenants::from_toml(&text).expect("the doc's table");
    let fc = tenants
        .get("69091")
        .and_then(|t| t.franceconnect.clone())
        .expect("Givors's FranceConnect");
    assert_eq!(fc.acr_values, "eidas1");
    assert!(fc.redirect_url.ends_with("/givors/connexion/retour"));
    assert!(fc.scopes.iter().any(|s| s == "birthplace"));
    assert_eq!(tenants.get("69091").unwrap().slug(), "givors");
    assert_eq!(tenants.get("69152").unwrap().slug(), "pierre-benite");
}

#[test]
fn the_appointment_table_of_the_operations_doc_is_what_the_communes_file_takes() {
    let doc = include_str!("../docs/operations.md");
    let table = block_after(doc, "Kinds of appointment are `[[appointment]]` tables");
    let text = format!(
        "{}\n{}",
        contacthub_core::tenant::DEFAULT_COMMUNES.replacen(
            "code = \"passeport-cni\"",
            "code = \"passeport-cni-livre\"",
            1
        ),
        table
    );
    let tenants = contacthub_core::tenant::Tenants::from_toml(&text).expect("the doc's table");
    let kind = tenants
        .get("69091")
        .and_then(|t| t.appointment("passeport-cni").cloned())
        .expect("the doc's kind");
    assert_eq!((kind.minutes, kind.desks, kind.horizon_days), (20, 2, 28));
}

/// The configuration docs/adapters.md shows is one the hub takes, its placeholders (`…`)
/// filled in: every key it names exists and every value is of the right kind.
#[test]
fn the_adapters_configuration_of_the_doc_is_valid() {
    let text = doc("adapters.md");
    let blocks: Vec<&str> = text
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert!(blocks.len() >= 2, "adapters.toml, then a mailbox's block");
    // The mailbox's block stands under the first block's commune.
    let block = blocks.join("\n");
    let filled: String = block
        .lines()
        .map(|l| match (l.find('"'), l.find('…')) {
            (Some(open), Some(dots)) if dots > open => {
                let close = open + 1 + l[open + 1..].find('"').unwrap();
                format!("{}\"{}\"{}", &l[..open], "a".repeat(64), &l[close + 1..])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let tenants = contacthub_core::tenant::Tenants::builtin();
    let cfg = contacthub_adapters::config::AdaptersConfig::from_toml(&filled, &tenants)
        .unwrap_or_else(|e| panic!("{e}\n{filled}"));
    let givors = cfg.commune("69091").unwrap();
    assert_eq!(givors.demarches_simplifiees[0].demarche, 4321);
    assert!(givors.publik.is_some() && givors.ovh_sms.is_some());
    assert_eq!(givors.imap[0].move_to.as_deref(), Some("Traité"));
    assert_eq!(givors.imap[1].max_message_mb, 50);
}

/// Every `--flag` and `CONTACTHUB_*` variable docs/operations.md names is one `contacthub
/// serve`, `migrate`, `replay` or `topics init` takes (a flag renamed or dropped fails here
/// until the page says the new one).
#[test]
fn the_flags_of_the_operations_doc_are_the_programs() {
    let doc = include_str!("../docs/operations.md");
    let mut help = String::new();
    for cmd in [
        &["serve", "--help"][..],
        &["migrate", "--help"],
        &["replay", "--help"],
        &["topics", "init", "--help"],
    ] {
        let out = std::process::Command::new(contacthub_bin!())
            .args(cmd)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
        help.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let named = |marker: &str, allowed: fn(u8) -> bool| -> std::collections::BTreeSet<String> {
        doc.match_indices(marker)
            .map(|(i, _)| {
                let rest = &doc.as_bytes()[i..];
                let end = (marker.len()..rest.len())
                    .find(|&j| !allowed(rest[j]))
                    .unwrap_or(rest.len());
                doc[i..i + end].trim_end_matches('-').to_string()
            })
            .filter(|f| f.len() > marker.len())
            .collect()
    };
    let flags = named("`--content", |b| b.is_ascii_lowercase() || b == b'-');
    let vars = named("CONTACTHUB_CONTENT", |b| {
        b.is_ascii_uppercase() || b == b'_'
    });
    assert!(flags.len() >= 4 && vars.len() >= 4, "{flags:?} {vars:?}");
    for flag in &flags {
        let flag = flag.trim_start_matches('`');
        assert!(
            help.contains(flag),
            "operations.md names {flag}, no command takes it"
        );
    }
    for var in &vars {
        assert!(
            help.contains(var.as_str()),
            "operations.md names {var}, no flag reads it"
        );
    }
}
