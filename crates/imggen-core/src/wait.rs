//! Waiting for a task: when to poll, for how long, and how a webhook shortens the wait.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use imggen_types::text::Untrusted;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Imggen;
use crate::budget::{Grant, Priority};
use crate::call::{Call, CallFailure, RetryLimit, outcome_of};
use crate::error::{CallOperation, CancelledError, DeadlineExceededError, Error, StatusError};
use crate::handle::TaskHandle;
use crate::policy::{self, Decision, Facts};
use crate::provider::Provider;
use crate::status::{TaskState, TaskStatus};
use crate::webhook::EventStream;
use futures_util::future::Either;

pub use imggen_http::PollSchedule;

/// How to wait.
#[derive(Default)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Give up this long after the wait begins (on the injected clock), with
    /// [`Error::DeadlineExceeded`] carrying the handle. Default: the provider's
    /// [`default_deadline`](crate::Provider::default_deadline).
    pub deadline: Option<Duration>,
    /// Stops the wait at once, with [`Error::Cancelled`] carrying the handle. The task goes on.
    pub cancel: Option<CancellationToken>,
    /// A schedule instead of the provider's configured one.
    pub schedule: Option<PollSchedule>,
    /// Webhook events: an event for this task is confirmed by one status call at once;
    /// without events, polling on the schedule goes on as usual.
    pub events: Option<EventStream>,
    /// Called with every status the wait reads, the terminal one included: a progress line,
    /// a log, a journal. It runs on the waiting task, so keep it quick.
    pub on_status: Option<StatusCallback>,
}

/// What [`WaitOptions::on_status`] and [`GenerateOptions::on_status`](crate::GenerateOptions)
/// call.
pub type StatusCallback = Arc<dyn Fn(&TaskHandle, &TaskStatus) + Send + Sync>;

impl std::fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitOptions")
            .field("deadline", &self.deadline)
            .field("cancel", &self.cancel.is_some())
            .field("schedule", &self.schedule)
            .field("events", &self.events.is_some())
            .field("on_status", &self.on_status.is_some())
            .finish()
    }
}

impl WaitOptions {
    /// The defaults.
    pub fn new() -> Self {
        WaitOptions::default()
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets the schedule.
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Sets the webhook events.
    pub fn events(mut self, events: EventStream) -> Self {
        self.events = Some(events);
        self
    }

    /// Calls `callback` with every status the wait reads.
    pub fn on_status(
        mut self,
        callback: impl Fn(&TaskHandle, &TaskStatus) + Send + Sync + 'static,
    ) -> Self {
        self.on_status = Some(Arc::new(callback));
        self
    }
}

/// A handle typed as `provider:task_id` (no `created_at`: not a receipt of a create) whose id
/// is not in the provider's format is refused before anything is sent. A receipt is never
/// refused: a paid task's id, however unusual, is polled.
fn check_typed_handle(provider: &dyn Provider, handle: &TaskHandle) -> Result<(), Error> {
    if handle.created_at.is_some() {
        return Ok(());
    }
    provider.check_task_id(&handle.task_id).map_err(|error| {
        Error::invalid(
            Some(handle.provider),
            format!("task handle {handle}: {error}"),
            None,
        )
    })
}

async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

async fn next_event(events: &mut Option<EventStream>) -> Option<crate::webhook::WebhookEvent> {
    match events {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

impl Imggen {
    /// Waits until the task ends, polling on its provider's schedule inside the key's request
    /// budget, and returns its terminal status — succeeded or failed (see
    /// [`TaskState`]).
    ///
    /// Resumable: `handle` may come from another process (serialised JSON, or the short form
    /// `provider:task_id`). Returns [`Error::DeadlineExceeded`] or [`Error::Cancelled`] with
    /// the handle when the wait stops first, and [`Error::Status`] when the status cannot be
    /// read for good (after the retry policy's attempts). The task itself is never touched.
    //
    // Not an `async fn`: one keeps its arguments twice in its future (as passed, and moved
    // into the body), and a program waiting on ten thousand tasks holds ten thousand of them.
    // What needs no runtime (the options taken apart, the provider, its schedule and
    // deadline) is settled before the body, which then holds each piece once.
    pub fn wait<'a>(
        &'a self,
        handle: &'a TaskHandle,
        options: WaitOptions,
    ) -> impl Future<Output = Result<TaskStatus, Error>> + Send + 'a {
        let WaitOptions {
            deadline,
            cancel,
            schedule,
            mut events,
            on_status,
        } = options;
        let provider = match self
            .provider(handle.provider)
            .and_then(|provider| check_typed_handle(provider.as_ref(), handle).map(|()| provider))
        {
            Ok(provider) => provider,
            Err(error) => return Either::Left(std::future::ready(Err(error))),
        };
        let schedule = schedule.unwrap_or_else(|| self.schedule_of(&provider));
        let wait_for = deadline.unwrap_or_else(|| provider.default_deadline());
        Either::Right(async move {
            // Started on first use, which needs the runtime: in the body.
            let scheduler = self.scheduler(&provider)?;
            let clock = self.inner.clock.clone();
            // A task that will call back, and a wait that hears callbacks: poll only to catch a
            // lost one. Back to the plain schedule if the events stop.
            let schedule_now = |events: &Option<EventStream>| {
                if handle.webhook && events.is_some() {
                    schedule.expecting_webhook()
                } else {
                    schedule
                }
            };
            let began = clock.now();
            let deadline = began + wait_for;
            // How long ago the task was created; a handle without a time (the short form) is
            // treated as old enough to poll at once: it is being resumed.
            let age = |now_wall| match handle.created_at_time() {
                Some(created) => crate::duration_since(now_wall, created),
                None => schedule.first_poll_after + (clock.now() - began),
            };
            let started = began.checked_sub(age(clock.wall())).unwrap_or(began);
            let poll = Priority::Poll {
                started,
                expected: schedule.expected(),
            };
            let due = began + schedule.delay(age(clock.wall()), fastrand::f64());
            let mut pending = scheduler.register(poll, due.min(deadline), Some(deadline));
            let mut polls = 0u32;
            let mut failures = 0u32;
            let mut last_state: Option<TaskState> = None;
            // The statuses called back so far (a task has a handful): each is confirmed once.
            let mut seen: Vec<String> = Vec::new();
            let exceeded = |last_state: Option<TaskState>| {
                Error::DeadlineExceeded(Box::new(DeadlineExceededError {
                    handle: handle.clone(),
                    waited: clock.now().saturating_duration_since(began),
                    last_state,
                    siblings: Vec::new(),
                }))
            };
            let cancelled_error = || {
                Error::Cancelled(Box::new(CancelledError {
                    handle: handle.clone(),
                    siblings: Vec::new(),
                }))
            };
            loop {
                let grant = tokio::select! {
                    biased;
                    () = cancelled(cancel.as_ref()) => return Err(cancelled_error()),
                    event = next_event(&mut events) => {
                        match event {
                            None => events = None,
                            Some(event) if event.provider == handle.provider
                                && event.task_id == handle.task_id
                                && !seen.contains(&event.status) =>
                            {
                                seen.push(event.status.clone());
                                tracing::debug!(
                                    provider = %handle.provider,
                                    task_id = %Untrusted(&handle.task_id),
                                    status = %Untrusted(&event.status),
                                    "webhook event: confirming with one status call"
                                );
                                pending = scheduler.register(Priority::First, clock.now(), Some(deadline));
                            }
                            Some(_) => {}
                        }
                        continue;
                    }
                    grant = &mut pending => grant,
                };
                let permit = match grant {
                    Grant::Go(permit) => permit,
                    Grant::Deadline => return Err(exceeded(last_state)),
                    // The runtime is shutting down: the wait stops like a cancelled one, with the
                    // paid task's handle — not as a configuration error that says nothing was sent.
                    Grant::Closed => return Err(cancelled_error()),
                };
                polls += 1;
                let span = tracing::info_span!(
                    "imggen.poll",
                    provider = %handle.provider,
                    task_id = %Untrusted(&handle.task_id),
                    attempt = polls,
                    status = tracing::field::Empty,
                );
                let result = tokio::select! {
                    biased;
                    () = cancelled(cancel.as_ref()) => return Err(cancelled_error()),
                    // A status that never answers, or trickles, ends with the wait. Boxed: a
                    // wait spends its life between polls, and this future would make it larger.
                    result = Box::pin(self
                        .bounded(Some(deadline), provider.status(&handle.task_id))
                        .instrument(span.clone())) => result,
                };
                let outcome = outcome_of(&result);
                let now = clock.now();
                match result {
                    Ok(status) => {
                        span.record("status", status.state.name());
                        failures = 0;
                        if let Some(callback) = &on_status {
                            callback(handle, &status);
                        }
                        if status.state.is_terminal() {
                            permit.finish(outcome);
                            return Ok(status);
                        }
                        if let TaskState::Unknown { raw_status } = &status.state {
                            tracing::warn!(
                                provider = %handle.provider,
                                task_id = %Untrusted(&handle.task_id),
                                raw_status = %Untrusted(raw_status),
                                "a status imggen does not know; waiting on"
                            );
                        }
                        last_state = Some(status.state);
                        if now >= deadline {
                            permit.finish(outcome);
                            return Err(exceeded(last_state));
                        }
                        let next = now
                            + schedule_now(&events)
                                .delay_after_poll(age(clock.wall()), fastrand::f64());
                        // Queue the next poll before reporting this one done, so the driver never
                        // sees an idle moment between them.
                        pending = scheduler.register(poll, next.min(deadline), Some(deadline));
                        permit.finish(outcome);
                    }
                    Err(error) => {
                        span.record("status", "error");
                        failures += 1;
                        let decision = policy::decide(
                            CallOperation::Status,
                            &Facts::from(&error),
                            failures,
                            &self.inner.retry,
                        );
                        match decision {
                            Decision::Retry { after } if now < deadline => {
                                tracing::debug!(
                                    provider = %handle.provider,
                                    task_id = %Untrusted(&handle.task_id),
                                    attempt = failures,
                                    error = %error,
                                    "status failed; retrying"
                                );
                                let next = now + policy::jitter_up(after, fastrand::f64());
                                pending =
                                    scheduler.register(poll, next.min(deadline), Some(deadline));
                                permit.finish(outcome);
                            }
                            Decision::Retry { .. } => {
                                permit.finish(outcome);
                                return Err(exceeded(last_state));
                            }
                            Decision::GiveUp | Decision::FallBack => {
                                permit.finish(outcome);
                                return Err(Error::Status(Box::new(StatusError {
                                    handle: handle.clone(),
                                    call: error,
                                    siblings: Vec::new(),
                                })));
                            }
                        }
                    }
                }
            }
        })
    }

    /// Reads a task's status once (retrying transient failures), inside the key's budget.
    pub async fn status(&self, handle: &TaskHandle) -> Result<TaskStatus, Error> {
        // Borrowed, not cloned: this is the call a busy program makes most.
        let provider = self.provider_ref(handle.provider)?;
        check_typed_handle(provider.as_ref(), handle)?;
        let scheduler = self.scheduler_ref(provider)?;
        let call = Call {
            provider: handle.provider,
            operation: CallOperation::Status,
            scheduler: &scheduler,
            until: None,
            // Retried within a time as well as a number of attempts.
            retry_until: RetryLimit::AfterFirstGrant(self.inner.retry.read_retry_time),
            budgeted: true,
        };
        let result = self
            .call(call, |attempt| {
                let span = tracing::info_span!(
                    "imggen.status",
                    provider = %handle.provider,
                    task_id = %Untrusted(&handle.task_id),
                    attempt,
                    status = tracing::field::Empty,
                );
                // Each attempt has its client's timeout; the retries stop in time. The span is
                // kept once, in the instrumented future, and read back from it.
                let mut status = provider.status(&handle.task_id).instrument(span);
                async move {
                    let result = (&mut status).await;
                    status.span().record(
                        "status",
                        result
                            .as_ref()
                            .map_or("error", |status| status.state.name()),
                    );
                    result
                }
            })
            .await;
        result.map_err(|failure| match failure {
            CallFailure::Closed => Error::config("the request scheduler stopped"),
            failure => Error::Status(Box::new(StatusError {
                handle: handle.clone(),
                call: failure.into_call_error(handle.provider, CallOperation::Status),
                siblings: Vec::new(),
            })),
        })
    }
}
