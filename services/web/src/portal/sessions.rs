//! The citizens' space's sessions: in memory, one per browser that signed in with
//! FranceConnect, bound to one commune, ended after 30 minutes without a page or 12 hours
//! after the sign-in. The cookie is HttpOnly and SameSite=Lax (the browser comes back from
//! FranceConnect's site signed in); every form carries the session's CSRF token.

use crate::session::random_hex;
use axum::http::HeaderMap;
use contacthub_app::space::Citizen;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "contacthub_espace";
/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after its sign-in, used or not.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once, at most (the oldest unused first out).
const MAX_SESSIONS: usize = 50_000;
/// Sessions of one account at once, at most (a phone, a computer, a relative's…): one more
/// ends its oldest, so no one fills the space's memory by signing in again and again.
const MAX_PER_ACCOUNT: usize = 5;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub citizen: Citizen,
    pub csrf: String,
    /// FranceConnect's ID token: the hint of the sign-out there.
    pub id_token: String,
    seen: Instant,
    signed_in: Instant,
}

impl Session {
    fn expired(&self) -> bool {
        self.seen.elapsed() >= IDLE || self.signed_in.elapsed() >= LIFETIME
    }
}

/// The sessions of a running space.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `citizen`; its id, for the cookie.
    pub fn open(&self, citizen: Citizen, id_token: String) -> String {
        let id = random_hex();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut theirs: Vec<(Instant, String)> = map
            .iter()
            .filter(|(_, s)| {
                s.citizen.tenant() == citizen.tenant() && s.citizen.account() == citizen.account()
            })
            .map(|(k, s)| (s.seen, k.clone()))
            .collect();
        if theirs.len() >= MAX_PER_ACCOUNT {
            theirs.sort();
            for (_, k) in &theirs[..=theirs.len() - MAX_PER_ACCOUNT] {
                map.remove(k);
            }
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| !s.expired());
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.seen)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        let now = Instant::now();
        map.insert(
            id.clone(),
            Session {
                citizen,
                csrf: random_hex(),
                id_token,
                seen: now,
                signed_in: now,
            },
        );
        id
    }

    /// The live session of the request's cookie, seen now.
    pub fn of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = crate::session::cookie_named(headers, COOKIE)?;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(&id)?;
        if s.expired() {
            map.remove(&id);
            return None;
        }
        s.seen = Instant::now();
        Some((id, s.clone()))
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The `Set-Cookie` value of session `id`.
pub fn set_cookie(id: &str, headers: &HeaderMap, served_tls: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        crate::session::secure(headers, served_tls)
    )
}

/// Clears the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}
