//! A provider's documented per-key request budget, as data: the orchestrator's scheduler keeps
//! every task on a key inside it.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// A request budget: at most `requests` requests in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub const fn new(requests: u32, window: Duration) -> Self {
        RateLimit { requests, window }
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut state = serializer.serialize_struct("RateLimit", 2)?;
        state.serialize_field("requests", &self.requests)?;
        state.serialize_field("window_ms", &(self.window.as_millis() as u64))?;
        state.end()
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests per {}s",
            self.requests,
            self.window.as_secs_f64()
        )
    }
}
