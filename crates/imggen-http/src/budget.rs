//! A key's request budget for a client used on its own: at most N requests in any window,
//! shared by every clone of the client, waited for through the injected sleeper.
//!
//! A provider that documents a budget (runbase: 20 requests per 10 s per key, creates and
//! polls together) answers 429 beyond it. A program that polls many tasks through one client
//! stays inside it with this; imggen-core, which schedules every request of a key itself, turns
//! it off ([`RequestBudget::unlimited`]).
//!
//! A sliding window rather than a token bucket (GCRA, as rate-limiting crates implement): a
//! bucket that allows a burst of N refills while it is spent, so it lets up to 2N requests
//! into one window — twice what the provider documents.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::time::{Clock, Sleeper};

/// How much later than the provider's window a request is counted out of ours: its clock sees
/// our request a little after we send it.
const WINDOW_GUARD: Duration = Duration::from_millis(250);

/// A request budget shared by every clone (cheap to clone).
#[derive(Clone)]
pub struct RequestBudget {
    limit: Option<(usize, Duration)>,
    granted: Arc<Mutex<VecDeque<Instant>>>,
}

impl fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Some((requests, window)) => {
                write!(f, "RequestBudget({requests} per {}s)", window.as_secs_f64())
            }
            None => f.write_str("RequestBudget(unlimited)"),
        }
    }
}

impl RequestBudget {
    /// At most `requests` in any `window`, as a provider documents it, spent with a margin: a
    /// tenth fewer requests (at least one) and a window a quarter-second longer, so a request
    /// at the edge of a window is not counted by the provider in the next.
    pub fn new(requests: u32, window: Duration) -> Self {
        let margin = requests / 10;
        let requests = requests.saturating_sub(margin).max(1) as usize;
        RequestBudget {
            limit: Some((requests, window + WINDOW_GUARD)),
            granted: Arc::default(),
        }
    }

    /// No budget: every request goes at once.
    pub fn unlimited() -> Self {
        RequestBudget {
            limit: None,
            granted: Arc::default(),
        }
    }

    /// Waits until a request may be sent, and counts it.
    pub async fn acquire(&self, clock: &dyn Clock, sleeper: &dyn Sleeper) {
        let Some((requests, window)) = self.limit else {
            return;
        };
        loop {
            let wait = {
                let mut granted = self.granted.lock().unwrap_or_else(PoisonError::into_inner);
                let now = clock.now();
                while granted
                    .front()
                    .is_some_and(|at| now.saturating_duration_since(*at) >= window)
                {
                    granted.pop_front();
                }
                if granted.len() < requests {
                    granted.push_back(now);
                    return;
                }
                // Full: the oldest request leaves the window first.
                granted.front().map_or(Duration::ZERO, |oldest| {
                    (*oldest + window).saturating_duration_since(now)
                })
            };
            sleeper.sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualTime;

    #[tokio::test]
    async fn clones_share_one_window_and_never_exceed_it() {
        let time = ManualTime::new();
        let start = time.now();
        let budget = RequestBudget::new(20, Duration::from_secs(10));
        let other = budget.clone();
        let mut granted = Vec::new();
        for i in 0..40 {
            let budget = if i % 2 == 0 { &budget } else { &other };
            budget.acquire(&time, &time).await;
            granted.push(time.now() - start);
        }
        // 18 at once (a tenth kept back), the next 18 a guarded window later, and so on.
        assert_eq!(granted[17], Duration::ZERO);
        assert_eq!(granted[18], Duration::from_millis(10_250));
        assert_eq!(granted[36], Duration::from_millis(20_500));
        for (i, at) in granted.iter().enumerate() {
            let in_window = granted
                .iter()
                .filter(|t| **t >= *at && **t < *at + Duration::from_secs(10))
                .count();
            assert!(in_window <= 18, "{in_window} in the window of request {i}");
        }
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        let time = ManualTime::new();
        let budget = RequestBudget::unlimited();
        for _ in 0..1000 {
            budget.acquire(&time, &time).await;
        }
        assert!(time.sleeps().is_empty());
    }
}
