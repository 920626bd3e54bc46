//! Why a journal cannot be used.

use std::path::PathBuf;

use super::RequestState;

/// The journal cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// SQLite or the file system failed.
    #[error("batch journal {}: {problem}", path.display())]
    Storage {
        /// The journal.
        path: PathBuf,
        /// What failed.
        problem: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process has the journal open.
    #[error(
        "batch journal {} is in use by another process (is the same batch already running?); wait for it to finish, or give another journal",
        path.display()
    )]
    Locked {
        /// The journal.
        path: PathBuf,
    },
    /// The file is not an imggen journal, or a newer imggen wrote it.
    #[error("batch journal {}: {problem}", path.display())]
    Format {
        /// The journal.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The journal was written for other requests under the same ids.
    #[error(
        "batch journal {} was written for a different batch: {}; use another output directory or journal, or restore the batch file it was written for",
        path.display(),
        describe_mismatches(mismatches)
    )]
    Mismatch {
        /// The journal.
        path: PathBuf,
        /// `(id, line)` of each request whose journaled request differs.
        mismatches: Vec<(String, usize)>,
    },
    /// A change the state machine does not allow: a bug, refused so that nothing is sent
    /// twice.
    #[error("batch journal {}: request {id:?} cannot go from {from} to {to}", path.display())]
    Transition {
        /// The journal.
        path: PathBuf,
        /// The request.
        id: String,
        /// Where it is.
        from: RequestState,
        /// Where it was asked to go.
        to: RequestState,
    },
    /// No request has this id.
    #[error("batch journal {}: no request {id:?}", path.display())]
    NoSuchRequest {
        /// The journal.
        path: PathBuf,
        /// The id.
        id: String,
    },
    /// A task already belongs to another request.
    #[error(
        "batch journal {}: task {task} already belongs to request {owner:?}, not {id:?}",
        path.display()
    )]
    TaskClaimed {
        /// The journal.
        path: PathBuf,
        /// The request it was to be added to.
        id: String,
        /// `provider:task_id`.
        task: String,
        /// The request it belongs to.
        owner: String,
    },
    /// Another worker of the batch holds the request (this one's lease ran out and was taken
    /// over): nothing is sent for it by this worker.
    #[error(
        "batch journal {}: request {id:?} is no longer this worker's (its lease ran out); another worker carries it on",
        path.display()
    )]
    ClaimLost {
        /// The journal.
        path: PathBuf,
        /// The request.
        id: String,
    },
}

fn describe_mismatches(mismatches: &[(String, usize)]) -> String {
    let shown: Vec<String> = mismatches
        .iter()
        .take(5)
        .map(|(id, line)| format!("request {id:?} (line {line}) differs"))
        .collect();
    let more = mismatches.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
