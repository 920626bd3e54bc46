//! When to try a read again, and after how long: a pure function of the attempt and what went
//! wrong, so every branch is a unit test.
//!
//! Only reads (status calls) are retried here. A create is never retried by the transport:
//! every provider charges at submit, and whether a failed create may be retried is decided
//! once, in imggen-core's policy, from what the answer proves.

use std::time::Duration;

/// How the transport retries reads.
///
/// Backoff is exponential with "equal jitter" (half fixed, half random), so many clients that
/// failed together do not retry together. A `Retry-After` from the server is obeyed exactly —
/// never sooner — unless it is longer than [`max_retry_after`](Self::max_retry_after), in which
/// case the error is returned at once with the delay in it, for the caller to schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `1` disables retries.
    pub max_attempts: u32,
    /// The backoff before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// The longest backoff between attempts (before jitter).
    pub max_backoff: Duration,
    /// The longest server-requested delay the transport will sleep through.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Four attempts, 250 ms doubling to at most 8 s, `Retry-After` honoured up to 60 s.
    pub const fn standard() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// One attempt: every error is returned as it happened. For callers with their own retry
    /// loop (imggen-core), so that no layer retries what another layer already retries.
    pub const fn disabled() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::standard()
        }
    }

    /// The backoff after failed attempt number `attempt` (1-based), with `jitter` in `[0, 1]`
    /// choosing where in the upper half of the window the delay falls.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let window = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = window / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// Whether to try again after failed attempt number `attempt` (1-based), and after how
    /// long. `None`: return the error.
    pub fn next_delay(&self, attempt: u32, failure: Failure, jitter: f64) -> Option<Duration> {
        if !failure.retryable || attempt >= self.max_attempts {
            return None;
        }
        match failure.retry_after {
            Some(asked) if asked > self.max_retry_after => None,
            Some(asked) => Some(asked),
            None => Some(self.backoff(attempt, jitter)),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::standard()
    }
}

/// What the retry decision needs to know about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Whether the same request may succeed if sent again.
    pub retryable: bool,
    /// How long the server asked the client to wait.
    pub retry_after: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSIENT: Failure = Failure {
        retryable: true,
        retry_after: None,
    };

    #[test]
    fn backoff_doubles_within_its_cap_and_jitter_stays_in_the_upper_half() {
        let policy = RetryPolicy::standard();
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(250));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(750));
        assert_eq!(policy.backoff(20, 1.0), Duration::from_secs(8));
        assert_eq!(policy.backoff(u32::MAX, 1.0), Duration::from_secs(8));
    }

    #[test]
    fn stops_after_max_attempts_and_on_permanent_errors() {
        let policy = RetryPolicy::standard();
        assert!(policy.next_delay(3, TRANSIENT, 0.0).is_some());
        assert_eq!(policy.next_delay(4, TRANSIENT, 0.0), None);
        let permanent = Failure {
            retryable: false,
            retry_after: None,
        };
        assert_eq!(policy.next_delay(1, permanent, 0.0), None);
        assert_eq!(RetryPolicy::disabled().next_delay(1, TRANSIENT, 0.0), None);
    }

    #[test]
    fn retry_after_is_obeyed_exactly_up_to_the_cap() {
        let policy = RetryPolicy::standard();
        let asked = |secs| Failure {
            retryable: true,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            policy.next_delay(1, asked(7), 0.0),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            policy.next_delay(1, asked(60), 1.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(policy.next_delay(1, asked(61), 0.0), None);
    }
}
