//! The transport: one request, its headers, its timeout, its span, its capped body and the
//! error that says what it means.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use imggen_types::{ProviderErrorBody, ValidationError};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;
use url::Url;

use crate::budget::RequestBudget;
use crate::error::{
    ApiError, BodyTooLargeError, Context, DecodeError, Error, Operation, Phase, TimeLimit,
    TimeoutError, TransportError,
};
use crate::redact::Redactor;
use crate::retry::RetryPolicy;
use crate::time::{Clock, Sleeper};

/// A successful answer: the decoded body and what came with it.
#[derive(Clone, Debug)]
pub struct Response<T> {
    /// The decoded body.
    pub value: T,
    /// The HTTP status (201 for a runblob create, 200 elsewhere).
    pub status: u16,
    /// From `X-Request-Id`.
    pub request_id: Option<String>,
}

/// The shared transport of a provider client whose error bodies are `B`. Cheap to clone:
/// clones share one connection pool.
pub struct Transport<B> {
    inner: Arc<Inner>,
    body: PhantomData<fn() -> B>,
}

pub(crate) struct Inner {
    pub(crate) provider: &'static str,
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    /// Marked sensitive; never logged or formatted.
    pub(crate) authorization: HeaderValue,
    /// Strikes the key from everything a server sends back.
    pub(crate) redactor: Arc<Redactor>,
    /// What every request that carries the key waits for (shared by clones).
    pub(crate) budget: RequestBudget,
    pub(crate) user_agent: HeaderValue,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_response_bytes: u64,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl<B> Clone for Transport<B> {
    fn clone(&self) -> Self {
        Transport {
            inner: Arc::clone(&self.inner),
            body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for Transport<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("provider", &self.inner.provider)
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &"[redacted]")
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Limits for [`Transport::download`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// Whether `http://` URLs (and redirects to them) are allowed.
    pub allow_http: bool,
    /// An attempt that receives no byte — no headers, no part of the body — for this long
    /// ends ([`TimeLimit::Stall`]), however long its overall timeout.
    pub stall_timeout: Duration,
}

/// The default cap on a downloaded image: a 4K PNG is about 30 MB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// How long a download may go without receiving a byte: a CDN that stops sending for this
/// long is not coming back for this connection.
pub const DEFAULT_DOWNLOAD_STALL_TIMEOUT: Duration = Duration::from_secs(15);

/// What one request may read: the body cap, and for downloads the stall interval.
#[derive(Clone, Copy, Debug)]
struct ReadLimits {
    max_bytes: u64,
    stall: Option<Duration>,
}

/// A downloaded file.
#[derive(Clone, Debug)]
pub struct Downloaded {
    /// The bytes.
    pub bytes: Bytes,
    /// Where they came from, after redirects.
    pub url: Url,
    /// The `Content-Type` the server claimed (sniff the bytes rather than trust it).
    pub content_type: Option<String>,
}

impl<B: ProviderErrorBody> Transport<B> {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Transport {
            inner: Arc::new(inner),
            body: PhantomData,
        }
    }

    /// The same transport (same connection pool, key and settings) with another retry policy:
    /// a caller with its own retry loop (imggen-core) uses [`RetryPolicy::disabled`] so that
    /// no layer retries what another already retries.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        self.with(|inner| inner.retry = retry)
    }

    /// The same transport spending `budget` instead of its own: a clone of another client's
    /// [`budget`](Self::budget) to share it, or [`RequestBudget::unlimited`] when something
    /// else schedules every request of the key (imggen-core does).
    pub fn with_budget(&self, budget: RequestBudget) -> Self {
        self.with(|inner| inner.budget = budget)
    }

    /// The budget every request carrying the key waits for.
    pub fn budget(&self) -> &RequestBudget {
        &self.inner.budget
    }

    /// A copy of this transport's settings (sharing its connection pool), changed by `change`.
    fn with(&self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &self.inner;
        let mut copy = Inner {
            provider: inner.provider,
            http: inner.http.clone(),
            base_url: inner.base_url.clone(),
            authorization: inner.authorization.clone(),
            redactor: Arc::clone(&inner.redactor),
            budget: inner.budget.clone(),
            user_agent: inner.user_agent.clone(),
            timeout: inner.timeout,
            retry: inner.retry,
            max_response_bytes: inner.max_response_bytes,
            sleeper: Arc::clone(&inner.sleeper),
            clock: Arc::clone(&inner.clock),
        };
        change(&mut copy);
        Transport::from_inner(copy)
    }

    /// The retry policy of status calls.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// A short, stable, non-reversible label of the API key (`sk-g…7f3a`), so callers can
    /// group work per key (a request budget is per key) without ever holding the key.
    pub fn key_label(&self) -> String {
        let header = self.inner.authorization.as_bytes();
        let key = header.strip_prefix(b"Bearer ").unwrap_or(header);
        // FNV-1a: stable across Rust versions and platforms, unlike std's DefaultHasher.
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let prefix: String = key.iter().take(4).map(|&b| char::from(b)).collect();
        format!("{prefix}…{:04x}", hash & 0xffff)
    }

    /// A fingerprint of the API key, never the key: 64 hex digits of SHA-256 over the
    /// provider's name and the key. Processes that use one key find each other by it — a
    /// request budget kept in a database is kept under it — and it reveals nothing of the key.
    pub fn key_fingerprint(&self) -> String {
        use sha2::Digest as _;
        let header = self.inner.authorization.as_bytes();
        let key = header.strip_prefix(b"Bearer ").unwrap_or(header);
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"imggen key fingerprint v1\0");
        hasher.update(self.provider().as_bytes());
        hasher.update(b"\0");
        hasher.update(key);
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.inner.provider
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The sleeper retries use.
    pub fn sleeper(&self) -> &Arc<dyn Sleeper> {
        &self.inner.sleeper
    }

    /// The clock the transport reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Where an error in call `operation` on `path` happened.
    pub fn context(&self, operation: Operation, path: &str) -> Context {
        Context {
            provider: self.inner.provider,
            operation,
            path: path.split('?').next().unwrap_or(path).to_owned(),
        }
    }

    /// An error for a request that breaks a documented limit, before anything is sent.
    pub fn invalid(&self, operation: Operation, path: &str, error: ValidationError) -> Error<B> {
        Error::invalid_request(self.context(operation, path), error)
    }

    /// GETs `path` (relative to the base URL, query included) and decodes the JSON answer,
    /// retrying transient failures by the configured [`RetryPolicy`].
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: Operation,
        path: &str,
    ) -> Result<Response<T>, Error<B>> {
        self.retrying(|| async move {
            // Built by each attempt and handed straight to the request, so no future on the
            // way holds a URL (a retry, rare, builds it again).
            let answer = self
                .send(operation, Method::GET, path, self.url(path), None, true)
                .await?;
            self.decode(operation, path, answer)
        })
        .await
    }

    /// One GET of `url_path`, decoded and handed to `finish`, as **one** boxed future — sent
    /// once, whatever the transport's retry policy: for an orchestrator that retries itself and
    /// must box its future anyway (a provider behind a trait object), so that a call allocates
    /// once, carries no retry state, and stays small enough for the allocator's per-thread
    /// cache. Errors name the route as `path` (its template, `/tasks/{task_id}`): the caller
    /// knows which task it asked for.
    pub fn get_once_then<'a, T, R, F>(
        &'a self,
        operation: Operation,
        path: &'static str,
        url_path: &str,
        finish: F,
    ) -> Pin<Box<dyn Future<Output = R> + Send + 'a>>
    where
        T: DeserializeOwned + Send + 'a,
        F: FnOnce(Result<Response<T>, Error<B>>) -> R + Send + 'a,
        R: 'a,
    {
        use futures_util::FutureExt as _;
        // The URL is built now; the request when the future is first polled, inside the
        // caller's deadline (`deadline::within` holds only while it polls), which bounds it.
        // Combinators, not an async block: the block would keep the request's future twice (as
        // a capture and as what it awaits), and the one box would outgrow the allocator's
        // per-thread cache.
        let url = self.url(url_path);
        let future = futures_util::future::lazy(move |_| {
            self.send_raw_inline(
                operation,
                Method::GET,
                path,
                url,
                None,
                true,
                self.api_limits(),
            )
        })
        .flatten()
        .map(move |answer| finish(answer.and_then(|answer| self.decode(operation, path, answer))));
        Box::pin(future)
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer. **Never retried**: a POST
    /// here creates a task, and a task is charged when it is created.
    pub async fn post<Req: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        operation: Operation,
        path: &str,
        body: &Req,
    ) -> Result<Response<T>, Error<B>> {
        let json = serde_json::to_vec(body).map_err(|err| {
            self.invalid(
                operation,
                path,
                ValidationError::new("body", format!("cannot be written as JSON: {err}")),
            )
        })?;
        let answer = self
            .send(
                operation,
                Method::POST,
                path,
                self.url(path),
                Some(Bytes::from(json)),
                true,
            )
            .await?;
        self.decode(operation, path, answer)
    }

    /// Downloads a result file from `url` (a CDN link, not the provider's API): no
    /// `Authorization` header, bounded redirects with every hop checked against
    /// `allow_http`, and the body capped at `max_bytes`. Retried like a status call.
    pub async fn download(
        &self,
        url: &str,
        options: DownloadOptions,
    ) -> Result<Downloaded, Error<B>> {
        const OPERATION: Operation = Operation::read("download");
        let mut current = check_download_url(url, options.allow_http)
            .map_err(|error| self.invalid(OPERATION, "download", error))?;
        let mut redirects = 0u8;
        loop {
            let hop = current.clone();
            let answer = self
                .retrying(|| {
                    self.send_raw(
                        OPERATION,
                        Method::GET,
                        hop.path(),
                        hop.clone(),
                        None,
                        false,
                        ReadLimits {
                            max_bytes: options.max_bytes,
                            stall: Some(options.stall_timeout),
                        },
                    )
                })
                .await?;
            if answer.status.is_redirection()
                && let Some(location) = answer.header(&header::LOCATION).as_deref()
            {
                redirects += 1;
                if redirects > options.max_redirects {
                    return Err(self.invalid(
                        OPERATION,
                        current.path(),
                        ValidationError::new(
                            "url",
                            format!("more than {} redirects", options.max_redirects),
                        ),
                    ));
                }
                let location = self.inner.redactor.redact_str(location.to_owned());
                let next = current.join(&location).map_err(|err| {
                    self.invalid(
                        OPERATION,
                        current.path(),
                        ValidationError::new("url", format!("bad redirect {location:?}: {err}")),
                    )
                })?;
                current = check_download_url(next.as_str(), options.allow_http)
                    .map_err(|error| self.invalid(OPERATION, "download", error))?;
                continue;
            }
            if !answer.status.is_success() {
                return Err(self.api_error(OPERATION, current.path(), answer));
            }
            let content_type = answer.header(&header::CONTENT_TYPE);
            // A caller-supplied client may have followed redirects itself: check where it went.
            let final_url = answer.kept.map_or(current, |kept| kept.final_url);
            check_download_url(final_url.as_str(), options.allow_http)
                .map_err(|error| self.invalid(OPERATION, "download", error))?;
            return Ok(Downloaded {
                content_type,
                bytes: answer.body,
                url: final_url,
            });
        }
    }

    /// Default download limits for this client: `http://` allowed only when the API itself is
    /// reached over plain http (a local emulator or proxy).
    pub fn download_options(&self) -> DownloadOptions {
        DownloadOptions {
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_redirects: 5,
            allow_http: self.inner.base_url.scheme() == "http",
            stall_timeout: DEFAULT_DOWNLOAD_STALL_TIMEOUT,
        }
    }

    fn url(&self, path_and_query: &str) -> Url {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let mut url = self.inner.base_url.clone();
        let base = url.path().trim_end_matches('/');
        let path = path.trim_start_matches('/');
        // Pushed rather than formatted: this runs on every call.
        let mut joined = String::with_capacity(base.len() + 1 + path.len());
        joined.push_str(base);
        joined.push('/');
        joined.push_str(path);
        url.set_path(&joined);
        if query.is_some() || url.query().is_some() {
            url.set_query(query);
        }
        url
    }

    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, Error<B>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error<B>>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let Some(delay) =
                        self.inner
                            .retry
                            .next_delay(attempt, error.failure(), fastrand::f64())
                    else {
                        return Err(error);
                    };
                    // A retry that could not even begin before the caller's deadline is not
                    // worth the wait.
                    if crate::deadline::remaining().is_some_and(|left| delay >= left) {
                        return Err(error);
                    }
                    tracing::debug!(
                        provider = self.inner.provider,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "retrying"
                    );
                    self.inner.sleeper.sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// [`send_raw`](Self::send_raw) with the API's body cap; a plain function, not another
    /// state machine wrapped around it.
    fn send<'a>(
        &'a self,
        operation: Operation,
        method: Method,
        path: &'a str,
        url: Url,
        body: Option<Bytes>,
        authorized: bool,
    ) -> impl Future<Output = Result<Answer, Error<B>>> + 'a {
        self.send_raw(
            operation,
            method,
            path,
            url,
            body,
            authorized,
            self.api_limits(),
        )
    }

    /// How an API answer is read: capped, and bounded by the request's timeout alone.
    fn api_limits(&self) -> ReadLimits {
        ReadLimits {
            max_bytes: self.inner.max_response_bytes,
            stall: None,
        }
    }

    /// Sends one request and reads its answer. The request's state machine is boxed: it is
    /// the biggest part of every call's future, and every layer above it (retries, the
    /// client's method, a provider adapter's boxed future) would otherwise copy it whole each
    /// time one is created. It is kept under a kilobyte, so that the allocator serves it from
    /// its per-thread cache (glibc's takes up to 1,032 bytes) rather than its slower bins.
    #[allow(clippy::too_many_arguments)]
    fn send_raw<'a>(
        &'a self,
        operation: Operation,
        method: Method,
        path: &'a str,
        url: Url,
        body: Option<Bytes>,
        authorized: bool,
        limits: ReadLimits,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, Error<B>>> + Send + 'a>> {
        Box::pin(self.send_raw_inline(operation, method, path, url, body, authorized, limits))
    }

    /// [`send_raw`](Self::send_raw) not boxed: for a caller whose own future is the one box of
    /// the call ([`get_then`](Self::get_then)).
    #[allow(clippy::too_many_arguments)]
    fn send_raw_inline<'a>(
        &'a self,
        operation: Operation,
        method: Method,
        path: &'a str,
        url: Url,
        body: Option<Bytes>,
        authorized: bool,
        limits: ReadLimits,
    ) -> impl Future<Output = Result<Answer, Error<B>>> + Send + 'a {
        let span = tracing::info_span!(
            "imggen_http.request",
            provider = self.inner.provider,
            operation = operation.name,
            method = %method,
            path = %path.split('?').next().unwrap_or(path),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        // Nobody listening (the common case in a busy program): no span fields to fill, no
        // clock to read for a latency nobody sees.
        let recording = !span.is_disabled();
        let timed = recording || tracing::enabled!(tracing::Level::DEBUG);
        let started = timed.then(Instant::now);
        // The smaller of the request's own timeout and what is left of the caller's deadline.
        let limit = match crate::deadline::remaining() {
            Some(left) if left < self.inner.timeout => TimeLimit::Deadline(left),
            _ => TimeLimit::Request(self.inner.timeout),
        };
        let timeout = match limit {
            TimeLimit::Request(timeout)
            | TimeLimit::Deadline(timeout)
            | TimeLimit::Stall(timeout) => timeout,
        };
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(header::USER_AGENT, self.inner.user_agent.clone())
            .timeout(timeout);
        if authorized {
            request = request
                .header(header::AUTHORIZATION, self.inner.authorization.clone())
                .header(header::ACCEPT, "application/json");
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        // Built before the state machine, which then holds only the pending request and not
        // the method, URL and body that went into it. Nothing is sent until it is polled.
        let pending = span.in_scope(|| request.send());
        async move {
            let context = || self.context(operation, path);
            if authorized {
                let inner = &self.inner;
                inner
                    .budget
                    .acquire(inner.clock.as_ref(), inner.sleeper.as_ref())
                    .await;
            }
            if timeout.is_zero() {
                // The deadline passed before this request could start: it is not sent.
                return Err(Error::Timeout(Box::new(TimeoutError {
                    context: context(),
                    phase: Phase::Connect,
                    limit: Some(limit),
                    source: None,
                })));
            }
            let stalled = |stall| {
                Error::Timeout(Box::new(TimeoutError {
                    context: context(),
                    phase: Phase::AfterSend,
                    limit: Some(TimeLimit::Stall(stall)),
                    source: None,
                }))
            };
            let answered = match limits.stall {
                Some(stall) => tokio::time::timeout(stall, pending)
                    .await
                    .map_err(|_| stalled(stall))?,
                None => pending.await,
            };
            let mut response =
                answered.map_err(|err| self.connection_error(context(), err, limit))?;
            let status = response.status();
            let request_id = header_str(response.headers(), &X_REQUEST_ID)
                .map(|id| self.inner.redactor.redact_str(id));
            // A successful API answer needs nothing more than its body: its headers go with
            // the response, and the call's state stays small. An error keeps them for its
            // Retry-After, a download (sent without the key) for where it ended up and
            // what it claims to be. Moved out, not cloned.
            let kept = (!authorized || !status.is_success()).then(|| {
                Box::new(Kept {
                    headers: std::mem::take(response.headers_mut()),
                    final_url: response.url().clone(),
                })
            });
            if recording {
                let current = tracing::Span::current();
                current.record("status", status.as_u16());
                if let Some(id) = &request_id {
                    current.record("request_id", id.as_str());
                }
            }
            let body = read_capped(response, limits)
                .await
                .map_err(|failure| match failure {
                    ReadFailure::TooLarge => Error::BodyTooLarge(Box::new(BodyTooLargeError {
                        context: context(),
                        status: status.as_u16(),
                        limit: limits.max_bytes,
                        request_id: request_id.clone(),
                    })),
                    ReadFailure::Stalled(stall) => stalled(stall),
                    ReadFailure::Connection(err) => self.connection_error(context(), err, limit),
                })?;
            // Everything a server says on a call that carried the key — and any error a
            // download gets — is text the key must not reach through. An image's bytes are
            // left alone.
            let body = if authorized || !status.is_success() {
                self.inner.redactor.redact(body)
            } else {
                body
            };
            if let Some(started) = started {
                let latency_ms = started.elapsed().as_millis() as u64;
                tracing::Span::current().record("latency_ms", latency_ms);
                tracing::debug!(
                    status = status.as_u16(),
                    latency_ms,
                    bytes = body.len(),
                    "answered"
                );
            }
            Ok(Answer {
                status,
                request_id,
                kept,
                body,
            })
        }
        .instrument(span)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        operation: Operation,
        path: &str,
        answer: Answer,
    ) -> Result<Response<T>, Error<B>> {
        if !answer.status.is_success() {
            return Err(self.api_error(operation, path, answer));
        }
        match serde_json::from_slice(&answer.body) {
            Ok(value) => Ok(Response {
                value,
                status: answer.status.as_u16(),
                request_id: answer.request_id,
            }),
            Err(source) => Err(Error::Decode(Box::new(DecodeError {
                context: self.context(operation, path),
                status: answer.status.as_u16(),
                raw_body: answer.body,
                request_id: answer.request_id,
                source,
            }))),
        }
    }

    fn api_error(&self, operation: Operation, path: &str, answer: Answer) -> Error<B> {
        let status = answer.status.as_u16();
        let body: Option<B> = serde_json::from_slice(&answer.body).ok();
        let request_id = answer.request_id.or_else(|| {
            body.as_ref()
                .and_then(|body| body.request_id().map(str::to_owned))
        });
        let rejected_create = operation
            .is_create()
            .then(|| B::rejected_create(status, body.as_ref()));
        Error::Api(Box::new(ApiError {
            context: self.context(operation, path),
            status,
            body,
            raw_body: answer.body,
            request_id,
            // Read only here: a successful answer never needs the wall clock.
            retry_after: answer
                .kept
                .as_ref()
                .and_then(|kept| retry_after(&kept.headers, self.inner.clock.wall())),
            rejected_create,
        }))
    }

    fn connection_error(
        &self,
        context: Context,
        err: reqwest::Error,
        limit: TimeLimit,
    ) -> Error<B> {
        // A failure while connecting (DNS, TCP, TLS) happens before the request is written:
        // the server cannot have seen it. Anything later may have reached it.
        let phase = if err.is_connect() {
            Phase::Connect
        } else {
            Phase::AfterSend
        };
        if err.is_timeout() {
            // Only the overall limit is known per request; a caller's client may have its own
            // connect timeout.
            let limit = (phase == Phase::AfterSend).then_some(limit);
            Error::Timeout(Box::new(TimeoutError {
                context,
                phase,
                limit,
                source: Some(err),
            }))
        } else {
            Error::Transport(Box::new(TransportError {
                context,
                phase,
                source: err,
            }))
        }
    }
}

/// What came back, before it is judged.
struct Answer {
    status: StatusCode,
    request_id: Option<String>,
    /// What only an error or a download reads; `None` for a successful API answer.
    kept: Option<Box<Kept>>,
    body: Bytes,
}

/// The headers and final URL of an answer that needs them.
struct Kept {
    headers: HeaderMap,
    final_url: Url,
}

impl Answer {
    fn header(&self, name: &HeaderName) -> Option<String> {
        self.kept
            .as_ref()
            .and_then(|kept| header_str(&kept.headers, name))
    }
}

/// `X-Request-Id`, which gptimg sends with every answer.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

enum ReadFailure {
    TooLarge,
    Stalled(Duration),
    Connection(reqwest::Error),
}

/// Reads the body, refusing to hold more than `max` bytes (checked against `Content-Length`
/// first, then as chunks arrive, since a server may not send a length).
///
/// An answer that arrives in one chunk — a typical API answer — is returned as that chunk,
/// neither copied nor collected; only a second chunk starts a buffer. (Chunk by chunk rather
/// than `Response::bytes`, whose future is several times the size of this loop's, and is
/// carried by every call's future.)
//
// Not an `async fn`: one keeps its arguments (the response, 136 bytes) twice in its future,
// which every call's boxed future holds while it reads.
#[allow(clippy::manual_async_fn)]
fn read_capped(
    mut response: reqwest::Response,
    limits: ReadLimits,
) -> impl Future<Output = Result<Bytes, ReadFailure>> + Send {
    async move {
        let max = limits.max_bytes;
        if response.content_length().is_some_and(|length| length > max) {
            return Err(ReadFailure::TooLarge);
        }
        let mut single: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        loop {
            let next = match limits.stall {
                Some(stall) => tokio::time::timeout(stall, response.chunk())
                    .await
                    .map_err(|_| ReadFailure::Stalled(stall))?,
                None => response.chunk().await,
            };
            let Some(chunk) = next.map_err(ReadFailure::Connection)? else {
                break;
            };
            let held = single.as_ref().map_or(joined.len(), Bytes::len);
            if (held + chunk.len()) as u64 > max {
                return Err(ReadFailure::TooLarge);
            }
            if let Some(first) = single.take() {
                joined.reserve(first.len() + chunk.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
            } else if joined.is_empty() {
                single = Some(chunk);
            } else {
                joined.extend_from_slice(&chunk);
            }
        }
        Ok(single.unwrap_or_else(|| joined.freeze()))
    }
}

fn header_str(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Retry-After` as a delay: seconds (`120`) or an HTTP date, measured from `now`. A date in
/// the past means "now".
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header_str(headers, &header::RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(&value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn check_download_url(raw: &str, allow_http: bool) -> Result<Url, ValidationError> {
    let url = Url::parse(raw)
        .map_err(|err| ValidationError::new("url", format!("{raw:?} is not a URL ({err})")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_http => Ok(url),
        scheme => Err(ValidationError::new(
            "url",
            format!(
                "{raw:?} uses {scheme}://; only https:// is downloaded{}",
                if scheme == "http" {
                    " (http is allowed only when the provider's base URL is http)"
                } else {
                    ""
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
