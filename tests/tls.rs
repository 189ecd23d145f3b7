//! TLS on the hub's ports: `serve --tls-cert --tls-key` speaks TLS on the gRPC API, the adapter
//! endpoints, the desk and the metrics; the CLI reaches it at `https://` with the authority
//! given; plain HTTP gets nothing; a renewed certificate is served without a restart.

use contacthub_tests::pki::{authority, server_cert};
use contacthub_tests::*;
use std::path::Path;
use std::process::Command;

/// The certificate a new TLS connection to `addr` (host:port) is shown.
async fn presented(addr: &str, ca: &[u8]) -> Vec<u8> {
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(ca).unwrap())
        .build()
        .unwrap();
    let connector = tokio_native_tls::TlsConnector::from(connector);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect("127.0.0.1", tcp).await.unwrap();
    tls.get_ref()
        .peer_certificate()
        .unwrap()
        .expect("a certificate")
        .to_der()
        .unwrap()
}

fn der(pem: &Path) -> Vec<u8> {
    native_tls::Certificate::from_pem(&std::fs::read(pem).unwrap())
        .unwrap()
        .to_der()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_speaks_tls_and_a_renewed_certificate_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    authority(&pki);
    let (first, first_key) = server_cert(&pki, "hub-1");
    // The files the hub is given; a renewal writes over them.
    let (cert, key) = (pki.join("tls.pem"), pki.join("tls.key"));
    std::fs::copy(&first, &cert).unwrap();
    std::fs::copy(&first_key, &key).unwrap();
    let ca_path = pki.join("ca.pem");
    let ca = std::fs::read(&ca_path).unwrap();

    let mut serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    for url in [&serve.grpc, &serve.adapters, &serve.web, &serve.metrics] {
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    }

    // The CLI over TLS, trusting the authority; not without it.
    let status = |server: &str, ca: Option<&Path>| {
        let mut c = Command::new(contacthub_bin!());
        c.args(["status", "--server", server])
            .env_remove("CONTACTHUB_CA_CERT")
            .env_remove("CONTACTHUB_SERVER");
        if let Some(ca) = ca {
            c.env("CONTACTHUB_CA_CERT", ca);
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, said) = status(&serve.grpc, Some(&ca_path));
    assert!(ok, "{said}");
    assert!(said.contains("applied   0 events"), "{said}");
    let (ok, said) = status(&serve.grpc, None);
    assert!(!ok, "an authority the system does not trust: {said}");
    let plain = serve.grpc.replacen("https://", "http://", 1);
    let (ok, said) = status(&plain, None);
    assert!(!ok, "plain HTTP on the TLS port: {said}");

    // The desk, the adapter endpoints and the metrics over TLS.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let desk = client.get(&serve.web).send().await.unwrap();
    assert!(desk.status().is_success(), "{}", desk.status());
    assert!(desk.text().await.unwrap().contains("contacthub"));
    let metrics = client.get(&serve.metrics).send().await.unwrap();
    assert!(metrics.status().is_success());
    assert!(metrics.text().await.unwrap().contains("contacthub_"));
    let adapters = client
        .get(format!("{}/metrics", serve.adapters))
        .send()
        .await
        .unwrap();
    assert!(adapters.status().is_success(), "{}", adapters.status());
    let plain_desk = reqwest::get(serve.web.replacen("https://", "http://", 1)).await;
    assert!(plain_desk.is_err(), "plain HTTP on the desk's TLS port");

    // A renewal: new files in place, the next connections get the new certificate.
    let web_addr = serve
        .web
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    assert_eq!(presented(&web_addr, &ca).await, der(&first));
    let (second, second_key) = server_cert(&pki, "hub-2");
    for (from, to) in [(&second_key, &key), (&second, &cert)] {
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    }
    let grpc_addr = serve.grpc.trim_start_matches("https://").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if presented(&web_addr, &ca).await == der(&second)
            && presented(&grpc_addr, &ca).await == der(&second)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate is not served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let (ok, said) = status(&serve.grpc, Some(&ca_path));
    assert!(ok, "after the renewal: {said}");
    // A renewal that does not read keeps the certificate that works.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(presented(&web_addr, &ca).await, der(&second));
    let _ = serve.child.kill();
    let _ = serve.child.wait();
}
