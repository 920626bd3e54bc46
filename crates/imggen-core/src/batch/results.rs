//! `results.jsonl`: one line per request of the batch, in input order, regenerated from the
//! journal at the end of every run (so it is complete after a resume) and written atomically.
//!
//! ```text
//! {"id":"1","line":1,"status":"done","provider":"runblob","task_ids":["dc62d83d-…"],"files":["dc62d83d-…-1.png"],"cost":{"usd":"0.0123","credits":0},"error":null}
//! {"id":"hero","line":2,"status":"unknown","provider":"gptimg","task_ids":[],"files":[],"cost":{"usd":"0","credits":0},"error":"gptimg create: no answer in time; …"}
//! ```
//!
//! `status` is `done` (every image on disk), `failed` (a task failed — refunded — or fewer tasks
//! were accepted than asked for), `unknown` (a create's answer was lost and may have been
//! charged: see the error, and resubmit only knowingly), `pending` (not finished in this run —
//! a deadline, a cancellation, a refusal that charged nothing: running the batch again carries
//! on) or `skipped_invalid` (the line was invalid and the batch ran without it). `files` are
//! names inside the output directory; `cost` is exact (decimal dollars as a string, gptimg
//! credits as an integer) and leaves out refunded tasks and tasks whose charge is unknown.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::input::LineError;
use crate::batch::journal::{JournalEntry, RequestState};
use crate::cost::Cost;
use crate::provider::ProviderId;

/// The name of the results file in the output directory.
pub const RESULTS_FILE: &str = "results.jsonl";

/// How a request of the batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Every image is on disk.
    Done,
    /// A task failed (refunded), or fewer tasks were accepted than asked for.
    Failed,
    /// A create's answer was lost: it may have been charged. Resubmitted only on request.
    Unknown,
    /// Not finished in this run; running the batch again carries on.
    Pending,
    /// The line was invalid and skipped.
    SkippedInvalid,
}

impl ResultStatus {
    /// `done`, `failed`, `unknown`, `pending` or `skipped_invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Done => "done",
            ResultStatus::Failed => "failed",
            ResultStatus::Unknown => "unknown",
            ResultStatus::Pending => "pending",
            ResultStatus::SkippedInvalid => "skipped_invalid",
        }
    }

    /// The status of a journaled request.
    pub fn of(state: RequestState) -> Self {
        match state {
            RequestState::Done => ResultStatus::Done,
            RequestState::Failed => ResultStatus::Failed,
            // A request still `submitting` after a run is one whose create never answered.
            RequestState::Unknown | RequestState::Submitting => ResultStatus::Unknown,
            RequestState::Planned | RequestState::Submitted => ResultStatus::Pending,
        }
    }
}

impl std::fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResultLine {
    /// The request's id.
    pub id: String,
    /// Its line in the batch file.
    pub line: usize,
    /// How it stands.
    pub status: ResultStatus,
    /// The provider that accepted its tasks (or that a lost create went to).
    pub provider: Option<ProviderId>,
    /// Its tasks' ids, in the order they were recorded.
    pub task_ids: Vec<String>,
    /// Its images, as file names inside the output directory.
    pub files: Vec<String>,
    /// What it cost, exactly.
    pub cost: Cost,
    /// Why it is not done, when it is not.
    pub error: Option<String>,
}

impl ResultLine {
    /// The line of a journaled request.
    pub fn of_entry(entry: &JournalEntry) -> Self {
        let status = ResultStatus::of(entry.state);
        ResultLine {
            id: entry.id.clone(),
            line: entry.line,
            status,
            provider: entry
                .provider
                .or_else(|| entry.tasks.first().map(|task| task.handle.provider)),
            task_ids: entry
                .tasks
                .iter()
                .map(|task| task.handle.task_id.clone())
                .collect(),
            files: entry.files(),
            cost: entry.cost(),
            error: match status {
                ResultStatus::Done => None,
                _ => entry.error.clone(),
            },
        }
    }

    /// The line of an invalid line that was skipped.
    pub fn skipped(error: &LineError) -> Self {
        ResultLine {
            id: error.id.clone().unwrap_or_else(|| error.line.to_string()),
            line: error.line,
            status: ResultStatus::SkippedInvalid,
            provider: None,
            task_ids: Vec::new(),
            files: Vec::new(),
            cost: Cost::ZERO,
            error: Some(error.problem.clone()),
        }
    }
}

/// The lines, in line order: every journaled request and every skipped line.
pub fn lines(entries: &[JournalEntry], skipped: &[LineError]) -> Vec<ResultLine> {
    let mut lines: Vec<ResultLine> = entries
        .iter()
        .map(ResultLine::of_entry)
        .chain(skipped.iter().map(ResultLine::skipped))
        .collect();
    lines.sort_by(|a, b| a.line.cmp(&b.line).then_with(|| a.id.cmp(&b.id)));
    lines
}

/// The file's text: one JSON object per line.
pub fn to_jsonl(lines: &[ResultLine]) -> String {
    let mut text = String::new();
    for line in lines {
        // Plain data: serialising cannot fail.
        text.push_str(&serde_json::to_string(line).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Reads a `results.jsonl`.
pub fn read(path: &Path) -> std::io::Result<Vec<ResultLine>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
        })
        .collect()
}

/// Writes the file atomically: whole or not at all, even if the process dies meanwhile.
pub(crate) async fn write(
    dir: &Path,
    lines: &[ResultLine],
) -> Result<std::path::PathBuf, imggen_http::fs::WriteError> {
    imggen_http::fs::write_atomically_async(
        dir.to_path_buf(),
        RESULTS_FILE.to_owned(),
        to_jsonl(lines),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_states_map_to_what_a_person_acts_on() {
        assert_eq!(ResultStatus::of(RequestState::Done), ResultStatus::Done);
        assert_eq!(
            ResultStatus::of(RequestState::Submitting),
            ResultStatus::Unknown
        );
        assert_eq!(
            ResultStatus::of(RequestState::Submitted),
            ResultStatus::Pending
        );
        assert_eq!(
            ResultStatus::of(RequestState::Planned),
            ResultStatus::Pending
        );
        let skipped = ResultLine::skipped(&LineError::new(4, None, "prompt is missing"));
        assert_eq!(
            to_jsonl(&[skipped]),
            "{\"id\":\"4\",\"line\":4,\"status\":\"skipped_invalid\",\"provider\":null,\"task_ids\":[],\"files\":[],\"cost\":{\"usd\":\"0\",\"credits\":0},\"error\":\"prompt is missing\"}\n"
        );
    }
}
