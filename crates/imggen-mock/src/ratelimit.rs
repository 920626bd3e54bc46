//! Per-key request budgets, counted on the mock's clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// A sliding window of the requests one key was allowed to make.
#[derive(Debug, Default)]
pub(crate) struct Window {
    admitted: VecDeque<Instant>,
}

impl Window {
    /// Admits a request at `now`, or says how long until one would be admitted. Refused
    /// requests do not count against the budget.
    pub(crate) fn admit(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        while let Some(oldest) = self.admitted.front() {
            if now.saturating_duration_since(*oldest) >= limit.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < limit.requests as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        let oldest = self.admitted.front().copied().unwrap_or(now);
        Err(oldest
            .checked_add(limit.window)
            .map_or(limit.window, |free| free.saturating_duration_since(now)))
    }
}

/// Whole seconds for a `Retry-After` header, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twenty_first_request_in_ten_seconds_waits_for_the_first_to_expire() {
        let limit = RateLimit::runbase();
        let mut window = Window::default();
        let start = Instant::now();
        for i in 0..20 {
            window
                .admit(limit, start + Duration::from_millis(i * 100))
                .unwrap();
        }
        let at = start + Duration::from_secs(2);
        assert_eq!(window.admit(limit, at), Err(Duration::from_secs(8)));
        // Still refused just before the first request leaves the window…
        assert!(
            window
                .admit(limit, start + Duration::from_millis(9_999))
                .is_err()
        );
        // …and admitted once it has.
        assert!(window.admit(limit, start + Duration::from_secs(10)).is_ok());
        assert!(
            window
                .admit(limit, start + Duration::from_secs(10))
                .is_err()
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(8_001)), 9);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(8)), 8);
    }
}
