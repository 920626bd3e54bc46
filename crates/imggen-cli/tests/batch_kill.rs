//! A 200-request `imggen batch` against imggen-mock, killed with SIGKILL at random moments at
//! least ten times and restarted each time with the same command, must end with every
//! request done or failed, every image on disk, no task charged twice and no charge without
//! a result line.
//!
//! The real binary runs against an emulator in this process, on runblob — whose task list
//! settles a create whose answer a kill (or a dropped connection) lost. The harness is
//! imggen-core's (`crates/imggen-core/tests/batch_kill/harness.rs`), shared rather than
//! copied. Its own binary, so no other test competes for the two cores while the moments
//! are timed. `IMGGEN_KILL_SEED` replays the random moments of a failed run.

#![cfg(unix)]

#[path = "../../imggen-core/tests/batch_kill/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imggen_mock::{
    EntryKind, Fault, FaultKind, MockConfig, MockServer, Operation, Profile, Provider,
};

const KEY: &str = "sk-imggen-cli-batch-kill-01";
const REQUESTS: usize = 200;
const KILLS: usize = 12;
/// Creates whose answer the emulator drops (each task made and charged).
const LOST_ANSWERS: u32 = 4;
/// Tasks that fail (each refunded).
const FAILURES: usize = 3;

#[test]
fn a_200_request_batch_killed_at_random_moments_pays_once_and_loses_nothing() {
    let seed = match std::env::var("IMGGEN_KILL_SEED") {
        Ok(seed) => seed.parse().expect("IMGGEN_KILL_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // On the real clock: half-second tasks, a few lost answers to creates, a few failed
    // tasks, and every create answered 300 ms after its task was made and charged — a wide
    // window for a kill to land between "submitting" and "submitted".
    let config = MockConfig::default()
        .profile(Profile::Fixed(Duration::from_millis(500)))
        .seed(seed)
        .api_key(KEY)
        .fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Runblob)
                .operation(Operation::Create)
                .times(LOST_ANSWERS),
        )
        .fault(
            Fault::new(FaultKind::TaskFailure {
                code: "OPENAI_DECLINED".into(),
            })
            .provider(Provider::Runblob)
            .operation(Operation::Create)
            .times(FAILURES as u32),
        )
        .fault(
            Fault::new(FaultKind::Latency { ms: 300 })
                .provider(Provider::Runblob)
                .operation(Operation::Create)
                .always(),
        );
    let server = runtime
        .block_on(MockServer::start(config))
        .expect("the emulator starts");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
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
    std::fs::write(dir.path().join("batch.jsonl"), text).unwrap();
    let log_path = dir.path().join("stderr.log");

    let spawn = || imggen_batch(dir.path(), &out, server.url(), &log_path);
    // `imggen batch` prints nothing on stdout until it ends, so each run is killed after a
    // random delay alone. Ten concurrent requests keep each killed run from finishing more
    // than a slice of the batch, so the kills land mid-batch.
    let plan = harness::KillPlan {
        kills: KILLS,
        max_lines: usize::MAX,
        max_delay: Duration::from_millis(1500),
        final_timeout: Duration::from_secs(120),
        seed,
        exit_codes: vec![0, 4],
    };
    let stderr_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let log = harness::kill_and_restart(&spawn, &plan)
        .unwrap_or_else(|problem| panic!("seed {seed}: {problem}\nstderr:\n{}", stderr_tail()));
    let ledger = server.ledger();
    let lines = harness::check(&out, &ids, &ledger, 1).unwrap_or_else(|problems| {
        panic!(
            "seed {seed}, {} kills: {} problems:\n  {}\nstderr:\n{}",
            log.killed,
            problems.len(),
            problems.join("\n  "),
            stderr_tail()
        )
    });
    assert!(
        log.killed >= 10,
        "seed {seed}: only {} of {KILLS} runs were killed while running ({} ended first); the kills must land mid-batch",
        log.killed,
        log.ended_early
    );
    let charges = ledger
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count();
    assert_eq!(charges, REQUESTS, "seed {seed}: one charge per request");
    let failed = lines.iter().filter(|line| line.status == "failed").count();
    assert_eq!(
        failed, FAILURES,
        "seed {seed}: the failed tasks, and no other"
    );
    assert_eq!(
        log.final_code,
        Some(4),
        "seed {seed}: a batch with failed requests ends with exit 4"
    );
    assert_eq!(
        log.final_output,
        [out.join("results.jsonl").display().to_string()],
        "seed {seed}: the last run prints where results.jsonl is, and nothing else"
    );
    runtime.block_on(server.shutdown());

    // Each lost answer (the dropped ones, and every create a kill interrupted) was settled
    // by finding its task in runblob's list.
    let journal = imggen_core::batch::Journal::open(out.join("imggen-journal.sqlite")).unwrap();
    let adopted = journal
        .entries()
        .unwrap()
        .iter()
        .flat_map(|entry| entry.tasks.iter())
        .filter(|task| task.adopted)
        .count();
    assert!(
        adopted >= LOST_ANSWERS as usize,
        "seed {seed}: only {adopted} tasks were found in runblob's list, but {LOST_ANSWERS} creates lost their answers"
    );
}

/// The same command every time, as a user would type it again.
fn imggen_batch(dir: &Path, out: &Path, url: &str, log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imggen"));
    command
        .current_dir(dir)
        .env("IMGGEN_HOME", dir.join(".imggen-home"))
        .args(["-q", "batch", "batch.jsonl", "--out"])
        .arg(out)
        .args([
            "--provider",
            "runblob",
            "--concurrency",
            "10",
            "--poll-interval",
            "0.1",
            // The emulator answers within 300 ms: no create can still be in flight later.
            "--reconcile-grace",
            "0.3",
        ]);
    for name in [
        "GPTIMG_API_KEY",
        "RUNBASE_API_KEY",
        "GPTIMG_BASE_URL",
        "RUNBASE_BASE_URL",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command
        .env("RUNBLOB_API_KEY", KEY)
        .env("RUNBLOB_BASE_URL", url);
    // Every run's errors, for the failure message.
    if let Ok(file) = File::options().create(true).append(true).open(log) {
        command.stderr(file);
    }
    command
}
