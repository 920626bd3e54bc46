//! A fake provider on injected time: tasks that finish after a set duration, scripted create
//! and status failures, a request log, and an optional rate limit that answers 429 like
//! runbase would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imggen_core::provider::{BoxFuture, Created, DownloadLimits, Downloaded};
use imggen_core::{
    CallError, CallErrorKind, CallOperation, Cost, GenerationRequest, Plan, PlanError, PlanOptions,
    PlannedTask, PollSchedule, Provider, ProviderCapabilities, ProviderId, TaskStatus,
};
use imggen_http::time::{Clock, ManualTime};
use imggen_types::runbase;

/// A 3×2 PNG: its header (all `sniff` reads) and its `IEND` chunk (what tells a whole file
/// from a cut one).
pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0x72, 0xb6, 0x0d, 0x24, 0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae,
    0x42, 0x60, 0x82,
];

#[derive(Clone, Debug)]
pub struct Fake {
    id: ProviderId,
    /// The built-in provider of the same id, for what the fake does not script: its
    /// capabilities, plan, schedule, deadline and advice.
    model: Arc<dyn Provider>,
    time: ManualTime,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    duration: Duration,
    next_id: u64,
    creates: Vec<PlannedTask>,
    create_script: VecDeque<Option<CallError>>,
    status_script: VecDeque<CallError>,
    tasks: HashMap<String, (Instant, u32)>,
    requests: Vec<(Instant, &'static str)>,
    rate_limit: Option<(usize, Duration)>,
    rate_limited: usize,
    in_flight_creates: usize,
    max_in_flight_creates: usize,
    body: Option<Vec<u8>>,
    /// The failure code every task ends with, when set.
    failure: Option<String>,
}

impl Fake {
    /// Tasks of `provider` that finish `duration` after their create.
    pub fn new(id: ProviderId, time: &ManualTime, duration: Duration) -> Self {
        let registration = imggen_core::builtin::registration(id).expect("a built-in provider");
        let model = (registration.connect)("sk-fake", "https://fake.example").unwrap();
        Fake {
            id,
            model,
            time: time.clone(),
            state: Arc::new(Mutex::new(State {
                duration,
                ..State::default()
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The next creates fail with these errors, in order.
    pub fn fail_creates(&self, errors: impl IntoIterator<Item = CallError>) {
        self.script_creates(errors.into_iter().map(Some));
    }

    /// The next creates succeed (`None`) or fail, in order.
    pub fn script_creates(&self, outcomes: impl IntoIterator<Item = Option<CallError>>) {
        self.with(|s| s.create_script.extend(outcomes));
    }

    /// The next status calls fail with these errors, in order.
    pub fn fail_statuses(&self, errors: impl IntoIterator<Item = CallError>) {
        self.with(|s| s.status_script.extend(errors));
    }

    /// Answers 429 (no Retry-After) above `requests` per `window`, creates and polls together.
    pub fn rate_limit(&self, requests: usize, window: Duration) {
        self.with(|s| s.rate_limit = Some((requests, window)));
    }

    /// Downloads return these bytes instead of a PNG.
    pub fn serve_body(&self, body: &[u8]) {
        self.with(|s| s.body = Some(body.to_vec()));
    }

    /// Every task ends in failure.
    pub fn fail_tasks(&self) {
        self.fail_tasks_with("MODERATION_FAILED");
    }

    /// Every task ends failed with `code`.
    pub fn fail_tasks_with(&self, code: &str) {
        self.with(|s| s.failure = Some(code.to_owned()));
    }

    pub fn creates(&self) -> Vec<PlannedTask> {
        self.with(|s| s.creates.clone())
    }

    /// Requests received: (time, "create" | "status").
    pub fn requests(&self) -> Vec<(Instant, &'static str)> {
        self.with(|s| s.requests.clone())
    }

    pub fn status_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|(_, kind)| *kind == "status")
            .count()
    }

    pub fn rate_limited(&self) -> usize {
        self.with(|s| s.rate_limited)
    }

    pub fn max_in_flight_creates(&self) -> usize {
        self.with(|s| s.max_in_flight_creates)
    }

    /// Logs a request; `Some(429)` when it breaks the rate limit.
    fn arrive(&self, kind: &'static str, operation: CallOperation) -> Option<CallError> {
        let now = self.time.now();
        self.with(|s| {
            if let Some((requests, window)) = s.rate_limit {
                let recent = s
                    .requests
                    .iter()
                    .filter(|(at, _)| *at + window > now)
                    .count();
                if recent >= requests {
                    s.rate_limited += 1;
                    return Some(
                        CallError::api(self.id, operation, 429, Some("RATE_LIMITED"), None)
                            .with_retryable(true),
                    );
                }
            }
            s.requests.push((now, kind));
            None
        })
    }

    fn run(&self, task_id: &str) -> Option<runbase::Run> {
        let now = self.time.now();
        self.with(|s| {
            let (created, images) = *s.tasks.get(task_id)?;
            let done = now >= created + s.duration;
            let status = match (done, &s.failure) {
                (false, _) => "processing",
                (true, None) => "succeeded",
                (true, Some(_)) => "failed",
            };
            let urls: Vec<String> = (1..=images)
                .map(|i| format!("https://cdn.fake/{task_id}/{i}.png"))
                .collect();
            let run = serde_json::json!({
                "id": task_id,
                "model": "fake",
                "status": status,
                "output": if status == "succeeded" { serde_json::json!({"urls": urls}) } else { serde_json::Value::Null },
                "error": match &s.failure {
                    Some(code) if status == "failed" => serde_json::json!({"code": code, "message": "nope"}),
                    _ => serde_json::Value::Null,
                },
            });
            serde_json::from_value(run).ok()
        })
    }
}

impl Provider for Fake {
    fn id(&self) -> ProviderId {
        self.id
    }

    fn capabilities(&self) -> ProviderCapabilities {
        self.model.capabilities()
    }

    fn plan(&self, request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
        self.model.plan(request, options)
    }

    fn set_option(
        &self,
        options: &mut serde_json::Map<String, serde_json::Value>,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        self.model.set_option(options, key, value)
    }

    fn check_task_id(&self, task_id: &str) -> Result<(), imggen_types::ValidationError> {
        self.model.check_task_id(task_id)
    }

    fn poll_schedule(&self) -> PollSchedule {
        self.model.poll_schedule()
    }

    fn default_deadline(&self) -> Duration {
        self.model.default_deadline()
    }

    fn failure_advice(&self, code: &str) -> Option<&'static str> {
        self.model.failure_advice(code)
    }

    fn rate_limit(&self) -> Option<imggen_core::RateLimit> {
        self.model.rate_limit()
    }

    fn key_label(&self) -> String {
        "fake…0000".into()
    }

    fn allows_http_downloads(&self) -> bool {
        false
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            if let Some(error) = self.arrive("create", CallOperation::Create) {
                return Err(error);
            }
            self.with(|s| {
                s.in_flight_creates += 1;
                s.max_in_flight_creates = s.max_in_flight_creates.max(s.in_flight_creates);
            });
            // Let other creates start, so the concurrency cap is what limits them.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            let now = self.time.now();
            let scripted = self.with(|s| {
                s.in_flight_creates -= 1;
                s.creates.push(task.clone());
                s.create_script.pop_front().flatten()
            });
            if let Some(error) = scripted {
                return Err(error);
            }
            let id = self.with(|s| {
                s.next_id += 1;
                let id = format!("task_{}", s.next_id);
                s.tasks.insert(id.clone(), (now, task.images));
                id
            });
            let cost = Cost::usd("0.05".parse().unwrap()).times(task.images);
            Ok(Created::new(id, cost, task.model.clone()))
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskStatus, CallError>> {
        Box::pin(async move {
            if let Some(error) = self.arrive("status", CallOperation::Status) {
                return Err(error);
            }
            tokio::task::yield_now().await;
            if let Some(error) = self.with(|s| s.status_script.pop_front()) {
                return Err(error);
            }
            match self.run(task_id) {
                Some(run) => Ok(imggen_runbase::provider::task_status(run)),
                None => Err(CallError::api(
                    self.id,
                    CallOperation::Status,
                    404,
                    Some("run_not_found"),
                    None,
                )),
            }
        })
    }

    fn download<'a>(
        &'a self,
        url: &'a str,
        _limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>> {
        Box::pin(async move {
            let body = self
                .with(|s| s.body.clone())
                .unwrap_or_else(|| PNG.to_vec());
            let url = imggen_http::reqwest::Url::parse(url).map_err(|_| {
                CallError::new(
                    self.id,
                    CallOperation::Download,
                    CallErrorKind::InvalidRequest,
                )
            })?;
            Ok(Downloaded {
                bytes: body.into(),
                url,
                content_type: Some("image/png".into()),
            })
        })
    }
}
