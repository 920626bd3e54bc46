//! Workers of one batch, as `imggen batch` processes sharing a PostgreSQL journal.
//!
//! Three `imggen batch` workers drain one 200-request batch journaled in PostgreSQL, each
//! with its own `--out`, against imggen-mock running as a server of its own (in this test's
//! process, not the workers'); a random worker is killed with SIGKILL at random moments, ten
//! times, and started again with the same command. The batch must end with every request
//! done once: no task created twice, no charge without a result line, every file where the
//! worker that saved it says.
//!
//! Claims last one second (`IMGGEN_JOURNAL_LEASE=1`), so a dead worker's requests are taken
//! over by the others within the run; creates whose answer a kill (or a dropped connection)
//! lost are settled from runblob's task list, by whichever worker holds them next.
//! `IMGGEN_KILL_SEED` replays the random moments of a failed run.
//!
//! Four workers on one runbase key stay together inside its documented budget (20 requests
//! per 10 s), which they share through the journal's database: not one answer 429.
//!
//! Its own binary, its tests taking turns: nothing else competes for the two cores while the
//! moments are timed.

#![cfg(unix)]

#[path = "../../imggen-core/tests/batch_kill/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use imggen_mock::{
    EntryKind, Fault, FaultKind, MockConfig, MockServer, Operation, Profile, Provider,
};

const KEY: &str = "sk-imggen-cli-workers-kill-01";
const REQUESTS: usize = 200;
const WORKERS: usize = 3;
const KILLS: usize = 10;
/// Creates whose answer the emulator drops (each task made and charged).
const LOST_ANSWERS: u32 = 3;
/// One test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The test database, or `None`, said past the harness's capture — and a failure where
/// `IMGGEN_REQUIRE_POSTGRES=1` (CI).
fn postgres(test: &str) -> Option<String> {
    match std::env::var("IMGGEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("IMGGEN_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("IMGGEN_REQUIRE_POSTGRES=1 but IMGGEN_TEST_POSTGRES_URL is not set")
        }
        _ => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** NOT RUN: {test}: no PostgreSQL. Set IMGGEN_TEST_POSTGRES_URL (bash .ci/run starts one) ***\n"
            );
            None
        }
    }
}

/// One worker: its folder, and its process while it runs.
struct Worker {
    out: PathBuf,
    child: Child,
}

#[test]
fn three_workers_killed_at_random_moments_do_every_request_once() {
    let Some(url) = postgres("three_workers_killed_at_random_moments_do_every_request_once") else {
        return;
    };
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let seed = match std::env::var("IMGGEN_KILL_SEED") {
        Ok(seed) => seed.parse().expect("IMGGEN_KILL_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // On the real clock: half-second tasks, a few lost answers to creates, and every create
    // answered 300 ms after its task was made and charged — a window for a kill to land
    // between "submitting" and "submitted".
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
            Fault::new(FaultKind::Latency { ms: 300 })
                .provider(Provider::Runblob)
                .operation(Operation::Create)
                .always(),
        );
    let server = runtime
        .block_on(MockServer::start(config))
        .expect("the emulator starts");
    let dir = tempfile::tempdir().unwrap();
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
    // The batch is kept in the database under its file's name: one of this run's own.
    let batch = format!("workers-kill-{}-{seed}.jsonl", std::process::id());
    std::fs::write(dir.path().join(&batch), text).unwrap();
    let log_path = dir.path().join("stderr.log");
    let spawn = |out: &Path| {
        imggen_batch(dir.path(), &batch, out, &url, &log_path)
            .args(["--provider", "runblob", "--concurrency", "5"])
            .args(["--poll-interval", "0.1"])
            // The emulator answers within 300 ms: no create can still be in flight later.
            .args(["--reconcile-grace", "0.3"])
            .env("RUNBLOB_API_KEY", KEY)
            .env("RUNBLOB_BASE_URL", server.url())
            .spawn()
            .expect("imggen starts")
    };
    let stderr_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };

    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|n| {
            let out = dir.path().join(format!("out-{n}"));
            Worker {
                child: spawn(&out),
                out,
            }
        })
        .collect();
    let mut killed = 0;
    let mut turns = 0;
    while killed < KILLS {
        turns += 1;
        assert!(
            turns <= KILLS * 4,
            "seed {seed}: the workers kept ending before their kill came ({killed} kills)"
        );
        std::thread::sleep(Duration::from_millis(rng.u64(200..=1200)));
        let worker = &mut workers[rng.usize(..WORKERS)];
        if worker.child.try_wait().unwrap().is_none() {
            worker.child.kill().unwrap();
            killed += 1;
        }
        worker.child.wait().unwrap();
        worker.child = spawn(&worker.out);
    }
    // Then every worker runs to its end.
    let until = Instant::now() + Duration::from_secs(180);
    for (n, worker) in workers.iter_mut().enumerate() {
        let status = loop {
            if let Some(status) = worker.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > until {
                let _ = worker.child.kill();
                panic!(
                    "seed {seed}: worker {n} did not finish within 180 s\nstderr:\n{}",
                    stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status.code(),
            Some(0),
            "seed {seed}: worker {n}'s last run\nstderr:\n{}",
            stderr_tail()
        );
    }

    let ledger = server.ledger();
    // Every worker's results.jsonl tells the whole batch, and where each file was saved.
    for worker in &workers {
        let lines = harness::check(&worker.out, &ids, &ledger, 1).unwrap_or_else(|problems| {
            panic!(
                "seed {seed}, {killed} kills, results of {}: {} problems:\n  {}\nstderr:\n{}",
                worker.out.display(),
                problems.len(),
                problems.join("\n  "),
                stderr_tail()
            )
        });
        assert!(
            lines.iter().all(|line| line.status == "done"),
            "seed {seed}: every request done"
        );
    }
    let charges = ledger
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count();
    assert_eq!(charges, REQUESTS, "seed {seed}: one charge per request");
    runtime.block_on(server.shutdown());
}

#[test]
fn four_workers_on_one_runbase_key_stay_inside_its_budget_together() {
    let Some(url) = postgres("four_workers_on_one_runbase_key_stay_inside_its_budget_together")
    else {
        return;
    };
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    const RUNBASE_REQUESTS: usize = 24;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // runbase's documented limit, as the emulator keeps it by default: 20 requests per 10 s
    // per key. Each worker alone would send 20 in the first 10 s; four of them, 80.
    let server = runtime
        .block_on(MockServer::start(
            MockConfig::default()
                .profile(Profile::Fixed(Duration::from_millis(500)))
                .api_key(KEY),
        ))
        .expect("the emulator starts");
    let dir = tempfile::tempdir().unwrap();
    let text: String = (1..=RUNBASE_REQUESTS)
        .map(|i| format!("{}\n", serde_json::json!({"id": format!("b{i:02}"), "prompt": format!("A bridge, study {i}")})))
        .collect();
    let batch = format!("workers-budget-{}.jsonl", std::process::id());
    std::fs::write(dir.path().join(&batch), text).unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut children: Vec<Child> = (0..4)
        .map(|n| {
            imggen_batch(
                dir.path(),
                &batch,
                &dir.path().join(format!("out-{n}")),
                &url,
                &log_path,
            )
            .args(["--provider", "runbase", "--concurrency", "8"])
            .env("RUNBASE_API_KEY", KEY)
            .env("RUNBASE_BASE_URL", server.url())
            .spawn()
            .expect("imggen starts")
        })
        .collect();
    for (n, child) in children.iter_mut().enumerate() {
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "worker {n}\nstderr:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let stats = server.requests();
    assert_eq!(
        stats.by_status.get(&429),
        None,
        "the four workers together kept inside the key's budget: {} requests, by status {:?}",
        stats.total,
        stats.by_status
    );
    let charges = server
        .ledger()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count();
    assert_eq!(charges, RUNBASE_REQUESTS, "one create per request");
    let lines = std::fs::read_to_string(dir.path().join("out-0/results.jsonl")).unwrap();
    assert_eq!(
        lines.matches("\"status\":\"done\"").count(),
        RUNBASE_REQUESTS,
        "{lines}"
    );
    runtime.block_on(server.shutdown());
}

/// The same command every time, on every machine: only `--out` differs (the provider's
/// options and key are the caller's).
fn imggen_batch(dir: &Path, batch: &str, out: &Path, journal: &str, log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imggen"));
    command
        .current_dir(dir)
        .env("IMGGEN_HOME", dir.join(".imggen-home"))
        .args(["-q", "batch", batch, "--out"])
        .arg(out)
        .args(["--journal", journal]);
    for name in [
        "RUNBLOB_API_KEY",
        "GPTIMG_API_KEY",
        "RUNBASE_API_KEY",
        "RUNBLOB_BASE_URL",
        "GPTIMG_BASE_URL",
        "RUNBASE_BASE_URL",
        "RUST_LOG",
        "IMGGEN_JOURNAL",
    ] {
        command.env_remove(name);
    }
    command
        .env("IMGGEN_JOURNAL_LEASE", "1")
        .env("IMGGEN_PROGRESS", "none")
        .stdout(Stdio::null());
    if let Ok(file) = File::options().create(true).append(true).open(log) {
        command.stderr(file);
    }
    command
}
