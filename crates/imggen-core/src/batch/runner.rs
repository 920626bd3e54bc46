//! The runner: checks every line before anything is sent, journals them in chunks, and runs
//! each request's next step with bounded concurrency, taking the journal a page at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{RwLock, Semaphore};

use super::journal::{Claim, Planned};
use super::source::{DuplicateIds, Line};
use super::{
    BatchError, BatchEvent, BatchEventKind, BatchInput, BatchOptions, BatchReport, BatchRequest,
    BatchSource, InputErrors, Journal, JournalEntry, JournalError, LineError, ORPHAN_NOT_SENT,
    Progress, RequestState, ResultLines, ResultsWatch, Run, SavedBy, Step, Tracker,
    UNKNOWN_AFTER_STOP, UnknownRequest, collect, lock, results,
};
use crate::Cost;
use crate::handle::{self};
use crate::plan::{Plan, PlanOptions};
use crate::provider::ProviderId;
use crate::spend::Spending;
use crate::{CancellationToken, Imggen};

/// Runs batches with one [`Imggen`] (and so one request budget per key).
#[derive(Clone, Debug)]
pub struct BatchRunner {
    imggen: Imggen,
    options: BatchOptions,
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
            .filter_map(|request| self.quote_request(request).err())
            .collect()
    }

    /// Plans every line of `source` as a run would, without sending anything or touching
    /// the journal: `each` gets each request with the plan of the first provider of its
    /// route that can serve it (what it would create and, where the provider documents
    /// prices, what that costs), or why the line cannot run. Read a line at a time, so a
    /// batch of millions is quoted in constant memory. A line that repeats another's id is
    /// found only once every line is read: it comes last, as an error, after its request.
    pub fn quote(
        &self,
        source: &BatchSource,
        each: &mut dyn FnMut(Result<(BatchRequest, Plan), LineError>),
    ) -> Result<(), BatchError> {
        let mut duplicates = DuplicateIds::default();
        source.visit(&mut |line| {
            duplicates.note(&line);
            match line {
                Line::Request(request) => match self.quote_request(&request) {
                    Ok(plan) => each(Ok((request, plan))),
                    Err(error) => each(Err(error)),
                },
                Line::Invalid(error) => each(Err(error)),
            }
            Ok(())
        })?;
        for duplicate in duplicates.find(source)? {
            each(Err(duplicate));
        }
        Ok(())
    }

    /// The plan of the first provider of the request's route that can serve it, or why the
    /// request cannot run: see [`check`](Self::check).
    fn quote_request(&self, request: &BatchRequest) -> Result<Plan, LineError> {
        let invalid =
            |problem: String| LineError::new(request.line, Some(request.id.clone()), problem);
        let route = self.route(&request.providers);
        if route.is_empty() {
            return Err(invalid("no provider is configured".to_owned()));
        }
        let mut problems = Vec::new();
        let plan = route.iter().find_map(|provider| {
            let found = match self.imggen.provider(*provider) {
                Ok(found) => found,
                Err(error) => {
                    problems.push(format!(
                        "{error} (or leave {provider} out of this line's provider and fallback)"
                    ));
                    return None;
                }
            };
            match found.plan(&request.request, self.plan_options()) {
                Ok(plan) => Some(plan),
                Err(error) => {
                    problems.push(error.to_string());
                    None
                }
            }
        });
        let Some(plan) = plan else {
            return Err(invalid(problems.join("; ")));
        };
        // A reference file that cannot be read would fail its line only once earlier lines
        // were paid for: every one is opened now.
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
            Ok(plan)
        } else {
            Err(invalid(unreadable.join("; ")))
        }
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

    /// Runs the batch — or resumes it, when its journal exists (see the [module docs](crate::batch)).
    ///
    /// Nothing is sent when a line is invalid (unless [`BatchOptions::skip_invalid`]), when
    /// the journal belongs to another batch, or when another process has its SQLite file
    /// open (a PostgreSQL journal is shared: see [`JournalStore`](super::journal::JournalStore)). Requests
    /// that do not finish are not an error: the report says how each one stands.
    ///
    /// Memory stays flat however long the batch: a file source is read a line at a time
    /// (once to check every line, once to journal them), the requests are taken from the
    /// journal a page at a time, and `results.jsonl` is written from it the same way.
    pub async fn run(&self, source: impl Into<BatchSource>) -> Result<BatchReport, BatchError> {
        let source = Arc::new(source.into());
        let options = &self.options;
        let until = self.imggen.deadline_from_now(options.time_limit);
        if options.concurrency == 0 {
            return Err(BatchError::Config(
                "the concurrency must be at least 1".into(),
            ));
        }
        let checked = {
            let runner = self.clone();
            let source = Arc::clone(&source);
            blocking(move || runner.validate(&source)).await??
        };
        if !checked.invalid.is_empty() && !options.skip_invalid {
            return Err(BatchError::InvalidInput(InputErrors {
                lines: checked.invalid,
            }));
        }
        self.announce(BatchEventKind::Checked {
            requests: checked.requests,
            invalid: checked.invalid.len(),
            projected: checked.projected,
            unpriced: checked.unpriced,
        });

        let out_dir = options.out_dir.clone();
        // Before anything is sent: the images and results.jsonl must have somewhere to go.
        let probe_dir = out_dir.clone();
        blocking(move || imggen_http::fs::check_writable_dir(&probe_dir))
            .await?
            .map_err(|error| BatchError::Io {
                path: error.path,
                source: error.cause,
            })?;
        let clock = Arc::clone(&self.imggen.inner.clock);
        let journal = Arc::new(match &options.journal_store {
            Some(open) => Journal::with_store(open()?, clock),
            None => Journal::open_with_clock(options.journal_path(), clock)?,
        });
        let journal_path = journal.path().to_path_buf();
        // Before this run writes anything: a process that stopped did so after this.
        let previous_activity = journal.last_activity()?;
        let listing = journal.next_listing()?;
        let invalid = Arc::new(checked.invalid);
        let planned = {
            let source = Arc::clone(&source);
            let journal = Arc::clone(&journal);
            let invalid = Arc::clone(&invalid);
            blocking(move || load(&source, &journal, &invalid, listing)).await??
        };
        self.announce(BatchEventKind::Journaled {
            added: planned.added,
            kept: planned.kept,
            replaced: planned.replaced,
        });
        collect::remove_partial_files(&out_dir);

        let tally = journal.tally(listing)?;
        let mut tracker = Tracker::from_tally(&tally);
        tracker.progress.finished_before = tracker.progress.finished();
        let finished_before = tracker.progress.finished_before;
        let skipped_done = tally.count(RequestState::Done, None);
        let spending = match options.max_cost {
            Some(cap) => {
                let journal = Arc::clone(&journal);
                let imggen = self.imggen.clone();
                let plan_options = self.plan_options();
                let charged = tally.cost;
                let spent = blocking(move || {
                    perhaps_charged(&journal, &imggen, plan_options).map(|lost| charged + lost)
                })
                .await??;
                Some(Spending::new(cap, self.imggen.credit_price(), spent))
            }
            None => None,
        };
        drop(tally);

        let cancel = options
            .cancel
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token);
        let saved = SavedBy {
            worker: options
                .worker
                .clone()
                .unwrap_or_else(|| format!("{}:{}", super::host_name(), std::process::id())),
            dir: std::path::absolute(&out_dir)
                .unwrap_or_else(|_| out_dir.clone())
                .display()
                .to_string(),
        };
        let run = Arc::new(Run {
            imggen: self.imggen.clone(),
            options: options.clone(),
            out_dir: out_dir.clone(),
            saved,
            journal: Arc::clone(&journal),
            listing,
            slots: Semaphore::new(options.concurrency),
            creates: RwLock::new(()),
            tracker: Mutex::new(tracker),
            cancel: cancel.clone(),
            plan_options: self.plan_options(),
            previous_activity,
            adopted: Mutex::new(Vec::new()),
            resubmitted: Mutex::new(Vec::new()),
            until,
            spending: spending.clone(),
        });
        run.emit(None, BatchEventKind::Started);
        let stop_watching = CancellationToken::new();
        let watcher = options.watch_results.clone().map(|watch| {
            tokio::spawn(watch_results(
                Arc::clone(&run),
                watch,
                Arc::clone(&invalid),
                stop_watching.clone(),
            ))
        });
        let fed = run.feed().await;
        stop_watching.cancel();
        if let Some(watcher) = watcher {
            // Its view in progress ends first: it must not draw over the final results.
            let _ = watcher.await;
        }
        fed?;

        // The totals from the journal itself: requests this run never reached (it was
        // stopped) count where they stand.
        let tally = journal.tally(listing)?;
        lock(&run.tracker).progress = Tracker::finished(&tally, finished_before);
        drop(tally);
        let (skipped, unknown) = {
            let journal = Arc::clone(&journal);
            let invalid = Arc::clone(&invalid);
            blocking(move || leftovers(&journal, &invalid)).await??
        };
        let (results_path, summary) = {
            let journal = Arc::clone(&journal);
            let out_dir = out_dir.clone();
            let skipped = skipped.clone();
            blocking(move || results::write_from_journal(&out_dir, &journal, &skipped))
                .await?
                .map_err(|error| BatchError::Io {
                    path: error.path,
                    source: error.cause,
                })?
        };
        run.emit(None, BatchEventKind::Finished);
        let progress = run.progress();
        let adopted = std::mem::take(&mut *lock(&run.adopted));
        let resubmitted = std::mem::take(&mut *lock(&run.resubmitted));
        drop(run);
        Ok(BatchReport {
            summary,
            skipped,
            results_path,
            journal_path,
            progress,
            unknown,
            adopted,
            resubmitted,
            skipped_done,
            cap_reached: spending.is_some_and(|spending| spending.reached()),
        })
    }

    /// An event before the run's totals exist.
    fn announce(&self, kind: BatchEventKind) {
        if let Some(callback) = &self.options.on_event {
            callback(&BatchEvent {
                id: None,
                line: None,
                kind,
                progress: Progress::default(),
            });
        }
    }

    /// Reads every line and checks it — parsed, unique, servable, its files readable —
    /// keeping only the invalid lines.
    fn validate(&self, source: &BatchSource) -> Result<Checked, BatchError> {
        let mut checked = Checked::default();
        let mut duplicates = DuplicateIds::default();
        source.visit(&mut |line| {
            duplicates.note(&line);
            match line {
                Line::Request(request) => match self.quote_request(&request) {
                    Err(error) => checked.invalid.push(error),
                    Ok(plan) => {
                        checked.requests += 1;
                        match plan.estimated_cost {
                            Some(price) => checked.projected = checked.projected + price,
                            None => checked.unpriced += 1,
                        }
                    }
                },
                Line::Invalid(error) => checked.invalid.push(error),
            }
            Ok(())
        })?;
        checked.invalid.sort_by_key(|error| error.line);
        let mut unprojected = HashSet::new();
        for duplicate in duplicates.find(source)? {
            // A repeated id is the line's problem, whatever else is wrong with it.
            match checked
                .invalid
                .binary_search_by_key(&duplicate.line, |error| error.line)
            {
                Ok(index) => checked.invalid[index] = duplicate,
                Err(index) => {
                    checked.requests -= 1;
                    unprojected.insert(duplicate.line);
                    checked.invalid.insert(index, duplicate);
                }
            }
        }
        if !unprojected.is_empty() {
            // Lines that repeat an id were priced as runnable: taken out again (a repeated id
            // is rare, so the file is read once more only then).
            source.visit(&mut |line| {
                if let Line::Request(request) = line
                    && unprojected.contains(&request.line)
                    && let Ok(plan) = self.quote_request(&request)
                {
                    match plan.estimated_cost {
                        Some(price) => checked.projected = checked.projected.saturating_sub(price),
                        None => checked.unpriced -= 1,
                    }
                }
                Ok(())
            })?;
        }
        Ok(checked)
    }
}

/// What checking every line found.
#[derive(Debug, Default)]
struct Checked {
    /// Lines that can run.
    requests: usize,
    /// Lines that cannot, in line order.
    invalid: Vec<LineError>,
    /// What the lines that can run should cost, at their first provider's documented prices.
    projected: Cost,
    /// Lines that can run whose price is not known before their create.
    unpriced: usize,
}

/// Writes every valid line to the journal as it reads them, in one transaction: a line that
/// would replace a paid-for request under its id stops the run with nothing written (every
/// such line is listed). SQLite spills a transaction larger than its cache to the log, so
/// memory stays flat; one commit is one sync, not one per chunk.
fn load(
    source: &BatchSource,
    journal: &Journal,
    invalid: &[LineError],
    listing: u64,
) -> Result<Planned, BatchError> {
    // The source's own failure, kept while the journal rolls back.
    let mut unreadable: Option<BatchError> = None;
    let planned = journal.plan_each(listing, &mut |each| {
        let visited = source.visit(&mut |line| match line {
            Line::Request(request)
                if invalid
                    .binary_search_by_key(&request.line, |error| error.line)
                    .is_err() =>
            {
                each(&request).map_err(BatchError::Journal)
            }
            _ => Ok(()),
        });
        match visited {
            Ok(()) => Ok(()),
            Err(BatchError::Journal(error)) => Err(error),
            Err(other) => {
                let problem = other.to_string();
                unreadable = Some(other);
                Err(JournalError::Storage {
                    path: journal.path().to_path_buf(),
                    problem: problem.clone(),
                    source: Box::new(std::io::Error::other(problem)),
                })
            }
        }
    });
    match (planned, unreadable) {
        (_, Some(error)) => Err(error),
        (planned, None) => Ok(planned?),
    }
}

/// What the report lists besides the counts: the invalid lines the run went without (those
/// the journal holds under their id are reported as journaled), and the requests of unknown
/// outcome with every fact there is.
/// What the creates of earlier runs whose outcome is unknown may have charged: each such
/// request's missing images at its planned price (a price not known counts as nothing).
fn perhaps_charged(
    journal: &Journal,
    imggen: &Imggen,
    options: PlanOptions,
) -> Result<Cost, BatchError> {
    let mut total = Cost::ZERO;
    each_of_unknown_outcome(journal, |entry| {
        let Some(provider) = entry.provider.or_else(|| entry.providers.first().copied()) else {
            return;
        };
        let mut request = entry.request.clone();
        request.n = entry.images_missing();
        if request.n == 0 {
            return;
        }
        let price = imggen
            .provider(provider)
            .ok()
            .and_then(|found| found.plan(&request, options).ok())
            .and_then(|plan| plan.estimated_cost);
        total = total + price.unwrap_or(Cost::ZERO);
    })?;
    Ok(total)
}

/// Every request whose create's outcome is unknown (or was being sent when a process
/// stopped), a page at a time, in line order.
fn each_of_unknown_outcome(
    journal: &Journal,
    mut each: impl FnMut(JournalEntry),
) -> Result<(), BatchError> {
    let states = [RequestState::Submitting, RequestState::Unknown];
    let mut after: Option<(usize, String)> = None;
    loop {
        let page = journal.page(
            &states,
            after.as_ref().map(|(l, id)| (*l, id.as_str())),
            PAGE,
        )?;
        let Some(last) = page.last() else { break };
        after = Some((last.line, last.id.clone()));
        page.into_iter().for_each(&mut each);
    }
    Ok(())
}

fn leftovers(
    journal: &Journal,
    invalid: &[LineError],
) -> Result<(Vec<LineError>, Vec<UnknownRequest>), BatchError> {
    let skipped = skipped_lines(journal, invalid)?;
    let mut unknown = Vec::new();
    each_of_unknown_outcome(journal, |entry| {
        unknown.push(UnknownRequest {
            id: entry.id,
            line: entry.line,
            prompt: entry.request.prompt,
            provider: entry.provider,
            providers: entry.providers,
            attempted_at: entry.submitting_at.map(handle::format_time),
            attempts: entry.attempts,
            task_ids: entry
                .tasks
                .into_iter()
                .map(|task| task.handle.task_id)
                .collect(),
            reason: entry.error.unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
        });
    })?;
    Ok((skipped, unknown))
}

/// The invalid lines the run went on without: those whose id the journal does not hold (a
/// line made invalid by an edit keeps its journaled request, paid or not).
fn skipped_lines(journal: &Journal, invalid: &[LineError]) -> Result<Vec<LineError>, BatchError> {
    let mut skipped = Vec::new();
    for error in invalid {
        let journaled = match &error.id {
            Some(id) => journal.entry(id)?.is_some(),
            None => false,
        };
        if !journaled {
            skipped.push(error.clone());
        }
    }
    Ok(skipped)
}

/// The shortest interval between two views of the results.
const MIN_WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Hands the results as they stand to `watch.view` when the run starts, then whenever the
/// totals changed, at most once per `watch.every` and at most a tenth of the time, until
/// `stop`.
async fn watch_results(
    run: Arc<Run>,
    watch: ResultsWatch,
    invalid: Arc<Vec<LineError>>,
    stop: CancellationToken,
) {
    let sleeper = Arc::clone(&run.imggen.inner.sleeper);
    let clock = Arc::clone(&run.imggen.inner.clock);
    let skipped = {
        let journal = Arc::clone(&run.journal);
        match blocking(move || skipped_lines(&journal, &invalid)).await {
            Ok(Ok(skipped)) => Arc::new(skipped),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "the results cannot be watched: the journal cannot be read");
                return;
            }
            Err(error) => {
                tracing::warn!(error = %error, "the results cannot be watched");
                return;
            }
        }
    };
    // A zero interval would spin while nothing changes.
    let every = watch.every.max(MIN_WATCH_INTERVAL);
    let mut wait = Duration::ZERO;
    let mut seen: Option<Progress> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = sleeper.sleep(wait) => {}
        }
        let progress = run.progress();
        if seen.as_ref() == Some(&progress) {
            wait = every;
            continue;
        }
        let started = clock.now();
        let journal = Arc::clone(&run.journal);
        let skipped = Arc::clone(&skipped);
        let view = Arc::clone(&watch.view);
        if let Err(error) = blocking(move || {
            view(&mut ResultLines::new(&journal, &skipped, true));
        })
        .await
        {
            tracing::warn!(error = %error, "the results view failed");
        }
        seen = Some(progress);
        wait = every.max(clock.now().saturating_duration_since(started) * 10);
    }
}

/// Requests read from the journal at a time.
const PAGE: usize = 256;

/// Runs blocking work (reading the batch file, SQLite) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BatchError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| BatchError::Config(format!("a batch thread stopped: {join}")))
}

/// The steps a run has started and not yet seen end: at most a window of them at once.
struct Steps {
    running: FuturesUnordered<BoxFuture<'static, (String, Result<(), JournalError>)>>,
    window: usize,
    /// The first journal failure: it stops the run.
    fatal: Option<JournalError>,
    /// Requests reconciled in this run: one the list proved never sent may be planned again
    /// by its step, and must not be stepped twice.
    reconciled: HashSet<String>,
}

impl Steps {
    fn record(&mut self, run: &Run, (id, result): (String, Result<(), JournalError>)) {
        if let Err(error) = result {
            tracing::error!(request = %id, %error, "the journal failed; stopping the batch");
            run.cancel.cancel();
            self.fatal.get_or_insert(error);
        }
    }

    /// Waits for the next step to end, when one is running.
    async fn next(&mut self, run: &Run) {
        if let Some(result) = self.running.next().await {
            self.record(run, result);
        }
    }
}

/// The states a run takes requests in, in order: paid tasks first (done requests whose files
/// went missing, then submitted ones), then the creates of unknown outcome, then new
/// submissions.
const PHASES: [&[RequestState]; 4] = [
    &[RequestState::Done],
    &[RequestState::Submitted],
    &[RequestState::Submitting, RequestState::Unknown],
    &[RequestState::Planned],
];

/// The longest a worker waits before looking again at the leases other workers hold.
const LEASE_CHECK: Duration = Duration::from_secs(5);

impl Run {
    /// Starts each request's next step, taking the journal a page at a time with at most a
    /// window of steps pending, phase by phase ([`PHASES`]), each in line order. Requests are
    /// claimed as this worker's (a journal several workers drain hands each request to one);
    /// once every phase is through, the run stays while other workers hold unfinished
    /// requests, to take over those whose lease runs out — a worker that died.
    async fn feed(self: &Arc<Self>) -> Result<(), BatchError> {
        let mut steps = Steps {
            running: FuturesUnordered::new(),
            window: self.options.concurrency.saturating_mul(2).max(16),
            fatal: None,
            reconciled: HashSet::new(),
        };
        for states in PHASES {
            // Done requests are only looked at (their files, where this worker saved them):
            // claiming every one would write a million rows for nothing.
            let claim = (states != PHASES[0]).then_some(Claim::Free);
            self.pass(&mut steps, states, claim).await?;
        }
        loop {
            for states in &PHASES[1..] {
                self.pass(&mut steps, states, Some(Claim::Lapsed)).await?;
            }
            if self.stopped() {
                break;
            }
            match self.journal.held_elsewhere()? {
                None if steps.running.is_empty() => break,
                None => steps.next(self).await,
                Some(left) => {
                    // Until the first of them may have lapsed, or a step of ours ends.
                    let wait = (left + Duration::from_millis(20)).min(LEASE_CHECK);
                    tokio::select! {
                        () = self.imggen.inner.sleeper.sleep(wait) => {}
                        () = self.cancel.cancelled() => {}
                        Some(result) = steps.running.next() => steps.record(self, result),
                    }
                }
            }
        }
        while let Some(result) = steps.running.next().await {
            steps.record(self, result);
        }
        match steps.fatal {
            Some(error) => Err(BatchError::Journal(error)),
            None => Ok(()),
        }
    }

    /// One way through the requests in `states`: claimed as `claim` says, or only read
    /// (`None`).
    async fn pass(
        self: &Arc<Self>,
        steps: &mut Steps,
        states: &[RequestState],
        claim: Option<Claim>,
    ) -> Result<(), BatchError> {
        let mut after: Option<(usize, String)> = None;
        loop {
            if self.stopped() {
                return Ok(());
            }
            let after_ref = after.as_ref().map(|(line, id)| (*line, id.as_str()));
            // Claims are taken a window at a time, so that several workers share the batch.
            let page = match claim {
                Some(which) => {
                    self.journal
                        .claim(states, after_ref, PAGE.min(steps.window), which)?
                }
                None => self.journal.page(states, after_ref, PAGE)?,
            };
            let Some(last) = page.last() else {
                return Ok(());
            };
            // Lapsed claims are taken from the start each time: those taken are this
            // worker's from then on.
            if claim != Some(Claim::Lapsed) {
                after = Some((last.line, last.id.clone()));
            }
            for entry in page {
                let Some(step) = self.step_for(&entry, &mut steps.reconciled)? else {
                    if claim.is_some() {
                        self.journal.release(&entry.id)?;
                    }
                    continue;
                };
                while steps.running.len() >= steps.window {
                    steps.next(self).await;
                }
                let listed = !self.is_orphan(&entry);
                lock(&self.tracker).follow(
                    &entry.id,
                    entry.line,
                    super::category_at_start(entry.state, listed),
                    entry.cost(),
                );
                let run = Arc::clone(self);
                let id = entry.id;
                steps.running.push(
                    async move {
                        let result = run.step(&id, step).await;
                        (id, result)
                    }
                    .boxed(),
                );
            }
            // Steps already started move on while the next page is read.
            while let Some(Some(result)) = steps.running.next().now_or_never() {
                steps.record(self, result);
            }
            tokio::task::yield_now().await;
        }
    }

    /// What a journaled request needs in this run, if anything.
    fn step_for(
        &self,
        entry: &JournalEntry,
        reconciled: &mut HashSet<String>,
    ) -> Result<Option<Step>, JournalError> {
        let orphan = self.is_orphan(entry);
        Ok(match entry.state {
            // Only files this worker's folder should hold: another worker's are in its own.
            RequestState::Done => entry
                .tasks
                .iter()
                .filter(|task| {
                    task.saved
                        .as_ref()
                        .is_none_or(|saved| saved.dir == self.saved.dir)
                })
                .flat_map(|task| &task.files)
                .any(|file| !self.out_dir.join(file).exists())
                .then_some(Step::Collect),
            RequestState::Failed => None,
            RequestState::Submitted => Some(Step::Collect),
            RequestState::Submitting | RequestState::Unknown => {
                reconciled.insert(entry.id.clone());
                Some(Step::Reconcile {
                    resubmit: self.options.resubmit_unknown && !orphan,
                })
            }
            RequestState::Planned if orphan => {
                if entry.error.as_deref() != Some(ORPHAN_NOT_SENT) {
                    self.journal.set_error(&entry.id, Some(ORPHAN_NOT_SENT))?;
                }
                None
            }
            RequestState::Planned if reconciled.contains(&entry.id) => None,
            RequestState::Planned => Some(Step::Submit),
        })
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
}
