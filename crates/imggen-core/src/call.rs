//! The one retry loop. Every provider call imggen makes outside a wait's polling — a create, a
//! status read, a page of the task list, a download — goes through [`Imggen::call`]: it takes
//! a permit from the key's request budget (a download, which goes to a CDN, only waits between
//! attempts), bounds each attempt by the deadline, asks [`policy::decide`] what a failure
//! proves, and waits before the next attempt. A wait's polling loop is the same step taken on
//! a schedule ([`Imggen::wait`](crate::Imggen::wait)): it asks the same policy.

use std::time::{Duration, Instant, SystemTime};

use crate::Imggen;
use crate::budget::{Grant, Outcome, Permit, Priority, Scheduler};
use crate::error::{CallError, CallErrorKind, CallOperation};
use crate::policy::{self, Decision, Facts};
use crate::provider::ProviderId;

/// How one call's attempts go.
pub(crate) struct Call<'a> {
    /// Whose API is called.
    pub provider: ProviderId,
    /// What the call is, as the retry policy reads it.
    pub operation: CallOperation,
    /// The key's scheduler.
    pub scheduler: &'a Scheduler,
    /// No attempt starts at or after it, and none outlives it (on the injected clock).
    pub until: Option<Instant>,
    /// When retries stop: the call gives up with its last error instead.
    pub retry_until: RetryLimit,
    /// Whether attempts spend the key's request budget. A download does not: it goes to a
    /// CDN, and only its retries wait, on a timer.
    pub budgeted: bool,
}

/// When a call's retries stop, beyond what the retry policy allows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RetryLimit {
    /// Only the policy's number of attempts.
    Attempts,
    /// No retry is due at or after this instant.
    At(Instant),
    /// No retry is due this long or later after the first attempt's permit was granted (a
    /// read retried for `RetryConfig::read_retry_time` at most). Measured from the grant's
    /// own clock reading, so a call that is answered at once reads the clock once, not twice.
    AfterFirstGrant(Duration),
}

/// Why a call ended without an answer.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// An attempt failed and the policy stops here: retries spent, the error not retryable, a
    /// create the provider refused (`FallBack`), or no retry fits before `retry_until`.
    Failed {
        /// The last attempt's error.
        error: CallError,
        /// What the policy decided (`GiveUp` when out of retry time).
        decision: Decision,
        /// When that attempt was sent (wall clock).
        attempted_at: SystemTime,
    },
    /// The deadline came before the next attempt could start; the last failure, if any.
    OutOfTime {
        /// The last attempt's error and when it was sent.
        last: Option<(CallError, SystemTime)>,
    },
    /// The scheduler stopped (the runtime is shutting down): nothing more was sent.
    Closed,
}

impl CallFailure {
    /// The failure as one error: the last attempt's, or what stopped the call.
    pub(crate) fn into_call_error(
        self,
        provider: ProviderId,
        operation: CallOperation,
    ) -> CallError {
        match self {
            CallFailure::Failed { error, .. }
            | CallFailure::OutOfTime {
                last: Some((error, _)),
            } => error,
            CallFailure::OutOfTime { last: None } => {
                CallError::new(provider, operation, CallErrorKind::Deadline)
            }
            CallFailure::Closed => CallError::new(provider, operation, CallErrorKind::Config)
                .with_message("the request scheduler stopped before the request was sent"),
        }
    }
}

/// How a permitted request ended, as the budget needs to know: a 429 pauses the key, no
/// answer at all tells nothing about it.
pub(crate) fn outcome_of<T>(result: &Result<T, CallError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Answered,
        Err(error) if error.status == Some(429) => Outcome::RateLimited(error.retry_after),
        Err(error)
            if matches!(
                error.kind,
                CallErrorKind::Connect | CallErrorKind::Transport | CallErrorKind::Timeout
            ) =>
        {
            Outcome::NoAnswer
        }
        Err(_) => Outcome::Answered,
    }
}

impl Imggen {
    /// Makes a call, retrying what the policy allows: `attempt(n)` sends attempt `n` (from 1)
    /// once. Returns the first answer, or why there is none.
    //
    // Not an `async fn`: one keeps its arguments twice in its future (as passed, and moved
    // into the body), and this future is inside every status call a busy program makes.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn call<T, F>(
        &self,
        call: Call<'_>,
        mut attempt: impl FnMut(u32) -> F,
    ) -> impl Future<Output = Result<T, CallFailure>>
    where
        F: Future<Output = Result<T, CallError>>,
    {
        async move {
            let clock = &self.inner.clock;
            let mut retry_at: Option<Instant> = None;
            // Boxed: held across every await of the call, it would otherwise make each call's
            // future (moved through the layers above) larger, for the rare call that is retried.
            let mut last: Option<Box<(CallError, SystemTime)>> = None;
            let mut number = 0u32;
            // When retries stop, once known: a limit measured from the first grant is fixed by it.
            let mut retry_limit = match call.retry_until {
                RetryLimit::At(limit) => Some(limit),
                RetryLimit::Attempts | RetryLimit::AfterFirstGrant(_) => None,
            };
            loop {
                number += 1;
                if let Some(until) = call.until
                    && retry_at.unwrap_or_else(|| clock.now()) >= until
                {
                    return Err(CallFailure::OutOfTime {
                        last: last.map(|last| *last),
                    });
                }
                // A budgeted attempt waits for its permit; a download's first attempt goes at
                // once, and its retries wait on a timer.
                let permit = if call.budgeted || retry_at.is_some() {
                    let priority = if call.budgeted {
                        Priority::First
                    } else {
                        Priority::Timer
                    };
                    let pending = match retry_at {
                        None => call.scheduler.register_now(priority, call.until),
                        Some(at) => call.scheduler.register(priority, at, call.until),
                    };
                    match pending.await {
                        Grant::Go(permit) => Some(permit),
                        Grant::Deadline => {
                            return Err(CallFailure::OutOfTime {
                                last: last.map(|last| *last),
                            });
                        }
                        Grant::Closed => return Err(CallFailure::Closed),
                    }
                } else {
                    None
                };
                // When a create was sent is a fact of its outcome; a read's is not worth a clock
                // read on every call.
                if let RetryLimit::AfterFirstGrant(within) = call.retry_until
                    && number == 1
                {
                    let first = permit
                        .as_ref()
                        .map_or_else(|| clock.now(), Permit::granted_at);
                    retry_limit = Some(first + within);
                }
                let sent_at = (call.operation == CallOperation::Create).then(|| clock.wall());
                let result = match call.until {
                    // Boxed: the bounded future is large, and awaited in place it would make every
                    // call's future as large — the status calls a busy program makes most have no
                    // deadline of their own, and stay small (one fewer cache line per call).
                    Some(_) => Box::pin(self.bounded(call.until, attempt(number))).await,
                    None => attempt(number).await,
                };
                if let Some(permit) = permit {
                    permit.finish(outcome_of(&result));
                }
                let error = match result {
                    Ok(answer) => return Ok(answer),
                    Err(error) => error,
                };
                let attempted_at = sent_at.unwrap_or_else(|| clock.wall());
                let decision = policy::decide(
                    call.operation,
                    &Facts::from(&error),
                    number,
                    &self.inner.retry,
                );
                let Decision::Retry { after } = decision else {
                    return Err(CallFailure::Failed {
                        error,
                        decision,
                        attempted_at,
                    });
                };
                let next = clock.now() + policy::jitter_up(after, fastrand::f64());
                if retry_limit.is_some_and(|limit| next >= limit) {
                    tracing::debug!(
                        provider = %call.provider,
                        operation = %call.operation,
                        attempt = number,
                        "no time left for another attempt"
                    );
                    return Err(CallFailure::Failed {
                        error,
                        decision: Decision::GiveUp,
                        attempted_at,
                    });
                }
                if call.operation == CallOperation::Create {
                    tracing::info!(
                        provider = %call.provider,
                        attempt = number,
                        error = %error,
                        "create refused without charge; retrying"
                    );
                } else {
                    tracing::debug!(
                        provider = %call.provider,
                        operation = %call.operation,
                        attempt = number,
                        error = %error,
                        "call failed; retrying"
                    );
                }
                retry_at = Some(next);
                last = Some(Box::new((error, attempted_at)));
            }
        }
    }
}
