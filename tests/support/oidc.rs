//! A local OpenID Connect provider for the tests, in the shape of Keycloak and ProConnect: a
//! discovery document, a JWKS, an authorization endpoint that signs in whoever the test says
//! (no password page), a token endpoint that checks the code, the redirect URI, the client
//! secret and the PKCE verifier, a userinfo endpoint (JSON, or a signed JWT as ProConnect
//! answers) and an end-session endpoint. It signs with its own keys: an RSA key of the
//! fixtures (RS256), then, after [`TestIssuer::rotate`], a P-256 key made at the rotation
//! (ES256).

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One signing key: its id, algorithm, private half and published JWK.
#[derive(Clone)]
struct Key {
    kid: String,
    alg: Algorithm,
    private: EncodingKey,
    jwk: Value,
}

/// A code given at the authorization endpoint, until traded.
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    claims: Map<String, Value>,
    /// The scopes asked (FranceConnect gives the claims of those only).
    scope: String,
    /// The level of assurance asked (`acr_values`).
    acr: String,
}

#[derive(Default)]
struct Inner {
    /// Its keys; the last one signs.
    keys: Vec<Key>,
    /// Who the next browser at the authorization endpoint signs in as.
    next_user: Option<Map<String, Value>>,
    grants: HashMap<String, Grant>,
    /// Tokens the userinfo endpoint answers for: their claims.
    access: HashMap<String, Map<String, Value>>,
    /// Whether userinfo answers as a signed JWT (ProConnect) rather than JSON.
    userinfo_jwt: bool,
    /// Sign-outs asked at the end-session endpoint.
    logouts: usize,
    /// The next ID token carries another nonce than the sign-in's (a token injected from
    /// another sign-in).
    wrong_nonce: bool,
    /// In FranceConnect's shape.
    franceconnect: bool,
}

/// See the module documentation.
#[derive(Clone)]
pub struct TestIssuer {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

fn rsa_key() -> Key {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc");
    let pem = std::fs::read(dir.join("rsa-test-issuer.pem")).expect("the test issuer's key");
    let jwk: Value = serde_json::from_slice(
        &std::fs::read(dir.join("rsa-test-issuer.jwk.json")).expect("its JWK"),
    )
    .expect("a JWK");
    Key {
        kid: jwk["kid"].as_str().unwrap_or_default().to_string(),
        alg: Algorithm::RS256,
        private: EncodingKey::from_rsa_pem(&pem).expect("an RSA key"),
        jwk,
    }
}

/// A fresh P-256 key, `kid`.
fn ec_key(kid: &str) -> Key {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("its pair");
    let public = pair.public_key().as_ref();
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        private: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..65]),
        }),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims each FranceConnect scope gives.
const FC_SCOPES: [&str; 8] = [
    "given_name",
    "family_name",
    "birthdate",
    "birthplace",
    "birthcountry",
    "gender",
    "preferred_username",
    "email",
];

impl TestIssuer {
    /// Starts a provider on a free port of this machine.
    pub async fn start() -> TestIssuer {
        Self::start_shaped(false).await
    }

    /// Starts one in FranceConnect's shape (its partners' documentation, v2): the issuer
    /// `…/api/v2`, `acr_values=eidas1` asked and returned as the ID token's `acr`, an ID
    /// token holding the subject only, a userinfo answered as a signed JWT with the claims
    /// of the scopes asked (the « identité pivot »), the end-session endpoint at
    /// `/session/end` sending the browser back to `post_logout_redirect_uri`.
    pub async fn start_franceconnect() -> TestIssuer {
        Self::start_shaped(true).await
    }

    async fn start_shaped(franceconnect: bool) -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the test issuer");
        let base = if franceconnect { "/api/v2" } else { "" };
        let url = format!(
            "http://{}{base}",
            listener.local_addr().expect("its address")
        );
        let issuer = TestIssuer {
            url,
            client_id: if franceconnect {
                "fc-client-de-la-commune".into()
            } else {
                "contacthub-desk".into()
            },
            client_secret: "secret-de-test-du-client".into(),
            inner: Arc::new(Mutex::new(Inner {
                keys: vec![rsa_key()],
                userinfo_jwt: franceconnect,
                franceconnect,
                ..Default::default()
            })),
        };
        let routes = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/logout", get(logout))
            .route("/session/end", get(logout))
            .with_state(issuer.clone());
        let app = if franceconnect {
            Router::new().nest(base, routes)
        } else {
            routes
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        issuer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next browser sent to the authorization endpoint signs in as `claims`.
    pub fn sign_in_next_as(&self, claims: Value) {
        self.lock().next_user = claims.as_object().cloned();
    }

    /// Userinfo answers as a signed JWT (ProConnect) rather than JSON.
    pub fn userinfo_as_jwt(&self) {
        self.lock().userinfo_jwt = true;
    }

    /// The next ID token carries another sign-in's nonce.
    pub fn wrong_nonce_next(&self) {
        self.lock().wrong_nonce = true;
    }

    /// Whether it has the shape of FranceConnect.
    fn is_franceconnect(&self) -> bool {
        self.lock().franceconnect
    }

    /// Sign-outs asked so far.
    pub fn logouts(&self) -> usize {
        self.lock().logouts
    }

    /// Signs `claims` with the current key (the standard claims `iss` and `iat` added).
    pub fn sign(&self, claims: Value) -> String {
        let key = self.lock().keys.last().cloned().expect("a key");
        let mut claims = claims.as_object().cloned().unwrap_or_default();
        claims.entry("iss").or_insert(json!(self.url));
        claims.entry("iat").or_insert(json!(now()));
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.private).expect("signing")
    }

    /// A gRPC access token for `audience`, valid `ttl` seconds from now (negative: expired
    /// that long ago), carrying `claims`.
    pub fn access_token(&self, audience: &str, ttl: i64, claims: Value) -> String {
        let mut c = claims.as_object().cloned().unwrap_or_default();
        c.insert("aud".into(), json!(audience));
        c.insert("exp".into(), json!(now() + ttl));
        c.entry("sub").or_insert(json!("sub-inconnu"));
        self.sign(Value::Object(c))
    }

    /// A new signing key (ES256, id `kid`); the old ones stay published when `keep_old`.
    pub fn rotate(&self, kid: &str, keep_old: bool) {
        let mut inner = self.lock();
        if !keep_old {
            inner.keys.clear();
        }
        inner.keys.push(ec_key(kid));
    }

    /// The communes file with Givors's FranceConnect client at this issuer (in FranceConnect's
    /// shape), its secret written to `secret`, the space at `portal`.
    pub fn communes_file(
        &self,
        portal: &str,
        secret: &std::path::Path,
    ) -> contacthub_core::tenant::Tenants {
        std::fs::write(secret, &self.client_secret).expect("writing the client secret");
        let fc = format!(
            "[commune.franceconnect]\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nredirect_url = \"{portal}/givors/connexion/retour\"\n\n",
            self.url,
            self.client_id,
            secret.display()
        );
        // Givors's first table: what comes before it is Givors's own.
        let text = contacthub_core::tenant::DEFAULT_COMMUNES.replacen(
            "\n[commune.answer_days_by_category]",
            &format!("\n{fc}[commune.answer_days_by_category]"),
            1,
        );
        contacthub_core::tenant::Tenants::from_toml(&text)
            .expect("the communes file with FranceConnect")
    }

    /// The `[oidc]` table of an agents file for this provider, the desk at `desk`, with
    /// `rules` (TOML `[[oidc.rule]]` tables) after it.
    pub fn agents_toml(&self, desk: &str, rules: &str) -> String {
        format!(
            "[oidc]\nissuer = \"{}\"\nclient_id = \"{}\"\naudience = \"contacthub-api\"\nredirect_url = \"{desk}/connexion/retour\"\nlabel = \"le compte de test\"\n\n{rules}",
            self.url, self.client_id
        )
    }
}

async fn discovery(State(i): State<TestIssuer>) -> Json<Value> {
    let u = &i.url;
    Json(json!({
        "issuer": u,
        "authorization_endpoint": format!("{u}/authorize"),
        "token_endpoint": format!("{u}/token"),
        "jwks_uri": format!("{u}/jwks"),
        "userinfo_endpoint": format!("{u}/userinfo"),
        "end_session_endpoint": if i.is_franceconnect() { format!("{u}/session/end") } else { format!("{u}/logout") },
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }))
}

async fn jwks(State(i): State<TestIssuer>) -> Json<Value> {
    let keys: Vec<Value> = i.lock().keys.iter().map(|k| k.jwk.clone()).collect();
    // An encryption key, as Keycloak publishes one: skipped by the hub.
    let mut all = keys;
    all.push(json!({"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "kid": "enc-1", "n": "AQAB", "e": "AQAB"}));
    Json(json!({ "keys": all }))
}

fn bad(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn authorize(
    State(i): State<TestIssuer>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code"
        || get("client_id") != i.client_id
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("nonce").is_empty()
        || get("state").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
    {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let redirect = get("redirect_uri");
    let mut inner = i.lock();
    // FranceConnect asks for a level of assurance it knows.
    if inner.franceconnect && !get("acr_values").split(' ').any(|a| a == "eidas1") {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Some(claims) = inner.next_user.take() else {
        // Nobody signs in: the provider sends the browser back with an error.
        return Redirect::to(&format!(
            "{redirect}?error=access_denied&state={}",
            get("state")
        ))
        .into_response();
    };
    let code = B64.encode(rand::random::<[u8; 16]>());
    inner.grants.insert(
        code.clone(),
        Grant {
            client_id: get("client_id"),
            redirect_uri: redirect.clone(),
            challenge: get("code_challenge"),
            nonce: get("nonce"),
            claims,
            scope: get("scope"),
            acr: get("acr_values"),
        },
    );
    let state: String = form_urlencoded::byte_serialize(get("state").as_bytes()).collect();
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn token(State(i): State<TestIssuer>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return bad(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if get("client_id") != i.client_id || get("client_secret") != i.client_secret {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let Some(grant) = i.lock().grants.remove(&get("code")) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = B64.encode(sha2::Sha256::digest(get("code_verifier").as_bytes()));
    if grant.client_id != i.client_id
        || grant.redirect_uri != get("redirect_uri")
        || challenge != grant.challenge
    {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // ProConnect's ID token holds the subject only; its other claims come from userinfo.
    let mut id = if i.lock().userinfo_jwt {
        grant
            .claims
            .iter()
            .filter(|(k, _)| *k == "sub")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        grant.claims.clone()
    };
    id.insert("aud".into(), json!(i.client_id));
    id.insert("exp".into(), json!(now() + 300));
    if i.is_franceconnect() {
        id.insert(
            "acr".into(),
            json!(grant.acr.split(' ').next().unwrap_or_default()),
        );
    }
    let wrong = std::mem::take(&mut i.lock().wrong_nonce);
    id.insert(
        "nonce".into(),
        json!(if wrong {
            "nonce-d-une-autre-connexion".into()
        } else {
            grant.nonce
        }),
    );
    let id_token = i.sign(Value::Object(id));
    let access = B64.encode(rand::random::<[u8; 24]>());
    // FranceConnect gives the claims of the scopes asked, and the subject.
    let claims = if i.is_franceconnect() {
        let asked: Vec<&str> = grant.scope.split(' ').collect();
        grant
            .claims
            .into_iter()
            .filter(|(k, _)| {
                k == "sub" || (FC_SCOPES.contains(&k.as_str()) && asked.contains(&k.as_str()))
            })
            .collect()
    } else {
        grant.claims
    };
    i.lock().access.insert(access.clone(), claims);
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

async fn userinfo(State(i): State<TestIssuer>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let (claims, jwt) = {
        let inner = i.lock();
        (inner.access.get(&bearer).cloned(), inner.userinfo_jwt)
    };
    let Some(claims) = claims else {
        return bad(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    if jwt {
        let mut c = claims;
        c.insert("aud".into(), json!(i.client_id));
        let body = i.sign(Value::Object(c));
        ([(header::CONTENT_TYPE, "application/jwt")], body).into_response()
    } else {
        Json(Value::Object(claims)).into_response()
    }
}

async fn logout(State(i): State<TestIssuer>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("id_token_hint").is_none_or(|t| t.is_empty()) {
        return bad(StatusCode::BAD_REQUEST, "invalid_request");
    }
    i.lock().logouts += 1;
    match q.get("post_logout_redirect_uri") {
        Some(back) if i.is_franceconnect() => {
            let state: String = form_urlencoded::byte_serialize(
                q.get("state").map(String::as_bytes).unwrap_or_default(),
            )
            .collect();
            let join = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{join}state={state}")).into_response()
        }
        _ => "Vous êtes déconnecté du fournisseur de test.".into_response(),
    }
}
