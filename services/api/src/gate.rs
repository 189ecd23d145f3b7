//! What every call goes through before its service: an open hub (no agents file) answers only
//! requests addressed to this machine by name (a web page cannot reach it through DNS
//! rebinding and gRPC-Web), and an address that failed to authenticate too often lately is
//! refused (`RESOURCE_EXHAUSTED`), each refusal counted and logged with its address, as the
//! web desk and the adapters do ([`contacthub_app::throttle`]); the address is the client's a
//! trusted reverse proxy forwards, kept with the request for the read trail. A bearer JWT of the agents'
//! identity provider has the provider's keys fetched first when it names one not seen yet.

use contacthub_app::App;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The layer that puts [`Gate`] in front of the services.
#[derive(Clone)]
pub struct GateLayer {
    pub app: App,
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            app: self.app.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    app: App,
}

/// Whether a request names this machine: `localhost`, `127.0.0.1` or `[::1]`, any port.
fn loopback_name(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

impl<S, B> tower::Service<http::Request<B>> for Gate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if self.app.access().is_open() {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| req.uri().authority().map(|a| a.to_string()));
            if !host.as_deref().is_some_and(loopback_name) {
                let refused = tonic::Status::permission_denied(
                    "without an agents file this hub answers only requests addressed to localhost",
                );
                return Box::pin(async move { Ok(refused.into_http()) });
            }
        }
        // The TCP peer, under TLS or not.
        let source = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .or_else(|| {
                req.extensions()
                    .get::<tonic::transport::server::TlsConnectInfo<
                        tonic::transport::server::TcpConnectInfo,
                    >>()
                    .map(|t| t.get_ref())
            })
            .and_then(|i| i.remote_addr())
            .map(|a| {
                let forwarded = req.headers().get_all("x-forwarded-for");
                self.app
                    .client(a.ip(), forwarded.iter().filter_map(|v| v.to_str().ok()))
            });
        if let Some(ip) = source {
            req.extensions_mut()
                .insert(contacthub_app::source::ClientAddress(ip));
        }
        let app = self.app.clone();
        if let Some(ip) = source {
            if let Err(wait) = app.throttle().check(ip) {
                tracing::warn!(source = %ip, "grpc call refused: too many failed authentications from this address");
                let refused = tonic::Status::resource_exhausted(format!(
                    "too many failed authentications from this address: retry in {} s",
                    wait.as_secs()
                ));
                return Box::pin(async move { Ok(refused.into_http()) });
            }
        }
        let bearer = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        // The service that was polled ready is the one called; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // An identity provider's token naming a key not fetched yet: fetch it first.
            app.access().prepare(bearer.as_deref()).await;
            let res = inner.call(req).await?;
            // A refused credential answers at once, its status in the headers.
            let unauthenticated = res
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"16");
            if let (true, Some(ip)) = (unauthenticated, source) {
                app.throttle().failed(ip);
                tracing::warn!(source = %ip, "grpc call refused: bad credentials");
            }
            Ok(res)
        })
    }
}
