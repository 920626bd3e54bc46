//! Batches end to end against imggen-mock on its manual clock: the journal, resume from every
//! state, lost creates found (or not) in the provider's task list, and the money ledger that
//! proves nothing was paid twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use imggen_core::batch::{
    self, BatchError, BatchEvent, BatchEventKind, BatchInput, BatchOptions, BatchReport,
    BatchRunner, BatchSource, Journal, JournalError, RequestDefaults, RequestState, ResultStatus,
    SavedBy,
};
use imggen_core::{
    CancellationToken, Cost, DownloadOptions, GenerationRequest, ImageData, Imggen, SubmitOptions,
    TaskHandle,
};
use imggen_core::{imggen_gptimg, imggen_runbase, imggen_runblob};
use imggen_http::time::{Clock, SleepFuture, Sleeper};
use imggen_mock::{
    Balance, EntryKind, Fault, FaultKind, LedgerEntry, MockClock, MockConfig, MockServer,
    Operation, Profile, Provider as MockProvider,
};
use serde_json::json;

/// What a run saving into `dir` records with its files.
fn saved_in(dir: &Path) -> SavedBy {
    SavedBy {
        worker: "test".into(),
        dir: std::path::absolute(dir).unwrap().display().to_string(),
    }
}

const KEY: &str = "sk-imggen-core-batch-0001";
const S: Duration = Duration::from_secs(1);

/// Virtual time shared by imggen and the mock: a sleep yields once, then moves the mock's
/// clock by its whole duration.
#[derive(Clone, Debug)]
pub(crate) struct MockTime(MockClock);

impl Clock for MockTime {
    fn now(&self) -> Instant {
        self.0.now()
    }

    fn wall(&self) -> SystemTime {
        self.0.wall()
    }
}

impl Sleeper for MockTime {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        let clock = self.0.clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            clock.advance(duration);
        })
    }
}

pub(crate) async fn mock(config: MockConfig) -> (MockServer, MockTime) {
    let server = MockServer::start(config.manual_clock().api_key(KEY))
        .await
        .expect("the mock starts");
    let time = MockTime(server.clock().clone());
    (server, time)
}

/// A fresh reqwest client per test: a shared one could reuse a stale connection.
fn http() -> imggen_http::reqwest::Client {
    imggen_http::reqwest::Client::builder()
        .redirect(imggen_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn imggen_with(server: &MockServer, time: &MockTime, allow_extra_tasks: bool) -> Imggen {
    let clock: Arc<MockTime> = Arc::new(time.clone());
    let runblob = imggen_runblob::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(clock.clone())
        .build()
        .unwrap();
    let gptimg = imggen_gptimg::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(clock.clone())
        .build()
        .unwrap();
    let runbase = imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(clock.clone())
        .build()
        .unwrap();
    Imggen::builder()
        .sleeper(clock.clone())
        .clock(clock)
        .allow_extra_tasks(allow_extra_tasks)
        .provider(imggen_core::imggen_runblob::provider::RunblobProvider::new(
            runblob,
        ))
        .provider(imggen_core::imggen_gptimg::provider::GptimgProvider::new(
            gptimg,
        ))
        .provider(imggen_core::imggen_runbase::provider::RunbaseProvider::new(
            runbase,
        ))
        .build()
        .unwrap()
}

pub(crate) fn imggen(server: &MockServer, time: &MockTime) -> Imggen {
    imggen_with(server, time, false)
}

pub(crate) fn lines(lines: &[serde_json::Value]) -> String {
    lines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn input(text: &str, defaults: &RequestDefaults) -> BatchInput {
    batch::input::parse(text, defaults)
}

pub(crate) fn charges(server: &MockServer, provider: MockProvider) -> Vec<LedgerEntry> {
    server
        .ledger()
        .into_iter()
        .filter(|entry| entry.provider == provider && entry.kind == EntryKind::Charge)
        .collect()
}

/// How many times each task was charged.
fn charges_per_task(server: &MockServer) -> BTreeMap<String, usize> {
    let mut per_task = BTreeMap::new();
    for entry in server.ledger() {
        if entry.kind == EntryKind::Charge {
            *per_task.entry(entry.task_id).or_insert(0) += 1;
        }
    }
    per_task
}

/// Tasks the provider made: one per create that reached it, answered or not (the mock's
/// request log holds only answered requests).
fn tasks_made(server: &MockServer, provider: MockProvider) -> usize {
    server
        .tasks()
        .iter()
        .filter(|task| task.provider == provider)
        .count()
}

/// Creates answered, refused ones included.
fn creates_answered(server: &MockServer, path: &str) -> usize {
    server
        .requests()
        .recent
        .iter()
        .filter(|record| record.method == "POST" && record.path == path)
        .count()
}

const RUNBLOB_CREATE: &str = "/v1/chatgpt-images/generate";

fn status_of(report: &BatchReport, id: &str) -> ResultStatus {
    report
        .read_results()
        .unwrap()
        .iter()
        .find(|line| line.id == id)
        .unwrap_or_else(|| panic!("no result line for {id}"))
        .status
}

pub(crate) fn assert_pngs(dir: &Path, report: &BatchReport) {
    for line in &report.read_results().unwrap() {
        for file in &line.files {
            let bytes = std::fs::read(dir.join(file))
                .unwrap_or_else(|error| panic!("{file} of {}: {error}", line.id));
            let info = imggen_types::media::sniff(&bytes).expect("an image");
            assert_eq!(info.format.media_type(), "image/png");
        }
    }
}

pub(crate) type Events = Arc<Mutex<Vec<BatchEvent>>>;

pub(crate) fn recording(options: BatchOptions) -> (BatchOptions, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let options = options.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    (options, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_runbase_requests_finish_with_no_429_and_one_charge_each() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(
        &(0..200)
            .map(
                |i| json!({"id": format!("lamp-{i:03}"), "prompt": format!("A lamp, variant {i}")}),
            )
            .collect::<Vec<_>>(),
    );
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let (options, events) = recording(BatchOptions::new(dir.path()).concurrency(50));

    let report = BatchRunner::new(imggen(&server, &time), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();

    assert_eq!(
        report.count(ResultStatus::Done),
        200,
        "{:?}",
        report.read_results().unwrap()
    );
    assert!(report.is_complete());
    assert_eq!(
        server.requests().by_status.get(&429),
        None,
        "the mock answered 429"
    );
    let ledger = charges(&server, MockProvider::Runbase);
    assert_eq!(ledger.len(), 200);
    assert!(charges_per_task(&server).values().all(|&n| n == 1));
    // What the batch says it cost is what the provider charged, exactly.
    assert_eq!(report.cost().to_string(), "$10");
    assert_eq!(report.progress.cost, report.cost());
    assert_eq!((report.progress.done, report.progress.total), (200, 200));

    // results.jsonl is the report, one line per request in input order.
    let written = batch::results::read(&report.results_path).unwrap();
    assert_eq!(written.len(), report.summary.total);
    assert_eq!(
        written.iter().map(|line| line.cost).sum::<Cost>(),
        report.summary.cost
    );
    assert_eq!(written[0].id, "lamp-000");
    assert_eq!(written[199].id, "lamp-199");
    let charged: Vec<&str> = ledger.iter().map(|e| e.task_id.as_str()).collect();
    for line in &written {
        assert_eq!(line.provider, Some(crate::RUNBASE));
        assert_eq!(line.task_ids.len(), 1);
        assert!(charged.contains(&line.task_ids[0].as_str()));
        assert_eq!(
            line.files,
            [format!("{}-1.png", line.id)],
            "named after the line's id"
        );
    }
    assert_pngs(dir.path(), &report);

    // Every request was journaled submitting, then submitted, then done — in that order.
    let events = events.lock().unwrap();
    // Every line checked, then journaled, before the run starts.
    let opening: Vec<&BatchEventKind> = events.iter().take(3).map(|e| &e.kind).collect();
    assert_eq!(
        opening,
        [
            &BatchEventKind::Checked {
                requests: 200,
                invalid: 0,
                // 200 runs of openai/gpt-image-2 at $0.05, known before anything is sent.
                projected: Cost::usd("10".parse().unwrap()),
                unpriced: 0,
            },
            &BatchEventKind::Journaled {
                added: 200,
                kept: 0,
                replaced: 0
            },
            &BatchEventKind::Started,
        ]
    );
    assert_eq!(
        events.last().map(|e| &e.kind),
        Some(&BatchEventKind::Finished)
    );
    for i in [0, 57, 199] {
        let id = format!("lamp-{i:03}");
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e.id.as_deref() == Some(id.as_str()))
            .filter_map(|e| match e.kind {
                BatchEventKind::Submitting { .. } => Some("submitting"),
                BatchEventKind::Submitted { .. } => Some("submitted"),
                BatchEventKind::Done { .. } => Some("done"),
                BatchEventKind::Status { .. } => None,
                _ => Some("other"),
            })
            .collect();
        assert_eq!(kinds, ["submitting", "submitted", "done"], "{id}");
    }
    assert!(events.iter().all(|e| e.progress.in_flight <= 50));
    let last = &events.last().unwrap().progress;
    assert_eq!((last.queued, last.in_flight), (0, 0));
}

#[tokio::test]
async fn invalid_lines_stop_the_batch_before_anything_is_sent_unless_skipped() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = [
        r#"{"id": "ok", "prompt": "A valid lamp"}"#,
        r#"{"prompt": "A lamp", "aspect_ratio": "16x9"}"#,
        r#"{"id": "file", "prompt": "A sketch", "provider": "gptimg", "refs": ["sketch.png"]}"#,
        r#"{"id": "ok2", "prompt": "Another valid lamp"}"#,
    ]
    .join("\n");
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let runner = BatchRunner::new(imggen(&server, &time), BatchOptions::new(dir.path()));

    let error = runner.run(input(&text, &defaults)).await.unwrap_err();

    let BatchError::InvalidInput(errors) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        errors.lines.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 3]
    );
    let message = error.to_string();
    assert!(
        message.starts_with("2 invalid lines; nothing was sent"),
        "{message}"
    );
    // The plan is checked too: gptimg takes only https URLs.
    assert!(
        message.contains("line 3 (id \"file\"): gptimg cannot serve this request: references[0]"),
        "{message}"
    );
    assert_eq!(server.requests().total, 0);
    assert!(!dir.path().join("imggen-journal.sqlite").exists());

    let runner = BatchRunner::new(
        imggen(&server, &time),
        BatchOptions::new(dir.path()).skip_invalid(true),
    );
    let report = runner.run(input(&text, &defaults)).await.unwrap();
    let statuses: Vec<(String, ResultStatus)> = report
        .read_results()
        .unwrap()
        .iter()
        .map(|line| (line.id.clone(), line.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("ok".to_owned(), ResultStatus::Done),
            ("2".to_owned(), ResultStatus::SkippedInvalid),
            ("file".to_owned(), ResultStatus::SkippedInvalid),
            ("ok2".to_owned(), ResultStatus::Done),
        ]
    );
    assert!(
        report.read_results().unwrap()[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("\"16x9\" is not a known value"))
    );
    assert_eq!(charges(&server, MockProvider::Runblob).len(), 2);
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 0);
}

/// Submits `prompt` to runblob outside any batch: a task that exists at the provider.
async fn create_task(imggen: &Imggen, prompt: &str) -> TaskHandle {
    imggen
        .submit(
            &GenerationRequest::new(prompt),
            &SubmitOptions::provider(crate::RUNBLOB),
        )
        .await
        .unwrap()
        .handles
        .remove(0)
}

#[tokio::test]
async fn resuming_picks_up_every_state_and_pays_for_nothing_twice() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(90 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let imggen = imggen(&server, &time);
    let text = lines(&[
        json!({"id": "done", "prompt": "Already done"}),
        json!({"id": "done-missing", "prompt": "Done, file deleted"}),
        json!({"id": "submitted", "prompt": "Submitted before the crash"}),
        json!({"id": "planned", "prompt": "Never sent"}),
        json!({"id": "failed", "prompt": "Failed before"}),
        json!({"id": "made", "prompt": "Created, answer lost"}),
        json!({"id": "never-arrived", "prompt": "Lost before it left"}),
        json!({"id": "gptimg-unknown", "prompt": "Lost at gptimg", "provider": "gptimg"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let batch = input(&text, &defaults);
    assert_eq!(batch.invalid, []);

    // The journal a killed process would have left, written by hand, on the same clock.
    let journal = Journal::open_with_clock(
        dir.path().join("imggen-journal.sqlite"),
        Arc::new(time.clone()),
    )
    .unwrap();
    journal.plan(&batch.requests).unwrap();
    let done = create_task(&imggen, "Already done").await;
    let done_missing = create_task(&imggen, "Done, file deleted").await;
    let submitted = create_task(&imggen, "Submitted before the crash").await;
    for (id, handle) in [
        ("done", &done),
        ("done-missing", &done_missing),
        ("submitted", &submitted),
    ] {
        journal.mark_submitting(id, &[crate::RUNBLOB]).unwrap();
        journal
            .mark_submitted(id, crate::RUNBLOB, std::slice::from_ref(handle), None)
            .unwrap();
    }
    let status = imggen.wait(&done, Default::default()).await.unwrap();
    let images = imggen
        .download(&done, &status, &DownloadOptions::to_dir(dir.path()))
        .await
        .unwrap();
    let done_file = format!("{}-1.png", done.task_id);
    assert_eq!(images[0].data, ImageData::File(dir.path().join(&done_file)));
    journal
        .task_succeeded(
            crate::RUNBLOB,
            &done.task_id,
            std::slice::from_ref(&done_file),
            &saved_in(dir.path()),
        )
        .unwrap();
    assert_eq!(journal.finish("done").unwrap(), RequestState::Done);
    let missing_file = format!("{}-1.png", done_missing.task_id);
    journal
        .task_succeeded(
            crate::RUNBLOB,
            &done_missing.task_id,
            std::slice::from_ref(&missing_file),
            &saved_in(dir.path()),
        )
        .unwrap();
    assert_eq!(journal.finish("done-missing").unwrap(), RequestState::Done);
    journal
        .mark_submitting("failed", &[crate::RUNBLOB])
        .unwrap();
    let refunded = TaskHandle::new(crate::RUNBLOB, "refunded-task", time.wall()).unwrap();
    journal
        .mark_submitted("failed", crate::RUNBLOB, &[refunded], None)
        .unwrap();
    journal
        .task_failed(crate::RUNBLOB, "refunded-task", "OPENAI_DECLINED")
        .unwrap();
    assert_eq!(journal.finish("failed").unwrap(), RequestState::Failed);
    // "made": journaled submitting, then its create reached runblob and the process died.
    journal.mark_submitting("made", &[crate::RUNBLOB]).unwrap();
    let made = create_task(&imggen, "Created, answer lost").await;
    // "never-arrived": journaled submitting; the process died before the create left.
    journal
        .mark_submitting("never-arrived", &[crate::RUNBLOB])
        .unwrap();
    journal
        .mark_submitting("gptimg-unknown", &[crate::GPTIMG])
        .unwrap();
    drop(journal);
    let polls_of_done = server
        .requests()
        .recent
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&done.task_id))
        .count();
    let charged_before = charges(&server, MockProvider::Runblob).len();
    assert_eq!(charged_before, 4);

    let runner = BatchRunner::new(imggen.clone(), BatchOptions::new(dir.path()));
    let report = runner.run(input(&text, &defaults)).await.unwrap();

    let results = report.read_results().unwrap();
    let statuses: Vec<(&str, ResultStatus)> = results
        .iter()
        .map(|line| (line.id.as_str(), line.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("done", ResultStatus::Done),
            ("done-missing", ResultStatus::Done),
            ("submitted", ResultStatus::Done),
            ("planned", ResultStatus::Done),
            ("failed", ResultStatus::Failed),
            ("made", ResultStatus::Done),
            ("never-arrived", ResultStatus::Done),
            ("gptimg-unknown", ResultStatus::Unknown),
        ]
    );
    // Two new charges: the planned request and the create that never arrived. The task
    // that was made is adopted, not paid for again; nothing reached gptimg.
    assert_eq!(
        charges(&server, MockProvider::Runblob).len(),
        charged_before + 2
    );
    assert!(charges_per_task(&server).values().all(|&n| n == 1));
    assert_eq!(tasks_made(&server, MockProvider::Gptimg), 0);
    assert_eq!(report.adopted, ["made"]);
    let results = report.read_results().unwrap();
    let line = |id: &str| results.iter().find(|l| l.id == id).unwrap();
    assert_eq!(line("made").task_ids, std::slice::from_ref(&made.task_id));
    assert_eq!(
        line("submitted").task_ids,
        std::slice::from_ref(&submitted.task_id)
    );
    assert_eq!(report.skipped_done, 2);
    // A done request is left alone; a deleted file is downloaded again from its task.
    let polled = |task: &str| {
        server
            .requests()
            .recent
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(task))
            .count()
    };
    assert_eq!(polled(&done.task_id), polls_of_done);
    assert!(polled(&done_missing.task_id) > 0);
    assert!(dir.path().join(&missing_file).exists());
    assert_eq!(
        line("failed").error.as_deref(),
        Some("task runblob:refunded-task failed: OPENAI_DECLINED")
    );

    let [unknown] = &report.unknown[..] else {
        panic!("{:?}", report.unknown)
    };
    assert_eq!(unknown.id, "gptimg-unknown");
    assert_eq!(unknown.providers, [crate::GPTIMG]);
    assert!(unknown.attempted_at.is_some());
    assert!(
        unknown
            .reason
            .contains("gptimg keeps no task list imggen can read"),
        "{}",
        unknown.reason
    );

    // Running again changes nothing for it: it may be paid for.
    let report = runner.run(input(&text, &defaults)).await.unwrap();
    assert_eq!(status_of(&report, "gptimg-unknown"), ResultStatus::Unknown);
    assert_eq!(report.skipped_done, 6);
    assert_eq!(tasks_made(&server, MockProvider::Gptimg), 0);

    // Until the caller says to resubmit it.
    let runner = BatchRunner::new(imggen, BatchOptions::new(dir.path()).resubmit_unknown(true));
    let report = runner.run(input(&text, &defaults)).await.unwrap();
    assert_eq!(status_of(&report, "gptimg-unknown"), ResultStatus::Done);
    assert_eq!(report.resubmitted, ["gptimg-unknown"]);
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 1);
    assert_eq!(
        charges(&server, MockProvider::Runblob).len(),
        charged_before + 2
    );
    assert_pngs(dir.path(), &report);
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_mid_run_is_found_in_runblobs_list() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(MockProvider::Runblob)
                .operation(Operation::Create)
                .times(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"prompt": "One"}),
        json!({"prompt": "Two"}),
        json!({"prompt": "Three"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let (options, events) = recording(BatchOptions::new(dir.path()).concurrency(1));

    let report = BatchRunner::new(imggen(&server, &time), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();

    assert!(report.is_complete(), "{:?}", report.read_results().unwrap());
    assert_eq!(tasks_made(&server, MockProvider::Runblob), 3);
    assert_eq!(charges(&server, MockProvider::Runblob).len(), 3);
    assert_eq!(report.adopted, ["1"]);
    let events = events.lock().unwrap();
    let first: Vec<&BatchEventKind> = events
        .iter()
        .filter(|e| e.id.as_deref() == Some("1"))
        .map(|e| &e.kind)
        .filter(|kind| !matches!(kind, BatchEventKind::Status { .. }))
        .collect();
    assert!(matches!(
        first[0],
        BatchEventKind::Submitting { attempt: 1 }
    ));
    assert!(matches!(first[1], BatchEventKind::Reconciling));
    assert!(matches!(first[2], BatchEventKind::Adopted { handles } if handles.len() == 1));
    assert!(matches!(first[3], BatchEventKind::Done { .. }));
    // The adopted task's charge is unknown to imggen (the list does not say): the batch's
    // cost leaves it out rather than guessing.
    assert_eq!(report.read_results().unwrap()[0].cost.to_string(), "$0");
    assert_eq!(
        report.read_results().unwrap()[1].cost.to_string(),
        "$0.0123"
    );
    assert_pngs(dir.path(), &report);
}

#[tokio::test]
async fn a_lost_gptimg_create_stays_unknown_until_the_caller_resubmits_it() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(45 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(MockProvider::Gptimg)
                .operation(Operation::Create)
                .times(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"id": "lost", "prompt": "Lost"}),
        json!({"id": "kept", "prompt": "Kept"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::GPTIMG);
    let imggen = imggen(&server, &time);
    let runner = BatchRunner::new(imggen.clone(), BatchOptions::new(dir.path()).concurrency(1));

    let report = runner.run(input(&text, &defaults)).await.unwrap();

    assert_eq!(status_of(&report, "lost"), ResultStatus::Unknown);
    assert_eq!(status_of(&report, "kept"), ResultStatus::Done);
    // The mock charged for the lost create: which is why it is not sent again.
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 2);
    let [unknown] = &report.unknown[..] else {
        panic!("{:?}", report.unknown)
    };
    assert_eq!(unknown.provider, Some(crate::GPTIMG));
    assert!(
        unknown.reason.contains("may have been created and charged"),
        "{}",
        unknown.reason
    );
    assert_eq!(report.progress.unknown, 1);
    let line = &report.read_results().unwrap()[0];
    assert_eq!(line.error.as_deref(), Some(unknown.reason.as_str()));

    let again = runner.run(input(&text, &defaults)).await.unwrap();
    assert_eq!(status_of(&again, "lost"), ResultStatus::Unknown);
    assert_eq!(tasks_made(&server, MockProvider::Gptimg), 2);

    let runner = BatchRunner::new(imggen, BatchOptions::new(dir.path()).resubmit_unknown(true));
    let resubmitted = runner.run(input(&text, &defaults)).await.unwrap();
    assert!(resubmitted.is_complete());
    assert_eq!(resubmitted.resubmitted, ["lost"]);
    assert_eq!(tasks_made(&server, MockProvider::Gptimg), 3);
}

#[tokio::test]
async fn a_journal_of_another_batch_or_in_use_is_refused_before_anything_is_sent() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let runner = BatchRunner::new(imggen(&server, &time), BatchOptions::new(dir.path()));
    runner
        .run(input(r#"{"prompt": "The first batch"}"#, &defaults))
        .await
        .unwrap();
    let sent = server.requests().total;

    let error = runner
        .run(input(r#"{"prompt": "Another batch"}"#, &defaults))
        .await
        .unwrap_err();

    assert!(
        matches!(&error, BatchError::Journal(JournalError::Mismatch { mismatches, .. }) if mismatches == &[("1".to_owned(), 1)]),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("was written for a different batch: request \"1\" (line 1) differs"),
        "{error}"
    );
    assert_eq!(server.requests().total, sent);

    let held = Journal::open(dir.path().join("imggen-journal.sqlite")).unwrap();
    let error = runner
        .run(input(r#"{"prompt": "The first batch"}"#, &defaults))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BatchError::Journal(JournalError::Locked { .. })),
        "{error:?}"
    );
    drop(held);
    assert_eq!(server.requests().total, sent);
}

#[tokio::test]
async fn a_deadline_or_a_cancellation_leaves_paid_tasks_to_the_next_run() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(120 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(
        &(0..4)
            .map(|i| json!({"prompt": format!("Slow {i}")}))
            .collect::<Vec<_>>(),
    );
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let imggen = imggen(&server, &time);

    let report = BatchRunner::new(
        imggen.clone(),
        BatchOptions::new(dir.path()).deadline(30 * S),
    )
    .run(input(&text, &defaults))
    .await
    .unwrap();
    assert_eq!(report.count(ResultStatus::Pending), 4);
    assert!(
        report.read_results().unwrap()[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("resume it from its handle")),
        "{:?}",
        report.read_results().unwrap()[0]
    );
    assert_eq!(report.progress.pending, 4);
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 4);

    let report = BatchRunner::new(imggen.clone(), BatchOptions::new(dir.path()))
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 4);

    // Cancelled after the first submission: the rest are never sent, the first is waited on
    // by the next run.
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let options = BatchOptions::new(dir.path())
        .concurrency(1)
        .cancel(cancel)
        .on_event(move |event| {
            if matches!(event.kind, BatchEventKind::Submitted { .. }) {
                stop.cancel();
            }
        });
    let text = lines(
        &(0..3)
            .map(|i| json!({"prompt": format!("Cancelled {i}")}))
            .collect::<Vec<_>>(),
    );
    let report = BatchRunner::new(imggen.clone(), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert_eq!(report.count(ResultStatus::Pending), 3);
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 5);
    let report = BatchRunner::new(imggen, BatchOptions::new(dir.path()))
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 7);
    assert!(charges_per_task(&server).values().all(|&n| n == 1));
}

#[tokio::test]
async fn a_refusal_charges_nothing_and_is_tried_again_and_a_failed_task_is_left() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "MODERATION_FAILED".into(),
            })
            .provider(MockProvider::Runblob)
            .times(1),
        )
        .unwrap();
    // One task's worth: the declined task is refunded when it fails, which pays for "fine".
    server.set_balance(KEY, Balance::Runblob("0.0123".parse().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"id": "declined", "prompt": "Declined"}),
        json!({"id": "fine", "prompt": "Fine"}),
        json!({"id": "broke", "prompt": "No credits left"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let imggen = imggen(&server, &time);
    let runner = BatchRunner::new(imggen, BatchOptions::new(dir.path()).concurrency(1));

    let report = runner.run(input(&text, &defaults)).await.unwrap();

    assert_eq!(status_of(&report, "declined"), ResultStatus::Failed);
    assert_eq!(status_of(&report, "fine"), ResultStatus::Done);
    assert_eq!(status_of(&report, "broke"), ResultStatus::Pending);
    let broke = &report.read_results().unwrap()[2];
    assert!(
        broke
            .error
            .as_deref()
            .is_some_and(|e| e.contains("INSUFFICIENT_CREDITS")),
        "{broke:?}"
    );
    // The failed task was refunded: the batch cost what the working one cost.
    assert_eq!(report.read_results().unwrap()[0].cost.to_string(), "$0");
    assert_eq!(report.cost().to_string(), "$0.0123");
    assert_eq!(report.progress.cost, report.cost());

    server.set_balance(KEY, Balance::Runblob("1".parse().unwrap()));
    let sent = creates_answered(&server, RUNBLOB_CREATE);
    let report = runner.run(input(&text, &defaults)).await.unwrap();
    assert_eq!(status_of(&report, "broke"), ResultStatus::Done);
    assert_eq!(status_of(&report, "declined"), ResultStatus::Failed);
    // Only the refused request was sent again.
    assert_eq!(creates_answered(&server, RUNBLOB_CREATE), sent + 1);
}

#[tokio::test]
async fn several_images_per_request_are_all_collected() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(40 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"id": "gptimg", "prompt": "Two in one task", "provider": "gptimg", "n": 2}),
        json!({"id": "runblob", "prompt": "Two tasks", "provider": "runblob", "n": 2}),
    ]);
    let report = BatchRunner::new(
        imggen_with(&server, &time, true),
        BatchOptions::new(dir.path()),
    )
    .run(input(&text, &RequestDefaults::new()))
    .await
    .unwrap();

    assert!(report.is_complete(), "{:?}", report.read_results().unwrap());
    let gptimg = &report.read_results().unwrap()[0];
    assert_eq!((gptimg.task_ids.len(), gptimg.files.len()), (1, 2));
    assert_eq!(gptimg.cost.to_string(), "4 credits");
    let runblob = &report.read_results().unwrap()[1];
    assert_eq!((runblob.task_ids.len(), runblob.files.len()), (2, 2));
    assert_eq!(runblob.cost.to_string(), "$0.0246");
    assert_pngs(dir.path(), &report);
}

#[tokio::test]
async fn a_request_removed_from_the_file_keeps_its_paid_task_and_sends_nothing_new() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let imggen = imggen(&server, &time);
    let defaults = RequestDefaults::new().provider(crate::RUNBLOB);
    let full = lines(&[
        json!({"id": "kept", "prompt": "Kept"}),
        json!({"id": "removed-paid", "prompt": "Removed after it was paid"}),
        json!({"id": "removed-unsent", "prompt": "Removed before it was sent"}),
    ]);
    let journal = Journal::open_with_clock(
        dir.path().join("imggen-journal.sqlite"),
        Arc::new(time.clone()),
    )
    .unwrap();
    journal.plan(&input(&full, &defaults).requests).unwrap();
    journal.mark_submitting("removed-paid", &[]).unwrap();
    let paid = create_task(&imggen, "Removed after it was paid").await;
    journal
        .mark_submitted(
            "removed-paid",
            crate::RUNBLOB,
            std::slice::from_ref(&paid),
            None,
        )
        .unwrap();
    drop(journal);

    let report = BatchRunner::new(imggen, BatchOptions::new(dir.path()))
        .run(input(r#"{"id": "kept", "prompt": "Kept"}"#, &defaults))
        .await
        .unwrap();

    let results = report.read_results().unwrap();
    let statuses: Vec<(&str, ResultStatus)> = results
        .iter()
        .map(|line| (line.id.as_str(), line.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("kept", ResultStatus::Done),
            ("removed-paid", ResultStatus::Done),
            ("removed-unsent", ResultStatus::Pending),
        ]
    );
    assert_eq!(report.read_results().unwrap()[1].task_ids, [paid.task_id]);
    assert!(
        report.read_results().unwrap()[2]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("no longer in the batch file")),
        "{:?}",
        report.read_results().unwrap()[2]
    );
    assert_eq!(charges(&server, MockProvider::Runblob).len(), 2);
    assert_pngs(dir.path(), &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_longer_than_the_window_streams_through_every_line_once_in_order() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    // 120 requests — many more than the runner keeps in hand at concurrency 2 — then a line
    // that is not JSON and a second use of line 7's id.
    let mut text: String = (1..=120)
        .map(|i| format!("{{\"id\": \"p-{i}\", \"prompt\": \"A lamp, variant {i}\"}}\n"))
        .collect();
    text.push_str("not json\n{\"id\": \"p-7\", \"prompt\": \"A lamp again\"}\n");
    let file = dir.path().join("batch.jsonl");
    std::fs::write(&file, &text).unwrap();
    let out = dir.path().join("out");
    let defaults = RequestDefaults::new().provider(crate::GPTIMG);
    let source = || BatchSource::file(&file, defaults.clone());
    let (options, events) = recording(BatchOptions::new(&out).concurrency(2).skip_invalid(true));

    let report = BatchRunner::new(imggen(&server, &time), options)
        .run(source())
        .await
        .unwrap();

    let opening: Vec<BatchEventKind> = events
        .lock()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        opening,
        [
            BatchEventKind::Checked {
                requests: 119,
                invalid: 3,
                // 2 credits an image, for the lines that can run only.
                projected: Cost::credits(imggen_types::Credits(238)),
                unpriced: 0,
            },
            BatchEventKind::Journaled {
                added: 119,
                kept: 0,
                replaced: 0
            },
        ]
    );
    assert_eq!(report.count(ResultStatus::Done), 119);
    assert_eq!(report.count(ResultStatus::SkippedInvalid), 3);
    let skipped: Vec<usize> = report.skipped.iter().map(|error| error.line).collect();
    assert_eq!(skipped, [7, 121, 122]);
    assert!(charges_per_task(&server).values().all(|&n| n == 1));
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 119);
    // results.jsonl: every line of the file, in its order, written from the journal.
    let written = report.read_results().unwrap();
    let order: Vec<usize> = written.iter().map(|line| line.line).collect();
    assert_eq!(order, (1..=122).collect::<Vec<_>>());
    assert_eq!(written[6].status, ResultStatus::SkippedInvalid);
    assert!(
        written[6]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("also used on line 122")),
        "{:?}",
        written[6]
    );
    assert_eq!((report.progress.done, report.progress.total), (119, 119));
    assert_pngs(&out, &report);

    // The same file again: every line is kept, nothing is sent.
    let (options, events) = recording(BatchOptions::new(&out).skip_invalid(true));
    let again = BatchRunner::new(imggen(&server, &time), options)
        .run(source())
        .await
        .unwrap();
    assert!(events.lock().unwrap().iter().any(|e| e.kind
        == BatchEventKind::Journaled {
            added: 0,
            kept: 119,
            replaced: 0
        }));
    assert_eq!(again.skipped_done, 119);
    assert_eq!(again.count(ResultStatus::Done), 119);
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 119);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_and_resumes_with_its_journal_in_postgres() {
    let Some(url) =
        crate::postgres::database("a_batch_runs_and_resumes_with_its_journal_in_postgres")
    else {
        return;
    };
    let url = crate::postgres::schema(&url, "imggen_batch_run").await;
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(
        &(0..40)
            .map(
                |i| json!({"id": format!("lamp-{i:02}"), "prompt": format!("A lamp, variant {i}")}),
            )
            .collect::<Vec<_>>(),
    );
    let defaults = RequestDefaults::new().provider(crate::GPTIMG);
    let options = || {
        BatchOptions::new(dir.path())
            .concurrency(8)
            .postgres_journal(url.clone(), "lamps")
    };

    let report = BatchRunner::new(imggen(&server, &time), options())
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(report.is_complete(), "{:?}", report.summary);
    assert_eq!(report.count(ResultStatus::Done), 40);
    assert!(
        report
            .journal_path
            .to_string_lossy()
            .starts_with("postgres://"),
        "{}",
        report.journal_path.display()
    );
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 40);
    assert!(!dir.path().join("imggen-journal.sqlite").exists());
    assert_pngs(dir.path(), &report);

    // The same batch again: everything is kept and done, nothing is sent.
    let (options, events) = recording(options());
    let again = BatchRunner::new(imggen(&server, &time), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(events.lock().unwrap().iter().any(|e| e.kind
        == BatchEventKind::Journaled {
            added: 0,
            kept: 40,
            replaced: 0
        }));
    assert_eq!(again.skipped_done, 40);
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_drain_one_batch_in_postgres_and_pay_for_each_request_once() {
    let Some(url) = crate::postgres::database(
        "two_workers_drain_one_batch_in_postgres_and_pay_for_each_request_once",
    ) else {
        return;
    };
    let url = crate::postgres::schema(&url, "imggen_batch_workers").await;
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let text = lines(
        &(0..30)
            .map(|i| json!({"id": format!("cat-{i:02}"), "prompt": format!("A cat, pose {i}")}))
            .collect::<Vec<_>>(),
    );
    let defaults = RequestDefaults::new().provider(crate::GPTIMG);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let worker = |dir: &Path, name: &str| {
        BatchRunner::new(
            imggen(&server, &time),
            BatchOptions::new(dir)
                .concurrency(4)
                .worker(name)
                .postgres_journal(url.clone(), "cats"),
        )
    };
    let (first, second) = (worker(a.path(), "first"), worker(b.path(), "second"));
    let (one, two) = tokio::join!(
        first.run(input(&text, &defaults)),
        second.run(input(&text, &defaults))
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    // Each request was created once, by one of them; both report the whole batch.
    assert_eq!(charges(&server, MockProvider::Gptimg).len(), 30);
    assert_eq!(one.count(ResultStatus::Done), 30);
    assert_eq!(two.count(ResultStatus::Done), 30);
    // Every result line says who saved its file, and the file is there.
    let mut by = BTreeMap::new();
    for line in one.read_results().unwrap() {
        assert_eq!(line.saved.len(), 1, "{line:?}");
        let saved = &line.saved[0];
        for file in &line.files {
            assert!(Path::new(&saved.dir).join(file).is_file(), "{line:?}");
        }
        *by.entry(saved.worker.clone()).or_insert(0) += 1;
    }
    assert_eq!(by.values().sum::<i32>(), 30);
    assert!(
        by.keys().all(|name| name == "first" || name == "second"),
        "{by:?}"
    );
}
