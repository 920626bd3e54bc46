//! How to run a batch: [`BatchOptions`] and its defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::results::ResultLines;
use super::{BatchEvent, DEFAULT_JOURNAL_NAME};
use crate::CancellationToken;
use crate::naming::FileNames;
use crate::spend::CostCap;
use crate::wait::PollSchedule;
use crate::webhook::WebhookHub;

/// Requests in progress at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long after a create was sent (or its answer lost) the provider's task list is read
/// for it, by default: longer than a create can take (imggen's request timeout is 60 s), so
/// a create still being handled cannot be taken for one that never arrived.
pub const DEFAULT_RECONCILE_GRACE: Duration = Duration::from_secs(90);

/// Called with every [`BatchEvent`].
pub type EventCallback = Arc<dyn Fn(&BatchEvent) + Send + Sync>;

/// Called with the batch's results as they stand, while a run goes on
/// ([`BatchOptions::watch_results`]).
pub type ResultsCallback = Arc<dyn Fn(&mut ResultLines<'_>) + Send + Sync>;

/// When and what to call with the results while a run goes on.
#[derive(Clone)]
pub struct ResultsWatch {
    /// The least time between two calls.
    pub every: Duration,
    /// What to call.
    pub view: ResultsCallback,
}

/// Opens the journal's store when a run starts: a store other than the SQLite file.
pub type StoreOpener = Arc<
    dyn Fn() -> Result<Box<dyn super::journal::JournalStore>, super::JournalError> + Send + Sync,
>;

/// How to run a batch.
#[derive(Clone)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Where images, `results.jsonl` and (by default) the journal go. Created if missing.
    pub out_dir: PathBuf,
    /// The journal (default `out_dir/imggen-journal.sqlite`).
    pub journal: Option<PathBuf>,
    /// A journal kept elsewhere than a SQLite file (see [`journal_store`](Self::journal_store));
    /// `journal` is then unused.
    pub journal_store: Option<StoreOpener>,
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
    /// The name this worker records with every file it saves (default `host:pid`): with a
    /// journal several workers drain, `results.jsonl` says which one saved what, where.
    pub worker: Option<String>,
    /// The most the batch may spend, over every run of it (what the journal says earlier
    /// runs spent counts, and a create whose outcome is unknown counts as charged): a
    /// request whose price could pass it is not sent, and no later one is either — what was
    /// paid for is still waited for and saved. The cap is held by this process, against
    /// what the journal held when the run started and what it spends itself: workers that
    /// drain one journal together would each hold it on their own (the CLI refuses the two
    /// together).
    pub max_cost: Option<CostCap>,
    /// How images are named (default [`FileNames::by_id`], `<line id>-<n>`, `hero-1.png`):
    /// `{id}` is the line's id, `{n}` counts the request's images. A file already in the
    /// folder is never replaced (the name gets `-2`, `-3`…); a request's own files, saved by
    /// an earlier run and since lost, are written again under their names.
    pub names: FileNames,
    /// The format images are converted to when they come in another (feature `convert`;
    /// default `None`). The journal and `results.jsonl` name the files on disk: the converted
    /// one, then the provider's when kept. An image that cannot be converted is kept as it
    /// came, with a [`BatchEventKind::Warning`](super::BatchEventKind::Warning): the request is
    /// done, not failed.
    #[cfg(feature = "convert")]
    pub conversion: Option<crate::convert::Conversion>,
    /// Called with every event.
    pub on_event: Option<EventCallback>,
    /// Called with the results as they stand while a run goes on (see
    /// [`watch_results`](Self::watch_results)).
    pub watch_results: Option<ResultsWatch>,
}

impl fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchOptions")
            .field("out_dir", &self.out_dir)
            .field("journal", &self.journal)
            .field("journal_store", &self.journal_store.is_some())
            .field("concurrency", &self.concurrency)
            .field("time_limit", &self.time_limit)
            .field("deadline", &self.deadline)
            .field("schedule", &self.schedule)
            .field("resubmit_unknown", &self.resubmit_unknown)
            .field("skip_invalid", &self.skip_invalid)
            .field("reconcile_grace", &self.reconcile_grace)
            .field("max_list_entries", &self.max_list_entries)
            .field("worker", &self.worker)
            .field("max_cost", &self.max_cost)
            .field("names", &self.names.to_string())
            .field("conversion", &self.conversion_for_debug())
            .field("on_event", &self.on_event.is_some())
            .field(
                "watch_results",
                &self.watch_results.as_ref().map(|watch| watch.every),
            )
            .finish_non_exhaustive()
    }
}

impl BatchOptions {
    /// The defaults, writing to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        BatchOptions {
            out_dir: out_dir.into(),
            journal: None,
            journal_store: None,
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
            worker: None,
            max_cost: None,
            names: FileNames::by_id(),
            #[cfg(feature = "convert")]
            conversion: None,
            on_event: None,
            watch_results: None,
        }
    }

    /// Converts every image that comes in another format than `conversion`'s.
    #[cfg(feature = "convert")]
    pub fn convert(mut self, conversion: crate::convert::Conversion) -> Self {
        self.conversion = Some(conversion);
        self
    }

    fn conversion_for_debug(&self) -> Option<String> {
        #[cfg(feature = "convert")]
        return self.conversion.map(|c| format!("{c:?}"));
        #[cfg(not(feature = "convert"))]
        None
    }

    /// Sets how images are named.
    pub fn names(mut self, names: FileNames) -> Self {
        self.names = names;
        self
    }

    /// Sets the most the batch may spend.
    pub fn max_cost(mut self, cap: CostCap) -> Self {
        self.max_cost = Some(cap);
        self
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

    /// Keeps the journal in the store `open` opens when a run starts, instead of a SQLite
    /// file: another implementation of [`JournalStore`](super::journal::JournalStore).
    pub fn journal_store(
        mut self,
        open: impl Fn() -> Result<Box<dyn super::journal::JournalStore>, super::JournalError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.journal_store = Some(Arc::new(open));
        self
    }

    /// Keeps the journal in PostgreSQL at `url`, under the batch's name `batch` (one database
    /// holds many batches). Every process running the same batch there drains it with the
    /// others, each with its own output folder: see
    /// [`PgJournalStore`](super::journal::PgJournalStore).
    #[cfg(feature = "postgres")]
    pub fn postgres_journal(self, url: impl Into<String>, batch: impl Into<String>) -> Self {
        self.postgres_journal_with_lease(url, batch, super::journal::DEFAULT_LEASE)
    }

    /// [`postgres_journal`](Self::postgres_journal), with claims that last `lease` unless
    /// renewed: the longest a dead worker's requests wait before another worker takes them.
    #[cfg(feature = "postgres")]
    pub fn postgres_journal_with_lease(
        self,
        url: impl Into<String>,
        batch: impl Into<String>,
        lease: Duration,
    ) -> Self {
        let (url, batch) = (url.into(), batch.into());
        self.journal_store(move || {
            Ok(Box::new(super::journal::PgJournalStore::open_with_lease(
                &url, &batch, lease,
            )?) as Box<dyn super::journal::JournalStore>)
        })
    }

    /// Names this worker in what it records (see [`worker`](Self::worker)).
    pub fn worker(mut self, name: impl Into<String>) -> Self {
        self.worker = Some(name.into());
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

    /// Calls `view` with every line of the results as they stand — what `results.jsonl`
    /// would hold now, a request whose create is under way `pending` — when the run starts,
    /// then whenever something changed, at most once per `every` (and never more often than
    /// ten times the last call took, so a million-line batch spends at most a tenth of a
    /// thread on it). For a page that fills as the batch runs; the last call comes before
    /// `results.jsonl` is written, so what is drawn from that file afterwards replaces it.
    ///
    /// `view` runs on a blocking thread (it reads the journal a page at a time) and never
    /// holds up the requests; a journal it cannot read ends its lines with the error.
    pub fn watch_results(
        mut self,
        every: Duration,
        view: impl Fn(&mut ResultLines<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.watch_results = Some(ResultsWatch {
            every,
            view: Arc::new(view),
        });
        self
    }

    /// The journal's path.
    pub fn journal_path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| self.out_dir.join(DEFAULT_JOURNAL_NAME))
    }
}
