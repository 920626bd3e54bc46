//! Benchmark 6, batch: a 1,000,000-line batch file run by one process that runs only
//! imggen-core (the mock runs in this one): that process's peak RSS, how long the validation
//! pass and the journal load take, and when the first create is sent — then the same batch
//! again, as a resume.

use std::io::{BufRead, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::CancellationToken;
use imggen_core::Imggen;
use imggen_core::batch::{
    BatchEvent, BatchEventKind, BatchOptions, BatchRunner, BatchSource, RESULTS_FILE,
    RequestDefaults,
};
use imggen_mock::{MockConfig, Profile};
use serde::{Deserialize, Serialize};

use super::harness::{
    MockHost, charges, gptimg_imggen, print_worker_report, status_kib, thousands,
};
use super::report::{Section, Table, Target, Verdict, fixed};

const KEY: &str = "sk-bench-batch-0001";
const RSS_TARGET_MIB: f64 = 128.0;
const FIRST_CREATE_TARGET_S: f64 = 10.0;
/// Requests in progress at once: enough that the window sees steady traffic.
const CONCURRENCY: usize = 64;
/// How long every mock task takes: short, so requests finish inside the window.
const TASK: Duration = Duration::from_secs(1);
/// gptimg's schedule scaled so its first poll (35 s as shipped) comes just after [`TASK`].
const SCHEDULE_SCALE: f64 = 0.03;

/// What the prompts are about; a line's number picks one, so no two lines are the same.
const SUBJECTS: [&str; 8] = [
    "a lighthouse at dusk",
    "a ceramic lamp on a desk",
    "a fox in fresh snow",
    "a tram in the rain",
    "a bowl of lemons",
    "a glacier at noon",
    "a night market",
    "an old map of a harbour",
];

struct Sizes {
    lines: usize,
    /// How long the first run goes on after its first create, before it is cancelled.
    window: Duration,
    /// A run that has not ended this long after it began is cancelled, whatever it is doing.
    limit: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                lines: 20_000,
                window: Duration::from_secs(5),
                limit: Duration::from_secs(120),
            }
        } else {
            Sizes {
                lines: 1_000_000,
                window: Duration::from_secs(20),
                limit: Duration::from_secs(600),
            }
        }
    }
}

/// One run's figures, in seconds since the run was started unless said otherwise.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RunFigures {
    /// `Checked`: every line validated.
    checked_s: Option<f64>,
    /// `Checked` → `Journaled`: every line written to (or compared with) the journal.
    load_s: Option<f64>,
    /// `Started`: the journal read, the run begins.
    started_s: Option<f64>,
    /// The first `Submitting`.
    first_create_s: Option<f64>,
    /// When the benchmark cancelled the run.
    cancelled_s: Option<f64>,
    /// When `run` returned.
    returned_s: f64,
    /// From `Checked`.
    requests: Option<usize>,
    invalid: Option<usize>,
    /// From `Journaled`.
    added: Option<usize>,
    kept: Option<usize>,
    replaced: Option<usize>,
    /// `progress.total` at `Started`.
    total: Option<usize>,
    /// `Done` events in the whole run.
    done: usize,
    /// `Done` events before the cancel.
    done_in_window: usize,
    failed: usize,
    unknown: usize,
    /// Whether the time limit, not the benchmark's window, stopped the run.
    hit_limit: bool,
}

impl RunFigures {
    /// The validation pass: from the start to `Checked`.
    fn validate_s(&self) -> Option<f64> {
        self.checked_s
    }

    /// From the cancel to `run` returning: the in-flight requests' bookkeeping and all of
    /// `results.jsonl`.
    fn results_written_s(&self) -> Option<f64> {
        self.cancelled_s.map(|at| self.returned_s - at)
    }
}

/// What the worker process reports on stdout, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    lines: usize,
    /// How long the first run went on after its first create.
    window_s: f64,
    first: RunFigures,
    /// The same batch again, on the same journal: cancelled at its first create.
    resume: RunFigures,
    /// Lines of `results.jsonl` after the first run.
    results_lines: u64,
    /// Resident set before the first run (the runtime and client built).
    baseline_rss_kib: u64,
    /// Peak resident set (`VmHWM`) when the first run had returned.
    first_run_peak_rss_kib: u64,
    /// Peak resident set of the whole process, both runs.
    peak_rss_kib: u64,
}

/// Runs the benchmark: the batch file and the mock here, the batch in a child process.
pub fn run(root: &Path, quick: bool) -> Result<Section, String> {
    let sizes = Sizes::new(quick);
    let dir = super::target_dir(root).join("bench").join("batch");
    let input = dir.join("input.jsonl");
    let out = dir.join("out");
    // A fresh journal: the first run must write every line.
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|err| format!("could not remove {}: {err}", out.display()))?;
    }
    std::fs::create_dir_all(&out)
        .map_err(|err| format!("could not create {}: {err}", out.display()))?;
    write_batch_file(&input, sizes.lines)
        .map_err(|err| format!("could not write {}: {err}", input.display()))?;
    let host = MockHost::start(
        MockConfig::default()
            .profile(Profile::Fixed(TASK))
            .api_key(KEY),
    )?;
    let exe = std::env::current_exe().map_err(|err| format!("where is xtask? {err}"))?;
    let started = Instant::now();
    let output = Command::new(&exe)
        .args(["bench-worker", "batch", "--base-url", &host.url()])
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args([
            "--lines",
            &sizes.lines.to_string(),
            "--window-s",
            &sizes.window.as_secs_f64().to_string(),
            "--limit-s",
            &sizes.limit.as_secs_f64().to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("could not start {}: {err}", exe.display()))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!("the worker process failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: WorkerReport = serde_json::from_str(line)
        .map_err(|err| format!("the worker's report {line:?} is not JSON: {err}"))?;
    let requests = host.server().requests().total;
    let charges = charges(host.server());
    drop(host);
    eprintln!(
        "    {} lines, validated in {} s, journaled in {} s, first create at {} s, peak RSS \
         {:.1} MiB, results.jsonl {} lines, {:.0} s",
        report.lines,
        seconds(report.first.validate_s()),
        seconds(report.first.load_s),
        seconds(report.first.first_create_s),
        report.peak_rss_kib as f64 / 1024.0,
        report.results_lines,
        wall.as_secs_f64()
    );
    if report.results_lines != report.lines as u64 {
        eprintln!(
            "    results.jsonl has {} lines for {} input lines",
            report.results_lines, report.lines
        );
    }
    Ok(section(&sizes, &report, requests, charges))
}

/// `12.34`, or `—` for a moment that never came.
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |value| fixed(value, 2))
}

fn count(value: Option<usize>) -> String {
    value.map_or_else(|| "—".into(), |value| thousands(value as u64))
}

fn section(sizes: &Sizes, report: &WorkerReport, requests: u64, charges: usize) -> Section {
    let peak_mib = report.peak_rss_kib as f64 / 1024.0;
    let (first, resume) = (&report.first, &report.resume);
    let mut runs = Table::new(&["figure", "first run", "resume"]);
    let mut row = |name: &str, first: String, resume: String| {
        runs.row(vec![name.into(), first, resume]);
    };
    row(
        "requests validated (`Checked`), invalid",
        format!("{}, {}", count(first.requests), count(first.invalid)),
        format!("{}, {}", count(resume.requests), count(resume.invalid)),
    );
    row(
        "journal: added, kept, replaced (`Journaled`)",
        format!(
            "{}, {}, {}",
            count(first.added),
            count(first.kept),
            count(first.replaced)
        ),
        format!(
            "{}, {}, {}",
            count(resume.added),
            count(resume.kept),
            count(resume.replaced)
        ),
    );
    row(
        "validation pass (start → `Checked`), s",
        seconds(first.validate_s()),
        seconds(resume.validate_s()),
    );
    row(
        "journal load (`Checked` → `Journaled`), s",
        seconds(first.load_s),
        seconds(resume.load_s),
    );
    row(
        "run started (start → `Started`), s",
        seconds(first.started_s),
        seconds(resume.started_s),
    );
    row(
        "first create sent (start → first `Submitting`), s",
        seconds(first.first_create_s),
        seconds(resume.first_create_s),
    );
    row(
        "requests done (`Done` events): before the cancel, in all",
        format!(
            "{}, {}",
            thousands(first.done_in_window as u64),
            thousands(first.done as u64)
        ),
        format!(
            "{}, {}",
            thousands(resume.done_in_window as u64),
            thousands(resume.done as u64)
        ),
    );
    row(
        "requests failed, unknown",
        format!("{}, {}", first.failed, first.unknown),
        format!("{}, {}", resume.failed, resume.unknown),
    );
    row(
        "cancel → `run` returned (in-flight bookkeeping and results.jsonl), s",
        seconds(first.results_written_s()),
        seconds(resume.results_written_s()),
    );
    row(
        "whole run, s",
        fixed(first.returned_s, 2),
        fixed(resume.returned_s, 2),
    );

    let mut process = Table::new(&["figure", "value"]);
    let mut row = |name: &str, value: String| process.row(vec![name.into(), value]);
    row("lines in the batch file", thousands(report.lines as u64));
    row(
        "lines of results.jsonl after the first run",
        thousands(report.results_lines),
    );
    row(
        "peak RSS of the process, both runs (VmHWM)",
        format!("{peak_mib:.1} MiB"),
    );
    row(
        "peak RSS when the first run had returned",
        format!("{:.1} MiB", report.first_run_peak_rss_kib as f64 / 1024.0),
    );
    row(
        "RSS before the first run",
        format!("{:.1} MiB", report.baseline_rss_kib as f64 / 1024.0),
    );
    row(
        "requests done per second, first create to cancel (first run)",
        fixed(
            first.done_in_window as f64 / report.window_s.max(f64::MIN_POSITIVE),
            1,
        ),
    );
    row("requests the mock received", thousands(requests));
    row("creates the mock charged", thousands(charges as u64));

    let results_complete = report.results_lines == report.lines as u64;
    let mut notes = Vec::new();
    if !results_complete {
        notes.push(format!(
            "**results.jsonl has {} lines for {} input lines**: it should have one per line.",
            thousands(report.results_lines),
            thousands(report.lines as u64)
        ));
    }
    for (name, run) in [("first run", first), ("resume", resume)] {
        if run.hit_limit {
            notes.push(format!(
                "**The {name} was cancelled by the benchmark's {} s time limit**, not after \
                 its first create: its later figures are missing.",
                sizes.limit.as_secs()
            ));
        }
        if run.total.is_some_and(|total| total != report.lines) {
            notes.push(format!(
                "**The {name} counted {} requests at `Started`** for {} lines.",
                count(run.total),
                thousands(report.lines as u64)
            ));
        }
    }
    notes.push(format!(
        "Peak RSS is the whole child process's — runtime, HTTP client, SQLite's page cache, \
         the images being downloaded — not the batch's data alone. The mock's tasks take {} s \
         and gptimg's schedule is scaled by {SCHEDULE_SCALE} (first poll just after that), so \
         with {CONCURRENCY} requests in progress a request can finish about a second after \
         its create: the number done in the window shows how much work the run did while \
         it was measured.",
        TASK.as_secs()
    ));

    let first_create = first.first_create_s;
    Section {
        number: 6,
        title: "Batch of a million lines".into(),
        method: format!(
            "A batch file of {} lines (`{{\"id\":\"p0000001\",\"prompt\":\"a lighthouse at \
             dusk, study 1\"}}`, every prompt different) run by `BatchRunner` in a process \
             that runs nothing but imggen-core (the `xtask bench-worker batch` child process, \
             a release build, on a multi-threaded Tokio runtime); the mock runs in the parent. \
             The file is given as `BatchSource::file`, so the runner reads it itself; \
             {CONCURRENCY} requests in progress at once, against a fresh journal. The child \
             notes when each event arrives, from when it called `run`: `Checked` (every line \
             validated), `Journaled` (every line written to the journal), `Started` and the \
             first `Submitting`. It cancels the run {} s after that first create and waits for \
             `run` to return — which writes results.jsonl, one line per input line — then \
             counts that file's lines, streaming. Then it runs the same file again on the same \
             folder (a resume: every line already journaled) and cancels at its first create. \
             It reads its own peak resident set (`VmHWM`) after each run.",
            thousands(report.lines as u64),
            report.window_s
        ),
        tables: vec![
            runs.caption("Each run, its times in seconds from its call to `run`:"),
            process,
        ],
        targets: vec![
            Target {
                goal: format!("peak RSS ≤ {RSS_TARGET_MIB:.0} MiB for the whole process"),
                measured: format!("{peak_mib:.1} MiB"),
                verdict: Verdict::from_bool(peak_mib <= RSS_TARGET_MIB),
            },
            Target {
                goal: format!("first create within {FIRST_CREATE_TARGET_S:.0} s of the start"),
                measured: first_create
                    .map_or_else(|| "never sent".into(), |at| format!("{} s", fixed(at, 2))),
                verdict: Verdict::from_bool(
                    first_create.is_some_and(|at| at <= FIRST_CREATE_TARGET_S),
                ),
            },
            Target {
                goal: "validation pass and journal load time reported".into(),
                measured: format!(
                    "validation {} s, journal load {} s",
                    seconds(first.validate_s()),
                    seconds(first.load_s)
                ),
                verdict: Verdict::Reported,
            },
            Target {
                goal: "results.jsonl has one line per input line".into(),
                measured: format!(
                    "{} for {}",
                    thousands(report.results_lines),
                    thousands(report.lines as u64)
                ),
                verdict: Verdict::from_bool(results_complete),
            },
        ],
        notes,
    }
}

/// Line `number` (from 1) of the batch file.
fn batch_line(number: usize) -> String {
    let subject = SUBJECTS[(number.saturating_sub(1)) % SUBJECTS.len()];
    format!("{{\"id\":\"p{number:07}\",\"prompt\":\"{subject}, study {number}\"}}")
}

fn write_batch_file(path: &Path, lines: usize) -> std::io::Result<()> {
    let mut file = BufWriter::new(std::fs::File::create(path)?);
    for number in 1..=lines {
        writeln!(file, "{}", batch_line(number))?;
    }
    file.flush()
}

/// The lines of `reader`, a buffer at a time (a last line without its newline counts).
fn count_lines(mut reader: impl BufRead) -> std::io::Result<u64> {
    let mut lines = 0;
    let mut last = b'\n';
    loop {
        let buffer = reader.fill_buf()?;
        let Some(&end) = buffer.last() else { break };
        lines += buffer.iter().filter(|byte| **byte == b'\n').count() as u64;
        last = end;
        let length = buffer.len();
        reader.consume(length);
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// Worker options.
#[derive(Debug)]
struct WorkerOptions {
    base_url: String,
    input: PathBuf,
    out: PathBuf,
    lines: usize,
    window: Duration,
    limit: Duration,
}

fn parse_worker(args: &[&str]) -> Result<WorkerOptions, String> {
    let (mut base_url, mut input, mut out, mut lines) = (None, None, None, None);
    let mut window = Duration::from_secs(20);
    let mut limit = Duration::from_secs(600);
    let seconds = |flag: &str, value: &str| {
        value
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("{flag} {value}?"))
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--base-url" => base_url = Some((*value).to_owned()),
            "--input" => input = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--lines" => lines = Some(value.parse().map_err(|_| format!("--lines {value}?"))?),
            "--window-s" => window = seconds(flag, value)?,
            "--limit-s" => limit = seconds(flag, value)?,
            other => return Err(format!("unknown worker flag {other}")),
        }
    }
    Ok(WorkerOptions {
        base_url: base_url.ok_or("--base-url is required")?,
        input: input.ok_or("--input is required")?,
        out: out.ok_or("--out is required")?,
        lines: lines.ok_or("--lines is required")?,
        window,
        limit,
    })
}

/// `xtask bench-worker batch --base-url URL --input FILE --out DIR --lines N [--window-s S]
/// [--limit-s S]`: runs the batch twice and prints a [`WorkerReport`] line.
pub fn worker(args: &[&str]) -> Result<(), String> {
    let options = parse_worker(args)?;
    print_worker_report(run_worker(options))
}

async fn run_worker(options: WorkerOptions) -> Result<WorkerReport, String> {
    let imggen = gptimg_imggen(&options.base_url, KEY, SCHEDULE_SCALE)?;
    let baseline_rss_kib = status_kib("VmRSS").unwrap_or(0);
    let first = run_batch(&imggen, &options, options.window)
        .await
        .map_err(|err| format!("the first run failed: {err}"))?;
    let first_run_peak_rss_kib = status_kib("VmHWM").unwrap_or(0);
    let results = options.out.join(RESULTS_FILE);
    let results_lines = std::fs::File::open(&results)
        .and_then(|file| count_lines(std::io::BufReader::new(file)))
        .map_err(|err| format!("could not read {}: {err}", results.display()))?;
    let resume = run_batch(&imggen, &options, Duration::ZERO)
        .await
        .map_err(|err| format!("the resume failed: {err}"))?;
    Ok(WorkerReport {
        lines: options.lines,
        window_s: options.window.as_secs_f64(),
        first,
        resume,
        results_lines,
        baseline_rss_kib,
        first_run_peak_rss_kib,
        peak_rss_kib: status_kib("VmHWM").unwrap_or(0),
    })
}

/// What a run's event callback notes, as it happens.
struct Probe {
    start: Instant,
    token: CancellationToken,
    /// Microseconds since `start`, plus one; 0 until it happens.
    checked: AtomicU64,
    journaled: AtomicU64,
    started: AtomicU64,
    first_create: AtomicU64,
    cancelled: AtomicU64,
    done: AtomicUsize,
    done_in_window: AtomicUsize,
    failed: AtomicUsize,
    unknown: AtomicUsize,
    hit_limit: AtomicBool,
    counts: Mutex<RunFigures>,
}

impl Probe {
    fn new(start: Instant) -> Probe {
        Probe {
            start,
            token: CancellationToken::new(),
            checked: AtomicU64::new(0),
            journaled: AtomicU64::new(0),
            started: AtomicU64::new(0),
            first_create: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            done_in_window: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            unknown: AtomicUsize::new(0),
            hit_limit: AtomicBool::new(false),
            counts: Mutex::new(RunFigures::default()),
        }
    }

    /// Notes now in `cell` unless it was noted before; whether this was the first time.
    fn stamp(&self, cell: &AtomicU64) -> bool {
        let now = u64::try_from(self.start.elapsed().as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        cell.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn at(cell: &AtomicU64) -> Option<f64> {
        match cell.load(Ordering::SeqCst) {
            0 => None,
            micros => Some(Duration::from_micros(micros - 1).as_secs_f64()),
        }
    }

    fn cancel(&self) {
        self.stamp(&self.cancelled);
        self.token.cancel();
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, RunFigures> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The callback's work: note the moment, and start the window at the first create.
    fn on_event(
        self: &Arc<Self>,
        event: &BatchEvent,
        window: Duration,
        runtime: &tokio::runtime::Handle,
    ) {
        match &event.kind {
            BatchEventKind::Checked {
                requests, invalid, ..
            } => {
                self.stamp(&self.checked);
                let mut counts = self.counts();
                counts.requests = Some(*requests);
                counts.invalid = Some(*invalid);
            }
            BatchEventKind::Journaled {
                added,
                kept,
                replaced,
                ..
            } => {
                self.stamp(&self.journaled);
                let mut counts = self.counts();
                counts.added = Some(*added);
                counts.kept = Some(*kept);
                counts.replaced = Some(*replaced);
            }
            BatchEventKind::Started => {
                self.stamp(&self.started);
                self.counts().total = Some(event.progress.total);
            }
            // Only the first create starts the window.
            BatchEventKind::Submitting { .. } if self.stamp(&self.first_create) => {
                if window.is_zero() {
                    self.cancel();
                } else {
                    let probe = Arc::clone(self);
                    runtime.spawn(async move {
                        tokio::time::sleep(window).await;
                        probe.cancel();
                    });
                }
            }
            BatchEventKind::Done { .. } => {
                self.done.fetch_add(1, Ordering::Relaxed);
                if self.cancelled.load(Ordering::SeqCst) == 0 {
                    self.done_in_window.fetch_add(1, Ordering::Relaxed);
                }
            }
            BatchEventKind::Failed { .. } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            BatchEventKind::Unknown { .. } => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn figures(&self, returned: Duration) -> RunFigures {
        let mut figures = std::mem::take(&mut *self.counts());
        figures.checked_s = Probe::at(&self.checked);
        figures.load_s = Probe::at(&self.journaled)
            .zip(figures.checked_s)
            .map(|(journaled, checked)| journaled - checked);
        figures.started_s = Probe::at(&self.started);
        figures.first_create_s = Probe::at(&self.first_create);
        figures.cancelled_s = Probe::at(&self.cancelled);
        figures.returned_s = returned.as_secs_f64();
        figures.done = self.done.load(Ordering::SeqCst);
        figures.done_in_window = self.done_in_window.load(Ordering::SeqCst);
        figures.failed = self.failed.load(Ordering::SeqCst);
        figures.unknown = self.unknown.load(Ordering::SeqCst);
        figures.hit_limit = self.hit_limit.load(Ordering::SeqCst);
        figures
    }
}

/// Runs the batch file once, cancelling it `window` after its first create (at once for a
/// zero window), or at the time limit.
async fn run_batch(
    imggen: &Imggen,
    options: &WorkerOptions,
    window: Duration,
) -> Result<RunFigures, String> {
    let runtime = tokio::runtime::Handle::current();
    let start = Instant::now();
    let probe = Arc::new(Probe::new(start));
    let limit = {
        let probe = Arc::clone(&probe);
        let limit = options.limit;
        runtime.spawn(async move {
            tokio::time::sleep(limit).await;
            probe.hit_limit.store(true, Ordering::SeqCst);
            probe.cancel();
        })
    };
    let batch_options = BatchOptions::new(&options.out)
        .concurrency(CONCURRENCY)
        .cancel(probe.token.clone())
        .on_event({
            let probe = Arc::clone(&probe);
            move |event| probe.on_event(event, window, &runtime)
        });
    let source = BatchSource::file(options.input.clone(), RequestDefaults::new());
    let result = BatchRunner::new(imggen.clone(), batch_options)
        .run(source)
        .await;
    let returned = start.elapsed();
    limit.abort();
    result.map_err(|err| err.to_string())?;
    Ok(probe.figures(returned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_needs_a_url_files_and_a_line_count() {
        let options = parse_worker(&[
            "--base-url",
            "http://127.0.0.1:1",
            "--input",
            "in.jsonl",
            "--out",
            "out",
            "--lines",
            "20000",
            "--window-s",
            "5",
        ])
        .unwrap();
        assert_eq!(options.lines, 20_000);
        assert_eq!(options.input, Path::new("in.jsonl"));
        assert_eq!(options.window, Duration::from_secs(5));
        assert_eq!(options.limit, Duration::from_secs(600));
        let error = parse_worker(&["--base-url", "u", "--input", "i", "--lines", "1"]);
        assert!(error.unwrap_err().contains("--out"));
        let error = parse_worker(&["--window-s", "-1"]).unwrap_err();
        assert!(error.contains("--window-s -1?"), "{error}");
        assert!(
            parse_worker(&["--lines"])
                .unwrap_err()
                .contains("needs a value")
        );
    }

    #[test]
    fn every_line_is_a_request_with_its_own_id_and_prompt() {
        assert_eq!(
            batch_line(1),
            r#"{"id":"p0000001","prompt":"a lighthouse at dusk, study 1"}"#
        );
        let last: serde_json::Value = serde_json::from_str(&batch_line(1_000_000)).unwrap();
        assert_eq!(last["id"], "p1000000");
        assert_eq!(last["prompt"], "an old map of a harbour, study 1000000");
        assert_eq!(last.as_object().unwrap().len(), 2);
        assert_ne!(batch_line(9), batch_line(1));
    }

    #[test]
    fn lines_are_counted_across_buffers_with_or_without_a_last_newline() {
        let text = "a\nb\nc\n".repeat(1000);
        let small = std::io::BufReader::with_capacity(7, text.as_bytes());
        assert_eq!(count_lines(small).unwrap(), 3000);
        assert_eq!(count_lines("a\nb".as_bytes()).unwrap(), 2);
        assert_eq!(count_lines("".as_bytes()).unwrap(), 0);
    }
}
