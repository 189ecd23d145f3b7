//! contacthub's web desk: the French pages accueil agents, mail-room clerks, services and élus
//! work in all day — citizen search, the citizen page with its live cross-channel timeline, a
//! contact in full, walk-in visits, requests and worklists, the dashboard — served by axum with
//! compile-time checked askama templates and a few lines of script. Everything it needs is
//! embedded in the binary. Handlers only translate: every rule lives in the application layer,
//! called directly (the same `App` the gRPC API calls), and access goes through the same
//! [`contacthub_app::auth::Access`].
//!
//! Layout: this file (router, state, errors, security headers, the open desk's host check);
//! [`session`] (session cookie, CSRF token); [`signin`] (signing in with the identity provider
//! or a token, signing out); [`pages`]
//! (citizens, contacts, visits, requests, worklists, dashboard); [`mailroom`] (letters, scans,
//! receipts, documents); [`records`] (à rattacher, duplicates, merges); [`catalogue`] (the
//! catalogue of validated answers); [`hours`] (opening hours and closed days); [`journal`] (the DPO's read trail); [`operation`] (the hub's operation and its connectors, for ops agents); [`permanence`] (an élu's
//! permanence, offline-tolerant); [`portal`] (the citizens' space, on its own port); [`view`] (what templates show: French labels, Paris
//! times, icons); [`chart`] (the dashboard's bars, computed as numbers for an SVG template).

pub mod agenda;
pub mod attendance;
pub mod calls;
pub mod catalogue;
pub mod chart;
pub mod citizen;
pub mod contacts;
pub mod dashboard;
pub mod hours;
pub mod journal;
pub mod line;
pub mod mailroom;
pub mod operation;
pub mod pages;
pub mod permanence;
pub mod portal;
pub mod printing;
pub mod record;
pub mod records;
pub mod requests;
pub mod session;
pub mod signin;
pub mod view;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use contacthub_app::App;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Errors of the web server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("web desk: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub struct Desk {
    pub app: App,
    pub sessions: session::Sessions,
    /// Sign-ins sent to the identity provider, not back yet.
    pub starts: signin::Starts,
    /// Turns true at shutdown: live streams end.
    pub stopping: watch::Receiver<bool>,
    /// Served over TLS by the hub itself (the session cookie is then Secure).
    pub tls: bool,
}

impl Desk {
    /// The state of a site on `app`, stopping with `stopping`, served over TLS when `tls`.
    pub fn new(app: App, stopping: watch::Receiver<bool>, tls: bool) -> Desk {
        Desk {
            app,
            sessions: session::Sessions::default(),
            starts: signin::Starts::default(),
            stopping,
            tls,
        }
    }
}

pub type State = Arc<Desk>;

/// A page that could not be shown: its HTTP status and a French message.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl From<contacthub_app::Error> for Failure {
    fn from(e: contacthub_app::Error) -> Self {
        use contacthub_app::Error as E;
        let (status, message) = match &e {
            E::Invalid(m) => (StatusCode::BAD_REQUEST, format!("Impossible : {m}.")),
            E::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "Introuvable dans cette commune.".to_string(),
            ),
            E::Conflict(m) => (StatusCode::CONFLICT, format!("Conflit : {m}")),
            E::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "Connectez-vous pour continuer.".to_string(),
            ),
            E::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "Vous n'avez pas accès à cette page.".to_string(),
            ),
            E::Unavailable(_) | E::RecordedNotVisible(_) | E::NotYetVisible(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Le service est momentanément indisponible ; réessayez dans un instant."
                    .to_string(),
            ),
            E::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur interne ; l'exploitation a été prévenue.".to_string(),
            ),
            E::Throttled(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Trop d'essais depuis cette adresse : réessayez dans {} s.",
                    wait.as_secs()
                ),
            ),
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "web desk: page failed");
        }
        Failure { status, message }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let page = view::ErrorPage {
            title: match self.status {
                StatusCode::NOT_FOUND => "Introuvable",
                StatusCode::FORBIDDEN => "Accès refusé",
                StatusCode::UNAUTHORIZED => "Connexion requise",
                _ => "Erreur",
            },
            message: &self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

/// A rendered template as an HTML response (a template error is an internal error page).
pub fn render(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web desk: template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "erreur interne").into_response()
        }
    }
}

const CSS: &str = include_str!("../static/desk.css");
const JS: &str = include_str!("../static/desk.js");

pub(crate) fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every answer: no framing, no sniffing, scripts and styles from the desk only.
pub(crate) async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// An open desk (no agents file) answers only requests addressed to this machine by name:
/// without it, any web page could read it through DNS rebinding.
async fn open_desk_host(
    axum::extract::State(desk): axum::extract::State<State>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if desk.app.access().is_open() && !session::loopback_host(req.headers()) {
        return Failure {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: "Sans fichier d'agents, le bureau ne répond qu'à localhost.".into(),
        }
        .into_response();
    }
    next.run(req).await
}

/// The client's address (the peer's, or the one a trusted reverse proxy forwards), kept with
/// the request for the handlers.
pub(crate) fn source_of(app: &App, req: &mut axum::extract::Request) -> Option<std::net::IpAddr> {
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<contacthub_tls::Peer>>()
        .map(|c| {
            let forwarded = req.headers().get_all("x-forwarded-for");
            app.client(
                c.0 .0.ip(),
                forwarded.iter().filter_map(|v| v.to_str().ok()),
            )
        });
    if let Some(ip) = source {
        req.extensions_mut()
            .insert(contacthub_app::source::ClientAddress(ip));
    }
    source
}

/// Finds the client's address (the peer's, or the one a trusted reverse proxy forwards) and
/// keeps it with the request; refuses a source address that failed to sign in too often
/// lately (429 with Retry-After, the right token too), and counts each refused sign-in of an
/// address, logged with it.
async fn throttle(
    axum::extract::State(desk): axum::extract::State<State>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let source = source_of(&desk.app, &mut req);
    if let Some(ip) = source {
        if let Err(wait) = desk.app.throttle().check(ip) {
            tracing::warn!(source = %ip, "web desk: sign-in refused: too many failures from this address");
            let mut res = Failure {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "Trop de tentatives de connexion depuis ce poste : réessayez dans {} s.",
                    wait.as_secs()
                ),
            }
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
            return res;
        }
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        if let Some(ip) = source {
            desk.app.throttle().failed(ip);
            tracing::warn!(source = %ip, "web desk: sign-in refused");
        }
    }
    res
}

/// The desk's routes.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/connexion", get(signin::login_form).post(signin::login))
        .route("/connexion/fournisseur", get(signin::provider))
        .route("/connexion/retour", get(signin::back))
        .route("/deconnexion", post(signin::logout))
        .route("/citoyens", get(citizen::search))
        .route("/citoyens/{tenant}/{citizen}", get(citizen::citizen))
        .route("/citoyens/{tenant}/{citizen}/flux", get(citizen::live))
        .route("/citoyens/{tenant}/{citizen}/visites", post(citizen::visit))
        .route(
            "/citoyens/{tenant}/{citizen}/fiche",
            get(record::edit_record).post(record::update_record),
        )
        .route(
            "/citoyens/{tenant}/{citizen}/foyer",
            post(record::household),
        )
        .route("/citoyens/{tenant}/{citizen}/rattacher", post(record::join))
        .route(
            "/citoyens/{tenant}/{citizen}/demandes",
            post(record::open_request),
        )
        .route("/fiches/nouvelle", get(record::new_record))
        .route("/fiches/{tenant}", post(record::create_record))
        .route(
            "/citoyens/{tenant}/{citizen}/defusion",
            post(records::unmerge),
        )
        .route("/a-rattacher", get(records::unresolved))
        .route("/a-rattacher/{tenant}/{event}", post(records::attach))
        .route(
            "/a-rattacher/comptes/{tenant}/{event}",
            post(records::link_account),
        )
        .route("/doublons", get(records::duplicates))
        .route("/doublons/{tenant}/fusion", post(records::merge))
        .route("/doublons/{tenant}/ecarter", post(records::dismiss))
        .route("/contacts/{tenant}/{event}", get(contacts::contact))
        .route(
            "/contacts/{tenant}/{event}/demande",
            post(contacts::open_request),
        )
        .route(
            "/contacts/{tenant}/{event}/rattacher",
            post(contacts::link_request),
        )
        .route("/demandes", get(requests::worklist))
        .route(
            "/demandes/{tenant}/cloture-groupee",
            post(requests::close_answered),
        )
        .route(
            "/demandes/{tenant}/{reference}/attribution",
            post(requests::assign),
        )
        .route("/demandes/{tenant}/{reference}", get(requests::request))
        .route(
            "/demandes/{tenant}/{reference}/reponse",
            post(requests::answer),
        )
        .route(
            "/demandes/{tenant}/{reference}/envoi",
            post(requests::send_answer),
        )
        .route(
            "/demandes/{tenant}/{reference}/cloture",
            post(requests::close),
        )
        .route("/courrier", get(mailroom::letters))
        .route("/impression", get(printing::queue))
        .route("/impression/{tenant}/lettres.pdf", post(printing::pdf))
        .route("/impression/{tenant}/imprimees", post(printing::printed))
        .route(
            "/courrier/{tenant}",
            post(mailroom::register).layer(axum::extract::DefaultBodyLimit::max(
                // Ten scans of the largest size, and the form around them.
                (state.app.max_scan_bytes() as usize).saturating_mul(10) + (1 << 20),
            )),
        )
        .route("/courrier/{tenant}/{chrono}", get(mailroom::letter))
        .route(
            "/courrier/{tenant}/{chrono}/orientation",
            post(mailroom::route),
        )
        .route(
            "/courrier/{tenant}/{chrono}/accuse.pdf",
            get(mailroom::receipt),
        )
        .route("/courrier/{tenant}/{chrono}/scans/{n}", get(mailroom::scan))
        .route(
            "/contacts/{tenant}/{event}/pieces/{n}",
            get(mailroom::attachment),
        )
        .route("/catalogue", get(catalogue::list))
        .route("/catalogue/{tenant}", post(catalogue::publish))
        .route("/catalogue/{tenant}/{id}", get(catalogue::answer))
        .route("/tableau-de-bord", get(dashboard::dashboard))
        .route("/horaires", get(hours::hours))
        .route("/rendez-vous", get(agenda::agenda).post(agenda::book))
        .route("/rendez-vous/annulation", post(agenda::cancel))
        .route("/rendez-vous/presence", post(agenda::attendance))
        .route("/exploitation", get(operation::page))
        .route("/telephone", get(calls::phone))
        .route("/telephone/{tenant}/flux", get(calls::live))
        .route(
            "/telephone/{tenant}/appels/{event}/motif",
            post(calls::note),
        )
        .route("/accueil/borne", get(line::borne))
        .route("/accueil/guichet", get(line::counter))
        .route("/accueil/ecran", get(line::screen))
        .route("/accueil/rapport", get(attendance::report))
        .route("/accueil/rapport.csv", get(attendance::report_csv))
        .route("/accueil/{tenant}/{site}/tickets", post(line::take))
        .route("/accueil/{tenant}/{site}/flux", get(line::live))
        .route(
            "/accueil/{tenant}/{site}/guichets/{counter}/suivant",
            post(line::call_next),
        )
        .route(
            "/accueil/{tenant}/tickets/{id}",
            get(line::ticket).post(line::step),
        )
        .route(
            "/accueil/{tenant}/tickets/{id}/ticket.pdf",
            get(line::ticket_pdf),
        )
        .route("/permanence", get(permanence::permanence))
        .route("/permanence/{tenant}/rencontres", post(permanence::record))
        .route("/journal", get(journal::journal))
        .route("/journal/{tenant}/effacer", post(journal::erase))
        .route("/journal/{tenant}/export", get(journal::export))
        .route("/tableau-de-bord.csv", get(dashboard::dashboard_csv))
        .route(
            "/static/desk.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/desk.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .fallback(|| async {
            Failure {
                status: StatusCode::NOT_FOUND,
                message: "Cette page n'existe pas.".into(),
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            open_desk_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the desk on `listener` until `shutdown` completes.
pub async fn serve(
    listener: contacthub_tls::Listener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: watch::Receiver<bool>,
) -> Result<(), Error> {
    let state = Arc::new(Desk::new(app, stopping, listener.scheme() == "https"));
    serve_router(listener, router(state), shutdown).await
}

/// Serves `router` on `listener`, each request knowing its peer, until `shutdown` completes.
pub(crate) async fn serve_router(
    listener: contacthub_tls::Listener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<contacthub_tls::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
