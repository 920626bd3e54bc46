//! runblob behind imggen's unified model (feature `provider`, on by default): one image per
//! task, references in any form (files and bytes as data URIs), USD prices per task, webhooks,
//! and a task list that settles a create whose answer was lost. What imggen-core needs to
//! orchestrate runblob lives here, not in core.

use std::sync::Arc;
use std::time::Duration;

use imggen_http::{ApiClient as _, PollSchedule, RequestBudget, RetryPolicy};
use imggen_provider::capabilities::TypicalDuration;
use imggen_provider::{
    BoxFuture, Built, CallError, CallOperation, Cost, Created, DownloadLimits, Downloaded,
    GenerationRequest, ImageRef, ModelCapabilities, Plan, PlanError, PlanOptions, PlannedTask,
    Planner, Provider, ProviderCapabilities, ProviderId, RawObject, RecentTask, Reference,
    ReferenceCapabilities, Registration, TaskState, TaskStatus,
};
use imggen_types::ValidationError;
use serde_json::{Map, Value};

use crate::{
    API_KEY_ENV, ASPECT_RATIOS, BASE_URL_ENV, Client, DEFAULT_DEADLINE, DownloadOptions,
    FailureCode, GenerateRequest, Generation, GenerationStatus, ImageSource, ListGenerationsQuery,
    MAX_IMAGE_BYTES, MAX_IMAGES, Model, POLL_SCHEDULE, Quality, TaskUuid,
};

/// runblob's name among providers.
pub const ID: ProviderId = ProviderId::new("runblob");

/// runblob: "Image generation typically takes 1-3 minutes".
pub const TYPICAL_DURATION: TypicalDuration = TypicalDuration {
    min: Duration::from_secs(60),
    max: Duration::from_secs(180),
};

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// What runblob can do: its default model and the later ones (`chatgpt-2.5` with qualities and
/// a background), the documented ratios, one image per task, up to 4 references in any form,
/// a price per task in the create's answer, webhooks.
pub fn capabilities() -> ProviderCapabilities {
    let references = ReferenceCapabilities {
        max_count: MAX_IMAGES,
        https_url: true,
        http_url: true,
        data_uri: true,
        bytes: true,
        max_bytes: Some(MAX_IMAGE_BYTES as u64),
    };
    let model = |model: Option<&Model>| {
        let later = model == Some(&Model::Chatgpt2_5);
        ModelCapabilities {
            model: model.map(ToString::to_string),
            aspect_ratios: ASPECT_RATIOS.to_vec(),
            default_aspect_ratio: None,
            max_images_per_task: 1,
            qualities: if later {
                strings(Quality::KNOWN)
            } else {
                Vec::new()
            },
            resolutions: Vec::new(),
            background: later,
            references,
            prices: Vec::new(),
        }
    };
    let mut models = vec![model(None)];
    models.extend(Model::KNOWN.iter().map(|m| model(Some(m))));
    ProviderCapabilities {
        provider: ID,
        default_model: None,
        models,
        other_models: false,
        webhooks: true,
        rate_limit: None,
        typical_duration: Some(TYPICAL_DURATION),
    }
}

/// How imggen-core builds runblob from `RUNBLOB_API_KEY` (and `RUNBLOB_BASE_URL`).
pub fn registration() -> Registration {
    Registration {
        id: ID,
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        capabilities,
        from_env: || built(Client::from_env()),
        connect: |key, url| built(Client::builder().api_key(key).base_url(url).build()),
        set_option,
    }
}

fn built(client: Result<Client, crate::Error>) -> Built {
    client
        .map(|client| Arc::new(RunblobProvider::new(client)) as Arc<dyn Provider>)
        .map_err(|error| error.to_string())
}

/// Sets one of runblob's options: `model`, `quality` or `background`, as text.
pub fn set_option(options: &mut Map<String, Value>, key: &str, value: &str) -> Result<(), String> {
    match key {
        "model" | "quality" | "background" => {
            options.insert(key.to_owned(), Value::String(value.to_owned()));
            Ok(())
        }
        _ => Err("unknown key; allowed: model, quality, background".into()),
    }
}

/// runblob behind the unified model.
#[derive(Clone, Debug)]
pub struct RunblobProvider {
    client: Client,
}

impl RunblobProvider {
    /// Wraps a client, on the same connection pool, with its own retries and budget turned
    /// off: the orchestrator retries, and schedules every request of the key.
    pub fn new(client: Client) -> Self {
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(RequestBudget::unlimited());
        RunblobProvider {
            client: Client::from_transport(transport),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn resolve(&self, references: &[Reference]) -> Result<Vec<String>, CallError> {
        if references.iter().all(|r| matches!(r, Reference::Url(_))) {
            return Ok(wire_images_without_io(references));
        }
        self.client
            .resolve_images(references.iter().map(source))
            .await
            .map_err(|err| error(CallOperation::Create, err))
    }
}

fn error(operation: CallOperation, error: crate::Error) -> CallError {
    CallError::from_http(ID, operation, error)
}

/// The references already in wire form (URLs and data URIs); files and bytes are left out.
fn wire_images_without_io(references: &[Reference]) -> Vec<String> {
    references
        .iter()
        .filter_map(|reference| match reference {
            Reference::Url(url) => Some(url.clone()),
            _ => None,
        })
        .collect()
}

/// The wire request of a task whose references are `images`.
fn wire(task: &PlannedTask, images: Vec<String>) -> GenerateRequest {
    let mut request = GenerateRequest::new(task.prompt.clone());
    request.aspect_ratio = task.aspect_ratio.clone();
    request.images = images;
    request.callback_url = task.webhook.clone();
    request.model = task.model.as_deref().map(Model::from_wire);
    request.quality = task.quality.as_deref().map(Quality::from_wire);
    request.background = task
        .settings
        .get("background")
        .and_then(Value::as_str)
        .map(str::to_owned);
    request
}

fn source(reference: &Reference) -> ImageSource {
    match reference {
        Reference::Url(url) => ImageSource::wire(url.clone()),
        Reference::File(path) => ImageSource::file(path.clone()),
        Reference::Bytes(bytes) => ImageSource::bytes(bytes.clone()),
    }
}

/// A runblob generation in the common vocabulary.
pub fn task_status(generation: Generation) -> TaskStatus {
    let state = match &generation.status {
        GenerationStatus::Pending => TaskState::Queued,
        GenerationStatus::Processing => TaskState::Running,
        GenerationStatus::Completed => TaskState::Succeeded {
            images: generation
                .result_image_url
                .iter()
                .map(|url| ImageRef::new(url.clone(), None))
                .collect(),
        },
        GenerationStatus::Failed => TaskState::Failed {
            code: generation.failure_code().map(|code| code.to_string()),
            message: generation.message.clone(),
        },
        other => TaskState::Unknown {
            raw_status: other.to_string(),
        },
    };
    TaskStatus::new(state, RawObject::new(generation))
}

/// Plans a request for runblob (see [`Provider::plan`]): the model and quality may also come
/// from runblob's own options, as may a background (`chatgpt-2.5`). runblob prices a task in
/// its create's answer, so a plan has no estimate.
pub fn plan(request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
    let caps = capabilities();
    let mut planner = Planner::new(&caps, request, options)?;
    let own = request.options.of(ID);
    let text = |key: &str| own.get(key).and_then(Value::as_str).map(str::to_owned);
    let (model, model_caps) = planner.model(text("model").or_else(|| request.model.clone()))?;
    let label = model.clone().unwrap_or_else(|| ID.to_string());
    let sizes = planner.task_sizes(model_caps, &label)?;
    let aspect_ratio = planner.aspect_ratio(model_caps, &label)?;
    let quality = planner.model_choice(
        "quality",
        text("quality").or_else(|| request.quality.clone()),
        model_caps,
        |m| m.qualities.as_slice(),
        &label,
    )?;
    let mut background = text("background");
    if let (Some(value), Some(caps)) = (&background, model_caps)
        && !caps.background
    {
        planner.unsupported(
            "background",
            &value.clone(),
            format!("{label} takes no background setting (chatgpt-2.5 does)"),
            "it is not sent",
        )?;
        background = None;
    }
    planner.references(model_caps)?;
    let webhook = planner.webhook()?;
    let mut task = PlannedTask::new(ID, request.prompt.clone());
    task.model = model;
    task.aspect_ratio = aspect_ratio;
    task.quality = quality;
    task.references = request.references.clone();
    task.webhook = webhook;
    if let Some(background) = background {
        task.settings
            .insert("background".into(), Value::String(background));
    }
    // The client's own checks of the wire request, before anything is sent: files and bytes
    // are checked when they are read.
    wire(&task, wire_images_without_io(&task.references))
        .validate()
        .map_err(|error| planner.wire_error(error))?;
    Ok(planner.finish(task, sizes, None))
}

impl Provider for RunblobProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn capabilities(&self) -> ProviderCapabilities {
        capabilities()
    }

    fn plan(&self, request: &GenerationRequest, options: PlanOptions) -> Result<Plan, PlanError> {
        plan(request, options)
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
        TaskUuid::new(task_id).validate()
    }

    fn poll_schedule(&self) -> PollSchedule {
        POLL_SCHEDULE
    }

    fn default_deadline(&self) -> Duration {
        DEFAULT_DEADLINE
    }

    fn failure_advice(&self, code: &str) -> Option<&'static str> {
        FailureCode::from_wire(code).advice()
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

    fn prepare<'a>(
        &'a self,
        references: &'a [Reference],
    ) -> BoxFuture<'a, Result<Vec<Reference>, CallError>> {
        Box::pin(async move {
            let images = self.resolve(references).await?;
            Ok(images.into_iter().map(Reference::Url).collect())
        })
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let images = self.resolve(&task.references).await?;
            let created = self
                .client
                .create(&wire(task, images))
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            Ok(Created::new(
                created.task_uuid.into_inner(),
                Some(Cost::usd(created.price)),
                task.model.clone(),
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

    fn lists_recent_tasks(&self) -> bool {
        true
    }

    /// `GET /v1/chatgpt-images/generations?limit=&offset=`: this key's tasks, newest first.
    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<RecentTask>, CallError>> {
        Box::pin(async move {
            let query = ListGenerationsQuery {
                limit: Some(limit),
                offset: Some(offset),
            };
            let generations = self
                .client
                .list(query)
                .await
                .map_err(|err| error(CallOperation::Status, err))?;
            Ok(generations
                .into_iter()
                .map(|generation| {
                    let task_id = generation.task_uuid.as_str().to_owned();
                    let prompt = generation.prompt.clone();
                    RecentTask::new(task_id, prompt, task_status(generation))
                })
                .collect())
        })
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<(String, String), String> {
        let body = crate::parse_webhook(body).map_err(|error| error.to_string())?;
        Ok((body.task_uuid.to_string(), body.status.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use imggen_types::AspectRatio;

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

    fn with_option(mut request: GenerationRequest, key: &str, value: &str) -> GenerationRequest {
        set_option(request.options.of_mut(ID), key, value).unwrap();
        request
    }

    #[test]
    fn an_unsupported_ratio_is_an_error_when_strict_and_a_warning_when_lenient() {
        let wide = request().aspect_ratio(AspectRatio::Landscape16x9);
        let err = plan(&wide, EXACT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "runblob cannot serve this request: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; nothing was sent"
        );
        let lenient = plan(&wide, LENIENT).unwrap();
        assert_eq!(lenient.tasks[0].aspect_ratio, None);
        assert_eq!(
            lenient.warnings[0].to_string(),
            "runblob: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; the model chooses the ratio"
        );
    }

    #[test]
    fn quality_and_background_come_with_chatgpt_2_5() {
        let flare = with_option(request(), "quality", "flare");
        let err = plan(&flare, EXACT).unwrap_err();
        assert_eq!(
            err.problem,
            "runblob's default model takes no quality setting; chatgpt-2.5 (flare, sunburst) takes it: ask for model chatgpt-2.5"
        );
        // No runblob model takes it: the ones that take a quality say which values they take.
        let high = request().quality("high");
        let err = plan(&high, EXACT).unwrap_err();
        assert_eq!(
            err.problem,
            "runblob's default model takes no quality setting; no runblob model takes quality \"high\"; chatgpt-2.5 (flare, sunburst) takes a quality setting"
        );
        let chatgpt = with_option(flare, "model", "chatgpt-2.5");
        let planned = plan(&chatgpt, EXACT).unwrap();
        assert_eq!(planned.model.as_deref(), Some("chatgpt-2.5"));
        assert_eq!(planned.tasks[0].quality.as_deref(), Some("flare"));
        assert_eq!(
            planned.estimated_cost, None,
            "priced by the create's answer"
        );
        let dark = with_option(request(), "background", "transparent");
        assert!(plan(&dark, EXACT).is_err());
        let lenient = plan(&dark, LENIENT).unwrap();
        assert!(lenient.tasks[0].settings.get("background").is_none());
        assert_eq!(
            set_option(&mut Map::new(), "colour", "red").unwrap_err(),
            "unknown key; allowed: model, quality, background"
        );
    }

    #[test]
    fn files_webhooks_and_prompts_are_checked_before_sending() {
        let with_file = request().reference(Reference::file("sketch.png"));
        let planned = plan(&with_file, EXACT).unwrap();
        assert_eq!(planned.tasks[0].references, [Reference::file("sketch.png")]);

        let hooked = request().webhook("https://example.com/hook");
        let planned = plan(&hooked, EXACT).unwrap();
        assert_eq!(
            planned.tasks[0].webhook.as_deref(),
            Some("https://example.com/hook")
        );
        let insecure = request().webhook("http://example.com/hook");
        let err = plan(&insecure, LENIENT).unwrap_err();
        assert_eq!(err.setting, "callback_url");

        let long = GenerationRequest::new("a".repeat(4001));
        let err = plan(&long, LENIENT).unwrap_err();
        assert_eq!(err.problem, "is 4001 characters long; the maximum is 4000");
    }

    #[test]
    fn generations_read_as_the_common_states() {
        let generation = |json: Value| -> Generation { serde_json::from_value(json).unwrap() };
        let status = task_status(generation(serde_json::json!({
            "task_uuid": "t1", "status": "completed", "prompt": "p",
            "result_image_url": "https://cdn.example/a.png", "message": null
        })));
        assert_eq!(
            status.state,
            TaskState::Succeeded {
                images: vec![ImageRef::new("https://cdn.example/a.png", None)]
            }
        );
        let failed = task_status(generation(serde_json::json!({
            "task_uuid": "t1", "status": "failed", "message": "OPENAI_DECLINED"
        })));
        assert_eq!(
            failed.state,
            TaskState::Failed {
                code: Some("OPENAI_DECLINED".into()),
                message: Some("OPENAI_DECLINED".into())
            }
        );
        let provider = RunblobProvider::new(Client::builder().api_key("sk-x").build().unwrap());
        assert!(
            provider
                .failure_advice("OPENAI_DECLINED")
                .is_some_and(|advice| advice.contains("rephrase"))
        );
        let (task, status) = provider
            .parse_webhook(br#"{"task_uuid":"t1","status":"completed"}"#)
            .unwrap();
        assert_eq!((task.as_str(), status.as_str()), ("t1", "completed"));
    }
}
