//! One live line per task on stderr (provider, task id, status, elapsed), and every other
//! stderr line printed around it so the two never garble each other.
//!
//! The lines are hidden when stderr is not a terminal or with `-q`. A task's status is the one
//! imggen-core's own polls read (its `on_status` hook): the CLI never polls on its own, so it
//! never spends a request of the key's budget that core's scheduler did not plan.

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use imggen_core::JobHandle;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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
    pub fn task(&self, provider: &str, handle: &JobHandle, status: &str) {
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
            .with_prefix(format!("{provider} {}", handle.task_id))
            .with_message(status.to_owned())
            .with_elapsed(elapsed);
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars().insert(handle.task_id.clone(), bar);
    }

    /// Shows a task's latest status.
    pub fn status(&self, task_id: &str, status: &str) {
        if let Some(bar) = self.bars().get(task_id) {
            bar.set_message(status.to_owned());
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

    /// Writes lines to stderr above the live lines.
    pub fn eprint(&self, lines: &[String]) {
        self.multi.suspend(|| {
            let mut stderr = std::io::stderr().lock();
            for line in lines {
                let _ = writeln!(stderr, "{line}");
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
        let handle: JobHandle = "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse().unwrap();
        progress.task("gptimg", &handle, "created");
        progress.status(&handle.task_id, "running");
        assert!(
            progress.bars().is_empty(),
            "nothing is drawn, so nothing is kept"
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
