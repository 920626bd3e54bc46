//! runbase (`runbase.net`): create and get runs, camelCase, `costUsd` in integer micro-USD,
//! errors as `{"error": {"message", "code"}}`, and the documented 20 requests per 10 s per key.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use imggen_types::runbase::{
    CreateRunRequest, ErrorBody, ErrorCode, ErrorObject, Model, ModelSpec, Quality, Resolution,
    Run, RunId, RunOutput, RunStatus,
};
use imggen_types::{AspectRatio, MicroUsd, ValidationError};
use serde_json::Value;

use crate::clock::iso8601;
use crate::keys::{ApiKey, AuthError};
use crate::ledger::Amount;
use crate::provider::Provider;
use crate::respond::{Reject, json};
use crate::state::{NewTask, Shared};
use crate::tasks::{self, Detail, Phase, Task};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/runs", post(create))
        .route("/api/v1/runs/{id}", get(get_run))
}

type Reply = Result<Response, Reject>;

/// An error in runbase's shape.
pub(crate) fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    json(
        status,
        &ErrorBody {
            error: ErrorObject {
                message: message.to_owned(),
                code: Some(code),
            },
        },
    )
}

/// Authentication and the rate limit, which counts creates and polls together.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<ApiKey, Reject> {
    let key = shared
        .authenticate(headers, Provider::Runbase)
        .map_err(|reason| match reason {
            AuthError::Missing => error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::MissingApiKey,
                "Missing API key",
            ),
            AuthError::Malformed | AuthError::Rejected => error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidApiKey,
                "Invalid API key",
            ),
        })?;
    shared.admit(Provider::Runbase, &key).map_err(|_| {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "Rate limit exceeded",
        )
    })?;
    Ok(key)
}

async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Reply {
    let key = admit(&shared, &headers)?;
    let bad = |code, message: &str| error(StatusCode::BAD_REQUEST, code, message);
    let value: Value = serde_json::from_slice(&body)
        .map_err(|_| bad(ErrorCode::InvalidJson, "Request body must be valid JSON"))?;
    let Value::Object(mut fields) = value else {
        return Err(Reject::from(bad(
            ErrorCode::InvalidJson,
            "Request body must be a JSON object",
        )));
    };
    let model = match fields.remove("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => Model::from_wire(&model),
        None | Some(Value::Null) => {
            return Err(Reject::from(bad(
                ErrorCode::MissingModel,
                "Missing required field: model",
            )));
        }
        Some(_) => {
            return Err(Reject::from(bad(
                ErrorCode::MissingModel,
                "model must be a model id string, e.g. openai/gpt-image-1",
            )));
        }
    };
    let input = match fields.remove("input") {
        None | Some(Value::Null) => {
            return Err(Reject::from(bad(
                ErrorCode::MissingInput,
                "Missing required field: input",
            )));
        }
        Some(input) => input,
    };
    let Some(spec) = ModelSpec::of(&model) else {
        return Err(Reject::from(error(
            StatusCode::BAD_REQUEST,
            ErrorCode::ModelNotFound,
            &format!("Model not found: {model}"),
        )));
    };
    let request = CreateRunRequest::new(model.clone(), input);
    let settings = check(&request, spec).map_err(|problem| {
        bad(
            ErrorCode::InvalidInput,
            &format!("Invalid input: {problem}"),
        )
    })?;

    let price = request
        .price()
        .or_else(|| spec.price(None, None))
        .unwrap_or(MicroUsd(0));
    let long_side = match (&model, &settings.resolution) {
        (Model::GptImage2, Some(Resolution::TwoK)) => 2048,
        (Model::GptImage2, Some(Resolution::FourK)) => 4096,
        (Model::GptImage2, _) => 1024,
        _ => tasks::openai_long_side(&settings.aspect_ratio),
    };
    let (width, height) =
        tasks::dimensions(&settings.aspect_ratio, shared.config.image_size, long_side);
    let task = shared
        .create_task(NewTask {
            provider: Provider::Runbase,
            id: tasks::runbase_id(shared.clock.wall()),
            key,
            prompt: settings.prompt,
            width,
            height,
            images: 1,
            price: Amount::Usd(price.to_usd()),
            detail: Detail::Runbase { model },
        })
        .map_err(|_| {
            error(
                StatusCode::PAYMENT_REQUIRED,
                ErrorCode::InsufficientBalance,
                &format!("Insufficient balance: this run costs {price}"),
            )
        })?;
    Ok(json(StatusCode::OK, &run(&shared, &task)))
}

/// What a run was asked for, once its input checks out.
struct Settings {
    prompt: String,
    aspect_ratio: AspectRatio,
    resolution: Option<Resolution>,
}

/// The model's schema: the shared checks of the types crate, and — as a real service does —
/// no values outside the documented lists (which the client lets through as `Other`).
fn check(request: &CreateRunRequest, spec: &ModelSpec) -> Result<Settings, ValidationError> {
    let input = &request.input;
    let text = |name: &str| -> Result<Option<&str>, ValidationError> {
        match input.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(ValidationError::new(
                format!("input.{name}"),
                "must be a string",
            )),
        }
    };
    let prompt = text("prompt")?.unwrap_or_default().to_owned();
    let aspect_ratio = match text("aspect_ratio")? {
        Some(ratio) => {
            let ratio = AspectRatio::from_wire(ratio);
            if !spec.aspect_ratios.contains(&ratio) {
                return Err(ValidationError::not_allowed(
                    "input.aspect_ratio",
                    &ratio,
                    spec.model.as_str(),
                    spec.aspect_ratios,
                ));
            }
            ratio
        }
        None => spec
            .aspect_ratios
            .first()
            .cloned()
            .unwrap_or(AspectRatio::Square),
    };
    if !spec.qualities.is_empty()
        && let Some(quality) = text("quality")?
    {
        let quality = Quality::from_wire(quality);
        if !spec.qualities.contains(&quality) {
            return Err(ValidationError::not_allowed(
                "input.quality",
                &quality,
                spec.model.as_str(),
                spec.qualities,
            ));
        }
    }
    let resolution = match text("resolution")? {
        Some(resolution) if !spec.resolutions.is_empty() => {
            let resolution = Resolution::from_wire(resolution);
            if !spec.resolutions.contains(&resolution) {
                return Err(ValidationError::not_allowed(
                    "input.resolution",
                    &resolution,
                    spec.model.as_str(),
                    spec.resolutions,
                ));
            }
            Some(resolution)
        }
        _ => None,
    };
    request.validate()?;
    Ok(Settings {
        prompt,
        aspect_ratio,
        resolution,
    })
}

async fn get_run(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let key = admit(&shared, &headers)?;
    let task = shared
        .task_for(Provider::Runbase, &id, &key)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                ErrorCode::RunNotFound,
                "Run not found",
            )
        })?;
    Ok(json(StatusCode::OK, &run(&shared, &task)))
}

fn run(shared: &Shared, task: &Task) -> Run {
    let phase = task.phase(shared.clock.now());
    let model = match &task.detail {
        Detail::Runbase { model } => model.clone(),
        _ => Model::Other(String::new()),
    };
    let cost = match task.price {
        Amount::Usd(usd) => usd_to_micro(usd),
        Amount::Credits(_) => None,
    };
    Run {
        id: RunId::new(task.id.clone()),
        model,
        status: match phase {
            Phase::Pending => RunStatus::Pending,
            Phase::Processing => RunStatus::Processing,
            Phase::Completed => RunStatus::Succeeded,
            Phase::Failed => RunStatus::Failed,
        },
        cost_usd: cost,
        output: (phase == Phase::Completed).then(|| RunOutput {
            urls: task.file_urls(&shared.base_url),
        }),
        created_at: Some(iso8601(shared.clock.wall_at(task.created))),
        completed_at: phase
            .is_terminal()
            .then(|| iso8601(shared.clock.wall_at(task.finished_at()))),
        error: (phase == Phase::Failed)
            .then(|| task.failure.clone())
            .flatten()
            .map(Value::String),
    }
}

/// Exact: prices are set from micro-USD, so the conversion back never rounds.
fn usd_to_micro(usd: imggen_types::Usd) -> Option<MicroUsd> {
    let micro = usd
        .amount()
        .checked_mul(rust_decimal::Decimal::from(1_000_000))?;
    micro
        .normalize()
        .to_string()
        .parse::<i64>()
        .ok()
        .map(MicroUsd)
}
