//! Waiting for a task: when to poll, for how long, and how a webhook shortens the wait.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use imggen_types::text::Untrusted;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Imggen;
use crate::budget::{Grant, Outcome, Priority};
use crate::error::{
    CallErrorKind, CallOperation, CancelledError, DeadlineExceededError, Error, StatusError,
};
use crate::handle::JobHandle;
use crate::policy::{self, Decision, Facts};
use crate::provider::ProviderId;
use crate::status::{JobState, JobStatus};
use crate::webhook::EventStream;

/// When to poll a task.
///
/// No poll before the task could plausibly be done (`first_poll_after`), then every
/// `interval`; once the task has run `slow_after`, far beyond its typical time, the interval
/// grows toward `max_interval` (a task that late is stuck or queued, and polling it fast only
/// spends the key's budget). Every delay is jittered by ±`jitter` (a fraction) so jobs
/// submitted together spread out.
///
/// A task that will call a webhook the wait listens to is polled every `webhook_interval`
/// instead: the callback brings the news, and the polls only catch a callback that was lost.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct PollSchedule {
    /// The delay from creation to the first poll.
    pub first_poll_after: Duration,
    /// The delay between polls.
    pub interval: Duration,
    /// How long a task runs before polling slows down.
    pub slow_after: Duration,
    /// The longest delay between polls.
    pub max_interval: Duration,
    /// The jitter, as a fraction of each delay (0.1 = ±10%).
    pub jitter: f64,
    /// The delay between polls while a webhook is expected (the task was created with a
    /// webhook URL and the wait takes [`WaitOptions::events`]); never shorter than `interval`.
    pub webhook_interval: Duration,
}

impl PollSchedule {
    /// runblob: "typically takes 1-3 minutes", so the first poll comes at 60 s; then every
    /// 9 s: runblob's own examples poll every 10 s, and a tenth less keeps the mean detection
    /// lag clearly under theirs (the ±10% jitter that spreads jobs out lengthens it a little)
    /// while the minute without polls still saves nearly half their requests; slower after
    /// 5 minutes. With a callback
    /// expected, every 30 s: runblob retries an unacknowledged callback every 30 s, so a poll
    /// that often finds a lost one no later than runblob's next attempt would.
    pub const fn runblob() -> Self {
        PollSchedule {
            first_poll_after: Duration::from_secs(60),
            interval: Duration::from_secs(9),
            slow_after: Duration::from_secs(300),
            max_interval: Duration::from_secs(60),
            jitter: 0.1,
            webhook_interval: Duration::from_secs(30),
        }
    }

    /// gptimg: a "45-second round trip", ~45–60 s, so the first poll comes at 35 s (jitter
    /// included, before the fastest finish); then every 5 s; slower after 3 minutes.
    pub const fn gptimg() -> Self {
        PollSchedule {
            first_poll_after: Duration::from_secs(35),
            interval: Duration::from_secs(5),
            slow_after: Duration::from_secs(180),
            max_interval: Duration::from_secs(30),
            jitter: 0.1,
            // gptimg calls no webhooks.
            webhook_interval: Duration::from_secs(5),
        }
    }

    /// runbase: the docs advise polling every 1–2 s; imggen takes 2 s (creates and polls share
    /// 20 requests per 10 s) after a first poll at 3 s; slower after 2 minutes.
    pub const fn runbase() -> Self {
        PollSchedule {
            first_poll_after: Duration::from_secs(3),
            interval: Duration::from_secs(2),
            slow_after: Duration::from_secs(120),
            max_interval: Duration::from_secs(15),
            jitter: 0.1,
            // runbase calls no webhooks.
            webhook_interval: Duration::from_secs(2),
        }
    }

    /// The default schedule of a provider.
    pub const fn default_for(provider: ProviderId) -> Self {
        match provider {
            ProviderId::Runblob => PollSchedule::runblob(),
            ProviderId::Gptimg => PollSchedule::gptimg(),
            ProviderId::Runbase => PollSchedule::runbase(),
        }
    }

    /// A fixed interval, first poll included (the CLI's `--poll-interval`), webhook or not;
    /// still slowing toward `max_interval` when a task runs far too long.
    pub fn every(self, interval: Duration) -> Self {
        PollSchedule {
            first_poll_after: interval,
            interval,
            max_interval: self.max_interval.max(interval),
            webhook_interval: interval,
            ..self
        }
    }

    /// The schedule of a wait that expects a webhook: polling every `webhook_interval` (never
    /// faster than `interval`), only to catch a callback that was lost.
    pub fn expecting_webhook(self) -> Self {
        let interval = self.webhook_interval.max(self.interval);
        PollSchedule {
            interval,
            max_interval: self.max_interval.max(interval),
            ..self
        }
    }

    /// Every delay multiplied by `factor` (jitter unchanged): the same schedule on another
    /// time base, for benchmarks and emulators whose tasks run `factor` times as long.
    /// A factor that is not finite and positive leaves the schedule as it is.
    pub fn scaled(self, factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) {
            return self;
        }
        let scale = |duration: Duration| duration.mul_f64(factor);
        PollSchedule {
            first_poll_after: scale(self.first_poll_after),
            interval: scale(self.interval),
            slow_after: scale(self.slow_after),
            max_interval: scale(self.max_interval),
            jitter: self.jitter,
            webhook_interval: scale(self.webhook_interval),
        }
    }

    /// Sets the jitter fraction (0 for none).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 0.5);
        self
    }

    /// The delay before the first poll of a wait on a task created `elapsed` ago: until the
    /// task could plausibly be done, or none at all for a task older than that (a resumed
    /// wait looks at once). `sample` in `[0, 1]` places it within the jitter.
    pub fn delay(&self, elapsed: Duration, sample: f64) -> Duration {
        let base = self.first_poll_after.saturating_sub(elapsed);
        self.jittered(base, sample)
    }

    /// The delay after a poll that found the task still running: at least one interval (a
    /// jittered first poll may come a little early), and no sooner than the first poll was
    /// due (an early poll, confirming a webhook, does not speed the schedule up).
    pub fn delay_after_poll(&self, elapsed: Duration, sample: f64) -> Duration {
        let base = if elapsed < self.first_poll_after {
            (self.first_poll_after - elapsed).max(self.interval)
        } else {
            self.interval_at(elapsed)
        };
        self.jittered(base, sample)
    }

    /// The interval for a task running `elapsed`: slower once it runs far beyond its time.
    fn interval_at(&self, elapsed: Duration) -> Duration {
        if elapsed < self.slow_after {
            return self.interval;
        }
        // Grows by one interval per `slow_after` of overtime, up to the cap.
        let overtime = (elapsed - self.slow_after).as_secs_f64();
        let factor = 1.0 + overtime / self.slow_after.as_secs_f64().max(1.0);
        self.interval.mul_f64(factor).min(self.max_interval)
    }

    fn jittered(&self, base: Duration, sample: f64) -> Duration {
        let spread = self.jitter.clamp(0.0, 0.5) * (2.0 * sample.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(1.0 + spread)
    }

    /// How long a task is expected to take, for ordering polls when the budget is short.
    pub(crate) fn expected(&self) -> Duration {
        self.first_poll_after.max(self.interval)
    }
}

/// The longest a wait lasts when [`WaitOptions::deadline`] is not set: five times runblob's
/// longest typical time, ten times gptimg's; runbase documents none, so gptimg's is used.
pub const fn default_deadline(provider: ProviderId) -> Duration {
    match provider {
        ProviderId::Runblob => Duration::from_secs(15 * 60),
        ProviderId::Gptimg | ProviderId::Runbase => Duration::from_secs(10 * 60),
    }
}

/// How to wait.
#[derive(Default)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Give up this long after the wait begins (on the injected clock), with
    /// [`Error::DeadlineExceeded`] carrying the handle. Default: [`default_deadline`].
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
pub type StatusCallback = Arc<dyn Fn(&JobHandle, &JobStatus) + Send + Sync>;

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
        callback: impl Fn(&JobHandle, &JobStatus) + Send + Sync + 'static,
    ) -> Self {
        self.on_status = Some(Arc::new(callback));
        self
    }
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

pub(crate) fn outcome_of<T>(result: &Result<T, crate::error::CallError>) -> Outcome {
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
    /// Waits until the task ends, polling on its provider's schedule inside the key's request
    /// budget, and returns its terminal status — succeeded or failed (see
    /// [`JobState`]).
    ///
    /// Resumable: `handle` may come from another process (serialised JSON, or the short form
    /// `provider:task_id`). Returns [`Error::DeadlineExceeded`] or [`Error::Cancelled`] with
    /// the handle when the wait stops first, and [`Error::Status`] when the status cannot be
    /// read for good (after the retry policy's attempts). The task itself is never touched.
    pub async fn wait(&self, handle: &JobHandle, options: WaitOptions) -> Result<JobStatus, Error> {
        let provider = self.provider(handle.provider)?;
        let scheduler = self.scheduler(&provider)?;
        let clock = self.inner.clock.clone();
        let schedule = options
            .schedule
            .unwrap_or_else(|| self.schedule_of(handle.provider));
        let cancel = options.cancel;
        let mut events = options.events;
        // A task that will call back, and a wait that hears callbacks: poll only to catch a
        // lost one. Back to the plain schedule if the events stop.
        let expecting_webhook = schedule.expecting_webhook();
        let schedule_now = |events: &Option<EventStream>| {
            if handle.webhook && events.is_some() {
                &expecting_webhook
            } else {
                &schedule
            }
        };
        let on_status = options.on_status;
        let began = clock.now();
        let deadline = began
            + options
                .deadline
                .unwrap_or_else(|| default_deadline(handle.provider));
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
        let mut last_state: Option<JobState> = None;
        let mut seen = HashSet::new();
        let exceeded = |last_state: Option<JobState>| {
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
                            && seen.insert(event.status.clone()) =>
                        {
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
                // A status that never answers, or trickles, ends with the wait.
                result = self
                    .bounded(Some(deadline), provider.status(&handle.task_id))
                    .instrument(span.clone()) => result,
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
                    if let JobState::Unknown { raw_status } = &status.state {
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
                            pending = scheduler.register(poll, next.min(deadline), Some(deadline));
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
    }

    /// Reads a task's status once (retrying transient failures), inside the key's budget.
    pub async fn status(&self, handle: &JobHandle) -> Result<JobStatus, Error> {
        // Borrowed, not cloned: this is the call a busy program makes most.
        let provider = self.provider_ref(handle.provider)?;
        let scheduler = self.scheduler_ref(provider)?;
        let clock = &self.inner.clock;
        // Retried within a time as well as a number of attempts.
        let give_up_at = clock.now() + self.inner.retry.read_retry_time;
        // The first attempt is due now; a retry after its backoff.
        let mut retry_at = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let pending = match retry_at {
                None => scheduler.register_now(Priority::First, None),
                Some(at) => scheduler.register(Priority::First, at, None),
            };
            let permit = match pending.await {
                Grant::Go(permit) => permit,
                Grant::Deadline | Grant::Closed => {
                    return Err(Error::config("the request scheduler stopped"));
                }
            };
            let span = tracing::info_span!(
                "imggen.status",
                provider = %handle.provider,
                task_id = %Untrusted(&handle.task_id),
                attempt,
                status = tracing::field::Empty,
            );
            // Each attempt has its client's timeout; the retries stop at `give_up_at`.
            let result = provider
                .status(&handle.task_id)
                .instrument(span.clone())
                .await;
            span.record(
                "status",
                result
                    .as_ref()
                    .map_or("error", |status| status.state.name()),
            );
            permit.finish(outcome_of(&result));
            match result {
                Ok(status) => return Ok(status),
                Err(error) => {
                    let decision = policy::decide(
                        CallOperation::Status,
                        &Facts::from(&error),
                        attempt,
                        &self.inner.retry,
                    );
                    let next = clock.now()
                        + match decision {
                            Decision::Retry { after } => policy::jitter_up(after, fastrand::f64()),
                            Decision::GiveUp | Decision::FallBack => Duration::ZERO,
                        };
                    match decision {
                        Decision::Retry { .. } if next < give_up_at => retry_at = Some(next),
                        Decision::Retry { .. } | Decision::GiveUp | Decision::FallBack => {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_scaled_schedule_keeps_its_shape_on_another_time_base() {
        let scaled = PollSchedule::runblob().scaled(0.01);
        assert_eq!(scaled.first_poll_after, Duration::from_millis(600));
        assert_eq!(scaled.interval, Duration::from_millis(90));
        assert_eq!(scaled.max_interval, Duration::from_millis(600));
        assert_eq!(scaled.webhook_interval, Duration::from_millis(300));
        assert_eq!(scaled.jitter, PollSchedule::runblob().jitter);
        assert_eq!(
            PollSchedule::runblob().scaled(-1.0),
            PollSchedule::runblob()
        );
    }

    #[test]
    fn no_poll_before_the_task_could_be_done_then_tighter_then_slower() {
        let runblob = PollSchedule::runblob().with_jitter(0.0);
        assert_eq!(runblob.delay(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(runblob.delay(45 * S, 0.5), 15 * S);
        // A wait resumed on an older task looks at once.
        assert_eq!(runblob.delay(90 * S, 0.5), Duration::ZERO);
        assert_eq!(runblob.delay_after_poll(90 * S, 0.5), 9 * S);
        // 5 minutes of overtime past slow_after doubles the interval; the cap holds it.
        assert_eq!(runblob.delay_after_poll(600 * S, 0.5), 18 * S);
        assert_eq!(runblob.delay_after_poll(100_000 * S, 0.5), 60 * S);

        let runbase = PollSchedule::runbase().with_jitter(0.0);
        assert_eq!(runbase.delay(Duration::ZERO, 0.0), 3 * S);
        assert_eq!(runbase.delay_after_poll(10 * S, 0.0), 2 * S);
        // A first poll jittered early is followed by a whole interval, not the remainder…
        assert_eq!(
            runbase.delay_after_poll(Duration::from_millis(2_700), 0.5),
            2 * S
        );
        // …and an early poll (a webhook's confirmation) by the normal first poll.
        assert_eq!(runblob.delay_after_poll(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(runblob.delay_after_poll(55 * S, 0.5), 9 * S);
    }

    #[test]
    fn jitter_spreads_ten_percent_either_way() {
        let gptimg = PollSchedule::gptimg();
        assert_eq!(
            gptimg.delay(Duration::ZERO, 0.0),
            Duration::from_millis(31_500)
        );
        assert_eq!(gptimg.delay(Duration::ZERO, 0.5), 35 * S);
        assert_eq!(
            gptimg.delay(Duration::ZERO, 1.0),
            Duration::from_millis(38_500)
        );
    }

    #[test]
    fn a_fixed_interval_sets_the_first_poll_too() {
        let every = PollSchedule::runblob().with_jitter(0.0).every(5 * S);
        assert_eq!(every.delay(Duration::ZERO, 0.5), 5 * S);
        assert_eq!(every.delay_after_poll(30 * S, 0.5), 5 * S);
        // Asked for, a fixed interval holds with a webhook too.
        assert_eq!(
            every.expecting_webhook().delay_after_poll(30 * S, 0.5),
            5 * S
        );
        assert_eq!(default_deadline(ProviderId::Runblob), 900 * S);
    }

    #[test]
    fn with_a_webhook_expected_polls_only_catch_a_lost_callback() {
        // runblob retries a callback every 30 s: polling faster than that buys nothing.
        let runblob = PollSchedule::runblob().with_jitter(0.0).expecting_webhook();
        assert_eq!(runblob.delay(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(runblob.delay_after_poll(90 * S, 0.5), 30 * S);
        assert_eq!(runblob.delay_after_poll(100_000 * S, 0.5), 60 * S);
        // Providers without webhooks keep their interval.
        for schedule in [PollSchedule::gptimg(), PollSchedule::runbase()] {
            assert_eq!(schedule.expecting_webhook(), schedule);
        }
        // Never faster than the plain interval, whatever a caller sets.
        let mut odd = PollSchedule::runblob();
        odd.webhook_interval = S;
        assert_eq!(odd.expecting_webhook().interval, 9 * S);
    }
}
