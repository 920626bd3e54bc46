//! Batches that survive a crash without paying twice: up to millions of requests, each
//! journaled in SQLite before and after every paid step, run with bounded concurrency in
//! constant memory, and resumed by running the same batch again.
//!
//! ```no_run
//! use imggen_core::Imggen;
//! use imggen_core::batch::{BatchOptions, BatchRunner, BatchSource, RequestDefaults};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let imggen = Imggen::from_env()?;
//! // Read a line at a time when the batch runs; `BatchInput` (requests in memory) works too.
//! let source = BatchSource::file("prompts.jsonl", RequestDefaults::new());
//! let options = BatchOptions::new("out")
//!     .concurrency(16)
//!     .on_event(|event| eprintln!("{:?} {:?}", event.kind, event.progress));
//! let report = BatchRunner::new(imggen, options).run(source).await?;
//! println!("{} done, {} failed, cost {}", report.progress.done, report.progress.failed, report.cost());
//! for unknown in &report.unknown {
//!     eprintln!("{} may have been charged: {}", unknown.id, unknown.reason);
//! }
//! # Ok(()) }
//! ```
//!
//! - **Input** ([`input`], [`BatchSource`]): one JSON request per line, merged over
//!   [`RequestDefaults`]; every invalid line is reported with its number before anything is
//!   sent ([`BatchError::InvalidInput`]), unless [`BatchOptions::skip_invalid`]. Before
//!   anything is sent, every request is also planned against its providers, so a ratio a
//!   provider cannot make is an invalid line too.
//! - **Memory** stays flat however long the file: it is read a line at a time — once to check
//!   every line (repeated ids are found from a 12-byte hash per line), once to journal them in
//!   transactions of 2,000 — and the runner takes the journal a page at a time, with at most
//!   twice the concurrency of steps in hand. Only invalid lines and requests of unknown
//!   outcome are kept whole, for the report. [`BatchEventKind::Checked`] and
//!   [`BatchEventKind::Journaled`] mark the two passes.
//! - **Journal** ([`journal`]): `DIR/imggen-journal.sqlite` by default. A request is written
//!   `submitting` before its create is sent, each task the moment its create answers, and
//!   `submitted`, `done` or `failed` after. WAL, synced on every commit, one transaction per
//!   change, locked against a second process (in PostgreSQL, shared by claims instead).
//! - **Resume** is running the same batch again: `done` requests are skipped (files that went
//!   missing are downloaded again from their task — no new charge); `submitted` ones are waited
//!   on, never resubmitted; `planned` ones are submitted; `failed` ones are left. A request left
//!   `submitting` has an unknown outcome. Where the provider keeps a list of the key's tasks
//!   (runblob), the list settles it ([`Imggen::find_lost_tasks`](crate::Imggen::find_lost_tasks)):
//!   the task is adopted if found, and the request goes back to `planned` if the list proves
//!   the create never arrived. Otherwise it stays `unknown`, listed in
//!   [`BatchReport::unknown`] with every known fact, and is resubmitted only with
//!   [`BatchOptions::resubmit_unknown`] — it may already be paid for. A create whose answer is
//!   lost during a run is settled the same way, at once.
//! - **Results**: `DIR/results.jsonl` ([`results`]), one line per request in input order,
//!   regenerated from the journal a page at a time and written atomically at the end of every
//!   run; the report keeps its counts and first lines of each kind ([`ResultSummary`]). Images
//!   go to `DIR`, named after their task.
//! - **Progress**: [`BatchOptions::on_event`] receives every [`BatchEvent`] with running totals
//!   ([`Progress`]: done, failed, in flight, cost so far, and an ETA).

pub mod input;
pub mod journal;
pub mod results;

mod collect;
mod events;
mod lost;
mod options;
mod report;
mod run;
mod runner;
mod settle;
mod source;
mod submit;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::sync::{RwLock, Semaphore};

use crate::plan::PlanOptions;
use crate::{CancellationToken, Cost, Imggen};

pub use input::{BatchInput, BatchRequest, InputErrors, LineError, RequestDefaults};
pub use journal::{
    DEFAULT_JOURNAL_NAME, Journal, JournalEntry, JournalError, JournalTask, RequestState, SavedBy,
    Tally, TaskOutcome,
};
pub use results::{RESULTS_FILE, ResultLine, ResultLines, ResultStatus, ResultSummary};

pub use events::{BatchEvent, BatchEventKind, Progress};
pub use options::{
    BatchOptions, DEFAULT_CONCURRENCY, DEFAULT_RECONCILE_GRACE, EventCallback, ResultsCallback,
    ResultsWatch, StoreOpener,
};
pub use report::{BatchError, BatchReport, UnknownRequest};
pub use runner::BatchRunner;
pub use source::BatchSource;

const ORPHAN_NOT_SENT: &str =
    "no longer in the batch file: not sent (tasks it already has are still collected)";

const UNKNOWN_AFTER_STOP: &str =
    "the process stopped while a create was being sent: it may have made (and charged) a task";

/// This machine's name, for saying which worker saved which files: the kernel's host name,
/// else `HOSTNAME`, else `localhost`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a request still needs when the run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Send its create.
    Submit,
    /// Wait for its tasks and download their images.
    Collect,
    /// Settle a create whose outcome is unknown (and resubmit it when asked).
    Reconcile { resubmit: bool },
}

/// How a reconciliation ended.
#[derive(Debug)]
enum Reconciled {
    /// Every task is accounted for: collect them.
    Complete,
    /// The missing creates provably never arrived: send them.
    Absent,
    /// Nothing could be proved (or nothing can be read): the request stays unknown.
    Unknown,
}

/// Where a request stands for the progress totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Queued,
    InFlight,
    Done,
    Failed,
    Unknown,
    Pending,
}

/// A request a step was started for in this run, until it settles.
#[derive(Debug)]
struct Live {
    line: usize,
    category: Category,
    cost: Cost,
}

/// The running totals: counters, and the few requests in flight — not a row per request.
#[derive(Debug, Default)]
struct Tracker {
    live: HashMap<String, Live>,
    progress: Progress,
}

/// Where a journaled request stands for the totals when a run starts.
fn category_at_start(state: RequestState, listed: bool) -> Category {
    match state {
        RequestState::Done => Category::Done,
        RequestState::Failed => Category::Failed,
        // No longer in the batch file: nothing is sent for it.
        RequestState::Planned if !listed => Category::Pending,
        _ => Category::Queued,
    }
}

impl Tracker {
    /// The totals of a journal's tally (the same as reading every row).
    fn from_tally(tally: &Tally) -> Tracker {
        let mut tracker = Tracker::default();
        for &(state, listed, count) in &tally.counts {
            *tracker.counter(category_at_start(state, listed)) += count;
            tracker.progress.total += count;
        }
        tracker.progress.cost = tally.cost;
        tracker
    }

    /// The totals at the end of a run: nothing is queued or in flight any more.
    fn finished(tally: &Tally, finished_before: usize) -> Progress {
        let count = |states: &[RequestState]| -> usize {
            states.iter().map(|state| tally.count(*state, None)).sum()
        };
        Progress {
            total: tally.total(),
            done: count(&[RequestState::Done]),
            failed: count(&[RequestState::Failed]),
            unknown: count(&[RequestState::Submitting, RequestState::Unknown]),
            pending: count(&[RequestState::Planned, RequestState::Submitted]),
            in_flight: 0,
            queued: 0,
            finished_before,
            cost: tally.cost,
        }
    }

    fn counter(&mut self, category: Category) -> &mut usize {
        let progress = &mut self.progress;
        match category {
            Category::Queued => &mut progress.queued,
            Category::InFlight => &mut progress.in_flight,
            Category::Done => &mut progress.done,
            Category::Failed => &mut progress.failed,
            Category::Unknown => &mut progress.unknown,
            Category::Pending => &mut progress.pending,
        }
    }

    /// Starts following a request already counted (by the tally) as `category`.
    fn follow(&mut self, id: &str, line: usize, category: Category, cost: Cost) {
        self.live.insert(
            id.to_owned(),
            Live {
                line,
                category,
                cost,
            },
        );
    }

    /// The line of a request followed.
    fn line(&self, id: &str) -> Option<usize> {
        self.live.get(id).map(|live| live.line)
    }

    fn set(&mut self, id: &str, category: Category, cost: Cost) {
        let (old, old_cost) = match self.live.get_mut(id) {
            Some(live) => (
                Some(std::mem::replace(&mut live.category, category)),
                std::mem::replace(&mut live.cost, cost),
            ),
            None => {
                self.follow(id, 0, category, cost);
                self.progress.total += 1;
                (None, Cost::ZERO)
            }
        };
        if let Some(old) = old {
            let counter = self.counter(old);
            *counter = counter.saturating_sub(1);
        }
        self.progress.cost = self.progress.cost.saturating_sub(old_cost);
        *self.counter(category) += 1;
        self.progress.cost = self.progress.cost + cost;
    }

    fn set_category(&mut self, id: &str, category: Category) {
        let cost = self.live.get(id).map_or(Cost::ZERO, |live| live.cost);
        self.set(id, category, cost);
    }

    fn set_cost(&mut self, id: &str, cost: Cost) {
        let category = self
            .live
            .get(id)
            .map_or(Category::InFlight, |live| live.category);
        self.set(id, category, cost);
    }

    /// Stops following a request that has settled: its totals stay counted.
    fn release(&mut self, id: &str) {
        self.live.remove(id);
    }
}

/// One run's shared state.
struct Run {
    imggen: Imggen,
    options: BatchOptions,
    out_dir: PathBuf,
    /// This worker and its output folder (absolute), recorded with every task it saves.
    saved: SavedBy,
    journal: Arc<Journal>,
    /// This run's listing: a journaled request found only by an older one is no longer in
    /// the batch file — its paid tasks are collected, nothing new is sent for it. (Another
    /// worker's later listing of the same file is newer, never older.)
    listing: u64,
    slots: Semaphore,
    /// Held shared by every submission while its creates are in flight, and exclusively while
    /// a provider's task list is read for a lost create: a task of a create still in flight
    /// would otherwise look like nobody's.
    creates: RwLock<()>,
    tracker: Mutex<Tracker>,
    cancel: CancellationToken,
    plan_options: PlanOptions,
    /// The latest time the journal recorded before this run: a process that stopped did so
    /// after it.
    previous_activity: SystemTime,
    adopted: Mutex<Vec<String>>,
    resubmitted: Mutex<Vec<String>>,
    /// The end of [`BatchOptions::time_limit`], on the injected clock.
    until: Option<Instant>,
    /// What the batch has spent under [`BatchOptions::max_cost`], when it has a cap.
    spending: Option<crate::spend::Spending>,
}

/// Why collecting a task stopped short.
enum Shortfall {
    Journal(JournalError),
    /// The task is paid for and resumable; the message says what happened.
    Wait(String),
}

impl From<JournalError> for Shortfall {
    fn from(error: JournalError) -> Self {
        Shortfall::Journal(error)
    }
}
