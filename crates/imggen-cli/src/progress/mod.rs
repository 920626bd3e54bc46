//! Progress on stderr, in the mode `--progress` picks (`IMGGEN_PROGRESS`):
//!
//! - **bar** (`auto` on a terminal): one live line per task (provider, task id, status,
//!   elapsed) — or, for a batch, one bar (requests finished of the total, done / failed / in
//!   flight, cost so far, ETA) — with every other stderr line, logs included, printed above it
//!   so the two never garble each other;
//! - **plain** (`auto` elsewhere: CI, `nohup`, a log file): a line per change of a short run
//!   ([`lines::SHORT_RUN`] requests at most) and, while a run goes on, a summary line every
//!   `--progress-interval` (10 s by default);
//! - **jsonl**: one JSON object per line ([`events`]) and nothing else — notices, warnings,
//!   logs and errors are events too;
//! - **none** (and `-q`): no progress.
//!
//! A task's status is the one imggen-core's own polls read (its `on_status` hook), and a
//! batch's totals are its events': the CLI never polls or counts on its own, so it never
//! spends a request of the key's budget that core's scheduler did not plan. Everything
//! written is escaped for the terminal: task ids, statuses and errors are servers' text.

pub(crate) mod events;
pub(crate) mod lines;

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::batch::{BatchEvent, BatchEventKind, Progress as BatchTotals};
use imggen_core::{Cost, TaskHandle, TaskState};
use imggen_types::text::{Untrusted, for_terminal};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::args::ProgressMode;
use crate::exit::Failure;
use crate::output::BatchOutput;

pub(crate) use lines::entry_label;

/// The mode in effect, `auto` and `-q` resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Bar,
    Plain,
    Jsonl,
    None,
}

/// What `--progress` (or `IMGGEN_PROGRESS`) asked for, on a terminal or not, with `-q` or
/// not: `-q` shows no progress at all.
pub(crate) fn resolve(asked: ProgressMode, quiet: bool, terminal: bool) -> Mode {
    match asked {
        _ if quiet => Mode::None,
        ProgressMode::Auto if terminal => Mode::Bar,
        ProgressMode::Auto | ProgressMode::Plain => Mode::Plain,
        ProgressMode::Bar => Mode::Bar,
        ProgressMode::Jsonl => Mode::Jsonl,
        ProgressMode::None => Mode::None,
    }
}

/// Where the lines go: stderr, or a buffer in unit tests.
enum Sink {
    Stderr,
    #[cfg(test)]
    Buffer(Mutex<Vec<String>>),
}

/// The progress display of one run.
pub(crate) struct Progress {
    mode: Mode,
    quiet: bool,
    /// stderr carries JSON lines only (`--progress jsonl`, with `-q` too).
    json: bool,
    interval: Duration,
    started: Instant,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The tasks of `generate`, `submit` and `wait` (plain and jsonl): provider and last
    /// status, so a repeated status is not a change.
    tasks: Mutex<HashMap<String, TaskLine>>,
    batch: Mutex<Option<BatchState>>,
    sink: Sink,
}

struct TaskLine {
    label: String,
    status: String,
    finished: bool,
}

/// A batch under way.
struct BatchState {
    totals: BatchTotals,
    /// What the batch should cost in all, once its lines are checked.
    projected: Option<lines::Projection>,
    started: Instant,
    bar: Option<ProgressBar>,
    /// The last status of each task being waited on (dropped when it ends): a repeated
    /// status is not a change. Only tasks in flight are kept, so memory stays flat.
    statuses: HashMap<String, String>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Progress {
    /// The display `--progress` asked for; `interval` paces the steady lines.
    pub fn new(asked: ProgressMode, quiet: bool, interval: Duration) -> Arc<Progress> {
        let mode = resolve(asked, quiet, std::io::stderr().is_terminal());
        Arc::new(Progress::with_sink(
            mode,
            quiet,
            asked == ProgressMode::Jsonl,
            interval,
            Sink::Stderr,
        ))
    }

    fn with_sink(mode: Mode, quiet: bool, json: bool, interval: Duration, sink: Sink) -> Progress {
        let target = if mode == Mode::Bar {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            mode,
            quiet,
            json,
            interval,
            started: Instant::now(),
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            batch: Mutex::new(None),
            sink,
        }
    }

    /// Whether stderr carries JSON lines only.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// When this run started (the `elapsed_ms` of events counts from it).
    pub fn started(&self) -> Instant {
        self.started
    }

    // --- tasks of generate, submit and wait ---------------------------------------------

    /// A task was created (and paid for). `resumable`: it outlives this run (not the
    /// emulator's) and its handle is not printed on stdout — so, without live lines, a line
    /// keeps the command that resumes it in the logs of a run stopped before it ends.
    pub fn created(&self, label: &str, handle: &TaskHandle, resumable: bool) {
        match self.mode {
            Mode::Bar => self.bar_line(label, handle, "created"),
            Mode::Plain => {
                self.track(label, &handle.task_id, "created");
                self.write_lines(&[lines::created(label, handle, resumable)]);
            }
            Mode::Jsonl => {
                self.track(label, &handle.task_id, "created");
                self.write_json(&events::created(None, label, handle));
            }
            Mode::None if resumable && !self.quiet => {
                self.write_lines(&[lines::created(label, handle, true)]);
            }
            Mode::None => {}
        }
    }

    /// Starts showing a task created earlier (`wait`), in `status`.
    pub fn task(&self, label: &str, handle: &TaskHandle, status: &str) {
        match self.mode {
            Mode::Bar => self.bar_line(label, handle, status),
            Mode::Plain | Mode::Jsonl => {
                self.track(label, &handle.task_id, "");
                self.change(&handle.task_id, status, None);
            }
            Mode::None => {}
        }
    }

    /// Shows a task's latest status (as imggen-core's poll read it).
    pub fn status(&self, task_id: &str, state: &TaskState) {
        let why = match state {
            TaskState::Failed { code, message } => {
                let words: Vec<&str> = [code.as_deref(), message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!words.is_empty()).then(|| words.join(": "))
            }
            _ => None,
        };
        match self.mode {
            Mode::Bar => {
                if let Some(bar) = lock(&self.bars).get(task_id) {
                    // An unknown status is the provider's own word: shown, escaped.
                    bar.set_message(for_terminal(state.name()).into_owned());
                }
            }
            Mode::Plain | Mode::Jsonl => self.change(task_id, state.name(), why.as_deref()),
            Mode::None => {}
        }
    }

    /// Ends a task's line with its final status.
    pub fn finish(&self, task_id: &str, status: &str) {
        match self.mode {
            Mode::Bar => {
                if let Some(bar) = lock(&self.bars).remove(task_id) {
                    bar.finish_with_message(status.to_owned());
                }
            }
            Mode::Plain | Mode::Jsonl => self.change(task_id, status, None),
            Mode::None => {}
        }
    }

    /// Ends every task still going with `status`.
    pub fn finish_all(&self, status: &str) {
        match self.mode {
            Mode::Bar => {
                for (_, bar) in lock(&self.bars).drain() {
                    bar.abandon_with_message(status.to_owned());
                }
            }
            Mode::Plain | Mode::Jsonl => {
                let going: Vec<String> = lock(&self.tasks)
                    .iter()
                    .filter(|(_, task)| !task.finished)
                    .map(|(id, _)| id.clone())
                    .collect();
                for task_id in going {
                    self.change(&task_id, status, None);
                }
            }
            Mode::None => {}
        }
    }

    /// A task's image is on disk.
    pub fn saved(&self, task_id: &str, path: &str) {
        let label = match lock(&self.tasks).get(task_id) {
            Some(task) => task.label.clone(),
            None => return,
        };
        match self.mode {
            Mode::Plain => self.write_lines(&[lines::saved(&label, task_id, path)]),
            Mode::Jsonl => self.write_json(&events::saved(&label, task_id, path)),
            _ => {}
        }
    }

    /// What the run has cost so far (a `cost` event; plain lines say it with each task).
    pub fn cost(&self, total: Cost) {
        if self.mode == Mode::Jsonl {
            self.write_json(&events::cost(total));
        }
    }

    fn bar_line(&self, label: &str, handle: &TaskHandle, status: &str) {
        // A resumed task's clock starts when it was created, not when this process started.
        let elapsed = handle
            .created_at_time()
            .and_then(|created| created.elapsed().ok())
            .unwrap_or(Duration::ZERO);
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg:10} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner()
            .with_style(style)
            .with_prefix(format!("{label} {}", Untrusted(&handle.task_id)))
            .with_message(for_terminal(status).into_owned())
            .with_elapsed(elapsed);
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        lock(&self.bars).insert(handle.task_id.clone(), bar);
    }

    fn track(&self, label: &str, task_id: &str, status: &str) {
        lock(&self.tasks).insert(
            task_id.to_owned(),
            TaskLine {
                label: label.to_owned(),
                status: status.to_owned(),
                finished: false,
            },
        );
    }

    /// Says a task's status when it is not the one last said.
    fn change(&self, task_id: &str, status: &str, why: Option<&str>) {
        let label = {
            let mut tasks = lock(&self.tasks);
            let Some(task) = tasks.get_mut(task_id) else {
                return;
            };
            if task.status == status {
                return;
            }
            task.status = status.to_owned();
            // The statuses a task ends with: imggen-core's terminal states, and the ones
            // [`Progress::finish_all`] is given when a wait stops.
            task.finished = matches!(
                status,
                "succeeded" | "failed" | "interrupted" | "deadline passed" | "stopped"
            );
            task.label.clone()
        };
        match self.mode {
            Mode::Plain => self.write_lines(&[lines::task_status(&label, task_id, status, why)]),
            Mode::Jsonl if status == "failed" => {
                self.write_json(&events::task_failed(&label, task_id, why));
            }
            Mode::Jsonl => self.write_json(&events::status(None, &label, task_id, status)),
            _ => {}
        }
    }

    // --- batches --------------------------------------------------------------------------

    /// A batch starts: its bar (drawn only where the task lines would be) and its totals.
    pub fn start_batch(&self) {
        let bar = (self.mode == Mode::Bar).then(|| {
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            self.multi.add(ProgressBar::new(0).with_style(style))
        });
        *lock(&self.batch) = Some(BatchState {
            totals: BatchTotals::default(),
            projected: None,
            started: Instant::now(),
            bar,
            statuses: HashMap::new(),
        });
    }

    /// Shows a batch event: the bar's totals, a plain line per change of a short run, or
    /// its JSON events (with a `cost` event when the cost so far changed).
    pub fn batch_event(&self, event: &BatchEvent) {
        let (status_changed, cost_changed, short) = {
            let mut batch = lock(&self.batch);
            let Some(batch) = batch.as_mut() else {
                return;
            };
            let cost_changed = batch.totals.cost != event.progress.cost;
            batch.totals = event.progress.clone();
            if let BatchEventKind::Checked {
                projected,
                unpriced,
                ..
            } = &event.kind
            {
                batch.projected = Some(lines::Projection {
                    cost: *projected,
                    unpriced: *unpriced,
                });
            }
            if let Some(bar) = &batch.bar {
                bar.set_length(event.progress.total as u64);
                bar.set_position(event.progress.finished() as u64);
                bar.set_message(lines::bar_text(
                    &event.progress,
                    batch.projected.as_ref(),
                    batch.started.elapsed(),
                ));
            }
            let status_changed = match &event.kind {
                BatchEventKind::Status { handle, state } => {
                    let name = state.name();
                    let changed = batch
                        .statuses
                        .get(&handle.task_id)
                        .is_none_or(|last| last != name);
                    if state.is_terminal() {
                        batch.statuses.remove(&handle.task_id);
                    } else if changed {
                        batch
                            .statuses
                            .insert(handle.task_id.clone(), name.to_owned());
                    }
                    changed
                }
                _ => false,
            };
            (
                status_changed,
                cost_changed,
                lines::is_short(&event.progress),
            )
        };
        let request = event.id.as_deref().zip(event.line);
        match self.mode {
            Mode::Plain if short => {
                self.write_lines(&lines::batch_event(request, &event.kind, status_changed));
            }
            Mode::Jsonl => {
                if let BatchEventKind::Checked {
                    projected,
                    unpriced,
                    ..
                } = &event.kind
                {
                    self.write_json(&events::projected(*projected, *unpriced));
                }
                for value in events::batch_event(request, &event.kind, status_changed) {
                    self.write_json(&value);
                }
                if cost_changed {
                    self.write_json(&events::cost(event.progress.cost));
                }
            }
            _ => {}
        }
    }

    /// The batch is over: its bar makes way for the summary line.
    pub fn end_batch(&self) {
        if let Some(batch) = lock(&self.batch).as_mut()
            && let Some(bar) = batch.bar.take()
        {
            bar.finish_and_clear();
        }
    }

    /// The summary of a batch that ran (not with `-q`): `line` for people, `output`'s
    /// counts for scripts.
    pub fn batch_summary(&self, line: &str, output: &BatchOutput) {
        if self.quiet {
            return;
        }
        if self.json {
            self.write_json(&events::event(
                "summary",
                json!({
                    "message": line.trim_start_matches("imggen: "),
                    "total": output.total,
                    "counts": output.counts,
                    "cost": output.cost,
                    "results": output.results,
                    "gallery": output.gallery,
                }),
            ));
        } else {
            self.write_lines(&[line.to_owned()]);
        }
    }

    // --- the steady pace ------------------------------------------------------------------

    /// Starts the summary line (plain) or `progress` event (jsonl, batches) every
    /// `--progress-interval` while the returned ticker lives; `None` in other modes.
    pub fn ticker(self: &Arc<Self>) -> Option<Ticker> {
        if !matches!(self.mode, Mode::Plain | Mode::Jsonl) {
            return None;
        }
        let progress = Arc::clone(self);
        let period = self.interval;
        Some(Ticker(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                progress.tick();
            }
        })))
    }

    /// One steady-pace line: the batch's totals, or the tasks still waited on.
    fn tick(&self) {
        // Nothing to say of a batch before its lines are counted.
        let batch = lock(&self.batch)
            .as_ref()
            .map(|batch| {
                (
                    batch.totals.clone(),
                    batch.projected,
                    batch.started.elapsed(),
                )
            })
            .filter(|(totals, _, _)| totals.total > 0);
        match (self.mode, batch) {
            (Mode::Plain, Some((totals, projected, elapsed))) => {
                self.write_lines(&[lines::batch_summary(&totals, projected.as_ref(), elapsed)]);
            }
            (Mode::Jsonl, Some((totals, _, _))) => self.write_json(&events::progress(&totals)),
            (Mode::Plain, None) => {
                let line = {
                    let tasks = lock(&self.tasks);
                    let going: Vec<&str> = tasks
                        .values()
                        .filter(|task| !task.finished)
                        .map(|task| task.status.as_str())
                        .collect();
                    (!going.is_empty())
                        .then(|| lines::tasks_summary(&going, self.started.elapsed()))
                };
                if let Some(line) = line {
                    self.write_lines(&[line]);
                }
            }
            _ => {}
        }
    }

    // --- notices, warnings, errors --------------------------------------------------------

    /// `imggen: MESSAGE` (not with `-q`).
    pub fn notice(&self, message: &str) {
        if self.quiet {
            return;
        }
        if self.json {
            self.write_json(&events::event("notice", json!({ "message": message })));
        } else {
            self.write_lines(&[format!("imggen: {message}")]);
        }
    }

    /// `imggen: warning: MESSAGE` (not with `-q`).
    pub fn warning(&self, message: &str) {
        if self.quiet {
            return;
        }
        if self.json {
            self.write_json(&events::event("warning", json!({ "message": message })));
        } else {
            self.write_lines(&[format!("imggen: warning: {message}")]);
        }
    }

    /// Why the command failed: its message, `details` (the requests concerned) and hint —
    /// or, in jsonl, an `error` event with every field of `--json`'s `error`.
    pub fn failure(&self, failure: &Failure, details: &[String]) {
        if self.json {
            let mut value = events::event("error", json!(failure.to_output()));
            value["details"] = details
                .iter()
                .map(|detail| Value::from(detail.trim()))
                .collect();
            self.write_json(&value);
            return;
        }
        // The message, the requests concerned, then the hint.
        let mut lines = failure.lines();
        lines.splice(1..1, details.iter().cloned());
        self.write_lines(&lines);
    }

    /// Writes other lines to stderr (in jsonl, each a `message` event). Lines quote what
    /// servers and input files say, so their control characters are shown escaped: nothing
    /// printed can move the cursor, clear the screen or retitle the terminal.
    pub fn eprint(&self, lines: &[String]) {
        if self.json {
            for line in lines.iter().flat_map(|text| text.lines()) {
                let message = line.trim_start_matches("imggen: ");
                self.write_json(&events::event("message", json!({ "message": message })));
            }
        } else {
            self.write_lines(lines);
        }
    }

    /// A writer for logs that draws them above the live lines.
    pub fn log_writer(self: &Arc<Self>) -> LogWriter {
        LogWriter {
            multi: self.multi.clone(),
        }
    }

    /// Writes lines above the live lines, escaped.
    fn write_lines(&self, lines: &[String]) {
        let lines = lines.iter().flat_map(|text| text.lines());
        match &self.sink {
            Sink::Stderr => self.multi.suspend(|| {
                let mut stderr = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(stderr, "{}", Untrusted(line));
                }
            }),
            #[cfg(test)]
            Sink::Buffer(buffer) => {
                lock(buffer).extend(lines.map(|line| Untrusted(line).to_string()));
            }
        }
    }

    /// Writes one event as a line of JSON, with `elapsed_ms`; what a terminal would act on
    /// is escaped (serde escapes the C0 controls, [`crate::stdout::escape_json`] the rest).
    fn write_json(&self, value: &Value) {
        let mut value = value.clone();
        if let Value::Object(fields) = &mut value {
            let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            fields.insert("elapsed_ms".into(), Value::from(elapsed));
        }
        let line = crate::stdout::escape_json(&value.to_string());
        match &self.sink {
            Sink::Stderr => self.multi.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }),
            #[cfg(test)]
            Sink::Buffer(buffer) => lock(buffer).push(line),
        }
    }
}

/// The steady-pace lines, while it lives.
#[derive(Debug)]
pub(crate) struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Log output on stderr, drawn above the live lines.
#[derive(Clone)]
pub(crate) struct LogWriter {
    multi: MultiProgress,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi
            .suspend(|| std::io::stderr().lock().write_all(buf))
            .map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn captured(mode: Mode) -> Progress {
        Progress::with_sink(
            mode,
            false,
            mode == Mode::Jsonl,
            Duration::from_secs(10),
            Sink::Buffer(Mutex::default()),
        )
    }

    fn written(progress: &Progress) -> Vec<String> {
        match &progress.sink {
            Sink::Buffer(buffer) => lock(buffer).clone(),
            Sink::Stderr => unreachable!(),
        }
    }

    fn handle() -> TaskHandle {
        "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse().unwrap()
    }

    #[test]
    fn auto_is_a_bar_on_a_terminal_and_plain_elsewhere_and_quiet_shows_nothing() {
        assert_eq!(resolve(ProgressMode::Auto, false, true), Mode::Bar);
        assert_eq!(resolve(ProgressMode::Auto, false, false), Mode::Plain);
        assert_eq!(resolve(ProgressMode::Jsonl, false, true), Mode::Jsonl);
        assert_eq!(resolve(ProgressMode::Plain, false, true), Mode::Plain);
        assert_eq!(resolve(ProgressMode::Bar, false, false), Mode::Bar);
        assert_eq!(resolve(ProgressMode::None, false, true), Mode::None);
        assert_eq!(resolve(ProgressMode::Bar, true, true), Mode::None);
        assert_eq!(resolve(ProgressMode::Jsonl, true, false), Mode::None);
    }

    #[test]
    fn plain_says_each_change_of_a_task_once_escaped() {
        let progress = captured(Mode::Plain);
        let mut handle = handle();
        handle.task_id = "evil\u{1b}[2J".into();
        progress.created("runblob", &handle, false);
        progress.status(&handle.task_id, &TaskState::Running);
        progress.status(&handle.task_id, &TaskState::Running);
        progress.status(&handle.task_id, &TaskState::Queued);
        progress.finish(&handle.task_id, "succeeded");
        progress.finish_all("stopped");
        progress.saved(&handle.task_id, "imggen-out/a.png");
        assert_eq!(
            written(&progress),
            [
                r"imggen: created runblob task evil\u{1b}[2J",
                r"imggen: runblob task evil\u{1b}[2J: running",
                r"imggen: runblob task evil\u{1b}[2J: queued",
                r"imggen: runblob task evil\u{1b}[2J: succeeded",
                r"imggen: runblob task evil\u{1b}[2J: saved imggen-out/a.png",
            ],
            "a repeated status is no change, and a finished task is not stopped again"
        );
    }

    #[test]
    fn plain_ticks_count_the_tasks_still_waited_on() {
        let progress = captured(Mode::Plain);
        progress.created("mock", &handle(), false);
        progress.status(&handle().task_id, &TaskState::Running);
        progress.tick();
        let lines = written(&progress);
        assert!(
            lines[2].starts_with("imggen: waiting on 1 task: 1 running; "),
            "{lines:?}"
        );
        progress.finish(&handle().task_id, "succeeded");
        progress.tick();
        assert_eq!(written(&progress).len(), 4, "nothing left to wait on");
    }

    #[test]
    fn jsonl_writes_only_json_lines_with_elapsed_ms() {
        let progress = captured(Mode::Jsonl);
        progress.notice("the emulator");
        progress.created("mock", &handle(), true);
        progress.status(
            &handle().task_id,
            &TaskState::Failed {
                code: Some("MODERATION\u{9b}31m".into()),
                message: None,
            },
        );
        progress.warning("careful");
        progress.eprint(&["imggen: could not\nwrite".into()]);
        progress.failure(
            &Failure::usage("bad").hint("do better"),
            &["  line 3: no".into()],
        );
        let lines = written(&progress);
        let values: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let names: Vec<&str> = values
            .iter()
            .map(|value| value["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "notice", "created", "failed", "warning", "message", "message", "error"
            ]
        );
        assert!(values.iter().all(|value| value["elapsed_ms"].is_u64()));
        assert_eq!(values[2]["error"], "MODERATION\u{9b}31m", "kept as sent");
        assert!(
            lines[2].contains(r"MODERATION\u009b31m"),
            "a C1 control is JSON-escaped: {}",
            lines[2]
        );
        assert_eq!(values[6]["hint"], "do better");
        assert_eq!(values[6]["exit_code"], 2);
        assert_eq!(values[6]["details"], json!(["line 3: no"]));
    }

    #[test]
    fn none_keeps_only_the_line_that_resumes_a_task_that_outlives_the_run() {
        let progress = captured(Mode::None);
        progress.created("gptimg", &handle(), false);
        progress.created("gptimg", &handle(), true);
        progress.status(&handle().task_id, &TaskState::Running);
        let lines = written(&progress);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("resume it with: imggen wait gptimg:"));
    }

    #[test]
    fn hidden_bars_take_no_status() {
        let progress = captured(Mode::None);
        progress.task("gptimg", &handle(), "created");
        progress.status(&handle().task_id, &TaskState::Running);
        assert!(
            lock(&progress.bars).is_empty(),
            "nothing drawn, nothing kept"
        );
    }

    #[test]
    fn a_status_reaches_its_bar_and_finish_keeps_the_last_one() {
        let progress = captured(Mode::Bar);
        let bar = ProgressBar::hidden().with_message("created");
        lock(&progress.bars).insert("task-1".into(), bar.clone());
        progress.status("task-1", &TaskState::Running);
        assert_eq!(bar.message(), "running");
        progress.status("task-2", &TaskState::Queued);
        assert_eq!(bar.message(), "running", "another task's status");
        progress.finish("task-1", "succeeded");
        assert_eq!(bar.message(), "succeeded");
        assert!(bar.is_finished());
    }
}
