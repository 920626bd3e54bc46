//! Exit codes, and errors as one line a person can act on.
//!
//! The code comes from the category of imggen-core's error (its variant), never from message
//! text: see [`Category::of`].

use imggen_core::{CallError, CallErrorKind, Error, ProviderId, TaskHandle};
use serde::{Deserialize, Serialize};

use crate::output::ErrorOutput;

/// Success.
pub const SUCCESS: u8 = 0;
/// Anything else: local I/O, a download that failed.
pub const OTHER: u8 = 1;
/// Usage or validation error: nothing was sent.
pub const USAGE: u8 = 2;
/// The provider refused the request, and nothing was charged.
pub const REFUSED: u8 = 3;
/// The provider ran the task and it failed.
pub const FAILED: u8 = 4;
/// Paid tasks were left uncollected — the wait stopped (deadline, Ctrl-C), or their status
/// could not be read; the handles printed resume them.
pub const DEADLINE: u8 = 5;
/// A create's answer was lost: the task may have been created and charged.
pub const OUTCOME_UNKNOWN: u8 = 6;
/// The spending cap (`--max-cost`) stopped a create: it was not sent.
pub const SPENDING_CAP: u8 = 7;

/// What kind of failure a command ended with. Each maps to one exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Category {
    /// Bad usage, a setting the provider cannot honour, a missing file or key: nothing was
    /// sent (exit 2).
    Invalid,
    /// The provider refused, and its answer proves nothing was charged (exit 3).
    Refused,
    /// The provider ran the task and it failed (exit 4).
    Failed,
    /// The deadline passed before the task finished; it goes on, and is paid for (exit 5).
    Deadline,
    /// The wait was interrupted (Ctrl-C); the task goes on, and is paid for (exit 5).
    Cancelled,
    /// Tasks were created and paid for but not collected: their status could not be read (a
    /// rate limit that asked to wait too long, a server or connection error), or a later
    /// create of the same request was refused. They go on; the handles resume them (exit 5).
    Uncollected,
    /// A create's answer was lost: the task may exist and be charged (exit 6).
    OutcomeUnknown,
    /// The spending cap (`--max-cost`) stopped a create, which was not sent (exit 7).
    SpendingCap,
    /// A result could not be downloaded or saved; the handle downloads it again (exit 1).
    Download,
    /// Anything else (exit 1).
    Other,
}

impl Category {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Category::Invalid => USAGE,
            Category::Refused => REFUSED,
            Category::Failed => FAILED,
            Category::Deadline | Category::Cancelled | Category::Uncollected => DEADLINE,
            Category::OutcomeUnknown => OUTCOME_UNKNOWN,
            Category::SpendingCap => SPENDING_CAP,
            Category::Download | Category::Other => OTHER,
        }
    }

    /// The category of an imggen-core error. Exit 3 ("nothing was charged") is kept for
    /// requests where no task is known to exist: an error that carries the handle of a paid
    /// task is never a refusal.
    pub fn of(error: &Error) -> Category {
        match error {
            Error::Config(_) | Error::InvalidRequest(_) | Error::Plan(_) => Category::Invalid,
            Error::SpendingCap(_) => Category::SpendingCap,
            // Earlier tasks of the same request were created and charged before the refusal.
            Error::Refused(refused) if !refused.accepted.is_empty() => Category::Uncollected,
            // The deadline passed before the create could be sent: nothing was, but it was
            // the deadline that stopped it.
            Error::Refused(refused) if refused.call.kind == CallErrorKind::Deadline => {
                Category::Deadline
            }
            Error::Refused(_) => Category::Refused,
            Error::AllProvidersFailed(all) => {
                // Every provider declined before sending anything: a validation error.
                if all
                    .attempts
                    .iter()
                    .all(|attempt| Category::of(&attempt.error) == Category::Invalid)
                {
                    Category::Invalid
                } else {
                    Category::Refused
                }
            }
            Error::CreateOutcomeUnknown(_) => Category::OutcomeUnknown,
            Error::TaskFailed(_) => Category::Failed,
            Error::DeadlineExceeded(_) => Category::Deadline,
            Error::Cancelled(_) => Category::Cancelled,
            // The provider says there is no such task, and nothing says imggen created it (a
            // handle typed as `provider:task_id`): no task is known to exist.
            Error::Status(status)
                if status.call.status == Some(404) && status.handle.created_at.is_none() =>
            {
                Category::Refused
            }
            // Anything else — a 429 asking to wait too long, a 5xx, a 401, a lost connection,
            // or a 404 for a task imggen created — leaves a task that may well be paid for.
            Error::Status(_) => Category::Uncollected,
            Error::Download(_) => Category::Download,
            _ => Category::Other,
        }
    }
}

/// A failed command: its category, its message and every fact worth printing.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub category: Category,
    /// The one-line message (without the `imggen: ` prefix).
    pub message: String,
    pub hint: Option<String>,
    /// Boxed: a failure travels in every `Result` of the commands.
    pub facts: Box<Facts>,
}

/// What is known about a failure's call and tasks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    pub provider: Option<String>,
    pub operation: Option<String>,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub provider_message: Option<String>,
    pub request_id: Option<String>,
    pub may_have_been_charged: bool,
    pub attempted_at: Option<String>,
    /// Every task created: none is ever dropped from a report.
    pub handles: Vec<TaskHandle>,
}

impl Failure {
    /// A failure of `category` that concerns no call.
    pub fn new(category: Category, message: impl Into<String>) -> Self {
        Failure {
            category,
            message: one_line(&message.into()),
            hint: None,
            facts: Box::default(),
        }
    }

    /// Bad usage: nothing was sent.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(Category::Invalid, message)
    }

    /// Sets the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the provider.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.facts.provider = Some(provider.into());
        self
    }

    /// A failure from imggen-core's error, with the facts of its call and every handle it
    /// carries. `emulated` says the tasks ran on the in-process emulator, which stops with
    /// this process (so there is nothing to resume).
    pub fn from_core(error: &Error, emulated: bool) -> Self {
        let category = Category::of(error);
        let mut failure = Failure::new(category, error.to_string());
        failure.facts.provider = error.provider().map(|p| provider_label(p, emulated));
        failure.facts.may_have_been_charged = error.may_have_been_charged();
        failure.facts.handles = error.handles().into_iter().cloned().collect();
        let call: Option<&CallError> = match error {
            Error::Refused(e) => Some(&e.call),
            Error::CreateOutcomeUnknown(e) => Some(&e.call),
            Error::Status(e) => Some(&e.call),
            Error::Download(e) => e.call.as_ref(),
            Error::InvalidRequest(e) => e.call.as_ref(),
            Error::AllProvidersFailed(e) => e.attempts.last().and_then(|a| match &a.error {
                Error::Refused(r) => Some(&r.call),
                _ => None,
            }),
            _ => None,
        };
        if let Some(call) = call {
            failure.facts.provider = Some(provider_label(call.provider, emulated));
            failure.facts.operation = Some(call.operation.to_string());
            failure.facts.status = call.status;
            failure.facts.code.clone_from(&call.code);
            failure.facts.provider_message.clone_from(&call.message);
            failure.facts.request_id.clone_from(&call.request_id);
        }
        match error {
            Error::CreateOutcomeUnknown(e) => {
                failure.facts.attempted_at = Some(e.attempted_at.clone());
            }
            Error::TaskFailed(e) => {
                failure.facts.code.clone_from(&e.code);
                failure.facts.provider_message.clone_from(&e.message);
            }
            _ => {}
        }
        failure.hint = hint(error, &failure.facts.handles, emulated);
        failure
    }

    /// The JSON form.
    pub fn to_output(&self) -> ErrorOutput {
        ErrorOutput {
            category: self.category,
            exit_code: self.category.exit_code(),
            provider: self.facts.provider.clone(),
            operation: self.facts.operation.clone(),
            status: self.facts.status,
            code: self.facts.code.clone(),
            message: self.message.clone(),
            provider_message: self.facts.provider_message.clone(),
            hint: self.hint.clone(),
            request_id: self.facts.request_id.clone(),
            may_have_been_charged: self.facts.may_have_been_charged,
            attempted_at: self.facts.attempted_at.clone(),
            handles: self.facts.handles.iter().map(ToString::to_string).collect(),
        }
    }

    /// What stderr shows: `imggen: <message>`, then `hint: <advice>` when there is advice.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("imggen: {}", self.message)];
        if let Some(hint) = &self.hint {
            lines.push(format!("hint: {hint}"));
        }
        lines
    }
}

/// `gptimg`, or `mock` for the emulator speaking gptimg's protocol.
pub(crate) fn provider_label(provider: ProviderId, emulated: bool) -> String {
    if emulated {
        "mock".to_owned()
    } else {
        provider.to_string()
    }
}

/// The command that resumes `handles`.
pub(crate) fn resume_command(handles: &[TaskHandle]) -> String {
    let mut command = String::from("imggen wait");
    for handle in handles {
        command.push(' ');
        command.push_str(&handle.to_string());
    }
    command
}

fn hint(error: &Error, handles: &[TaskHandle], emulated: bool) -> Option<String> {
    let resume = |handles: &[TaskHandle]| {
        (!handles.is_empty()).then(|| {
            if emulated {
                "the built-in emulator stopped with this run, so its tasks cannot be resumed"
                    .to_owned()
            } else {
                format!(
                    "the tasks are paid for; resume them with: {}",
                    resume_command(handles)
                )
            }
        })
    };
    let advice = error.advice().map(str::to_owned);
    match error {
        Error::CreateOutcomeUnknown(e) => join(advice, resume(&e.accepted)),
        // Core's advice names library options; the command line's flags instead.
        Error::SpendingCap(cap) => Some(
            match cap.kind {
                imggen_core::SpendingCapKind::Unpriced => {
                    "pass --allow-unpriced to create it anyway (counted at what it turns out to cost), or choose a provider and model with a documented price (`imggen providers`)"
                }
                imggen_core::SpendingCapKind::Uncovered => {
                    "give --max-cost in the provider's unit too: dollars ($0.50) or gptimg credits (100cr), or both ($0.50,100cr)"
                }
                _ => "raise --max-cost, or ask for fewer images (--dry-run shows the price first)",
            }
            .to_owned(),
        ),
        // Too few is not fixed by more tasks.
        Error::Plan(plan) if plan.setting == "n" && plan.value == "0" => {
            Some("-n is the number of images to make: give 1 or more".to_owned())
        }
        Error::Plan(plan) if plan.setting == "n" => Some(
            "lower -n, or pass --allow-extra-tasks to create (and pay for) several tasks"
                .to_owned(),
        ),
        // The message names the value and what is allowed; core's advice speaks of library
        // options the command line does not have.
        Error::Plan(_) => None,
        // A failed task is refunded: only the others of its generation are left to collect.
        Error::TaskFailed(e) => join(advice, resume(&e.siblings)),
        // The provider says there is no such task: resuming it would be refused again.
        Error::Status(e) if Category::of(error) == Category::Refused => {
            join(e.call.advice.map(str::to_owned), resume(&e.siblings))
        }
        // A paid task that could not be read: the provider's advice (a key to fix, say), and
        // the command that picks it up again.
        Error::Status(e) => join(e.call.advice.map(str::to_owned), resume(handles)),
        // A command that resumes them says more than "resume it from its handle".
        Error::DeadlineExceeded(_) | Error::Cancelled(_) | Error::Download(_) => {
            resume(handles).or(advice)
        }
        _ => join(advice, resume(handles)),
    }
}

fn join(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(first), Some(second)) => Some(format!("{first}; {second}")),
        (first, second) => first.or(second),
    }
}

/// Messages may quote a provider's multi-line text; an error stays one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use imggen_core::{GenerationRequest, PlanOptions, Strictness};

    use super::*;

    #[test]
    fn every_category_has_its_own_documented_code() {
        let codes = [
            (Category::Invalid, 2),
            (Category::Refused, 3),
            (Category::Failed, 4),
            (Category::Deadline, 5),
            (Category::Cancelled, 5),
            (Category::Uncollected, 5),
            (Category::OutcomeUnknown, 6),
            (Category::Download, 1),
            (Category::Other, 1),
        ];
        for (category, code) in codes {
            assert_eq!(category.exit_code(), code, "{category:?}");
        }
    }

    #[test]
    fn a_plan_error_is_a_usage_error_and_says_how_to_pay_for_more_tasks() {
        let gptimg = imggen_core::builtin::registration(ProviderId::new("gptimg")).unwrap();
        let provider = (gptimg.connect)("sk-test", "https://gptimg.example").unwrap();
        let request = GenerationRequest::new("a fox").n(5);
        let error = Error::from(
            provider
                .plan(&request, PlanOptions::new(Strictness::Exact))
                .unwrap_err(),
        );
        let failure = Failure::from_core(&error, false);
        assert_eq!(failure.category, Category::Invalid);
        assert!(!failure.facts.may_have_been_charged);
        assert!(failure.hint.unwrap().contains("--allow-extra-tasks"));
    }

    #[test]
    fn zero_images_is_not_answered_with_more_tasks() {
        let gptimg = imggen_core::builtin::registration(ProviderId::new("gptimg")).unwrap();
        let provider = (gptimg.connect)("sk-test", "https://gptimg.example").unwrap();
        let request = GenerationRequest::new("a fox").n(0);
        let error = Error::from(
            provider
                .plan(&request, PlanOptions::new(Strictness::Exact))
                .unwrap_err(),
        );
        let hint = Failure::from_core(&error, false).hint.unwrap();
        assert_eq!(hint, "-n is the number of images to make: give 1 or more");
    }

    #[test]
    fn one_line_collapses_newlines() {
        assert_eq!(one_line("a\n  b\r\nc "), "a b c");
    }
}
