//! A fourth provider, defined entirely in this file, driven through everything imggen-core
//! does: plan, submit, wait, resume, download, reconcile and a batch. It proves that core
//! orchestrates any provider — nothing here is registered anywhere else, and core names no
//! provider.
//!
//! "Pixelforge" is an in-memory API on injected time: tasks finish 20 s after their create,
//! up to 2 images a task, two ratios, a `style` option of its own, `pf_` task ids, a failure
//! code with advice, and a list of the key's recent tasks.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::batch::{self, BatchOptions, BatchRunner, RequestDefaults, ResultStatus};
use imggen_core::capabilities::{ModelCapabilities, Price, ReferenceCapabilities};
use imggen_core::provider::{BoxFuture, Created, DownloadLimits, Downloaded};
use imggen_core::{
    CallError, CallOperation, Cost, DownloadOptions, Error, GenerateOptions, GenerationRequest,
    ImageData, ImageRef, Imggen, Plan, PlanError, PlanOptions, PlannedTask, PollSchedule, Provider,
    ProviderCapabilities, ProviderId, RawObject, RecentTask, Strictness, SubmitOptions, TaskHandle,
    TaskState, TaskStatus, WaitOptions,
};
use imggen_http::time::{Clock, ManualTime};
use imggen_provider::Planner;
use imggen_types::{AspectRatio, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::fake::PNG;

const PIXELFORGE: ProviderId = ProviderId::new("pixelforge");
const S: Duration = Duration::from_secs(1);
const TASK_TIME: Duration = Duration::from_secs(20);
/// Pixelforge's documented schedule: first look after 15 s, then every 4 s.
const SCHEDULE: PollSchedule = PollSchedule::new(
    Duration::from_secs(15),
    Duration::from_secs(4),
    Duration::from_secs(120),
    Duration::from_secs(30),
);
const STYLES: [&str; 2] = ["ink", "oil"];

/// A task as Pixelforge's API answers it: its own shape, which core never reads but keeps.
#[derive(Clone, Debug, Serialize)]
struct PixelTask {
    id: String,
    phase: &'static str,
    prompt: String,
    style: Option<String>,
    images: Vec<String>,
    error: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Ledger {
    tasks: Vec<(PixelTask, Instant)>,
    creates: usize,
    statuses: usize,
    downloads: usize,
}

#[derive(Clone, Debug)]
struct Pixelforge {
    time: ManualTime,
    ledger: Arc<Mutex<Ledger>>,
}

impl Pixelforge {
    fn new(time: &ManualTime) -> Self {
        Pixelforge {
            time: time.clone(),
            ledger: Arc::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.ledger.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn task(&self, id: &str) -> Option<PixelTask> {
        let now = self.time.now();
        self.with(|ledger| {
            let (task, created) = ledger.tasks.iter().find(|(task, _)| task.id == id)?;
            let mut task = task.clone();
            if now.duration_since(*created) < TASK_TIME {
                task.images.clear();
            } else if task.prompt.contains("forbidden") {
                task.phase = "rejected";
                task.images.clear();
                task.error = Some("CONTENT_POLICY");
            } else {
                task.phase = "ready";
            }
            Some(task)
        })
    }
}

fn capabilities() -> ProviderCapabilities {
    ProviderCapabilities {
        provider: PIXELFORGE,
        default_model: Some("forge-1".into()),
        models: vec![ModelCapabilities {
            model: Some("forge-1".into()),
            aspect_ratios: vec![AspectRatio::Square, AspectRatio::Landscape16x9],
            default_aspect_ratio: Some(AspectRatio::Square),
            max_images_per_task: 2,
            qualities: Vec::new(),
            resolutions: Vec::new(),
            background: false,
            references: ReferenceCapabilities {
                max_count: 1,
                https_url: true,
                http_url: false,
                data_uri: false,
                bytes: false,
                max_bytes: None,
            },
            prices: vec![Price {
                quality: None,
                resolution: None,
                per_image: Cost::usd("0.03".parse().unwrap()),
            }],
        }],
        other_models: false,
        webhooks: false,
        rate_limit: None,
        typical_duration: None,
    }
}

/// How Pixelforge reads its one option, `style`, from text.
fn set_option(options: &mut Map<String, Value>, key: &str, value: &str) -> Result<(), String> {
    match key {
        "style" if STYLES.contains(&value) => {
            options.insert("style".into(), Value::String(value.into()));
            Ok(())
        }
        "style" => Err(format!("allowed: {}", STYLES.join(", "))),
        _ => Err("unknown key; allowed: style".into()),
    }
}

fn pixel_error(operation: CallOperation, status: u16, code: &str) -> CallError {
    CallError::api(PIXELFORGE, operation, status, Some(code), None)
}

impl Provider for Pixelforge {
    fn id(&self) -> ProviderId {
        PIXELFORGE
    }

    fn capabilities(&self) -> ProviderCapabilities {
        capabilities()
    }

    fn plan(&self, request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
        let caps = capabilities();
        let mut planner = Planner::new(&caps, request, options)?;
        let (model, model_caps) = planner.model(request.model.clone())?;
        let sizes = planner.task_sizes(model_caps, "forge-1")?;
        let aspect_ratio = planner.aspect_ratio(model_caps, "forge-1")?;
        planner.references(model_caps)?;
        let webhook = planner.webhook()?;
        let mut task = PlannedTask::new(PIXELFORGE, request.prompt.clone());
        task.model = model;
        task.aspect_ratio = aspect_ratio;
        task.webhook = webhook;
        task.settings = request.options.of(PIXELFORGE).clone();
        let per_image = Cost::usd("0.03".parse().unwrap());
        Ok(planner.finish(task, sizes, Some(per_image)))
    }

    fn set_option(
        &self,
        options: &mut Map<String, Value>,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        set_option(options, key, value)
    }

    fn check_task_id(&self, task_id: &str) -> Result<(), ValidationError> {
        if task_id.starts_with("pf_") && task_id[3..].chars().all(|c| c.is_ascii_digit()) {
            Ok(())
        } else {
            Err(ValidationError::new(
                "task_id",
                format!("{task_id:?} is not a Pixelforge id (pf_ and digits)"),
            ))
        }
    }

    fn poll_schedule(&self) -> PollSchedule {
        SCHEDULE
    }

    fn default_deadline(&self) -> Duration {
        5 * 60 * S
    }

    fn failure_advice(&self, code: &str) -> Option<&'static str> {
        (code == "CONTENT_POLICY").then_some("rephrase the prompt; Pixelforge refunds the task")
    }

    fn key_label(&self) -> String {
        "pf…test".into()
    }

    fn allows_http_downloads(&self) -> bool {
        false
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let now = self.time.now();
            let style = task
                .settings
                .get("style")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let id = self.with(|ledger| {
                ledger.creates += 1;
                let id = format!("pf_{}", ledger.tasks.len() + 1);
                let images = (1..=task.images)
                    .map(|i| format!("https://cdn.pixelforge.test/{id}-{i}.png"))
                    .collect();
                let created = PixelTask {
                    id: id.clone(),
                    phase: "rendering",
                    prompt: task.prompt.clone(),
                    style,
                    images,
                    error: None,
                };
                ledger.tasks.push((created, now));
                id
            });
            let cost = Cost::usd("0.03".parse().unwrap()).times(task.images);
            Ok(Created::new(id, cost, task.model.clone()))
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskStatus, CallError>> {
        Box::pin(async move {
            self.with(|ledger| ledger.statuses += 1);
            let task = self
                .task(task_id)
                .ok_or_else(|| pixel_error(CallOperation::Status, 404, "NO_SUCH_TASK"))?;
            Ok(task_status(task))
        })
    }

    fn download<'a>(
        &'a self,
        url: &'a str,
        _limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>> {
        Box::pin(async move {
            self.with(|ledger| ledger.downloads += 1);
            let url = imggen_http::reqwest::Url::parse(url)
                .map_err(|_| pixel_error(CallOperation::Download, 404, "NO_SUCH_FILE"))?;
            Ok(Downloaded {
                bytes: PNG.to_vec().into(),
                url,
                content_type: Some("image/png".into()),
            })
        })
    }

    fn lists_recent_tasks(&self) -> bool {
        true
    }

    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<RecentTask>, CallError>> {
        let ids: Vec<String> = self.with(|ledger| {
            ledger
                .tasks
                .iter()
                .rev()
                .skip(offset as usize)
                .take(limit as usize)
                .map(|(task, _)| task.id.clone())
                .collect()
        });
        let page = ids
            .iter()
            .filter_map(|id| self.task(id))
            .map(|task| {
                RecentTask::new(
                    task.id.clone(),
                    Some(task.prompt.clone()),
                    task_status(task),
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(page)))
    }
}

/// A Pixelforge task in the common vocabulary.
fn task_status(task: PixelTask) -> TaskStatus {
    let state = match task.phase {
        "rendering" => TaskState::Running,
        "ready" => TaskState::Succeeded {
            images: task
                .images
                .iter()
                .map(|url| ImageRef::new(url.clone(), Some("image/png".into())))
                .collect(),
        },
        "rejected" => TaskState::Failed {
            code: task.error.map(str::to_owned),
            message: Some("the prompt breaks the content policy".into()),
        },
        other => TaskState::Unknown {
            raw_status: other.to_owned(),
        },
    };
    TaskStatus::new(state, RawObject::new(task))
}

fn imggen(time: &ManualTime, forge: &Pixelforge) -> Imggen {
    Imggen::builder()
        .provider(forge.clone())
        .poll_schedule(PIXELFORGE, SCHEDULE.with_jitter(0.0))
        .strictness(Strictness::Exact)
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time.clone()))
        .build()
        .unwrap()
}

#[test]
fn plans_follow_the_fourth_providers_own_capabilities_and_options() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let imggen = imggen(&time, &forge);

    // Three images are two tasks for a provider that makes two a task: refused unless allowed.
    let three = GenerationRequest::new("A forge at night").n(3);
    let refused = imggen.plan(&three, PIXELFORGE).unwrap_err();
    assert!(matches!(refused, Error::Plan(_)), "{refused:?}");
    let allowed = forge
        .plan(
            &three,
            PlanOptions::new(Strictness::Exact).allow_extra_tasks(true),
        )
        .unwrap();
    let sizes: Vec<u32> = allowed.tasks.iter().map(|task| task.images).collect();
    assert_eq!(sizes, [2, 1]);
    assert_eq!(allowed.estimated_cost.unwrap().to_string(), "$0.09");

    // A ratio it does not make: refused when exact, dropped with a warning when lenient.
    let tall = GenerationRequest::new("A forge").aspect_ratio(AspectRatio::Portrait9x16);
    assert!(imggen.plan(&tall, PIXELFORGE).is_err());
    let lenient = forge
        .plan(&tall, PlanOptions::new(Strictness::Lenient))
        .unwrap();
    assert_eq!(lenient.tasks[0].aspect_ratio, None);
    assert_eq!(lenient.warnings[0].setting, "aspect_ratio");

    // Its own option, read as it reads it.
    let mut inked = GenerationRequest::new("A forge");
    imggen
        .set_option(&mut inked, PIXELFORGE, "style", "ink")
        .unwrap();
    let plan = imggen.plan(&inked, PIXELFORGE).unwrap();
    assert_eq!(plan.tasks[0].settings["style"], "ink");
    let error = imggen
        .set_option(&mut inked, PIXELFORGE, "style", "neon")
        .unwrap_err();
    assert!(error.to_string().contains("allowed: ink, oil"), "{error}");
    assert_eq!(imggen.capabilities(), [capabilities()]);
}

#[tokio::test]
async fn generate_submits_waits_on_its_schedule_and_downloads() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let imggen = imggen(&time, &forge);
    let dir = tempfile::tempdir().unwrap();
    let mut request = GenerationRequest::new("A forge at night").n(2);
    imggen
        .set_option(&mut request, PIXELFORGE, "style", "oil")
        .unwrap();

    let generation = imggen
        .generate(
            &request,
            &GenerateOptions::default().download(DownloadOptions::to_dir(dir.path())),
        )
        .await
        .unwrap();

    assert_eq!(generation.provider(), PIXELFORGE);
    assert_eq!(generation.cost.to_string(), "$0.06");
    assert_eq!(generation.images.len(), 2);
    for image in &generation.images {
        let ImageData::File(path) = &image.data else {
            panic!("written to a file: {image:?}")
        };
        assert_eq!(std::fs::read(path).unwrap(), PNG);
    }
    // Its own schedule: a first look at 15 s and another at 19 s (still rendering), then
    // 23 s (ready at 20 s) — three status calls, no more.
    assert_eq!(forge.with(|ledger| ledger.statuses), 3);
    assert_eq!(forge.with(|ledger| ledger.creates), 1);
    // Its raw answer travels with the status, in its own shape.
    let raw = imggen
        .status(&generation.handles[0])
        .await
        .unwrap()
        .raw
        .downcast_ref::<PixelTask>()
        .cloned()
        .unwrap();
    assert_eq!(raw.style.as_deref(), Some("oil"));
}

#[tokio::test]
async fn a_handle_resumes_in_another_imggen_and_a_foreign_id_is_refused_unsent() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let first = imggen(&time, &forge);
    let submission = first
        .submit(
            &GenerationRequest::new("A forge"),
            &SubmitOptions::provider(PIXELFORGE),
        )
        .await
        .unwrap();
    let receipt = submission.handles[0].to_string();
    assert_eq!(receipt, "pixelforge:pf_1");

    // Later, elsewhere: the short form alone resumes it.
    let second = imggen(&time, &forge);
    let handle: TaskHandle = receipt.parse().unwrap();
    let generation = second
        .resume(&[handle], &GenerateOptions::default())
        .await
        .unwrap();
    assert_eq!(generation.images.len(), 1);

    // An id that is not Pixelforge's is refused by its own check, before any request.
    let statuses = forge.with(|ledger| ledger.statuses);
    let foreign: TaskHandle = "pixelforge:run_abc".parse().unwrap();
    let error = second.wait(&foreign, WaitOptions::new()).await.unwrap_err();
    assert!(error.to_string().contains("not a Pixelforge id"), "{error}");
    assert_eq!(forge.with(|ledger| ledger.statuses), statuses);
}

#[tokio::test]
async fn a_failed_task_carries_the_providers_advice() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let imggen = imggen(&time, &forge);
    let error = imggen
        .generate(
            &GenerationRequest::new("something forbidden"),
            &GenerateOptions::default(),
        )
        .await
        .unwrap_err();
    let Error::TaskFailed(failed) = &error else {
        panic!("a failed task: {error:?}")
    };
    assert_eq!(failed.code.as_deref(), Some("CONTENT_POLICY"));
    assert_eq!(
        error.advice(),
        Some("rephrase the prompt; Pixelforge refunds the task")
    );
}

#[tokio::test]
async fn a_batch_runs_through_it_and_resumes_without_paying_twice() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let imggen = imggen(&time, &forge);
    let dir = tempfile::tempdir().unwrap();
    // A batch file may name the provider and its options: it is known to the reader here.
    let defaults = RequestDefaults::new().option_reader_for(PIXELFORGE, set_option);
    let text = [
        r#"{"id": "a", "prompt": "A forge", "provider": "pixelforge", "options": {"style": "ink"}}"#,
        r#"{"id": "b", "prompt": "An anvil", "provider": "pixelforge", "n": 2}"#,
        r#"{"id": "c", "prompt": "A hammer", "provider": "pixelforge", "options": {"style": "neon"}}"#,
    ]
    .join("\n");
    let input = batch::input::parse(&text, &defaults);
    assert_eq!(input.invalid.len(), 1);
    assert!(
        input.invalid[0]
            .to_string()
            .contains("pixelforge option \"style\": allowed: ink, oil"),
        "{}",
        input.invalid[0]
    );
    let options = BatchOptions::new(dir.path()).skip_invalid(true);

    let report = BatchRunner::new(imggen.clone(), options.clone())
        .run(input.clone())
        .await
        .unwrap();

    assert_eq!(report.count(ResultStatus::Done), 2);
    assert_eq!(report.cost().to_string(), "$0.09");
    assert_eq!(forge.with(|ledger| ledger.creates), 2);
    let first = forge.with(|ledger| ledger.tasks[0].0.clone());
    assert_eq!(first.style.as_deref(), Some("ink"));

    // The same batch again: everything is done, nothing is created or paid for again.
    let again = BatchRunner::new(imggen, options).run(input).await.unwrap();
    assert_eq!(again.count(ResultStatus::Done), 2);
    assert_eq!(forge.with(|ledger| ledger.creates), 2);
}

#[tokio::test]
async fn a_lost_create_is_found_in_its_task_list() {
    let time = ManualTime::new();
    let forge = Pixelforge::new(&time);
    let imggen = imggen(&time, &forge);
    // A create whose answer was lost: the task exists, the caller never heard of it.
    let task = PlannedTask::new(PIXELFORGE, "A lost forge");
    forge.create(&task).await.unwrap();
    let search = imggen_core::LostTaskSearch::new(PIXELFORGE, "A lost forge", 1);
    let lost = imggen
        .find_lost_tasks(&search)
        .await
        .unwrap()
        .expect("Pixelforge lists its tasks");
    assert!(lost.conclusive);
    let found: Vec<&str> = lost.found.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(found, ["pf_1"]);
}
