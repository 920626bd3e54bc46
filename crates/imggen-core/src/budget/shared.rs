//! A key's request budget kept outside this process, so that every process using the key —
//! replicas of a service, workers of a batch on several machines — stays inside it together.
//!
//! The scheduler of a key with a documented or configured budget (runbase's 20 requests per
//! 10 s, say) asks the shared budget before it grants requests: [`SharedBudget::take`] says
//! how many it may send now. Its own sliding window still applies on top, so a process never
//! sends more than it would alone. Learned budgets (a key with none, tightened by a 429) stay
//! the process's own. If the shared budget cannot be reached, the scheduler says so once and
//! goes on with its own budget alone for a while (a 429 is then possible, a double charge
//! never: the budget only paces requests). PostgreSQL keeps one with the `postgres` feature
//! (`imggen_core::postgres::PgBudget`).

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::RateLimit;

/// A request budget shared by every process that uses a key.
pub trait SharedBudget: Send + Sync + fmt::Debug {
    /// Takes up to `wanted` of the requests `limit` allows the key whose fingerprint is `key`
    /// (never the key itself): how many may be sent now, and how long until the next is free.
    /// What is taken is spent, used or not.
    fn take<'a>(
        &'a self,
        key: &'a str,
        limit: RateLimit,
        wanted: u32,
    ) -> BoxFuture<'a, Result<Taken, SharedBudgetError>>;
}

/// What [`SharedBudget::take`] granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Requests that may be sent now.
    pub granted: u32,
    /// How long until the next request is free.
    pub retry_in: Duration,
}

/// The shared budget could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the shared request budget: {0}")]
pub struct SharedBudgetError(pub String);

/// The same budget, in one process: the same pacing over an injected clock —
/// what a database does for many processes, for tests (and for several `Imggen`s in one
/// process, which otherwise each own the key's budget).
#[derive(Debug)]
pub struct LocalSharedBudget {
    clock: std::sync::Arc<dyn imggen_http::time::Clock>,
    /// Each key's theoretical arrival time: when its next request would be on schedule.
    tat: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl LocalSharedBudget {
    /// A budget on `clock`.
    pub fn new(clock: std::sync::Arc<dyn imggen_http::time::Clock>) -> Self {
        LocalSharedBudget {
            clock,
            tat: std::sync::Mutex::default(),
        }
    }
}

/// The generic cell rate algorithm with no burst: one request every `limit.window /
/// limit.requests`. A burst would let a sliding window of `limit.window` see up to twice
/// `limit.requests` (a full burst at the end of one window, the next at its start); paced,
/// no window ever holds more than `limit.requests`, and the whole rate is still used. From
/// the theoretical arrival time `tat` (when the next request is on schedule) at `now`: how
/// many of `wanted` are granted, the new `tat`, and the wait for the next. The same
/// arithmetic as `postgres::PgBudget`'s statement (feature `postgres`).
pub(crate) fn gcra(
    tat: Duration,
    now: Duration,
    limit: RateLimit,
    wanted: u32,
) -> (u32, Duration, Duration) {
    let interval = (limit.window / limit.requests.max(1)).max(Duration::from_nanos(1));
    let tat = tat.max(now);
    if wanted == 0 || tat > now {
        return (0, tat, tat.saturating_sub(now));
    }
    let tat = tat + interval;
    (1, tat, tat.saturating_sub(now))
}

impl SharedBudget for LocalSharedBudget {
    fn take<'a>(
        &'a self,
        key: &'a str,
        limit: RateLimit,
        wanted: u32,
    ) -> BoxFuture<'a, Result<Taken, SharedBudgetError>> {
        let now = self.clock.now();
        let mut tats = self
            .tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = tats.entry(key.to_owned()).or_insert(now);
        let since = |at: std::time::Instant| at.saturating_duration_since(now);
        // Instants as durations from `now` (the tat is never earlier than now once used).
        let (granted, new_tat, retry_in) = gcra(since(*tat), Duration::ZERO, limit, wanted);
        *tat = now + new_tat;
        Box::pin(std::future::ready(Ok(Taken { granted, retry_in })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn requests_are_paced_one_interval_apart() {
        let limit = RateLimit::new(10, S);
        let (granted, tat, retry) = gcra(Duration::ZERO, Duration::ZERO, limit, 25);
        assert_eq!(
            (granted, tat, retry),
            (1, Duration::from_millis(100), Duration::from_millis(100))
        );
        // 50 ms later: none, and the wait is the rest of the interval.
        let (granted, tat, retry) = gcra(tat, Duration::from_millis(50), limit, 1);
        assert_eq!((granted, retry), (0, Duration::from_millis(50)));
        // On schedule: one more.
        let (granted, tat, retry) = gcra(tat, Duration::from_millis(100), limit, 1);
        assert_eq!(
            (granted, tat, retry),
            (1, Duration::from_millis(200), Duration::from_millis(100))
        );
        // Idle time is not saved up into a burst.
        let (granted, tat, _) = gcra(tat, 5 * S, limit, 3);
        assert_eq!((granted, tat), (1, 5 * S + Duration::from_millis(100)));
    }

    #[test]
    fn over_any_time_no_more_than_the_window_allows_is_granted() {
        let limit = RateLimit::new(20, 10 * S);
        let mut tat = Duration::ZERO;
        let mut grants: Vec<Duration> = Vec::new();
        let mut now = Duration::ZERO;
        // A taker that asks again when told, and sometimes a little early.
        while now < 60 * S {
            let (granted, new_tat, retry_in) = gcra(tat, now, limit, 3);
            tat = new_tat;
            grants.extend(std::iter::repeat_n(now, granted as usize));
            now += if grants.len().is_multiple_of(3) {
                retry_in / 2 + Duration::from_millis(1)
            } else {
                retry_in
            };
        }
        for (i, start) in grants.iter().enumerate() {
            let within = grants[i..]
                .iter()
                .filter(|&&at| at < *start + 10 * S)
                .count();
            assert!(within <= 20, "{within} grants in the 10 s from {start:?}");
        }
        // And all of it is used: 2 a second for 60 s.
        assert!(grants.len() >= 2 * 60 - 1, "{}", grants.len());
    }
}
