//! What a run reports as it goes: each [`BatchEvent`] with the running totals ([`Progress`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::Cost;
use crate::handle::TaskHandle;
use crate::plan::Warning;
use crate::status::TaskState;

/// Running totals, in every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// Requests in the batch (valid lines, and journaled requests no longer in the file).
    pub total: usize,
    /// Requests done.
    pub done: usize,
    /// Requests failed.
    pub failed: usize,
    /// Requests whose create's outcome is unknown.
    pub unknown: usize,
    /// Requests this run stopped without finishing (a deadline, a cancellation, a refusal
    /// that charged nothing): the next run carries on.
    pub pending: usize,
    /// Requests being submitted, waited on or downloaded now.
    pub in_flight: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Requests that were already done, failed or unknown when the run started.
    pub finished_before: usize,
    /// What the batch has cost so far: every charge, less refunds.
    pub cost: Cost,
}

impl Progress {
    /// Requests this run will not touch again: done, failed, unknown or pending.
    pub fn finished(&self) -> usize {
        self.done + self.failed + self.unknown + self.pending
    }

    /// The time left, from the pace of this run so far (`elapsed` since it started): `None`
    /// until a request has finished in this run.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let remaining = self.queued + self.in_flight;
        if remaining == 0 {
            return Some(Duration::ZERO);
        }
        let finished = self.finished().saturating_sub(self.finished_before);
        if finished == 0 || elapsed.is_zero() {
            return None;
        }
        Some(elapsed.mul_f64(remaining as f64 / finished as f64))
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
// A status event carries its handle and state by value: events are handed out one at a
// time and dropped, so boxing would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum BatchEventKind {
    /// Every line was read and checked (nothing is sent before): how many can run, and how
    /// many cannot (the run goes on only with [`BatchOptions::skip_invalid`](super::BatchOptions::skip_invalid)).
    Checked {
        /// Lines that can run.
        requests: usize,
        /// Lines that cannot.
        invalid: usize,
        /// What the lines that can run should cost, over every run, at the documented prices
        /// of the first provider of each line's route.
        projected: Cost,
        /// Lines that can run whose price is not known before their create (not in
        /// `projected`).
        unpriced: usize,
    },
    /// Every line that can run is in the journal.
    Journaled {
        /// Requests the journal did not have.
        added: usize,
        /// Requests it had, unchanged.
        kept: usize,
        /// Requests it had with nothing paid, replaced by the line's new content.
        replaced: usize,
    },
    /// The journal is read and the run begins.
    Started,
    /// A create is about to be sent (journaled first).
    Submitting {
        /// The how-many-th create of this request, over every run.
        attempt: u32,
    },
    /// Its tasks exist (journaled).
    Submitted {
        /// Their handles.
        handles: Vec<TaskHandle>,
    },
    /// A status was read while waiting.
    Status {
        /// The task.
        handle: TaskHandle,
        /// Where it is.
        state: TaskState,
    },
    /// The provider's task list is being read for a lost create.
    Reconciling,
    /// Tasks of a lost create were found in the provider's task list.
    Adopted {
        /// Their handles.
        handles: Vec<TaskHandle>,
    },
    /// Every image is on disk.
    Done {
        /// The files.
        files: Vec<PathBuf>,
    },
    /// The request failed.
    Failed {
        /// Why.
        error: String,
    },
    /// The outcome of a create is unknown: it may have been charged.
    Unknown {
        /// What is known.
        reason: String,
    },
    /// Something to know that did not stop the request: an image that could not be
    /// converted, kept as it came.
    Warning {
        /// What happened (setting `format`), and why.
        warning: Warning,
    },
    /// The run stopped without finishing the request; the next run carries on.
    Pending {
        /// Why.
        reason: String,
    },
    /// The run is over.
    Finished,
}

/// One event of a run, with the running totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchEvent {
    /// The request it is about (none for `Checked`, `Journaled`, `Started` and `Finished`).
    pub id: Option<String>,
    /// Its line.
    pub line: Option<usize>,
    /// What happened.
    #[serde(flatten)]
    pub kind: BatchEventKind,
    /// The totals after it.
    pub progress: Progress,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_this_runs_pace() {
        let progress = Progress {
            total: 10,
            done: 4,
            queued: 4,
            in_flight: 2,
            finished_before: 2,
            ..Progress::default()
        };
        // Two finished in this run in 10 s; six left.
        assert_eq!(
            progress.eta(Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        let fresh = Progress {
            finished_before: 4,
            ..progress.clone()
        };
        assert_eq!(fresh.eta(Duration::from_secs(10)), None);
        let over = Progress {
            queued: 0,
            in_flight: 0,
            ..progress
        };
        assert_eq!(over.eta(Duration::from_secs(1)), Some(Duration::ZERO));
    }

    #[test]
    fn events_serialize_flat_for_a_json_progress_stream() {
        let event = BatchEvent {
            id: Some("hero".into()),
            line: Some(3),
            kind: BatchEventKind::Submitting { attempt: 2 },
            progress: Progress {
                total: 10,
                done: 4,
                in_flight: 1,
                cost: Cost::usd("0.0492".parse().unwrap()),
                ..Progress::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "id": "hero", "line": 3, "event": "submitting", "attempt": 2,
                "progress": {
                    "total": 10, "done": 4, "failed": 0, "unknown": 0, "pending": 0,
                    "in_flight": 1, "queued": 0, "finished_before": 0,
                    "cost": {"usd": "0.0492", "credits": 0}
                }
            })
        );
    }
}
