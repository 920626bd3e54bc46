//! The server: its own accept loop (so a fault can drop a connection after reading a request),
//! the layers every request passes (log, gptimg request id, faults), and [`MockServer`].

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::clock::MockClock;
use crate::config::{Balance, Balances, MockConfig};
use crate::faults::{Fault, FaultInfo, FaultKind, InvalidFault};
use crate::keys::{bearer, header_label};
use crate::ledger::LedgerEntry;
use crate::provider::{Operation, Provider, Route};
use crate::requests::{RequestRecord, RequestStats};
use crate::respond::{json, neutral};
use crate::state::{Shared, TaskInfo};
use crate::webhooks::WebhookDelivery;
use crate::{admin, files, gptimg, runbase, runblob, webhooks};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be bound (the port is taken, or not allowed).
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A fault in the configuration can never act.
    #[error(transparent)]
    InvalidFault(#[from] InvalidFault),
    /// The HTTP client for webhooks could not be built.
    #[error("could not build the HTTP client that delivers webhooks")]
    WebhookClient(#[source] reqwest::Error),
}

/// gptimg's request id, shared by the `X-Request-Id` header and the error body.
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

/// Closes the connection a request came on, without an answer.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionKill(Arc<Notify>);

/// A running emulator of runblob, gptimg and runbase on one port. Stops when dropped.
///
/// ```no_run
/// use imggen_mock::{MockConfig, MockServer};
///
/// # async fn run() -> Result<(), imggen_mock::Error> {
/// let server = MockServer::start(MockConfig::default()).await?;
/// // Point any client at it: RUNBLOB_BASE_URL, GPTIMG_BASE_URL, RUNBASE_BASE_URL.
/// println!("{}", server.url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockServer {
    shared: Arc<Shared>,
    url: String,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds the configured address (127.0.0.1 on a free port by default) and starts
    /// serving. Must be called inside a Tokio runtime.
    pub async fn start(config: MockConfig) -> Result<MockServer, Error> {
        for fault in &config.faults {
            fault.check()?;
        }
        let wanted = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| Error::Bind {
                addr: wanted,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: wanted,
            source,
        })?;
        let url = format!("http://{}", reachable(addr));
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| url.clone())
            .trim_end_matches('/')
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(config.effective_webhook_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("imggen-mock/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::WebhookClient)?;
        let faults = config.faults.clone();
        let shared = Arc::new(Shared::new(config, base_url));
        {
            let now = shared.clock.now();
            let mut state = shared.lock();
            for fault in faults {
                state.faults.add(fault, now)?;
            }
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = app(Arc::clone(&shared));
        let accept = tokio::spawn(serve(listener, app, shutdown_rx.clone()));
        let dispatcher = tokio::spawn(webhooks::dispatch(Arc::clone(&shared), http, shutdown_rx));
        Ok(MockServer {
            shared,
            url,
            addr,
            shutdown,
            accept: Some(accept),
            dispatcher: Some(dispatcher),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:49152`, for all three providers.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The variables a client reads its base URL from, each set to [`url`](Self::url):
    /// `RUNBLOB_BASE_URL`, `GPTIMG_BASE_URL`, `RUNBASE_BASE_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        Provider::ALL
            .iter()
            .map(|provider| (provider.base_url_env(), self.url.clone()))
            .collect()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// The mock's clock (a clone shares its time).
    pub fn clock(&self) -> &MockClock {
        &self.shared.clock
    }

    /// Moves the mock's clock forward and waits until every webhook that fell due has been
    /// attempted. Task statuses, refunds and rate-limit windows follow at once.
    pub async fn advance(&self, by: Duration) {
        self.shared.advance(by).await;
    }

    /// Arms a fault; returns its id.
    pub fn add_fault(&self, fault: Fault) -> Result<u64, InvalidFault> {
        let now = self.shared.clock.now();
        self.shared.lock().faults.add(fault, now)
    }

    /// The armed faults, with hits left.
    pub fn faults(&self) -> Vec<FaultInfo> {
        self.shared.lock().faults.list(&self.shared.clock)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Every charge and refund so far, in order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.shared.lock().ledger.entries(None)
    }

    /// The charges and refunds of one key.
    pub fn ledger_for_key(&self, key: &str) -> Vec<LedgerEntry> {
        self.shared.lock().ledger.entries(Some(key))
    }

    /// Every webhook delivery and its attempts.
    pub fn webhooks(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().webhooks.list(&self.shared.clock)
    }

    /// Counts of the requests that reached the provider endpoints and `/files/` (not
    /// `/_mock/`), by status, with the latest ones: zero means nothing was sent.
    pub fn requests(&self) -> RequestStats {
        self.shared.lock().requests.clone()
    }

    /// Every task, oldest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.shared.task_infos()
    }

    /// A key's balances (the configured starting balances for a key not seen yet).
    pub fn balances(&self, key: &str) -> Balances {
        self.shared.balances(key)
    }

    /// Sets one of a key's balances, e.g. to provoke a 402.
    pub fn set_balance(&self, key: &str, balance: Balance) {
        self.shared.set_balance(key, balance);
    }

    /// Forgets every task, charge, balance, fault, delivery, rate-limit window and rendered
    /// image (the clock keeps its time).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, closes every connection and stops webhook delivery.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in [self.accept.take(), self.dispatcher.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// An address a client on this machine can reach: an unspecified bind address (0.0.0.0)
/// is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Four base64 images of 20 MB and room for the rest of the body.
const BODY_LIMIT: usize = 128 * 1024 * 1024;

fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(runblob::routes())
        .merge(gptimg::routes())
        .merge(runbase::routes())
        .merge(files::routes())
        .merge(admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // runblob takes up to four 20 MB images as base64 in one body; axum's 2 MB default
        // would refuse what the service accepts.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), faults))
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), log))
        .with_state(shared)
}

async fn not_found(request: Request) -> Response {
    neutral(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    neutral(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, app.clone(), shutdown.clone()));
                }
                Err(error) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let kill = ConnectionKill(Arc::new(Notify::new()));
    let killed = Arc::clone(&kill.0);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(kill.clone());
        app.clone().oneshot(request.map(Body::new))
    });
    let serving =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(serving);
    tokio::select! {
        biased;
        // Dropping the connection closes the socket with no answer written.
        () = killed.notified() => {}
        _ = shutdown.changed() => {}
        _ = serving.as_mut() => {}
    }
}

/// One line per request: method, path (never the query, which may hold a key), status, time,
/// key label.
async fn log(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = if request.uri().query().is_some() {
        "?…"
    } else {
        ""
    };
    let key = header_label(request.headers());
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "imggen_mock::request",
        "{method} {path}{query} {} {:.1}ms key={key}",
        response.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    if !path.starts_with("/_mock/") {
        shared.lock().requests.record(RequestRecord {
            method: method.to_string(),
            status: response.status().as_u16(),
            path,
            key,
        });
    }
    response
}

/// gptimg sets `X-Request-Id` on every response.
async fn request_id(mut request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/v1/images/") {
        return next.run(request).await;
    }
    let id = format!("req_{}", crate::tasks::gptimg_row_id());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    response
}

async fn faults(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(route) = Route::classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let key = if route.operation == Operation::Download {
        let task = request.uri().path().split('/').nth(3).unwrap_or("");
        shared
            .owner(route.provider, task)
            .map(|key| key.as_str().to_owned())
    } else {
        bearer(request.headers())
            .ok()
            .map(|key| key.as_str().to_owned())
    };
    let Some(kind) = shared.take_request_fault(route, key.as_deref()) else {
        return next.run(request).await;
    };
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone());
    tracing::info!(
        target: "imggen_mock::fault",
        "{} {} hit by fault {}",
        request.method(),
        request.uri().path(),
        kind.name()
    );
    match kind {
        FaultKind::Http {
            status,
            body,
            headers,
        } => {
            let mut response = http_fault(route, status, body, request_id.as_deref());
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        FaultKind::Maintenance => maintenance(route, request_id.as_deref()),
        FaultKind::Latency { ms } => {
            let response = next.run(request).await;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            response
        }
        FaultKind::DropConnection => {
            let kill = request.extensions().get::<ConnectionKill>().cloned();
            // Handled in full first: a create is charged and its task runs.
            let _ = next.run(request).await;
            match kill {
                Some(ConnectionKill(kill)) => {
                    kill.notify_one();
                    std::future::pending::<Response>().await
                }
                None => neutral(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "cannot drop this connection",
                ),
            }
        }
        FaultKind::MalformedJson => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = if bytes.len() < 2 {
                bytes::Bytes::from_static(b"{\"")
            } else {
                bytes.slice(..bytes.len() / 2)
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        FaultKind::CutShort => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(bytes.len().max(2)),
            );
            let half = bytes.slice(..bytes.len() / 2);
            // The first half, then — once it has had time to leave — an error: the server
            // closes the connection short of the length it declared.
            let stream = futures_util::stream::iter([Some(half), None]).then(|piece| async move {
                match piece {
                    Some(half) => Ok::<_, std::io::Error>(half),
                    None => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::other("cut short"))
                    }
                }
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
        FaultKind::Trickle {
            chunk_bytes,
            interval_ms,
        } => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let interval = Duration::from_millis(interval_ms);
            let chunks: Vec<bytes::Bytes> = bytes
                .chunks(chunk_bytes.max(1))
                .map(bytes::Bytes::copy_from_slice)
                .collect();
            let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
                move |(index, chunk)| async move {
                    if index > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    Ok::<_, Infallible>(chunk)
                },
            );
            Response::from_parts(parts, Body::from_stream(stream))
        }
        // Decided when a task is created, never here.
        FaultKind::TaskFailure { .. } => next.run(request).await,
    }
}

/// The answer of an `http` fault: the given body, or the provider's own shape for the status.
fn http_fault(
    route: Route,
    status: u16,
    body: Option<serde_json::Value>,
    request_id: Option<&str>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        Some(serde_json::Value::String(text)) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Some(value) => json(status, &value),
        None => provider_error(route, status, request_id),
    }
}

fn provider_error(route: Route, status: StatusCode, request_id: Option<&str>) -> Response {
    use imggen_types::{gptimg::ErrorCode as G, runbase::ErrorCode as R};
    let reason = status.canonical_reason().unwrap_or("Error");
    if route.operation == Operation::Download {
        return neutral(status, "injected", reason);
    }
    match route.provider {
        Provider::Runblob => match status.as_u16() {
            401 => json(
                status,
                &serde_json::json!({"error": "Unauthorized", "message": "Invalid API key"}),
            ),
            402 => runblob::detail(status, "INSUFFICIENT_CREDITS"),
            404 => runblob::detail(status, "Task not found"),
            503 => runblob::detail(status, "Maintenance"),
            _ => runblob::detail(status, reason),
        },
        Provider::Gptimg => {
            let code = match status.as_u16() {
                401 => G::Unauthorized,
                402 => G::InsufficientCredits,
                404 => G::NotFound,
                429 => G::RateLimited,
                400..=499 => G::InvalidRequest,
                _ => G::InternalError,
            };
            gptimg::error(status, code, reason, request_id.unwrap_or("req_mock"))
        }
        Provider::Runbase => {
            let code = match status.as_u16() {
                400 => Some(R::InvalidInput),
                401 => Some(R::InvalidApiKey),
                402 => Some(R::InsufficientBalance),
                403 => Some(R::ApiKeySpendLimitExceeded),
                404 => Some(R::RunNotFound),
                429 => Some(R::RateLimited),
                _ => None,
            };
            match code {
                Some(code) => runbase::error(status, code, reason),
                None => json(status, &serde_json::json!({"error": {"message": reason}})),
            }
        }
    }
}

/// 503 maintenance in each provider's shape; nothing was created or charged.
fn maintenance(route: Route, request_id: Option<&str>) -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    if route.operation == Operation::Download {
        return neutral(status, "maintenance", "Maintenance");
    }
    match route.provider {
        Provider::Runblob => runblob::detail(status, "Maintenance"),
        Provider::Gptimg => gptimg::error(
            status,
            imggen_types::gptimg::ErrorCode::Other("SERVICE_UNAVAILABLE".into()),
            "The service is down for maintenance; nothing was charged",
            request_id.unwrap_or("req_mock"),
        ),
        Provider::Runbase => runbase::error(
            status,
            imggen_types::runbase::ErrorCode::Other("maintenance".into()),
            "Service unavailable: maintenance",
        ),
    }
}
