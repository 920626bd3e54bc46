//! The journal's typed rows: a request ([`JournalEntry`]) and its tasks ([`JournalTask`]),
//! as every store reads them back.

use std::time::SystemTime;

use serde::Serialize;

use crate::cost::Cost;
use crate::handle::TaskHandle;
use crate::provider::ProviderId;
use crate::request::GenerationRequest;

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Nothing sent (or a create the provider's list proved never arrived).
    Planned,
    /// A create is being sent: written before it is. Found at start-up, its outcome is
    /// unknown.
    Submitting,
    /// Tasks exist (and are paid for); waiting for them.
    Submitted,
    /// Every image is on disk.
    Done,
    /// A task failed (the providers refund failed tasks), or fewer tasks were accepted than
    /// asked for.
    Failed,
    /// A create's answer was lost and nothing could prove whether it made a task: it may be
    /// paid for. Resubmitted only when the caller says so.
    Unknown,
}

impl RequestState {
    /// `planned`, `submitting`, `submitted`, `done`, `failed` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Planned => "planned",
            RequestState::Submitting => "submitting",
            RequestState::Submitted => "submitted",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
            RequestState::Unknown => "unknown",
        }
    }

    /// The state named `text` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "planned" => RequestState::Planned,
            "submitting" => RequestState::Submitting,
            "submitted" => RequestState::Submitted,
            "done" => RequestState::Done,
            "failed" => RequestState::Failed,
            "unknown" => RequestState::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    /// Its images are on disk.
    Succeeded,
    /// It failed; the provider refunds it.
    Failed,
}

/// One task of a request, as journaled.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JournalTask {
    /// Its receipt.
    pub handle: TaskHandle,
    /// Images it makes.
    pub images: u32,
    /// When the journal learned of it.
    pub recorded_at: SystemTime,
    /// Whether it was found in the provider's task list rather than answered to a create.
    pub adopted: bool,
    /// How it ended, once it has.
    pub outcome: Option<TaskOutcome>,
    /// Its images, as file names in the output directory.
    pub files: Vec<String>,
    /// Why it failed, or why its images could not be saved.
    pub error: Option<String>,
    /// Who saved its images, and where, once they are saved.
    pub saved: Option<SavedBy>,
}

/// Which worker saved a task's images, and in which folder: the files of a batch drained by
/// several machines are each in one of their output folders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SavedBy {
    /// The worker: its host name and process id (`host:pid`), or what the caller named it.
    pub worker: String,
    /// The output folder the files are in, as an absolute path.
    pub dir: String,
}

/// One request, as journaled.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// Its id.
    pub id: String,
    /// Its line in the batch file.
    pub line: usize,
    /// The fingerprint of the request ([`input::fingerprint`](crate::batch::input::fingerprint)).
    pub fingerprint: String,
    /// What it asks for.
    pub request: GenerationRequest,
    /// The providers it is sent to, in order.
    pub providers: Vec<ProviderId>,
    /// Where it is.
    pub state: RequestState,
    /// The provider that accepted its tasks, or that a lost create was sent to.
    pub provider: Option<ProviderId>,
    /// The latest problem: why it failed, is unknown, or is not finished.
    pub error: Option<String>,
    /// How many times a create was started for it.
    pub attempts: u32,
    /// When its latest create was started (written before the create was sent).
    pub submitting_at: Option<SystemTime>,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// The latest listing (a run's reading of the batch file) that found it in the file: a
    /// request an edited file no longer holds keeps an older one.
    pub listing: u64,
    /// Its tasks, in the order they were recorded.
    pub tasks: Vec<JournalTask>,
}

impl JournalEntry {
    /// Images its tasks make.
    pub fn images_recorded(&self) -> u32 {
        self.tasks.iter().map(|task| task.images).sum()
    }

    /// Images asked for that no recorded task makes.
    pub fn images_missing(&self) -> u32 {
        self.request.n.saturating_sub(self.images_recorded())
    }

    /// The handles of its tasks.
    pub fn handles(&self) -> Vec<TaskHandle> {
        self.tasks.iter().map(|task| task.handle.clone()).collect()
    }

    /// What it costs: the charges of its tasks, less those of failed tasks (refunded).
    /// Tasks whose charge is not known (found in a task list) count as nothing.
    pub fn cost(&self) -> Cost {
        self.tasks
            .iter()
            .filter(|task| task.outcome != Some(TaskOutcome::Failed))
            .filter_map(|task| task.handle.cost)
            .sum()
    }

    /// Every image file of its tasks, in order.
    pub fn files(&self) -> Vec<String> {
        self.tasks
            .iter()
            .flat_map(|task| task.files.iter().cloned())
            .collect()
    }
}

/// The outcome of [`Journal::plan`](super::Journal::plan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Planned {
    /// Requests the journal did not have.
    pub added: usize,
    /// Requests it had, with the same fingerprint.
    pub kept: usize,
    /// Requests it had with another fingerprint but nothing paid (planned, or failed without
    /// a task), replaced by the new request and planned again.
    pub replaced: usize,
}

/// How many requests stand where, and what they cost so far: the totals a run starts from,
/// counted by the store rather than by reading every row into memory.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Tally {
    /// Requests per state, and whether the listing asked about found them in the batch file.
    pub counts: Vec<(RequestState, bool, usize)>,
    /// What every request cost, as [`JournalEntry::cost`] counts it.
    pub cost: Cost,
}

impl Tally {
    /// Requests in `state` (`listed`: only those the listing found, or only the others).
    pub fn count(&self, state: RequestState, listed: Option<bool>) -> usize {
        self.counts
            .iter()
            .filter(|(s, l, _)| *s == state && listed.is_none_or(|listed| listed == *l))
            .map(|(_, _, count)| count)
            .sum()
    }

    /// Every request.
    pub fn total(&self) -> usize {
        self.counts.iter().map(|(_, _, count)| count).sum()
    }
}
