//! `results.jsonl`: one line per request of the batch, in input order, regenerated from the
//! journal at the end of every run (so it is complete after a resume) and written atomically,
//! a page of the journal at a time (a million lines are never in memory).
//!
//! ```text
//! {"id":"1","line":1,"status":"done","provider":"runblob","model":"chatgpt-image-1.5","prompt":"a red fox","task_ids":["dc62d83d-…"],"files":["1-1.png"],"cost":{"usd":"0.0123","credits":0},"error":null,"saved":[{"worker":"render-2:4242","dir":"/data/renders"}]}
//! {"id":"hero","line":2,"status":"unknown","provider":"gptimg","model":null,"prompt":"a lighthouse","task_ids":[],"files":[],"cost":{"usd":"0","credits":0},"error":"gptimg create: no answer in time; …","saved":[]}
//! ```
//!
//! `status` is `done` (every image on disk), `failed` (a task failed — refunded — or fewer tasks
//! were accepted than asked for), `unknown` (a create's answer was lost and may have been
//! charged: see the error, and resubmit only knowingly), `pending` (not finished in this run —
//! a deadline, a cancellation, a refusal that charged nothing: running the batch again carries
//! on) or `skipped_invalid` (the line was invalid and the batch ran without it). `files` are
//! names inside the output folder of the worker that saved them (`saved`: its name and that
//! folder — workers sharing a journal in PostgreSQL each have their own); `cost` is exact
//! (decimal dollars as a string, gptimg credits as an integer) and leaves out refunded tasks
//! and tasks whose charge is unknown. `model` is the one the provider named for the task (or
//! the line asked for; `null`: the provider's default) and `prompt` the line's.
//!
//! While a run goes on, [`BatchOptions::watch_results`](super::BatchOptions::watch_results)
//! hands the same lines out as they stand (a gallery page refreshed as it fills): a request
//! whose create is under way is `pending` there, not `unknown`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::input::LineError;

use crate::batch::journal::{Journal, JournalEntry, JournalError, RequestState, SavedBy};
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
    /// The model its tasks ran on, as the provider names it, or the one the line asked for
    /// (`None`: the provider's default, not named by the provider).
    #[serde(default)]
    pub model: Option<String>,
    /// What the line asked to draw (empty for an invalid line).
    #[serde(default)]
    pub prompt: String,
    /// Its tasks' ids, in the order they were recorded.
    pub task_ids: Vec<String>,
    /// Its images, as file names inside the output folder `saved` names.
    pub files: Vec<String>,
    /// What it cost, exactly.
    pub cost: Cost,
    /// Why it is not done, when it is not.
    pub error: Option<String>,
    /// Which worker saved its files, in which folder (one entry per worker and folder): a
    /// batch several machines drained has its files in each one's output folder.
    #[serde(default)]
    pub saved: Vec<SavedBy>,
}

impl ResultLine {
    /// The line of a journaled request, once the run is over.
    pub fn of_entry(entry: &JournalEntry) -> Self {
        Self::with_status(entry, ResultStatus::of(entry.state))
    }

    /// The line of a journaled request while a run goes on: a create under way is `pending`
    /// (it becomes `unknown` only if the run ends before its answer).
    pub fn of_entry_live(entry: &JournalEntry) -> Self {
        let status = match entry.state {
            RequestState::Submitting => ResultStatus::Pending,
            state => ResultStatus::of(state),
        };
        Self::with_status(entry, status)
    }

    fn with_status(entry: &JournalEntry, status: ResultStatus) -> Self {
        ResultLine {
            id: entry.id.clone(),
            line: entry.line,
            status,
            provider: entry
                .provider
                .or_else(|| entry.tasks.first().map(|task| task.handle.provider)),
            model: entry
                .tasks
                .iter()
                .find_map(|task| task.handle.model.clone())
                .or_else(|| entry.request.model.clone()),
            prompt: entry.request.prompt.clone(),
            task_ids: entry
                .tasks
                .iter()
                .map(|task| task.handle.task_id.clone())
                .collect(),
            files: entry.files(),
            saved: entry
                .tasks
                .iter()
                .filter_map(|task| task.saved.clone())
                .fold(Vec::new(), |mut saved, by| {
                    if !saved.contains(&by) {
                        saved.push(by);
                    }
                    saved
                }),
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
            id: skipped_id(error),
            line: error.line,
            status: ResultStatus::SkippedInvalid,
            provider: None,
            model: None,
            prompt: String::new(),
            task_ids: Vec::new(),
            files: Vec::new(),
            saved: Vec::new(),
            cost: Cost::ZERO,
            error: Some(error.problem.clone()),
        }
    }
}

/// The file's text: one JSON object per line.
pub fn to_jsonl(lines: &[ResultLine]) -> String {
    let mut text = Vec::new();
    for line in lines {
        // Into memory, plain data: writing cannot fail.
        let _ = write_line(&mut text, line);
    }
    String::from_utf8(text).unwrap_or_default()
}

/// One line of the file: the JSON object and its newline.
fn write_line(out: &mut dyn std::io::Write, line: &ResultLine) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// Reads a `results.jsonl`.
pub fn read(path: &Path) -> std::io::Result<Vec<ResultLine>> {
    stream(path)?.collect()
}

/// Reads a `results.jsonl` a line at a time (a million lines are never in memory at once).
pub fn stream(
    path: &Path,
) -> std::io::Result<impl Iterator<Item = std::io::Result<ResultLine>> + use<>> {
    use std::io::BufRead as _;
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    Ok(file
        .lines()
        .filter(|line| line.as_ref().map_or(true, |line| !line.trim().is_empty()))
        .map(|line| {
            serde_json::from_str(&line?)
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
        }))
}

/// Lines of each kind that is not done kept in a [`ResultSummary`], for messages.
pub const EXAMPLES: usize = 20;

/// The counts of `results.jsonl`, taken as it is written, with its first lines of each kind
/// that needs attention: what a report holds instead of every line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ResultSummary {
    /// Lines.
    pub total: usize,
    /// Requests done.
    pub done: usize,
    /// Requests failed.
    pub failed: usize,
    /// Requests of unknown outcome.
    pub unknown: usize,
    /// Requests not finished.
    pub pending: usize,
    /// Of those, requests with tasks (paid for, still to collect).
    pub waiting: usize,
    /// Invalid lines skipped.
    pub skipped_invalid: usize,
    /// What the batch cost, over every run.
    pub cost: Cost,
    /// The first [`EXAMPLES`] lines of each status but `done` (pending ones with tasks and
    /// without counted apart), in line order.
    pub examples: Vec<ResultLine>,
}

impl ResultSummary {
    /// Lines with this status.
    pub fn count(&self, status: ResultStatus) -> usize {
        match status {
            ResultStatus::Done => self.done,
            ResultStatus::Failed => self.failed,
            ResultStatus::Unknown => self.unknown,
            ResultStatus::Pending => self.pending,
            ResultStatus::SkippedInvalid => self.skipped_invalid,
        }
    }

    /// The kept lines with this status (`tasks`: only those with tasks, or only those
    /// without).
    pub fn examples(
        &self,
        status: ResultStatus,
        tasks: Option<bool>,
    ) -> impl Iterator<Item = &ResultLine> {
        self.examples.iter().filter(move |line| {
            line.status == status && tasks.is_none_or(|has| line.task_ids.is_empty() != has)
        })
    }

    /// Counts a line, and keeps it when it is among the first of its kind.
    pub fn add(&mut self, line: &ResultLine) {
        self.total += 1;
        self.cost = self.cost + line.cost;
        let has_tasks = !line.task_ids.is_empty();
        match line.status {
            ResultStatus::Done => {
                self.done += 1;
                return;
            }
            ResultStatus::Failed => self.failed += 1,
            ResultStatus::Unknown => self.unknown += 1,
            ResultStatus::Pending => {
                self.pending += 1;
                self.waiting += usize::from(has_tasks);
            }
            ResultStatus::SkippedInvalid => self.skipped_invalid += 1,
        }
        if self.examples(line.status, Some(has_tasks)).count() < EXAMPLES {
            self.examples.push(line.clone());
        }
    }
}

/// Requests read from the journal at a time while writing the file.
const PAGE: usize = 1_000;

/// Writes the file atomically from the journal, a page at a time, with the `skipped` lines
/// (in line order) in their places: whole or not at all, even if the process dies meanwhile.
pub(crate) fn write_from_journal(
    dir: &Path,
    journal: &Journal,
    skipped: &[LineError],
) -> Result<(std::path::PathBuf, ResultSummary), imggen_http::fs::WriteError> {
    let mut summary = ResultSummary::default();
    let path = imggen_http::fs::write_atomically_with(dir, RESULTS_FILE, |out| {
        for line in ResultLines::new(journal, skipped, false) {
            let line = line.map_err(std::io::Error::other)?;
            write_line(&mut *out, &line)?;
            summary.add(&line);
        }
        Ok(())
    })?;
    Ok((path, summary))
}

/// Every line of a batch's results, in line order, read from its journal a page at a time
/// (with the invalid lines the run skipped in their places): what `results.jsonl` holds, or
/// — handed to [`BatchOptions::watch_results`](super::BatchOptions::watch_results) while a
/// run goes on — what it would hold now.
pub struct ResultLines<'a> {
    journal: &'a Journal,
    skipped: std::iter::Peekable<std::slice::Iter<'a, LineError>>,
    page: std::vec::IntoIter<JournalEntry>,
    /// The last request read, where the next page starts.
    after: Option<(usize, String)>,
    /// The next journaled request, read but not yet handed out.
    next: Option<JournalEntry>,
    /// Every page is read (or reading one failed).
    exhausted: bool,
    live: bool,
}

impl<'a> ResultLines<'a> {
    pub(crate) fn new(journal: &'a Journal, skipped: &'a [LineError], live: bool) -> Self {
        ResultLines {
            journal,
            skipped: skipped.iter().peekable(),
            page: Vec::new().into_iter(),
            after: None,
            next: None,
            exhausted: false,
            live,
        }
    }

    /// Reads the next page when the current one is used up; `Err` when the journal cannot
    /// be read (the lines end there).
    fn fill(&mut self) -> Result<(), JournalError> {
        while self.next.is_none() && !self.exhausted {
            if let Some(entry) = self.page.next() {
                self.next = Some(entry);
                break;
            }
            let after = self.after.as_ref().map(|(line, id)| (*line, id.as_str()));
            let page = self.journal.page(&[], after, PAGE).inspect_err(|_| {
                self.exhausted = true;
            })?;
            match page.last() {
                Some(last) => self.after = Some((last.line, last.id.clone())),
                None => self.exhausted = true,
            }
            self.page = page.into_iter();
        }
        Ok(())
    }
}

impl Iterator for ResultLines<'_> {
    type Item = Result<ResultLine, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(error) = self.fill() {
            return Some(Err(error));
        }
        let skipped_first = match (&self.next, self.skipped.peek()) {
            (Some(entry), Some(error)) => {
                (error.line, skipped_id(error).as_str()) < (entry.line, entry.id.as_str())
            }
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if skipped_first {
            return self
                .skipped
                .next()
                .map(|error| Ok(ResultLine::skipped(error)));
        }
        let entry = self.next.take()?;
        Some(Ok(if self.live {
            ResultLine::of_entry_live(&entry)
        } else {
            ResultLine::of_entry(&entry)
        }))
    }
}

/// The id a skipped line is listed under.
fn skipped_id(error: &LineError) -> String {
    error.id.clone().unwrap_or_else(|| error.line.to_string())
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
            "{\"id\":\"4\",\"line\":4,\"status\":\"skipped_invalid\",\"provider\":null,\"model\":null,\"prompt\":\"\",\"task_ids\":[],\"files\":[],\"cost\":{\"usd\":\"0\",\"credits\":0},\"error\":\"prompt is missing\",\"saved\":[]}\n"
        );
    }
}
