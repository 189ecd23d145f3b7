//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench portal`): the
//! citizens' space as a citizen uses it, over HTTP on loopback, one client with one call in
//! flight (a phone): the « Suivre une demande » page, then a reference and its code answered,
//! p50 / p99 server round trip, with the stylesheet (a static asset, no application call) as
//! the anchor of the same run; and what each page weighs (HTML + CSS, no script, no image).

use contacthub_tests::*;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `n` round trips of `call`, sorted, with the size of the last body.
async fn timed<F, Fut>(n: usize, mut call: F) -> (Vec<Duration>, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut out = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = call().await.expect("the space answers");
        assert!(r.status().is_success(), "{}", r.status());
        size = r.bytes().await.unwrap().len();
        out.push(t.elapsed());
    }
    out.sort();
    (out, size)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let hub = TestHub::start(&Backend::Embedded).await;
    hub.register_marie().await;
    let (reference, code) = hub.voirie_request_with_code().await;
    let http = reqwest::Client::new();
    let n = 2_000;
    let base = hub.portal.clone();
    // Warm-up: connections, caches.
    for _ in 0..50 {
        http.get(format!("{base}/suivi")).send().await.unwrap();
    }
    let (css, css_bytes) = timed(n, || http.get(format!("{base}/static/portal.css")).send()).await;
    let (form, form_bytes) = timed(n, || http.get(format!("{base}/suivi")).send()).await;
    let (answered, answer_bytes) = timed(n, || {
        http.post(format!("{base}/suivi"))
            .form(&[("reference", reference.as_str()), ("code", code.as_str())])
            .send()
    })
    .await;
    println!("citizens' space, one client, one call in flight, {n} calls each (p50 / p99):");
    for (what, d, bytes) in [
        ("stylesheet (anchor, no app call)", &css, css_bytes),
        ("« Suivre une demande » (form)", &form, form_bytes),
        ("reference + code answered", &answered, answer_bytes),
    ] {
        println!(
            "  {what:<34} {} / {}   {bytes} bytes",
            ms(percentile(d, 0.5)),
            ms(percentile(d, 0.99))
        );
    }
    println!(
        "page weight, HTML + CSS: form {} KB, answer {} KB (target < 100 KB)",
        (form_bytes + css_bytes) / 1024,
        (answer_bytes + css_bytes) / 1024
    );
}
