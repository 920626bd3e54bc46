//! runbase behind imggen's unified model (feature `provider`, on by default): several models
//! through one runs API, one image per run, micro-USD costs, and 20 requests per 10 s per key,
//! which the orchestrator's scheduler keeps. What imggen-core needs to orchestrate runbase lives
//! here, not in core.

use std::sync::Arc;
use std::time::Duration;

use imggen_http::{ApiClient as _, PollSchedule, RequestBudget, RetryPolicy};
use imggen_provider::{
    BoxFuture, Built, CallError, CallOperation, Cost, Created, DownloadLimits, Downloaded,
    GenerationRequest, ImageRef, ModelCapabilities, Plan, PlanError, PlanOptions, PlannedTask,
    Planner, Price, Provider, ProviderCapabilities, ProviderId, RateLimit, RawObject, Reference,
    ReferenceCapabilities, Registration, TaskState, TaskStatus,
};
use imggen_types::ValidationError;
use serde_json::{Map, Value};

use crate::{
    API_KEY_ENV, BASE_URL_ENV, Client, CreateRunRequest, DEFAULT_DEADLINE, DownloadOptions, MODELS,
    Model, ModelSpec, POLL_SCHEDULE, Quality, RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW, Resolution,
    Run, RunId, RunStatus,
};

/// runbase's name among providers.
pub const ID: ProviderId = ProviderId::new("runbase");

/// The model used when a request names none: `openai/gpt-image-2` has the most ratios and
/// resolutions of runbase's documented models.
pub const DEFAULT_MODEL: &str = "openai/gpt-image-2";

/// The input fields a common setting fills: an extra `input.<field>` may not repeat them.
const COMMON_INPUT: [(&str, &str); 5] = [
    ("prompt", "the prompt"),
    ("aspect_ratio", "the aspect ratio"),
    ("quality", "the quality"),
    ("resolution", "the resolution option"),
    ("image_urls", "references"),
];

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// What runbase can do and cost: its three documented OpenAI models (the default first), any
/// other model sent unchecked, one image per run, http(s) reference URLs, 20 requests per 10 s
/// per key, no webhooks.
pub fn capabilities() -> ProviderCapabilities {
    let model = |spec: &ModelSpec| {
        let qualities: Vec<Option<&Quality>> = if spec.qualities.is_empty() {
            vec![None]
        } else {
            spec.qualities.iter().map(Some).collect()
        };
        let resolutions: Vec<Option<&Resolution>> = if spec.resolutions.is_empty() {
            vec![None]
        } else {
            spec.resolutions.iter().map(Some).collect()
        };
        let mut prices = Vec::new();
        for quality in &qualities {
            for resolution in &resolutions {
                if let Some(price) = spec.price(*quality, *resolution) {
                    prices.push(Price {
                        quality: quality.map(ToString::to_string),
                        resolution: resolution.map(ToString::to_string),
                        per_image: Cost::micro_usd(price),
                    });
                }
            }
        }
        ModelCapabilities {
            model: Some(spec.model.to_string()),
            aspect_ratios: spec.aspect_ratios.to_vec(),
            default_aspect_ratio: spec.aspect_ratios.first().cloned(),
            max_images_per_task: 1,
            qualities: strings(spec.qualities),
            resolutions: strings(spec.resolutions),
            background: false,
            references: ReferenceCapabilities {
                max_count: spec.max_reference_images,
                https_url: true,
                http_url: true,
                data_uri: false,
                bytes: false,
                max_bytes: spec.max_reference_image_bytes,
            },
            prices,
        }
    };
    // Default model first, then the others in documentation order.
    let mut specs: Vec<&ModelSpec> = MODELS.iter().collect();
    specs.sort_by_key(|spec| spec.model.as_str() != DEFAULT_MODEL);
    ProviderCapabilities {
        provider: ID,
        default_model: Some(DEFAULT_MODEL.into()),
        models: specs.into_iter().map(model).collect(),
        other_models: true,
        webhooks: false,
        rate_limit: Some(RateLimit::new(RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW)),
        typical_duration: None,
    }
}

/// How imggen-core builds runbase from `RUNBASE_API_KEY` (and `RUNBASE_BASE_URL`).
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
        .map(|client| Arc::new(RunbaseProvider::new(client)) as Arc<dyn Provider>)
        .map_err(|error| error.to_string())
}

/// Sets one of runbase's options: `resolution`, or `input.<field>` (any extra input field,
/// its value read as JSON when it is JSON, else as text).
pub fn set_option(options: &mut Map<String, Value>, key: &str, value: &str) -> Result<(), String> {
    match key {
        "resolution" => {
            options.insert("resolution".into(), Value::String(value.to_owned()));
        }
        field if field.starts_with("input.") => {
            let name = &field["input.".len()..];
            if name.is_empty() {
                return Err("name the input field: input.<field>=<value>".into());
            }
            let parsed =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            let input = options
                .entry("input")
                .or_insert_with(|| Value::Object(Map::new()));
            if !input.is_object() {
                *input = Value::Object(Map::new());
            }
            if let Value::Object(input) = input {
                input.insert(name.to_owned(), parsed);
            }
        }
        _ => {
            return Err(
                "unknown key; allowed: resolution, input.<field> (any extra input field)".into(),
            );
        }
    }
    Ok(())
}

/// runbase behind the unified model.
#[derive(Clone, Debug)]
pub struct RunbaseProvider {
    client: Client,
}

impl RunbaseProvider {
    /// Wraps a client, on the same connection pool, with its own retries and budget turned
    /// off: the orchestrator retries, and keeps every request of the key inside the budget.
    pub fn new(client: Client) -> Self {
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(RequestBudget::unlimited());
        RunbaseProvider {
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

/// The wire request of a task: `{"model", "input": {prompt, aspect_ratio?, quality?,
/// resolution?, image_urls?, …extra}}`.
fn wire(task: &PlannedTask) -> CreateRunRequest {
    let model = Model::from_wire(task.model.as_deref().unwrap_or(DEFAULT_MODEL));
    let mut input = Map::new();
    input.insert("prompt".into(), Value::String(task.prompt.clone()));
    if let Some(ratio) = &task.aspect_ratio {
        input.insert("aspect_ratio".into(), Value::String(ratio.to_string()));
    }
    if let Some(quality) = &task.quality {
        input.insert("quality".into(), Value::String(quality.clone()));
    }
    if let Some(resolution) = task.settings.get("resolution") {
        input.insert("resolution".into(), resolution.clone());
    }
    let urls: Vec<Value> = task
        .references
        .iter()
        .filter_map(|reference| match reference {
            Reference::Url(url) => Some(Value::String(url.clone())),
            _ => None,
        })
        .collect();
    if !urls.is_empty() {
        input.insert("image_urls".into(), Value::Array(urls));
    }
    if let Some(Value::Object(extra)) = task.settings.get("input") {
        for (key, value) in extra {
            input.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    CreateRunRequest::new(model, Value::Object(input))
}

/// A run in the common vocabulary.
pub fn task_status(run: Run) -> TaskStatus {
    let state = match &run.status {
        RunStatus::Pending => TaskState::Queued,
        RunStatus::Processing => TaskState::Running,
        RunStatus::Succeeded => TaskState::Succeeded {
            images: run
                .output_urls()
                .iter()
                .map(|url| ImageRef::new(url.clone(), None))
                .collect(),
        },
        RunStatus::Failed => TaskState::Failed {
            code: imggen_provider::status::json_code(run.error.as_ref()),
            message: run.error_message(),
        },
        other => TaskState::Unknown {
            raw_status: other.to_string(),
        },
    };
    TaskStatus::new(state, RawObject::new(run))
}

/// Plans a request for runbase (see [`Provider::plan`]).
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
    let own = request.options.of(ID);
    let resolution = planner.model_choice(
        "resolution",
        own.get("resolution")
            .and_then(Value::as_str)
            .map(str::to_owned),
        model_caps,
        |m| m.resolutions.as_slice(),
        &label,
    )?;
    planner.references(model_caps)?;
    let webhook = planner.webhook()?;
    let mut extra = Map::new();
    if let Some(Value::Object(input)) = own.get("input") {
        for (key, value) in input {
            if let Some((_, common)) = COMMON_INPUT.iter().find(|(name, _)| name == key) {
                return Err(planner.error(
                    &format!("input.{key}"),
                    &value.to_string(),
                    format!("set {common} with the common setting, not as an extra input field"),
                ));
            }
            extra.insert(key.clone(), value.clone());
        }
    }
    let mut task = PlannedTask::new(ID, request.prompt.clone());
    task.model = model;
    task.aspect_ratio = aspect_ratio;
    task.quality = quality;
    task.references = request.references.clone();
    task.webhook = webhook;
    if let Some(resolution) = resolution {
        task.settings
            .insert("resolution".into(), Value::String(resolution));
    }
    if !extra.is_empty() {
        task.settings.insert("input".into(), Value::Object(extra));
    }
    // The client's own checks of the wire request, before anything is sent.
    wire(&task)
        .validate()
        .map_err(|error| planner.wire_error(error))?;
    let per_image = model_caps.and_then(|_| price_per_image(&task));
    Ok(planner.finish(task, sizes, per_image))
}

/// The documented price of one image, for a model imggen knows.
fn price_per_image(task: &PlannedTask) -> Option<Cost> {
    let model = Model::from_wire(task.model.as_deref()?);
    let spec = ModelSpec::of(&model)?;
    let quality = task.quality.as_deref().map(Quality::from_wire);
    let resolution = task
        .settings
        .get("resolution")
        .and_then(Value::as_str)
        .map(Resolution::from_wire);
    Some(Cost::micro_usd(
        spec.price(quality.as_ref(), resolution.as_ref())?,
    ))
}

impl Provider for RunbaseProvider {
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
        RunId::new(task_id).validate()
    }

    fn poll_schedule(&self) -> PollSchedule {
        POLL_SCHEDULE
    }

    fn default_deadline(&self) -> Duration {
        DEFAULT_DEADLINE
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit::new(RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW))
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
            let request = wire(task);
            let run = self
                .client
                .create_raw(&request)
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            // What the run says it cost; the documented price when the answer has none.
            let cost = run
                .cost_usd
                .or_else(|| request.price())
                .map(Cost::micro_usd);
            Ok(Created::new(
                run.id.into_inner(),
                cost,
                Some(run.model.to_string()),
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
    use imggen_provider::ProviderOptions;
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
        let mut options = request.options.of(ID).clone();
        set_option(&mut options, key, value).unwrap();
        *request.options.of_mut(ID) = options;
        request
    }

    #[test]
    fn ratios_follow_the_model_and_n_above_one_needs_extra_tasks() {
        let wide = request().aspect_ratio(AspectRatio::Landscape16x9);
        let v1 = wide.clone().model("openai/gpt-image-1");
        let err = plan(&v1, EXACT).unwrap_err();
        assert_eq!(err.problem, "openai/gpt-image-1 accepts 1:1, 3:2, 2:3");
        plan(&wide, EXACT).unwrap();

        let three = request().n(3);
        let err = plan(&three, EXACT).unwrap_err();
        assert_eq!(err.setting, "n");
        assert!(
            err.problem.contains("3 images need 3 tasks, each charged"),
            "{err}"
        );
        let lenient = plan(&three, LENIENT).unwrap();
        assert_eq!(lenient.tasks.len(), 1);
        assert_eq!(lenient.warnings[0].setting, "n");
        let allowed = PlanOptions {
            strictness: imggen_provider::Strictness::Exact,
            allow_extra_tasks: true,
        };
        let split = plan(&three, allowed).unwrap();
        assert_eq!(split.tasks.len(), 3);
        assert_eq!(split.estimated_cost.unwrap().to_string(), "$0.15");
    }

    #[test]
    fn quality_resolution_references_and_unknown_models() {
        let high = request().quality("high");
        let err = plan(&high, EXACT).unwrap_err();
        assert_eq!(
            err.problem,
            "openai/gpt-image-2 takes no quality setting; openai/gpt-image-1.5 (medium, high) takes it: ask for model openai/gpt-image-1.5"
        );
        assert_eq!(
            err.to_string(),
            "runbase cannot serve this request: quality \"high\": openai/gpt-image-2 takes no quality setting; openai/gpt-image-1.5 (medium, high) takes it: ask for model openai/gpt-image-1.5; nothing was sent"
        );
        let low = request().model("openai/gpt-image-1.5").quality("low");
        assert_eq!(
            plan(&low, EXACT).unwrap_err().problem,
            "openai/gpt-image-1.5 accepts medium, high",
            "no other model takes a quality"
        );
        let sharp_v15 = with_option(request().model("openai/gpt-image-1.5"), "resolution", "2K");
        assert_eq!(
            plan(&sharp_v15, EXACT).unwrap_err().problem,
            "openai/gpt-image-1.5 takes no resolution setting; openai/gpt-image-2 (1K, 2K, 4K) takes it: ask for model openai/gpt-image-2"
        );
        let ok = plan(&high.clone().model("openai/gpt-image-1.5"), EXACT).unwrap();
        assert_eq!(ok.tasks[0].quality.as_deref(), Some("high"));
        assert_eq!(ok.estimated_cost.unwrap().to_string(), "$0.16");

        let sharp = with_option(request(), "resolution", "4K");
        let plan4k = plan(&sharp, EXACT).unwrap();
        assert_eq!(plan4k.estimated_cost.unwrap().to_string(), "$0.12");

        let unknown = request().model("google/nano-banana-2").quality("ultra");
        let raw = plan(&unknown, EXACT).unwrap();
        assert_eq!(raw.tasks[0].quality.as_deref(), Some("ultra"));
        assert_eq!(raw.warnings[0].setting, "model");
        assert_eq!(raw.estimated_cost, None);
        // Strict: nothing goes unchecked, so the unknown model is refused, not sent.
        let refused = plan(
            &unknown,
            PlanOptions::new(imggen_provider::Strictness::Strict),
        )
        .unwrap_err();
        assert_eq!(refused.setting, "model");
        assert!(
            refused
                .problem
                .ends_with("refused because planning is strict"),
            "{refused}"
        );

        let with_file = request().reference(Reference::file("sketch.png"));
        assert!(plan(&with_file, LENIENT).is_err());
        let http = request().reference(Reference::url("http://example.com/a.jpg"));
        plan(&http, EXACT).unwrap();
        let mut many = request();
        for i in 0..5 {
            many = many.reference(Reference::url(format!("https://example.com/{i}.jpg")));
        }
        plan(&many.model("openai/gpt-image-1"), EXACT).unwrap();
    }

    #[test]
    fn extra_input_fields_go_through_but_never_repeat_a_common_setting() {
        let extra = with_option(request(), "input.seed", "7");
        let planned = plan(&extra, EXACT).unwrap();
        assert_eq!(planned.tasks[0].settings["input"]["seed"], 7);
        let sent = wire(&planned.tasks[0]);
        assert_eq!(sent.input["seed"], 7);
        let twice = with_option(extra, "input.prompt", "other");
        let err = plan(&twice, LENIENT).unwrap_err();
        assert_eq!(err.setting, "input.prompt");
    }

    #[test]
    fn options_are_set_from_text_and_unknown_keys_list_the_allowed_ones() {
        let mut options = Map::new();
        set_option(&mut options, "resolution", "2K").unwrap();
        set_option(&mut options, "input.seed", "42").unwrap();
        set_option(&mut options, "input.style", "vivid").unwrap();
        assert_eq!(options["resolution"], "2K");
        assert_eq!(options["input"]["seed"], 42);
        assert_eq!(options["input"]["style"], "vivid");
        assert_eq!(
            set_option(&mut options, "colour", "red").unwrap_err(),
            "unknown key; allowed: resolution, input.<field> (any extra input field)"
        );
        assert!(set_option(&mut options, "input.", "x").is_err());
        // Set as runbase reads it, the options keep runbase's shape in the request.
        let mut request_options = ProviderOptions::default();
        request_options
            .set(ID, "resolution", "2K", set_option)
            .unwrap();
        assert_eq!(request_options.text(ID, "resolution"), Some("2K"));
        assert!(
            request_options
                .set(ID, "resolution", " ", set_option)
                .is_err()
        );
    }

    #[test]
    fn runs_read_as_the_common_states_and_a_later_status_is_unknown() {
        let run = |json: Value| -> Run { serde_json::from_value(json).unwrap() };
        let succeeded = task_status(run(serde_json::json!({
            "id": "run_1", "model": "openai/gpt-image-2", "status": "succeeded",
            "output": {"urls": ["https://cdn.example/a.png"]}
        })));
        assert_eq!(
            succeeded.state,
            TaskState::Succeeded {
                images: vec![ImageRef::new("https://cdn.example/a.png", None)]
            }
        );
        let pending = task_status(run(serde_json::json!({
            "id": "run_1", "model": "openai/gpt-image-2", "status": "pending"
        })));
        assert_eq!(pending.state, TaskState::Queued);
        let later = task_status(run(serde_json::json!({
            "id": "run_1", "model": "openai/gpt-image-2", "status": "cancelled"
        })));
        assert_eq!(
            later.state,
            TaskState::Unknown {
                raw_status: "cancelled".into()
            }
        );
        assert!(!later.state.is_terminal());
        let json = serde_json::to_value(&later).unwrap();
        assert_eq!(json["state"], "unknown");
        assert_eq!(json["raw"]["status"], "cancelled");
    }
}
