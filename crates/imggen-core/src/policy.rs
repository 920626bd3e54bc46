//! The one retry decision of imggen: a pure function of the operation, what the failure proves
//! and the attempt, so every branch is a row of a table test.
//!
//! - **A status read or a download** is repeated on transient failures (429, gateway errors,
//!   connection failures, timeouts). A 429 is a pause, not a fault: it gets many more attempts
//!   than other transient errors, since the request budget already slows every call on the key.
//! - **A create** is repeated **only when the answer proves nothing was charged**: a 429, a
//!   runblob 503 Maintenance, a gptimg 500 `INTERNAL_ERROR` (documented as refunded), or a
//!   connection refused before a byte was sent. What proves it is each provider's knowledge in
//!   `imggen-types` (`ProviderErrorBody::rejected_create`), surfaced by the clients as
//!   `retryable` and `may_have_been_charged`; it is not repeated here.
//! - After a create's retries are spent, or on any other answer that proves the task was not
//!   accepted (402, 400, 401, an exhausted quota), the next provider of a fallback list may be
//!   tried. After a create whose outcome is unknown (timeout, dropped connection, an
//!   undecodable 2xx) nothing is retried and nothing falls back: that task may exist and be
//!   paid for.

use std::time::Duration;

use crate::error::{CallError, CallOperation};

/// The facts a retry decision rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Whether the same call may succeed if made again (for a create: only when nothing was
    /// charged).
    pub retryable: bool,
    /// Whether a create may have created and charged a task anyway.
    pub may_have_been_charged: bool,
    /// Whether the provider said "too many requests" (a pause, not a fault).
    pub rate_limited: bool,
    /// How long the provider asked to wait.
    pub retry_after: Option<Duration>,
}

impl From<&CallError> for Facts {
    fn from(error: &CallError) -> Self {
        Facts {
            retryable: error.retryable,
            may_have_been_charged: error.may_have_been_charged,
            rate_limited: error.is_rate_limited(),
            retry_after: error.retry_after,
        }
    }
}

/// How many attempts, and how long between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts of one create, the first included.
    pub create_attempts: u32,
    /// Attempts of a status read or download failing transiently, the first included.
    pub read_attempts: u32,
    /// Attempts of a read answered 429, the first included (the deadline bounds a wait too).
    pub rate_limited_attempts: u32,
    /// The backoff after the first failure when the provider names no delay.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured by waiting; a longer one ends the retries (and a
    /// create may fall back to the next provider).
    pub max_retry_after: Duration,
    /// The longest one read outside a wait — a status call, one image's download — may take,
    /// every attempt and pause included: retries are bounded in time as well as in count, so
    /// a body that keeps arriving cut short cannot hold a caller for attempts × timeout.
    pub read_retry_time: Duration,
}

impl RetryConfig {
    /// 4 create attempts, 6 read attempts, 30 rate-limited read attempts; 1 s backoff doubling
    /// to 30 s; `Retry-After` honoured up to 2 minutes; a read retried for at most 3 minutes.
    pub const fn standard() -> Self {
        RetryConfig {
            create_attempts: 4,
            read_attempts: 6,
            rate_limited_attempts: 30,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            read_retry_time: Duration::from_secs(180),
        }
    }

    /// One attempt of everything.
    pub const fn disabled() -> Self {
        RetryConfig {
            create_attempts: 1,
            read_attempts: 1,
            rate_limited_attempts: 1,
            ..RetryConfig::standard()
        }
    }

    /// The backoff after failed attempt `attempt` (1-based): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff)
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig::standard()
    }
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Make the same call again after `after` (the provider's `Retry-After`, or a backoff).
    /// Callers may add up to 10% jitter, never subtract.
    Retry {
        /// How long to wait first.
        after: Duration,
    },
    /// Return the error.
    GiveUp,
    /// A create the provider did not accept: the next provider of a fallback list may be tried.
    FallBack,
}

/// Decides what to do after failed attempt number `attempt` (1-based) of `operation`.
pub fn decide(
    operation: CallOperation,
    facts: &Facts,
    attempt: u32,
    config: &RetryConfig,
) -> Decision {
    let limit = match operation {
        CallOperation::Create => config.create_attempts,
        CallOperation::Status | CallOperation::Download if facts.rate_limited => {
            config.rate_limited_attempts
        }
        CallOperation::Status | CallOperation::Download => config.read_attempts,
    };
    let stop = if operation == CallOperation::Create {
        if facts.may_have_been_charged {
            // The task may exist: neither a retry nor another provider.
            return Decision::GiveUp;
        }
        Decision::FallBack
    } else {
        Decision::GiveUp
    };
    if !facts.retryable || attempt >= limit {
        return stop;
    }
    match facts.retry_after {
        Some(asked) if asked > config.max_retry_after => stop,
        Some(asked) => Decision::Retry { after: asked },
        None => Decision::Retry {
            after: config.backoff(attempt),
        },
    }
}

/// Adds up to 10% to a delay (`sample` in `[0, 1]`), so callers that failed together do not
/// retry together, and never waits less than asked.
pub fn jitter_up(after: Duration, sample: f64) -> Duration {
    after + after.mul_f64(0.1 * sample.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn facts(retryable: bool, charged: bool, rate_limited: bool, after: Option<u64>) -> Facts {
        Facts {
            retryable,
            may_have_been_charged: charged,
            rate_limited,
            retry_after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_decision_table() {
        use CallOperation::{Create, Download, Status};
        use Decision::{FallBack, GiveUp, Retry};
        let config = RetryConfig::standard();
        let rate_limited = facts(true, false, true, Some(7));
        let rate_limited_no_header = facts(true, false, true, None);
        let proven_refund = facts(true, false, false, None); // gptimg 500 INTERNAL_ERROR, 503 Maintenance
        let refused = facts(false, false, false, None); // 402, 400, 401
        let lost = facts(false, true, false, None); // timeout or dropped connection after send
        let gateway_read = facts(true, false, false, None);
        let not_found = facts(false, false, false, None);
        let long_pause = facts(true, false, true, Some(600));

        let rows: &[(CallOperation, Facts, u32, Decision)] = &[
            // Creates: retried only when nothing was charged.
            (Create, rate_limited, 1, Retry { after: 7 * S }),
            (Create, rate_limited_no_header, 2, Retry { after: 2 * S }),
            (Create, proven_refund, 1, Retry { after: S }),
            (Create, proven_refund, 3, Retry { after: 4 * S }),
            (Create, proven_refund, 4, FallBack),
            (Create, rate_limited, 4, FallBack),
            (Create, refused, 1, FallBack),
            (Create, lost, 1, GiveUp),
            (Create, facts(true, true, false, None), 1, GiveUp),
            (Create, long_pause, 1, FallBack),
            // Reads: transient failures retried, a 429 many more times.
            (Status, gateway_read, 1, Retry { after: S }),
            (Status, gateway_read, 5, Retry { after: 16 * S }),
            (Status, gateway_read, 6, GiveUp),
            (Status, rate_limited, 6, Retry { after: 7 * S }),
            (Status, rate_limited, 29, Retry { after: 7 * S }),
            (Status, rate_limited, 30, GiveUp),
            (Status, not_found, 1, GiveUp),
            (Status, long_pause, 1, GiveUp),
            (Download, gateway_read, 2, Retry { after: 2 * S }),
            (Download, not_found, 1, GiveUp),
        ];
        for (operation, facts, attempt, expected) in rows {
            assert_eq!(
                decide(*operation, facts, *attempt, &config),
                *expected,
                "{operation} {facts:?} attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_disabled_never_retries() {
        let config = RetryConfig::standard();
        assert_eq!(config.backoff(1), S);
        assert_eq!(config.backoff(6), 30 * S);
        assert_eq!(config.backoff(u32::MAX), 30 * S);
        let disabled = RetryConfig::disabled();
        let transient = facts(true, false, true, None);
        assert_eq!(
            decide(CallOperation::Status, &transient, 1, &disabled),
            Decision::GiveUp
        );
        assert_eq!(
            decide(CallOperation::Create, &transient, 1, &disabled),
            Decision::FallBack
        );
    }

    #[test]
    fn jitter_only_adds() {
        assert_eq!(jitter_up(10 * S, 0.0), 10 * S);
        assert_eq!(jitter_up(10 * S, 1.0), 11 * S);
        assert_eq!(jitter_up(10 * S, 7.0), 11 * S);
    }
}
