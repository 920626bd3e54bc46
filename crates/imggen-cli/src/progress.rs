//! One live line per task on stderr (provider, task id, status, elapsed) — or, for a batch,
//! one bar (requests finished of the total, done / failed / in flight, cost so far, ETA) —
//! and every other stderr line printed around it so the two never garble each other.
//!
//! The lines are hidden when stderr is not a terminal or with `-q`. A task's status is the one
//! imggen-core's own polls read (its `on_status` hook): the CLI never polls on its own, so it
//! never spends a request of the key's budget that core's scheduler did not plan.

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::TaskHandle;
use imggen_core::batch::Progress as BatchTotals;
use imggen_types::text::{Untrusted, for_terminal};
use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The live task lines of one run.
pub(crate) struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    quiet: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("hidden", &self.multi.is_hidden())
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Lines drawn on stderr when it is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Arc<Progress> {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Arc::new(Progress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            quiet,
        })
    }

    /// Whether the live lines are drawn.
    pub fn is_visible(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// Whether stderr should carry only errors.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Starts the line of a task, labelled `provider`, in `status`.
    pub fn task(&self, provider: &str, handle: &TaskHandle, status: &str) {
        if !self.is_visible() {
            return;
        }
        // A resumed task's clock starts when it was created, not when this process started.
        let elapsed = handle
            .created_at_time()
            .and_then(|created| created.elapsed().ok())
            .unwrap_or(Duration::ZERO);
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg:10} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner()
            .with_style(style)
            .with_prefix(format!("{provider} {}", Untrusted(&handle.task_id)))
            .with_message(for_terminal(status).into_owned())
            .with_elapsed(elapsed);
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars().insert(handle.task_id.clone(), bar);
    }

    /// Shows a task's latest status.
    pub fn status(&self, task_id: &str, status: &str) {
        if let Some(bar) = self.bars().get(task_id) {
            // An unknown status is the provider's own word: shown, escaped.
            bar.set_message(for_terminal(status).into_owned());
        }
    }

    /// Ends a task's line with its final status (left on screen).
    pub fn finish(&self, task_id: &str, status: &str) {
        if let Some(bar) = self.bars().remove(task_id) {
            bar.finish_with_message(status.to_owned());
        }
    }

    /// Ends every line still running with `status`.
    pub fn finish_all(&self, status: &str) {
        for (_, bar) in self.bars().drain() {
            bar.abandon_with_message(status.to_owned());
        }
    }

    /// Starts the bar of a batch (drawn only where the task lines would be).
    pub fn batch(&self) -> BatchBar {
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.multi.add(ProgressBar::new(0).with_style(style));
        BatchBar {
            bar,
            started: Instant::now(),
        }
    }

    /// Writes lines to stderr above the live lines. Lines quote what servers and input files
    /// say, so their control characters are shown escaped: nothing printed can move the
    /// cursor, clear the screen or retitle the terminal.
    pub fn eprint(&self, lines: &[String]) {
        self.multi.suspend(|| {
            let mut stderr = std::io::stderr().lock();
            for line in lines.iter().flat_map(|text| text.lines()) {
                let _ = writeln!(stderr, "{}", Untrusted(line));
            }
        });
    }

    /// A writer for logs that draws them above the live lines.
    pub fn log_writer(self: &Arc<Self>) -> LogWriter {
        LogWriter {
            multi: self.multi.clone(),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The bar of a batch, fed by imggen-core's running totals (the CLI counts nothing itself).
#[derive(Clone, Debug)]
pub(crate) struct BatchBar {
    bar: ProgressBar,
    started: Instant,
}

impl BatchBar {
    /// Shows the latest totals.
    pub fn update(&self, totals: &BatchTotals) {
        self.bar.set_length(totals.total as u64);
        self.bar.set_position(totals.finished() as u64);
        self.bar
            .set_message(totals_text(totals, self.started.elapsed()));
    }

    /// Removes the bar: the summary line replaces it.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `12 done, 1 failed, 8 in flight · $0.1476 · ETA 40s`: what is worth a glance, and only
/// the counts that are not zero beyond done and in flight.
fn totals_text(totals: &BatchTotals, elapsed: Duration) -> String {
    let mut parts = vec![format!("{} done", totals.done)];
    for (count, name) in [
        (totals.failed, "failed"),
        (totals.unknown, "unknown"),
        (totals.pending, "pending"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {name}"));
        }
    }
    parts.push(format!("{} in flight", totals.in_flight));
    let mut text = format!("{} · {}", parts.join(", "), totals.cost);
    if let Some(eta) = totals.eta(elapsed).filter(|eta| !eta.is_zero()) {
        // Whole seconds: a sub-second ETA would flicker on every event.
        let eta = Duration::from_secs(eta.as_secs().max(1));
        text.push_str(&format!(" · ETA {}", HumanDuration(eta)));
    }
    text
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
mod tests {
    use super::*;

    #[test]
    fn hidden_lines_take_no_status_and_quiet_hides_them() {
        let progress = Progress::new(true);
        assert!(!progress.is_visible() && progress.is_quiet());
        let handle: TaskHandle = "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse().unwrap();
        progress.task("gptimg", &handle, "created");
        progress.status(&handle.task_id, "running");
        assert!(
            progress.bars().is_empty(),
            "nothing is drawn, so nothing is kept"
        );
    }

    #[test]
    fn the_batch_line_shows_what_is_not_zero_the_cost_and_the_eta() {
        let mut totals = BatchTotals::default();
        totals.total = 10;
        totals.done = 3;
        totals.in_flight = 2;
        totals.queued = 5;
        totals.cost = imggen_core::Cost::usd("0.0369".parse().unwrap());
        // Three finished in 30 s, seven left: 70 s.
        assert_eq!(
            totals_text(&totals, Duration::from_secs(30)),
            "3 done, 2 in flight · $0.0369 · ETA 70 seconds"
        );
        totals.failed = 1;
        totals.unknown = 1;
        totals.queued = 3;
        assert_eq!(
            totals_text(&totals, Duration::ZERO),
            "3 done, 1 failed, 1 unknown, 2 in flight · $0.0369",
            "no ETA before the pace is known"
        );
    }

    #[test]
    fn a_status_reaches_its_task_line_and_finish_keeps_the_last_one() {
        let progress = Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: Mutex::new(HashMap::new()),
            quiet: false,
        };
        let bar = ProgressBar::hidden().with_message("created");
        progress.bars().insert("task-1".into(), bar.clone());
        progress.status("task-1", "running");
        assert_eq!(bar.message(), "running");
        progress.status("task-2", "failed");
        assert_eq!(bar.message(), "running", "another task's status");
        progress.finish("task-1", "succeeded");
        assert_eq!(bar.message(), "succeeded");
        assert!(bar.is_finished());
    }
}
