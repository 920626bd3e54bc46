//! The HTTP transport imggen's three provider clients share, written once.
//!
//! - **Secrets stay secret.** The API key is a [`secrecy::SecretString`]; its header is marked
//!   sensitive; no `Debug`, `Display`, error or log line contains it — not even when a server
//!   echoes it back: every answer to a call that carried the key has it struck out
//!   ([`REDACTED`]) before anything reads it.
//! - **Errors speak.** Every [`Error`] names the provider and the call, keeps the HTTP status,
//!   the provider's code and message, the request id and the raw body, and answers
//!   [`is_retryable`](Error::is_retryable) and
//!   [`may_have_been_charged`](Error::may_have_been_charged).
//! - **Reads are retried, creates never.** Status calls are retried on 429, 502, 503, 504 and
//!   connection failures, with jittered backoff that obeys `Retry-After` ([`RetryPolicy`]). A
//!   create is sent once: every provider charges at submit.
//! - **Bounded.** A request timeout, a connect timeout, a cap on every body, a stall timeout on
//!   downloads, and a caller's overall [`deadline`] that every request inside it obeys.
//! - **Files written whole** ([`fs`]): temporary file, flush, sync, length check, rename.
//! - **Observable.** One `tracing` span per request: provider, call, method, path, status,
//!   latency, request id.
//! - **Time is injected** ([`time`]), so tests drive retries without waiting.
//!
//! Provider clients implement [`ApiClient`] and get [`ClientBuilder`] for free; users of a
//! client never need this crate directly.

mod budget;
mod builder;
pub mod deadline;
mod error;
pub mod fs;
pub mod poll;
mod redact;
pub mod retry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
mod transport;

pub use budget::RequestBudget;
pub use builder::{
    ApiClient, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
    ProviderInfo,
};
pub use error::{
    ApiError, BodyTooLargeError, ConfigError, Context, DecodeError, Error, InvalidRequestError,
    Operation, OperationKind, Phase, TimeLimit, TimeoutError, TransportError,
};
pub use poll::{CreateAndWaitError, PollSchedule, WaitError, WaitOptions};
pub use redact::REDACTED;
pub use retry::RetryPolicy;
/// Re-exported for [`WaitOptions::cancel`].
pub use tokio_util::sync::CancellationToken;
pub use transport::{
    DEFAULT_DOWNLOAD_STALL_TIMEOUT, DEFAULT_MAX_DOWNLOAD_BYTES, DownloadOptions, Downloaded,
    Response, Transport, retry_after,
};

pub use imggen_types::{ProviderErrorBody, RejectedCreate};
/// Re-exported so callers can pass their own client without a version mismatch.
pub use reqwest;
