//! TLS on the hub's ports with rustls: the certificate and key read from PEM files, read again
//! when the files change (a renewal needs no restart), and listeners whose handshakes run off
//! the accept loop (a slow or silent client holds up no one).
//!
//! [`Tls::load`] once at start (a bad file stops the start with its name); then every port
//! takes a [`Listener`] (axum: the desk, the adapter endpoints, the metrics) or
//! [`Tls::incoming`] (tonic: the gRPC API).

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)")]
    NoCertificate(String),
    #[error("{0}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    #[error("{path}: the key cannot sign ({reason})")]
    BadKey { path: String, reason: String },
    #[error("{0}: the key does not match the certificate")]
    Mismatch(String),
}

/// How often the files are looked at again, at most.
const RECHECK: Duration = Duration::from_secs(1);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Handshakes in progress at once, at most: silent connections cannot take every file
/// descriptor (the next ones wait to be accepted).
const HANDSHAKES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<SystemTime>, u64, Option<SystemTime>, u64);

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let m = |p: &Path| std::fs::metadata(p).ok();
    let (c, k) = (m(cert), m(key));
    Stamp(
        c.as_ref().and_then(|m| m.modified().ok()),
        c.as_ref().map_or(0, |m| m.len()),
        k.as_ref().and_then(|m| m.modified().ok()),
        k.as_ref().map_or(0, |m| m.len()),
    )
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let name = |p: &Path| p.display().to_string();
    let bytes = |p: &Path| {
        std::fs::read(p).map_err(|source| Error::Read {
            path: name(p),
            source,
        })
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes(cert)?)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate(name(cert)));
    }
    let der = PrivateKeyDer::from_pem_slice(&bytes(key)?).map_err(|_| Error::NoKey(name(key)))?;
    let signing = provider::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| Error::BadKey {
            path: name(key),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| Error::Mismatch(name(key)))?;
    Ok(certified)
}

struct Current {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

/// The certificate of the hub's ports, read again when its files change.
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Current>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// The certificate now: the files are looked at again at most once a second; a change
    /// that does not read (a renewal half-written, a wrong key) keeps the previous one and
    /// says so in the log.
    fn now(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.checked.elapsed() < RECHECK {
            return current.key.clone();
        }
        current.checked = Instant::now();
        let seen = stamp(&self.cert, &self.key);
        if seen != current.stamp {
            match read(&self.cert, &self.key) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate read again");
                    current.key = Arc::new(key);
                    current.stamp = seen;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the new TLS certificate does not read: the previous one is kept");
                }
            }
        }
        current.key.clone()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.now())
    }
}

/// TLS for the hub's ports.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `cert` (PEM chain, the server's first) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, Error> {
        let first = read(cert, key)?;
        let certificate = Arc::new(Certificate {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(Current {
                key: Arc::new(first),
                stamp: stamp(cert, key),
                checked: Instant::now(),
            }),
        });
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports TLS 1.2 and 1.3")
                .with_no_client_auth()
                .with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    /// The certificate the ports present now (DER of the server's certificate).
    pub fn presented(&self) -> Vec<u8> {
        self.certificate.now().cert[0].to_vec()
    }

    /// Connections of `listener` with their handshake done, for tonic.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> impl futures_core::Stream<Item = std::io::Result<TlsStream<TcpStream>>> + Send + 'static
    {
        let (rx, _) = handshakes(listener, self.acceptor.clone());
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|(s, _)| (Ok(s), rx))
        })
    }
}

/// Accepts on `listener` and runs each handshake in a task of its own.
fn handshakes(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> (
    mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    std::io::Result<SocketAddr>,
) {
    let local = listener.local_addr();
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, a connection reset before accept: go on.
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _slot = slot;
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (rx, local)
}

/// The address a connection came from, as the desk's and the adapters' handlers read it
/// (`ConnectInfo<Peer>`), over TLS or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A connection, over TLS or not.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// A port of the hub for axum: plain TCP, or TLS when the hub has a certificate. Every
/// connection has TCP_NODELAY (a small answer does not wait for the client's delayed ACK).
pub enum Listener {
    Plain(TcpListener),
    Tls {
        rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        local: std::io::Result<SocketAddr>,
    },
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Plain(l) => write!(f, "Listener::Plain({:?})", l.local_addr()),
            Listener::Tls { local, .. } => write!(f, "Listener::Tls({local:?})"),
        }
    }
}

impl Listener {
    pub fn new(listener: TcpListener, tls: Option<&Tls>) -> Listener {
        match tls {
            None => Listener::Plain(listener),
            Some(tls) => {
                let (rx, local) = handshakes(listener, tls.acceptor.clone());
                Listener::Tls { rx, local }
            }
        }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Listener::Plain(_) => "http",
            Listener::Tls { .. } => "https",
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Box<dyn Connection>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Listener::Plain(l) => {
                // axum's accept of a TcpListener, which retries what fails.
                let (tcp, peer) = axum::serve::Listener::accept(l).await;
                let _ = tcp.set_nodelay(true);
                (Box::new(tcp), peer)
            }
            Listener::Tls { rx, .. } => match rx.recv().await {
                Some((tls, peer)) => (Box::new(tls), peer),
                // The accept task ended (it never does while this receiver lives).
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Plain(l) => l.local_addr(),
            Listener::Tls { local, .. } => match local {
                Ok(a) => Ok(*a),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            },
        }
    }
}
