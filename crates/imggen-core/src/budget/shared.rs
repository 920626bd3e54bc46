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
//! (`imggen_core::postgres::PgBudget`). The scheduler's side — when to take a request, and
//! what it holds — is here too.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use std::sync::Arc;
use std::time::Instant;

use super::{Priority, RateLimit, effective};

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
    clock: Arc<dyn imggen_http::time::Clock>,
    /// Each key's theoretical arrival time: when its next request would be on schedule.
    tat: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

impl LocalSharedBudget {
    /// A budget on `clock`.
    pub fn new(clock: Arc<dyn imggen_http::time::Clock>) -> Self {
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
        let since = |at: Instant| at.saturating_duration_since(now);
        // Instants as durations from `now` (the tat is never earlier than now once used).
        let (granted, new_tat, retry_in) = gcra(since(*tat), Duration::ZERO, limit, wanted);
        *tat = now + new_tat;
        Box::pin(std::future::ready(Ok(Taken { granted, retry_in })))
    }
}

/// How long a key's own budget serves alone after its shared budget could not be reached.
const SHARED_UNREACHABLE_PAUSE: Duration = Duration::from_secs(10);
/// Requests taken from a shared budget and not sent within this long are dropped: sent
/// late, they would bunch up with the ones taken after them.
const STALE_TOKENS: Duration = Duration::from_millis(100);

/// What the driver holds of a shared budget.
pub(super) struct SharedSlot {
    pub(super) budget: Arc<dyn SharedBudget>,
    /// The key's fingerprint.
    pub(super) key: String,
    /// Requests taken and not yet granted.
    pub(super) tokens: u32,
    pub(super) taken_at: Option<Instant>,
    /// When the shared budget frees its next request.
    pub(super) next_at: Option<Instant>,
    /// Until when it is not asked (it could not be reached): the key's own budget alone.
    pub(super) unreachable_until: Option<Instant>,
}

impl super::Driver {
    /// The shared budget, when this key's grants need a request taken from it and none is
    /// held: a documented or configured budget (a learned one stays this process's own),
    /// and the shared budget reachable.
    pub(super) fn waiting_on_shared(&self, now: Instant) -> Option<&SharedSlot> {
        let slot = self.shared_budget.as_ref()?;
        let shares = self.limit.is_some() && (self.configured || self.ceiling.is_some());
        let reachable = slot.unreachable_until.is_none_or(|until| until <= now);
        (shares && reachable && slot.tokens == 0).then_some(slot)
    }

    /// Takes a request from the shared budget when a budgeted ticket is due, the key's own
    /// budget has room, none is held and the shared budget's next one is due. Returns
    /// whether it asked (time has passed).
    pub(super) async fn take_shared(&mut self, now: Instant) -> bool {
        if let Some(slot) = self.shared_budget.as_mut()
            && slot.tokens > 0
            && slot
                .taken_at
                .is_some_and(|at| now.saturating_duration_since(at) > STALE_TOKENS)
        {
            slot.tokens = 0;
        }
        let Some(slot) = self.waiting_on_shared(now) else {
            return false;
        };
        if slot.next_at.is_some_and(|at| at > now) {
            return false;
        }
        let due = self
            .queue
            .iter()
            .any(|ticket| ticket.priority != Priority::Timer && ticket.not_before <= now);
        if !due {
            return false;
        }
        // Only when the key's own budget (its pause, its window) would grant now: a request
        // taken and not sent is lost to every process.
        if self.free_at(now, &self.shared.lock().window) > now {
            return false;
        }
        let Some(limit) = self.limit else {
            return false;
        };
        let (requests, window) = effective(&limit);
        let limit = RateLimit::new(u32::try_from(requests).unwrap_or(u32::MAX), window);
        let label = self.label.clone();
        let clock = Arc::clone(&self.clock);
        let Some(slot) = self.shared_budget.as_mut() else {
            return false;
        };
        match slot.budget.take(&slot.key, limit, 1).await {
            Ok(taken) => {
                let at = clock.now();
                slot.tokens += taken.granted;
                slot.taken_at = Some(at);
                slot.next_at = Some(at + taken.retry_in);
            }
            Err(error) => {
                tracing::warn!(
                    key = %label,
                    %error,
                    "the shared request budget cannot be reached: this process keeps to the key's budget alone for a while"
                );
                slot.unreachable_until = Some(now + SHARED_UNREACHABLE_PAUSE);
            }
        }
        true
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
