//! Batches that survive a crash without paying twice: hundreds or thousands of requests, each
//! journaled in SQLite before and after every paid step, run with bounded concurrency, and
//! resumed by running the same batch again.
//!
//! ```no_run
//! use imggen_core::Imggen;
//! use imggen_core::batch::{self, BatchOptions, BatchRunner, RequestDefaults};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let imggen = Imggen::from_env()?;
//! let input = batch::input::read("prompts.jsonl".as_ref(), &RequestDefaults::new())?;
//! let options = BatchOptions::new("out")
//!     .concurrency(16)
//!     .on_event(|event| eprintln!("{:?} {:?}", event.kind, event.progress));
//! let report = BatchRunner::new(imggen, options).run(input).await?;
//! println!("{} done, {} failed, cost {}", report.progress.done, report.progress.failed, report.cost());
//! for unknown in &report.unknown {
//!     eprintln!("{} may have been charged: {}", unknown.id, unknown.reason);
//! }
//! # Ok(()) }
//! ```
//!
//! - **Input** ([`input`]): one JSON request per line, merged over [`RequestDefaults`]; every
//!   invalid line is reported with its number before anything is sent
//!   ([`BatchError::InvalidInput`]), unless [`BatchOptions::skip_invalid`]. Before anything is
//!   sent, every request is also planned against its providers, so a ratio a provider cannot
//!   make is an invalid line too.
//! - **Journal** ([`journal`]): `DIR/imggen-journal.sqlite` by default. A request is written
//!   `submitting` before its create is sent, each task the moment its create answers, and
//!   `submitted`, `done` or `failed` after. WAL, synced on every commit, one transaction per
//!   change, locked against a second process.
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
//!   regenerated from the journal and written atomically at the end of every run. Images go
//!   to `DIR`, named after their task.
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
    DEFAULT_JOURNAL_NAME, Journal, JournalEntry, JournalError, JournalTask, RequestState,
    TaskOutcome,
};
pub use results::{RESULTS_FILE, ResultLine, ResultStatus};

pub use events::{BatchEvent, BatchEventKind, Progress};
pub use options::{BatchOptions, DEFAULT_CONCURRENCY, DEFAULT_RECONCILE_GRACE, EventCallback};
pub use report::{BatchError, BatchReport, UnknownRequest};
pub use runner::BatchRunner;

const ORPHAN_NOT_SENT: &str =
    "no longer in the batch file: not sent (tasks it already has are still collected)";

const UNKNOWN_AFTER_STOP: &str =
    "the process stopped while a create was being sent: it may have made (and charged) a task";

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

/// A request of this run.
#[derive(Debug)]
struct Item {
    request: BatchRequest,
    /// Journaled, but no longer in the batch file: its paid tasks are collected, nothing new
    /// is sent for it.
    orphan: bool,
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

#[derive(Debug, Default)]
struct Tracker {
    rows: HashMap<String, (Category, Cost)>,
    progress: Progress,
}

fn minus(a: Cost, b: Cost) -> Cost {
    Cost {
        usd: imggen_types::Usd::new(a.usd.amount() - b.usd.amount()),
        credits: imggen_types::Credits(a.credits.0.saturating_sub(b.credits.0)),
    }
}

impl Tracker {
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

    fn set(&mut self, id: &str, category: Category, cost: Cost) {
        match self.rows.insert(id.to_owned(), (category, cost)) {
            Some((old, old_cost)) => {
                let counter = self.counter(old);
                *counter = counter.saturating_sub(1);
                self.progress.cost = minus(self.progress.cost, old_cost);
            }
            None => self.progress.total += 1,
        }
        *self.counter(category) += 1;
        self.progress.cost = self.progress.cost + cost;
    }

    fn set_category(&mut self, id: &str, category: Category) {
        let cost = self.rows.get(id).map_or(Cost::ZERO, |(_, cost)| *cost);
        self.set(id, category, cost);
    }

    fn set_cost(&mut self, id: &str, cost: Cost) {
        let category = self.rows.get(id).map_or(Category::InFlight, |(c, _)| *c);
        self.set(id, category, cost);
    }
}

/// One run's shared state.
struct Run {
    imggen: Imggen,
    options: BatchOptions,
    out_dir: PathBuf,
    journal: Arc<Journal>,
    items: HashMap<String, Item>,
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
