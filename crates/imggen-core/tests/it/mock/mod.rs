//! End to end against imggen-mock: the real clients, the real wire, the mock's money ledger,
//! its rate limits, faults and webhooks — on the mock's manual clock, so nothing waits in
//! real time.

mod end_to_end;
mod faults;

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
