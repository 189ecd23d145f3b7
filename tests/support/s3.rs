//! A real S3-protocol server for the tests: moto in server mode (PyPI `moto[server]`,
//! installed by scripts/test-all), started on a free loopback port with a bucket of the
//! test's own, stopped when dropped. The hubs reach it with `--content-url s3://BUCKET/…
//! --content-endpoint http://127.0.0.1:PORT` (`https://` with [`S3::start_with`]) and the
//! `AWS_*` variables of [`S3::env`].

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3 {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when started with a certificate).
    pub endpoint: String,
    /// A client that trusts the server's authority.
    http: reqwest::Client,
    /// A bucket made for this server.
    pub bucket: String,
}

/// Whether the tests must find moto (CI), rather than skip what needs it.
pub fn required() -> bool {
    std::env::var_os("CONTACTHUB_TEST_REQUIRE_S3").is_some()
}

impl S3 {
    /// A server with an empty bucket, or `None` when moto is not installed (a panic when
    /// `CONTACTHUB_TEST_REQUIRE_S3` is set).
    pub async fn start() -> Option<S3> {
        S3::start_with(None).await
    }

    /// [`S3::start`] speaking HTTPS with `tls`: the certificate and key files it presents
    /// and the authority (PEM) that signed them.
    pub async fn start_with(tls: Option<(&Path, &Path, &[u8])>) -> Option<S3> {
        let port = crate::free_port();
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut http = reqwest::Client::builder();
        if let Some((cert, key, ca)) = tls {
            command.arg("-c").arg(cert).arg("-k").arg(key);
            http = http.add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap());
        }
        let http = http.build().unwrap();
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                assert!(!required(), "moto_server is required but cannot start: {e}");
                eprintln!("skipped: no S3-protocol server (pip install 'moto[server]')");
                return None;
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let s3 = S3 {
            child,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
            http,
            bucket: crate::unique("documents"),
        };
        let started = Instant::now();
        loop {
            // moto takes a bucket made by an unsigned PUT.
            match s3
                .http
                .put(format!("{}/{}", s3.endpoint, s3.bucket))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => break,
                last if started.elapsed() > Duration::from_secs(30) => panic!(
                    "moto_server did not make a bucket on {} (last answer: {last:?})",
                    s3.endpoint
                ),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Some(s3)
    }

    /// The variables a hub reads its object storage's credentials and region from.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "contacthub-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "contacthub-test-secret".into()),
            ("AWS_REGION", "eu-west-3".into()),
        ]
    }

    /// `--content-url` for documents under `prefix` of the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// `serve`'s (or `migrate`'s) arguments for documents under `prefix`.
    pub fn args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--content-url".into(),
            self.url(prefix),
            "--content-endpoint".into(),
            self.endpoint.clone(),
        ]
    }

    /// A content store over the bucket, as a hub opens it (credentials given here, not
    /// through the process's environment).
    pub async fn store(
        &self,
        local: &std::path::Path,
        prefix: &str,
    ) -> contacthub_app::content::ContentStore {
        contacthub_app::content::ContentStore::s3_with(
            local,
            &self.url(prefix),
            &contacthub_app::content::Transport {
                endpoint: Some(self.endpoint.clone()),
                ..Default::default()
            },
            &self.env(),
        )
        .await
        .expect("opening the test bucket")
    }

    /// The keys of the objects under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let body = self
            .http
            .get(format!(
                "{}/{}?list-type=2&prefix={prefix}",
                self.endpoint, self.bucket
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
