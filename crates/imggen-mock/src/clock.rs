//! The mock's clock: real by default, manual for tests, and advanceable in both cases.
//!
//! Every time-dependent behaviour of the mock — a task's status, when a webhook is due, a
//! rate-limit window, a refund — is computed from this clock when it is read, so a test that
//! advances it sees the world move without waiting.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

/// The furthest a clock can be advanced: a hundred years.
const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A cheap, cloneable handle on the mock's time.
///
/// - [`MockClock::real`] follows the machine's clock, plus whatever was
///   [advanced](MockClock::advance).
/// - [`MockClock::manual`] stands still until advanced.
///
/// All clones share one time. To drive a client and the mock from one virtual clock, adapt a
/// clone to the client's clock and sleeper traits (`now()`, `wall()`, `advance()` are all
/// they need).
///
/// ```
/// use std::time::Duration;
/// use imggen_mock::MockClock;
///
/// let clock = MockClock::manual();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now() - start, Duration::from_secs(90));
/// ```
#[derive(Clone, Debug)]
pub struct MockClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    manual: bool,
    origin: Instant,
    wall_origin: SystemTime,
    offset: watch::Sender<Duration>,
}

impl MockClock {
    /// The machine's clock (plus any [`advance`](Self::advance)).
    pub fn real() -> Self {
        Self::build(false)
    }

    /// A clock at the present moment that moves only when [`advance`](Self::advance)d.
    pub fn manual() -> Self {
        Self::build(true)
    }

    fn build(manual: bool) -> Self {
        let (offset, _) = watch::channel(Duration::ZERO);
        MockClock {
            inner: Arc::new(Inner {
                manual,
                origin: Instant::now(),
                wall_origin: SystemTime::now(),
                offset,
            }),
        }
    }

    /// Whether this clock moves only when advanced.
    pub fn is_manual(&self) -> bool {
        self.inner.manual
    }

    /// Monotonic now.
    pub fn now(&self) -> Instant {
        let offset = *self.inner.offset.borrow();
        if self.inner.manual {
            self.inner.origin + offset
        } else {
            Instant::now() + offset
        }
    }

    /// Wall-clock now, for the timestamps the providers write (`created_at`, `createdAt`).
    pub fn wall(&self) -> SystemTime {
        self.wall_at(self.now())
    }

    /// The wall-clock time of a monotonic instant of this clock.
    pub fn wall_at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.inner.origin) {
            Some(after) => self.inner.wall_origin + after,
            None => self.inner.wall_origin - (self.inner.origin - instant),
        }
    }

    /// Moves time forward. On a real clock the jump adds to the machine's time.
    ///
    /// Task lifecycles, refunds and rate-limit windows follow at once; webhooks that fall due
    /// are sent by the server in the background (use `MockServer::advance` to also wait for
    /// them).
    pub fn advance(&self, duration: Duration) {
        // Capped, so that no jump a caller asks for can overflow an `Instant`.
        self.inner
            .offset
            .send_modify(|offset| *offset = offset.saturating_add(duration).min(MAX_OFFSET));
    }

    /// How far the clock has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        self.now() - self.inner.origin
    }

    /// A receiver that sees every [`advance`](Self::advance).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Duration> {
        self.inner.offset.subscribe()
    }
}

impl Default for MockClock {
    /// The real clock.
    fn default() -> Self {
        MockClock::real()
    }
}

/// `2026-04-22T00:12:03.456Z`: ISO 8601 in UTC with milliseconds, as gptimg writes it.
pub(crate) fn iso8601(time: SystemTime) -> String {
    use time::format_description::BorrowedFormatItem;
    use time::macros::format_description;
    const FORMAT: &[BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from(time)
        .format(FORMAT)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let clock = MockClock::manual();
        let start = clock.now();
        let wall = clock.wall();
        assert_eq!(clock.now(), start);
        let copy = clock.clone();
        copy.advance(Duration::from_secs(30));
        assert_eq!(clock.now() - start, Duration::from_secs(30));
        assert_eq!(
            clock.wall().duration_since(wall).unwrap(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_real_clock_can_jump_ahead() {
        let clock = MockClock::real();
        let before = Instant::now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= before + Duration::from_secs(3600));
    }

    #[test]
    fn absurd_jumps_are_capped_rather_than_overflowing() {
        let clock = MockClock::manual();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.elapsed(), MAX_OFFSET);
        let _ = clock.wall();
    }

    #[test]
    fn timestamps_look_like_the_providers_own() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_776_816_723_456);
        assert_eq!(iso8601(time), "2026-04-22T00:12:03.456Z");
    }
}
