//! Where a request ended: read back from the journal into the totals and an event.

use super::{
    BatchEventKind, Category, JournalEntry, JournalError, RequestState, Run, UNKNOWN_AFTER_STOP,
    lock,
};

impl Run {
    /// Reads where the request ended, updates the totals and says so.
    pub(super) fn settle(&self, id: &str) -> Result<(), JournalError> {
        let entry = self.entry(id)?;
        let (category, kind) = match entry.state {
            RequestState::Done => (
                Category::Done,
                BatchEventKind::Done {
                    files: entry.files().iter().map(|f| self.out_dir.join(f)).collect(),
                },
            ),
            RequestState::Failed => (
                Category::Failed,
                BatchEventKind::Failed {
                    error: entry.error.clone().unwrap_or_default(),
                },
            ),
            RequestState::Unknown | RequestState::Submitting => (
                Category::Unknown,
                BatchEventKind::Unknown {
                    reason: entry
                        .error
                        .clone()
                        .unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
                },
            ),
            RequestState::Planned | RequestState::Submitted => (
                Category::Pending,
                BatchEventKind::Pending {
                    reason: entry.error.clone().unwrap_or_else(|| {
                        if self.cancel.is_cancelled() {
                            "the run was cancelled".to_owned()
                        } else if self.stopped() {
                            "the run's time limit passed".to_owned()
                        } else {
                            "not finished".to_owned()
                        }
                    }),
                },
            ),
        };
        lock(&self.tracker).set(id, category, entry.cost());
        self.emit(Some(id), kind);
        lock(&self.tracker).release(id);
        Ok(())
    }

    pub(super) fn update_cost(&self, entry: &JournalEntry) {
        lock(&self.tracker).set_cost(&entry.id, entry.cost());
    }
}
