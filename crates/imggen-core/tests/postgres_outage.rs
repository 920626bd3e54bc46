//! A batch whose PostgreSQL journal goes away mid-run: restarted, or stopped while a create
//! is on its way. Nothing new is sent while the database is away, a task created meanwhile
//! is written once it is back, and the batch ends with every request done once.
//!
//! The server is the throwaway one `.ci/postgres start` made (`IMGGEN_TEST_POSTGRES_DIR`),
//! stopped and started by `.ci/postgres pause|resume` — its own test binary, so that no other
//! test's database goes away under it; its tests take turns. Where there is no such server
//! the tests say loudly that they did not run, and fail under `IMGGEN_REQUIRE_POSTGRES=1`.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use imggen_core::batch::{
    self, BatchEventKind, BatchOptions, BatchReport, BatchRunner, RequestDefaults,
};
use imggen_core::{Imggen, PollSchedule};
use imggen_mock::{EntryKind, Fault, FaultKind, MockConfig, MockServer, Operation, Profile};

const KEY: &str = "sk-imggen-core-postgres-outage-01";
/// One at a time: each stops the one server.
static SERIAL: Mutex<()> = Mutex::new(());

/// The throwaway server's URL and directory, or `None` (said loudly) where there is none.
fn throwaway_server(test: &str) -> Option<(String, PathBuf)> {
    let url = std::env::var("IMGGEN_TEST_POSTGRES_URL").ok();
    let dir = std::env::var("IMGGEN_TEST_POSTGRES_DIR").ok();
    match (url, dir) {
        (Some(url), Some(dir)) if !url.trim().is_empty() && Path::new(&dir).is_dir() => {
            Some((url, PathBuf::from(dir)))
        }
        _ if std::env::var("IMGGEN_REQUIRE_POSTGRES").as_deref() == Ok("1") => panic!(
            "IMGGEN_REQUIRE_POSTGRES=1 but no throwaway PostgreSQL is named (IMGGEN_TEST_POSTGRES_URL and IMGGEN_TEST_POSTGRES_DIR, from `.ci/postgres start`): {test} must run here"
        ),
        _ => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** NOT RUN: {test}: it stops and starts a throwaway PostgreSQL; run `eval \"$(.ci/postgres start)\"` first (bash .ci/run does) ***\n"
            );
            None
        }
    }
}

/// `.ci/postgres pause` or `resume`, on the server in `dir`.
fn server(action: &str, dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/postgres");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .env("IMGGEN_TEST_POSTGRES_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("bash runs");
    assert!(status.success(), ".ci/postgres {action} failed");
}

/// A fresh schema, and the URL that works in it.
async fn schema(url: &str, name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(connection);
    let schema = format!("{name}_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

fn imggen(server: &MockServer) -> Imggen {
    let client = imggen_runblob::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap();
    Imggen::builder()
        .provider(imggen_runblob::provider::RunblobProvider::new(client))
        .build()
        .unwrap()
}

fn batch_text(requests: usize) -> String {
    (0..requests)
        .map(|i| {
            serde_json::json!({"id": format!("lamp-{i:02}"), "prompt": format!("A lamp, study {i}")})
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polled every 100 ms: the mock's tasks take 300 ms.
fn quick() -> PollSchedule {
    PollSchedule::new(
        Duration::from_millis(100),
        Duration::from_millis(100),
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
}

/// How many times the mock charged each prompt.
fn charges_per_prompt(server: &MockServer) -> BTreeMap<String, usize> {
    let prompts: BTreeMap<String, String> = server
        .tasks()
        .into_iter()
        .map(|task| (task.id, task.prompt))
        .collect();
    let mut per_prompt = BTreeMap::new();
    for entry in server.ledger() {
        if entry.kind == EntryKind::Charge {
            let prompt = prompts.get(&entry.task_id).cloned().unwrap_or_default();
            *per_prompt.entry(prompt).or_insert(0) += 1;
        }
    }
    per_prompt
}

fn charges(server: &MockServer) -> usize {
    server
        .ledger()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count()
}

/// What every run here must end with: each request done, charged once, its task found in
/// the journal (none recovered from runblob's list, none of unknown outcome).
fn assert_each_request_done_once(report: &BatchReport, server: &MockServer, requests: usize) {
    assert_eq!(
        report.count(batch::ResultStatus::Done),
        requests,
        "{report:?}"
    );
    let per_prompt = charges_per_prompt(server);
    assert_eq!(per_prompt.len(), requests, "{per_prompt:?}");
    assert!(
        per_prompt.values().all(|&charged| charged == 1),
        "a prompt charged twice: {per_prompt:?}"
    );
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
    assert!(
        report.adopted.is_empty(),
        "every task was written from this run's memory, none found again in runblob's list: {:?}",
        report.adopted
    );
}

#[test]
fn a_postgres_restart_mid_batch_ends_with_every_request_done_once() {
    let Some((url, dir)) =
        throwaway_server("a_postgres_restart_mid_batch_ends_with_every_request_done_once")
    else {
        return;
    };
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        const REQUESTS: usize = 40;
        let url = schema(&url, "imggen_restart").await;
        let mock = MockServer::start(
            MockConfig::default()
                .api_key(KEY)
                .profile(Profile::Fixed(Duration::from_millis(300))),
        )
        .await
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        // Once a quarter of the batch is submitted, the database restarts.
        let submitted = Arc::new(AtomicUsize::new(0));
        let (quarter, reached) = mpsc::sync_channel::<()>(1);
        let counted = Arc::clone(&submitted);
        let options = BatchOptions::new(out.path())
            .concurrency(4)
            .schedule(quick())
            .postgres_journal(url, "lamps")
            .on_event(move |event| {
                if let BatchEventKind::Submitted { .. } = event.kind
                    && counted.fetch_add(1, Ordering::SeqCst) + 1 == REQUESTS / 4
                {
                    let _ = quarter.try_send(());
                }
            });
        let runner = BatchRunner::new(imggen(&mock), options);
        let input = batch::input::parse(&batch_text(REQUESTS), &RequestDefaults::new());
        let run = tokio::spawn(async move { runner.run(input).await });
        let at_restart = tokio::task::spawn_blocking({
            let submitted = Arc::clone(&submitted);
            move || {
                reached.recv().expect("a quarter of the batch is submitted");
                server("pause", &dir);
                let at_restart = submitted.load(Ordering::SeqCst);
                server("resume", &dir);
                at_restart
            }
        })
        .await
        .unwrap();
        let report = run.await.unwrap().expect("the batch outlives the restart");
        assert!(
            at_restart < REQUESTS,
            "the restart came while requests were still to be submitted"
        );
        assert_each_request_done_once(&report, &mock, REQUESTS);
        mock.shutdown().await;
    });
}

#[test]
fn while_the_database_is_away_no_create_is_sent_and_a_task_made_meanwhile_is_kept() {
    let Some((url, dir)) = throwaway_server(
        "while_the_database_is_away_no_create_is_sent_and_a_task_made_meanwhile_is_kept",
    ) else {
        return;
    };
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        const REQUESTS: usize = 8;
        const CONCURRENCY: usize = 2;
        let url = schema(&url, "imggen_outage").await;
        // Each create is answered a second after its task was made and charged: the
        // database goes away in that second.
        let mock = MockServer::start(
            MockConfig::default()
                .api_key(KEY)
                .profile(Profile::Fixed(Duration::from_millis(300)))
                .fault(
                    Fault::new(FaultKind::Latency { ms: 1000 })
                        .provider(imggen_mock::Provider::Runblob)
                        .operation(Operation::Create)
                        .always(),
                ),
        )
        .await
        .unwrap();
        let mock = Arc::new(mock);
        let out = tempfile::tempdir().unwrap();
        let (first, sending) = mpsc::sync_channel::<()>(1);
        let options = BatchOptions::new(out.path())
            .concurrency(CONCURRENCY)
            .schedule(quick())
            .postgres_journal(url, "lamps")
            .on_event(move |event| {
                if let BatchEventKind::Submitting { .. } = event.kind {
                    let _ = first.try_send(());
                }
            });
        let runner = BatchRunner::new(imggen(&mock), options);
        let input = batch::input::parse(&batch_text(REQUESTS), &RequestDefaults::new());
        let run = tokio::spawn(async move { runner.run(input).await });
        let during = tokio::task::spawn_blocking({
            let mock = Arc::clone(&mock);
            move || {
                sending.recv().expect("a create is about to be sent");
                server("pause", &dir);
                // Away for longer than a create takes to be answered.
                std::thread::sleep(Duration::from_millis(2500));
                let during = charges(&mock);
                server("resume", &dir);
                during
            }
        })
        .await
        .unwrap();
        let report = run.await.unwrap().expect("the batch outlives the outage");
        assert!(
            (1..=CONCURRENCY).contains(&during),
            "only the creates journaled `submitting` before the database went away were sent while it was away: {during}"
        );
        assert_each_request_done_once(&report, &mock, REQUESTS);
    });
}
