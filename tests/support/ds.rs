//! A local démarches-simplifiées: its GraphQL endpoint (`POST /api/v2/graphql`, a bearer
//! token) answering the hub's two queries in the shapes of the platform's published schema
//! — one dossier (`dossier(number:)`, `null` with a `not_found` error when there is none) and
//! a démarche's dossiers changed since a time (`updatedSince`, oldest first, pages of at most
//! two with `pageInfo`) —, its pièces jointes served at the URLs it gives, and the faults the
//! tests need: a token expired (401), the next requests failing (500).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "jeton-api-instructeur-givors";

/// The platform's largest page in this fake (the real one's is larger; small here to page).
const MAX_PAGE: usize = 2;

#[derive(Default)]
struct Platform {
    dossiers: BTreeMap<u64, Value>,
    files: BTreeMap<String, Vec<u8>>,
    expired: bool,
    failures: u32,
    /// `since` of each page query received, in order.
    since: Vec<Option<String>>,
    queries: usize,
}

#[derive(Clone)]
pub struct Ds {
    pub url: String,
    state: Arc<Mutex<Platform>>,
}

impl Ds {
    pub async fn start() -> Ds {
        let state = Arc::new(Mutex::new(Platform::default()));
        let app = Router::new()
            .route("/api/v2/graphql", post(graphql))
            .route("/files/{name}", get(file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // As a production web server answers: no delayed small writes.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ds { url, state }
    }

    /// The GraphQL endpoint, for the hub's `api_url`.
    pub fn api(&self) -> String {
        format!("{}/api/v2/graphql", self.url)
    }

    /// Puts (or replaces) a dossier as the API gives it.
    pub fn put(&self, dossier: Value) {
        let n = dossier["number"].as_u64().expect("a dossier number");
        self.state.lock().unwrap().dossiers.insert(n, dossier);
    }

    pub fn delete(&self, number: u64) {
        self.state.lock().unwrap().dossiers.remove(&number);
    }

    /// Serves `bytes` at the URL returned (a pièce jointe's, signed anew on each call).
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(name.to_string(), bytes.to_vec());
        format!(
            "{}/files/{name}?temp_url_sig=s1&temp_url_expires=1",
            self.url
        )
    }

    pub fn expire_token(&self, expired: bool) {
        self.state.lock().unwrap().expired = expired;
    }

    /// The next `n` queries answer HTTP 500.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().failures = n;
    }

    /// `since` of each page query so far.
    pub fn since_asked(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().since.clone()
    }

    pub fn queries(&self) -> usize {
        self.state.lock().unwrap().queries
    }
}

fn time(v: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(v).ok()
}

async fn graphql(
    State(state): State<Arc<Mutex<Platform>>>,
    headers: HeaderMap,
    Json(req): Json<Value>,
) -> Response {
    let mut p = state.lock().unwrap();
    p.queries += 1;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(TOKEN) || p.expired {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": [{"message": "Le jeton utilisé est expiré ou révoqué"}]})),
        )
            .into_response();
    }
    if p.failures > 0 {
        p.failures -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let query = req["query"].as_str().unwrap_or_default();
    let vars = &req["variables"];
    match req["operationName"].as_str() {
        Some("getDossier") if query.contains("dossier(number: $number)") => {
            let n = vars["number"].as_u64().unwrap_or(0);
            match p.dossiers.get(&n) {
                Some(d) => Json(json!({"data": {"dossier": d}})).into_response(),
                None => Json(json!({
                    "data": {"dossier": null},
                    "errors": [{"message": "Dossier not found", "locations": [{"line": 1, "column": 37}], "path": ["dossier"], "extensions": {"code": "not_found"}}]
                }))
                .into_response(),
            }
        }
        Some("getDemarche") if query.contains("dossiers(updatedSince: $since") => {
            let since = vars["since"].as_str().map(str::to_string);
            p.since.push(since.clone());
            let demarche = vars["demarche"].as_u64().unwrap_or(0);
            let mut all: Vec<&Value> = p
                .dossiers
                .values()
                .filter(|d| d["demarche"]["number"].as_u64() == Some(demarche))
                .filter(|d| match (&since, d["dateDerniereModification"].as_str()) {
                    (Some(s), Some(t)) => time(t) >= time(s),
                    _ => true,
                })
                .collect();
            all.sort_by_key(|d| {
                (
                    d["dateDerniereModification"]
                        .as_str()
                        .and_then(time)
                        .map(|t| t.timestamp()),
                    d["number"].as_u64(),
                )
            });
            let from: usize = vars["after"]
                .as_str()
                .and_then(|c| c.strip_prefix("curseur-"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let first = vars["first"].as_u64().unwrap_or(100) as usize;
            let take = first.min(MAX_PAGE);
            let nodes: Vec<&Value> = all.iter().skip(from).take(take).copied().collect();
            let end = from + nodes.len();
            Json(json!({"data": {"demarche": {"dossiers": {
                "pageInfo": {"hasNextPage": end < all.len(), "endCursor": format!("curseur-{end}")},
                "nodes": nodes
            }}}}))
            .into_response()
        }
        _ => Json(json!({"errors": [{"message": "Unknown operation or query"}]})).into_response(),
    }
}

async fn file(State(state): State<Arc<Mutex<Platform>>>, Path(name): Path<String>) -> Response {
    match state.lock().unwrap().files.get(&name) {
        Some(b) => b.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
