//! The journal's rows as a SQL store keeps them — text, integers and JSON — and their reading
//! back into [`JournalEntry`] and [`JournalTask`]: the same for every SQL store (SQLite,
//! PostgreSQL), so a damaged row reads as the same [`JournalError::Format`] whichever holds it.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{JournalEntry, JournalError, JournalTask, RequestState, SavedBy, TaskOutcome};
use crate::handle::TaskHandle;
use crate::provider::ProviderId;

/// The request columns, in the order every store selects them.
pub(super) const REQUEST_COLUMNS: &str = "id, line, fingerprint, request, providers, state, provider, error, attempts, submitting_at, updated_at, listing";

/// The task columns, in the order every store selects them.
pub(super) const TASK_COLUMNS: &str =
    "request_id, handle, images, recorded_at, adopted, outcome, files, error, saved_by, saved_in";

/// A request's row, as stored.
pub(super) struct RequestRow {
    pub id: String,
    pub line: i64,
    pub fingerprint: String,
    pub request: String,
    pub providers: String,
    pub state: String,
    pub provider: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub submitting_at: Option<i64>,
    pub updated_at: i64,
    pub listing: i64,
}

/// A task's row, as stored.
pub(super) struct TaskRow {
    pub request_id: String,
    pub handle: String,
    pub images: i64,
    pub recorded_at: i64,
    pub adopted: bool,
    pub outcome: Option<String>,
    pub files: String,
    pub error: Option<String>,
    pub saved_by: Option<String>,
    pub saved_in: Option<String>,
}

/// A time as stored: milliseconds since the Unix epoch.
pub(super) fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

/// A stored time.
pub(super) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A listing as SQL's signed integer (listings count runs: they never come near the top).
pub(super) fn listing_value(listing: u64) -> i64 {
    i64::try_from(listing).unwrap_or(i64::MAX)
}

/// JSON of a value whose serialisation cannot fail (plain data).
pub(super) fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// A task outcome as stored.
pub(super) fn outcome_text(outcome: TaskOutcome) -> &'static str {
    match outcome {
        TaskOutcome::Succeeded => "succeeded",
        TaskOutcome::Failed => "failed",
    }
}

/// A stored state, or what is wrong with it.
pub(super) fn state(path: &Path, id: &str, text: &str) -> Result<RequestState, JournalError> {
    RequestState::parse(text).ok_or_else(|| {
        corrupt(
            path,
            format!("request {id:?} has the state {text:?}, which imggen does not know"),
        )
    })
}

fn corrupt(path: &Path, problem: String) -> JournalError {
    JournalError::Format {
        path: path.to_path_buf(),
        problem,
    }
}

impl TaskRow {
    /// The task, or what is wrong with the row.
    pub(super) fn into_task(self, path: &Path) -> Result<JournalTask, JournalError> {
        let request_id = &self.request_id;
        let handle = TaskHandle::from_json(&self.handle)
            .map_err(|e| corrupt(path, format!("a task of request {request_id:?}: {e}")))?;
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some("succeeded") => Some(TaskOutcome::Succeeded),
            Some("failed") => Some(TaskOutcome::Failed),
            Some(other) => {
                return Err(corrupt(
                    path,
                    format!("task outcome {other:?} is not known"),
                ));
            }
        };
        let files: Vec<String> = serde_json::from_str(&self.files)
            .map_err(|e| corrupt(path, format!("the files of task {handle}: {e}")))?;
        Ok(JournalTask {
            handle,
            images: u32::try_from(self.images).unwrap_or(1),
            recorded_at: from_millis(self.recorded_at),
            adopted: self.adopted,
            outcome,
            files,
            error: self.error,
            saved: match (self.saved_by, self.saved_in) {
                (Some(worker), Some(dir)) => Some(SavedBy { worker, dir }),
                _ => None,
            },
        })
    }
}

impl RequestRow {
    /// The request with its `tasks`, or what is wrong with the row.
    pub(super) fn into_entry(
        self,
        path: &Path,
        tasks: Vec<JournalTask>,
    ) -> Result<JournalEntry, JournalError> {
        let id = self.id;
        let request = serde_json::from_str(&self.request)
            .map_err(|e| corrupt(path, format!("request {id:?}: {e}")))?;
        let providers: Vec<ProviderId> = serde_json::from_str(&self.providers)
            .map_err(|e| corrupt(path, format!("the providers of request {id:?}: {e}")))?;
        let state = state(path, &id, &self.state)?;
        let provider = self
            .provider
            .map(|p| p.parse::<ProviderId>())
            .transpose()
            .map_err(|e| corrupt(path, format!("request {id:?}: {e}")))?;
        Ok(JournalEntry {
            tasks,
            id,
            line: usize::try_from(self.line).unwrap_or(0),
            fingerprint: self.fingerprint,
            request,
            providers,
            state,
            provider,
            error: self.error,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            submitting_at: self.submitting_at.map(from_millis),
            updated_at: from_millis(self.updated_at),
            listing: u64::try_from(self.listing).unwrap_or(0),
        })
    }
}
