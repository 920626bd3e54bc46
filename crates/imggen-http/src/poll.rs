//! Waiting for a task: when to poll it ([`PollSchedule`]), and the loop every client's `wait`
//! runs ([`Transport::wait`]) — with an overall deadline, cancellation and the injected
//! sleeper, so a program that uses one client alone never writes `loop { status; sleep }`.
//!
//! Each client crate carries its provider's schedule and default deadline; imggen-core uses
//! the same schedules for its own waits, inside each key's request budget.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use imggen_types::ProviderErrorBody;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::transport::Transport;

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
    /// webhook URL and the wait hears callbacks); never shorter than `interval`.
    pub webhook_interval: Duration,
}

impl PollSchedule {
    /// A schedule: the first poll after `first_poll_after`, then every `interval`, slowing
    /// toward `max_interval` once a task has run `slow_after`; ±10% jitter; a webhook does not
    /// change it.
    pub const fn new(
        first_poll_after: Duration,
        interval: Duration,
        slow_after: Duration,
        max_interval: Duration,
    ) -> Self {
        PollSchedule {
            first_poll_after,
            interval,
            slow_after,
            max_interval,
            jitter: 0.1,
            webhook_interval: interval,
        }
    }

    /// The same schedule, polling every `interval` while a webhook is expected.
    pub const fn with_webhook_interval(mut self, interval: Duration) -> Self {
        self.webhook_interval = interval;
        self
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

    /// How long a task is expected to take, for ordering polls when a budget is short.
    pub fn expected(&self) -> Duration {
        self.first_poll_after.max(self.interval)
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
}

/// How a client's `wait` waits. The defaults are the provider's own: its schedule, its default
/// deadline, and a task treated as just created.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Give up this long after the wait begins (on the client's clock); every status call
    /// ends by then too. Default: the provider's default deadline.
    pub deadline: Option<Duration>,
    /// A schedule instead of the provider's.
    pub schedule: Option<PollSchedule>,
    /// Stops the wait at once; the task goes on.
    pub cancel: Option<CancellationToken>,
    /// When the task was created, if known: no poll comes before it could be done. `None`
    /// for a task of unknown age (an id from elsewhere), which is polled at once.
    pub created_at: Option<SystemTime>,
}

impl WaitOptions {
    /// The provider's defaults.
    pub fn new() -> Self {
        WaitOptions::default()
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the schedule.
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets when the task was created.
    pub fn created_at(mut self, at: SystemTime) -> Self {
        self.created_at = Some(at);
        self
    }
}

/// Why a wait ended without the task ending. Every variant carries the task id: the task goes
/// on, it is paid for, and another wait can pick it up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError<B: ProviderErrorBody> {
    /// The deadline passed first.
    #[error(
        "{provider} task {}: not finished within {}s (last status: {}); it goes on and is paid for: wait on it again",
        imggen_types::text::Untrusted(task_id),
        waited.as_secs(),
        imggen_types::text::Untrusted(last_status.as_deref().unwrap_or("not read"))
    )]
    Deadline {
        /// The provider.
        provider: &'static str,
        /// The task, to wait on again.
        task_id: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The last status read, if any poll was made.
        last_status: Option<String>,
    },
    /// The wait was cancelled.
    #[error(
        "waiting for {provider} task {} was cancelled; it goes on and is paid for: wait on it again",
        imggen_types::text::Untrusted(task_id)
    )]
    Cancelled {
        /// The provider.
        provider: &'static str,
        /// The task, to wait on again.
        task_id: String,
    },
    /// The status could not be read (after the client's retries).
    #[error(
        "{error} (task {}); it goes on and is paid for: wait on it again",
        imggen_types::text::Untrusted(task_id)
    )]
    Status {
        /// The task, to wait on again.
        task_id: String,
        /// The last failure.
        #[source]
        error: Error<B>,
    },
}

impl<B: ProviderErrorBody> WaitError<B> {
    /// The task the wait was for.
    pub fn task_id(&self) -> &str {
        match self {
            WaitError::Deadline { task_id, .. }
            | WaitError::Cancelled { task_id, .. }
            | WaitError::Status { task_id, .. } => task_id,
        }
    }
}

/// A create-and-wait that stopped: at the create (nothing is known to exist — or, when
/// [`Error::may_have_been_charged`] says so, a task may exist that must not be created again
/// blindly), or at the wait (the task exists: its id is in the error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateAndWaitError<B: ProviderErrorBody> {
    /// The create failed.
    #[error(transparent)]
    Create(Error<B>),
    /// The task was created (and charged); the wait stopped.
    #[error(transparent)]
    Wait(WaitError<B>),
}

impl<B: ProviderErrorBody> Transport<B> {
    /// Polls `task_id` with `status` on `schedule` until it ends, the deadline (`options`, else
    /// `default_deadline`) passes, or `options.cancel` fires. `running` says whether a status
    /// read is still running (`Some(its name)`) or has ended (`None`). Each status call ends
    /// by the deadline too; it keeps the client's own retries of transient failures. Sleeps
    /// through the client's sleeper, reads the client's clock.
    pub async fn wait<T, F, Fut>(
        &self,
        task_id: &str,
        schedule: PollSchedule,
        default_deadline: Duration,
        options: &WaitOptions,
        mut status: F,
        running: impl Fn(&T) -> Option<String>,
    ) -> Result<T, WaitError<B>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error<B>>>,
    {
        let clock = self.clock();
        let sleeper = self.sleeper();
        let schedule = options.schedule.unwrap_or(schedule);
        let began = clock.now();
        let deadline = began + options.deadline.unwrap_or(default_deadline);
        // A task of unknown age is polled at once: it is being resumed.
        let age = |wall: SystemTime| match options.created_at {
            Some(created) => wall.duration_since(created).unwrap_or(Duration::ZERO),
            None => schedule.first_poll_after + (clock.now() - began),
        };
        let cancelled = || {
            let token = options.cancel.clone();
            async move {
                match token {
                    Some(token) => token.cancelled().await,
                    None => std::future::pending().await,
                }
            }
        };
        let mut last_status: Option<String> = None;
        let exceeded = |last_status: Option<String>| WaitError::Deadline {
            provider: self.provider(),
            task_id: task_id.to_owned(),
            waited: clock.now().saturating_duration_since(began),
            last_status,
        };
        let cancelled_error = || WaitError::Cancelled {
            provider: self.provider(),
            task_id: task_id.to_owned(),
        };
        let mut delay = schedule.delay(age(clock.wall()), fastrand::f64());
        loop {
            let now = clock.now();
            // The next poll would come after the deadline: wait that out, then stop.
            let last = now + delay >= deadline;
            let pause = if last {
                deadline.saturating_duration_since(now)
            } else {
                delay
            };
            if !pause.is_zero() {
                tokio::select! {
                    biased;
                    () = cancelled() => return Err(cancelled_error()),
                    () = sleeper.sleep(pause) => {}
                }
            }
            if last {
                return Err(exceeded(last_status));
            }
            let left = deadline.saturating_duration_since(clock.now());
            let polled = tokio::select! {
                biased;
                () = cancelled() => return Err(cancelled_error()),
                polled = crate::deadline::within(Instant::now() + left, status()) => polled,
            };
            match polled {
                Ok(found) => match running(&found) {
                    None => return Ok(found),
                    Some(name) => last_status = Some(name),
                },
                // Cut off by the deadline: the wait is over, not the task.
                Err(error) if clock.now() >= deadline && error.is_retryable() => {
                    return Err(exceeded(last_status));
                }
                Err(error) => {
                    return Err(WaitError::Status {
                        task_id: task_id.to_owned(),
                        error,
                    });
                }
            }
            delay = schedule.delay_after_poll(age(clock.wall()), fastrand::f64());
        }
    }
}

impl fmt::Display for PollSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first poll after {}s, then every {}s",
            self.first_poll_after.as_secs_f64(),
            self.interval.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn example() -> PollSchedule {
        PollSchedule::new(60 * S, 9 * S, 300 * S, 60 * S).with_webhook_interval(30 * S)
    }

    #[test]
    fn a_scaled_schedule_keeps_its_shape_on_another_time_base() {
        let scaled = example().scaled(0.01);
        assert_eq!(scaled.first_poll_after, Duration::from_millis(600));
        assert_eq!(scaled.interval, Duration::from_millis(90));
        assert_eq!(scaled.max_interval, Duration::from_millis(600));
        assert_eq!(scaled.webhook_interval, Duration::from_millis(300));
        assert_eq!(scaled.jitter, example().jitter);
        assert_eq!(example().scaled(-1.0), example());
    }

    #[test]
    fn no_poll_before_the_task_could_be_done_then_tighter_then_slower() {
        let schedule = example().with_jitter(0.0);
        assert_eq!(schedule.delay(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(schedule.delay(45 * S, 0.5), 15 * S);
        // A wait resumed on an older task looks at once.
        assert_eq!(schedule.delay(90 * S, 0.5), Duration::ZERO);
        assert_eq!(schedule.delay_after_poll(90 * S, 0.5), 9 * S);
        // 5 minutes of overtime past slow_after doubles the interval; the cap holds it.
        assert_eq!(schedule.delay_after_poll(600 * S, 0.5), 18 * S);
        assert_eq!(schedule.delay_after_poll(100_000 * S, 0.5), 60 * S);
        // An early poll (a webhook's confirmation) is followed by the normal first poll.
        assert_eq!(schedule.delay_after_poll(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(schedule.delay_after_poll(55 * S, 0.5), 9 * S);
    }

    #[test]
    fn jitter_spreads_ten_percent_either_way() {
        let schedule = PollSchedule::new(35 * S, 5 * S, 180 * S, 30 * S);
        assert_eq!(
            schedule.delay(Duration::ZERO, 0.0),
            Duration::from_millis(31_500)
        );
        assert_eq!(schedule.delay(Duration::ZERO, 0.5), 35 * S);
        assert_eq!(
            schedule.delay(Duration::ZERO, 1.0),
            Duration::from_millis(38_500)
        );
    }

    #[test]
    fn a_fixed_interval_sets_the_first_poll_and_holds_with_a_webhook() {
        let every = example().with_jitter(0.0).every(5 * S);
        assert_eq!(every.delay(Duration::ZERO, 0.5), 5 * S);
        assert_eq!(every.delay_after_poll(30 * S, 0.5), 5 * S);
        assert_eq!(
            every.expecting_webhook().delay_after_poll(30 * S, 0.5),
            5 * S
        );
    }

    #[test]
    fn with_a_webhook_expected_polls_only_catch_a_lost_callback() {
        let schedule = example().with_jitter(0.0).expecting_webhook();
        assert_eq!(schedule.delay(Duration::ZERO, 0.5), 60 * S);
        assert_eq!(schedule.delay_after_poll(90 * S, 0.5), 30 * S);
        assert_eq!(schedule.delay_after_poll(100_000 * S, 0.5), 60 * S);
        // Without a webhook interval of its own, a schedule keeps its interval.
        let plain = PollSchedule::new(3 * S, 2 * S, 120 * S, 15 * S);
        assert_eq!(plain.expecting_webhook(), plain);
        // Never faster than the plain interval, whatever a caller sets.
        let odd = example().with_webhook_interval(S);
        assert_eq!(odd.expecting_webhook().interval, 9 * S);
    }
}
