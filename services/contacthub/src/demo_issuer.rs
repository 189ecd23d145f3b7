//! « FranceConnect de démonstration »: with `serve --demo` only, an OpenID Connect provider in
//! FranceConnect's shape on the citizens' space's port (`/demo-franceconnect/api/v2`), so the
//! demo's people can sign in to their space on a laptop: a discovery document, its key (a
//! P-256 key made at start), an authorization page where one picks who one is among the
//! demo's people, a token endpoint checking the code, the redirect URI and the PKCE verifier,
//! a userinfo endpoint answering a signed JWT with the « identité pivot », and the
//! end-session endpoint. Communes whose communes file has no `[commune.franceconnect]` get
//! this one in the demo. Never served without `--demo`.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use contacthub_core::tenant::{FranceConnect, Tenants};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Where it answers, on the space's port.
pub const PATH: &str = "/demo-franceconnect/api/v2";
/// Its one client.
const CLIENT_ID: &str = "contacthub-demo";
/// Codes, tickets and tokens kept at once, at most (the oldest forgotten first).
const MAX_KEPT: usize = 1000;

/// A person one may sign in as: what the page shows, and their claims.
#[derive(Debug, Clone)]
pub struct Person {
    pub label: String,
    pub claims: Map<String, Value>,
}

/// The demo's people of a commune (by its code), for the authorization page.
pub type People = Arc<dyn Fn(&str) -> Vec<Person> + Send + Sync>;

/// A sign-in asked by the space, until the person picks who they are.
#[derive(Clone)]
struct Asked {
    redirect_uri: String,
    state: String,
    nonce: String,
    challenge: String,
    tenant: String,
}

/// A code given back to the space, until traded.
struct Grant {
    asked: Asked,
    claims: Map<String, Value>,
}

struct Inner {
    tickets: HashMap<String, Asked>,
    grants: HashMap<String, Grant>,
    access: HashMap<String, Map<String, Value>>,
}

#[derive(Clone)]
struct Issuer {
    /// `http://127.0.0.1:8090/demo-franceconnect/api/v2`.
    url: String,
    /// The space's address, where redirections must go.
    portal: String,
    kid: String,
    key: Arc<EncodingKey>,
    jwk: Value,
    tenants: Arc<Tenants>,
    people: People,
    inner: Arc<Mutex<Inner>>,
}

/// The communes file with every commune that has no FranceConnect client given this one,
/// the space being at `portal` (`http://127.0.0.1:8090`).
pub fn configure(tenants: &Tenants, portal: &str) -> Tenants {
    let mut out = tenants.clone();
    for t in tenants.iter() {
        if t.franceconnect.is_none() {
            let slug = t.slug();
            out.set_franceconnect(
                &t.code,
                FranceConnect {
                    issuer: format!("{portal}{PATH}"),
                    client_id: CLIENT_ID.into(),
                    client_secret_file: None,
                    redirect_url: format!("{portal}/{slug}/connexion/retour"),
                    post_logout_url: None,
                    acr_values: "eidas1".into(),
                    scopes: FranceConnect::default_scopes(),
                },
            );
        }
    }
    out
}

/// The provider's routes, for the space at `portal`.
pub fn router(portal: &str, tenants: Arc<Tenants>, people: People) -> anyhow::Result<Router> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("making the demo provider's key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("reading the demo provider's key"))?;
    let public = pair.public_key().as_ref();
    let kid = "demo-1".to_string();
    let issuer = Issuer {
        url: format!("{portal}{PATH}"),
        portal: portal.to_string(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..65]),
        }),
        kid,
        key: Arc::new(EncodingKey::from_ec_der(pkcs8.as_ref())),
        tenants,
        people,
        inner: Arc::new(Mutex::new(Inner {
            tickets: HashMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
        })),
    };
    let routes = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/choisir", get(choose))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .route("/session/end", get(end_session))
        .with_state(issuer);
    Ok(Router::new().nest(PATH, routes))
}

fn random() -> String {
    B64.encode(rand::random::<[u8; 24]>())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Issuer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `claims` signed, or `None` when the key cannot sign.
    fn sign(&self, mut claims: Map<String, Value>) -> Option<String> {
        claims.insert("iss".into(), json!(self.url));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("iat".into(), json!(now()));
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).ok()
    }
}

/// Keeps `map` under [`MAX_KEPT`] entries before one more goes in.
fn bounded<V>(map: &mut HashMap<String, V>) {
    if map.len() >= MAX_KEPT {
        map.clear();
    }
}

fn bad(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn discovery(State(i): State<Issuer>) -> Json<Value> {
    let u = &i.url;
    Json(json!({
        "issuer": u,
        "authorization_endpoint": format!("{u}/authorize"),
        "token_endpoint": format!("{u}/token"),
        "userinfo_endpoint": format!("{u}/userinfo"),
        "jwks_uri": format!("{u}/jwks"),
        "end_session_endpoint": format!("{u}/session/end"),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "userinfo_signing_alg_values_supported": ["ES256"],
        "acr_values_supported": ["eidas1"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(i): State<Issuer>) -> Json<Value> {
    Json(json!({ "keys": [i.jwk] }))
}

/// The commune of a redirect URI of the space (`{portal}/{commune}/connexion/retour`).
fn commune_of(i: &Issuer, redirect: &str) -> Option<String> {
    let slug = redirect
        .strip_prefix(&i.portal)?
        .strip_prefix('/')?
        .strip_suffix("/connexion/retour")?;
    i.tenants
        .iter()
        .find(|t| t.slug() == slug)
        .map(|t| t.code.clone())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn authorize(State(i): State<Issuer>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let redirect = get("redirect_uri");
    let Some(tenant) = commune_of(&i, &redirect) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    };
    if get("response_type") != "code"
        || get("client_id") != CLIENT_ID
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("nonce").is_empty()
        || get("state").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
        || !get("acr_values").split(' ').any(|a| a == "eidas1")
    {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let ticket = random();
    let asked = Asked {
        redirect_uri: redirect,
        state: get("state"),
        nonce: get("nonce"),
        challenge: get("code_challenge"),
        tenant: tenant.clone(),
    };
    {
        let mut inner = i.lock();
        bounded(&mut inner.tickets);
        inner.tickets.insert(ticket.clone(), asked);
    }
    let commune = i
        .tenants
        .get(&tenant)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let mut items = String::new();
    for (n, p) in (i.people)(&tenant).iter().enumerate() {
        let ticket: String = contacthub_web::view::url_encode(&ticket);
        items.push_str(&format!(
            "<li><a href=\"{PATH}/choisir?ticket={ticket}&amp;personne={n}\">{}</a></li>\n",
            escape(&p.label)
        ));
    }
    Html(format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>FranceConnect de démonstration</title><link rel=\"stylesheet\" href=\"/static/portal.css\"></head>\n<body><header class=\"top\"><p class=\"brand\">FranceConnect de démonstration</p></header><main id=\"contenu\">\n<h1>Qui êtes-vous ?</h1>\n<p>Ce fournisseur d'identité n'existe que pour la démonstration de l'espace citoyen de {} : choisissez une des personnes de la démonstration. Un vrai espace passe par FranceConnect.</p>\n<ul>\n{items}</ul>\n</main></body></html>",
        escape(&commune)
    ))
    .into_response()
}

async fn choose(State(i): State<Issuer>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    let Some(asked) = i.lock().tickets.remove(&ticket) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let chosen = q
        .get("personne")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| (i.people)(&asked.tenant).get(n).cloned());
    let Some(person) = chosen else {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let code = random();
    let back = format!(
        "{}?code={}&state={}",
        asked.redirect_uri,
        contacthub_web::view::url_encode(&code),
        contacthub_web::view::url_encode(&asked.state)
    );
    let mut inner = i.lock();
    bounded(&mut inner.grants);
    inner.grants.insert(
        code,
        Grant {
            asked,
            claims: person.claims,
        },
    );
    Redirect::to(&back).into_response()
}

async fn token(State(i): State<Issuer>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" || get("client_id") != CLIENT_ID {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Some(grant) = i.lock().grants.remove(&get("code")) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = B64.encode(sha2::Sha256::digest(get("code_verifier").as_bytes()));
    if grant.asked.redirect_uri != get("redirect_uri") || challenge != grant.asked.challenge {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let sub = grant.claims.get("sub").cloned().unwrap_or_default();
    let mut id = Map::new();
    id.insert("sub".into(), sub);
    id.insert("exp".into(), json!(now() + 60));
    id.insert("nonce".into(), json!(grant.asked.nonce));
    id.insert("acr".into(), json!("eidas1"));
    let Some(id_token) = i.sign(id) else {
        return bad(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let access = random();
    {
        let mut inner = i.lock();
        bounded(&mut inner.access);
        inner.access.insert(access.clone(), grant.claims);
    }
    Json(json!({
        "access_token": access, "token_type": "Bearer", "expires_in": 60, "id_token": id_token,
    }))
    .into_response()
}

async fn userinfo(State(i): State<Issuer>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(claims) = i.lock().access.remove(bearer) else {
        return bad(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    match i.sign(claims) {
        Some(jwt) => ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response(),
        None => bad(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

async fn end_session(
    State(i): State<Issuer>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let back = q
        .get("post_logout_redirect_uri")
        .cloned()
        .unwrap_or_default();
    if !back.starts_with(&format!("{}/", i.portal)) {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let state =
        contacthub_web::view::url_encode(q.get("state").map(String::as_str).unwrap_or_default());
    Redirect::to(&format!("{back}?state={state}")).into_response()
}
