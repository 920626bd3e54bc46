//! gptimg.co: create and poll, every answer in the `{success, data}` envelope, every error as
//! `{"error": {"code", "message", "request_id"}}`, and `X-Request-Id` on every response (set by
//! the server's request-id layer; the same id is in error bodies).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use imggen_types::gptimg::{
    self, CreatedTask, Envelope, ErrorBody, ErrorCode, ErrorObject, GenerateRequest, Image, RowId,
    Task as WireTask, TaskId, TaskStatus, TaskType,
};
use imggen_types::{AspectRatio, Credits, ValidationError};
use serde_json::json;

use crate::clock::iso8601;
use crate::keys::{ApiKey, AuthError};
use crate::ledger::Amount;
use crate::provider::Provider;
use crate::ratelimit::retry_after_secs;
use crate::respond::{Reject, json, with_retry_after};
use crate::server::RequestId;
use crate::state::{NewTask, Shared};
use crate::tasks::{self, Detail, Phase, Task};

/// gptimg documents no prompt limit; the model behind it (OpenAI's gpt-image) stops at 32 000.
const PROMPT_MAX_CHARS: usize = 32_000;
/// Query parameters that would carry a key; gptimg refuses a key sent that way.
const KEY_PARAMETERS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "access_token",
];
/// The model and provider gptimg names in every task.
const MODEL: &str = "gpt-image-2";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/images/generate", post(create))
        .route("/api/v1/images/task/{task_id}", get(task))
}

type Reply = Result<Response, Reject>;

/// An error in gptimg's shape.
pub(crate) fn error(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    request_id: &str,
) -> Response {
    error_with_credits(status, code, message, request_id, None)
}

fn error_with_credits(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    request_id: &str,
    credits: Option<(Credits, Credits)>,
) -> Response {
    json(
        status,
        &ErrorBody {
            error: ErrorObject {
                code,
                message: message.to_owned(),
                request_id: Some(request_id.to_owned()),
                required: credits.map(|(required, _)| required),
                available: credits.map(|(_, available)| available),
            },
            required: None,
            available: None,
        },
    )
}

/// Authentication, the key-in-query check and the (optional) rate limit.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
    request_id: &str,
) -> Result<ApiKey, Reject> {
    let leaked = query.unwrap_or("").split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        KEY_PARAMETERS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
    });
    if leaked {
        return Err(Reject::from(error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "API keys must be sent in the Authorization header, never in the query string; rotate a key that was sent this way",
            request_id,
        )));
    }
    let key = shared
        .authenticate(headers, Provider::Gptimg)
        .map_err(|reason| {
            let message = match reason {
                AuthError::Missing => "Missing API key: send Authorization: Bearer <key>",
                AuthError::Malformed => "Malformed Authorization header: expected Bearer <key>",
                AuthError::Rejected => "Invalid API key",
            };
            error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                message,
                request_id,
            )
        })?;
    shared.admit(Provider::Gptimg, &key).map_err(|wait| {
        let secs = retry_after_secs(wait);
        with_retry_after(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                &format!("Rate limit exceeded; retry after {secs} seconds"),
                request_id,
            ),
            secs,
        )
    })?;
    Ok(key)
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let key = admit(&shared, &headers, query.as_deref(), &request_id)?;
    let bad = |problem: String| {
        error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            &problem,
            &request_id,
        )
    };
    let request: GenerateRequest = serde_json::from_slice(&body)
        .map_err(|error| bad(format!("Invalid JSON body: {error}")))?;
    check(&request).map_err(|error| bad(error.to_string()))?;

    let required = request.credits_required();
    let ratio = request.aspect_ratio.clone().unwrap_or(AspectRatio::Square);
    let (width, height) = tasks::dimensions(
        &ratio,
        shared.config.image_size,
        tasks::openai_long_side(&ratio),
    );
    let row_id = tasks::gptimg_row_id();
    let image_to_image = !request.reference_images.is_empty();
    let task = shared
        .create_task(NewTask {
            provider: Provider::Gptimg,
            id: format!("{MODEL}-{row_id}"),
            key,
            prompt: request.prompt.clone(),
            width,
            height,
            images: u32::from(request.image_count()),
            price: Amount::Credits(required),
            detail: Detail::Gptimg {
                row_id: row_id.clone(),
                image_to_image,
            },
        })
        .map_err(|shortfall| {
            let available = match shortfall.available {
                Amount::Credits(credits) => credits,
                Amount::Usd(_) => Credits(0),
            };
            error_with_credits(
                StatusCode::PAYMENT_REQUIRED,
                ErrorCode::InsufficientCredits,
                &format!(
                    "Insufficient credits: {} required, {} available",
                    required.0, available.0
                ),
                &request_id,
                Some((required, available)),
            )
        })?;

    Ok(json(
        StatusCode::OK,
        &Envelope::ok(CreatedTask {
            id: Some(RowId::new(row_id)),
            task_id: TaskId::new(task.id.clone()),
            status: TaskStatus::Processing,
            provider: Some(MODEL.to_owned()),
            model: Some(MODEL.to_owned()),
            kind: Some(task_type(image_to_image)),
            media_url: None,
            images: Some(Vec::new()),
            created_at: Some(iso8601(shared.clock.wall_at(task.created))),
        }),
    ))
}

fn task_type(image_to_image: bool) -> TaskType {
    if image_to_image {
        TaskType::ImageToImage
    } else {
        TaskType::TextToImage
    }
}

/// The documented limits; the 13 ratios are the whole list, so any other value is refused.
fn check(request: &GenerateRequest) -> Result<(), ValidationError> {
    request.validate()?;
    let chars = request.prompt.chars().count();
    if chars > PROMPT_MAX_CHARS {
        return Err(ValidationError::new(
            "prompt",
            format!("is {chars} characters long; the maximum is {PROMPT_MAX_CHARS}"),
        ));
    }
    if let Some(ratio) = &request.aspect_ratio
        && !gptimg::ASPECT_RATIOS.contains(ratio)
    {
        return Err(ValidationError::not_allowed(
            "aspect_ratio",
            ratio,
            "gptimg",
            gptimg::ASPECT_RATIOS,
        ));
    }
    Ok(())
}

async fn task(
    State(shared): State<Arc<Shared>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Reply {
    let key = admit(&shared, &headers, query.as_deref(), &request_id)?;
    // Looked up by `task_id` only: polling with `data.id` is a 404, as documented.
    let task = shared
        .task_for(Provider::Gptimg, &task_id, &key)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "Task not found",
                &request_id,
            )
        })?;
    Ok(json(
        StatusCode::OK,
        &Envelope::ok(wire_task(&shared, &task)),
    ))
}

fn wire_task(shared: &Shared, task: &Task) -> WireTask {
    let now = shared.clock.now();
    let phase = task.phase(now);
    let (row_id, image_to_image) = match &task.detail {
        Detail::Gptimg {
            row_id,
            image_to_image,
        } => (Some(RowId::new(row_id.clone())), *image_to_image),
        _ => (None, false),
    };
    let images = (phase == Phase::Completed).then(|| {
        task.file_urls(&shared.base_url)
            .into_iter()
            .map(|url| Image {
                url,
                content_type: Some("image/png".to_owned()),
            })
            .collect::<Vec<_>>()
    });
    let updated = if phase.is_terminal() {
        task.finished_at()
    } else {
        task.created
    };
    WireTask {
        id: row_id,
        task_id: TaskId::new(task.id.clone()),
        status: match phase {
            Phase::Pending | Phase::Processing => TaskStatus::Processing,
            Phase::Completed => TaskStatus::Completed,
            Phase::Failed => TaskStatus::Failed,
        },
        provider: Some(MODEL.to_owned()),
        model: Some(MODEL.to_owned()),
        kind: Some(task_type(image_to_image)),
        media_url: images
            .as_ref()
            .and_then(|images| images.first())
            .map(|image| image.url.clone()),
        images,
        error: (phase == Phase::Failed)
            .then_some(task.failure.as_ref())
            .flatten()
            .map(|code| json!({ "code": code, "message": failure_message(code) })),
        created_at: Some(iso8601(shared.clock.wall_at(task.created))),
        updated_at: Some(iso8601(shared.clock.wall_at(updated))),
    }
}

fn failure_message(code: &str) -> String {
    match code {
        "OPENAI_DECLINED" => "The request was declined by the image model".to_owned(),
        "MODERATION_FAILED" => "The prompt or a reference image failed moderation".to_owned(),
        "TIMEOUT" => "The generation took too long".to_owned(),
        other => format!("The generation failed ({other})"),
    }
}
