//! A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`, installed by
//! scripts/test-all), started in the foreground with a configuration of its own in a
//! temporary folder — IMAP on a free loopback port, users from a password file, mail in
//! Maildirs —, stopped when dropped. Mail is delivered as a mail server does it: a file
//! written in the user's `Maildir/tmp` and renamed into `new/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Dovecot {
    dir: tempfile::TempDir,
    /// IMAP (STARTTLS offered).
    pub port: u16,
    /// IMAPS (TLS from the first byte).
    pub tls_port: u16,
    child: Option<Child>,
    /// The owner of the mail files (Dovecot refuses root's mail).
    uid: u32,
    gid: u32,
    delivered: std::sync::atomic::AtomicU64,
}

/// Whether the tests must find Dovecot (CI), rather than skip what needs it.
pub fn required() -> bool {
    std::env::var_os("CONTACTHUB_TEST_REQUIRE_DOVECOT").is_some()
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Dovecot {
    /// A server with the users `(name, password)`, or `None` when Dovecot is not installed
    /// (a panic when `CONTACTHUB_TEST_REQUIRE_DOVECOT` is set).
    pub fn start(users: &[(&str, &str)]) -> Option<Dovecot> {
        Dovecot::start_with(users, None)
    }

    /// [`Dovecot::start`], also taking OAuth 2.0 bearer tokens (`AUTHENTICATE XOAUTH2`) that
    /// the introspection endpoint `introspection_url` says are active for the user.
    pub fn start_with(users: &[(&str, &str)], introspection_url: Option<&str>) -> Option<Dovecot> {
        let Some(bin) = binary() else {
            assert!(!required(), "Dovecot is required but not installed");
            eprintln!("skipped: Dovecot (dovecot-imapd) is not installed");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("dc").tempdir().unwrap();
        let root = is_root();
        // As root, mail belongs to nobody; otherwise to the user running the tests.
        let (uid, gid) = if root { (65534, 65534) } else { current_ids() };
        let path = dir.path();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(path.join(d)).unwrap();
        }
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
            chown(&path.join("mail"), uid, gid);
        }
        let passwd: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}:::::\n"))
            .collect();
        std::fs::write(path.join("users"), passwd).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        // A certificate for localhost from an authority of its own (the tests' `ca_file`).
        crate::pki::authority(path);
        let (cert, key) = crate::pki::server_cert(path, "imap");
        let (cert, key) = (cert.display(), key.display());
        let who = if root {
            String::new()
        } else {
            let name = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            format!("default_internal_user = {name}\ndefault_login_user = {name}\ndefault_internal_group = {name}\n")
        };
        let p = path.display();
        let oauth2 = match introspection_url {
            Some(url) => {
                std::fs::write(
                    path.join("oauth2.conf.ext"),
                    format!("introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"),
                )
                .unwrap();
                format!("passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {p}/oauth2.conf.ext\n}}\n")
            }
            None => String::new(),
        };
        let config = format!(
            "base_dir = {p}/run\nstate_dir = {p}/state\ninstance_name = dc{port}\n\
             log_path = {p}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n\
             ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login xoauth2 oauthbearer\n\
             mail_location = maildir:{p}/mail/%u/Maildir\nfirst_valid_uid = 1\nlast_valid_uid = 0\n\
             {who}{oauth2}\
             passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n  args = scheme=PLAIN username_format=%u {p}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={p}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(path.join("dovecot.conf"), config).unwrap();
        let mut d = Dovecot {
            dir,
            port,
            tls_port,
            child: None,
            uid,
            gid,
            delivered: Default::default(),
        };
        d.launch(&bin);
        Some(d)
    }

    fn launch(&mut self, bin: &Path) {
        let child = Command::new(bin)
            .args(["-F", "-c"])
            .arg(self.dir.path().join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dovecot starts");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default();
        panic!("dovecot did not listen on {}:\n{log}", self.port);
    }

    /// Stops the server (SIGTERM, as an administrator restarting it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), 15);
            let _ = c.wait();
        }
        // Its port is free again once it is gone.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Starts it again, on the same port, with the same mail.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(&binary().expect("dovecot"));
    }

    /// The authority that signed the certificate the server presents for `localhost` (the
    /// tests' `ca_file`).
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where `user`'s mail is (a Maildir).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user).join("Maildir")
    }

    /// Delivers `message` to `user`'s folder (`""`: INBOX, else a folder's name as IMAP names
    /// it, e.g. `Trait&AOk-`), as a mail server does.
    pub fn deliver_to(&self, user: &str, folder: &str, message: &[u8]) {
        let mut dir = self.maildir(user);
        if !folder.is_empty() {
            dir = dir.join(format!(".{folder}"));
        }
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let user_dir = self.dir.path().join("mail").join(user);
        for d in [user_dir.clone(), self.maildir(user), dir.clone()] {
            chown(&d, self.uid, self.gid);
        }
        for sub in ["tmp", "new", "cur"] {
            chown(&dir.join(sub), self.uid, self.gid);
        }
        let n = self
            .delivered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!(
            "{}.M{n}P{}.test",
            chrono::Utc::now().timestamp(),
            std::process::id()
        );
        let tmp = dir.join("tmp").join(&name);
        std::fs::write(&tmp, message).unwrap();
        chown(&tmp, self.uid, self.gid);
        std::fs::rename(&tmp, dir.join("new").join(&name)).unwrap();
    }

    pub fn deliver(&self, user: &str, message: &[u8]) {
        self.deliver_to(user, "", message);
    }

    /// Messages in `user`'s folder (`""`: INBOX), with their Maildir flags (`S`: seen).
    pub fn messages(&self, user: &str, folder: &str) -> Vec<(String, String)> {
        let mut dir = self.maildir(user);
        if !folder.is_empty() {
            dir = dir.join(format!(".{folder}"));
        }
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let flags = name
                    .split_once(":2,")
                    .map(|(_, f)| f.to_string())
                    .unwrap_or_default();
                out.push((name, flags));
            }
        }
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    current_ids().0 == 0
}

fn current_ids() -> (u32, u32) {
    let out = |flag: &str| {
        Command::new("id")
            .arg(flag)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    (out("-u"), out("-g"))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
}

fn signal(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}
