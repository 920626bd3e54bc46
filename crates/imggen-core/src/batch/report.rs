//! How a run ended: the [`BatchReport`], the requests of unknown outcome, and [`BatchError`].

use std::path::PathBuf;

use serde::Serialize;

use super::results::ResultSummary;
use super::{InputErrors, JournalError, LineError, Progress, ResultLine, ResultStatus};
use crate::Cost;
use crate::provider::ProviderId;

/// A request whose create's outcome is unknown, with every fact there is to check it by.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnknownRequest {
    /// Its id.
    pub id: String,
    /// Its line.
    pub line: usize,
    /// What it asked for.
    pub prompt: String,
    /// The provider the lost create went to, when known.
    pub provider: Option<ProviderId>,
    /// The providers it may have gone to.
    pub providers: Vec<ProviderId>,
    /// When the create was started (RFC 3339), to find the task in the provider's dashboard.
    pub attempted_at: Option<String>,
    /// Creates started for it, over every run.
    pub attempts: u32,
    /// Tasks of it that are known (created and charged).
    pub task_ids: Vec<String>,
    /// What happened, and why it could not be settled.
    pub reason: String,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BatchReport {
    /// The counts of `results.jsonl`, and its first lines of each kind that is not done
    /// (every line is in the file: a batch of a million is not held in memory).
    pub summary: ResultSummary,
    /// The invalid lines the run went on without ([`BatchOptions::skip_invalid`](super::BatchOptions::skip_invalid)).
    pub skipped: Vec<LineError>,
    /// Where `results.jsonl` is.
    pub results_path: PathBuf,
    /// Where the journal is.
    pub journal_path: PathBuf,
    /// The totals at the end.
    pub progress: Progress,
    /// Requests whose outcome is unknown.
    pub unknown: Vec<UnknownRequest>,
    /// Requests whose lost creates were found in the provider's task list in this run.
    pub adopted: Vec<String>,
    /// Requests of unknown outcome resubmitted in this run ([`BatchOptions::resubmit_unknown`](super::BatchOptions::resubmit_unknown)).
    pub resubmitted: Vec<String>,
    /// Requests already done when the run started.
    pub skipped_done: usize,
    /// The spending cap ([`BatchOptions::max_cost`](super::BatchOptions::max_cost)) stopped
    /// a create: the requests not sent are left for a run with a higher cap.
    pub cap_reached: bool,
}

impl BatchReport {
    /// Requests with this status.
    pub fn count(&self, status: ResultStatus) -> usize {
        self.summary.count(status)
    }

    /// What the batch cost, over every run.
    pub fn cost(&self) -> Cost {
        self.summary.cost
    }

    /// Whether every request is done.
    pub fn is_complete(&self) -> bool {
        self.summary.done == self.summary.total
    }

    /// Every line of `results.jsonl`, read back from the file.
    pub fn read_results(&self) -> std::io::Result<Vec<ResultLine>> {
        super::results::read(&self.results_path)
    }
}

/// A batch could not run (or stopped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Lines are invalid; nothing was sent.
    #[error(transparent)]
    InvalidInput(InputErrors),
    /// The journal cannot be used. A run that stops on it has sent nothing it did not
    /// journal; a handle that could not be journaled is logged at error level.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The batch file could not be read; nothing was sent.
    #[error("could not read the batch file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("could not write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The options are wrong.
    #[error("imggen batch: {0}")]
    Config(String),
}
