//! One run's bookkeeping: the journal row of a request, the running totals, and the slot each
//! request's step runs in.

use std::sync::Arc;
use std::time::Duration;

use super::{
    BatchEvent, BatchEventKind, Category, JournalEntry, JournalError, Progress, Run, Step, lock,
};

impl Run {
    pub(super) fn progress(&self) -> Progress {
        lock(&self.tracker).progress.clone()
    }

    pub(super) fn emit(&self, id: Option<&str>, kind: BatchEventKind) {
        let Some(callback) = &self.options.on_event else {
            return;
        };
        let line = id.and_then(|id| lock(&self.tracker).line(id));
        let event = BatchEvent {
            id: id.map(str::to_owned),
            line,
            kind,
            progress: self.progress(),
        };
        callback(&event);
    }

    pub(super) fn entry(&self, id: &str) -> Result<JournalEntry, JournalError> {
        self.journal
            .entry(id)?
            .ok_or_else(|| JournalError::NoSuchRequest {
                path: self.journal.path().to_path_buf(),
                id: id.to_owned(),
            })
    }

    /// Whether the batch file no longer holds the request (neither this run's listing nor a
    /// later one — another worker's — found it): what it paid for is collected, nothing new
    /// is sent for it.
    pub(super) fn is_orphan(&self, entry: &JournalEntry) -> bool {
        entry.listing < self.listing
    }

    /// Runs one request's step inside a slot, accounts for where it ends, and gives the
    /// request back: any worker may take it from there (a later run, when it is not
    /// finished).
    pub(super) async fn step(self: &Arc<Self>, id: &str, step: Step) -> Result<(), JournalError> {
        let outcome = self.step_in_slot(id, step).await;
        let released = self.journal.release(id);
        outcome.and(released)
    }

    async fn step_in_slot(self: &Arc<Self>, id: &str, step: Step) -> Result<(), JournalError> {
        if let Step::Reconcile { .. } = step {
            // The grace period is waited out before taking a slot: it holds nothing up.
            self.grace(id).await?;
        }
        let Ok(_slot) = self.slots.acquire().await else {
            return Ok(());
        };
        if self.stopped() {
            self.settle(id)?;
            return Ok(());
        }
        lock(&self.tracker).set_category(id, Category::InFlight);
        let outcome = match step {
            Step::Submit => self.submit(id).await,
            Step::Collect => self.collect(id).await,
            Step::Reconcile { resubmit } => self.resume_unknown(id, resubmit).await,
        };
        // Account for the request even when the journal failed, so totals stay right.
        let settled = self.settle(id);
        outcome.and(settled)
    }

    /// Whether the run was cancelled or its time limit has passed: nothing new starts.
    pub(super) fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.time_left().is_some_and(|left| left.is_zero())
    }

    /// What is left of [`BatchOptions::time_limit`].
    pub(super) fn time_left(&self) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(self.imggen.inner.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cost;
    use crate::batch::Tracker;

    #[test]
    fn totals_follow_each_request_and_its_cost() {
        let mut tracker = Tracker::default();
        let usd = |text: &str| Cost::usd(text.parse().unwrap());
        tracker.set("a", Category::Queued, Cost::ZERO);
        tracker.set("b", Category::Done, usd("0.05"));
        tracker.set_category("a", Category::InFlight);
        tracker.set_cost("a", usd("0.0123"));
        assert_eq!(
            (
                tracker.progress.total,
                tracker.progress.in_flight,
                tracker.progress.queued
            ),
            (2, 1, 0)
        );
        assert_eq!(tracker.progress.cost, usd("0.0623"));
        // A failed task is refunded: the request's cost drops back.
        tracker.set("a", Category::Failed, Cost::ZERO);
        assert_eq!(tracker.progress.cost, usd("0.05"));
        assert_eq!(
            (tracker.progress.failed, tracker.progress.in_flight),
            (1, 0)
        );
    }
}
