//! The docs run: what docs/ shows is checked against what the program does (signatures
//! worked out in docs/adapters.md recomputed, and the example posted as written).

use contacthub_tests::*;

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("the doc exists")
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_signature_examples_are_what_the_hub_checks() {
    let text = doc("adapters.md");
    let fixture = std::fs::read(format!(
        "{}/fixtures/adapters/forms/exemple-doc.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let shown = after(&text, "-H 'X-Contacthub-Signature: ");
    assert_eq!(
        shown,
        contacthub_adapters::http::body_signature("portal-secret", &fixture)
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

    // The curl of the doc, as written: the file posted as it is, with the header shown.
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub
        .start_adapters("[[commune]]\ncode = \"69091\"\nhmac_secret = \"portal-secret\"\n")
        .await;
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/69091/forms"))
        .header("content-type", "application/json")
        .header("x-contacthub-signature", shown)
        .body(fixture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(r.text().await.unwrap().contains("\"accepted\":1"));
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
