//! Errors that answer the two questions every caller of a paid API has: is it worth trying
//! again, and may the task have been created and charged?

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use imggen_types::text::Untrusted;
use imggen_types::{ProviderErrorBody, RejectedCreate, ValidationError};

use crate::retry::Failure;

/// What kind of call failed: it decides what an error means for money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Creates a task. Charged at submit; never retried by the transport.
    Create,
    /// Reads (a status call, a list, a download). Never charged; safe to repeat.
    Read,
}

/// The call that failed, as it appears in messages: `gptimg create`, `runbase status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// A short name: `create`, `status`, `list`, `download`.
    pub name: &'static str,
    /// Create or read.
    pub kind: OperationKind,
}

impl Operation {
    /// A call that creates (and pays for) a task.
    pub const fn create(name: &'static str) -> Self {
        Operation {
            name,
            kind: OperationKind::Create,
        }
    }

    /// A call that only reads.
    pub const fn read(name: &'static str) -> Self {
        Operation {
            name,
            kind: OperationKind::Read,
        }
    }

    /// Whether this call creates a task.
    pub fn is_create(self) -> bool {
        self.kind == OperationKind::Create
    }
}

/// Which provider and call an error came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `runblob`, `gptimg` or `runbase`.
    pub provider: &'static str,
    /// The call.
    pub operation: Operation,
    /// The request path (never the query string, never a header).
    pub path: String,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.provider, self.operation.name)
    }
}

/// How far a request got before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting (DNS, TCP, TLS): not a byte of the request was sent.
    Connect,
    /// The request may have reached the server: it failed while sending, waiting or reading.
    AfterSend,
}

const CHARGED_HINT: &str =
    "the task may have been created and charged: check before submitting it again";

/// Everything that can go wrong in a call, for a provider whose error bodies are `B`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<B: ProviderErrorBody> {
    /// The client could not be built (no key, a bad base URL).
    #[error(transparent)]
    Config(Box<ConfigError>),
    /// The request breaks a documented limit; nothing was sent.
    #[error(transparent)]
    InvalidRequest(Box<InvalidRequestError>),
    /// The provider answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError<B>>),
    /// A success status with a body that is not the documented JSON.
    #[error(transparent)]
    Decode(Box<DecodeError>),
    /// The connection failed.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// No answer in time.
    #[error(transparent)]
    Timeout(Box<TimeoutError>),
    /// The answer was larger than the configured cap.
    #[error(transparent)]
    BodyTooLarge(Box<BodyTooLargeError>),
}

impl<B: ProviderErrorBody> Error<B> {
    /// Where the error happened (`None` for configuration errors).
    pub fn context(&self) -> Option<&Context> {
        match self {
            Error::Config(_) => None,
            Error::InvalidRequest(e) => Some(&e.context),
            Error::Api(e) => Some(&e.context),
            Error::Decode(e) => Some(&e.context),
            Error::Transport(e) => Some(&e.context),
            Error::Timeout(e) => Some(&e.context),
            Error::BodyTooLarge(e) => Some(&e.context),
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode(e) => Some(e.status),
            Error::BodyTooLarge(e) => Some(e.status),
            _ => None,
        }
    }

    /// The request id, from the `X-Request-Id` header or the body.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::Decode(e) => e.request_id.as_deref(),
            Error::BodyTooLarge(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// The answer's body exactly as received, when there was one.
    pub fn raw_body(&self) -> Option<&[u8]> {
        match self {
            Error::Api(e) => Some(&e.raw_body),
            Error::Decode(e) => Some(&e.raw_body),
            _ => None,
        }
    }

    /// How long the server asked the client to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// Whether the same call may succeed if made again. For a create this is true only when
    /// the answer proves nothing was charged (a 429, a documented maintenance or refunded
    /// error, a connection refused before a byte was sent).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config(_) | Error::InvalidRequest(_) => false,
            Error::Api(e) => e.is_retryable(),
            Error::Decode(_) | Error::BodyTooLarge(_) => false,
            Error::Transport(e) => e.phase == Phase::Connect || !e.context.operation.is_create(),
            Error::Timeout(e) => e.phase == Phase::Connect || !e.context.operation.is_create(),
        }
    }

    /// Whether a create that failed this way may nonetheless have created a task, and charged
    /// for it. Always false for reads and for errors raised before sending.
    pub fn may_have_been_charged(&self) -> bool {
        let Some(context) = self.context() else {
            return false;
        };
        if !context.operation.is_create() {
            return false;
        }
        match self {
            Error::Config(_) | Error::InvalidRequest(_) => false,
            Error::Api(e) => e.may_have_been_charged(),
            // A success status whose body we could not read or hold: the task exists.
            Error::Decode(_) => true,
            // A success (the task exists) or a 5xx (nothing proves it does not): the body
            // that would say was too large to read.
            Error::BodyTooLarge(e) => e.status < 400 || e.status >= 500,
            Error::Transport(e) => e.phase == Phase::AfterSend,
            Error::Timeout(e) => e.phase == Phase::AfterSend,
        }
    }

    /// The facts the retry policy decides on.
    pub fn failure(&self) -> Failure {
        Failure {
            retryable: self.is_retryable(),
            retry_after: self.retry_after(),
        }
    }

    /// The provider's parsed error body, for an API error whose body parsed.
    pub fn api_body(&self) -> Option<&B> {
        match self {
            Error::Api(e) => e.body.as_ref(),
            _ => None,
        }
    }

    /// The provider's error code, typed, for an API error that carries one.
    pub fn code(&self) -> Option<B::Code> {
        self.api_body().and_then(ProviderErrorBody::code)
    }

    /// What a person should do about it, in a few words: the provider's advice for its error
    /// code, or imggen's for a lost answer to a create.
    pub fn advice(&self) -> Option<&'static str> {
        if self.may_have_been_charged() {
            return Some(
                "do not resubmit blindly: check the provider's task list or balance first",
            );
        }
        self.api_body().and_then(ProviderErrorBody::advice)
    }

    pub(crate) fn config(provider: &'static str, message: impl Into<String>) -> Self {
        Error::Config(Box::new(ConfigError {
            provider,
            message: message.into(),
        }))
    }

    /// A request refused by validation before anything was sent.
    pub fn invalid_request(context: Context, error: ValidationError) -> Self {
        Error::InvalidRequest(Box::new(InvalidRequestError { context, error }))
    }
}

/// The client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ConfigError {
    /// The provider whose client it was.
    pub provider: &'static str,
    /// What is wrong (never the key itself).
    pub message: String,
}

/// A request refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: invalid request, nothing was sent: {error}")]
pub struct InvalidRequestError {
    /// The call.
    pub context: Context,
    /// Which field, which value, what is allowed.
    pub error: ValidationError,
}

/// The provider answered with an error status.
#[derive(Debug, Clone)]
pub struct ApiError<B> {
    /// The call.
    pub context: Context,
    /// The HTTP status.
    pub status: u16,
    /// The body, parsed, when it is in the provider's documented shape.
    pub body: Option<B>,
    /// The body exactly as received.
    pub raw_body: Bytes,
    /// From `X-Request-Id` or the body.
    pub request_id: Option<String>,
    /// From `Retry-After`, as a delay from when the answer arrived.
    pub retry_after: Option<Duration>,
    /// For a create: what the answer says about the charge.
    pub rejected_create: Option<RejectedCreate>,
}

impl<B: ProviderErrorBody> ApiError<B> {
    /// The provider's code as it appears on the wire, e.g. `INSUFFICIENT_CREDITS`.
    pub fn code_str(&self) -> Option<String> {
        self.body
            .as_ref()
            .and_then(ProviderErrorBody::code)
            .map(|code| code.to_string())
    }

    /// The message a person should read.
    pub fn message(&self) -> Option<String> {
        self.body.as_ref().and_then(ProviderErrorBody::message)
    }

    fn is_retryable(&self) -> bool {
        match self.rejected_create {
            Some(RejectedCreate::NotCharged { retryable }) => retryable,
            Some(RejectedCreate::MayHaveBeenCharged) => false,
            None => B::retryable_read(self.status, self.body.as_ref()),
        }
    }

    fn may_have_been_charged(&self) -> bool {
        self.rejected_create == Some(RejectedCreate::MayHaveBeenCharged)
    }
}

impl<B: ProviderErrorBody> fmt::Display for ApiError<B> {
    /// `gptimg create: 402 INSUFFICIENT_CREDITS: 4 credits required, 1 available (request req_1)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.status)?;
        let code = self.code_str();
        match &code {
            Some(code) => write!(f, " {}", Untrusted(code))?,
            None => {
                if let Some(reason) = reqwest::StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                {
                    write!(f, " {reason}")?;
                }
            }
        }
        match self.message() {
            Some(message) if Some(&message) != code.as_ref() => {
                write!(f, ": {}", Untrusted(&message))?;
            }
            Some(_) => {}
            None if self.body.is_none() && !self.raw_body.is_empty() => {
                write!(f, ": {}", snippet(&self.raw_body))?;
            }
            None => {}
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request {})", Untrusted(id))?;
        }
        if let Some(after) = self.retry_after {
            write!(f, "; retry after {}s", after.as_secs_f64().ceil())?;
        }
        if self.may_have_been_charged() {
            write!(f, "; {CHARGED_HINT}")?;
        }
        Ok(())
    }
}

impl<B: ProviderErrorBody> std::error::Error for ApiError<B> {}

/// A success status whose body is not the documented JSON.
#[derive(Debug, thiserror::Error)]
#[error(
    "{context}: the {status} answer is not the documented JSON{}",
    charged_suffix(context)
)]
pub struct DecodeError {
    /// The call.
    pub context: Context,
    /// The HTTP status.
    pub status: u16,
    /// The body exactly as received.
    pub raw_body: Bytes,
    /// From `X-Request-Id`.
    pub request_id: Option<String>,
    /// What did not parse.
    #[source]
    pub source: serde_json::Error,
}

/// The connection failed.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {}{}", phase_words(*phase), charged_suffix_if(context, *phase))]
pub struct TransportError {
    /// The call.
    pub context: Context,
    /// Whether anything may have been sent.
    pub phase: Phase,
    /// The underlying error.
    #[source]
    pub source: reqwest::Error,
}

/// No answer in time.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {}{}", timeout_words(*phase, *limit), charged_suffix_if(context, *phase))]
pub struct TimeoutError {
    /// The call.
    pub context: Context,
    /// Whether anything may have been sent.
    pub phase: Phase,
    /// The limit that was reached, when known.
    pub limit: Option<TimeLimit>,
    /// The underlying error; `None` when the deadline had passed before anything was sent.
    #[source]
    pub source: Option<reqwest::Error>,
}

/// Which limit ended a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeLimit {
    /// The client's own per-request timeout.
    Request(Duration),
    /// What was left of the caller's overall deadline ([`crate::deadline`]) when the request
    /// began, shorter than the per-request timeout.
    Deadline(Duration),
    /// No byte arrived for this long (downloads).
    Stall(Duration),
}

/// The answer was larger than the cap.
#[derive(Debug, thiserror::Error)]
#[error("{context}: the {status} answer is larger than the {limit}-byte cap{}", if *status < 400 || *status >= 500 { charged_suffix(context) } else { "" })]
pub struct BodyTooLargeError {
    /// The call.
    pub context: Context,
    /// The HTTP status.
    pub status: u16,
    /// The cap, in bytes.
    pub limit: u64,
    /// From `X-Request-Id`.
    pub request_id: Option<String>,
}

fn phase_words(phase: Phase) -> &'static str {
    match phase {
        Phase::Connect => "could not connect; nothing was sent",
        Phase::AfterSend => "the connection failed after the request was sent",
    }
}

fn timeout_words(phase: Phase, limit: Option<TimeLimit>) -> String {
    let secs = |duration: Duration| {
        let secs = duration.as_secs_f64();
        if secs >= 10.0 {
            format!("{secs:.0}s")
        } else {
            format!("{}s", (secs * 10.0).round() / 10.0)
        }
    };
    match (phase, limit) {
        (Phase::Connect, Some(TimeLimit::Deadline(left))) if left.is_zero() => {
            "the deadline passed before the request was sent; nothing was sent".to_owned()
        }
        (Phase::Connect, Some(TimeLimit::Request(t) | TimeLimit::Deadline(t))) => {
            format!("could not connect within {}; nothing was sent", secs(t))
        }
        (Phase::Connect, _) => "could not connect in time; nothing was sent".to_owned(),
        (Phase::AfterSend, Some(TimeLimit::Request(t))) => format!("no answer within {}", secs(t)),
        (Phase::AfterSend, Some(TimeLimit::Deadline(t))) => {
            format!(
                "no answer before the deadline ({} left when it was sent)",
                secs(t)
            )
        }
        (Phase::AfterSend, Some(TimeLimit::Stall(t))) => {
            format!("the answer stalled: no byte for {}", secs(t))
        }
        (Phase::AfterSend, None) => "no answer in time".to_owned(),
    }
}

fn charged_suffix(context: &Context) -> &'static str {
    if context.operation.is_create() {
        "; the task was probably created and charged: check before submitting it again"
    } else {
        ""
    }
}

fn charged_suffix_if(context: &Context, phase: Phase) -> String {
    if context.operation.is_create() && phase == Phase::AfterSend {
        format!("; {CHARGED_HINT}")
    } else {
        String::new()
    }
}

/// The start of a body that is not JSON (an HTML error page), for a message: one line, its
/// control characters made visible.
fn snippet(raw: &[u8]) -> String {
    const KEEP: usize = 200;
    let text = String::from_utf8_lossy(&raw[..raw.len().min(KEEP)]);
    let one_line = Untrusted(&text.split_whitespace().collect::<Vec<_>>().join(" ")).to_string();
    if raw.len() > KEEP {
        format!("{one_line}…")
    } else {
        one_line
    }
}
