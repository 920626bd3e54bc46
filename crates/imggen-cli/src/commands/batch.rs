//! `imggen batch FILE.jsonl --out DIR`: the command-line half of imggen-core's crash-safe
//! batches. Reading the lines, journaling, resuming, reconciling and `results.jsonl` are
//! [`imggen_core::batch`]'s; this module turns the options into its defaults, draws its
//! events, prints its report and picks the exit code.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use imggen_core::batch::{
    BatchError, BatchOptions, BatchReport, BatchRunner, BatchSource, InputErrors, Journal,
    JournalError, RequestDefaults, RequestState, ResultLine, ResultStatus, ResultSummary,
};
use imggen_core::{FileNames, ProviderId};

use crate::args::{BatchArgs, RequestSettings};
use crate::context::Ctx;
use crate::exit::{Category, Failure};
use crate::gallery;
use crate::listen;
use crate::output::{
    BatchCounts, BatchOutput, CostOutput, InvalidLineOutput, UnknownOutput, WarningOutput,
};
use crate::progress::entry_label;
use crate::quote;
use crate::request::{option_arg, reference_arg};
use crate::route::{
    Route, Tuning, connect_emulator, connect_real, emulator_notice, every_provider, key_set,
    start_emulator,
};
use crate::stdout;

/// Lines of detail (invalid lines, failed requests) printed on stderr at most; every one is
/// in `--json` or `results.jsonl`.
const MAX_DETAIL_LINES: usize = 20;

/// Why a run stopped before its work was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `--timeout` passed.
    Deadline,
    /// Ctrl-C.
    Interrupted,
}

/// A batch that did not end with every request done: the failure, and the lines that name
/// the requests concerned (printed between its message and its hint).
struct Outcome {
    failure: Failure,
    details: Vec<String>,
}

/// A run that got as far as a report.
struct Ran {
    report: BatchReport,
    stop: Option<Stop>,
    /// The tasks ran on the in-process emulator, which stopped with the run.
    emulated: bool,
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Outcome {
            failure,
            details: Vec::new(),
        }
    }
}

/// Runs `imggen batch`; returns the exit code.
pub(crate) async fn command(args: BatchArgs, ctx: &Ctx) -> u8 {
    if args.dry_run {
        return quote(&args, ctx).await;
    }
    let started = Instant::now();
    let mut output = BatchOutput::default();
    let outcome = match run(&args, ctx, &mut output).await {
        Ok(ran) => {
            let mut line = summary(&ran.report, started);
            if let Some(page) = &output.gallery {
                line.push_str(&format!("; see them: open {page}"));
            }
            ctx.progress.batch_summary(&line, &output);
            outcome(&ran)
        }
        Err(outcome) => Some(outcome),
    };
    if let Some(outcome) = &outcome {
        output.error = Some(outcome.failure.to_output());
    }
    if args.json {
        let text = serde_json::to_string(&output).unwrap_or_else(|err| {
            format!(r#"{{"error":{{"message":"could not write the output: {err}"}}}}"#)
        });
        let _ = stdout::write_json(&text);
    } else if let Some(path) = &output.results {
        let _ = stdout::write_lines(std::slice::from_ref(path));
    }
    match outcome {
        Some(Outcome { failure, details }) => {
            ctx.progress.failure(&failure, &details);
            failure.category.exit_code()
        }
        None => crate::exit::SUCCESS,
    }
}

/// What a run (or a dry run) goes through: the runner's options, the batch file, the imggen
/// and the emulator behind it when there is one.
struct Connected {
    options: BatchOptions,
    source: BatchSource,
    imggen: imggen_core::Imggen,
    emulator: Option<imggen_mock::MockServer>,
}

async fn run(args: &BatchArgs, ctx: &Ctx, output: &mut BatchOutput) -> Result<Ran, Outcome> {
    let Connected {
        mut options,
        source,
        imggen,
        emulator,
    } = connect(args, ctx, output).await?;
    if let Some(cap) = args.settings.max_cost {
        if args.journal.as_deref().and_then(postgres_url).is_some() {
            return Err(Failure::usage(
                "--max-cost cannot be held across the workers of a PostgreSQL journal yet: each would hold it on its own; nothing was sent",
            )
            .hint("run without --max-cost, or with a SQLite journal (the default)")
            .into());
        }
        options = options.max_cost(cap.allow_unpriced(args.settings.allow_unpriced));
    }
    run_connected(args, ctx, output, options, source, imggen, emulator).await
}

/// `--dry-run`: every line read and planned as a run would, a line per task on stdout (or
/// one JSON object, streamed) and the total; nothing is sent, the journal is not touched.
async fn quote(args: &BatchArgs, ctx: &Ctx) -> u8 {
    let mut output = BatchOutput::default();
    let connected = match connect(args, ctx, &mut output).await {
        Ok(connected) => connected,
        Err(Outcome { failure, details }) => {
            ctx.progress.failure(&failure, &details);
            return failure.category.exit_code();
        }
    };
    let emulated = connected.emulator.is_some();
    let runner = BatchRunner::new(connected.imggen, connected.options);
    let code = quote::quote_batch(&runner, &connected.source, emulated, args.json, ctx);
    if let Some(emulator) = connected.emulator {
        emulator.shutdown().await;
    }
    code
}

async fn connect(
    args: &BatchArgs,
    ctx: &Ctx,
    output: &mut BatchOutput,
) -> Result<Connected, Outcome> {
    let settings = &args.settings;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    let mut defaults = request_defaults(settings, &route)?;
    if let Some(url) = listen::callback_url(args.waiting.listen, args.public_url.as_deref())? {
        defaults = defaults.webhook(url);
    }
    // Read a line at a time by the runner (a batch of millions is never whole in memory);
    // a file that cannot be opened is said before anything else is done.
    std::fs::File::open(&args.file).map_err(|error| unreadable(&args.file, &error))?;
    let source = BatchSource::file(&args.file, defaults);

    let conversion = args.waiting.conversion().map_err(Failure::usage)?;
    let mut options = BatchOptions::new(&args.waiting.out)
        .names(args.waiting.name.clone().unwrap_or_else(FileNames::by_id))
        .concurrency(args.concurrency)
        .resubmit_unknown(args.resubmit_unknown)
        .skip_invalid(args.skip_invalid);
    if let Some(journal) = &args.journal {
        options = match postgres_url(journal) {
            Some(url) => postgres_journal(options, url, &args.file)?,
            None => options.journal(journal),
        };
    }
    if let Some(conversion) = conversion {
        options = options.convert(conversion);
    }
    if let Some(grace) = args.reconcile_grace {
        options = options.reconcile_grace(grace);
    }
    if let Some(timeout) = args.waiting.timeout {
        // Every request in flight when the time is up ends then too — a create that never
        // answers, a download that trickles — not only the waits.
        options = options.time_limit(timeout);
    }

    let emulator = if route.emulated() {
        check_emulated_resume(&options)?;
        let emulator = start_emulator().await?;
        let message = emulator_notice(&route, "every provider's protocol");
        ctx.progress.notice(&message);
        output.warnings.push(WarningOutput {
            provider: "mock".into(),
            setting: None,
            value: None,
            message,
        });
        Some(emulator)
    } else {
        None
    };
    let tuning = Tuning {
        poll_interval: args.waiting.poll_interval,
        allow_extra_tasks: settings.allow_extra_tasks,
        strict: settings.strict,
        // Journaled in PostgreSQL, the batch's workers share each key's budget there too.
        shared_budget: args
            .journal
            .as_deref()
            .and_then(postgres_url)
            .map(shared_budget)
            .transpose()?,
    };
    let imggen = match &emulator {
        // The emulator speaks every built-in protocol: every line runs on it, whatever
        // provider it names, with that provider's own rules.
        Some(emulator) => connect_emulator(emulator, &every_provider(), tuning)?,
        None => connect_real(&configured_providers(&route), tuning)?,
    };
    Ok(Connected {
        options,
        source,
        imggen,
        emulator,
    })
}

async fn run_connected(
    args: &BatchArgs,
    ctx: &Ctx,
    output: &mut BatchOutput,
    mut options: BatchOptions,
    source: BatchSource,
    imggen: imggen_core::Imggen,
    emulator: Option<imggen_mock::MockServer>,
) -> Result<Ran, Outcome> {
    let stopped_by_timeout = Arc::new(AtomicBool::new(false));
    let cancel = ctx.cancel.child_token();
    let timer = args.waiting.timeout.map(|timeout| {
        let cancel = cancel.clone();
        let flag = Arc::clone(&stopped_by_timeout);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            flag.store(true, Ordering::SeqCst);
            cancel.cancel();
        })
    });
    ctx.progress.start_batch();
    let progress = Arc::clone(&ctx.progress);
    // The journal keeps the batch's tasks; the history lists them beside the others (the
    // emulator's end with the run, and are not kept).
    let history = emulator.is_none().then(|| Arc::clone(&ctx.history));
    // Images kept as they came (not converted): said as they happen, and in `--json`.
    let warned = Arc::new(std::sync::Mutex::new(Vec::new()));
    let warnings = Arc::clone(&warned);
    options = options.cancel(cancel).on_event(move |event| {
        progress.batch_event(event);
        if let imggen_core::batch::BatchEventKind::Warning { warning } = &event.kind {
            progress.warning(&warning.to_string());
            warnings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(WarningOutput::from(warning));
        }
        if let Some(history) = &history {
            record(history, event);
        }
    });

    if !args.no_gallery {
        options = options.watch_results(
            Duration::from_secs(gallery::LIVE_REFRESH_SECS.into()),
            gallery::live_view(
                args.waiting.out.clone(),
                gallery_title(&args.file),
                Arc::clone(&ctx.progress),
            ),
        );
    }

    // Listening before the first create: a task may call back as soon as it exists.
    let listening = listen::start(
        args.waiting.listen,
        args.public_url.as_deref(),
        &imggen,
        ctx,
    )
    .await?;
    if let Some(listening) = &listening {
        options = options.events(listening.hub());
    }

    let ticker = ctx.progress.ticker();
    let result = BatchRunner::new(imggen, options).run(source).await;
    drop(ticker);
    listen::stop(listening).await;
    output.warnings.extend(
        warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..),
    );
    ctx.progress.end_batch();
    if let Some(timer) = timer {
        timer.abort();
    }
    let emulated = emulator.is_some();
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    let report = match result {
        Ok(report) => report,
        Err(BatchError::InvalidInput(errors)) => {
            output.invalid = errors.lines.iter().map(InvalidLineOutput::from).collect();
            return Err(invalid_input(&errors, &args.file));
        }
        Err(BatchError::Read { path, source }) => return Err(unreadable(&path, &source).into()),
        Err(error) => return Err(batch_failure(&error).into()),
    };
    fill(output, &report);
    if !args.no_gallery {
        // Drawn from results.jsonl, so the page shows what that file says.
        match gallery::from_results(
            &args.waiting.out,
            &gallery_title(&args.file),
            &report.results_path,
        ) {
            Ok(path) => output.gallery = Some(path.display().to_string()),
            Err(error) => ctx
                .progress
                .warning(&format!("the gallery page could not be written: {error}")),
        }
    }
    let stop = if ctx.cancel.is_cancelled() {
        Some(Stop::Interrupted)
    } else if stopped_by_timeout.load(Ordering::SeqCst) {
        Some(Stop::Deadline)
    } else {
        None
    };
    Ok(Ran {
        report,
        stop,
        emulated,
    })
}

/// What the gallery page is titled: the batch file's name.
fn gallery_title(file: &Path) -> String {
    file.file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// What the history keeps of a batch event: each task created, and how it ended (the journal
/// has the rest; a write per poll would only slow a large batch down).
fn record(history: &crate::history::History, event: &imggen_core::batch::BatchEvent) {
    use imggen_core::batch::BatchEventKind;
    match &event.kind {
        BatchEventKind::Submitted { handles } | BatchEventKind::Adopted { handles } => {
            for handle in handles {
                history.created(handle);
            }
        }
        BatchEventKind::Status { handle, state } if state.is_terminal() => {
            history.status(handle, state.name());
        }
        _ => {}
    }
}

/// The command's options as the defaults of every line: the route (`--provider`, then
/// `--fallback`, or the default provider), and every setting of `generate`.
fn request_defaults(settings: &RequestSettings, route: &Route) -> Result<RequestDefaults, Failure> {
    let mut defaults = RequestDefaults::new().n(settings.count);
    if let Some((first, rest)) = route.ids().split_first() {
        defaults = defaults.provider(*first).fallback(rest.iter().copied());
    }
    if let Some(model) = &settings.model {
        defaults = defaults.model(model.clone());
    }
    if let Some(ratio) = &settings.aspect_ratio {
        defaults = defaults.aspect_ratio(ratio.clone());
    }
    if let Some(quality) = &settings.quality {
        defaults = defaults.quality(quality.clone());
    }
    if let Some(webhook) = &settings.webhook {
        defaults = defaults.webhook(webhook.clone());
    }
    for reference in &settings.references {
        defaults = defaults.reference(reference_arg(reference));
    }
    for pair in &settings.options {
        let (key, value) = option_arg(pair)?;
        defaults = defaults.option(key, value);
    }
    Ok(defaults)
}

/// The providers to configure: the command line's route (each must have its key, as for
/// `generate`), and every other provider whose key is set. A line that names a provider
/// without a key is an invalid line, reported with its number by imggen-core's check.
fn configured_providers(route: &Route) -> Vec<ProviderId> {
    let mut providers = route.ids();
    for provider in every_provider() {
        if !providers.contains(&provider) && key_set(provider) {
            providers.push(provider);
        }
    }
    providers
}

/// A batch file that cannot be read: nothing was sent.
fn unreadable(file: &Path, error: &std::io::Error) -> Failure {
    Failure::usage(format!(
        "could not read the batch file {}: {error}",
        file.display()
    ))
}

/// The URL, when `--journal` names a PostgreSQL database rather than a file.
fn postgres_url(journal: &Path) -> Option<&str> {
    journal
        .to_str()
        .filter(|text| text.starts_with("postgres://") || text.starts_with("postgresql://"))
}

/// The journal in PostgreSQL, the batch kept under its file's name: the same command on
/// another machine, with its own copy of the file, finds the same batch.
#[cfg(feature = "postgres")]
fn postgres_journal(
    options: BatchOptions,
    url: &str,
    file: &Path,
) -> Result<BatchOptions, Failure> {
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{} has no file name to keep the batch under",
                file.display()
            ))
        })?;
    let lease = match std::env::var("IMGGEN_JOURNAL_LEASE") {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "IMGGEN_JOURNAL_LEASE={}: give the seconds a worker's claims last, e.g. 60",
                    imggen_types::text::Untrusted(&text)
                ))
            })?,
        Err(_) => imggen_core::batch::journal::DEFAULT_LEASE,
    };
    Ok(options.postgres_journal_with_lease(url, name, lease))
}

/// Each key's request budget, in the PostgreSQL database of the journal.
#[cfg(feature = "postgres")]
fn shared_budget(url: &str) -> Result<Arc<dyn imggen_core::SharedBudget>, Failure> {
    let store = imggen_core::postgres::PgStore::connect(url)
        .map_err(|error| Failure::usage(error.to_string()))?;
    Ok(Arc::new(store.budget()))
}

#[cfg(not(feature = "postgres"))]
fn shared_budget(_: &str) -> Result<Arc<dyn imggen_core::SharedBudget>, Failure> {
    Err(Failure::usage(
        "this imggen was built without PostgreSQL: build imggen-cli with its `postgres` feature, or give --journal a file",
    ))
}

#[cfg(not(feature = "postgres"))]
fn postgres_journal(_: BatchOptions, _: &str, _: &Path) -> Result<BatchOptions, Failure> {
    Err(Failure::usage(
        "this imggen was built without PostgreSQL: build imggen-cli with its `postgres` feature, or give --journal a file",
    ))
}

/// The in-process emulator starts empty: tasks an earlier run's emulator made died with it,
/// and a task of a real provider is not the emulator's either. A journal that still waits
/// on such tasks (or may have created one) cannot be resumed here; one whose requests are
/// all finished or unsent can.
fn check_emulated_resume(options: &BatchOptions) -> Result<(), Failure> {
    let path = options.journal_path();
    let journal = match &options.journal_store {
        Some(open) => Journal::from_store(open().map_err(|error| batch_failure(&error.into()))?),
        None if !path.exists() => return Ok(()),
        None => Journal::open(&path).map_err(|error| batch_failure(&error.into()))?,
    };
    let path = journal.path().to_path_buf();
    // A page at a time: the journal may hold a million requests.
    let mut stranded: Vec<String> = Vec::new();
    let mut count = 0;
    let states = [
        RequestState::Submitting,
        RequestState::Submitted,
        RequestState::Unknown,
        RequestState::Done,
    ];
    let mut after: Option<(usize, String)> = None;
    loop {
        let page = journal
            .page(
                &states,
                after.as_ref().map(|(l, id)| (*l, id.as_str())),
                1_000,
            )
            .map_err(|error| batch_failure(&error.into()))?;
        let Some(last) = page.last() else { break };
        after = Some((last.line, last.id.clone()));
        for entry in &page {
            let waits = entry.state != RequestState::Done
                || entry
                    .files()
                    .iter()
                    .any(|file| !options.out_dir.join(file).exists());
            if waits {
                count += 1;
                if stranded.len() < 5 {
                    stranded.push(entry_label(entry.line, &entry.id));
                }
            }
        }
    }
    // Closes the journal (and its lock) before the run opens it again.
    drop(journal);
    if stranded.is_empty() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "the journal {} has {} with tasks still to collect or of unknown outcome ({}), and this run would use the built-in emulator, which cannot know them (an earlier run's emulator stopped with it); nothing was sent",
        path.display(),
        plural(count, "request"),
        shorten(&stranded, count),
    ))
    .provider("mock")
    .hint("to start the batch over on the emulator, use another --out directory (or delete the journal); tasks a real provider made are collected by running with its API key set"))
}

/// How a run that returned a report ends: `None` when every request is done (lines left out
/// by `--skip-invalid` aside). When several apply, the first of these wins: an unknown
/// outcome (money may be at stake), a stopped run or unfinished tasks (run again to collect
/// them), requests refused before anything was charged, failed requests.
pub(crate) fn verdict(
    summary: &ResultSummary,
    stop: Option<Stop>,
    cap_reached: bool,
) -> Option<Category> {
    let pending = summary.pending;
    if summary.unknown > 0 {
        return Some(Category::OutcomeUnknown);
    }
    match stop {
        Some(Stop::Interrupted) if pending > 0 => return Some(Category::Cancelled),
        Some(Stop::Deadline) if pending > 0 => return Some(Category::Deadline),
        _ => {}
    }
    if summary.waiting > 0 {
        return Some(Category::Deadline);
    }
    if cap_reached && pending > 0 {
        return Some(Category::SpendingCap);
    }
    if pending > 0 {
        return Some(Category::Refused);
    }
    if summary.failed > 0 {
        return Some(Category::Failed);
    }
    None
}

/// The failure a report ends with, in words, with the requests concerned.
fn outcome(ran: &Ran) -> Option<Outcome> {
    let Ran {
        report,
        stop,
        emulated,
    } = ran;
    let stop = *stop;
    let summary = &report.summary;
    let category = verdict(summary, stop, report.cap_reached)?;
    // The next run cannot collect what the emulator made: it stopped with this one.
    let carry_on = if *emulated {
        "the built-in emulator stopped with this run, so its tasks cannot be collected; to run the batch again on it, use another --out directory"
    } else {
        "run the same command again to carry on: what was sent is waited on, never sent twice"
    };
    let results = report.results_path.display().to_string();
    // The first lines of each kind (every one is in results.jsonl).
    let with = |status: ResultStatus, tasks: Option<bool>| -> Vec<&ResultLine> {
        summary.examples(status, tasks).collect()
    };
    let first_error = |lines: &[&ResultLine]| {
        lines
            .iter()
            .find_map(|line| line.error.clone())
            .map(|error| format!(": {error}"))
            .unwrap_or_default()
    };
    let pending = with(ResultStatus::Pending, None);
    let (failure, listed, listed_count) = match category {
        Category::OutcomeUnknown => {
            let count = report.unknown.len();
            let mut failure = Failure::new(
                category,
                format!(
                    "{} may have been created and charged: the answer to {} create was lost, and imggen did not send {} again",
                    plural(count, "request"),
                    if count == 1 { "its" } else { "their" },
                    if count == 1 { "it" } else { "them" },
                ),
            )
            .hint("look in the provider's dashboard for a task made at the time given; if there is none, run the same command with --resubmit-unknown (it sends every request listed here again)");
            failure.facts.may_have_been_charged = true;
            // The reason names the provider, when the create was sent and why it cannot be
            // settled; `--json` has each fact in its own field.
            let details = report
                .unknown
                .iter()
                .map(|unknown| {
                    format!(
                        "  {}: {}",
                        entry_label(unknown.line, &unknown.id),
                        unknown.reason
                    )
                })
                .collect();
            return Some(Outcome { failure, details });
        }
        Category::Deadline | Category::Cancelled if stop.is_some() => {
            let why = if stop == Some(Stop::Interrupted) {
                "interrupted"
            } else {
                "--timeout passed"
            };
            let mut failure = Failure::new(
                category,
                format!(
                    "{why} with {} not finished{}",
                    plural(summary.pending, "request"),
                    if *emulated {
                        ""
                    } else {
                        "; tasks already created go on, and are paid for"
                    }
                ),
            )
            .hint(carry_on);
            failure.facts.may_have_been_charged = true;
            return Some(Outcome {
                failure,
                details: Vec::new(),
            });
        }
        Category::Deadline => {
            let waiting = with(ResultStatus::Pending, Some(true));
            let mut failure = Failure::new(
                category,
                format!(
                    "{} not finished{}",
                    plural_as(summary.waiting, "request is", "requests are"),
                    first_error(&waiting)
                ),
            )
            .hint(carry_on);
            failure.facts.may_have_been_charged = true;
            (failure, waiting, summary.waiting)
        }
        Category::SpendingCap => {
            let failure = Failure::new(
                category,
                format!(
                    "the spending cap was reached with {} spent: {} not sent",
                    report.cost(),
                    plural_as(summary.pending, "request was", "requests were"),
                ),
            )
            .hint("raise --max-cost and run the same command again: what was paid for is kept, and nothing is sent twice");
            (failure, pending, summary.pending)
        }
        Category::Refused => {
            let failure = Failure::new(
                category,
                format!(
                    "{} not sent, or refused with nothing charged{}",
                    plural_as(summary.pending, "request was", "requests were"),
                    first_error(&pending)
                ),
            )
            .hint("fix the cause, then run the same command again: only the requests not yet done are sent");
            (failure, pending, summary.pending)
        }
        _ => {
            let failed = with(ResultStatus::Failed, None);
            let failure = Failure::new(
                category,
                format!(
                    "{} of {} failed (providers refund failed tasks)",
                    summary.failed,
                    plural(summary.total, "request")
                ),
            )
            .hint("running the batch again does not resend a failed request; to try again, put those lines in a new batch file with another --out");
            (failure, failed, summary.failed)
        }
    };
    let mut details: Vec<String> = listed
        .iter()
        .take(MAX_DETAIL_LINES)
        .map(|line| {
            format!(
                "  {}: {}",
                entry_label(line.line, &line.id),
                line.error.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    if listed_count > details.len() {
        details.push(format!(
            "  … and {} more in {results}",
            listed_count - details.len()
        ));
    }
    Some(Outcome { failure, details })
}

/// Invalid lines stop the batch before anything is sent: each is listed with its number.
fn invalid_input(errors: &InputErrors, file: &Path) -> Outcome {
    let count = errors.lines.len();
    let failure = Failure::usage(format!(
        "{} in {}; nothing was sent",
        plural(count, "invalid line"),
        file.display()
    ))
    .hint("fix them and run the same command again, or pass --skip-invalid to run the other lines");
    let mut details: Vec<String> = errors
        .lines
        .iter()
        .take(MAX_DETAIL_LINES)
        .map(|line| format!("  {line}"))
        .collect();
    if count > MAX_DETAIL_LINES {
        details.push(format!(
            "  … and {} more (--json lists every one)",
            count - MAX_DETAIL_LINES
        ));
    }
    Outcome { failure, details }
}

/// A batch that could not run. A journal that belongs to another batch, is not a journal or
/// is in use stops it before anything is sent.
fn batch_failure(error: &BatchError) -> Failure {
    let category = match error {
        BatchError::Config(_)
        | BatchError::InvalidInput(_)
        | BatchError::Journal(
            JournalError::Locked { .. }
            | JournalError::Mismatch { .. }
            | JournalError::Format { .. },
        ) => Category::Invalid,
        _ => Category::Other,
    };
    let failure = Failure::new(category, error.to_string());
    match (category, error) {
        (Category::Other, BatchError::Journal(_)) => failure.hint(
            "every task already created is in the journal: fix the cause and run the same command again to collect it",
        ),
        _ => failure,
    }
}

/// The summary object, from the report.
fn fill(output: &mut BatchOutput, report: &BatchReport) {
    output.total = report.summary.total;
    output.counts = BatchCounts {
        done: report.count(ResultStatus::Done),
        failed: report.count(ResultStatus::Failed),
        unknown: report.count(ResultStatus::Unknown),
        pending: report.count(ResultStatus::Pending),
        skipped_invalid: report.count(ResultStatus::SkippedInvalid),
    };
    output.cost = CostOutput::from(report.cost());
    output.results = Some(report.results_path.display().to_string());
    output.journal = Some(report.journal_path.display().to_string());
    output.skipped_done = report.skipped_done;
    output.unknown = report.unknown.iter().map(UnknownOutput::from).collect();
    output.invalid = report
        .skipped
        .iter()
        .map(|error| InvalidLineOutput {
            line: error.line,
            id: Some(error.id.clone().unwrap_or_else(|| error.line.to_string())),
            problem: error.problem.clone(),
        })
        .collect();
    output.adopted.clone_from(&report.adopted);
    output.resubmitted.clone_from(&report.resubmitted);
}

/// `imggen: 200 requests: 197 done (150 before this run), 3 failed; cost $2.4231; 14.2s`.
fn summary(report: &BatchReport, started: Instant) -> String {
    let done = report.count(ResultStatus::Done);
    let mut parts = vec![if report.skipped_done > 0 {
        format!("{done} done ({} before this run)", report.skipped_done)
    } else {
        format!("{done} done")
    }];
    for status in [
        ResultStatus::Failed,
        ResultStatus::Unknown,
        ResultStatus::Pending,
        ResultStatus::SkippedInvalid,
    ] {
        let count = report.count(status);
        if count > 0 {
            parts.push(format!("{count} {}", status.as_str().replace('_', " ")));
        }
    }
    format!(
        "imggen: {}: {}; cost {}; {:.1}s",
        plural(report.summary.total, "request"),
        parts.join(", "),
        report.cost(),
        started.elapsed().as_secs_f64()
    )
}

/// `1 request`, `3 requests`.
fn plural(count: usize, one: &str) -> String {
    plural_as(count, one, &format!("{one}s"))
}

fn plural_as(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// The items shown, and how many more of `total` there are.
fn shorten(shown: &[String], total: usize) -> String {
    let text = shown.join(", ");
    if total > shown.len() {
        format!("{text} and {} more", total - shown.len())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: &str, tasks: usize) -> ResultLine {
        let task_ids: Vec<String> = (0..tasks).map(|i| format!("t{i}")).collect();
        serde_json::from_value(serde_json::json!({
            "id": "1", "line": 1, "status": status, "provider": "gptimg",
            "task_ids": task_ids, "files": [], "cost": {"usd": "0", "credits": 0}, "error": null
        }))
        .unwrap()
    }

    /// The summary of these lines, as the runner counts them while writing results.jsonl.
    fn summary_of(lines: &[ResultLine]) -> ResultSummary {
        let mut summary = ResultSummary::default();
        for line in lines {
            summary.add(line);
        }
        summary
    }

    fn verdict(lines: &[ResultLine], stop: Option<Stop>) -> Option<Category> {
        super::verdict(&summary_of(lines), stop, false)
    }

    #[test]
    fn every_request_done_or_skipped_is_a_success() {
        assert_eq!(verdict(&[], None), None);
        let lines = [line("done", 1), line("skipped_invalid", 0), line("done", 2)];
        assert_eq!(verdict(&lines, None), None);
        assert_eq!(
            verdict(&lines, Some(Stop::Deadline)),
            None,
            "a timeout that stopped nothing"
        );
    }

    #[test]
    fn an_unknown_outcome_outranks_everything_then_pending_work_then_refusals_then_failures() {
        let failed = line("failed", 1);
        let refused = line("pending", 0);
        let waiting = line("pending", 1);
        let unknown = line("unknown", 0);
        assert_eq!(
            verdict(std::slice::from_ref(&failed), None),
            Some(Category::Failed),
            "exit 4"
        );
        assert_eq!(
            verdict(&[failed.clone(), refused.clone()], None),
            Some(Category::Refused),
            "exit 3: nothing charged, run again"
        );
        assert_eq!(
            verdict(&[failed.clone(), refused.clone(), waiting.clone()], None),
            Some(Category::Deadline),
            "exit 5: paid tasks to collect"
        );
        assert_eq!(
            verdict(std::slice::from_ref(&refused), Some(Stop::Interrupted)),
            Some(Category::Cancelled),
            "a stopped run explains every pending request"
        );
        assert_eq!(
            verdict(&[failed.clone(), waiting.clone()], Some(Stop::Deadline)),
            Some(Category::Deadline)
        );
        assert_eq!(
            verdict(
                &[failed, refused, waiting, unknown],
                Some(Stop::Interrupted)
            ),
            Some(Category::OutcomeUnknown),
            "exit 6: money may be at stake"
        );
    }

    #[test]
    fn a_reached_cap_explains_the_requests_not_sent_unless_paid_work_is_left() {
        let done = line("done", 1);
        let unsent = line("pending", 0);
        let waiting = line("pending", 1);
        let capped = |lines: &[ResultLine], stop| super::verdict(&summary_of(lines), stop, true);
        assert_eq!(
            capped(&[done.clone(), unsent.clone()], None),
            Some(Category::SpendingCap),
            "exit 7"
        );
        assert_eq!(Category::SpendingCap.exit_code(), 7);
        assert_eq!(
            capped(std::slice::from_ref(&done), None),
            None,
            "a cap that stopped nothing"
        );
        assert_eq!(
            capped(&[unsent.clone(), waiting], None),
            Some(Category::Deadline),
            "paid tasks to collect come first"
        );
        assert_eq!(
            capped(&[unsent, line("unknown", 0)], None),
            Some(Category::OutcomeUnknown)
        );
    }

    #[test]
    fn a_line_is_named_as_imggen_core_names_it() {
        assert_eq!(entry_label(3, "3"), "line 3");
        assert_eq!(entry_label(3, "hero"), "line 3 (id \"hero\")");
        assert_eq!(plural(1, "request"), "1 request");
        assert_eq!(plural(2, "invalid line"), "2 invalid lines");
        let ids: Vec<String> = (1..=7).map(|i| i.to_string()).collect();
        assert_eq!(shorten(&ids[..5], 7), "1, 2, 3, 4, 5 and 2 more");
        assert_eq!(shorten(&ids[..2], 2), "1, 2");
    }
}
