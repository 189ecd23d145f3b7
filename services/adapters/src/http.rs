//! The adapters' HTTP endpoints, on their own port inside `contacthub serve`:
//!
//! | method and path               | body                          | answer                     |
//! |-------------------------------|-------------------------------|----------------------------|
//! | `POST /v1/{commune}/sms`      | form-encoded gateway webhook  | empty TwiML `<Response/>`  |
//! | `POST /v1/{commune}/forms`    | JSON submission               | JSON summary               |
//! | `POST /v1/{commune}/publik?…` | w.c.s. form data (JSON), URL signed by Publik | JSON summary |
//! | `POST /v1/{commune}/demarches-simplifiees` | the platform's webhook (`procedure_id`, `dossier_id`); the dossier is fetched from its API | JSON summary |
//! | `GET|POST /v1/{commune}/ovh/status?t=…` | OVHcloud's delivery report of an SMS sent (`id`, `dlr`) | 204 |
//! | `POST /v1/{commune}/email`    | one RFC 5322 message          | JSON summary               |
//! | `POST /v1/{commune}/phone/cdr`| Asterisk CDR CSV              | JSON summary               |
//! | `POST /v1/email`, `POST /v1/phone/cdr` | same, commune told from the content | JSON summary |
//! | `GET /open311/v2/{commune}/services.json`, `GET …/requests.json?service_request_id=…`, `GET …/requests/{id}.json` | | GeoReport v2 JSON |
//! | `POST /open311/v2/{commune}/requests.json` | form-encoded report with `api_key` | GeoReport v2 JSON |
//! | `GET /metrics`, `GET /healthz`|                               | Prometheus text, "ok"      |
//!
//! Callers authenticate per commune with a bearer token, an HMAC-SHA256 signature of the
//! body and the time it was made (refused outside a tolerance window: no replay later), or
//! (on `/sms` only) the SMS gateway's own signature, (on `/publik` only) Publik's signed URL,
//! its nonce refused a second time; see docs/adapters.md.
//! `/metrics` needs the ops token once any credential is configured. Bad input gets a 4xx
//! naming what is wrong (409 when a source id comes again with other content), and is kept
//! in the quarantine. The Open311 API (its applications' `api_key`, its own answers) is
//! [`open311`].

mod open311;

use crate::ingest::{Ingest, Summary};
use crate::{Adapter, Channels, Input};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use contacthub_app::auth::{token_hash, System};
use hmac::{Hmac, Mac};
use std::future::Future;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the endpoints need.
pub struct Endpoints {
    pub ingest: Ingest,
    pub channels: Channels,
    /// Requests per source address and minute.
    pub rate: contacthub_app::throttle::Rate,
    /// Publik nonces seen lately (within the signature tolerance): each is taken once.
    pub nonces: Nonces,
    /// The client of the platforms the hub fetches from (démarches-simplifiées).
    pub http: reqwest::Client,
}

/// Nonces of signed URLs seen within the tolerance window, with when (unix seconds), kept in
/// a file as well (one `UNIX NONCE` line each, appended; rewritten without the old ones when
/// it grows), so a restarted hub still refuses a URL replayed within the window.
#[derive(Default)]
pub struct Nonces {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    file: Option<std::path::PathBuf>,
}

impl Nonces {
    /// The nonces kept in `file` (none when it does not exist yet).
    pub fn open(file: std::path::PathBuf) -> Nonces {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let seen = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (at, nonce) = l.split_once(' ')?;
                Some((nonce.to_string(), at.parse().ok()?))
            })
            .collect();
        Nonces {
            seen: std::sync::Mutex::new(seen),
            file: Some(file),
        }
    }

    /// Whether `nonce` is new (and now seen), forgetting those older than twice `window_s`.
    /// A nonce that cannot be written down is refused: taking it could let it be replayed.
    fn first_time(&self, nonce: &str, now_s: i64, window_s: u32) -> bool {
        use std::io::Write;
        if nonce.is_empty()
            || nonce.len() > 128
            || nonce.contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(nonce) {
            return false;
        }
        let old = |at: i64| now_s - at > 2 * i64::from(window_s);
        let compact = seen.len() > 10_000;
        if compact {
            seen.retain(|_, at| !old(*at));
        }
        seen.insert(nonce.to_string(), now_s);
        let Some(file) = &self.file else {
            return true;
        };
        let written = if compact {
            let all: String = seen.iter().map(|(n, at)| format!("{at} {n}\n")).collect();
            crate::write_state(file, &all).map_err(|e| e.to_string())
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| f.write_all(format!("{now_s} {nonce}\n").as_bytes()))
                .map_err(|e| e.to_string())
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "a Publik nonce could not be kept: the call is refused");
            seen.remove(nonce);
            return false;
        }
        true
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Sms,
    Forms,
    Publik,
    Email,
    Cdr,
}

/// The router, with a request size limit of `max_body_bytes`.
pub fn router(endpoints: Arc<Endpoints>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(
            "/v1/{commune}/sms",
            post(|s, p, h, u, b| commune(s, p, h, u, b, Channel::Sms)),
        )
        .route("/v1/{commune}/sms/status", post(sms_status))
        .route("/v1/{commune}/ovh/status", get(ovh_status).post(ovh_status))
        .route(
            "/v1/{commune}/forms",
            post(|s, p, h, u, b| commune(s, p, h, u, b, Channel::Forms)),
        )
        .route(
            "/v1/{commune}/publik",
            post(|s, p, h, u, b| commune(s, p, h, u, b, Channel::Publik)),
        )
        .route(
            "/v1/{commune}/demarches-simplifiees",
            post(demarches_webhook),
        )
        .route(
            "/v1/{commune}/email",
            post(|s, p, h, u, b| commune(s, p, h, u, b, Channel::Email)),
        )
        .route(
            "/v1/{commune}/phone/cdr",
            post(|s, p, h, u, b| commune(s, p, h, u, b, Channel::Cdr)),
        )
        .route(
            "/v1/email",
            post(|s, h, u, b| syndicate(s, h, u, b, Channel::Email)),
        )
        .route(
            "/v1/phone/cdr",
            post(|s, h, u, b| syndicate(s, h, u, b, Channel::Cdr)),
        )
        .route(
            "/open311/v2/{commune}/services.json",
            get(open311::services),
        )
        .route(
            "/open311/v2/{commune}/requests.json",
            get(open311::requests).post(open311::report),
        )
        .route(
            "/open311/v2/{commune}/requests/{file}",
            get(open311::request),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            endpoints.clone(),
            guard,
        ))
        .with_state(endpoints)
}

/// Refuses a source address that failed to authenticate too often lately (429 with
/// Retry-After, the right credential too), counts and logs each refusal with its address,
/// and refuses what a web page of another site posts (a browser says so with
/// `Sec-Fetch-Site` or `Origin`): gateways and portals call from servers, never from a
/// citizen's browser.
async fn guard(
    State(e): State<Arc<Endpoints>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross_site = matches!(header("sec-fetch-site"), Some("cross-site" | "same-site"))
        || header("origin").is_some_and(|o| {
            o.split_once("://").map_or(o, |(_, rest)| rest) != header("host").unwrap_or("")
        });
    if cross_site {
        return refuse(
            StatusCode::FORBIDDEN,
            "posted by a web page of another site: refused",
        );
    }
    let app = e.ingest.app.clone();
    // The client's address: the peer's, or the one a trusted reverse proxy forwards.
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
    if let Some(ip) = source.filter(|_| req.uri().path() != "/healthz") {
        if let Err(wait) = e.rate.admit(ip) {
            tracing::warn!(source = %ip, "adapter call refused: too many requests from this address");
            let mut res = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "more than {} requests a minute from this address: retry in {} s",
                    e.ingest.cfg.requests_per_minute_per_source,
                    wait.as_secs()
                ),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, wait.as_secs().into());
            return res;
        }
    }
    if let Some(ip) = source {
        if let Err(wait) = app.throttle().check(ip) {
            tracing::warn!(source = %ip, "adapter call refused: too many failed authentications from this address");
            let mut res = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed authentications from this address: retry in {} s",
                    wait.as_secs()
                ),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, wait.as_secs().into());
            return res;
        }
    }
    let path = crate::clip(req.uri().path(), 80).to_string();
    let res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        if let Some(ip) = source {
            app.throttle().failed(ip);
        }
        let source = source.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::warn!(source = %source, path = %path, "adapter call refused: bad credentials");
    }
    res
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: contacthub_tls::Listener,
    endpoints: Arc<Endpoints>,
    max_body_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !endpoints.ingest.cfg.has_credentials() {
        tracing::warn!("no adapter credentials configured: the adapter endpoints are open to anyone who can reach them");
    }
    if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
        tracing::info!(addr = %addr, scheme = listener.scheme(), "adapter endpoints listening");
    }
    axum::serve(
        listener,
        router(endpoints, max_body_bytes)
            .into_make_service_with_connect_info::<contacthub_tls::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn metrics(State(e): State<Arc<Endpoints>>, headers: HeaderMap) -> Response {
    if e.ingest.cfg.has_credentials() && !ops_token(&e, &headers) {
        return unauthorized(None);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.ingest.metrics.render(),
    )
        .into_response()
}

/// `404` when `code` is no commune of the hub's.
fn unknown_commune(e: &Endpoints, code: &str) -> Option<Response> {
    e.ingest.app.tenants().get(code).is_none().then(|| {
        refuse(
            StatusCode::NOT_FOUND,
            format!("unknown commune {:?}", crate::clip(code, 40)),
        )
    })
}

fn refuse(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into() + "\n",
    )
        .into_response()
}

async fn commune(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    channel: Channel,
) -> Response {
    if let Some(r) = unknown_commune(&e, &code) {
        return r;
    }
    if !authorized(&e, Some(&code), channel, &headers, &uri, &body) {
        return unauthorized(Some(&code));
    }
    handle(&e, Some(&code), &headers, &uri, &body, channel).await
}

/// démarches-simplifiées's webhook: a nudge naming a dossier, trusted for nothing else. The
/// dossier is fetched from the platform with the démarche's token and taken in; the answer
/// waits for it (the platform tries again on an error). A token the platform refuses is a
/// fault of the configuration: the webhook is kept in the quarantine with the reason.
async fn demarches_webhook(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(r) = unknown_commune(&e, &code) {
        return r;
    }
    let hook = match crate::demarches::parse_webhook(&body) {
        Ok(h) => h,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let Some(settings) = e.ingest.cfg.demarche(&code, hook.demarche) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "démarche {} is not connected for commune {code}",
                hook.demarche
            ),
        );
    };
    let followed = crate::demarches_sync::follow(
        &e.ingest,
        &e.channels.demarches,
        &e.http,
        &code,
        settings,
        hook.dossier,
    )
    .await;
    match followed {
        Ok(summary) => respond(Channel::Forms, &summary),
        Err(crate::Error::Refused { detail: why, .. }) => {
            let reason = format!(
                "the token of démarche {} was refused by démarches-simplifiées: {why}",
                hook.demarche
            );
            let kept = e.ingest.quarantine.put(
                crate::demarches::SOURCE,
                uri.path(),
                &body,
                &[crate::Rejected {
                    locator: format!("dossier {}", hook.dossier),
                    reason: reason.clone(),
                    detail: None,
                    tenant: Some(code.clone()),
                    raw: body.to_vec(),
                }],
                e.ingest.app.now(),
            );
            if let Err(err) = kept {
                tracing::error!(error = %err, "a webhook not kept in the quarantine");
            }
            refuse(StatusCode::BAD_GATEWAY, reason)
        }
        Err(err) => {
            // What failed is for ops (the health, the logs), not for an unauthenticated caller.
            tracing::warn!(tenant = %code, error = %err, "a démarches-simplifiées webhook not followed");
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "not recorded, try again later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            r
        }
    }
}

/// The SMS gateway's delivery report (status callback) of an answer sent by SMS: `failed` or
/// `undelivered` is a bounce, which puts the request back in its worklist; other statuses
/// (queued, sent, delivered) change nothing.
async fn sms_status(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(r) = unknown_commune(&e, &code) {
        return r;
    }
    // Only the gateway (its signature) or ops report deliveries: a commune's portal token
    // cannot mark an answer undelivered.
    let cfg = &e.ingest.cfg;
    let gateway = cfg
        .commune(&code)
        .and_then(|s| s.sms_auth_token.as_ref())
        .zip(
            headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok()),
        )
        .is_some_and(|(token, sig)| {
            verify_gateway_signature(token, &request_url(cfg, &headers, &uri), &body, sig.trim())
        });
    if cfg.has_credentials() && !gateway && !ops_token(&e, &headers) {
        return unauthorized(Some(&code));
    }
    let field = |name: &str| {
        form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| crate::clip(v.trim(), 200))
            .unwrap_or_default()
    };
    let (sid, status) = (field("MessageSid"), field("MessageStatus"));
    if sid.is_empty() || status.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a delivery report names MessageSid and MessageStatus",
        );
    }
    if status != "failed" && status != "undelivered" {
        return StatusCode::NO_CONTENT.into_response();
    }
    let error = field("ErrorCode");
    let reason = if error.is_empty() {
        format!("SMS non remis ({status})")
    } else {
        format!("SMS non remis ({status}, code {error})")
    };
    bounce(&e, &code, &sid, &reason).await
}

/// Marks the answer sent as `message_id` bounced (its request back in its worklist): `204`,
/// or `503` to be told again when no answer of this hub has that id yet.
async fn bounce(e: &Endpoints, code: &str, message_id: &str, reason: &str) -> Response {
    let app = &e.ingest.app;
    let mut bounced = app
        .answer_bounced(System::Adapters, code, message_id, reason)
        .await;
    if matches!(bounced, Ok(None)) {
        // The report may come before the delivery it reports is visible: once the read model
        // shows the whole log, look again.
        bounced = match app.wait_caught_up().await {
            Ok(()) => {
                app.answer_bounced(System::Adapters, code, message_id, reason)
                    .await
            }
            Err(err) => Err(err),
        };
    }
    match bounced {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => {
            // Not (yet) an answer of this hub: the gateway tries again later.
            tracing::info!(tenant = %code, "delivery report of a message not known here");
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unknown message: not recorded, try again later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            r
        }
        Err(err) => {
            tracing::error!(error = %err, "delivery report not recorded");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not recorded, try again: {err}"),
            )
        }
    }
}

/// OVHcloud's delivery report of an SMS the hub sent (the job's `callBack`, by GET or POST):
/// `id`, `dlr` (2 or 16: not delivered, a bounce), `description`; authenticated by the token
/// the hub put in the URL (`t`).
async fn ovh_status(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Some(r) = unknown_commune(&e, &code) {
        return r;
    }
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .chain(form_urlencoded::parse(&body))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| crate::clip(v.trim(), 200))
            .unwrap_or_default()
    };
    let Some(account) = e.ingest.cfg.commune(&code).and_then(|c| c.ovh_sms.as_ref()) else {
        return unauthorized(Some(&code));
    };
    let expected = crate::ovh::callback_token(&account.application_secret, &code);
    if !bool::from(field("t").as_bytes().ct_eq(expected.as_bytes())) {
        return unauthorized(Some(&code));
    }
    let id = field("id");
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a delivery report names its id (digits)",
        );
    }
    match crate::ovh::undelivered(&field("dlr"), &field("description")) {
        Some(reason) => bounce(&e, &code, &format!("ovh-{id}"), &reason).await,
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn syndicate(
    State(e): State<Arc<Endpoints>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    channel: Channel,
) -> Response {
    if !authorized(&e, None, channel, &headers, &uri, &body) {
        return unauthorized(None);
    }
    handle(&e, None, &headers, &uri, &body, channel).await
}

async fn handle(
    e: &Endpoints,
    tenant: Option<&str>,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
    channel: Channel,
) -> Response {
    let adapter: &dyn Adapter = match channel {
        Channel::Sms => &e.channels.sms,
        Channel::Forms => &e.channels.web_form,
        Channel::Publik => &e.channels.publik,
        Channel::Email => &e.channels.email,
        Channel::Cdr => &e.channels.phone,
    };
    // Callers sending files (the CLI) name them; the URL path otherwise.
    let origin = headers
        .get("x-contacthub-origin")
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::clip(v.trim(), 200))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| uri.path().to_string());
    let input = Input {
        bytes: body,
        origin: &origin,
        tenant,
        received_us: e.ingest.app.now(),
    };
    let summary = match e.ingest.run(adapter, input).await {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, path = %crate::clip(uri.path(), 80), "input not acknowledged");
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not recorded, try again: {err}"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            return r;
        }
    };
    respond(channel, &summary)
}

fn respond(channel: Channel, s: &Summary) -> Response {
    let refused = s.accepted + s.duplicates == 0 && !s.quarantined.is_empty();
    // Everything refused was a source id already received with other content.
    let conflict = refused && s.conflicts == s.refused;
    let refused_status = if conflict {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    if channel == Channel::Sms {
        if refused {
            return refuse(
                refused_status,
                format!("SMS refused: {}", s.quarantined[0].reason),
            );
        }
        // The answer SMS gateways expect: TwiML, here with nothing to send back.
        return (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        )
            .into_response();
    }
    let status = if refused {
        refused_status
    } else {
        StatusCode::OK
    };
    let mut json = serde_json::to_value(s).expect("a summary serialises");
    if refused {
        json["error"] = serde_json::Value::String(s.quarantined[0].reason.clone());
    }
    (status, axum::Json(json)).into_response()
}

fn unauthorized(code: Option<&str>) -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        match code {
            Some(c) => format!("missing or invalid credentials for commune {c} (Authorization: Bearer, X-Contacthub-Signature: t=UNIX,sha256=HEX within the tolerance window, or X-Twilio-Signature)"),
            None => "missing or invalid credentials: this endpoint needs the ops token (Authorization: Bearer)".into(),
        },
    )
}

/// Whether the request carries the ops token.
fn ops_token(e: &Endpoints, headers: &HeaderMap) -> bool {
    let Some(expected) = e.ingest.cfg.ops_token_sha256.as_ref() else {
        return false;
    };
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .is_some_and(|t| bool::from(token_hash(t.trim()).as_bytes().ct_eq(expected.as_bytes())))
}

/// Checks the caller: open when no credential is configured at all. The SMS gateway's
/// signature opens only the SMS endpoint.
fn authorized(
    e: &Endpoints,
    code: Option<&str>,
    channel: Channel,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> bool {
    let cfg = &e.ingest.cfg;
    if !cfg.has_credentials() {
        return true;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let settings = code.and_then(|c| cfg.commune(c));
    // Publik signs the URL (its query string), not the body: the nonce is taken once.
    if let (Channel::Publik, Some(p)) = (channel, settings.and_then(|s| s.publik.as_ref())) {
        let now_s = e.ingest.app.now().div_euclid(1_000_000);
        let tolerance = cfg.signature_tolerance_seconds;
        return match crate::publik::check_signed_query(
            uri.query().unwrap_or_default(),
            &p.key,
            &p.orig,
            now_s,
            tolerance,
        ) {
            Ok(nonce) => e.nonces.first_time(&nonce, now_s, tolerance),
            Err(why) => {
                tracing::info!(reason = %why, "a Publik call refused");
                false
            }
        };
    }
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        let h = token_hash(token.trim());
        let ok = |expected: Option<&String>| {
            expected.is_some_and(|x| bool::from(x.as_bytes().ct_eq(h.as_bytes())))
        };
        if ok(cfg.ops_token_sha256.as_ref()) || ok(settings.and_then(|s| s.token_sha256.as_ref())) {
            return true;
        }
    }
    if let (Some(sig), Some(secret)) = (
        header("x-contacthub-signature"),
        settings.and_then(|s| s.hmac_secret.as_ref()),
    ) {
        let now_s = e.ingest.app.now().div_euclid(1_000_000);
        if verify_body_signature(secret, body, sig, now_s, cfg.signature_tolerance_seconds) {
            return true;
        }
    }
    if let (Some(sig), Some(token), Channel::Sms) = (
        header("x-twilio-signature"),
        settings.and_then(|s| s.sms_auth_token.as_ref()),
        channel,
    ) {
        if verify_gateway_signature(token, &request_url(cfg, headers, uri), body, sig) {
            return true;
        }
    }
    false
}

/// The URL the SMS gateway called, as it signs it: `public_url` (behind a reverse proxy) or
/// this host, with the path and query.
fn request_url(cfg: &crate::config::AdaptersConfig, headers: &HeaderMap, uri: &Uri) -> String {
    let base = match &cfg.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!(
            "http://{}",
            headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        ),
    };
    format!(
        "{base}{}",
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    )
}

/// Checks an `X-Contacthub-Signature` header, `t=UNIX,sha256=HEX`: HEX must be the
/// HMAC-SHA256, keyed with `secret`, of the decimal `t`, a dot and the body's exact bytes
/// (compared in constant time), and `t` within `tolerance_s` seconds of `now_s`, so a captured
/// request replayed later is refused. A signature without `t=` is refused.
pub fn verify_body_signature(
    secret: &str,
    body: &[u8],
    header: &str,
    now_s: i64,
    tolerance_s: u32,
) -> bool {
    let mut t = None;
    let mut hex = None;
    for part in header.split(',').map(str::trim) {
        let (slot, value) = if let Some(v) = part.strip_prefix("t=") {
            (&mut t, v)
        } else if let Some(v) = part.strip_prefix("sha256=") {
            (&mut hex, v)
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            // A key given twice: which one was signed is not for the hub to guess.
            return false;
        }
    }
    let (Some(t_text), Some(hex)) = (t, hex) else {
        return false;
    };
    // Decimal digits as signed, no sign, no leading zero: the HMAC covers these bytes.
    let canonical = !t_text.is_empty()
        && t_text.len() <= 12
        && t_text.bytes().all(|b| b.is_ascii_digit())
        && (t_text == "0" || !t_text.starts_with('0'));
    let Some(t) = canonical.then(|| t_text.parse::<i64>().ok()).flatten() else {
        return false;
    };
    if now_s.abs_diff(t) > u64::from(tolerance_s) {
        return false;
    }
    let expected = signature_hex(secret, t, body);
    bool::from(
        expected
            .as_bytes()
            .ct_eq(hex.to_ascii_lowercase().as_bytes()),
    )
}

fn signature_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `X-Contacthub-Signature` a caller sends at unix time `t` (seconds).
pub fn body_signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},sha256={}", signature_hex(secret, t, body))
}

/// The SMS gateway signature (Twilio's scheme): base64 of HMAC-SHA1 with the account's auth
/// token over the full URL followed by every POST parameter, sorted by name, as name+value.
pub fn gateway_signature(token: &str, url: &str, form_body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(form_body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut data = url.to_string();
    for (k, v) in params {
        data += &k;
        data += &v;
    }
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn verify_gateway_signature(token: &str, url: &str, form_body: &[u8], sig: &str) -> bool {
    bool::from(
        gateway_signature(token, url, form_body)
            .as_bytes()
            .ct_eq(sig.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_their_published_examples() {
        // Twilio's documented example (auth token 12345, URL and parameters below).
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234&From=%2B14158675310&To=%2B18005551212";
        assert_eq!(
            gateway_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", body),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
        let t = 1_764_840_000;
        let sig = body_signature("s3cret", t, b"{}");
        // HMAC-SHA256("s3cret", "1764840000.{}"), as any HMAC tool computes it.
        assert_eq!(
            sig,
            format!(
                "t={t},sha256={}",
                hmac_sha256_hex("s3cret", b"1764840000.{}")
            )
        );
        assert!(verify_body_signature("s3cret", b"{}", &sig, t, 300));
        assert!(verify_body_signature("s3cret", b"{}", &sig, t + 300, 300));
        assert!(verify_body_signature("s3cret", b"{}", &sig, t - 300, 300));
        // Replayed later, or from a clock far ahead: refused.
        assert!(!verify_body_signature("s3cret", b"{}", &sig, t + 301, 300));
        assert!(!verify_body_signature("s3cret", b"{}", &sig, t - 301, 300));
        // Another body, another key, another time in the header, no time at all: refused.
        assert!(!verify_body_signature("s3cret", b"{ }", &sig, t, 300));
        assert!(!verify_body_signature("other", b"{}", &sig, t, 300));
        let moved = sig.replace("t=1764840000", "t=1764840001");
        assert!(!verify_body_signature("s3cret", b"{}", &moved, t, 300));
        let untimed = sig.split_once(',').unwrap().1.to_string();
        assert!(!verify_body_signature("s3cret", b"{}", &untimed, t, 300));
        // The time as signed only: no sign, no leading zero, no second t= or sha256=.
        for forged in [
            sig.replace("t=", "t=+"),
            sig.replace("t=", "t=0"),
            format!("t=1764840999,{sig}"),
            format!("{sig},sha256={}", "0".repeat(64)),
        ] {
            assert!(
                !verify_body_signature("s3cret", b"{}", &forged, t, 300),
                "{forged}"
            );
        }
    }

    /// Plain HMAC-SHA256 in hex, written apart from the code under test.
    fn hmac_sha256_hex(key: &str, msg: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        m.update(msg);
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
