//! Errors that say what happened to the money and to the task.
//!
//! [`Error`]'s variants are the categories a caller (and the CLI's exit codes) tell apart:
//! nothing sent ([`Config`](Error::Config), [`InvalidRequest`](Error::InvalidRequest),
//! [`Plan`](Error::Plan)), refused and not charged ([`Refused`](Error::Refused),
//! [`AllProvidersFailed`](Error::AllProvidersFailed)), perhaps charged
//! ([`CreateOutcomeUnknown`](Error::CreateOutcomeUnknown)), and charged, with the task's
//! handle to resume from ([`Status`](Error::Status), [`TaskFailed`](Error::TaskFailed),
//! [`DeadlineExceeded`](Error::DeadlineExceeded), [`Cancelled`](Error::Cancelled),
//! [`Download`](Error::Download)).

use std::time::Duration;

use imggen_types::text::Untrusted;

pub use imggen_provider::error::{CallError, CallErrorKind, CallOperation};

use crate::handle::{RequestSummary, TaskHandle};
use crate::plan::PlanError;
use crate::provider::ProviderId;
use crate::status::{TaskState, TaskStatus};

/// Everything that can go wrong in imggen-core. Match on the variant for the category.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// imggen is misconfigured (a provider not added, a bad option). Nothing was sent.
    #[error(transparent)]
    Config(Box<ConfigError>),
    /// The request or a handle is malformed, or a reference file cannot be read. Nothing was
    /// sent.
    #[error(transparent)]
    InvalidRequest(Box<InvalidRequestError>),
    /// The provider cannot serve the request as asked. Nothing was sent.
    #[error(transparent)]
    Plan(Box<PlanError>),
    /// The provider refused a create, and the answer proves nothing was charged for it.
    #[error(transparent)]
    Refused(Box<RefusedError>),
    /// A create's answer was lost: the task may exist and be charged. Never resubmitted.
    #[error(transparent)]
    CreateOutcomeUnknown(Box<CreateOutcomeUnknownError>),
    /// Every provider of a fallback list refused; none charged.
    #[error(transparent)]
    AllProvidersFailed(Box<AllProvidersFailedError>),
    /// A paid task's status could not be read. The handle resumes it.
    #[error(transparent)]
    Status(Box<StatusError>),
    /// The task failed (the providers refund failed tasks).
    #[error(transparent)]
    TaskFailed(Box<TaskFailedError>),
    /// The task did not finish before the deadline. It is still running, and paid: the
    /// handle resumes it.
    #[error(transparent)]
    DeadlineExceeded(Box<DeadlineExceededError>),
    /// The wait was cancelled. The task is still running, and paid: the handle resumes it.
    #[error(transparent)]
    Cancelled(Box<CancelledError>),
    /// A result could not be downloaded or saved. The handle downloads it again.
    #[error(transparent)]
    Download(Box<DownloadError>),
}

impl From<PlanError> for Error {
    fn from(error: PlanError) -> Self {
        Error::Plan(Box::new(error))
    }
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(Box::new(ConfigError {
            message: message.into(),
        }))
    }

    pub(crate) fn invalid(
        provider: Option<ProviderId>,
        problem: impl Into<String>,
        call: Option<CallError>,
    ) -> Self {
        Error::InvalidRequest(Box::new(InvalidRequestError {
            provider,
            problem: problem.into(),
            call,
        }))
    }

    /// The provider the error concerns, when it concerns one.
    pub fn provider(&self) -> Option<ProviderId> {
        match self {
            Error::Config(_) | Error::AllProvidersFailed(_) => None,
            Error::InvalidRequest(e) => e.provider,
            Error::Plan(e) => Some(e.provider),
            Error::Refused(e) => Some(e.call.provider),
            Error::CreateOutcomeUnknown(e) => Some(e.call.provider),
            Error::Status(e) => Some(e.handle.provider),
            Error::TaskFailed(e) => Some(e.handle.provider),
            Error::DeadlineExceeded(e) => Some(e.handle.provider),
            Error::Cancelled(e) => Some(e.handle.provider),
            Error::Download(e) => Some(e.handle.provider),
        }
    }

    /// Every task handle the error carries: the task it is about and the others of the same
    /// submission, all created and charged. None is ever dropped.
    pub fn handles(&self) -> Vec<&TaskHandle> {
        let (first, rest): (Option<&TaskHandle>, &[TaskHandle]) = match self {
            Error::Config(_) | Error::InvalidRequest(_) | Error::Plan(_) => (None, &[]),
            Error::Refused(e) => (None, &e.accepted),
            Error::CreateOutcomeUnknown(e) => (None, &e.accepted),
            Error::AllProvidersFailed(_) => (None, &[]),
            Error::Status(e) => (Some(&e.handle), &e.siblings),
            Error::TaskFailed(e) => (Some(&e.handle), &e.siblings),
            Error::DeadlineExceeded(e) => (Some(&e.handle), &e.siblings),
            Error::Cancelled(e) => (Some(&e.handle), &e.siblings),
            Error::Download(e) => (Some(&e.handle), &e.siblings),
        };
        first.into_iter().chain(rest.iter()).collect()
    }

    /// Whether trying again may succeed: a rate limit or maintenance that passes, a wait or a
    /// download resumed from its handle. Never true for a create whose outcome is unknown.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config(_) | Error::InvalidRequest(_) | Error::Plan(_) => false,
            Error::Refused(e) => e.call.retryable,
            Error::CreateOutcomeUnknown(_) => false,
            Error::AllProvidersFailed(e) => e.attempts.iter().any(|a| a.error.is_retryable()),
            Error::Status(e) => e.call.retryable,
            Error::TaskFailed(_) => false,
            Error::DeadlineExceeded(_) | Error::Cancelled(_) => true,
            Error::Download(e) => e.call.as_ref().is_some_and(|call| call.retryable),
        }
    }

    /// Whether money may have been spent on what failed: a create whose answer was lost, or a
    /// task that was created (and so charged) but not collected. False when the answer proves
    /// nothing was charged, and for failed tasks, which the providers refund.
    pub fn may_have_been_charged(&self) -> bool {
        match self {
            Error::Config(_) | Error::InvalidRequest(_) | Error::Plan(_) => false,
            Error::Refused(e) => !e.accepted.is_empty(),
            Error::CreateOutcomeUnknown(_) => true,
            Error::AllProvidersFailed(_) => false,
            Error::TaskFailed(e) => !e.siblings.is_empty(),
            Error::Status(_)
            | Error::DeadlineExceeded(_)
            | Error::Cancelled(_)
            | Error::Download(_) => true,
        }
    }

    /// What to do about it, in a few words: the provider's advice for its error code, or
    /// imggen's for its own categories (a wait that stopped, a lost create).
    pub fn advice(&self) -> Option<&'static str> {
        const RESUME: &str = "the task is still running and paid for: resume it from its handle";
        match self {
            Error::Config(_) => None,
            Error::InvalidRequest(e) => e.call.as_ref().and_then(|call| call.advice),
            Error::Plan(_) => Some(
                "change the setting, plan leniently to drop it with a warning, or choose a provider that supports it",
            ),
            Error::Refused(e) => e.call.advice,
            Error::CreateOutcomeUnknown(e) => e.call.advice.or(Some(
                "do not resubmit blindly: check the provider's task list or balance first",
            )),
            Error::AllProvidersFailed(_) => None,
            Error::Status(e) => e.call.advice.or(Some(RESUME)),
            Error::TaskFailed(e) => e.advice.or(Some(
                "the provider ran the task and it failed (failed tasks are refunded): change the prompt or references, then submit again",
            )),
            Error::DeadlineExceeded(_) | Error::Cancelled(_) => Some(RESUME),
            Error::Download(e) => e.call.as_ref().and_then(|call| call.advice).or(Some(
                "the images are paid for: download them again from the handle",
            )),
        }
    }

    /// Adds the other handles of the same generation to an error about one of its tasks.
    pub(crate) fn with_siblings(mut self, all: &[TaskHandle]) -> Self {
        let add = |handle: &TaskHandle, siblings: &mut Vec<TaskHandle>| {
            siblings.extend(all.iter().filter(|h| *h != handle).cloned());
        };
        match &mut self {
            Error::Status(e) => add(&e.handle, &mut e.siblings),
            Error::TaskFailed(e) => add(&e.handle, &mut e.siblings),
            Error::DeadlineExceeded(e) => add(&e.handle, &mut e.siblings),
            Error::Cancelled(e) => add(&e.handle, &mut e.siblings),
            Error::Download(e) => add(&e.handle, &mut e.siblings),
            _ => {}
        }
        self
    }
}

/// imggen is misconfigured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("imggen: {message}")]
pub struct ConfigError {
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Malformed input; nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("{}invalid request, nothing was sent: {problem}", provider_prefix(*provider))]
pub struct InvalidRequestError {
    /// The provider, when the problem is specific to one.
    pub provider: Option<ProviderId>,
    /// What is wrong.
    pub problem: String,
    /// The client's error, when a client found the problem.
    pub call: Option<CallError>,
}

fn provider_prefix(provider: Option<ProviderId>) -> String {
    provider.map_or(String::new(), |p| format!("{p}: "))
}

/// A create refused with an answer that proves nothing was charged for it.
#[derive(Debug, thiserror::Error)]
#[error("{call}; nothing was charged for it{}", accepted_suffix(accepted))]
pub struct RefusedError {
    /// The last answer.
    pub call: CallError,
    /// Tasks of the same submission created (and charged) before the refusal.
    pub accepted: Vec<TaskHandle>,
}

fn accepted_suffix(accepted: &[TaskHandle]) -> String {
    match accepted.len() {
        0 => String::new(),
        n => format!(
            "; {n} earlier task(s) of this submission were created and charged: {}",
            accepted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A create whose answer was lost.
#[derive(Debug, thiserror::Error)]
#[error("{call}; imggen did not resubmit it (attempted at {attempted_at}, prompt {:?}){}", summary.prompt, accepted_suffix(accepted))]
pub struct CreateOutcomeUnknownError {
    /// What happened to the call.
    pub call: CallError,
    /// When the create was sent (RFC 3339), to find the task in the provider's dashboard or
    /// task list.
    pub attempted_at: String,
    /// What was asked for.
    pub summary: RequestSummary,
    /// Tasks of the same submission created (and charged) before this one.
    pub accepted: Vec<TaskHandle>,
}

/// One provider's reason for not serving a request.
#[derive(Debug)]
#[non_exhaustive]
pub struct ProviderAttempt {
    /// The provider.
    pub provider: ProviderId,
    /// Why it did not serve it.
    pub error: Error,
}

/// Every provider of a fallback list refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "no provider served the request and nothing was charged: {}",
    describe_attempts(attempts)
)]
pub struct AllProvidersFailedError {
    /// Each provider tried, in order, and why it did not serve the request.
    pub attempts: Vec<ProviderAttempt>,
}

fn describe_attempts(attempts: &[ProviderAttempt]) -> String {
    attempts
        .iter()
        .map(|attempt| attempt.error.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A status read that failed for good.
#[derive(Debug, thiserror::Error)]
#[error("{call} (task {handle}); the task is not lost: resume it from its handle")]
pub struct StatusError {
    /// The task.
    pub handle: TaskHandle,
    /// The last failure.
    pub call: CallError,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// A task that ended in failure.
#[derive(Debug, thiserror::Error)]
#[error("{} task {} failed{}; the provider refunds failed tasks", handle.provider, Untrusted(&handle.task_id), failure_words(code.as_deref(), message.as_deref()))]
pub struct TaskFailedError {
    /// The task.
    pub handle: TaskHandle,
    /// The provider's failure code.
    pub code: Option<String>,
    /// The provider's words.
    pub message: Option<String>,
    /// The status that said so.
    pub status: Box<TaskStatus>,
    /// What the provider documents to do about this failure code, if anything.
    pub advice: Option<&'static str>,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// `: CODE: message`, without saying the code twice when the message already starts with it;
/// the provider's words with their control characters made visible.
fn failure_words(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message.map(Untrusted)) {
        (Some(code), Some(message)) if message.0.starts_with(code) => format!(": {message}"),
        (Some(code), Some(message)) => format!(": {}: {message}", Untrusted(code)),
        (Some(text), None) => format!(": {}", Untrusted(text)),
        (None, Some(text)) => format!(": {text}"),
        (None, None) => String::new(),
    }
}

/// A wait that reached its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{} task {} did not finish within {}s (last status: {}); it is still paid for: resume it from its handle", handle.provider, Untrusted(&handle.task_id), seconds(*waited), Untrusted(last_state.as_ref().map_or("not read", |s| s.name())))]
pub struct DeadlineExceededError {
    /// The task, to resume.
    pub handle: TaskHandle,
    /// How long the wait lasted.
    pub waited: Duration,
    /// The last state read, if any poll was made.
    pub last_state: Option<TaskState>,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// A wait that was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("waiting for {} task {} was cancelled; the task goes on and is paid for: resume it from its handle", handle.provider, Untrusted(&handle.task_id))]
pub struct CancelledError {
    /// The task, to resume.
    pub handle: TaskHandle,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// A result that could not be downloaded or saved.
#[derive(Debug, thiserror::Error)]
#[error("{} task {}: could not collect {}: {}", handle.provider, Untrusted(&handle.task_id), Untrusted(if url.is_empty() { "its images" } else { url }), Untrusted(problem))]
pub struct DownloadError {
    /// The task, whose status still lists the URL.
    pub handle: TaskHandle,
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub problem: String,
    /// The failed call, when the download itself failed.
    pub call: Option<CallError>,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// Seconds for a message: whole when whole (`30`), else one decimal (`0.4`).
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        duration.as_secs().to_string()
    } else {
        format!("{:.1}", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_made_errors_read_like_client_errors() {
        let refused = CallError::api(
            ProviderId::new("gptimg"),
            CallOperation::Create,
            402,
            Some("INSUFFICIENT_CREDITS"),
            Some("4 credits required, 1 available"),
        );
        assert!(refused.proves_not_accepted());
        assert!(!refused.retryable);
        assert_eq!(
            refused.to_string(),
            "gptimg create: 402 INSUFFICIENT_CREDITS: 4 credits required, 1 available"
        );
        let lost = CallError::new(
            ProviderId::new("runbase"),
            CallOperation::Create,
            CallErrorKind::Timeout,
        );
        assert!(lost.may_have_been_charged && !lost.retryable);
        assert!(
            lost.to_string()
                .ends_with("check before submitting it again")
        );
        let refused_connect = CallError::new(
            ProviderId::new("runbase"),
            CallOperation::Create,
            CallErrorKind::Connect,
        );
        assert!(refused_connect.retryable && refused_connect.proves_not_accepted());
        let busy = CallError::api(
            ProviderId::new("runbase"),
            CallOperation::Status,
            429,
            None,
            None,
        );
        assert!(busy.is_rate_limited());
        let advised = CallError::api(
            ProviderId::new("gptimg"),
            CallOperation::Create,
            402,
            None,
            None,
        )
        .with_advice("top up your gptimg credits");
        let error = Error::Refused(Box::new(RefusedError {
            call: advised,
            accepted: Vec::new(),
        }));
        assert_eq!(error.advice(), Some("top up your gptimg credits"));
    }

    #[test]
    fn errors_about_tasks_carry_every_handle_of_the_generation() {
        let handle = |id: &str| format!("runbase:{id}").parse::<TaskHandle>().unwrap();
        let error = Error::DeadlineExceeded(Box::new(DeadlineExceededError {
            handle: handle("run_1"),
            waited: Duration::from_secs(600),
            last_state: Some(TaskState::Running),
            siblings: Vec::new(),
        }))
        .with_siblings(&[handle("run_1"), handle("run_2")]);
        let ids: Vec<String> = error.handles().iter().map(|h| h.to_string()).collect();
        assert_eq!(ids, ["runbase:run_1", "runbase:run_2"]);
        assert!(error.may_have_been_charged() && error.is_retryable());
        assert_eq!(
            error.to_string(),
            "runbase task run_1 did not finish within 600s (last status: running); it is still paid for: resume it from its handle"
        );
    }
}
