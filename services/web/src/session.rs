//! Signing in and staying signed in: an agent signs in with their commune's identity provider
//! (OpenID Connect, [`crate::signin`]) or with the bearer token of the agents file (without an
//! agents file, with nothing: the desk is open and says so), gets a random session
//! id in a cookie (HttpOnly, SameSite=Strict, Secure behind TLS) and a CSRF token every form
//! carries. Sessions live in memory: a restart signs everyone out. Each page then asks
//! [`contacthub_app::auth::Access`] with the session's credential (its token, or the agent
//! the provider's sign-in checked), exactly as the gRPC API does.

use crate::{Failure, State};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use contacthub_app::auth::{Agent, Credential, Scope};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const COOKIE: &str = "contacthub_session";
/// A session unused this long ends (an agent who left the counter).
pub const IDLE: Duration = Duration::from_secs(3600);
/// A session ends this long after its sign-in, used or not (a working day).
pub const LIFETIME: Duration = Duration::from_secs(10 * 3600);
/// At most this many sessions are kept; when full, new sign-ins are refused (no one else's
/// session is ended).
const MAX_SESSIONS: usize = 10_000;
/// At most this many sessions per agent (or on an open desk): an agent's oldest goes first.
const PER_AGENT: usize = 20;

/// Live streams (the citizen page's timeline) one session may hold open at once.
pub const STREAMS_PER_SESSION: usize = 8;
/// Live streams the whole desk holds open at once, at most.
pub const STREAMS: usize = 2_000;

/// A signed-in agent (or, on an open desk, a visitor).
#[derive(Clone)]
pub struct Session {
    /// The agent's bearer token (`None` on an open desk).
    pub token: Option<String>,
    pub agent: Option<Agent>,
    /// The identity provider's ID token of the sign-in (the hint of a sign-out there).
    pub id_token: Option<String>,
    pub csrf: String,
    seen: Instant,
    signed_in: Instant,
    live: Arc<Live>,
}

impl Session {
    /// Whether it has ended: unused for [`IDLE`], or signed in [`LIFETIME`] ago. A device of
    /// the hall (the kiosk: no visitor over lunch) ends with its lifetime only.
    fn expired(&self) -> bool {
        let device = self.agent.as_ref().is_some_and(Agent::is_borne);
        (!device && self.seen.elapsed() >= IDLE) || self.signed_in.elapsed() >= LIFETIME
    }

    /// What the session presents to [`contacthub_app::auth::Access`].
    pub fn credential(&self) -> Credential<'_> {
        match (&self.token, &self.agent) {
            (None, Some(agent)) => Credential::SignedIn(agent),
            (token, _) => Credential::Bearer(token.as_deref()),
        }
    }
}

/// What the live streams of a session share: how many are open, and the signal that ends
/// them when the session ends (sign-out, expiry).
struct Live {
    ended: watch::Sender<bool>,
    open: AtomicUsize,
}

/// One open live stream of a session: counted while alive.
pub struct StreamGuard {
    session: Arc<Live>,
    desk: Arc<AtomicUsize>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.session.open.fetch_sub(1, Ordering::SeqCst);
        self.desk.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Session {
    /// Opens a live stream of this session: its guard, and a signal that turns true when the
    /// session ends; `None` when the session or the desk holds too many already.
    pub fn open_stream(&self, sessions: &Sessions) -> Option<(StreamGuard, watch::Receiver<bool>)> {
        if self.live.open.fetch_add(1, Ordering::SeqCst) >= STREAMS_PER_SESSION {
            self.live.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        if sessions.streams.fetch_add(1, Ordering::SeqCst) >= STREAMS {
            sessions.streams.fetch_sub(1, Ordering::SeqCst);
            self.live.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some((
            StreamGuard {
                session: self.live.clone(),
                desk: sessions.streams.clone(),
            },
            self.live.ended.subscribe(),
        ))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token nor the CSRF token.
        f.debug_struct("Session")
            .field("agent", &self.agent.as_ref().map(|a| a.id.as_str()))
            .finish_non_exhaustive()
    }
}

/// The sessions of a running desk.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    /// Live streams open now, over every session.
    streams: Arc<AtomicUsize>,
}

/// Ends a session's live streams.
fn end(s: &Session) {
    let _ = s.live.ended.send(true);
}

pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    /// Opens a session; its id, for the cookie (`None` when the desk has too many).
    pub fn open(
        &self,
        token: Option<String>,
        agent: Option<Agent>,
        id_token: Option<String>,
    ) -> Option<String> {
        let id = random_hex();
        let who = agent.as_ref().map(|a| a.id.clone());
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| {
            let alive = !s.expired();
            if !alive {
                end(s);
            }
            alive
        });
        let theirs: Vec<(String, Instant)> = map
            .iter()
            .filter(|(_, s)| s.agent.as_ref().map(|a| a.id.clone()) == who)
            .map(|(k, s)| (k.clone(), s.seen))
            .collect();
        if theirs.len() >= PER_AGENT {
            if let Some((oldest, _)) = theirs.iter().min_by_key(|(_, seen)| *seen) {
                if let Some(s) = map.remove(oldest) {
                    end(&s);
                }
            }
        }
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(
            id.clone(),
            Session {
                token,
                agent,
                id_token,
                csrf: random_hex(),
                seen: Instant::now(),
                signed_in: Instant::now(),
                live: Arc::new(Live {
                    ended: watch::channel(false).0,
                    open: AtomicUsize::new(0),
                }),
            },
        );
        Some(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(id)?;
        if s.expired() {
            if let Some(s) = map.remove(id) {
                end(&s);
            }
            return None;
        }
        s.seen = Instant::now();
        Some(s.clone())
    }

    /// The agent of session `id`.
    pub fn agent_of(&self, id: &str) -> Option<Agent> {
        self.get(id).and_then(|s| s.agent)
    }

    /// Ends a session and its live streams.
    pub fn close(&self, id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.remove(id) {
            end(&s);
        }
    }

    /// Ends every session of the agent of session `id` (on every browser), with their live
    /// streams; how many. On an open desk, the visitors' sessions.
    pub fn close_everywhere(&self, id: &str) -> usize {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(who) = map.get(id).map(|s| s.agent.as_ref().map(|a| a.id.clone())) else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, s| {
            let theirs = s.agent.as_ref().map(|a| a.id.clone()) == who;
            if theirs {
                end(s);
            }
            !theirs
        });
        before - map.len()
    }
}

/// Whether a form was posted from a page of this desk: the browser's `Sec-Fetch-Site` says
/// so, or its `Origin` names the host the request went to. A client that sends neither (not
/// a browser) is let through: it cannot carry a victim's cookies.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin)
                == host
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Whether the `Host` a request names is this machine (`localhost`, `127.0.0.1`, `[::1]`,
/// any port): an open desk answers only those, so no web page can reach it by pointing its
/// own name at 127.0.0.1 (DNS rebinding).
pub fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// The session id the request's cookie carries.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The value of the request's cookie `name`.
pub fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value of a session (Secure when the desk is reached over TLS: its own
/// (`served_tls`), or a reverse proxy's that says so with `X-Forwarded-Proto: https`).
pub fn set_cookie(id: &str, headers: &HeaderMap, served_tls: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        secure(headers, served_tls)
    )
}

/// `; Secure` when the desk is reached over TLS (its own, or a reverse proxy's that says so
/// with `X-Forwarded-Proto: https`), else nothing.
pub(crate) fn secure(headers: &HeaderMap, served_tls: bool) -> &'static str {
    let tls = served_tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if tls {
        "; Secure"
    } else {
        ""
    }
}

/// Clears the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The caller of a page: a session, or a redirection to the sign-in page.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub session: Session,
    /// The browser's address, for the read trail.
    pub address: Option<std::net::IpAddr>,
}

impl Caller {
    /// The caller's scope in `tenant`'s citizens and requests (as the gRPC API checks).
    pub fn scope(&self, desk: &State, tenant: &str) -> Result<Scope, Failure> {
        Ok(desk
            .app
            .access()
            .scope_for(self.session.credential(), tenant)?
            .from(contacthub_app::audit::Via::Desk, self.address))
    }

    /// The caller's scope in `tenant`'s read trail (the data protection officer's).
    pub fn dpo_scope(&self, desk: &State, tenant: &str) -> Result<Scope, Failure> {
        Ok(desk
            .app
            .access()
            .dpo_scope_for(self.session.credential(), tenant)?
            .from(contacthub_app::audit::Via::Desk, self.address))
    }

    /// The caller's scope in `tenant`'s dashboards.
    pub fn dashboard_scope(&self, desk: &State, tenant: &str) -> Result<Scope, Failure> {
        Ok(desk
            .app
            .access()
            .dashboard_scope_for(self.session.credential(), tenant)?
            .from(contacthub_app::audit::Via::Desk, self.address))
    }

    /// The caller's scope in `tenant`'s waiting line (an agent, or a hall device).
    pub fn hall_scope(&self, desk: &State, tenant: &str) -> Result<Scope, Failure> {
        Ok(desk
            .app
            .access()
            .hall_scope_for(self.session.credential(), tenant)?
            .from(contacthub_app::audit::Via::Desk, self.address))
    }

    /// A live stream of this session (a page's server-sent events): its guard, counted while
    /// it lives, and a signal that turns true when the server stops or the session ends.
    /// Refused when the session or the desk holds too many already.
    pub fn live_stream(
        &self,
        desk: &State,
    ) -> Result<(StreamGuard, watch::Receiver<bool>), Failure> {
        let Some((guard, mut ended)) = self.session.open_stream(&desk.sessions) else {
            return Err(Failure {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "Trop de pages ouvertes en direct : fermez-en une et rechargez celle-ci."
                    .into(),
            });
        };
        let (stop_tx, stopping) = watch::channel(false);
        let mut server = desk.stopping.clone();
        // A page kept open on a live stream (the hall screen, the phone page) is in use: its
        // session does not end for want of page loads (it still ends with its lifetime).
        let (desk, id) = (desk.clone(), self.id.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(IDLE / 4);
            loop {
                tokio::select! {
                    _ = server.wait_for(|s| *s) => break,
                    _ = ended.wait_for(|e| *e) => break,
                    _ = stop_tx.closed() => return,
                    _ = ticks.tick() => {
                        if desk.sessions.get(&id).is_none() {
                            break;
                        }
                    }
                }
            }
            let _ = stop_tx.send(true);
        });
        Ok((guard, stopping))
    }

    /// A form's CSRF token must be the session's (compared in constant time).
    pub fn check_csrf(&self, token: &str) -> Result<(), Failure> {
        if !token.is_empty() && same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            Err(Failure {
                status: StatusCode::FORBIDDEN,
                message: "Formulaire expiré : rechargez la page et recommencez.".into(),
            })
        }
    }

    /// Whether the caller is an élu (dashboards only).
    pub fn is_elu(&self) -> bool {
        self.session.agent.as_ref().is_some_and(Agent::is_elu)
    }

    /// Who is signed in, for the page header.
    pub fn who(&self) -> String {
        self.session.agent.as_ref().map_or_else(
            || "accès ouvert".to_string(),
            |a| a.name.clone().unwrap_or_else(|| a.id.clone()),
        )
    }
}

impl FromRequestParts<State> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, desk: &State) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers);
        match id.as_deref().and_then(|id| desk.sessions.get(id)) {
            Some(session) => Ok(Caller {
                id: id.unwrap_or_default(),
                session,
                address: parts
                    .extensions
                    .get::<contacthub_app::source::ClientAddress>()
                    .map(|c| c.0),
            }),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next = if next.starts_with('/') && !next.starts_with("//") {
                    next
                } else {
                    "/"
                };
                Err(Redirect::to(&format!(
                    "/connexion?suite={}",
                    crate::view::url_encode(next)
                ))
                .into_response())
            }
        }
    }
}

/// Whether a token given is the one expected, in a time that does not tell how much of it
/// matched.
pub(crate) fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_at_the_end_of_its_lifetime() {
        let sessions = Sessions::default();
        let id = sessions.open(None, None, None).unwrap();
        assert!(sessions.get(&id).is_some());
        let ago = |d: Duration| Instant::now().checked_sub(d).unwrap();
        // Used a minute ago but signed in a working day ago: ended.
        {
            let mut map = sessions.inner.lock().unwrap();
            let s = map.get_mut(&id).unwrap();
            s.signed_in = ago(LIFETIME + Duration::from_secs(1));
        }
        assert!(sessions.get(&id).is_none());
        // Signed in an hour ago, unused since: ended.
        let id = sessions.open(None, None, None).unwrap();
        {
            let mut map = sessions.inner.lock().unwrap();
            let s = map.get_mut(&id).unwrap();
            s.seen = ago(IDLE + Duration::from_secs(1));
        }
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn a_hall_device_is_not_signed_out_for_want_of_visitors() {
        let access = contacthub_app::auth::Access::from_toml(&format!(
            "[[agent]]\nid='borne'\ntoken_sha256='{}'\ntenants=['69091']\nrole='borne'\n\
             [[agent]]\nid='a'\ntoken_sha256='{}'\ntenants=['69091']\n",
            contacthub_app::auth::token_hash("tk"),
            contacthub_app::auth::token_hash("ta")
        ))
        .unwrap();
        let sessions = Sessions::default();
        let kiosk = sessions
            .open(Some("tk".into()), access.caller(Some("tk")).unwrap(), None)
            .unwrap();
        let agent = sessions
            .open(Some("ta".into()), access.caller(Some("ta")).unwrap(), None)
            .unwrap();
        let ago = |d: Duration| Instant::now().checked_sub(d).unwrap();
        let age = |id: &str, seen: Duration, signed_in: Duration| {
            let mut map = sessions.inner.lock().unwrap();
            let s = map.get_mut(id).unwrap();
            s.seen = ago(seen);
            s.signed_in = ago(signed_in);
        };
        let two_hours = Duration::from_secs(2 * 3600);
        age(&kiosk, two_hours, two_hours);
        age(&agent, two_hours, two_hours);
        assert!(sessions.get(&kiosk).is_some(), "the kiosk after lunch");
        assert!(sessions.get(&agent).is_none(), "an agent who left");
        age(&kiosk, Duration::ZERO, LIFETIME + Duration::from_secs(1));
        assert!(sessions.get(&kiosk).is_none(), "the kiosk the next morning");
    }

    #[test]
    fn signing_out_everywhere_ends_the_agents_sessions_only() {
        let access = contacthub_app::auth::Access::from_toml(&format!(
            "[[agent]]\nid='a'\ntoken_sha256='{}'\ntenants=['69091']\n[[agent]]\nid='b'\ntoken_sha256='{}'\ntenants=['69091']\n",
            contacthub_app::auth::token_hash("ta"),
            contacthub_app::auth::token_hash("tb")
        ))
        .unwrap();
        let a = access.caller(Some("ta")).unwrap();
        let b = access.caller(Some("tb")).unwrap();
        let sessions = Sessions::default();
        let a1 = sessions.open(Some("ta".into()), a.clone(), None).unwrap();
        let a2 = sessions.open(Some("ta".into()), a, None).unwrap();
        let b1 = sessions.open(Some("tb".into()), b, None).unwrap();
        let (_guard, mut ended) = sessions.get(&a2).unwrap().open_stream(&sessions).unwrap();
        assert_eq!(sessions.close_everywhere(&a1), 2);
        assert!(sessions.get(&a1).is_none() && sessions.get(&a2).is_none());
        assert!(sessions.get(&b1).is_some());
        assert!(
            *ended.borrow_and_update(),
            "the other browser's live stream ends too"
        );
    }

    #[test]
    fn the_cookie_is_secure_over_the_hubs_tls_or_a_proxys() {
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-proto", "https".parse().unwrap());
        let plain = HeaderMap::new();
        assert!(!set_cookie("s", &plain, false).contains("Secure"));
        assert!(set_cookie("s", &plain, true).ends_with("; Secure"));
        assert!(set_cookie("s", &proxied, false).ends_with("; Secure"));
    }
}
