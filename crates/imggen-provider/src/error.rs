//! One failed call to a provider, with every fact the retry policy and a person need.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use imggen_http::{Phase, ProviderErrorBody, TimeLimit};
use imggen_types::text::Untrusted;
use serde::Serialize;

use crate::id::ProviderId;

/// Which kind of call a [`CallError`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOperation {
    /// A create: charged when accepted.
    Create,
    /// A status read.
    Status,
    /// A result download.
    Download,
}

impl fmt::Display for CallOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallOperation::Create => "create",
            CallOperation::Status => "status",
            CallOperation::Download => "download",
        })
    }
}

/// How a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The client is misconfigured.
    Config,
    /// The request broke a documented limit; nothing was sent.
    InvalidRequest,
    /// The provider answered with an error status.
    Api,
    /// A success status whose body was not the documented JSON.
    Decode,
    /// Connecting failed; nothing was sent.
    Connect,
    /// The connection failed after the request may have been sent.
    Transport,
    /// No answer in time, after the request may have been sent.
    Timeout,
    /// The answer was larger than the cap.
    BodyTooLarge,
    /// The caller's deadline passed before the call could be sent; nothing was sent.
    Deadline,
}

/// One failed call to a provider, with every fact the retry policy and a person need:
/// provider, call, HTTP status, provider code and message, request id, raw body, whether it is
/// worth repeating and whether it may have been charged.
#[non_exhaustive]
pub struct CallError {
    /// The provider.
    pub provider: ProviderId,
    /// The call.
    pub operation: CallOperation,
    /// How it failed.
    pub kind: CallErrorKind,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The provider's error code, as on the wire.
    pub code: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// The request id (`X-Request-Id` or the body).
    pub request_id: Option<String>,
    /// The answer's body exactly as received.
    pub raw_body: Option<Bytes>,
    /// How long the provider asked the caller to wait.
    pub retry_after: Option<Duration>,
    /// Whether the same call may succeed if made again. For a create: only when the answer
    /// proves nothing was charged.
    pub retryable: bool,
    /// Whether a create that failed this way may still have created — and charged — a task.
    pub may_have_been_charged: bool,
    /// What a person should do about it: the provider's advice for its error code, or the
    /// client's for a lost answer to a create.
    pub advice: Option<&'static str>,
    /// The client's error, when the error came from a client: its `Display` is this error's,
    /// its source this error's source.
    client_error: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CallError {
    /// An error with only its kind known; set the facts with the `with_*` methods. For fake
    /// providers and adapters of other clients.
    pub fn new(provider: ProviderId, operation: CallOperation, kind: CallErrorKind) -> Self {
        let may_have_been_charged = operation == CallOperation::Create
            && matches!(
                kind,
                CallErrorKind::Decode | CallErrorKind::Transport | CallErrorKind::Timeout
            );
        CallError {
            provider,
            operation,
            kind,
            status: None,
            code: None,
            message: None,
            request_id: None,
            raw_body: None,
            retry_after: None,
            retryable: matches!(kind, CallErrorKind::Connect)
                || (operation != CallOperation::Create
                    && matches!(kind, CallErrorKind::Transport | CallErrorKind::Timeout)),
            may_have_been_charged,
            advice: None,
            client_error: None,
        }
    }

    /// An API error answer: `status`, the provider's `code` and `message`. Retryable and
    /// charged follow the usual rule (429 retryable, 4xx not charged, 5xx perhaps charged);
    /// adjust with [`with_retryable`](Self::with_retryable) and
    /// [`with_may_have_been_charged`](Self::with_may_have_been_charged).
    pub fn api(
        provider: ProviderId,
        operation: CallOperation,
        status: u16,
        code: Option<&str>,
        message: Option<&str>,
    ) -> Self {
        let mut error = CallError::new(provider, operation, CallErrorKind::Api);
        error.status = Some(status);
        error.code = code.map(str::to_owned);
        error.message = message.map(str::to_owned);
        error.retryable = matches!(status, 429 | 502..=504);
        error.may_have_been_charged = operation == CallOperation::Create && status >= 500;
        if operation == CallOperation::Create {
            error.retryable = status == 429;
        }
        error
    }

    /// Sets `Retry-After`.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// Sets whether the call is worth repeating.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Sets whether a create may have been charged.
    pub fn with_may_have_been_charged(mut self, charged: bool) -> Self {
        self.may_have_been_charged = charged;
        self
    }

    /// Sets the advice.
    pub fn with_advice(mut self, advice: &'static str) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Whether the provider answered 429 and asks to slow down (not an exhausted quota).
    pub fn is_rate_limited(&self) -> bool {
        self.status == Some(429) && self.retryable
    }

    /// Whether this create's answer proves the task was not accepted: the only errors after
    /// which another provider may be tried.
    pub fn proves_not_accepted(&self) -> bool {
        self.operation == CallOperation::Create && !self.may_have_been_charged
    }

    /// Converts a client error (what a provider crate does with every error its client
    /// returns).
    pub fn from_http<B: ProviderErrorBody>(
        provider: ProviderId,
        operation: CallOperation,
        error: imggen_http::Error<B>,
    ) -> Self {
        use imggen_http::Error as E;
        let kind = match &error {
            E::Config(_) => CallErrorKind::Config,
            E::InvalidRequest(_) => CallErrorKind::InvalidRequest,
            E::Api(_) => CallErrorKind::Api,
            E::Decode(_) => CallErrorKind::Decode,
            E::Transport(e) if e.phase == Phase::Connect => CallErrorKind::Connect,
            E::Transport(_) => CallErrorKind::Transport,
            E::Timeout(e)
                if e.phase == Phase::Connect
                    && matches!(e.limit, Some(TimeLimit::Deadline(left)) if left.is_zero()) =>
            {
                CallErrorKind::Deadline
            }
            E::Timeout(e) if e.phase == Phase::Connect => CallErrorKind::Connect,
            E::Timeout(_) => CallErrorKind::Timeout,
            E::BodyTooLarge(_) => CallErrorKind::BodyTooLarge,
            _ => CallErrorKind::Transport,
        };
        let (code, message) = match &error {
            E::Api(api) => (api.code_str(), api.message()),
            E::InvalidRequest(invalid) => (None, Some(invalid.error.to_string())),
            _ => (None, None),
        };
        CallError {
            provider,
            operation,
            kind,
            status: error.status(),
            code,
            message,
            request_id: error.request_id().map(str::to_owned),
            raw_body: error.raw_body().map(Bytes::copy_from_slice),
            retry_after: error.retry_after(),
            retryable: error.is_retryable(),
            may_have_been_charged: error.may_have_been_charged(),
            advice: error.advice(),
            client_error: Some(Box::new(error)),
        }
    }
}

impl fmt::Debug for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallError")
            .field("provider", &self.provider)
            .field("operation", &self.operation)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("raw_body_len", &self.raw_body.as_ref().map(Bytes::len))
            .field("retry_after", &self.retry_after)
            .field("retryable", &self.retryable)
            .field("may_have_been_charged", &self.may_have_been_charged)
            .field("advice", &self.advice)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CallError {
    /// The client's own one-line message, or (for errors made from facts) the same shape:
    /// `gptimg create: 402 INSUFFICIENT_CREDITS: 4 credits required, 1 available`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(client_error) = &self.client_error {
            return fmt::Display::fmt(client_error, f);
        }
        write!(f, "{} {}: ", self.provider, self.operation)?;
        match self.kind {
            CallErrorKind::Api => {
                if let Some(status) = self.status {
                    write!(f, "{status}")?;
                }
                if let Some(code) = &self.code {
                    write!(f, " {}", Untrusted(code))?;
                }
            }
            CallErrorKind::Config => f.write_str("misconfigured")?,
            CallErrorKind::InvalidRequest => f.write_str("invalid request, nothing was sent")?,
            CallErrorKind::Decode => f.write_str("the answer is not the documented JSON")?,
            CallErrorKind::Connect => f.write_str("could not connect; nothing was sent")?,
            CallErrorKind::Transport => {
                f.write_str("the connection failed after the request was sent")?;
            }
            CallErrorKind::Timeout => f.write_str("no answer in time")?,
            CallErrorKind::BodyTooLarge => f.write_str("the answer is larger than the cap")?,
            CallErrorKind::Deadline => {
                f.write_str("the deadline passed before it was sent; nothing was sent")?;
            }
        }
        if let Some(message) = &self.message
            && Some(message) != self.code.as_ref()
        {
            write!(f, ": {}", Untrusted(message))?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request {})", Untrusted(id))?;
        }
        if self.operation == CallOperation::Create && self.may_have_been_charged {
            f.write_str(
                "; the task may have been created and charged: check before submitting it again",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.client_error.as_deref()?.source()
    }
}
