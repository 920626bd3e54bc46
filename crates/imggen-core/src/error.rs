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
use crate::spend::{SpendingCapError, SpendingCapKind};
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
    /// The spending cap forbids the create: its price would pass the cap, or is not known.
    /// Nothing was sent.
    #[error(transparent)]
    SpendingCap(Box<SpendingCapError>),
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
            Error::SpendingCap(e) => Some(e.provider),
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
            Error::Config(_)
            | Error::InvalidRequest(_)
            | Error::Plan(_)
            | Error::SpendingCap(_) => (None, &[]),
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
            Error::Config(_)
            | Error::InvalidRequest(_)
            | Error::Plan(_)
            | Error::SpendingCap(_) => false,
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
            Error::Config(_)
            | Error::InvalidRequest(_)
            | Error::Plan(_)
            | Error::SpendingCap(_) => false,
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
            Error::SpendingCap(e) => Some(match e.kind {
                SpendingCapKind::Reached => {
                    "raise the spending cap to go on: what was created is collected either way"
                }
                SpendingCapKind::Unpriced => {
                    "allow tasks of unknown price under the cap, or choose a provider and model with a documented price"
                }
                SpendingCapKind::Uncovered => {
                    "give the cap in the provider's unit (dollars or credits), or a price per credit"
                }
            }),
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
#[error("{}", invalid_words(self))]
pub struct InvalidRequestError {
    /// The provider, when the problem is specific to one.
    pub provider: Option<ProviderId>,
    /// What is wrong.
    pub problem: String,
    /// The client's error, when a client found the problem.
    pub call: Option<CallError>,
}

/// `runblob: invalid request, nothing was sent: …` — or, when a client found the problem, the
/// client's own words alone (`runblob create: invalid request, nothing was sent: …`), which
/// already name the provider and say that nothing was sent.
fn invalid_words(error: &InvalidRequestError) -> String {
    match &error.call {
        Some(call) if call.kind == CallErrorKind::InvalidRequest => call.to_string(),
        _ => format!(
            "{}invalid request, nothing was sent: {}",
            error.provider.map_or(String::new(), |p| format!("{p}: ")),
            error.problem
        ),
    }
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
#[error("{call} (task {handle}); {}", status_words(handle, call))]
pub struct StatusError {
    /// The task.
    pub handle: TaskHandle,
    /// The last failure.
    pub call: CallError,
    /// The other tasks of the same generation.
    pub siblings: Vec<TaskHandle>,
}

/// What a failed status read means for the task: a 404 says the provider does not know the id
/// (then what is known of a charge: a receipt was charged, a typed id has no known charge);
/// anything else leaves a task that goes on.
fn status_words(handle: &TaskHandle, call: &CallError) -> String {
    let provider = handle.provider;
    if call.status != Some(404) {
        return "the task is not lost: resume it from its handle".to_owned();
    }
    match &handle.created_at {
        None => format!(
            "{provider} does not know this task id (a wrong id, another API key, or a task that has expired); imggen has no record of creating it, so nothing is known to have been charged for it"
        ),
        Some(at) => {
            let charged = match &handle.cost {
                Some(cost) => format!("charged {cost}"),
                None => "its charge not recorded".to_owned(),
            };
            format!(
                "{provider} does not know this task id, though it was created at {} ({charged}): check that this is the API key that created it; tasks may also expire",
                Untrusted(at)
            )
        }
    }
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

    #[test]
    fn a_404_on_status_says_the_provider_does_not_know_the_id_and_what_was_charged() {
        let not_found = || {
            CallError::api(
                ProviderId::new("runbase"),
                CallOperation::Status,
                404,
                Some("run_not_found"),
                Some("Run not found"),
            )
        };
        let typed: TaskHandle = "runbase:run_nope".parse().unwrap();
        let error = Error::Status(Box::new(StatusError {
            handle: typed,
            call: not_found(),
            siblings: Vec::new(),
        }));
        assert_eq!(
            error.to_string(),
            "runbase status: 404 run_not_found: Run not found (task runbase:run_nope); runbase does not know this task id (a wrong id, another API key, or a task that has expired); imggen has no record of creating it, so nothing is known to have been charged for it"
        );
        assert!(!error.to_string().contains("not lost"));

        let receipt = TaskHandle::new(
            ProviderId::new("runbase"),
            "run_paid",
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_776_816_723),
        )
        .unwrap()
        .with_cost(Some(crate::cost::Cost::micro_usd(imggen_types::MicroUsd(
            50_000,
        ))));
        let error = Error::Status(Box::new(StatusError {
            handle: receipt,
            call: not_found(),
            siblings: Vec::new(),
        }));
        assert_eq!(
            error.to_string(),
            "runbase status: 404 run_not_found: Run not found (task runbase:run_paid); runbase does not know this task id, though it was created at 2026-04-22T00:12:03Z (charged $0.05): check that this is the API key that created it; tasks may also expire"
        );

        // Any other failure leaves a task that goes on.
        let busy = CallError::api(
            ProviderId::new("runbase"),
            CallOperation::Status,
            503,
            None,
            None,
        );
        let error = Error::Status(Box::new(StatusError {
            handle: "runbase:run_1".parse().unwrap(),
            call: busy,
            siblings: Vec::new(),
        }));
        assert!(
            error
                .to_string()
                .ends_with("the task is not lost: resume it from its handle"),
            "{error}"
        );
    }

    #[test]
    fn an_invalid_request_found_by_a_client_says_nothing_was_sent_once() {
        let call = CallError::new(
            ProviderId::new("runblob"),
            CallOperation::Create,
            CallErrorKind::InvalidRequest,
        )
        .with_message("images[0]: file \"sketch.png\" does not exist");
        let error = Error::invalid(
            Some(ProviderId::new("runblob")),
            call.to_string(),
            Some(call),
        );
        let text = error.to_string();
        assert_eq!(text.matches("nothing was sent").count(), 1, "{text}");
        assert_eq!(
            text,
            "runblob create: invalid request, nothing was sent: images[0]: file \"sketch.png\" does not exist"
        );
        let own = Error::invalid(Some(ProviderId::new("runblob")), "no such option", None);
        assert_eq!(
            own.to_string(),
            "runblob: invalid request, nothing was sent: no such option"
        );
    }
}
