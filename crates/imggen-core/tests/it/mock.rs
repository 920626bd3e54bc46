//! End to end against imggen-mock: the real clients, the real wire, the mock's money ledger,
//! its rate limits, faults and webhooks — on the mock's manual clock, so nothing waits in
//! real time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use imggen_core::imggen_gptimg::provider::GptimgProvider;
use imggen_core::imggen_runbase::provider::RunbaseProvider;
use imggen_core::imggen_runblob::provider::RunblobProvider;
use imggen_core::provider::{BoxFuture, Created, DownloadLimits, Downloaded};
use imggen_core::{
    CallError, CancellationToken, Cost, DownloadOptions, Error, GenerateOptions, GenerationRequest,
    ImageData, Imggen, ImggenBuilder, PlannedTask, Provider, ProviderId, Reference, SubmitOptions,
    TaskHandle, TaskState, TaskStatus, WaitOptions, WebhookHub,
};
use imggen_core::{imggen_gptimg, imggen_runbase, imggen_runblob};
use imggen_http::time::{Clock, SleepFuture, Sleeper};
use imggen_mock::{
    Balance, EntryKind, Fault, FaultKind, MockClock, MockConfig, MockServer, Operation, Profile,
    Provider as MockProvider,
};
use imggen_types::{AspectRatio, Credits};

const KEY: &str = "sk-imggen-core-e2e-0001";
const S: Duration = Duration::from_secs(1);

/// Virtual time shared by imggen and the mock: a sleep yields once, then moves the mock's
/// clock by its whole duration (only imggen's scheduler sleeps, and never with a request in
/// flight).
#[derive(Clone, Debug)]
struct MockTime(MockClock);

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

/// Time the test moves by hand: a sleep ends only once the test has advanced the mock's
/// clock past it, so a webhook can arrive while imggen waits for its next poll.
#[derive(Clone, Debug)]
struct SteppedTime {
    clock: MockClock,
    moved: Arc<tokio::sync::watch::Sender<()>>,
}

impl SteppedTime {
    fn new(clock: MockClock) -> Self {
        SteppedTime {
            clock,
            moved: Arc::new(tokio::sync::watch::channel(()).0),
        }
    }

    /// Advances the mock (which delivers the webhooks that fall due) and wakes sleepers.
    async fn advance(&self, server: &MockServer, by: Duration) {
        server.advance(by).await;
        self.moved.send_replace(());
    }
}

impl Clock for SteppedTime {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn wall(&self) -> SystemTime {
        self.clock.wall()
    }
}

impl Sleeper for SteppedTime {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        let clock = self.clock.clone();
        let until = clock.now() + duration;
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            while clock.now() < until {
                if moved.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

/// Counts what reaches a provider, and the 429s it answers.
#[derive(Clone, Debug, Default)]
struct Counts {
    creates: Arc<AtomicUsize>,
    statuses: Arc<AtomicUsize>,
    rate_limited: Arc<AtomicUsize>,
}

impl Counts {
    fn creates(&self) -> usize {
        self.creates.load(Ordering::SeqCst)
    }

    fn statuses(&self) -> usize {
        self.statuses.load(Ordering::SeqCst)
    }

    fn rate_limited(&self) -> usize {
        self.rate_limited.load(Ordering::SeqCst)
    }

    fn saw<T>(&self, result: &Result<T, CallError>) {
        if matches!(result, Err(error) if error.status == Some(429)) {
            self.rate_limited.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
struct Counting<P> {
    inner: P,
    counts: Counts,
}

impl<P: Provider> Provider for Counting<P> {
    fn id(&self) -> ProviderId {
        self.inner.id()
    }

    fn capabilities(&self) -> imggen_core::ProviderCapabilities {
        self.inner.capabilities()
    }

    fn plan(
        &self,
        request: &GenerationRequest,
        options: imggen_core::PlanOptions,
    ) -> Result<imggen_core::Plan, imggen_core::PlanError> {
        self.inner.plan(request, options)
    }

    fn set_option(
        &self,
        options: &mut serde_json::Map<String, serde_json::Value>,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        self.inner.set_option(options, key, value)
    }

    fn check_task_id(&self, task_id: &str) -> Result<(), imggen_types::ValidationError> {
        self.inner.check_task_id(task_id)
    }

    fn poll_schedule(&self) -> imggen_core::PollSchedule {
        self.inner.poll_schedule()
    }

    fn default_deadline(&self) -> Duration {
        self.inner.default_deadline()
    }

    fn rate_limit(&self) -> Option<imggen_core::RateLimit> {
        self.inner.rate_limit()
    }

    fn failure_advice(&self, code: &str) -> Option<&'static str> {
        self.inner.failure_advice(code)
    }

    fn lists_recent_tasks(&self) -> bool {
        self.inner.lists_recent_tasks()
    }

    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<imggen_core::RecentTask>, CallError>> {
        self.inner.recent_tasks(offset, limit)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<(String, String), String> {
        self.inner.parse_webhook(body)
    }

    fn key_label(&self) -> String {
        self.inner.key_label()
    }

    fn allows_http_downloads(&self) -> bool {
        self.inner.allows_http_downloads()
    }

    fn prepare<'a>(
        &'a self,
        references: &'a [Reference],
    ) -> BoxFuture<'a, Result<Vec<Reference>, CallError>> {
        self.inner.prepare(references)
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            self.counts.creates.fetch_add(1, Ordering::SeqCst);
            let result = self.inner.create(task).await;
            self.counts.saw(&result);
            result
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskStatus, CallError>> {
        Box::pin(async move {
            self.counts.statuses.fetch_add(1, Ordering::SeqCst);
            let result = self.inner.status(task_id).await;
            self.counts.saw(&result);
            result
        })
    }

    fn download<'a>(
        &'a self,
        url: &'a str,
        limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>> {
        self.inner.download(url, limits)
    }
}

async fn mock(config: MockConfig) -> MockServer {
    MockServer::start(config.manual_clock().api_key(KEY))
        .await
        .expect("the mock starts")
}

/// A fresh reqwest client per test: a shared one could reuse a stale connection.
fn http() -> imggen_http::reqwest::Client {
    imggen_http::reqwest::Client::builder()
        .redirect(imggen_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Every provider of the mock, each counted, on `time`.
fn imggen<T: Clock + Sleeper + Clone>(
    server: &MockServer,
    time: &T,
) -> (ImggenBuilder, BTreeMap<ProviderId, Counts>) {
    let mut counts = BTreeMap::new();
    let runblob = imggen_runblob_client(server, time);
    let gptimg = imggen_gptimg::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(Arc::new(time.clone()))
        .build()
        .unwrap();
    let runbase = imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(Arc::new(time.clone()))
        .build()
        .unwrap();
    let counted = |id: ProviderId, counts: &mut BTreeMap<ProviderId, Counts>| {
        let c = Counts::default();
        counts.insert(id, c.clone());
        c
    };
    let builder = Imggen::builder()
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time.clone()))
        .provider(Counting {
            inner: RunblobProvider::new(runblob),
            counts: counted(crate::RUNBLOB, &mut counts),
        })
        .provider(Counting {
            inner: GptimgProvider::new(gptimg),
            counts: counted(crate::GPTIMG, &mut counts),
        })
        .provider(Counting {
            inner: RunbaseProvider::new(runbase),
            counts: counted(crate::RUNBASE, &mut counts),
        });
    (builder, counts)
}

fn imggen_runblob_client<T: Clock + Clone>(
    server: &MockServer,
    time: &T,
) -> imggen_runblob::Client {
    imggen_runblob::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .clock(Arc::new(time.clone()))
        .build()
        .unwrap()
}

fn charges(server: &MockServer, provider: MockProvider) -> usize {
    server
        .ledger()
        .iter()
        .filter(|entry| entry.provider == provider && entry.kind == EntryKind::Charge)
        .count()
}

fn on(provider: ProviderId) -> GenerateOptions {
    GenerateOptions::default().submit(SubmitOptions::provider(provider))
}

fn file_bytes(data: &ImageData) -> Vec<u8> {
    match data {
        ImageData::File(path) => std::fs::read(path).unwrap(),
        ImageData::Bytes(bytes) => bytes.to_vec(),
        other => panic!("unexpected image data {other:?}"),
    }
}

#[tokio::test]
async fn runblob_end_to_end() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(90 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = time.now();
    let request = GenerationRequest::new("A futuristic city at night")
        .aspect_ratio(AspectRatio::Landscape4x3);

    let generation = imggen
        .generate(
            &request,
            &on(crate::RUNBLOB).download(DownloadOptions::to_dir(dir.path())),
        )
        .await
        .unwrap();

    let image = &generation.images[0];
    let expected_name = format!("{}-1.png", generation.handles[0].task_id);
    assert_eq!(image.data, ImageData::File(dir.path().join(&expected_name)));
    assert_eq!(image.media_type, "image/png");
    assert_eq!((image.width, image.height), (Some(256), Some(192)));
    assert_eq!(
        imggen_types::media::sniff(&file_bytes(&image.data))
            .unwrap()
            .width,
        Some(256)
    );
    assert_eq!(generation.cost, Cost::usd("0.0123".parse().unwrap()));
    assert_eq!(charges(&server, MockProvider::Runblob), 1);
    // No poll before a minute (54 s at the earliest, jitter included); then every 9 s ±10%:
    // done at 90 s, seen by 100 s, after at most five polls that found it running.
    let waited = time.now() - start;
    assert!(waited >= 90 * S && waited <= 100 * S, "{waited:?}");
    assert!(counts[&crate::RUNBLOB].statuses() <= 6);
}

#[tokio::test]
async fn every_status_read_while_waiting_is_reported_for_progress() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let options = on(crate::GPTIMG).on_status(move |handle, status| {
        record
            .lock()
            .unwrap()
            .push((handle.task_id.clone(), status.state.name().to_owned()));
    });

    let generation = imggen
        .generate(&GenerationRequest::new("A paper boat"), &options)
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    let task_id = &generation.handles[0].task_id;
    assert!(seen.iter().all(|(id, _)| id == task_id), "{seen:?}");
    assert_eq!(
        seen.last().map(|(_, state)| state.as_str()),
        Some("succeeded"),
        "{seen:?}"
    );
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|(_, state)| state == "running"),
        "{seen:?}"
    );
    // One report per status call: nothing polled that was not reported.
    assert_eq!(seen.len(), counts[&crate::GPTIMG].statuses());
}

#[tokio::test]
async fn gptimg_end_to_end_with_several_images_per_task() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let request = GenerationRequest::new("A ceramic cup, top-down")
        .aspect_ratio(AspectRatio::Landscape16x9)
        .n(2);

    let generation = imggen.generate(&request, &on(crate::GPTIMG)).await.unwrap();

    assert_eq!(generation.handles.len(), 1);
    assert_eq!(generation.images.len(), 2);
    for (index, image) in generation.images.iter().enumerate() {
        assert_eq!(image.index, index + 1);
        assert_eq!((image.width, image.height), (Some(256), Some(144)));
        assert!(matches!(image.data, ImageData::Bytes(_)));
    }
    assert_eq!(generation.cost, Cost::credits(Credits(4)));
    assert_eq!(generation.cost.total_usd(None), None);
    let ledger = server.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].amount, imggen_mock::Amount::Credits(Credits(4)));
    assert!(generation.handles[0].task_id.starts_with("gpt-image-2-"));
}

#[tokio::test]
async fn runbase_end_to_end_with_a_resolution_and_its_exact_cost() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(6 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let mut request =
        GenerationRequest::new("A ceramic lamp").aspect_ratio(AspectRatio::Portrait9x16);
    imggen
        .set_option(&mut request, crate::RUNBASE, "resolution", "2K")
        .unwrap();

    let generation = imggen
        .generate(&request, &on(crate::RUNBASE))
        .await
        .unwrap();

    assert_eq!(generation.cost, Cost::usd("0.07".parse().unwrap()));
    assert_eq!(
        generation.handles[0].model.as_deref(),
        Some("openai/gpt-image-2")
    );
    let image = &generation.images[0];
    assert_eq!((image.width, image.height), (Some(144), Some(256)));
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
    // First poll at ~3 s, then ~2 s: done at 6 s after at most 3 polls.
    assert!(
        counts[&crate::RUNBASE].statuses() <= 3,
        "{} polls, {:?}",
        counts[&crate::RUNBASE].statuses(),
        server.tasks()
    );
}

#[tokio::test]
async fn a_handle_read_back_from_json_resumes_in_a_fresh_imggen() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let saved = {
        let (builder, _) = imggen(&server, &time);
        let first = builder.build().unwrap();
        let submission = first
            .submit(
                &GenerationRequest::new("A lighthouse"),
                &SubmitOptions::provider(crate::GPTIMG),
            )
            .await
            .unwrap();
        submission.handles[0].to_json()
    };

    // Another process: new clients, new connection pool, the receipt from disk.
    let (builder, _) = imggen(&server, &time);
    let fresh = builder.build().unwrap();
    let handle = TaskHandle::from_json(&saved).unwrap();
    let generation = fresh
        .resume(&[handle], &GenerateOptions::default())
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(generation.cost, Cost::credits(Credits(2)));
    assert_eq!(charges(&server, MockProvider::Gptimg), 1);
}

#[tokio::test]
async fn a_deadline_keeps_the_handle_and_resuming_it_succeeds() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(60 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let error = imggen
        .generate(
            &GenerationRequest::new("A slow lamp"),
            &on(crate::RUNBASE).deadline(20 * S),
        )
        .await
        .unwrap_err();

    let Error::DeadlineExceeded(exceeded) = &error else {
        panic!("expected the deadline, got {error:?}");
    };
    assert_eq!(exceeded.last_state, Some(TaskState::Running));
    let handles: Vec<TaskHandle> = error.handles().into_iter().cloned().collect();
    assert_eq!(handles.len(), 1);

    let generation = imggen
        .resume(&handles, &GenerateOptions::default())
        .await
        .unwrap();
    assert_eq!(generation.images.len(), 1);
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test]
async fn cancelling_mid_wait_returns_the_handle_and_leaves_the_task_running() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(36_000 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let handle = imggen
        .submit(
            &GenerationRequest::new("A patient lamp"),
            &SubmitOptions::provider(crate::RUNBLOB),
        )
        .await
        .unwrap()
        .handles
        .remove(0);
    let token = CancellationToken::new();
    let waiting = {
        let (imggen, handle) = (imggen.clone(), handle.clone());
        let options = WaitOptions::new()
            .cancel(token.clone())
            .deadline(100_000 * S);
        tokio::spawn(async move { imggen.wait(&handle, options).await })
    };
    let runblob = counts[&crate::RUNBLOB].clone();
    let mut spins = 0u64;
    while runblob.statuses() < 2 {
        tokio::task::yield_now().await;
        spins += 1;
        assert!(spins < 10_000_000, "the wait never polled");
    }

    token.cancel();

    let error = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::Cancelled(c) if c.handle == handle),
        "{error:?}"
    );
    let task = server
        .tasks()
        .into_iter()
        .find(|t| t.id == handle.task_id)
        .unwrap();
    assert!(
        matches!(task.status.as_str(), "pending" | "processing"),
        "{}",
        task.status
    );
}

#[tokio::test]
async fn fallback_follows_the_order_and_reports_why_each_provider_was_skipped() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Maintenance)
                .provider(MockProvider::Runblob)
                .operation(Operation::Create)
                .always(),
        )
        .unwrap();
    server.set_balance(KEY, Balance::Gptimg(Credits(0)));
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let order = [crate::RUNBLOB, crate::GPTIMG, crate::RUNBASE];

    let generation = imggen
        .generate(
            &GenerationRequest::new("A lamp, wherever it can be made"),
            &GenerateOptions::default().submit(SubmitOptions::fallback(order)),
        )
        .await
        .unwrap();

    assert_eq!(generation.provider(), crate::RUNBASE);
    let skipped: Vec<(ProviderId, Option<u16>)> = generation
        .fallback
        .skipped
        .iter()
        .map(|attempt| match &attempt.error {
            Error::Refused(refused) => (attempt.provider, refused.call.status),
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(
        skipped,
        [(crate::RUNBLOB, Some(503)), (crate::GPTIMG, Some(402))]
    );
    let gptimg_refusal = &generation.fallback.skipped[1].error;
    assert!(
        gptimg_refusal.advice().is_some(),
        "the provider's advice for 402 is kept"
    );
    // Maintenance proves nothing was charged: retried (4 attempts) before moving on.
    assert_eq!(counts[&crate::RUNBLOB].creates(), 4);
    assert_eq!(counts[&crate::GPTIMG].creates(), 1);
    let ledger = server.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].provider, MockProvider::Runbase);
}

#[tokio::test]
async fn a_429_storm_on_status_is_waited_out() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 429,
                body: None,
                headers: BTreeMap::from([("Retry-After".to_owned(), "3".to_owned())]),
            })
            .provider(MockProvider::Runbase)
            .operation(Operation::Status)
            .times(8),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let start = time.now();

    let generation = imggen
        .generate(&GenerationRequest::new("A lamp"), &on(crate::RUNBASE))
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(counts[&crate::RUNBASE].rate_limited(), 8);
    assert!(
        time.now() - start >= 3 * S + 8 * 3 * S,
        "every Retry-After was obeyed"
    );
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_runbase_jobs_on_one_key_get_no_429() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let jobs: Vec<_> = (0..50)
        .map(|i| {
            let imggen = imggen.clone();
            tokio::spawn(async move {
                imggen
                    .generate(
                        &GenerationRequest::new(format!("lamp {i}")),
                        &on(crate::RUNBASE),
                    )
                    .await
            })
        })
        .collect();
    for job in jobs {
        let generation = job.await.unwrap().unwrap();
        assert_eq!(generation.images.len(), 1);
    }

    let runbase = &counts[&crate::RUNBASE];
    assert_eq!(runbase.rate_limited(), 0, "the mock answered 429");
    assert_eq!(runbase.creates(), 50);
    assert!(runbase.statuses() >= 50);
    assert_eq!(charges(&server, MockProvider::Runbase), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_storm_of_429s_the_budget_grows_back_and_the_run_finishes_without_new_ones() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    // A storm: the next twelve runbase status calls are answered 429, enough to tighten the
    // key's budget to one request per window. Each asks for a 1 s pause, so how the 429s fall
    // (together or one by one) changes the budget, not how long the key is paused. (Status
    // calls only: a create answered 429 four times is refused — rightly — and which create
    // the storm hits depends on the order the jobs run in.)
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 429,
                body: None,
                headers: BTreeMap::from([("Retry-After".to_owned(), "1".to_owned())]),
            })
            .provider(MockProvider::Runbase)
            .operation(Operation::Status)
            .times(12),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let start = time.now();

    // 80 jobs need at least 160 requests: at one per window that is over 27 minutes, far past
    // each wait's default 10-minute deadline. Grown back to 20 per 10 s, a few minutes.
    let jobs: Vec<_> = (0..80)
        .map(|i| {
            let imggen = imggen.clone();
            tokio::spawn(async move {
                imggen
                    .generate(
                        &GenerationRequest::new(format!("lamp {i}")),
                        &on(crate::RUNBASE),
                    )
                    .await
            })
        })
        .collect();
    for job in jobs {
        let generation = job.await.unwrap().unwrap();
        assert_eq!(generation.images.len(), 1);
    }

    let runbase = &counts[&crate::RUNBASE];
    assert_eq!(
        runbase.rate_limited(),
        12,
        "only the storm's 429s, none earned after it"
    );
    assert_eq!(charges(&server, MockProvider::Runbase), 80);
    assert!(
        time.now() - start < 10 * 60 * S,
        "the run took {:?}",
        time.now() - start
    );
}

#[tokio::test]
async fn a_dropped_create_is_reported_and_never_resubmitted() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(MockProvider::Runbase)
                .operation(Operation::Create)
                .times(1),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp whose answer is lost"),
            &GenerateOptions::default()
                .submit(SubmitOptions::fallback([crate::RUNBASE, crate::GPTIMG])),
        )
        .await
        .unwrap_err();

    let Error::CreateOutcomeUnknown(unknown) = &error else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert!(unknown.call.may_have_been_charged);
    assert!(
        error
            .advice()
            .is_some_and(|advice| advice.contains("do not resubmit"))
    );
    assert!(
        error
            .to_string()
            .contains("check before submitting it again"),
        "{error}"
    );
    assert_eq!(counts[&crate::RUNBASE].creates(), 1);
    assert_eq!(counts[&crate::GPTIMG].creates(), 0);
    // The mock charged for the task whose answer was lost — exactly once.
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
    assert_eq!(server.ledger().len(), 1);
}

#[tokio::test]
async fn the_deadline_ends_a_create_that_never_answers_as_an_unknown_outcome_sent_once() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Latency { ms: 3_600_000 })
                .provider(MockProvider::Runbase)
                .operation(Operation::Create),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    // A guard against a hang, not a measurement: the create ends by its 300 ms deadline.
    let error = tokio::time::timeout(
        30 * S,
        imggen.generate(
            &GenerationRequest::new("A lamp"),
            &on(crate::RUNBASE).deadline(Duration::from_millis(300)),
        ),
    )
    .await
    .expect("the deadline ended the create")
    .unwrap_err();
    let Error::CreateOutcomeUnknown(unknown) = &error else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert!(unknown.call.may_have_been_charged, "{error}");
    assert!(error.to_string().contains("before the deadline"), "{error}");
    assert_eq!(counts[&crate::RUNBASE].creates(), 1, "never resent");
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test]
async fn the_deadline_ends_a_trickling_download_and_keeps_the_handle() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Trickle {
                chunk_bytes: 1,
                interval_ms: 1_000,
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Download)
            .always(),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let submission = imggen
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::GPTIMG),
        )
        .await
        .unwrap();
    let handle = &submission.handles[0];
    let status = imggen.wait(handle, WaitOptions::new()).await.unwrap();
    let error = tokio::time::timeout(
        30 * S,
        imggen.download(
            handle,
            &status,
            &DownloadOptions::memory().deadline(Duration::from_millis(500)),
        ),
    )
    .await
    .expect("the deadline ended the download")
    .unwrap_err();
    let Error::Download(download) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert_eq!(&download.handle, handle, "the paid task's handle is kept");
    assert!(error.to_string().contains("before the deadline"), "{error}");
}

#[tokio::test]
async fn download_retries_stop_when_their_time_is_spent_however_many_attempts_are_left() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::CutShort)
                .provider(MockProvider::Runbase)
                .operation(Operation::Download)
                .always(),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let mut retry = imggen_core::RetryConfig::standard();
    retry.read_attempts = 1_000;
    retry.read_retry_time = 20 * S;
    let imggen = builder.retry(retry).build().unwrap();
    let submission = imggen
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::RUNBASE),
        )
        .await
        .unwrap();
    let handle = &submission.handles[0];
    let status = imggen.wait(handle, WaitOptions::new()).await.unwrap();
    let started = time.now();
    let error = imggen
        .download(handle, &status, &DownloadOptions::memory())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Download(_)), "{error:?}");
    assert!(time.now() - started <= 20 * S, "{:?}", time.now() - started);
    let attempts = server
        .requests()
        .recent
        .iter()
        .filter(|record| record.path.starts_with("/files/"))
        .count();
    // 1 s, 2 s, 4 s, 8 s of backoff fit in 20 s; the next (16 s) does not.
    assert_eq!(
        attempts, 5,
        "bounded by time, not by the 1,000 attempts allowed"
    );
}

#[tokio::test]
async fn a_refunded_gptimg_500_is_retried_to_success_with_one_charge() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(45 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 500,
                body: None,
                headers: BTreeMap::new(),
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Create)
            .times(1),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let generation = imggen
        .generate(
            &GenerationRequest::new("A refunded lamp"),
            &on(crate::GPTIMG),
        )
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(counts[&crate::GPTIMG].creates(), 2);
    assert_eq!(charges(&server, MockProvider::Gptimg), 1);
}

#[tokio::test]
async fn a_webhook_is_a_hint_confirmed_by_one_status_call_and_its_duplicate_is_ignored() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    let time = SteppedTime::new(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    // A slow schedule: without the webhook the first poll would come after 10 minutes.
    let imggen = builder
        .poll_schedule(
            crate::RUNBLOB,
            imggen_core::imggen_runblob::POLL_SCHEDULE
                .every(600 * S)
                .with_jitter(0.0),
        )
        .build()
        .unwrap();
    let hub = WebhookHub::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/hooks/runblob", listener.local_addr().unwrap());
    let app = axum::Router::new().nest(
        "/hooks/runblob",
        imggen_core::webhook::server::router(
            hub.clone(),
            imggen.provider_named(crate::RUNBLOB).unwrap().clone(),
        ),
    );
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let request = GenerationRequest::new("A lamp that calls back").webhook(receiver.clone());
    let handle = imggen
        .submit(&request, &SubmitOptions::provider(crate::RUNBLOB))
        .await
        .unwrap()
        .handles
        .remove(0);
    let waiting = {
        let (imggen, handle) = (imggen.clone(), handle.clone());
        let events = hub.subscribe();
        tokio::spawn(async move {
            imggen
                .wait(&handle, WaitOptions::new().events(events))
                .await
        })
    };
    let runblob = counts[&crate::RUNBLOB].clone();

    // 30 s later the task is done and the mock calls back.
    time.advance(&server, 30 * S).await;
    let status = waiting.await.unwrap().unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert_eq!(runblob.statuses(), 1, "one confirmation, no poll");
    let deliveries = server.webhooks();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].url, receiver);
    assert_eq!(deliveries[0].attempts[0].status, Some(200));

    // A redelivery of the same event is acknowledged and ignored.
    let generation = status
        .raw
        .downcast_ref::<imggen_types::runblob::Generation>()
        .expect("a runblob object");
    let body = serde_json::to_vec(generation).unwrap();
    let answer = http()
        .post(&receiver)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        !hub.receive(
            imggen.provider_named(crate::RUNBLOB).unwrap().as_ref(),
            &body
        )
        .unwrap(),
        "a duplicate is not news"
    );
    serving.abort();
}

#[tokio::test]
async fn without_a_webhook_the_wait_falls_back_to_polling() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(70 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let hub = WebhookHub::new();
    let handle = imggen
        .submit(
            &GenerationRequest::new("A quiet lamp"),
            &SubmitOptions::provider(crate::RUNBLOB),
        )
        .await
        .unwrap()
        .handles
        .remove(0);

    let status = imggen
        .wait(&handle, WaitOptions::new().events(hub.subscribe()))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert!(counts[&crate::RUNBLOB].statuses() >= 2);
    assert!(server.webhooks().is_empty());
}

#[tokio::test]
async fn downloads_are_capped_and_a_body_that_is_not_a_png_is_refused() {
    let server = mock(MockConfig::default().profile(Profile::INSTANT)).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let capped = on(crate::GPTIMG).download(DownloadOptions::memory().max_bytes(64));
    let error = imggen
        .generate(&GenerationRequest::new("A big lamp"), &capped)
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.problem.contains("64-byte cap"), "{}", failed.problem);
    // The paid task is not lost: its images can be collected again without the cap.
    let handle = failed.handle.clone();
    let status = imggen.status(&handle).await.unwrap();
    let images = imggen
        .download(&handle, &status, &DownloadOptions::memory())
        .await
        .unwrap();
    assert_eq!(images[0].media_type, "image/png");

    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 200,
                body: Some(serde_json::json!(
                    "<html><body>Welcome to our CDN</body></html>"
                )),
                headers: BTreeMap::new(),
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Download)
            .times(1),
        )
        .unwrap();
    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp behind a portal"),
            &on(crate::GPTIMG),
        )
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.url.ends_with(".png"), "{}", failed.url);
    assert!(
        failed.problem.contains("not an image"),
        "{}",
        failed.problem
    );
    assert!(failed.problem.contains("<html>"), "{}", failed.problem);

    // A file cut in half still starts like a PNG; it must not be saved as a success.
    server
        .add_fault(
            Fault::new(FaultKind::MalformedJson)
                .provider(MockProvider::Gptimg)
                .operation(Operation::Download)
                .times(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp cut in half"),
            &on(crate::GPTIMG).download(DownloadOptions::to_dir(dir.path())),
        )
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.problem.contains("cut short"), "{}", failed.problem);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing saved"
    );
}

#[tokio::test]
async fn a_local_reference_file_is_sent_to_runblob_and_a_missing_one_sends_nothing() {
    let server = mock(MockConfig::default().profile(Profile::INSTANT)).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sketch = dir.path().join("sketch.jpg");
    // A PNG named .jpg: sent as what its bytes are.
    std::fs::write(&sketch, imggen_mock::render_png("sketch", 1, 8, 8)).unwrap();

    let generation = imggen
        .generate(
            &GenerationRequest::new("Turn the sketch into a watercolor")
                .reference(Reference::file(&sketch)),
            &on(crate::RUNBLOB),
        )
        .await
        .unwrap();
    assert_eq!(generation.images.len(), 1);

    let error = imggen
        .generate(
            &GenerationRequest::new("A missing sketch")
                .reference(Reference::file(dir.path().join("missing.png"))),
            &on(crate::RUNBLOB),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert!(error.to_string().contains("missing.png"), "{error}");
    assert_eq!(counts[&crate::RUNBLOB].creates(), 1);
    assert_eq!(charges(&server, MockProvider::Runblob), 1);
}

/// Everything the test binary traces from imggen, once a test asked for it. Global: a
/// thread-local subscriber misses callsites whose interest another test thread cached first.
fn trace_log() -> &'static Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_env_filter("imggen_core=trace,imggen_http=trace,it=trace")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .try_init()
            .expect("no other global subscriber in this test binary");
        log
    })
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_step_is_traced_with_provider_and_task_and_never_the_key() {
    use tracing::Instrument as _;
    let log = trace_log();
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let marker = format!("traced-{}", std::process::id());

    let generation = imggen
        .generate(
            &GenerationRequest::new("A traced lamp"),
            &on(crate::RUNBASE),
        )
        .instrument(tracing::info_span!("trace_test", marker = %marker))
        .await
        .unwrap();

    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = text.lines().filter(|line| line.contains(&marker)).collect();
    let task_id = &generation.handles[0].task_id;
    for span in [
        "imggen.plan{",
        "imggen.submit{",
        "imggen.create{",
        "imggen.poll{",
        "imggen.download{",
    ] {
        assert!(
            ours.iter().any(|line| line.contains(span)),
            "no {span} span in:\n{}",
            ours.join("\n")
        );
    }
    let polls: Vec<&&str> = ours
        .iter()
        .filter(|line| line.contains("imggen.poll{"))
        .collect();
    assert!(
        polls
            .iter()
            .all(|line| line.contains(&format!("task_id={task_id}")))
    );
    assert!(
        polls
            .iter()
            .any(|line| line.contains("status=\"succeeded\""))
    );
    assert!(
        ours.iter()
            .filter(|line| line.contains("imggen."))
            .all(|line| line.contains("provider=runbase")),
        "{}",
        ours.join("\n")
    );
    assert!(
        !text.contains(KEY) && !text.contains("imggen-core-e2e"),
        "a key was logged"
    );
}
