//! How many requests reached the provider endpoints, by status: what a test checks to prove
//! that a request was refused *before* it was sent (zero requests) or that a scheduler stayed
//! inside a rate limit (zero 429s).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

/// The most recent requests kept in full; older ones are only counted.
const RECENT: usize = 1000;

/// Counts of the requests that reached the provider endpoints (and `/files/`), never the
/// mock's own `/_mock/` endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// Every request since the start or the last reset.
    pub total: u64,
    /// Requests per answered HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// The latest requests, oldest first (at most 1000).
    pub recent: VecDeque<RequestRecord>,
}

/// One request, as the request log shows it (the key only as its label).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The answered status.
    pub status: u16,
    /// The API key's label, `-` when there was none.
    pub key: String,
}

impl RequestStats {
    /// How many requests were answered with `status`.
    pub fn with_status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    pub(crate) fn record(&mut self, record: RequestRecord) {
        self.total += 1;
        *self.by_status.entry(record.status).or_default() += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_everything_and_keeps_the_latest() {
        let mut stats = RequestStats::default();
        for i in 0..1500u16 {
            stats.record(RequestRecord {
                method: "GET".into(),
                path: format!("/x/{i}"),
                status: if i % 2 == 0 { 200 } else { 429 },
                key: "-".into(),
            });
        }
        assert_eq!(stats.total, 1500);
        assert_eq!(stats.with_status(429), 750);
        assert_eq!(stats.recent.len(), 1000);
        assert_eq!(stats.recent.front().unwrap().path, "/x/500");
    }
}
