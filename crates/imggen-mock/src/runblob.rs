//! runblob (`platform.runblob.io`): create (201, `price` as a string), status, list, and the
//! webhook body.
//!
//! Errors come in the shapes runblob uses: `{"detail": "..."}` for 400, 402, 404, 429 and 503,
//! `{"error": "Unauthorized", "message": "Invalid API key"}` for 401, and FastAPI's
//! `{"detail": [{loc, msg, type}]}` for a body that is not the documented JSON (422).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use imggen_types::runblob::{
    self, ErrorBody, ErrorDetail, GenerateRequest, GenerateResponse, Generation, GenerationStatus,
    TaskUuid, ValidationIssue,
};
use imggen_types::{AspectRatio, ValidationError};
use serde_json::{Value, json};

use crate::keys::AuthError;
use crate::ledger::Amount;
use crate::provider::Provider;
use crate::ratelimit::retry_after_secs;
use crate::respond::{Reject, json, with_retry_after};
use crate::state::{NewTask, Shared};
use crate::tasks::{self, Detail};

pub(crate) mod wire;

use wire::generation;

/// Ratios later versions of the API accept besides the seed's 1:1, 4:3 and 3:4 (documented
/// by runblob's SDK).
const LATER_RATIOS: &[AspectRatio] = &[
    AspectRatio::Landscape3x2,
    AspectRatio::Portrait2x3,
    AspectRatio::Landscape16x9,
    AspectRatio::Portrait9x16,
    AspectRatio::Landscape21x9,
    AspectRatio::Portrait4x5,
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/chatgpt-images/generate", post(create))
        .route("/v1/chatgpt-images/generations", get(list))
        .route("/v1/chatgpt-images/generations/{task_uuid}", get(status))
}

type Reply = Result<Response, Reject>;

/// `{"detail": text}` with `status`.
pub(crate) fn detail(status: StatusCode, text: &str) -> Response {
    json(
        status,
        &ErrorBody {
            detail: Some(ErrorDetail::Text(text.to_owned())),
            ..ErrorBody::default()
        },
    )
}

fn unauthorized() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &ErrorBody {
            error: Some("Unauthorized".into()),
            message: Some("Invalid API key".into()),
            ..ErrorBody::default()
        },
    )
}

fn unprocessable(issues: Vec<ValidationIssue>) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ErrorBody {
            detail: Some(ErrorDetail::Issues(issues)),
            ..ErrorBody::default()
        },
    )
}

fn issue(loc: &[Value], msg: &str, kind: &str) -> ValidationIssue {
    ValidationIssue {
        loc: loc.to_vec(),
        msg: msg.to_owned(),
        kind: Some(kind.to_owned()),
    }
}

fn invalid(error: &ValidationError) -> Response {
    detail(
        StatusCode::BAD_REQUEST,
        &format!("Validation error: {error}"),
    )
}

/// Authentication and the (optional) rate limit every API call goes through.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<crate::keys::ApiKey, Reject> {
    let key = shared
        .authenticate(headers, Provider::Runblob)
        .map_err(|_: AuthError| unauthorized())?;
    shared.admit(Provider::Runblob, &key).map_err(|wait| {
        with_retry_after(
            detail(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded"),
            retry_after_secs(wait),
        )
    })?;
    Ok(key)
}

async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Reply {
    let key = admit(&shared, &headers)?;
    let request = parse(&body)?;
    check(&request).map_err(|error| invalid(&error))?;

    let ratio = request.aspect_ratio.clone().unwrap_or(AspectRatio::Square);
    let (width, height) = tasks::dimensions(
        &ratio,
        shared.config.image_size,
        tasks::openai_long_side(&ratio),
    );
    let price = shared.config.runblob_price;
    let task = shared
        .create_task(NewTask {
            provider: Provider::Runblob,
            id: tasks::runblob_id(),
            key: key.clone(),
            prompt: request.prompt.clone(),
            width,
            height,
            images: 1,
            price: Amount::Usd(price),
            detail: Detail::Runblob,
        })
        .map_err(|_| detail(StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"))?;

    if let Some(url) = &request.callback_url {
        shared.lock().webhooks.schedule(
            Provider::Runblob,
            &task.id,
            &key,
            url,
            task.finished_at(),
            shared.config.deliver_external_webhooks,
        );
        shared.webhook_added.notify_one();
    }

    Ok(json(
        StatusCode::CREATED,
        &GenerateResponse {
            task_uuid: TaskUuid::new(task.id),
            status: GenerationStatus::Pending,
            price,
        },
    ))
}

/// Reads the body as FastAPI would: anything that is not the documented JSON is a 422 listing
/// every problem.
fn parse(body: &[u8]) -> Result<GenerateRequest, Reject> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        let position = byte_offset(body, error.line(), error.column());
        unprocessable(vec![issue(
            &[json!("body"), json!(position)],
            "JSON decode error",
            "json_invalid",
        )])
    })?;
    let Some(fields) = value.as_object() else {
        return Err(Reject::from(unprocessable(vec![issue(
            &[json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )])));
    };
    let mut issues = Vec::new();
    match fields.get("prompt") {
        None => issues.push(issue(
            &[json!("body"), json!("prompt")],
            "Field required",
            "missing",
        )),
        Some(Value::String(_)) => {}
        Some(_) => issues.push(issue(
            &[json!("body"), json!("prompt")],
            "Input should be a valid string",
            "string_type",
        )),
    }
    for name in [
        "aspect_ratio",
        "callback_url",
        "model",
        "quality",
        "background",
    ] {
        if let Some(field) = fields.get(name)
            && !(field.is_string() || field.is_null())
        {
            issues.push(issue(
                &[json!("body"), json!(name)],
                "Input should be a valid string",
                "string_type",
            ));
        }
    }
    match fields.get("images") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                if !item.is_string() {
                    issues.push(issue(
                        &[json!("body"), json!("images"), json!(index)],
                        "Input should be a valid string",
                        "string_type",
                    ));
                }
            }
        }
        Some(_) => issues.push(issue(
            &[json!("body"), json!("images")],
            "Input should be a valid list",
            "list_type",
        )),
    }
    if !issues.is_empty() {
        return Err(Reject::from(unprocessable(issues)));
    }
    serde_json::from_value(value).map_err(|error| {
        unprocessable(vec![issue(
            &[json!("body")],
            &error.to_string(),
            "value_error",
        )])
        .into()
    })
}

fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let before: usize = body
        .split(|byte| *byte == b'\n')
        .take(line.saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum();
    before + column.saturating_sub(1)
}

/// The documented limits, with the fields later API versions add accepted as documented.
fn check(request: &GenerateRequest) -> Result<(), ValidationError> {
    GenerateRequest::new(request.prompt.clone()).validate()?;
    if let Some(ratio) = &request.aspect_ratio
        && !runblob::ASPECT_RATIOS.contains(ratio)
        && !LATER_RATIOS.contains(ratio)
    {
        let allowed: Vec<AspectRatio> = runblob::ASPECT_RATIOS
            .iter()
            .chain(LATER_RATIOS)
            .cloned()
            .collect();
        return Err(ValidationError::not_allowed(
            "aspect_ratio",
            ratio,
            "runblob",
            &allowed,
        ));
    }
    if let Some(model) = &request.model
        && !model.is_known()
    {
        return Err(ValidationError::not_allowed(
            "model",
            model,
            "runblob",
            runblob::Model::KNOWN,
        ));
    }
    if let Some(quality) = &request.quality
        && !quality.is_known()
    {
        return Err(ValidationError::not_allowed(
            "quality",
            quality,
            "runblob",
            runblob::Quality::KNOWN,
        ));
    }
    if request.images.len() > runblob::MAX_IMAGES {
        return Err(ValidationError::new(
            "images",
            format!(
                "has {} images; the maximum is {}",
                request.images.len(),
                runblob::MAX_IMAGES
            ),
        ));
    }
    for (index, image) in request.images.iter().enumerate() {
        runblob::check_image(&format!("images[{index}]"), image)?;
    }
    if let Some(url) = &request.callback_url {
        GenerateRequest::new("x")
            .callback_url(url.clone())
            .validate()?;
    }
    Ok(())
}

async fn status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(task_uuid): Path<String>,
) -> Reply {
    let key = admit(&shared, &headers)?;
    let task = shared
        .task_for(Provider::Runblob, &task_uuid, &key)
        .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Task not found"))?;
    Ok(json(
        StatusCode::OK,
        &generation(&task, shared.clock.now(), &shared.base_url),
    ))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let key = admit(&shared, &headers)?;
    let mut limit = 20usize;
    let mut offset = 0usize;
    let mut issues = Vec::new();
    for (name, value) in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
    {
        let target = match name {
            "limit" => &mut limit,
            "offset" => &mut offset,
            _ => continue,
        };
        match value.parse::<usize>() {
            Ok(number) => *target = number,
            Err(_) => issues.push(issue(
                &[json!("query"), json!(name)],
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            )),
        }
    }
    if !issues.is_empty() {
        return Err(Reject::from(unprocessable(issues)));
    }
    let now = shared.clock.now();
    let page: Vec<Generation> = shared
        .tasks_of(Provider::Runblob, &key)
        .iter()
        .skip(offset)
        .take(limit.min(100))
        .map(|task| generation(task, now, &shared.base_url))
        .collect();
    Ok(json(StatusCode::OK, &page))
}
