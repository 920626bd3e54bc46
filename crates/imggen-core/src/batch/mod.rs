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

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::{RwLock, Semaphore};

use crate::download::{DownloadOptions, ImageData};
use crate::error::Error;
use crate::handle::{self, RequestSummary, TaskHandle};
use crate::plan::PlanOptions;
use crate::provider::ProviderId;
use crate::reconcile::LostTaskSearch;
use crate::status::{TaskState, TaskStatus};
use crate::submit::SubmitOptions;
use crate::wait::{PollSchedule, WaitOptions};
use crate::webhook::WebhookHub;
use crate::{CancellationToken, Cost, Imggen};

pub use input::{BatchInput, BatchRequest, InputErrors, LineError, RequestDefaults};
pub use journal::{
    DEFAULT_JOURNAL_NAME, Journal, JournalEntry, JournalError, JournalTask, RequestState,
    TaskOutcome,
};
pub use results::{RESULTS_FILE, ResultLine, ResultStatus};

/// Requests in progress at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long after a create was sent (or its answer lost) the provider's task list is read
/// for it, by default: longer than a create can take (imggen's request timeout is 60 s), so
/// a create still being handled cannot be taken for one that never arrived.
pub const DEFAULT_RECONCILE_GRACE: Duration = Duration::from_secs(90);

/// Creates started for one request in one run, at most, when each is lost and then proved
/// never to have arrived.
const MAX_ROUNDS: u32 = 3;

/// Called with every [`BatchEvent`].
pub type EventCallback = Arc<dyn Fn(&BatchEvent) + Send + Sync>;

/// How to run a batch.
#[derive(Clone)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Where images, `results.jsonl` and (by default) the journal go. Created if missing.
    pub out_dir: PathBuf,
    /// The journal (default `out_dir/imggen-journal.sqlite`).
    pub journal: Option<PathBuf>,
    /// Requests in progress at once — submitting, waiting or downloading (default 8). Every
    /// request on one key also shares that key's request budget.
    pub concurrency: usize,
    /// How long to wait for each task in this run (default: the provider's
    /// [`Provider::default_deadline`](crate::Provider::default_deadline)). A task still running then stays
    /// `submitted`, to be waited on by the next run.
    pub deadline: Option<Duration>,
    /// The whole run's time limit, from when it starts: no create is sent after it, and every
    /// request in flight then — a create, a status read, a download — ends by it (a create
    /// cut off has an unknown outcome, never resubmitted). What is unfinished stays journaled
    /// for the next run. `None`: no limit.
    pub time_limit: Option<Duration>,
    /// A poll schedule instead of the configured one.
    pub schedule: Option<PollSchedule>,
    /// Stops the run: nothing new is sent, waits stop, and every request stays where the
    /// journal says — the next run carries on.
    pub cancel: Option<CancellationToken>,
    /// Webhook events, to shorten waits.
    pub events: Option<WebhookHub>,
    /// Resubmit requests whose outcome is unknown at the start of the run (the CLI's
    /// `--resubmit-unknown`). They may already be paid for: off by default.
    pub resubmit_unknown: bool,
    /// Run the valid lines when some are invalid (default: an invalid line stops the batch
    /// before anything is sent).
    pub skip_invalid: bool,
    /// How long after a create was sent, or its answer lost, the provider's task list is read
    /// for it (default [`DEFAULT_RECONCILE_GRACE`]).
    pub reconcile_grace: Duration,
    /// Entries of a provider's task list read at most per lost create
    /// (default [`crate::reconcile::DEFAULT_MAX_ENTRIES`]).
    pub max_list_entries: usize,
    /// The largest image accepted, in bytes.
    pub max_image_bytes: u64,
    /// Called with every event.
    pub on_event: Option<EventCallback>,
}

impl fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchOptions")
            .field("out_dir", &self.out_dir)
            .field("journal", &self.journal)
            .field("concurrency", &self.concurrency)
            .field("time_limit", &self.time_limit)
            .field("deadline", &self.deadline)
            .field("schedule", &self.schedule)
            .field("resubmit_unknown", &self.resubmit_unknown)
            .field("skip_invalid", &self.skip_invalid)
            .field("reconcile_grace", &self.reconcile_grace)
            .field("max_list_entries", &self.max_list_entries)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

impl BatchOptions {
    /// The defaults, writing to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        BatchOptions {
            out_dir: out_dir.into(),
            journal: None,
            concurrency: DEFAULT_CONCURRENCY,
            deadline: None,
            time_limit: None,
            schedule: None,
            cancel: None,
            events: None,
            resubmit_unknown: false,
            skip_invalid: false,
            reconcile_grace: DEFAULT_RECONCILE_GRACE,
            max_list_entries: crate::reconcile::DEFAULT_MAX_ENTRIES,
            max_image_bytes: crate::download::DEFAULT_MAX_DOWNLOAD_BYTES,
            on_event: None,
        }
    }

    /// Sets the whole run's time limit.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Sets the journal's path.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Sets how many requests are in progress at once.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the wait's deadline per task.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the poll schedule.
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets the webhook hub.
    pub fn events(mut self, hub: WebhookHub) -> Self {
        self.events = Some(hub);
        self
    }

    /// Sets whether requests of unknown outcome are resubmitted.
    pub fn resubmit_unknown(mut self, resubmit: bool) -> Self {
        self.resubmit_unknown = resubmit;
        self
    }

    /// Sets whether invalid lines are skipped.
    pub fn skip_invalid(mut self, skip: bool) -> Self {
        self.skip_invalid = skip;
        self
    }

    /// Sets how long after a create its provider's task list is read.
    pub fn reconcile_grace(mut self, grace: Duration) -> Self {
        self.reconcile_grace = grace;
        self
    }

    /// Sets the bound on task-list entries read per lost create.
    pub fn max_list_entries(mut self, entries: usize) -> Self {
        self.max_list_entries = entries;
        self
    }

    /// Sets the largest image accepted, in bytes.
    pub fn max_image_bytes(mut self, bytes: u64) -> Self {
        self.max_image_bytes = bytes;
        self
    }

    /// Calls `callback` with every event.
    pub fn on_event(mut self, callback: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(callback));
        self
    }

    /// The journal's path.
    pub fn journal_path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| self.out_dir.join(DEFAULT_JOURNAL_NAME))
    }
}

/// Running totals, in every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// Requests in the batch (valid lines, and journaled requests no longer in the file).
    pub total: usize,
    /// Requests done.
    pub done: usize,
    /// Requests failed.
    pub failed: usize,
    /// Requests whose create's outcome is unknown.
    pub unknown: usize,
    /// Requests this run stopped without finishing (a deadline, a cancellation, a refusal
    /// that charged nothing): the next run carries on.
    pub pending: usize,
    /// Requests being submitted, waited on or downloaded now.
    pub in_flight: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Requests that were already done, failed or unknown when the run started.
    pub finished_before: usize,
    /// What the batch has cost so far: every charge, less refunds.
    pub cost: Cost,
}

impl Progress {
    /// Requests this run will not touch again: done, failed, unknown or pending.
    pub fn finished(&self) -> usize {
        self.done + self.failed + self.unknown + self.pending
    }

    /// The time left, from the pace of this run so far (`elapsed` since it started): `None`
    /// until a request has finished in this run.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let remaining = self.queued + self.in_flight;
        if remaining == 0 {
            return Some(Duration::ZERO);
        }
        let finished = self.finished().saturating_sub(self.finished_before);
        if finished == 0 || elapsed.is_zero() {
            return None;
        }
        Some(elapsed.mul_f64(remaining as f64 / finished as f64))
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
// A status event carries its handle and state by value: events are handed out one at a
// time and dropped, so boxing would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum BatchEventKind {
    /// The journal is read and the run begins.
    Started,
    /// A create is about to be sent (journaled first).
    Submitting {
        /// The how-many-th create of this request, over every run.
        attempt: u32,
    },
    /// Its tasks exist (journaled).
    Submitted {
        /// Their handles.
        handles: Vec<TaskHandle>,
    },
    /// A status was read while waiting.
    Status {
        /// The task.
        handle: TaskHandle,
        /// Where it is.
        state: TaskState,
    },
    /// The provider's task list is being read for a lost create.
    Reconciling,
    /// Tasks of a lost create were found in the provider's task list.
    Adopted {
        /// Their handles.
        handles: Vec<TaskHandle>,
    },
    /// Every image is on disk.
    Done {
        /// The files.
        files: Vec<PathBuf>,
    },
    /// The request failed.
    Failed {
        /// Why.
        error: String,
    },
    /// The outcome of a create is unknown: it may have been charged.
    Unknown {
        /// What is known.
        reason: String,
    },
    /// The run stopped without finishing the request; the next run carries on.
    Pending {
        /// Why.
        reason: String,
    },
    /// The run is over.
    Finished,
}

/// One event of a run, with the running totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchEvent {
    /// The request it is about (none for `Started` and `Finished`).
    pub id: Option<String>,
    /// Its line.
    pub line: Option<usize>,
    /// What happened.
    #[serde(flatten)]
    pub kind: BatchEventKind,
    /// The totals after it.
    pub progress: Progress,
}

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
    /// One line per request, as written to `results.jsonl`.
    pub results: Vec<ResultLine>,
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
    /// Requests of unknown outcome resubmitted in this run ([`BatchOptions::resubmit_unknown`]).
    pub resubmitted: Vec<String>,
    /// Requests already done when the run started.
    pub skipped_done: usize,
}

impl BatchReport {
    /// Requests with this status.
    pub fn count(&self, status: ResultStatus) -> usize {
        self.results
            .iter()
            .filter(|line| line.status == status)
            .count()
    }

    /// What the batch cost, over every run.
    pub fn cost(&self) -> Cost {
        self.results.iter().map(|line| line.cost).sum()
    }

    /// Whether every request is done.
    pub fn is_complete(&self) -> bool {
        self.results
            .iter()
            .all(|line| line.status == ResultStatus::Done)
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

/// Runs batches with one [`Imggen`] (and so one request budget per key).
#[derive(Clone, Debug)]
pub struct BatchRunner {
    imggen: Imggen,
    options: BatchOptions,
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

impl BatchRunner {
    /// A runner of batches through `imggen`.
    pub fn new(imggen: Imggen, options: BatchOptions) -> Self {
        BatchRunner { imggen, options }
    }

    /// The options.
    pub fn options(&self) -> &BatchOptions {
        &self.options
    }

    /// The requests no provider of their route can serve as asked (a ratio it does not make,
    /// a provider not configured) or whose reference files cannot be read, as invalid lines.
    /// Nothing is sent.
    pub fn check(&self, input: &BatchInput) -> Vec<LineError> {
        input
            .requests
            .iter()
            .filter_map(|request| {
                let invalid = |problem: String| {
                    Some(LineError::new(
                        request.line,
                        Some(request.id.clone()),
                        problem,
                    ))
                };
                let route = self.route(&request.providers);
                if route.is_empty() {
                    return invalid("no provider is configured".to_owned());
                }
                let mut problems = Vec::new();
                let servable = route.iter().any(|provider| {
                    let found = match self.imggen.provider(*provider) {
                        Ok(found) => found,
                        Err(error) => {
                            problems.push(error.to_string());
                            return false;
                        }
                    };
                    match found.plan(&request.request, self.plan_options()) {
                        Ok(_) => true,
                        Err(error) => {
                            problems.push(error.to_string());
                            false
                        }
                    }
                });
                if !servable {
                    return invalid(problems.join("; "));
                }
                // A reference file that cannot be read would fail its line only once earlier
                // lines were paid for: every one is opened now.
                let unreadable: Vec<String> = request
                    .request
                    .references
                    .iter()
                    .filter_map(|reference| match reference {
                        crate::Reference::File(path) => std::fs::File::open(path)
                            .err()
                            .map(|error| format!("reference file {}: {error}", path.display())),
                        _ => None,
                    })
                    .collect();
                if unreadable.is_empty() {
                    None
                } else {
                    invalid(unreadable.join("; "))
                }
            })
            .collect()
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            strictness: self.imggen.inner.strictness,
            allow_extra_tasks: self.imggen.inner.allow_extra_tasks,
        }
    }

    /// The providers a request goes to: its own, or the first configured.
    fn route(&self, providers: &[ProviderId]) -> Vec<ProviderId> {
        if providers.is_empty() {
            self.imggen.providers().into_iter().take(1).collect()
        } else {
            providers.to_vec()
        }
    }

    /// Runs the batch — or resumes it, when its journal exists (see the [module docs](self)).
    ///
    /// Nothing is sent when a line is invalid (unless [`BatchOptions::skip_invalid`]), when
    /// the journal belongs to another batch, or when another process has it open. Requests
    /// that do not finish are not an error: the report says how each one stands.
    pub async fn run(&self, input: BatchInput) -> Result<BatchReport, BatchError> {
        let options = &self.options;
        let until = self.imggen.deadline_from_now(options.time_limit);
        if options.concurrency == 0 {
            return Err(BatchError::Config(
                "the concurrency must be at least 1".into(),
            ));
        }
        let mut invalid = input.invalid;
        let unservable = self.check(&BatchInput {
            requests: input.requests.clone(),
            invalid: Vec::new(),
        });
        let unservable_lines: std::collections::HashSet<usize> =
            unservable.iter().map(|error| error.line).collect();
        let mut requests = input.requests;
        requests.retain(|request| !unservable_lines.contains(&request.line));
        invalid.extend(unservable);
        invalid.sort_by_key(|error| error.line);
        if !invalid.is_empty() && !options.skip_invalid {
            return Err(BatchError::InvalidInput(InputErrors { lines: invalid }));
        }

        let out_dir = options.out_dir.clone();
        // Before anything is sent: the images and results.jsonl must have somewhere to go.
        let probe_dir = out_dir.clone();
        tokio::task::spawn_blocking(move || imggen_http::fs::check_writable_dir(&probe_dir))
            .await
            .map_err(|join| BatchError::Config(format!("the folder check stopped: {join}")))?
            .map_err(|error| BatchError::Io {
                path: error.path,
                source: error.cause,
            })?;
        let journal_path = options.journal_path();
        let journal = Arc::new(Journal::open_with_clock(
            &journal_path,
            Arc::clone(&self.imggen.inner.clock),
        )?);
        // Before this run writes anything: a process that stopped did so after this.
        let previous_activity = journal.last_activity()?;
        journal.plan(&requests)?;
        remove_partial_files(&out_dir);

        let entries = journal.entries()?;
        let mut items: HashMap<String, Item> = requests
            .into_iter()
            .map(|request| {
                (
                    request.id.clone(),
                    Item {
                        request,
                        orphan: false,
                    },
                )
            })
            .collect();
        let mut steps: Vec<(usize, usize, Step, String)> = Vec::new();
        let mut tracker = Tracker::default();
        let mut skipped_done = 0;
        for entry in &entries {
            let item = items.entry(entry.id.clone()).or_insert_with(|| Item {
                request: BatchRequest::new(
                    entry.id.clone(),
                    entry.line,
                    entry.request.clone(),
                    entry.providers.clone(),
                ),
                orphan: true,
            });
            let step = match entry.state {
                RequestState::Done => {
                    let missing = entry
                        .files()
                        .iter()
                        .any(|file| !out_dir.join(file).exists());
                    skipped_done += 1;
                    missing.then_some(Step::Collect)
                }
                RequestState::Failed => None,
                RequestState::Submitted => Some(Step::Collect),
                RequestState::Submitting | RequestState::Unknown => Some(Step::Reconcile {
                    resubmit: options.resubmit_unknown && !item.orphan,
                }),
                RequestState::Planned if item.orphan => {
                    journal.set_error(&entry.id, Some(ORPHAN_NOT_SENT))?;
                    None
                }
                RequestState::Planned => Some(Step::Submit),
            };
            let category = match (entry.state, step) {
                (RequestState::Done, _) => Category::Done,
                (RequestState::Failed, _) => Category::Failed,
                (_, Some(_)) => Category::Queued,
                (RequestState::Unknown | RequestState::Submitting, None) => Category::Unknown,
                (_, None) => Category::Pending,
            };
            tracker.set(&entry.id, category, entry.cost());
            if let Some(step) = step {
                let order = match step {
                    Step::Collect => 0,
                    Step::Reconcile { .. } => 1,
                    Step::Submit => 2,
                };
                steps.push((order, entry.line, step, entry.id.clone()));
            }
        }
        tracker.progress.finished_before = tracker.progress.finished();
        // Paid tasks first: collecting them frees nothing but loses nothing either; then the
        // unknown ones, then new submissions, each group in line order.
        steps.sort_by_key(|(order, line, _, _)| (*order, *line));

        let cancel = options
            .cancel
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token);
        let run = Arc::new(Run {
            imggen: self.imggen.clone(),
            options: options.clone(),
            out_dir: out_dir.clone(),
            journal: Arc::clone(&journal),
            items,
            slots: Semaphore::new(options.concurrency),
            creates: RwLock::new(()),
            tracker: Mutex::new(tracker),
            cancel: cancel.clone(),
            plan_options: self.plan_options(),
            previous_activity,
            adopted: Mutex::new(Vec::new()),
            resubmitted: Mutex::new(Vec::new()),
            until,
        });
        run.emit(None, BatchEventKind::Started);

        let mut running: FuturesUnordered<_> = steps
            .into_iter()
            .map(|(_, _, step, id)| {
                let run = Arc::clone(&run);
                async move {
                    let result = run.step(&id, step).await;
                    (id, result)
                }
            })
            .collect();
        let mut fatal: Option<JournalError> = None;
        while let Some((id, result)) = running.next().await {
            if let Err(error) = result {
                tracing::error!(request = %id, %error, "the journal failed; stopping the batch");
                cancel.cancel();
                fatal.get_or_insert(error);
            }
        }
        if let Some(error) = fatal {
            return Err(BatchError::Journal(error));
        }

        let entries = journal.entries()?;
        let skipped: Vec<LineError> = invalid
            .into_iter()
            .filter(|error| {
                error
                    .id
                    .as_ref()
                    .is_none_or(|id| !entries.iter().any(|entry| &entry.id == id))
            })
            .collect();
        let results = results::lines(&entries, &skipped);
        let results_path =
            results::write(&out_dir, &results)
                .await
                .map_err(|error| BatchError::Io {
                    path: error.path,
                    source: error.cause,
                })?;
        let unknown = entries
            .iter()
            .filter(|entry| {
                matches!(
                    entry.state,
                    RequestState::Unknown | RequestState::Submitting
                )
            })
            .map(|entry| UnknownRequest {
                id: entry.id.clone(),
                line: entry.line,
                prompt: entry.request.prompt.clone(),
                provider: entry.provider,
                providers: entry.providers.clone(),
                attempted_at: entry.submitting_at.map(handle::format_time),
                attempts: entry.attempts,
                task_ids: entry
                    .tasks
                    .iter()
                    .map(|task| task.handle.task_id.clone())
                    .collect(),
                reason: entry
                    .error
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
            })
            .collect();
        run.emit(None, BatchEventKind::Finished);
        let progress = run.progress();
        let adopted = std::mem::take(&mut *lock(&run.adopted));
        let resubmitted = std::mem::take(&mut *lock(&run.resubmitted));
        drop(run);
        Ok(BatchReport {
            results,
            results_path,
            journal_path,
            progress,
            unknown,
            adopted,
            resubmitted,
            skipped_done,
        })
    }
}

const ORPHAN_NOT_SENT: &str =
    "no longer in the batch file: not sent (tasks it already has are still collected)";

const UNKNOWN_AFTER_STOP: &str =
    "the process stopped while a create was being sent: it may have made (and charged) a task";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long to wait still before a provider's task list can be trusted about `entry`'s lost
/// create: `grace` after the latest moment the create may have been sent or answered — its
/// `submitting` time, the time its answer was found lost, and (for a process that stopped)
/// the latest thing the journal recorded before this run, since the process lived until
/// then at least.
fn grace_left(
    now: SystemTime,
    entry: &JournalEntry,
    previous_activity: SystemTime,
    grace: Duration,
) -> Duration {
    let since = entry
        .submitting_at
        .unwrap_or(entry.updated_at)
        .max(entry.updated_at)
        .max(previous_activity);
    grace.saturating_sub(now.duration_since(since).unwrap_or(Duration::ZERO))
}

/// Deletes the temporary files of downloads a killed process left (`.<name>.<16 hex>.part`).
fn remove_partial_files(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if imggen_http::fs::is_temporary_name(name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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

impl Run {
    fn progress(&self) -> Progress {
        lock(&self.tracker).progress.clone()
    }

    fn emit(&self, id: Option<&str>, kind: BatchEventKind) {
        let Some(callback) = &self.options.on_event else {
            return;
        };
        let line = id
            .and_then(|id| self.items.get(id))
            .map(|item| item.request.line);
        let event = BatchEvent {
            id: id.map(str::to_owned),
            line,
            kind,
            progress: self.progress(),
        };
        callback(&event);
    }

    fn entry(&self, id: &str) -> Result<JournalEntry, JournalError> {
        self.journal
            .entry(id)?
            .ok_or_else(|| JournalError::NoSuchRequest {
                path: self.journal.path().to_path_buf(),
                id: id.to_owned(),
            })
    }

    fn item(&self, id: &str) -> Option<&Item> {
        self.items.get(id)
    }

    /// Runs one request's task inside a slot, and accounts for where it ends.
    async fn step(self: &Arc<Self>, id: &str, step: Step) -> Result<(), JournalError> {
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
    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.time_left().is_some_and(|left| left.is_zero())
    }

    /// What is left of [`BatchOptions::time_limit`].
    fn time_left(&self) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(self.imggen.inner.clock.now()))
    }

    /// Reads where the request ended, updates the totals and says so.
    fn settle(&self, id: &str) -> Result<(), JournalError> {
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
        Ok(())
    }

    fn update_cost(&self, entry: &JournalEntry) {
        lock(&self.tracker).set_cost(&entry.id, entry.cost());
    }

    /// Sends the request's missing images — again when a lost create is proved never to have
    /// arrived — then collects them.
    async fn submit(self: &Arc<Self>, id: &str) -> Result<(), JournalError> {
        let Some(item) = self.item(id) else {
            return Ok(());
        };
        if item.orphan {
            // Removed from the batch file: what it paid for is collected, nothing is sent.
            return self.journal.set_error(id, Some(ORPHAN_NOT_SENT));
        }
        for _round in 0..MAX_ROUNDS {
            if self.stopped() {
                return Ok(());
            }
            let entry = self.entry(id)?;
            let missing = entry.images_missing();
            if missing == 0 {
                // Every image already has a task (recorded before a stop): nothing to send.
                if let Some(first) = entry.tasks.first()
                    && entry.state != RequestState::Submitted
                {
                    self.journal
                        .mark_submitted(id, first.handle.provider, &[], None)?;
                }
                return self.collect(id).await;
            }
            let mut request = item.request.request.clone();
            request.n = missing;
            let route = item.request.providers.clone();
            self.journal.mark_submitting(id, &route)?;
            self.emit(
                Some(id),
                BatchEventKind::Submitting {
                    attempt: entry.attempts + 1,
                },
            );
            let journal = Arc::clone(&self.journal);
            let owner = id.to_owned();
            let mut submit =
                SubmitOptions::fallback(route).on_handle(move |handle: &TaskHandle| {
                    if let Err(error) = journal.record_task(&owner, handle) {
                        tracing::error!(
                            request = %owner,
                            handle = %handle.to_json(),
                            %error,
                            "could not journal a paid task: keep this handle to resume it"
                        );
                    }
                });
            submit.deadline = self.time_left();
            let result = {
                let _creates = self.creates.read().await;
                self.imggen.submit(&request, &submit).await
            };
            match result {
                Ok(submission) => {
                    self.journal
                        .mark_submitted(id, submission.provider, &submission.handles, None)
                        .inspect_err(|_| log_unjournaled(id, &submission.handles))?;
                    self.update_cost(&self.entry(id)?);
                    self.emit(
                        Some(id),
                        BatchEventKind::Submitted {
                            handles: submission.handles,
                        },
                    );
                    return self.collect(id).await;
                }
                Err(Error::CreateOutcomeUnknown(lost)) => {
                    self.journal.mark_unknown(
                        id,
                        Some(lost.call.provider),
                        &lost.accepted,
                        &lost.to_string(),
                    )?;
                    self.update_cost(&self.entry(id)?);
                    match self.reconcile(id).await? {
                        Reconciled::Complete => return self.collect(id).await,
                        Reconciled::Absent => continue,
                        Reconciled::Unknown => return self.collect(id).await,
                    }
                }
                Err(error) => {
                    let accepted: Vec<TaskHandle> = error.handles().into_iter().cloned().collect();
                    if let Some(first) = accepted.first() {
                        // Some tasks were created (and charged) before the refusal: collect
                        // them; the request ends failed, short of images.
                        self.journal.mark_submitted(
                            id,
                            first.provider,
                            &accepted,
                            Some(&error.to_string()),
                        )?;
                        self.update_cost(&self.entry(id)?);
                        return self.collect(id).await;
                    }
                    // Nothing was charged: planned again, for the next run.
                    let mut reason = error.to_string();
                    if let Some(advice) = error.advice() {
                        reason = format!("{reason} ({advice})");
                    }
                    self.journal.mark_planned(id, &reason)?;
                    return Ok(());
                }
            }
        }
        self.journal.set_error(
            id,
            Some(&format!(
                "the answers to {MAX_ROUNDS} creates were lost in this run, each proved never to have arrived; run the batch again"
            )),
        )
    }

    /// A request found `submitting` or `unknown` at the start of the run: settle it through
    /// the provider's task list where there is one, resubmit it if the caller said so, and
    /// collect whatever tasks of it are known.
    async fn resume_unknown(
        self: &Arc<Self>,
        id: &str,
        resubmit: bool,
    ) -> Result<(), JournalError> {
        match self.reconcile(id).await? {
            Reconciled::Complete => self.collect(id).await,
            Reconciled::Absent => self.submit(id).await,
            Reconciled::Unknown if resubmit => {
                tracing::warn!(request = %id, "resubmitting a request whose outcome is unknown, as asked");
                lock(&self.resubmitted).push(id.to_owned());
                // Known tasks are collected by the submission; only what is missing is sent.
                self.submit(id).await
            }
            Reconciled::Unknown => self.collect(id).await,
        }
    }

    /// The providers a lost create may have gone to.
    fn suspects(&self, entry: &JournalEntry) -> Vec<ProviderId> {
        if let Some(provider) = entry.provider {
            return vec![provider];
        }
        let route = if entry.providers.is_empty() {
            self.item(&entry.id)
                .map(|item| item.request.providers.clone())
                .unwrap_or_default()
        } else {
            entry.providers.clone()
        };
        if route.is_empty() {
            self.imggen.providers().into_iter().take(1).collect()
        } else {
            route
        }
    }

    /// Waits until the provider's task list can be trusted for this request's lost create.
    async fn grace(&self, id: &str) -> Result<(), JournalError> {
        let entry = self.entry(id)?;
        let suspects = self.suspects(&entry);
        if !suspects.iter().any(|p| self.imggen.lists_recent_tasks(*p)) {
            return Ok(());
        }
        let left = grace_left(
            self.imggen.inner.clock.wall(),
            &entry,
            self.previous_activity,
            self.options.reconcile_grace,
        );
        if !left.is_zero() {
            tracing::info!(request = %id, wait = ?left, "waiting before reading the provider's task list for a lost create");
            let left = self.time_left().map_or(left, |time| time.min(left));
            tokio::select! {
                () = self.cancel.cancelled() => {}
                () = self.imggen.inner.sleeper.sleep(left) => {}
            }
        }
        Ok(())
    }

    /// Settles an `unknown` request through the providers' task lists: adopts what is found,
    /// then `submitted` (all found), `planned` (the rest provably never arrived) or `unknown`.
    async fn reconcile(self: &Arc<Self>, id: &str) -> Result<Reconciled, JournalError> {
        let entry = self.entry(id)?;
        let suspects = self.suspects(&entry);
        let listing: Vec<ProviderId> = suspects
            .iter()
            .copied()
            .filter(|p| self.imggen.lists_recent_tasks(*p))
            .collect();
        let original = match (entry.state, entry.submitting_at) {
            (RequestState::Submitting, Some(at)) => format!(
                "{UNKNOWN_AFTER_STOP} (the create was started at {})",
                handle::format_time(at)
            ),
            (RequestState::Submitting, None) => UNKNOWN_AFTER_STOP.to_owned(),
            _ => entry
                .error
                .clone()
                .unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
        };
        if listing.is_empty() {
            let reason = format!(
                "{original}; {} keeps no task list imggen can read, so it stays unknown: check the provider's dashboard, then resubmit only if no task was made",
                suspects
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
            self.journal.mark_unknown(id, None, &[], &reason)?;
            return Ok(Reconciled::Unknown);
        }
        self.grace(id).await?;
        if self.stopped() {
            return Ok(Reconciled::Unknown);
        }
        self.emit(Some(id), BatchEventKind::Reconciling);
        let _creates = self.creates.write().await;
        let mut conclusive = listing.len() == suspects.len();
        let mut notes: Vec<String> = Vec::new();
        let mut adopted: Vec<TaskHandle> = Vec::new();
        for provider in &listing {
            let entry = self.entry(id)?;
            let missing = entry.images_missing();
            if missing == 0 {
                break;
            }
            let mut request = entry.request.clone();
            request.n = missing;
            let planned = self
                .imggen
                .provider(*provider)
                .map_err(|error| error.to_string())
                .and_then(|found| {
                    found
                        .plan(&request, self.plan_options)
                        .map_err(|error| error.to_string())
                });
            let plan = match planned {
                Ok(plan) => plan,
                Err(error) => {
                    conclusive = false;
                    notes.push(error);
                    continue;
                }
            };
            let sent_at = entry.submitting_at.unwrap_or(entry.updated_at);
            let known = self.journal.tasks_of(*provider)?;
            let older = known
                .iter()
                .filter(|(_, recorded)| *recorded < sent_at)
                .map(|(task, _)| task.clone())
                .collect::<Vec<_>>();
            let mut search =
                LostTaskSearch::new(*provider, request.prompt.clone(), plan.tasks.len())
                    .claimed(known.into_iter().map(|(task, _)| task))
                    .older(older)
                    .max_entries(self.options.max_list_entries);
            search.deadline = self.time_left();
            match self.imggen.find_lost_tasks(&search).await {
                Ok(Some(lost)) => {
                    let summary = RequestSummary::of(&entry.request);
                    for (found, task) in lost.found.iter().zip(plan.tasks.iter()) {
                        let handle = TaskHandle {
                            version: handle::HANDLE_VERSION,
                            provider: *provider,
                            task_id: found.task_id.clone(),
                            model: task.model.clone(),
                            created_at: Some(handle::format_time(sent_at)),
                            // The list does not say what the task cost.
                            cost: None,
                            images_expected: Some(task.images),
                            summary: Some(summary.clone()),
                            webhook: task.webhook.is_some(),
                        };
                        self.journal.adopt_task(id, &handle)?;
                        adopted.push(handle);
                    }
                    if !lost.conclusive {
                        conclusive = false;
                        notes.push(format!(
                            "{provider}'s task list was read to {} entries without settling it",
                            lost.searched
                        ));
                    }
                }
                Ok(None) => conclusive = false,
                Err(error) => {
                    conclusive = false;
                    notes.push(format!("could not read {provider}'s task list: {error}"));
                }
            }
        }
        let entry = self.entry(id)?;
        if !adopted.is_empty() {
            lock(&self.adopted).push(id.to_owned());
            self.emit(
                Some(id),
                BatchEventKind::Adopted {
                    handles: adopted.clone(),
                },
            );
        }
        let provider = entry
            .provider
            .or_else(|| adopted.first().map(|h| h.provider))
            .or_else(|| listing.first().copied());
        if entry.images_missing() == 0
            && let Some(provider) = provider
        {
            self.journal.mark_submitted(id, provider, &[], None)?;
            self.update_cost(&self.entry(id)?);
            return Ok(Reconciled::Complete);
        }
        if conclusive {
            let found = if adopted.is_empty() {
                String::new()
            } else {
                format!(" ({} of its tasks were found)", adopted.len())
            };
            self.journal.mark_planned(
                id,
                &format!(
                    "{original}; the provider's task list proves the lost create never arrived{found}, so it was sent again"
                ),
            )?;
            return Ok(Reconciled::Absent);
        }
        let why = if notes.is_empty() {
            String::new()
        } else {
            format!(": {}", notes.join("; "))
        };
        self.journal.mark_unknown(
            id,
            None,
            &[],
            &format!("{original}; the provider's task list could not settle it{why}"),
        )?;
        Ok(Reconciled::Unknown)
    }

    /// Waits for every task of the request that has not ended, downloads the images of those
    /// that succeeded (again, where files went missing), and finishes the request when all
    /// have ended.
    async fn collect(self: &Arc<Self>, id: &str) -> Result<(), JournalError> {
        let entry = self.entry(id)?;
        let to_collect: Vec<JournalTask> = entry
            .tasks
            .iter()
            .filter(|task| match task.outcome {
                None => true,
                Some(TaskOutcome::Succeeded) => {
                    task.files.iter().any(|f| !self.out_dir.join(f).exists())
                }
                Some(TaskOutcome::Failed) => false,
            })
            .cloned()
            .collect();
        let results = futures_util::future::join_all(
            to_collect.iter().map(|task| self.collect_task(id, task)),
        )
        .await;
        let mut problems = Vec::new();
        for result in results {
            match result {
                Ok(()) => {}
                Err(Shortfall::Journal(error)) => return Err(error),
                Err(Shortfall::Wait(problem)) => problems.push(problem),
            }
        }
        let entry = self.entry(id)?;
        self.update_cost(&entry);
        match entry.state {
            RequestState::Submitted if problems.is_empty() => {
                self.journal.finish(id)?;
            }
            RequestState::Submitted | RequestState::Done if !problems.is_empty() => {
                self.journal.set_error(id, Some(&problems.join("; ")))?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn collect_task(self: &Arc<Self>, id: &str, task: &JournalTask) -> Result<(), Shortfall> {
        let handle = &task.handle;
        let run = Arc::clone(self);
        let owner = id.to_owned();
        let deadline = match (self.options.deadline, self.time_left()) {
            (Some(own), Some(left)) => Some(own.min(left)),
            (own, left) => own.or(left),
        };
        let wait = WaitOptions {
            deadline,
            cancel: Some(self.cancel.clone()),
            schedule: self.options.schedule,
            events: self.options.events.as_ref().map(WebhookHub::subscribe),
            on_status: Some(Arc::new(move |handle: &TaskHandle, status: &TaskStatus| {
                run.emit(
                    Some(&owner),
                    BatchEventKind::Status {
                        handle: handle.clone(),
                        state: status.state.clone(),
                    },
                );
            })),
        };
        let status = self
            .imggen
            .wait(handle, wait)
            .await
            .map_err(|error| Shortfall::Wait(error.to_string()))?;
        match &status.state {
            TaskState::Failed { code, message } => {
                let why = match (code, message) {
                    (Some(code), Some(message)) if code != message => {
                        format!("{code}: {message}")
                    }
                    (Some(code), _) => code.clone(),
                    (None, Some(message)) => message.clone(),
                    (None, None) => "the provider gave no reason".to_owned(),
                };
                self.journal
                    .task_failed(handle.provider, &handle.task_id, &why)?;
            }
            TaskState::Succeeded { .. } => {
                let download =
                    DownloadOptions::to_dir(&self.out_dir).max_bytes(self.options.max_image_bytes);
                let images = self
                    .imggen
                    .download_until(handle, &status, &download, self.until)
                    .await
                    .map_err(|error| Shortfall::Wait(error.to_string()))?;
                let files: Vec<String> = images
                    .iter()
                    .filter_map(|image| match &image.data {
                        ImageData::File(path) => path
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned()),
                        ImageData::Bytes(_) => None,
                    })
                    .collect();
                self.journal
                    .task_succeeded(handle.provider, &handle.task_id, &files)?;
            }
            other => {
                return Err(Shortfall::Wait(format!(
                    "task {handle} ended in a state imggen does not know ({})",
                    other.name()
                )));
            }
        }
        Ok(())
    }
}

fn log_unjournaled(id: &str, handles: &[TaskHandle]) {
    for handle in handles {
        tracing::error!(
            request = %id,
            handle = %handle.to_json(),
            "could not journal a paid task: keep this handle to resume it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run can be spawned on a multi-threaded runtime: this compiles only if its future is
    /// `Send`.
    #[allow(dead_code)]
    fn a_run_is_a_send_future(runner: &BatchRunner) -> impl Send + '_ {
        runner.run(BatchInput::default())
    }

    #[test]
    fn the_eta_follows_this_runs_pace() {
        let progress = Progress {
            total: 10,
            done: 4,
            queued: 4,
            in_flight: 2,
            finished_before: 2,
            ..Progress::default()
        };
        // Two finished in this run in 10 s; six left.
        assert_eq!(
            progress.eta(Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        let fresh = Progress {
            finished_before: 4,
            ..progress.clone()
        };
        assert_eq!(fresh.eta(Duration::from_secs(10)), None);
        let over = Progress {
            queued: 0,
            in_flight: 0,
            ..progress
        };
        assert_eq!(over.eta(Duration::from_secs(1)), Some(Duration::ZERO));
    }

    #[test]
    fn events_serialize_flat_for_a_json_progress_stream() {
        let event = BatchEvent {
            id: Some("hero".into()),
            line: Some(3),
            kind: BatchEventKind::Submitting { attempt: 2 },
            progress: Progress {
                total: 10,
                done: 4,
                in_flight: 1,
                cost: Cost::usd("0.0492".parse().unwrap()),
                ..Progress::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "id": "hero", "line": 3, "event": "submitting", "attempt": 2,
                "progress": {
                    "total": 10, "done": 4, "failed": 0, "unknown": 0, "pending": 0,
                    "in_flight": 1, "queued": 0, "finished_before": 0,
                    "cost": {"usd": "0.0492", "credits": 0}
                }
            })
        );
    }

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

    #[test]
    fn the_task_list_is_read_only_a_grace_period_after_the_create_could_have_been_sent() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs);
        let entry = JournalEntry {
            id: "a".into(),
            line: 1,
            fingerprint: String::new(),
            request: crate::GenerationRequest::new("x"),
            providers: vec![imggen_runblob::provider::ID],
            state: RequestState::Submitting,
            provider: None,
            error: None,
            attempts: 1,
            submitting_at: Some(at(0)),
            updated_at: at(0),
            tasks: Vec::new(),
        };
        let grace = Duration::from_secs(90);
        // Killed at once: 90 s after the create was started.
        assert_eq!(
            grace_left(at(30), &entry, at(0), grace),
            Duration::from_secs(60)
        );
        // The process journaled other things until 50 s: it may have sent the create then.
        assert_eq!(
            grace_left(at(60), &entry, at(50), grace),
            Duration::from_secs(80)
        );
        // Long ago: read the list now.
        assert_eq!(grace_left(at(500), &entry, at(50), grace), Duration::ZERO);
        // An answer found lost at 40 s counts from then.
        let lost = JournalEntry {
            state: RequestState::Unknown,
            updated_at: at(40),
            ..entry
        };
        assert_eq!(
            grace_left(at(100), &lost, at(0), grace),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn only_the_downloaders_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".t1-1.png.0123456789abcdef.part",
            "t1-1.png",
            ".hidden.part",
            "notes.part",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_partial_files(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden.part", "notes.part", "t1-1.png"]);
    }
}
