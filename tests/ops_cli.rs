//! The command line as an ops engineer uses it from the docs alone: a hub address without a
//! scheme, a clear word when no hub answers, each error said once, `status` with the
//! projector's error and open watches, `digest` while the hub serves, `quarantine list` that
//! creates nothing, `ingest` that exits 3 when something went to the quarantine, categories
//! written as the help lists them.

use contacthub_tests::*;
use std::process::{Command, Output};

fn run(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(contacthub_bin!())
        .args(args)
        .current_dir(cwd)
        .env_remove("CONTACTHUB_SERVER")
        .env_remove("CONTACTHUB_DATA")
        .output()
        .expect("running contacthub")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn the_cli_as_an_ops_engineer_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = spawn_serve(&contacthub_bin!(), &data, &[]);
    let bare = serve.grpc.trim_start_matches("http://").to_string();

    // An address as people write it, and what status says.
    let o = run(&["status", "--server", &bare], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("open watch streams 0"), "{out}");

    // Nobody there: which address was tried, and how to give another.
    let o = run(&["status", "--server", "127.0.0.1:1"], dir.path());
    assert!(!o.status.success());
    let err = text(&o);
    assert!(
        err.contains("no contacthub answers at http://127.0.0.1:1")
            && err.contains("CONTACTHUB_SERVER"),
        "{err}"
    );

    // A second hub on the same data says why, once.
    let o = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--adapters-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--portal-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        line.matches("in use by another contacthub process").count(),
        1,
        "{line}"
    );

    // The digest of the read model the hub serves, as the docs show it.
    let model = data.join("read-model");
    let o = run(
        &[
            "digest",
            "--read-model",
            model.to_str().unwrap(),
            "--server",
            &bare,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let digest = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(digest.len(), 64, "{digest}");

    // A CDR file with one line the adapter cannot read: taken, but the exit code says so.
    let cdr = dir.path().join("Master.csv");
    let mut body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/adapters/Master.csv"
    ))
    .unwrap();
    body.push_str("\"not\",\"a\",\"cdr\"\n");
    std::fs::write(&cdr, body).unwrap();
    let o = run(
        &[
            "ingest",
            "phone",
            cdr.to_str().unwrap(),
            "--url",
            &serve.adapters,
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("quarantine"), "{}", text(&o));

    // Categories as the help writes them.
    let o = run(
        &[
            "courrier",
            "register",
            "--tenant",
            "69091",
            "--from-name",
            "Jean Martin",
            "--subject",
            "Acte de naissance",
            "--category",
            "état civil",
            "--server",
            &bare,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));

    let _ = serve.child.kill();
    let _ = serve.child.wait();

    // Listing the quarantine reads the hub's folder and creates none.
    let empty = tempfile::tempdir().unwrap();
    let o = run(&["quarantine", "list"], empty.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("--data"), "{}", text(&o));
    assert!(!empty.path().join("data").exists(), "./data was created");
    let o = run(
        &["quarantine", "list", "--data", data.to_str().unwrap()],
        empty.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not"),
        "the bad line is listed: {}",
        text(&o)
    );
}

#[test]
fn json_logs_are_json_on_every_line() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(contacthub_bin!())
        .args(["serve", "--log-format", "json"])
        .args(FREE_PORTS)
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line);
    }
    // A graceful stop: every log line written before it ends.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    for line in lines.iter().map(String::as_str).chain(err.lines()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(!line.contains("Some(") && !line.contains("Cdr("), "{line}");
        assert!(v.is_object(), "{line}");
    }
    assert!(err.lines().count() > 3, "{err}");
    assert!(lines[0].contains("\"addr\":\"127.0.0.1:"), "{}", lines[0]);
}

#[test]
fn topics_init_says_at_once_when_no_broker_answers() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let o = run(&["topics", "init", "--kafka", "127.0.0.1:1"], dir.path());
    assert!(!o.status.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text(&o).contains("no Kafka broker answered at 127.0.0.1:1"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_hub_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = spawn_serve(&contacthub_bin!(), &dir.path().join("data"), &[]);
    // A timeline read, so its histogram exists.
    let (_, _) = serve.cli(&["timeline", "--tenant", "69091", "--phone", "0612345678"]);
    let page = reqwest::get(&serve.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = serve.child.kill();
    let _ = serve.child.wait();
    let typed: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(typed.len() > 8, "{page}");
    for name in &typed {
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "no HELP for {name}: {page}"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "contacthub_get_timeline_seconds",
    ] {
        assert!(typed.contains(&name), "{name} missing: {page}");
    }
}

/// A secured cluster is reached with a Kafka client properties file (--kafka-config): its
/// properties reach librdkafka (a SASL mechanism this broker does not speak is refused by the
/// handshake, not ignored; a property librdkafka does not know is named), a line that is no
/// property is refused with its number, and the SASL password is never printed.
#[test]
fn a_kafka_properties_file_reaches_the_client() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("kafka.properties");
    let topic = format!("props-{}", std::process::id());
    let init = |props: &std::path::Path| {
        run(
            &[
                "topics",
                "init",
                "--kafka",
                &brokers,
                "--topic",
                &topic,
                "--dead-letter-topic",
                &format!("{topic}-dl"),
                "--kafka-config",
                props.to_str().unwrap(),
            ],
            dir.path(),
        )
    };
    std::fs::write(&props, "# plain\nclient.id=contacthub-props-test\n").unwrap();
    let o = init(&props);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&props, "no.such.property=1\n").unwrap();
    let o = init(&props);
    assert!(!o.status.success());
    assert!(text(&o).contains("no.such.property"), "{}", text(&o));
    std::fs::write(&props, "security.protocol=SASL_SSL\nnot a property\n").unwrap();
    let o = init(&props);
    assert!(!o.status.success());
    assert!(text(&o).contains("line 2 is not key=value"), "{}", text(&o));
    std::fs::write(
        &props,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=SCRAM-SHA-512\nsasl.username=hub\nsasl.password=s3cret-never-printed\n",
    )
    .unwrap();
    let o = init(&props);
    assert!(
        !o.status.success(),
        "a broker without SASL refuses: {}",
        text(&o)
    );
    assert!(!text(&o).contains("s3cret-never-printed"), "{}", text(&o));
    assert!(text(&o).contains("--kafka-config"), "{}", text(&o));
}
