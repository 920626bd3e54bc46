//! A reusable kill-and-restart harness for batch runs: it starts a batch in a child process,
//! kills it with SIGKILL at random moments (after a random number of output lines, or a
//! random delay, whichever comes first), restarts it, and finally lets it run to the end.
//! Then [`check`] holds the outcome against the emulator's money ledger.
//!
//! It knows nothing of what the child is: `spawn` builds the command (this crate's worker, or
//! `imggen batch …`, whose kill test in imggen-cli includes this file). It needs only the
//! standard library, `fastrand`, `serde`, `serde_json` and `imggen-mock`; another crate's tests
//! can include it with `#[path = "…/imggen-core/tests/batch_kill/harness.rs"] mod harness;`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imggen_mock::{EntryKind, LedgerEntry};

/// How to kill.
#[derive(Clone, Debug)]
pub struct KillPlan {
    /// Kills before the run that is let finish.
    pub kills: usize,
    /// A run is killed after a random number of output lines in `0..=max_lines`… (a child
    /// that prints nothing until it ends, like `imggen batch`, is killed on the delay alone:
    /// give it a `max_lines` it never reaches).
    pub max_lines: usize,
    /// …or after a random delay in `0..=max_delay`, whichever comes first.
    pub max_delay: Duration,
    /// How long the last run may take before the harness gives up on it.
    pub final_timeout: Duration,
    /// The seed of the random moments (print it: it reproduces a failing run).
    pub seed: u64,
    /// The exit codes of a run that ended on its own and did its job: the worker's 0, or
    /// `imggen batch`'s 0 and 4 (finished, some requests failed).
    pub exit_codes: Vec<i32>,
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct KillLog {
    /// Processes killed with SIGKILL while still running.
    pub killed: usize,
    /// Runs that ended on their own before their kill came.
    pub ended_early: usize,
    /// Output lines each killed run had printed.
    pub lines_before_kill: Vec<usize>,
    /// The last run's output.
    pub final_output: Vec<String>,
    /// The last run's exit code.
    pub final_code: Option<i32>,
}

/// Reads a child's stdout, line by line, on a thread; the lines arrive on the channel, and the
/// channel closes when the child's stdout does.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}

/// Runs `spawn()` `plan.kills` times, killing each run at a random moment, then once more to
/// the end. The last run must exit with one of `plan.exit_codes`.
pub fn kill_and_restart(spawn: &dyn Fn() -> Command, plan: &KillPlan) -> Result<KillLog, String> {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let mut log = KillLog::default();
    for round in 0..plan.kills {
        let lines_wanted = rng.usize(0..=plan.max_lines);
        let delay = plan.max_delay.mul_f64(rng.f64());
        let mut child = spawn()
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("round {round}: could not start the batch: {error}"))?;
        let lines = lines_of(&mut child);
        let deadline = Instant::now() + delay;
        let mut seen = 0;
        let mut ended = false;
        while seen < lines_wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(_) => seen += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no goodbye.
        let still_running = child
            .try_wait()
            .map_err(|error| format!("round {round}: {error}"))?
            .is_none();
        if still_running && !ended {
            child
                .kill()
                .map_err(|error| format!("round {round}: could not kill the batch: {error}"))?;
            log.killed += 1;
            log.lines_before_kill.push(seen);
        } else {
            log.ended_early += 1;
        }
        let status = child
            .wait()
            .map_err(|error| format!("round {round}: {error}"))?;
        if !still_running
            && !status
                .code()
                .is_some_and(|code| plan.exit_codes.contains(&code))
        {
            return Err(format!(
                "round {round}: the batch failed on its own ({status})"
            ));
        }
    }
    let mut child = spawn()
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("last run: could not start the batch: {error}"))?;
    let lines = lines_of(&mut child);
    let deadline = Instant::now() + plan.final_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => log.final_output.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the last run did not finish within {:?}; its last lines: {:?}",
                    plan.final_timeout,
                    log.final_output.iter().rev().take(10).collect::<Vec<_>>()
                ));
            }
        }
    }
    let status = child.wait().map_err(|error| format!("last run: {error}"))?;
    if !status
        .code()
        .is_some_and(|code| plan.exit_codes.contains(&code))
    {
        return Err(format!("the last run failed ({status})"));
    }
    log.final_code = status.code();
    Ok(log)
}

/// One line of `results.jsonl`, as much of it as the checks read.
#[derive(Debug, serde::Deserialize)]
pub struct ResultLine {
    /// The request.
    pub id: String,
    /// `done`, `failed`, …
    pub status: String,
    /// Its tasks.
    pub task_ids: Vec<String>,
    /// Its images, in the output directory.
    pub files: Vec<String>,
    /// Why it is not done.
    pub error: Option<String>,
    /// Who saved its files where (several workers of one batch each have a folder).
    #[serde(default)]
    pub saved: Vec<Saved>,
}

/// A worker's folder holding a result's files.
#[derive(Debug, serde::Deserialize)]
pub struct Saved {
    /// The folder.
    pub dir: String,
}

/// Holds a finished batch to the rules, and says every way it breaks them:
/// - every request of `ids` has a line, in order, and is `done` or `failed`;
/// - every file of every line is on disk (in the folder of a worker that saved it) and is a
///   PNG, and no temporary file is left;
/// - no task was charged twice;
/// - no charge without a result line: every charged task is a task of exactly one line;
/// - no request paid twice: each has at most `max_tasks_per_request` tasks, and a `done`
///   one has its files;
/// - a `failed` request's tasks were refunded.
pub fn check(
    out_dir: &Path,
    ids: &[String],
    ledger: &[LedgerEntry],
    max_tasks_per_request: usize,
) -> Result<Vec<ResultLine>, Vec<String>> {
    let mut problems = Vec::new();
    let text = match std::fs::read_to_string(out_dir.join("results.jsonl")) {
        Ok(text) => text,
        Err(error) => return Err(vec![format!("no results.jsonl: {error}")]),
    };
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        match serde_json::from_str::<ResultLine>(line) {
            Ok(parsed) => lines.push(parsed),
            Err(error) => problems.push(format!("results.jsonl line {}: {error}", number + 1)),
        }
    }
    let got: Vec<&str> = lines.iter().map(|line| line.id.as_str()).collect();
    if got != ids.iter().map(String::as_str).collect::<Vec<_>>() {
        problems.push(format!(
            "results.jsonl has {} lines for {} requests, or not in input order",
            got.len(),
            ids.len()
        ));
    }

    let mut charged: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refunded: BTreeSet<&str> = BTreeSet::new();
    for entry in ledger {
        match entry.kind {
            EntryKind::Charge => *charged.entry(entry.task_id.as_str()).or_insert(0) += 1,
            EntryKind::Refund => {
                refunded.insert(entry.task_id.as_str());
            }
        }
    }
    for (task, times) in &charged {
        if *times > 1 {
            problems.push(format!("task {task} was charged {times} times"));
        }
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for line in &lines {
        match line.status.as_str() {
            "done" | "failed" => {}
            other => problems.push(format!(
                "request {} ended {other}: {}",
                line.id,
                line.error.as_deref().unwrap_or("no error given")
            )),
        }
        if line.task_ids.len() > max_tasks_per_request {
            problems.push(format!(
                "request {} has {} tasks: paid more than once",
                line.id,
                line.task_ids.len()
            ));
        }
        if line.status == "done" && line.files.is_empty() {
            problems.push(format!("request {} is done without a file", line.id));
        }
        for task in &line.task_ids {
            if let Some(other) = owner.insert(task.as_str(), line.id.as_str()) {
                problems.push(format!("task {task} belongs to {other} and {}", line.id));
            }
            if !charged.contains_key(task.as_str()) {
                problems.push(format!("task {task} of {} was never charged", line.id));
            }
            if line.status == "failed" && !refunded.contains(task.as_str()) {
                problems.push(format!(
                    "task {task} of failed {} was not refunded",
                    line.id
                ));
            }
        }
        // In the folder of a worker that saved it (only one worker: `out_dir`).
        let folders: Vec<&Path> = if line.saved.is_empty() {
            vec![out_dir]
        } else {
            line.saved
                .iter()
                .map(|saved| Path::new(&saved.dir))
                .collect()
        };
        for file in &line.files {
            let found = folders
                .iter()
                .map(|folder| folder.join(file))
                .find(|path| path.exists())
                .unwrap_or_else(|| out_dir.join(file));
            match std::fs::read(found) {
                Ok(bytes) if bytes.starts_with(b"\x89PNG\r\n\x1a\n") => {}
                Ok(_) => problems.push(format!("{file} of {} is not a PNG", line.id)),
                Err(error) => problems.push(format!("{file} of {}: {error}", line.id)),
            }
        }
    }
    for task in charged.keys() {
        if !owner.contains_key(task) {
            problems.push(format!("task {task} was charged but has no result line"));
        }
    }
    if let Ok(listing) = std::fs::read_dir(out_dir) {
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") {
                problems.push(format!("a temporary file was left: {name}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}
