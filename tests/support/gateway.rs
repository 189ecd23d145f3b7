//! A fake SMS gateway speaking the provider's REST shape (Twilio's Messages resource): HTTP
//! basic auth with the account sid and token, a form-encoded `To`, `From`, `Body`, a JSON
//! message back with its `sid` and `num_segments`. It honours `Idempotency-Key` (a repeated
//! key gets the first message back, nothing sent twice) and can fail the next requests.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "gateway-auth-token";

/// A message the gateway took.
#[derive(Debug, Clone)]
pub struct Sent {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub idempotency_key: String,
}

#[derive(Default)]
struct State_ {
    sent: Vec<Sent>,
    by_key: BTreeMap<String, String>,
    /// Status codes to answer the next requests with, in order.
    failures: Vec<(u16, u32)>,
    requests: usize,
}

#[derive(Clone)]
pub struct Gateway {
    pub url: String,
    state: Arc<Mutex<State_>>,
}

impl Gateway {
    pub async fn start() -> Gateway {
        let state = Arc::new(Mutex::new(State_::default()));
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Messages.json", post(create))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gateway { url, state }
    }

    /// Messages sent so far (once each).
    pub fn sent(&self) -> Vec<Sent> {
        self.state.lock().unwrap().sent.clone()
    }

    /// Requests received so far (retries with a known key included).
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// The next request gets `status` with the provider's error `code`.
    pub fn fail_next(&self, status: u16, code: u32) {
        self.state.lock().unwrap().failures.push((status, code));
    }
}

async fn create(
    State(state): State<Arc<Mutex<State_>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if account != ACCOUNT || auth != expected {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"code":20003,"message":"Authenticate","status":401}"#,
        )
            .into_response();
    }
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if !s.failures.is_empty() {
        let (status, code) = s.failures.remove(0);
        return (
            StatusCode::from_u16(status).unwrap(),
            format!(r#"{{"code":{code},"message":"refused by the test","status":{status}}}"#),
        )
            .into_response();
    }
    if field("To").is_empty() || field("Body").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"code":21604,"message":"A 'To' phone number and a 'Body' are required.","status":400}"#,
        )
            .into_response();
    }
    let sid = match s.by_key.get(&key).filter(|_| !key.is_empty()) {
        Some(sid) => sid.clone(),
        None => {
            let sid = format!("SM{:032x}", s.sent.len() + 1);
            s.sent.push(Sent {
                sid: sid.clone(),
                to: field("To"),
                from: field("From"),
                body: field("Body"),
                idempotency_key: key.clone(),
            });
            if !key.is_empty() {
                s.by_key.insert(key, sid.clone());
            }
            sid
        }
    };
    let segments = contacthub_core::outbound::sms_segments(&field("Body"));
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        serde_json::json!({
            "sid": sid,
            "status": "queued",
            "num_segments": segments.to_string(),
            "to": field("To"),
        })
        .to_string(),
    )
        .into_response()
}
