//! A batch against imggen-mock, killed with SIGKILL at random moments and restarted each time,
//! must end with every request done or failed, every image on disk, no task charged twice and
//! no charge without a result line.
//!
//! This is the library's own, quick version: 40 requests, 4 kills. The full one — 200
//! requests, at least 10 kills — runs the real `imggen batch` binary through the same harness
//! (`crates/imggen-cli/tests/batch_kill.rs`), so CI pays for one long kill test, not two.
//!
//! This binary is both sides (its own `main`, `harness = false`): run by `cargo test`, it
//! starts the emulator on 127.0.0.1 and runs itself as the batch worker (with
//! `IMGGEN_BATCH_WORKER` set) under [`harness::kill_and_restart`]. The worker is an ordinary
//! `BatchRunner` on runblob, whose task list lets a create lost to a kill be settled.
//! `IMGGEN_KILL_SEED` replays the random moments of a failed run.

// The worker reports its events on stdout: that is the protocol the harness reads.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod harness;
mod worker;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use imggen_mock::{Fault, FaultKind, MockConfig, MockServer, Operation, Profile, Provider};

const NAME: &str = "a_batch_killed_at_random_moments_pays_once_and_loses_nothing";
const KEY: &str = "sk-imggen-batch-kill-0001";
const REQUESTS: usize = 40;
/// Runs killed before the one let finish; at least `KILLS - 1` must land mid-batch.
const KILLS: usize = 4;

fn main() -> ExitCode {
    if std::env::var_os(worker::ENV).is_some() {
        return worker::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        println!("{NAME}: test");
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
    let ignored_only = args.iter().any(|arg| arg == "--ignored");
    if ignored_only || (!filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str()))) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    let started = std::time::Instant::now();
    match run() {
        Ok(summary) => {
            println!("test {NAME} ... ok ({summary})");
            println!(
                "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(problem) => {
            println!("test {NAME} ... FAILED\n\n{problem}");
            println!(
                "\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, String> {
    let seed = match std::env::var("IMGGEN_KILL_SEED") {
        Ok(seed) => seed
            .parse()
            .map_err(|_| format!("IMGGEN_KILL_SEED={seed:?} is not a number"))?,
        Err(_) => fastrand::u64(..),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    // The emulator, on the real clock: 1–2 s tasks, a few lost answers to creates (the task
    // is made and charged, the answer never comes), a few tasks that fail (refunded), and
    // every other create answered 300 ms after its task was made and charged — a wide window
    // for a kill to land between "submitting" and "submitted".
    let config = MockConfig::default()
        .profile(Profile::Fast)
        .seed(seed)
        .api_key(KEY)
        .fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Runblob)
                .operation(Operation::Create)
                .times(4),
        )
        .fault(
            Fault::new(FaultKind::TaskFailure {
                code: "OPENAI_DECLINED".into(),
            })
            .provider(Provider::Runblob)
            .operation(Operation::Create)
            .times(3),
        )
        .fault(
            Fault::new(FaultKind::Latency { ms: 300 })
                .provider(Provider::Runblob)
                .operation(Operation::Create)
                .always(),
        );
    let server = runtime
        .block_on(MockServer::start(config))
        .map_err(|error| format!("the mock did not start: {error}"))?;
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let out = dir.path().join("out");
    let input = dir.path().join("batch.jsonl");
    let ids: Vec<String> = (1..=REQUESTS).map(|i| format!("r{i:03}")).collect();
    let text: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "prompt": format!("A lighthouse, take {}", i + 1)})
            )
        })
        .collect();
    std::fs::write(&input, text).map_err(|error| error.to_string())?;

    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let url = server.url().to_owned();
    let spawn = || worker_command(&exe, &url, &input, &out);
    let plan = harness::KillPlan {
        kills: KILLS,
        max_lines: 60,
        max_delay: Duration::from_millis(1000),
        final_timeout: Duration::from_secs(120),
        seed,
        exit_codes: vec![0],
    };
    let log = harness::kill_and_restart(&spawn, &plan)
        .map_err(|problem| format!("seed {seed}: {problem}"))?;
    let ledger = server.ledger();
    let lines = harness::check(&out, &ids, &ledger, 1).map_err(|problems| {
        format!(
            "seed {seed}, {} kills ({:?} lines before each): {} problems:\n  {}",
            log.killed,
            log.lines_before_kill,
            problems.len(),
            problems.join("\n  ")
        )
    })?;
    if log.killed < KILLS - 1 {
        return Err(format!(
            "seed {seed}: only {} of {} runs were killed while running ({} ended first); the kills must land mid-batch",
            log.killed, plan.kills, log.ended_early
        ));
    }
    let failed = lines.iter().filter(|line| line.status == "failed").count();
    // The lost answers were settled through runblob's task list: each request was charged
    // exactly once (failed ones, refunded).
    let charges = ledger
        .iter()
        .filter(|entry| entry.kind == imggen_mock::EntryKind::Charge)
        .count();
    if charges != REQUESTS {
        return Err(format!(
            "seed {seed}: {charges} charges for {REQUESTS} requests"
        ));
    }
    runtime.block_on(server.shutdown());
    // A create whose answer never came (the 4 dropped, and every one a kill interrupted) is
    // accounted for only by finding its task in runblob's list.
    let journal = imggen_core::batch::Journal::open(out.join("imggen-journal.sqlite"))
        .map_err(|error| error.to_string())?;
    let adopted = journal
        .entries()
        .map_err(|error| error.to_string())?
        .iter()
        .flat_map(|entry| entry.tasks.iter())
        .filter(|task| task.adopted)
        .count();
    if adopted < 4 {
        return Err(format!(
            "seed {seed}: only {adopted} tasks were found in runblob's list, but 4 creates lost their answers"
        ));
    }
    Ok(format!(
        "seed {seed}: {} kills after {:?} lines; {} done, {failed} failed, {charges} charges; {adopted} tasks of lost creates found in runblob's list",
        log.killed,
        log.lines_before_kill,
        lines.len() - failed,
    ))
}

fn worker_command(exe: &Path, url: &str, input: &Path, out: &Path) -> Command {
    let mut command = Command::new(exe);
    command
        .env(worker::ENV, "1")
        .env("IMGGEN_BATCH_BASE_URL", url)
        .env("IMGGEN_BATCH_API_KEY", KEY)
        .env("IMGGEN_BATCH_INPUT", input)
        .env("IMGGEN_BATCH_OUT", out)
        .env("IMGGEN_BATCH_CONCURRENCY", "20")
        .env("IMGGEN_BATCH_GRACE_MS", "300");
    command
}
