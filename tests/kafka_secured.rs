//! The shipped Kafka credentials as a hub on a secured cluster uses them: `deploy/kafka-credentials`
//! makes the authority, the broker's certificate and contacthub's client settings; a hub given
//! those settings (`--kafka-config`) creates its topics, writes and reads its events through TLS
//! (the authority and the broker's name checked) and a SASL login, and is refused with a clear
//! word when the password or the authority is not the broker's.
//!
//! The broker is tansu, a real Kafka-API broker: its SASL is SCRAM (the shipped apache/kafka
//! takes PLAIN on the same TLS, a property of the file), and its TLS is fronted here by a TLS
//! terminator holding the broker's certificate from `broker.pem`, as a load balancer would.

use contacthub_core::pb;
use contacthub_tests::*;
use std::path::Path;
use std::process::Command;

/// Runs `deploy/kafka-credentials` into `dir`.
fn credentials(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kafka-credentials");
    let o = Command::new(script).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The value of `key` in a properties file.
fn property(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_string()
}

/// A TLS terminator on `listener` holding the PEM keystore `broker_pem` (a PKCS#8 key, then
/// the certificate chain), forwarding to the broker on `backend`.
async fn tls_front(listener: tokio::net::TcpListener, backend: u16, broker_pem: &str) {
    let key_end = broker_pem.find("-----END PRIVATE KEY-----").unwrap() + 25;
    let identity = native_tls::Identity::from_pkcs8(
        broker_pem[key_end..].trim().as_bytes(),
        &broker_pem.as_bytes()[..key_end],
    )
    .unwrap();
    let acceptor =
        tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                }
            });
        }
    });
}

fn topics_init(brokers: &str, config: &Path) -> (bool, String) {
    let o = Command::new(contacthub_bin!())
        .args(["topics", "init", "--partitions", "2", "--replication", "1"])
        .args(["--kafka", brokers, "--kafka-config"])
        .arg(config)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_reaches_a_broker_through_tls_and_sasl_with_the_shipped_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("kafka");
    credentials(&creds);
    let client = std::fs::read_to_string(creds.join("client.properties")).unwrap();
    assert_eq!(property(&client, "security.protocol"), "SASL_SSL");
    let password = property(&client, "sasl.password");
    assert!(password.len() >= 40, "a random password: {password}");
    let broker_pem = std::fs::read_to_string(creds.join("broker.pem")).unwrap();
    // Never overwritten: a second run refuses and keeps the first credentials.
    let again =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kafka-credentials"))
            .arg(&creds)
            .output()
            .unwrap();
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(creds.join("broker.pem")).unwrap(),
        broker_pem
    );

    // The broker and contacthub's login on it.
    let db = dir.path().join("tansu.db");
    let inner = free_port();
    let Some(open) = Tansu::start(&db, inner, None, &[]) else {
        eprintln!("skipped: tansu is not installed");
        return;
    };
    let made = Command::new("tansu")
        .args(["user", "create", "contacthub", &password, "--broker"])
        .arg(format!("tcp://127.0.0.1:{inner}"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    drop(open);
    // From now on it takes authenticated clients only, reached through TLS on `outer`.
    let outer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outer = outer_listener.local_addr().unwrap().port();
    let _broker = Tansu::start(
        &db,
        inner,
        Some(&format!("tcp://localhost:{outer}")),
        &["--authentication"],
    )
    .unwrap();
    tls_front(outer_listener, inner, &broker_pem).await;
    let brokers = format!("localhost:{outer}");

    // contacthub's settings as made, with tansu's mechanism and the authority's path here.
    let settings = |password: &str, ca: &Path| {
        let path = dir
            .path()
            .join(format!("client-{}.properties", unique("c")));
        let text = client
            .replace("sasl.mechanisms=PLAIN", "sasl.mechanisms=SCRAM-SHA-512")
            .replace(
                &format!("sasl.password={}", property(&client, "sasl.password")),
                &format!("sasl.password={password}"),
            )
            .replace("/etc/contacthub/kafka/ca.crt", &ca.to_string_lossy());
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = settings(&password, &creds.join("ca.crt"));
    let (ok, out) = topics_init(&brokers, &good);
    assert!(ok, "{out}");
    assert!(out.contains("contacthub.events.v1"), "{out}");

    // A hub on it: a visit written through the broker comes back in the timeline.
    let mut serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &[
            "--kafka".as_ref(),
            brokers.as_ref(),
            "--kafka-config".as_ref(),
            good.as_os_str(),
        ],
    );
    let mut desk = pb::desk_service_client::DeskServiceClient::connect(serve.grpc.clone())
        .await
        .unwrap();
    desk.record_visit(pb::RecordVisitRequest {
        tenant: GIVORS.into(),
        party: Some(party_phone("06 12 34 56 78")),
        subject: "Carte d'identité".into(),
        idempotency_key: "secured-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let timeline = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("06 12 34 56 78"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(timeline.entries.len(), 1);
    // (« , hors des horaires d'ouverture » when the test runs while the town hall is shut)
    assert!(
        timeline.entries[0]
            .summary
            .starts_with("Visite à l'accueil"),
        "{}",
        timeline.entries[0].summary
    );
    let _ = serve.child.kill();
    let _ = serve.child.wait();

    // A wrong password, and an authority that is not the broker's: refused, and said so.
    let (ok, out) = topics_init(
        &brokers,
        &settings("not-the-password", &creds.join("ca.crt")),
    );
    assert!(!ok);
    assert!(out.contains("--kafka-config"), "{out}");
    let other = dir.path().join("other");
    credentials(&other);
    let (ok, out) = topics_init(&brokers, &settings(&password, &other.join("ca.crt")));
    assert!(!ok);
    assert!(out.contains("--kafka-config"), "{out}");
}
