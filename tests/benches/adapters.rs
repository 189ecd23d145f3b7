//! Adapter benchmark printing figures (release: `cargo bench -p contacthub-tests --bench adapters`).
//!
//! 1. Parsing alone: Asterisk CDR lines/s and e-mails/s (a mix of quoted-printable Latin-1,
//!    HTML-only Windows-1252, and multipart with a 20 KB PDF).
//! 2. Ingested end to end over HTTP into a running hub (parse, documents stored, appended,
//!    projected and visible): CDR lines/s (files of 5,000 lines) and e-mails/s (8 concurrent
//!    senders), on the embedded log and, when `CONTACTHUB_TEST_KAFKA` names a broker, on Kafka.
//! 3. E-mails/s through a Maildir (one reader, as `serve` runs it).
//!
//! Options: `--lines N` (default 200,000), `--emails N` (default 4,000).

use base64::Engine;
use contacthub_adapters::{Adapter, Channels, Input};
use contacthub_tests::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NUMBERS: [&str; 6] = [
    "0472491818",
    "0472495252",
    "0478866262",
    "0477830750",
    "0472048080",
    "0472214444",
];

fn cdr_line(i: usize) -> String {
    let phone = format!("06{:08}", 10_000_000 + (i * 7919) % 89_999_999);
    let number = NUMBERS[i % 6];
    let disposition = ["ANSWERED", "ANSWERED", "NO ANSWER", "BUSY"][i % 4];
    let start = format!(
        "2026-{:02}-{:02} {:02}:{:02}:{:02}",
        1 + i % 11,
        1 + i % 28,
        8 + i % 10,
        i % 60,
        (i / 60) % 60
    );
    format!(
        "\"\",\"{phone}\",\"{number}\",\"from-trunk\",\"\"\"Usager {i}\"\" <{phone}>\",\"SIP/trunk-{i:08x}\",\"SIP/201-{i:08x}\",\"Dial\",\"SIP/201,30\",\"{start}\",\"{start}\",\"{start}\",{},{},\"{disposition}\",\"DOCUMENTATION\",\"1762000000.{i}\",\"\"\n",
        30 + i % 400,
        i % 380
    )
}

fn email(i: usize) -> Vec<u8> {
    let from = format!("usager{}@example.fr", i % 5000);
    match i % 3 {
        0 => format!(
            "From: =?ISO-8859-1?Q?Ren=E9e_{i}?= <{from}>\r\nTo: mairie@ville-givors.fr\r\nSubject: =?ISO-8859-1?Q?Demande_n=B0{i}_d'acte_de_d=E9c=E8s?=\r\nDate: Mon, 02 Nov 2026 09:14:03 +0100\r\nMessage-ID: <bench-{i}@example.fr>\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
            "Bonjour,=0D=0AJe souhaiterais recevoir l'acte de d=E9c=E8s de mon p=E8re, d=E9c=E9d=E9 =E0 Givors.=0D=0A".repeat(8)
        )
        .into_bytes(),
        1 => format!(
            "From: {from}\r\nTo: mairie@ville-givors.fr\r\nSubject: Trottoir\r\nMessage-ID: <bench-{i}@example.fr>\r\nIn-Reply-To: <bench-{}@example.fr>\r\nContent-Type: text/html; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>{}</body></html>",
            i.saturating_sub(1),
            "<p>Le trottoir est ab=EEm=E9 =96 <b>rue Jean-Jaur=E8s</b>, merci&nbsp;!</p>".repeat(10)
        )
        .into_bytes(),
        _ => {
            let mut pdf = b"%PDF-1.4\n".to_vec();
            pdf.extend((0..20_000).map(|k| ((k * 31 + i) % 251) as u8));
            let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
            let wrapped: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
            format!(
                "From: {from}\r\nTo: mairie@ville-givors.fr\r\nSubject: Justificatif {i}\r\nMessage-ID: <bench-{i}@example.fr>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoici le justificatif demandé.\r\n--b\r\nContent-Type: application/pdf; name=\"j{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"j{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
                wrapped.join("\r\n")
            )
            .into_bytes()
        }
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:.0}/s ({n} in {:.2} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

fn parsing(lines: usize, emails: usize) {
    let tenants = Arc::new(contacthub_core::tenant::Tenants::builtin());
    let cfg = contacthub_adapters::config::AdaptersConfig::from_toml(
        "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\"]\n",
        &tenants,
    )
    .unwrap();
    let channels = Channels::new(Arc::new(cfg), tenants);
    let csv: String = (0..lines).map(cdr_line).collect();
    let started = Instant::now();
    let items = channels.phone.parse(&Input {
        bytes: csv.as_bytes(),
        origin: "bench",
        tenant: None,
        received_us: 1_800_000_000_000_000,
    });
    let took = started.elapsed();
    let contacts = items
        .iter()
        .filter(|i| matches!(i, contacthub_adapters::Item::Contact(_)))
        .count();
    assert_eq!(contacts, lines);
    println!("parse  CDR lines   {}", rate(lines, took));
    let mails: Vec<Vec<u8>> = (0..emails).map(email).collect();
    let started = Instant::now();
    for m in &mails {
        let items = channels.email.parse(&Input {
            bytes: m,
            origin: "bench",
            tenant: Some("69091"),
            received_us: 1_800_000_000_000_000,
        });
        assert!(matches!(items[0], contacthub_adapters::Item::Contact(_)));
    }
    println!("parse  e-mails     {}", rate(emails, started.elapsed()));
}

async fn end_to_end(backend: &Backend, label: &str, lines: usize, emails: usize) {
    let mut hub = TestHub::start(backend).await;
    let maildir = hub.dir.path().join("Maildir");
    let url = hub
        .start_adapters(&format!(
            // One client sends everything: no per-source limit while measuring the ingest.
            "requests_per_minute_per_source = 0\n[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\"]\nmaildir = {:?}\n",
            maildir.display().to_string()
        ))
        .await;
    let http = reqwest::Client::new();

    let started = Instant::now();
    for chunk in (0..lines).collect::<Vec<_>>().chunks(5000) {
        let body: String = chunk.iter().map(|&i| cdr_line(i)).collect();
        let r = http
            .post(format!("{url}/v1/phone/cdr"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    println!(
        "{label}  CDR lines ingested over HTTP   {}",
        rate(lines, started.elapsed())
    );

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= emails {
                    break;
                }
                let r = http
                    .post(format!("{url}/v1/69091/email"))
                    .body(email(i))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    println!(
        "{label}  e-mails ingested over HTTP     {}",
        rate(emails, started.elapsed())
    );

    let n = emails / 4;
    std::fs::create_dir_all(maildir.join("tmp")).unwrap();
    for i in 0..n {
        let tmp = maildir.join("tmp").join(format!("m{i}"));
        std::fs::write(&tmp, email(emails + i)).unwrap();
        std::fs::rename(&tmp, maildir.join("new").join(format!("m{i}"))).unwrap();
    }
    let started = Instant::now();
    while std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .next()
        .is_some()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.settle().await;
    println!(
        "{label}  e-mails through a Maildir     {}",
        rate(n, started.elapsed())
    );
    hub.stop().await;
}

#[tokio::main]
async fn main() {
    let lines = arg("--lines", 200_000);
    let emails = arg("--emails", 4_000);
    parsing(lines, emails);
    end_to_end(&Backend::Embedded, "embedded", lines / 2, emails).await;
    if let Some(kafka) = Backend::kafka() {
        end_to_end(&kafka, "kafka   ", lines / 2, emails).await;
    }
}
