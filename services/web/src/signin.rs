//! Signing in and out of the desk: with the commune's identity provider (OpenID Connect,
//! authorization code flow with PKCE, state and nonce: [`provider`] sends the browser there,
//! [`back`] takes it back, the application layer's [`contacthub_app::oidc`] checks what it
//! brings), with a token of the agents file (service accounts, trials), or on an open desk
//! with nothing. Failed sign-ins count against the browser's address ([`crate::throttle`]).

use crate::pages::{see_other, Page};
use crate::session::{self, Caller};
use crate::{render, view, Failure, State};
use axum::extract::{Query, State as Axum};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use contacthub_app::auth::Agent;
use contacthub_app::oidc::Pending;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie that ties a sign-in at the provider to the browser that started it.
const STATE_COOKIE: &str = "contacthub_oidc";
/// How long a browser has to come back from the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Sign-ins under way at once, at most (oldest first out).
const MAX_PENDING: usize = 10_000;
/// Sign-ins under way from one address, at most (its oldest first out): one address cannot
/// push everyone else's out.
const PENDING_PER_SOURCE: usize = 20;

/// A sign-in sent to the provider: what it needs back, where it goes, from where, since when.
struct Start {
    pending: Pending,
    next: String,
    source: Option<IpAddr>,
    at: Instant,
}

/// Sign-ins sent to the provider and not back yet, by their `state`.
#[derive(Default)]
pub struct Starts {
    inner: Mutex<HashMap<String, Start>>,
}

impl Starts {
    pub(crate) fn put(&self, pending: Pending, next: String, source: Option<IpAddr>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_PENDING {
            map.retain(|_, s| s.at.elapsed() < PENDING_FOR);
        }
        let theirs: Vec<(&String, Instant)> = map
            .iter()
            .filter(|(_, s)| s.source == source)
            .map(|(k, s)| (k, s.at))
            .collect();
        let oldest = |of: Vec<(&String, Instant)>| {
            of.into_iter()
                .min_by_key(|(_, at)| *at)
                .map(|(k, _)| k.clone())
        };
        let evict = if theirs.len() >= PENDING_PER_SOURCE {
            oldest(theirs)
        } else if map.len() >= MAX_PENDING {
            oldest(map.iter().map(|(k, s)| (k, s.at)).collect())
        } else {
            None
        };
        if let Some(k) = evict {
            map.remove(&k);
        }
        map.insert(
            pending.state.clone(),
            Start {
                pending,
                next,
                source,
                at: Instant::now(),
            },
        );
    }

    /// The sign-in of `state`, once (a replayed return finds nothing).
    pub(crate) fn take(&self, state: &str) -> Option<(Pending, String)> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.remove(state)?;
        (s.at.elapsed() < PENDING_FOR).then_some((s.pending, s.next))
    }
}

/// Where an agent starts their day: an élu on the dashboard, an agent of a service on their
/// worklist, the accueil and the mail room on the search.
pub(crate) fn landing(agent: Option<&Agent>) -> &'static str {
    match agent {
        Some(a) if a.is_elu() => "/tableau-de-bord",
        Some(a) if a.is_dpo() => "/journal",
        Some(a) if a.is_borne() => "/accueil/borne",
        Some(a) if !a.is_generalist() => "/demandes",
        _ => "/citoyens",
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    suite: String,
}

/// Where to go after signing in: a path of this desk only (no scheme, no other host, no
/// control character or space a browser would strip into `//elsewhere`).
fn safe_next(next: &str) -> &str {
    let path_only = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2_000
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if path_only {
        next
    } else {
        "/"
    }
}

pub async fn login_form(Axum(desk): Axum<State>, Query(q): Query<NextQuery>) -> Response {
    render(&login_page(&desk, &q.suite, String::new()))
}

/// The sign-in page, with `error` when a sign-in failed.
fn login_page(desk: &State, next: &str, error: String) -> view::Login {
    view::Login {
        open: desk.app.access().is_open(),
        provider: desk
            .app
            .access()
            .oidc()
            .and_then(|p| p.desk_label())
            .map(str::to_string),
        provider_url: format!(
            "/connexion/fournisseur?suite={}",
            view::url_encode(safe_next(next))
        ),
        next: safe_next(next).to_string(),
        error,
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    suite: String,
}

pub async fn login(
    Axum(desk): Axum<State>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    // Signing in from another site (login CSRF) is refused: the browser says where the form
    // came from.
    if !session::same_origin(&headers) {
        tracing::info!("web desk: sign-in from another origin refused");
        return Failure {
            status: StatusCode::FORBIDDEN,
            message: "Connexion refusée : le formulaire ne vient pas de ce poste.".into(),
        }
        .into_response();
    }
    let token = f.token.trim();
    let (token, agent) = if desk.app.access().is_open() {
        (None, None)
    } else {
        if desk.app.access().oidc().is_some() && contacthub_app::oidc::looks_like_jwt(token) {
            // A provider's token pasted here would skip the sign-in's checks (nonce, acr).
            let page = login_page(
                &desk,
                &f.suite,
                "Un jeton du fournisseur d'identité ne se colle pas ici : utilisez le bouton « Se connecter avec… ».".into(),
            );
            return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
        }
        match desk.app.access().caller(Some(token)) {
            Ok(agent) => (Some(token.to_string()), agent),
            Err(_) => {
                let page = login_page(
                    &desk,
                    &f.suite,
                    "Jeton inconnu : vérifiez-le et recommencez.".into(),
                );
                return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
            }
        }
    };
    let next = safe_next(&f.suite).to_string();
    let Some(id) = open_session(&desk, token, agent, None) else {
        return too_many_sessions();
    };
    signed_in(&desk, &id, &headers, &next, false)
}

/// Opens a session; its id (`None` when the desk holds too many).
fn open_session(
    desk: &State,
    token: Option<String>,
    agent: Option<Agent>,
    id_token: Option<String>,
) -> Option<String> {
    if let Some(a) = &agent {
        tracing::info!(agent = %a.id, "web desk: signed in");
    }
    desk.sessions.open(token, agent, id_token)
}

fn too_many_sessions() -> Response {
    Failure {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "Trop de sessions ouvertes : fermez-en une (Se déconnecter) et recommencez."
            .into(),
    }
    .into_response()
}

/// The answer to a sign-in: the session cookie, and the page to start on (`next`, or the
/// agent's landing page). `from_provider`: the browser comes back from the identity
/// provider's site, so a page that sends it on by itself (a redirect would not carry the
/// SameSite=Strict cookie just set).
fn signed_in(
    desk: &State,
    id: &str,
    headers: &HeaderMap,
    next: &str,
    from_provider: bool,
) -> Response {
    let agent = desk.sessions.agent_of(id);
    let next = match safe_next(next) {
        "/" => landing(agent.as_ref()),
        n => n,
    }
    .to_string();
    let cookie = [(
        header::SET_COOKIE,
        session::set_cookie(id, headers, desk.tls),
    )];
    if from_provider {
        let page = view::Onward {
            title: "Connexion réussie",
            link: "Continuer vers le bureau",
            next,
        };
        (cookie, render(&page)).into_response()
    } else {
        (cookie, see_other(&next)).into_response()
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
    /// « Se déconnecter partout »: every session of the agent, on every browser.
    partout: Option<String>,
}

pub async fn logout(Axum(desk): Axum<State>, caller: Caller, Form(f): Form<LogoutForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    if f.partout.is_some() {
        let n = desk.sessions.close_everywhere(&caller.id);
        let agent = caller.session.agent.as_ref().map(|a| a.id.as_str());
        tracing::info!(agent = ?agent, sessions = n, "web desk: signed out everywhere");
    } else {
        desk.sessions.close(&caller.id);
    }
    // Signed in with the identity provider: signed out there too, when it has an end-session
    // endpoint (else the next sign-in would pass without a password).
    let provider_logout = match (desk.app.access().oidc(), &caller.session.id_token) {
        (Some(p), Some(id_token)) => p.logout_url(id_token, None),
        _ => None,
    };
    let cookie = [(header::SET_COOKIE, session::clear_cookie())];
    Ok(match provider_logout {
        Some(url) => {
            let page = view::Onward {
                title: "Vous êtes déconnecté",
                link: "Se déconnecter aussi du fournisseur d'identité",
                next: url,
            };
            (cookie, render(&page)).into_response()
        }
        None => (cookie, see_other("/connexion")).into_response(),
    })
}

/// `GET /connexion/fournisseur`: sends the browser to the identity provider.
pub async fn provider(
    Axum(desk): Axum<State>,
    source: Option<axum::Extension<contacthub_app::source::ClientAddress>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(p) = desk
        .app
        .access()
        .oidc()
        .filter(|p| p.desk_label().is_some())
    else {
        return Failure {
            status: StatusCode::NOT_FOUND,
            message: "La connexion par le fournisseur d'identité n'est pas configurée.".into(),
        }
        .into_response();
    };
    match p.start().await {
        Ok(pending) => {
            let url = pending.url.clone();
            let cookie = format!(
                "{STATE_COOKIE}={}; Path=/connexion; HttpOnly; SameSite=Lax; Max-Age={}{}",
                pending.state,
                PENDING_FOR.as_secs(),
                session::secure(&headers, desk.tls)
            );
            desk.starts.put(
                pending,
                safe_next(&q.suite).to_string(),
                source.map(|s| s.0 .0),
            );
            ([(header::SET_COOKIE, cookie)], see_other(&url)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "web desk: the identity provider cannot be reached");
            let page = login_page(
                &desk,
                &q.suite,
                "Le fournisseur d'identité ne répond pas : réessayez dans un instant, ou prévenez l'exploitation.".into(),
            );
            (StatusCode::SERVICE_UNAVAILABLE, render(&page)).into_response()
        }
    }
}

/// What an identity provider sends the browser back with.
#[derive(Deserialize)]
pub struct BackQuery {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error: String,
}

/// `GET /connexion/retour`: the browser is back from the identity provider with a code.
pub async fn back(
    Axum(desk): Axum<State>,
    headers: HeaderMap,
    Query(q): Query<BackQuery>,
) -> Response {
    let clear = format!("{STATE_COOKIE}=; Path=/connexion; HttpOnly; SameSite=Lax; Max-Age=0");
    let refuse = |status: StatusCode, message: String, next: &str| {
        let page = login_page(&desk, next, message);
        (
            [(header::SET_COOKIE, clear.clone())],
            (status, render(&page)),
        )
            .into_response()
    };
    let Some(p) = desk.app.access().oidc() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "La connexion par le fournisseur d'identité n'est pas configurée.".into(),
            "/",
        );
    };
    // The same browser that left, with the state it left with, once.
    let same_browser = session::cookie_named(&headers, STATE_COOKIE)
        .is_some_and(|c| !q.state.is_empty() && c == q.state);
    let Some((pending, next)) = same_browser.then(|| desk.starts.take(&q.state)).flatten() else {
        tracing::warn!("web desk: provider sign-in refused: unknown, replayed or foreign state");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Connexion expirée ou commencée ailleurs : recommencez depuis cette page.".into(),
            "/",
        );
    };
    if !q.error.is_empty() {
        tracing::info!("web desk: the identity provider refused the sign-in");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Le fournisseur d'identité n'a pas confirmé votre identité : recommencez.".into(),
            &next,
        );
    }
    match p.finish(&pending, &q.code).await {
        Ok(signed) => {
            let Some(id) = open_session(&desk, None, Some(signed.agent), Some(signed.id_token))
            else {
                return too_many_sessions();
            };
            let mut res = signed_in(&desk, &id, &headers, &next, true);
            if let Ok(v) = clear.parse() {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(contacthub_app::Error::Forbidden(why)) => refuse(
            StatusCode::FORBIDDEN,
            format!("Accès refusé : {why}."),
            &next,
        ),
        Err(contacthub_app::Error::Unavailable(why)) => {
            tracing::warn!(error = %why, "web desk: the identity provider cannot be reached");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "Le fournisseur d'identité ne répond pas : réessayez dans un instant.".into(),
                &next,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "web desk: provider sign-in refused");
            refuse(
                StatusCode::UNAUTHORIZED,
                format!("Connexion refusée ({e}) : recommencez."),
                &next,
            )
        }
    }
}
