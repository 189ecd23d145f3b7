//! The communes' mailboxes on an IMAP server, read by `serve`: one connection per mailbox,
//! logged in, its folder selected, new messages fetched by UID and read by the [`Email`]
//! adapter through [`Ingest`] (so a delivery status notification reaches the bounce handling
//! as from a Maildir), then moved or flagged once on the log — never deleted before. New mail
//! is awaited with IDLE when the server has it, by polling otherwise; a lost connection is
//! made again with backoff.
//!
//! Each mailbox remembers its folder's UIDVALIDITY and the last UID taken in a file of its
//! own under DATA/connectors, replaced whole after each batch: a restart reads from where it
//! was; a new UIDVALIDITY (the folder rebuilt) reads the folder again, harmless since an
//! e-mail's event id comes from its Message-ID.

use crate::config::{AdaptersConfig, ImapSettings, ImapTls};
use crate::email::Email;
use crate::ingest::Ingest;
use crate::{Error, Input, Rejected};
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The connector's name in the health table and the metrics.
pub const CONNECTOR: &str = "imap";

/// UIDs fetched per command (their sizes first, then their bodies).
const CHUNK: usize = 50;
/// Bytes fetched per command at most (a message larger is fetched alone).
const FETCH_BYTES: u64 = 32 * 1024 * 1024;
/// IDLE is renewed this often (RFC 2177: servers may log a client off after 30 minutes;
/// firewalls forget a quiet connection sooner).
const IDLE_RENEW: Duration = Duration::from_secs(10 * 60);
/// No answer from the server for this long while connecting or fetching: the connection is
/// given up and made again.
const SILENCE: Duration = Duration::from_secs(120);

/// The connection: plain TCP or TLS over it.
#[derive(Debug)]
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Session = async_imap::Session<Conn>;

/// The error of a mailbox's session that failed: the connection is made again.
fn lost(detail: impl Into<String>) -> Error {
    Error::Unavailable {
        system: "IMAP",
        detail: detail.into(),
    }
}

/// What a mailbox remembers: its folder's UIDVALIDITY and the last UID taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    validity: u32,
    last_uid: u32,
}

/// Where a mailbox keeps its mark: named by the commune, the server, the account and the
/// folder (a digest: an account may be an e-mail address).
pub fn mark_path(dir: &Path, tenant: &str, m: &ImapSettings) -> PathBuf {
    use sha2::{Digest, Sha256};
    let id = Sha256::digest(format!(
        "{}\0{}\0{}\0{}",
        m.host,
        m.port(),
        m.user,
        m.folder
    ));
    let short: String = id.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("imap-{tenant}-{short}.uid"))
}

fn read_mark(path: &Path) -> Mark {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(validity)), Some(Ok(last_uid))) => Mark { validity, last_uid },
        _ => Mark::default(),
    }
}

fn write_mark(path: &Path, mark: Mark) -> Result<(), Error> {
    crate::write_state(path, &format!("{} {}\n", mark.validity, mark.last_uid))
}

/// Reads every commune's mailboxes until `stop`.
pub async fn run(
    ingest: Ingest,
    email: Email,
    cfg: Arc<AdaptersConfig>,
    dir: PathBuf,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for c in &cfg.communes {
        for m in &c.imap {
            // A message's documents may be as large as the mailbox lets a message be.
            let mut ingest = ingest.clone();
            ingest.max_document_bytes = ingest
                .max_document_bytes
                .max(u64::from(m.max_message_mb) * 1024 * 1024);
            let mailbox = Mailbox {
                ingest,
                email: email.clone(),
                tenant: c.code.clone(),
                mark: mark_path(&dir, &c.code, m),
                settings: m.clone(),
            };
            tasks.push(tokio::spawn(mailbox.follow(stop.clone())));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

struct Mailbox {
    ingest: Ingest,
    email: Email,
    tenant: String,
    mark: PathBuf,
    settings: ImapSettings,
}

impl Mailbox {
    /// Sessions one after the other until `stop`, waiting longer after each failure (1 s,
    /// doubled, a minute at most; back to 1 s after a session that lasted a minute).
    async fn follow(self, mut stop: watch::Receiver<bool>) {
        let mut pause = Duration::from_secs(1);
        tracing::info!(tenant = %self.tenant, folder = %self.settings.folder, "reading an IMAP mailbox");
        loop {
            let began = std::time::Instant::now();
            match self.session(&mut stop).await {
                Ok(()) => return,
                Err(e) => {
                    if began.elapsed() > Duration::from_secs(60) {
                        pause = Duration::from_secs(1);
                    }
                    tracing::warn!(tenant = %self.tenant, error = %e, "IMAP mailbox: connecting again");
                    self.health(Some("boîte IMAP injoignable ou connexion perdue"));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped(&mut stop) => return,
            }
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    }

    fn health(&self, why: Option<&str>) {
        self.ingest.connector(CONNECTOR, &self.tenant, why);
    }

    async fn connect(&self) -> Result<Session, Error> {
        let s = &self.settings;
        let tcp = tokio::time::timeout(SILENCE, TcpStream::connect((s.host.as_str(), s.port())))
            .await
            .map_err(|_| lost("connecting timed out"))?
            .map_err(|e| lost(format!("connecting: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| lost(format!("connecting: {e}")))?;
        // Probes a quiet connection (an IDLE), so a firewall keeps it and a dead one is seen.
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(20)),
        );
        let tls = || -> Result<tokio_native_tls::TlsConnector, Error> {
            let mut b = tokio_native_tls::native_tls::TlsConnector::builder();
            if let Some(ca) = &s.ca_file {
                let pem = std::fs::read(ca).map_err(|e| lost(format!("ca_file: {e}")))?;
                let cert = tokio_native_tls::native_tls::Certificate::from_pem(&pem)
                    .map_err(|e| lost(format!("ca_file: {e}")))?;
                b.add_root_certificate(cert);
            }
            b.build()
                .map(tokio_native_tls::TlsConnector::from)
                .map_err(|e| lost(format!("TLS: {e}")))
        };
        let wrap = |tcp| async move {
            tls()?
                .connect(&s.host, tcp)
                .await
                .map(|t| Conn::Tls(Box::new(t)))
                .map_err(|e| lost(format!("TLS: {e}")))
        };
        let conn = match s.tls {
            ImapTls::None => Conn::Plain(tcp),
            ImapTls::Tls => wrap(tcp).await?,
            ImapTls::Starttls => {
                let mut plain = async_imap::Client::new(Conn::Plain(tcp));
                greeting(&mut plain).await?;
                plain.run_command_and_check_ok("STARTTLS", None).await?;
                let Conn::Plain(tcp) = plain.into_inner() else {
                    unreachable!("the connection was made plain")
                };
                wrap(tcp).await?
            }
        };
        let mut client = async_imap::Client::new(conn);
        if s.tls != ImapTls::Starttls {
            greeting(&mut client).await?;
        }
        let logged_in = match (&s.password, &s.oauth2) {
            (Some(password), _) => {
                tokio::time::timeout(SILENCE, client.login(&s.user, password)).await
            }
            (None, Some(oauth2)) => {
                let token = token(oauth2).await?;
                let xoauth2 = XOAuth2 {
                    first: format!("user={}\x01auth=Bearer {token}\x01\x01", s.user),
                    asked: false,
                };
                tokio::time::timeout(SILENCE, client.authenticate("XOAUTH2", xoauth2)).await
            }
            (None, None) => return Err(lost("no credentials")),
        };
        let session = logged_in
            .map_err(|_| lost("login timed out"))?
            .map_err(|(e, _)| Error::Refused {
                system: "IMAP",
                detail: e.to_string(),
            })?;
        Ok(session)
    }

    /// One session: logged in, the folder selected, new mail taken, then waiting for more.
    /// `Ok` when stopped.
    async fn session(&self, stop: &mut watch::Receiver<bool>) -> Result<(), Error> {
        let s = &self.settings;
        let mut session = self.connect().await?;
        let caps = within(session.capabilities()).await?;
        let (idle, can_move) = (caps.has_str("IDLE"), caps.has_str("MOVE"));
        if let Some(target) = &s.move_to {
            // Made once; « already exists » afterwards.
            let _ = within(session.create(folder_name(target))).await;
        }
        let folder = within(session.select(folder_name(&s.folder))).await?;
        let validity = folder.uid_validity.unwrap_or(0);
        let mut mark = read_mark(&self.mark);
        if mark.validity != validity {
            if mark != Mark::default() {
                tracing::warn!(tenant = %self.tenant, "the folder's UIDVALIDITY changed: reading it again");
            }
            mark = Mark {
                validity,
                last_uid: 0,
            };
        }
        self.health(None);
        loop {
            self.take_new(&mut session, &mut mark, can_move).await?;
            if *stop.borrow() {
                let _ = session.logout().await;
                return Ok(());
            }
            // New mail announced during the last commands: taken before idling.
            let mut announced = false;
            while let Ok(r) = session.unsolicited_responses.try_recv() {
                announced |= matches!(
                    r,
                    async_imap::types::UnsolicitedResponse::Exists(_)
                        | async_imap::types::UnsolicitedResponse::Recent(_)
                );
            }
            if announced {
                continue;
            }
            if idle {
                let mut handle = session.idle();
                within(handle.init()).await?;
                let stopping = {
                    let (wait, interrupt) = handle.wait_with_timeout(IDLE_RENEW);
                    tokio::pin!(wait);
                    tokio::select! {
                        r = &mut wait => { r?; false }
                        _ = stopped(stop) => {
                            drop(interrupt);
                            let _ = wait.await;
                            true
                        }
                    }
                };
                session = within(handle.done()).await?;
                if stopping {
                    let _ = session.logout().await;
                    return Ok(());
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(u64::from(s.poll_seconds))) => {}
                    _ = stopped(stop) => {
                        let _ = session.logout().await;
                        return Ok(());
                    }
                }
                within(session.noop()).await?;
            }
        }
    }

    /// Takes the messages after the last UID taken, in UID order, batch by batch: sizes,
    /// bodies, onto the log, moved or flagged, the mark moved.
    async fn take_new(
        &self,
        session: &mut Session,
        mark: &mut Mark,
        can_move: bool,
    ) -> Result<(), Error> {
        let s = &self.settings;
        let found =
            within(session.uid_search(format!("UID {}:*", mark.last_uid.saturating_add(1))))
                .await?;
        // `n:*` names the last message even when its UID is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > mark.last_uid).collect();
        uids.sort_unstable();
        let limit = u64::from(s.max_message_mb) * 1024 * 1024;
        for chunk in uids.chunks(CHUNK) {
            let sizes: Vec<(u32, u64)> = tokio::time::timeout(SILENCE, async {
                session
                    .uid_fetch(set(chunk), "(UID RFC822.SIZE)")
                    .await?
                    .try_filter_map(|f| async move {
                        // A size the server does not give: fetched alone, as the largest.
                        Ok(f.uid.map(|u| (u, f.size.map_or(FETCH_BYTES, u64::from))))
                    })
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await
            .map_err(|_| lost("the server went silent"))??;
            whole(chunk, sizes.iter().map(|(u, _)| *u))?;
            let mut groups: Vec<Vec<u32>> = Vec::new();
            let mut bytes = 0;
            let mut too_big = Vec::new();
            for &(uid, size) in &sizes {
                if size > limit {
                    too_big.push((uid, size));
                    continue;
                }
                match groups.last_mut() {
                    Some(g) if bytes + size <= FETCH_BYTES => g.push(uid),
                    _ => {
                        groups.push(vec![uid]);
                        bytes = 0;
                    }
                }
                bytes += size;
            }
            for (uid, size) in too_big {
                self.keep_too_big(session, uid, size).await?;
            }
            for group in groups {
                self.take(session, &group, can_move).await?;
            }
            let last = chunk.last().copied().unwrap_or(mark.last_uid);
            mark.last_uid = mark.last_uid.max(last);
            write_mark(&self.mark, *mark)?;
        }
        Ok(())
    }

    /// Fetches `uids`, puts them on the log, then moves or flags them.
    async fn take(&self, session: &mut Session, uids: &[u32], can_move: bool) -> Result<(), Error> {
        let fetched: Vec<(u32, Vec<u8>)> = tokio::time::timeout(SILENCE, async {
            session
                .uid_fetch(set(uids), "(UID BODY.PEEK[])")
                .await?
                .try_filter_map(|f| async move { Ok(f.uid.zip(f.body().map(<[u8]>::to_vec))) })
                .try_collect::<Vec<_>>()
                .await
        })
        .await
        .map_err(|_| lost("the server went silent"))??;
        whole(uids, fetched.iter().map(|(u, _)| *u))?;
        let received_us = self.ingest.app.now();
        let origins: Vec<String> = fetched
            .iter()
            .map(|(uid, _)| format!("imap {} uid {uid}", self.settings.folder))
            .collect();
        let inputs: Vec<Input<'_>> = fetched
            .iter()
            .zip(&origins)
            .map(|((_, bytes), origin)| Input {
                bytes,
                origin,
                tenant: Some(&self.tenant),
                received_us,
            })
            .collect();
        self.ingest.run_batch(&self.email, &inputs).await?;
        let taken: Vec<u32> = fetched.iter().map(|(u, _)| *u).collect();
        if !taken.is_empty() {
            self.file_away(session, &taken, can_move).await?;
        }
        Ok(())
    }

    /// What becomes of messages on the log: moved to `move_to` (MOVE, else a copy there and
    /// the original marked deleted and expunged), or flagged read.
    async fn file_away(
        &self,
        session: &mut Session,
        uids: &[u32],
        can_move: bool,
    ) -> Result<(), Error> {
        let set = set(uids);
        match &self.settings.move_to {
            Some(folder) if can_move => within(session.uid_mv(&set, folder_name(folder))).await?,
            Some(folder) => {
                within(session.uid_copy(&set, folder_name(folder))).await?;
                flag(session, &set, "\\Deleted").await?;
                within(async {
                    session
                        .uid_expunge(&set)
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
            }
            None => {
                flag(session, &set, "\\Seen").await?;
            }
        }
        Ok(())
    }

    /// A message over `max_message_mb`: left in the mailbox, its headers kept in the
    /// quarantine with the reason.
    async fn keep_too_big(&self, session: &mut Session, uid: u32, size: u64) -> Result<(), Error> {
        let header: Vec<u8> = within(async {
            session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])")
                .await?
                .try_filter_map(|f| async move { Ok(f.header().map(<[u8]>::to_vec)) })
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .concat();
        let reason = format!(
            "message of {} MB, over the mailbox's max_message_mb ({} MB): left in the mailbox, unread",
            size.div_ceil(1024 * 1024),
            self.settings.max_message_mb
        );
        let origin = format!("imap {} uid {uid}", self.settings.folder);
        self.ingest.quarantine.put(
            crate::email::SOURCE,
            &origin,
            &header,
            &[Rejected {
                locator: format!("uid {uid}"),
                reason: reason.clone(),
                detail: None,
                tenant: Some(self.tenant.clone()),
                raw: header.clone(),
            }],
            self.ingest.app.now(),
        )?;
        tracing::warn!(tenant = %self.tenant, size, "an IMAP message too large was left in its mailbox");
        self.health(Some("message trop volumineux laissé dans la boîte"));
        Ok(())
    }
}

/// SASL XOAUTH2 (Google's and Microsoft's): the user and the bearer token first; an empty
/// answer to the server's error, which then says NO.
struct XOAuth2 {
    first: String,
    asked: bool,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        if std::mem::replace(&mut self.asked, true) {
            String::new()
        } else {
            self.first.clone()
        }
    }
}

/// An access token from the identity provider (client credentials grant).
async fn token(o: &crate::config::OAuth2Settings) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Granted {
        access_token: String,
    }
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", o.client_id.as_str()),
        ("client_secret", o.client_secret.as_str()),
        ("scope", o.scope.as_str()),
    ];
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| lost(format!("HTTP client: {e}")))?
        .post(&o.token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| lost(format!("token endpoint: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(lost(format!("token endpoint: HTTP {status}")));
    }
    resp.json::<Granted>()
        .await
        .map(|g| g.access_token)
        .map_err(|e| lost(format!("token endpoint: {e}")))
}

/// `f`, given up after [`SILENCE`] without an answer (a server or a network that hangs).
async fn within<T, E: Into<Error>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    match tokio::time::timeout(SILENCE, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(lost("the server went silent")),
    }
}

/// Until `stop` says so.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Reads the server's greeting.
async fn greeting(client: &mut async_imap::Client<Conn>) -> Result<(), Error> {
    match tokio::time::timeout(SILENCE, client.read_response()).await {
        Ok(Some(Ok(_))) => Ok(()),
        Ok(Some(Err(e))) => Err(lost(e.to_string())),
        Ok(None) => Err(lost("closed before its greeting")),
        Err(_) => Err(lost("no greeting")),
    }
}

/// Whether a fetch gave every UID asked for: a connection closed in the middle ends the
/// answer early, and what it did not give must not be taken as read.
fn whole(asked: &[u32], got: impl Iterator<Item = u32>) -> Result<(), Error> {
    let got: std::collections::HashSet<u32> = got.collect();
    match asked.iter().filter(|u| !got.contains(u)).count() {
        0 => Ok(()),
        missing => Err(lost(format!(
            "the server's answer ended early ({missing} of {} messages missing)",
            asked.len()
        ))),
    }
}

/// `1,2,5` for UIDs.
/// Adds `flag` to the messages `set` names.
async fn flag(session: &mut Session, set: &str, flag: &str) -> Result<(), Error> {
    let query = format!("+FLAGS.SILENT ({flag})");
    within(async {
        session
            .uid_store(set, &query)
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(())
}

fn set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A folder name as IMAP names it (RFC 3501 § 5.1.3, modified UTF-7): « Traité » is
/// `Trait&AOk-`, `&` is `&-`.
fn folder_name(name: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = String::new();
    let mut wide: Vec<u16> = Vec::new();
    let flush = |wide: &mut Vec<u16>, out: &mut String| {
        if !wide.is_empty() {
            let bytes: Vec<u8> = wide.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&b64.encode(bytes).replace('/', ","));
            out.push('-');
            wide.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut wide, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            wide.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut wide, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_kept_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("connectors/imap-69091-x.uid");
        assert_eq!(read_mark(&p), Mark::default());
        let m = Mark {
            validity: 1_733_000_000,
            last_uid: 4_999,
        };
        write_mark(&p, m).unwrap();
        assert_eq!(read_mark(&p), m);
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(read_mark(&p), Mark::default());
        assert_eq!(set(&[3, 4, 9]), "3,4,9");
        assert_eq!(folder_name("Traité"), "Trait&AOk-");
        assert_eq!(folder_name("Courrier & Co"), "Courrier &- Co");
        assert_eq!(
            folder_name("Éléments envoyés"),
            "&AMk-l&AOk-ments envoy&AOk-s"
        );
        assert_eq!(folder_name("INBOX"), "INBOX");
    }
}
