//! The three provider clients, end to end against the mock: create, poll to completion,
//! download a PNG; and what the clients make of the mock's errors and faults.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use imggen_http::time::{Clock, SleepFuture, Sleeper};
use imggen_mock::{Balance, Fault, FaultKind, MockClock, Operation, Provider, RateLimit};
use imggen_types::Credits;
use imggen_types::media::{ImageFormat, sniff};

use crate::{KEY, TASK_TIME, config, png_size, start};

/// The mock's clock as a client's clock and sleeper: a client that sleeps moves the mock's
/// time, so client and server share one virtual clock.
#[derive(Clone, Debug)]
struct SharedTime(MockClock);

impl Clock for SharedTime {
    fn now(&self) -> Instant {
        self.0.now()
    }

    fn wall(&self) -> SystemTime {
        self.0.wall()
    }
}

impl Sleeper for SharedTime {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        self.0.advance(duration);
        Box::pin(tokio::task::yield_now()) as Pin<Box<_>>
    }
}

fn gptimg(mock: &crate::Mock) -> imggen_gptimg::Client {
    let time = SharedTime(mock.server.clock().clone());
    imggen_gptimg::Client::builder()
        .api_key(KEY)
        .base_url(mock.server.url())
        .http_client(crate::http_client())
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time))
        .build()
        .unwrap()
}

fn runblob(mock: &crate::Mock) -> imggen_runblob::Client {
    let time = SharedTime(mock.server.clock().clone());
    imggen_runblob::Client::builder()
        .api_key(KEY)
        .base_url(mock.server.url())
        .http_client(crate::http_client())
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time))
        .build()
        .unwrap()
}

fn runbase(mock: &crate::Mock) -> imggen_runbase::Client {
    let time = SharedTime(mock.server.clock().clone());
    imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(mock.server.url())
        .http_client(crate::http_client())
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time))
        .build()
        .unwrap()
}

fn assert_png(bytes: &[u8], size: (u32, u32)) {
    assert_eq!(sniff(bytes).map(|info| info.format), Some(ImageFormat::Png));
    assert_eq!(png_size(bytes), size);
}

#[tokio::test]
async fn the_gptimg_client_creates_polls_and_downloads() {
    use imggen_gptimg::{AspectRatio, GenerateRequest, TaskStatus, TaskType};
    let mock = start(config()).await;
    let client = gptimg(&mock);
    let request = GenerateRequest::new("A lighthouse on a cliff at dusk")
        .aspect_ratio(AspectRatio::Portrait9x16)
        .n(2);
    let created = client.create(&request).await.unwrap();
    assert_eq!(created.status, TaskStatus::Processing);
    assert_eq!(created.kind, Some(TaskType::TextToImage));
    assert_eq!(created.images, Some(vec![]));
    assert_eq!(
        client.status(&created.task_id).await.unwrap().status,
        TaskStatus::Processing
    );

    mock.server.advance(TASK_TIME).await;
    let task = client.status(&created.task_id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    let urls = task.image_urls();
    assert_eq!(urls.len(), 2);
    for url in urls {
        let file = client.download(url).await.unwrap();
        assert_eq!(file.content_type.as_deref(), Some("image/png"));
        assert_png(&file.bytes, (144, 256));
    }
    assert_eq!(mock.server.balances(KEY).gptimg, Credits(100_000 - 4));
}

#[tokio::test]
async fn the_runblob_client_creates_polls_lists_and_downloads() {
    use imggen_runblob::{AspectRatio, GenerateRequest, GenerationStatus, ListGenerationsQuery};
    let mock = start(config()).await;
    let client = runblob(&mock);
    let created = client
        .create(
            &GenerateRequest::new("A futuristic city with flying cars")
                .aspect_ratio(AspectRatio::Landscape4x3),
        )
        .await
        .unwrap();
    assert_eq!(created.status, GenerationStatus::Pending);
    assert_eq!(created.price.to_plain_string(), "0.0123");
    assert_eq!(
        client.status(&created.task_uuid).await.unwrap().status,
        GenerationStatus::Pending
    );

    mock.server.advance(TASK_TIME).await;
    let generation = client.status(&created.task_uuid).await.unwrap();
    assert_eq!(generation.status, GenerationStatus::Completed);
    let file = client
        .download(generation.result_image_url.as_deref().unwrap())
        .await
        .unwrap();
    assert_png(&file.bytes, (256, 192));
    let listed = client.list(ListGenerationsQuery::default()).await.unwrap();
    assert_eq!(listed, vec![generation]);
}

#[tokio::test]
async fn the_runbase_client_creates_polls_and_downloads() {
    use imggen_runbase::{GptImage15Input, Quality, RunStatus};
    let mock = start(config()).await;
    let client = runbase(&mock);
    let created = client
        .create(
            &GptImage15Input::new("A cinematic product photo of a ceramic lamp")
                .quality(Quality::High),
        )
        .await
        .unwrap();
    assert_eq!(created.status, RunStatus::Pending);
    assert_eq!(created.cost_usd.unwrap().to_usd().to_plain_string(), "0.16");

    mock.server.advance(TASK_TIME).await;
    let run = client.status(&created.id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.completed_at.is_some());
    let file = client.download(&run.output_urls()[0]).await.unwrap();
    assert_png(&file.bytes, (256, 256));
}

#[tokio::test]
async fn a_dropped_create_is_reported_as_maybe_charged_and_never_resubmitted() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .operation(Operation::Create)
                .times(3),
        )
        .unwrap();
    let gptimg_error = gptimg(&mock)
        .create(&imggen_gptimg::GenerateRequest::new("lost"))
        .await
        .unwrap_err();
    let runblob_error = runblob(&mock)
        .create(&imggen_runblob::GenerateRequest::new("lost"))
        .await
        .unwrap_err();
    let runbase_error = runbase(&mock)
        .create(&imggen_runbase::GptImage1Input::new("lost"))
        .await
        .unwrap_err();
    assert!(gptimg_error.may_have_been_charged(), "{gptimg_error}");
    assert!(runblob_error.may_have_been_charged(), "{runblob_error}");
    assert!(runbase_error.may_have_been_charged(), "{runbase_error}");
    let ledger = mock.server.ledger();
    assert_eq!(
        ledger.len(),
        3,
        "one charge per create: no client resubmitted"
    );
    let providers: Vec<Provider> = ledger.iter().map(|entry| entry.provider).collect();
    assert_eq!(
        providers,
        [Provider::Gptimg, Provider::Runblob, Provider::Runbase]
    );
    // The paid-for runblob task can be found again.
    let listed = runblob(&mock).list(Default::default()).await.unwrap();
    assert_eq!(listed[0].task_uuid.as_str(), ledger[1].task_id);
}

#[tokio::test]
async fn maintenance_and_a_short_balance_are_errors_that_say_nothing_was_charged() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::Maintenance)
                .provider(Provider::Runblob)
                .operation(Operation::Create),
        )
        .unwrap();
    let maintenance = runblob(&mock)
        .create(&imggen_runblob::GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(maintenance.status(), Some(503));
    assert!(!maintenance.may_have_been_charged(), "{maintenance}");
    assert!(maintenance.is_retryable(), "{maintenance}");

    mock.server.set_balance(KEY, Balance::Gptimg(Credits(1)));
    let short = gptimg(&mock)
        .create(&imggen_gptimg::GenerateRequest::new("x").n(2))
        .await
        .unwrap_err();
    assert_eq!(short.status(), Some(402));
    assert_eq!(
        short.code(),
        Some(imggen_gptimg::ErrorCode::InsufficientCredits)
    );
    assert!(!short.may_have_been_charged());
    assert!(
        short
            .to_string()
            .contains("4 credits required, 1 available"),
        "{short}"
    );
    assert!(mock.server.ledger().is_empty());
}

#[tokio::test]
async fn a_client_obeying_retry_after_moves_the_shared_clock_instead_of_waiting() {
    let limit = RateLimit::new(1, Duration::from_secs(10));
    let mock = start(config().rate_limit(Provider::Gptimg, Some(limit))).await;
    let client = gptimg(&mock);
    let created = client
        .create(&imggen_gptimg::GenerateRequest::new("x"))
        .await
        .unwrap();
    let before = mock.server.clock().elapsed();
    // 429 with Retry-After: 10 → the client sleeps 10 s of mock time → the retry is admitted,
    // and the 2 s task is done by then.
    let task = client.status(&created.task_id).await.unwrap();
    assert_eq!(
        mock.server.clock().elapsed() - before,
        Duration::from_secs(10)
    );
    assert_eq!(task.status, imggen_gptimg::TaskStatus::Completed);
}

#[tokio::test]
async fn a_failed_task_reads_as_failed_with_its_code_in_every_client() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "MODERATION_FAILED".into(),
            })
            .always(),
        )
        .unwrap();
    let blob = runblob(&mock)
        .create(&imggen_runblob::GenerateRequest::new("x"))
        .await
        .unwrap();
    let img = gptimg(&mock)
        .create(&imggen_gptimg::GenerateRequest::new("x"))
        .await
        .unwrap();
    let base = runbase(&mock)
        .create(&imggen_runbase::GptImage1Input::new("x"))
        .await
        .unwrap();
    mock.server.advance(TASK_TIME).await;
    let blob = runblob(&mock).status(&blob.task_uuid).await.unwrap();
    assert_eq!(
        blob.failure_code(),
        Some(imggen_runblob::FailureCode::ModerationFailed)
    );
    let img = gptimg(&mock).status(&img.task_id).await.unwrap();
    assert_eq!(img.status, imggen_gptimg::TaskStatus::Failed);
    assert_eq!(
        img.error_message().as_deref(),
        Some("MODERATION_FAILED: The prompt or a reference image failed moderation")
    );
    let base = runbase(&mock).status(&base.id).await.unwrap();
    assert_eq!(base.status, imggen_runbase::RunStatus::Failed);
    assert_eq!(base.error_message().as_deref(), Some("MODERATION_FAILED"));
    let refunds = mock
        .server
        .ledger()
        .iter()
        .filter(|e| e.kind == imggen_mock::EntryKind::Refund)
        .count();
    assert_eq!(refunds, 3);
}

/// Status requests the mock answered so far, with their statuses.
fn status_requests(mock: &crate::Mock) -> Vec<u16> {
    mock.server
        .requests()
        .recent
        .iter()
        .filter(|record| record.method == "GET" && !record.path.starts_with("/files/"))
        .map(|record| record.status)
        .collect()
}

#[tokio::test]
async fn each_clients_create_and_wait_polls_on_its_schedule_until_done() {
    use imggen_http::WaitOptions;
    // Tasks of 50 s: gptimg polls first at 35 s (±10%) then every 5 s; runblob first at 60 s;
    // runbase first at 3 s then every 2 s.
    let mock = start(config().profile(imggen_mock::Profile::Fixed(Duration::from_secs(50)))).await;
    let start_at = mock.server.clock().now();
    let task = gptimg(&mock)
        .create_and_wait(
            &imggen_gptimg::GenerateRequest::new("a fox"),
            &WaitOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(task.status, imggen_gptimg::TaskStatus::Completed);
    let elapsed = mock.server.clock().now() - start_at;
    assert!(elapsed >= Duration::from_secs(50), "{elapsed:?}");
    let polls = status_requests(&mock).len();
    assert!((2..=5).contains(&polls), "{polls} polls, not a busy loop");

    let generation = runblob(&mock)
        .create_and_wait(
            &imggen_runblob::GenerateRequest::new("a fox"),
            &WaitOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        generation.status,
        imggen_runblob::GenerationStatus::Completed
    );
    assert_eq!(
        status_requests(&mock).len() - polls,
        1,
        "runblob's first poll at 60 s finds a 50 s task done"
    );

    let run = runbase(&mock)
        .create_and_wait(
            &imggen_runbase::GptImage1Input::new("a fox"),
            &WaitOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(run.status, imggen_runbase::RunStatus::Succeeded);
}

#[tokio::test]
async fn a_wait_that_stops_returns_the_task_id_and_leaves_the_task_running() {
    use imggen_http::{CancellationToken, WaitError, WaitOptions};
    let mock = start(config().profile(imggen_mock::Profile::Fixed(Duration::from_secs(600)))).await;
    let client = runbase(&mock);
    let created = client
        .create(&imggen_runbase::GptImage1Input::new("a fox"))
        .await
        .unwrap();
    let start_at = mock.server.clock().now();
    let error = client
        .wait(
            &created.id,
            &WaitOptions::new().deadline(Duration::from_secs(20)),
        )
        .await
        .unwrap_err();
    let WaitError::Deadline {
        task_id,
        last_status,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(task_id, created.id.as_str());
    // runbase runs spend the first quarter of their time pending.
    assert_eq!(last_status.as_deref(), Some("pending"));
    assert_eq!(
        mock.server.clock().now() - start_at,
        Duration::from_secs(20)
    );
    assert!(error.to_string().contains("wait on it again"), "{error}");

    let cancel = CancellationToken::new();
    cancel.cancel();
    let error = client
        .wait(&created.id, &WaitOptions::new().cancel(cancel))
        .await
        .unwrap_err();
    assert!(matches!(error, WaitError::Cancelled { .. }), "{error:?}");
    assert_eq!(error.task_id(), created.id.as_str());
    assert_eq!(mock.server.tasks()[0].status, "pending", "the run goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbase_clones_share_one_budget_so_thirty_waits_earn_no_429() {
    use imggen_http::{RequestBudget, WaitOptions};
    // Real time, shrunk: the mock allows 20 requests per 500 ms, and the client's budget is
    // the same rule (spent, as always, with a margin). Requests are in flight for
    // milliseconds, as on a real network, not for the seconds a shared virtual clock could
    // jump while they are.
    let window = Duration::from_millis(500);
    let mock = start(
        imggen_mock::MockConfig::default()
            .api_key(KEY)
            .profile(imggen_mock::Profile::Fixed(Duration::from_millis(300)))
            .rate_limit(Provider::Runbase, Some(RateLimit::new(20, window))),
    )
    .await;
    let client = imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(mock.server.url())
        .http_client(crate::http_client())
        .build()
        .unwrap()
        .with_budget(RequestBudget::new(20, window));
    let schedule = imggen_runbase::POLL_SCHEDULE.scaled(0.1);
    let waits: Vec<_> = (0..30)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .create_and_wait(
                        &imggen_runbase::GptImage1Input::new(format!("lamp {i}")),
                        &WaitOptions::new().schedule(schedule),
                    )
                    .await
            })
        })
        .collect();
    for wait in waits {
        let run = wait.await.unwrap().unwrap();
        assert_eq!(run.status, imggen_runbase::RunStatus::Succeeded);
    }
    assert_eq!(
        mock.server.requests().with_status(429),
        0,
        "the clones kept to the budget together"
    );
    assert!(
        mock.server.requests().total >= 60,
        "30 creates and their polls"
    );
}
