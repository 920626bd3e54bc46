//! gptimg behind imggen's unified model (feature `provider`, on by default): up to 4 images
//! per task, https reference URLs only, credits. What imggen-core needs to orchestrate gptimg
//! lives here, not in core.

use std::sync::Arc;
use std::time::Duration;

use imggen_http::{ApiClient as _, PollSchedule, RequestBudget, RetryPolicy};
use imggen_provider::capabilities::TypicalDuration;
use imggen_provider::{
    BoxFuture, Built, CallError, CallOperation, Cost, Created, DownloadLimits, Downloaded,
    ImageRef, ModelCapabilities, Plan, PlanError, PlanOptions, PlannedTask, Planner, Price,
    Provider, ProviderCapabilities, ProviderId, RawObject, ReferenceCapabilities, Registration,
    TaskState, TaskStatus,
};
use imggen_provider::{GenerationRequest, Reference};
use imggen_types::{AspectRatio, ValidationError};

use crate::{
    API_KEY_ENV, ASPECT_RATIOS, BASE_URL_ENV, CREDITS_PER_IMAGE, Client, DEFAULT_DEADLINE,
    DownloadOptions, GenerateRequest, MAX_N, MAX_REFERENCE_IMAGES, POLL_SCHEDULE, Task, TaskId,
    TaskStatus as WireStatus,
};

/// gptimg's name among providers.
pub const ID: ProviderId = ProviderId::new("gptimg");

/// gptimg's only model.
pub const MODEL: &str = "gpt-image-2";

/// gptimg: "45-second round trip", "~45–60 s".
pub const TYPICAL_DURATION: TypicalDuration = TypicalDuration {
    min: Duration::from_secs(45),
    max: Duration::from_secs(60),
};

/// What gptimg can do and cost: one model, 13 ratios, up to 4 images per task, up to 4 https
/// reference URLs, 2 credits per image, no webhooks.
pub fn capabilities() -> ProviderCapabilities {
    ProviderCapabilities {
        provider: ID,
        default_model: Some(MODEL.into()),
        models: vec![ModelCapabilities {
            model: Some(MODEL.into()),
            aspect_ratios: ASPECT_RATIOS.to_vec(),
            default_aspect_ratio: Some(AspectRatio::Square),
            max_images_per_task: u32::from(MAX_N),
            qualities: Vec::new(),
            resolutions: Vec::new(),
            background: false,
            references: ReferenceCapabilities {
                max_count: MAX_REFERENCE_IMAGES,
                https_url: true,
                http_url: false,
                data_uri: false,
                bytes: false,
                max_bytes: None,
            },
            prices: vec![Price {
                quality: None,
                resolution: None,
                per_image: Cost::credits(CREDITS_PER_IMAGE),
            }],
        }],
        other_models: false,
        webhooks: false,
        rate_limit: None,
        typical_duration: Some(TYPICAL_DURATION),
    }
}

/// How imggen-core builds gptimg from `GPTIMG_API_KEY` (and `GPTIMG_BASE_URL`).
pub fn registration() -> Registration {
    Registration {
        id: ID,
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        capabilities,
        from_env: || built(Client::from_env()),
        connect: |key, url| built(Client::builder().api_key(key).base_url(url).build()),
        set_option: imggen_provider::no_options,
    }
}

fn built(client: Result<Client, crate::Error>) -> Built {
    client
        .map(|client| Arc::new(GptimgProvider::new(client)) as Arc<dyn Provider>)
        .map_err(|error| error.to_string())
}

/// gptimg behind the unified model.
#[derive(Clone, Debug)]
pub struct GptimgProvider {
    client: Client,
}

impl GptimgProvider {
    /// Wraps a client, on the same connection pool, with its own retries and budget turned
    /// off: the orchestrator retries, and schedules every request of the key.
    pub fn new(client: Client) -> Self {
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(RequestBudget::unlimited());
        GptimgProvider {
            client: Client::from_transport(transport),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn error(operation: CallOperation, error: crate::Error) -> CallError {
    CallError::from_http(ID, operation, error)
}

/// The wire request of a task.
fn wire(task: &PlannedTask) -> Result<GenerateRequest, ValidationError> {
    let n = u8::try_from(task.images).map_err(|_| {
        ValidationError::new(
            "n",
            format!("{} is out of range; allowed: 1 to {MAX_N}", task.images),
        )
    })?;
    let mut request = GenerateRequest::new(task.prompt.clone()).n(n);
    request.aspect_ratio = task.aspect_ratio.clone();
    for (index, reference) in task.references.iter().enumerate() {
        match reference {
            Reference::Url(url) => request = request.reference_image(url.clone()),
            other => {
                return Err(ValidationError::new(
                    format!("reference_images[{index}]"),
                    format!(
                        "a {} cannot be sent to gptimg; it takes only https URLs",
                        other.form()
                    ),
                ));
            }
        }
    }
    Ok(request)
}

/// A gptimg task in the common vocabulary.
pub fn task_status(task: Task) -> TaskStatus {
    let state = match &task.status {
        WireStatus::Processing => TaskState::Running,
        WireStatus::Completed => TaskState::Succeeded {
            images: task
                .images
                .iter()
                .flatten()
                .map(|image| ImageRef::new(image.url.clone(), image.content_type.clone()))
                .collect(),
        },
        WireStatus::Failed => TaskState::Failed {
            code: imggen_provider::status::json_code(task.error.as_ref()),
            message: task.error_message(),
        },
        other => TaskState::Unknown {
            raw_status: other.to_string(),
        },
    };
    TaskStatus::new(state, RawObject::new(task))
}

/// Plans a request for gptimg (see [`Provider::plan`]).
pub fn plan(request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
    let caps = capabilities();
    let mut planner = Planner::new(&caps, request, options)?;
    let (model, model_caps) = planner.model(request.model.clone())?;
    let label = model.clone().unwrap_or_else(|| ID.to_string());
    let sizes = planner.task_sizes(model_caps, &label)?;
    let aspect_ratio = planner.aspect_ratio(model_caps, &label)?;
    let quality = planner.model_choice(
        "quality",
        request.quality.clone(),
        model_caps,
        |m| m.qualities.as_slice(),
        &label,
    )?;
    planner.references(model_caps)?;
    let webhook = planner.webhook()?;
    let mut task = PlannedTask::new(ID, request.prompt.clone());
    task.model = model;
    task.aspect_ratio = aspect_ratio;
    task.quality = quality;
    task.references = request.references.clone();
    task.webhook = webhook;
    // The client's own checks of the wire request, before anything is sent.
    wire(&task)
        .and_then(|wire| wire.validate())
        .map_err(|error| planner.wire_error(error))?;
    Ok(planner.finish(task, sizes, Some(Cost::credits(CREDITS_PER_IMAGE))))
}

impl Provider for GptimgProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn capabilities(&self) -> ProviderCapabilities {
        capabilities()
    }

    fn plan(&self, request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
        plan(request, options)
    }

    fn check_task_id(&self, task_id: &str) -> Result<(), ValidationError> {
        TaskId::new(task_id).validate()
    }

    fn poll_schedule(&self) -> PollSchedule {
        POLL_SCHEDULE
    }

    fn default_deadline(&self) -> Duration {
        DEFAULT_DEADLINE
    }

    fn key_label(&self) -> String {
        self.client.transport().key_label()
    }

    fn key_fingerprint(&self) -> String {
        self.client.transport().key_fingerprint()
    }

    fn allows_http_downloads(&self) -> bool {
        self.client.transport().download_options().allow_http
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let request = wire(task).map_err(|invalid| {
                error(
                    CallOperation::Create,
                    self.client.transport().invalid(
                        imggen_http::Operation::create("create"),
                        "/api/v1/images/generate",
                        invalid,
                    ),
                )
            })?;
            let created = self
                .client
                .create(&request)
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            Ok(Created::new(
                created.task_id.into_inner(),
                Some(Cost::credits(request.credits_required())),
                Some(created.model.unwrap_or_else(|| MODEL.to_owned())),
            ))
        })
    }

    // The closure returns what the trait does: a `CallError`, large by design (every fact of
    // a failed call), moved once.
    #[allow(clippy::result_large_err)]
    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskStatus, CallError>> {
        // The client's one boxed future, finished here: a status call allocates once.
        self.client.status_then(task_id, |result| {
            result
                .map(task_status)
                .map_err(|err| error(CallOperation::Status, err))
        })
    }

    fn download<'a>(
        &'a self,
        url: &'a str,
        limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>> {
        Box::pin(async move {
            let options = DownloadOptions {
                max_bytes: limits.max_bytes,
                max_redirects: limits.max_redirects,
                allow_http: self.allows_http_downloads(),
                stall_timeout: limits.stall_timeout,
            };
            self.client
                .download_with(url, options)
                .await
                .map_err(|err| error(CallOperation::Download, err))
        })
    }
}

#[cfg(test)]
mod tests {
    use imggen_provider::PlanOptions;

    use super::*;

    const EXACT: PlanOptions = PlanOptions {
        strictness: imggen_provider::Strictness::Exact,
        allow_extra_tasks: false,
    };
    const LENIENT: PlanOptions = PlanOptions {
        strictness: imggen_provider::Strictness::Lenient,
        allow_extra_tasks: false,
    };

    fn request() -> GenerationRequest {
        GenerationRequest::new("A lighthouse at dusk")
    }

    #[test]
    fn up_to_four_images_a_task_and_more_only_with_extra_tasks_allowed() {
        let allowed = PlanOptions {
            strictness: imggen_provider::Strictness::Exact,
            allow_extra_tasks: true,
        };
        // gptimg makes up to 4 per task: 6 images are a task of 4 and a task of 2.
        let six = plan(&request().n(6), allowed).unwrap();
        let sizes: Vec<u32> = six.tasks.iter().map(|t| t.images).collect();
        assert_eq!(sizes, [4, 2]);
        assert_eq!(six.images(), 6);
        assert_eq!(six.estimated_cost.unwrap().to_string(), "12 credits");
        assert_eq!(
            plan(&request().n(0), allowed).unwrap_err().problem,
            "must be at least 1"
        );
        let strict = plan(&request().n(5), EXACT).unwrap_err();
        assert_eq!(strict.setting, "n");
        let wide = plan(&request().aspect_ratio(AspectRatio::Landscape16x9), EXACT).unwrap();
        assert!(wide.warnings.is_empty());
        assert_eq!(wide.tasks[0].aspect_ratio, Some(AspectRatio::Landscape16x9));
    }

    #[test]
    fn only_https_references_and_at_most_four() {
        let with_file = request().reference(Reference::file("sketch.png"));
        for options in [EXACT, LENIENT] {
            let err = plan(&with_file, options).unwrap_err();
            assert_eq!(
                err.to_string(),
                "gptimg cannot serve this request: references[0] \"sketch.png\": a local file is not accepted by gptimg, which takes only https URLs; upload the image and pass its URL; nothing was sent"
            );
        }
        let http = request().reference(Reference::url("http://example.com/a.jpg"));
        assert!(plan(&http, LENIENT).is_err());
        let mut many = request();
        for i in 0..5 {
            many = many.reference(Reference::url(format!("https://example.com/{i}.jpg")));
        }
        let err = plan(&many, LENIENT).unwrap_err();
        assert_eq!(err.problem, "gptimg takes at most 4 reference images");
    }

    #[test]
    fn one_model_no_webhooks_and_a_prompt() {
        let err = plan(&request().model("dall-e-3"), EXACT).unwrap_err();
        assert_eq!(err.problem, "allowed: gpt-image-2");
        let lenient = plan(&request().model("dall-e-3"), LENIENT).unwrap();
        assert_eq!(lenient.model.as_deref(), Some("gpt-image-2"));

        let hooked = request().webhook("https://example.com/hook");
        assert!(plan(&hooked, EXACT).is_err());
        let lenient = plan(&hooked, LENIENT).unwrap();
        assert_eq!(lenient.tasks[0].webhook, None);
        assert!(lenient.warnings[0].reason.contains("polls"));

        let err = plan(&GenerationRequest::new("  "), LENIENT).unwrap_err();
        assert_eq!(err.setting, "prompt");
    }

    #[test]
    fn tasks_read_as_the_common_states() {
        let task = |json: serde_json::Value| -> Task { serde_json::from_value(json).unwrap() };
        let completed = task_status(task(serde_json::json!({
            "id": "a", "task_id": "gpt-image-2-a", "status": "completed",
            "images": [{"url": "https://cdn.example/1.png", "content_type": "image/png"}]
        })));
        assert_eq!(
            completed.state,
            TaskState::Succeeded {
                images: vec![ImageRef::new(
                    "https://cdn.example/1.png",
                    Some("image/png".into())
                )]
            }
        );
        assert_eq!(
            completed
                .raw
                .downcast_ref::<Task>()
                .map(|t| t.task_id.as_str()),
            Some("gpt-image-2-a")
        );
        let failed = task_status(task(serde_json::json!({
            "id": "a", "task_id": "gpt-image-2-a", "status": "failed",
            "error": {"code": "MODERATION", "message": "blocked"}
        })));
        assert_eq!(
            failed.state,
            TaskState::Failed {
                code: Some("MODERATION".into()),
                message: Some("MODERATION: blocked".into())
            }
        );
        let later = task_status(task(serde_json::json!({
            "id": "a", "task_id": "gpt-image-2-a", "status": "queued"
        })));
        assert_eq!(
            later.state,
            TaskState::Unknown {
                raw_status: "queued".into()
            }
        );
    }
}
