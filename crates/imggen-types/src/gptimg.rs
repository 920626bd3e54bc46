//! gptimg.co, gpt-image-2.
//!
//! - Create: `POST /api/v1/images/generate` with [`GenerateRequest`] → 200
//!   `{"success": true, "data": CreatedTask}` ([`Envelope`], [`CreatedTask`]); `images` is `[]`.
//! - Poll: `GET /api/v1/images/task/{task_id}` → `{"success": true, "data": Task}`; `images`
//!   is **null** while processing. Poll with `data.task_id` (`gpt-image-2-<21 chars>`), never
//!   `data.id` (an internal row id).
//! - Errors: `{"error": {"code", "message", "request_id"}}` ([`ErrorBody`]) and an
//!   `X-Request-Id` header on every response. A 500 `INTERNAL_ERROR` is refunded.
//!
//! Credits: 2 per image, charged at create. About 45–60 s a task. No webhooks.

use serde::{Deserialize, Serialize};

use crate::common::AspectRatio;
use crate::id::id_newtype;
use crate::money::Credits;
use crate::open_enum::open_enum;
use crate::validation::{self, Schemes, ValidationError};

/// The most images one task makes.
pub const MAX_N: u8 = 4;
/// The most reference images one request may carry.
pub const MAX_REFERENCE_IMAGES: usize = 4;
/// What one image costs.
pub const CREDITS_PER_IMAGE: Credits = Credits(2);
/// The 13 documented aspect ratios (default `1:1`).
pub const ASPECT_RATIOS: &[AspectRatio] = &[
    AspectRatio::Square,
    AspectRatio::Landscape16x9,
    AspectRatio::Portrait9x16,
    AspectRatio::Landscape4x3,
    AspectRatio::Portrait3x4,
    AspectRatio::Landscape3x2,
    AspectRatio::Portrait2x3,
    AspectRatio::Landscape5x4,
    AspectRatio::Portrait4x5,
    AspectRatio::Landscape2x1,
    AspectRatio::Portrait1x2,
    AspectRatio::Landscape21x9,
    AspectRatio::Portrait9x21,
];

id_newtype! {
    /// The id to poll, `gpt-image-2-<21 chars>` (`data.task_id`).
    TaskId, "task_id"
}

id_newtype! {
    /// gptimg's internal row id (`data.id`). Not accepted by the poll endpoint.
    RowId, "id"
}

open_enum! {
    /// A task's `status`.
    pub enum TaskStatus("gptimg status") {
        /// Being generated (the only status at creation).
        Processing = "processing",
        /// Done: `images` holds the results.
        Completed = "completed",
        /// Failed (HTTP 200 with `status: "failed"`); `error` says why; credits are refunded.
        Failed = "failed",
    }
}

impl TaskStatus {
    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

open_enum! {
    /// A task's `type`.
    pub enum TaskType("gptimg task type") {
        /// No reference images.
        TextToImage = "text-to-image",
        /// With reference images.
        ImageToImage = "image-to-image",
    }
}

open_enum! {
    /// `error.code` of an error response.
    pub enum ErrorCode("gptimg error code") {
        /// 401: missing or invalid key, or a key leaked through a query string.
        Unauthorized = "UNAUTHORIZED",
        /// 400: the body failed validation.
        InvalidRequest = "INVALID_REQUEST",
        /// 402: balance below 2 × n; `required` and `available` say by how much.
        InsufficientCredits = "INSUFFICIENT_CREDITS",
        /// 404: no such task for this key.
        NotFound = "NOT_FOUND",
        /// 429: slow down; `Retry-After` says for how long.
        RateLimited = "RATE_LIMITED",
        /// 500: unexpected failure; the charge is refunded, so a retry is safe.
        InternalError = "INTERNAL_ERROR",
    }
}

impl ErrorCode {
    /// What to do about this error; `None` for a code this version does not know.
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::Unauthorized => {
                "check GPTIMG_API_KEY; send it only in the Authorization header, never in a URL"
            }
            ErrorCode::InvalidRequest => "fix the field the message names, then submit again",
            ErrorCode::InsufficientCredits => {
                "buy credits on gptimg.co (2 per image), then submit again"
            }
            ErrorCode::NotFound => {
                "poll with data.task_id (gpt-image-2-…), not data.id, using the key that created it"
            }
            ErrorCode::RateLimited => "slow down: wait the Retry-After delay, then retry",
            ErrorCode::InternalError => "gptimg refunded the credits: submitting again is safe",
            _ => return None,
        })
    }
}

/// The body of `POST /api/v1/images/generate`.
///
/// ```
/// use imggen_types::{AspectRatio, gptimg::GenerateRequest};
/// let request = GenerateRequest::new("A lighthouse at dusk")
///     .aspect_ratio(AspectRatio::Landscape16x9)
///     .n(2);
/// request.validate().unwrap();
/// assert_eq!(request.credits_required().0, 4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct GenerateRequest {
    /// What to draw.
    #[cfg_attr(
        feature = "json-schema",
        schemars(length(min = 1), pattern(crate::schema::NOT_BLANK))
    )]
    pub prompt: String,
    /// One of the 13 [`ASPECT_RATIOS`]; the provider's default is `1:1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gptimg_aspect_ratio")
    )]
    pub aspect_ratio: Option<AspectRatio>,
    /// Images to make, 1–4 (default 1). Credits scale linearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "json-schema", schemars(range(min = 1, max = MAX_N)))]
    pub n: Option<u8>,
    /// Up to 4 `https://` URLs (http, data URIs and base64 are refused); non-empty makes the
    /// task image-to-image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(
            length(max = MAX_REFERENCE_IMAGES),
            inner(pattern(crate::schema::HTTPS_URL))
        )
    )]
    pub reference_images: Vec<String>,
}

impl GenerateRequest {
    /// A text-to-image request for one image at the default ratio.
    pub fn new(prompt: impl Into<String>) -> Self {
        GenerateRequest {
            prompt: prompt.into(),
            aspect_ratio: None,
            n: None,
            reference_images: Vec::new(),
        }
    }

    /// Sets the aspect ratio.
    pub fn aspect_ratio(mut self, ratio: AspectRatio) -> Self {
        self.aspect_ratio = Some(ratio);
        self
    }

    /// Sets how many images to make.
    pub fn n(mut self, n: u8) -> Self {
        self.n = Some(n);
        self
    }

    /// Adds a reference image URL (https only).
    pub fn reference_image(mut self, url: impl Into<String>) -> Self {
        self.reference_images.push(url.into());
        self
    }

    /// Images the task will make.
    pub fn image_count(&self) -> u8 {
        self.n.unwrap_or(1)
    }

    /// Credits the create will charge: 2 × n.
    pub fn credits_required(&self) -> Credits {
        Credits(CREDITS_PER_IMAGE.0 * u64::from(self.image_count()))
    }

    /// Checks every documented limit. `Other` values are sent as they are, unchecked.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validation::check_prompt(&self.prompt, None)?;
        if let Some(ratio) = &self.aspect_ratio
            && ratio.is_known()
            && !ASPECT_RATIOS.contains(ratio)
        {
            return Err(ValidationError::not_allowed(
                "aspect_ratio",
                ratio,
                "gptimg",
                ASPECT_RATIOS,
            ));
        }
        if let Some(n) = self.n
            && !(1..=MAX_N).contains(&n)
        {
            return Err(ValidationError::new(
                "n",
                format!("{n} is out of range; allowed: 1 to {MAX_N}"),
            ));
        }
        validation::check_count(
            "reference_images",
            self.reference_images.len(),
            MAX_REFERENCE_IMAGES,
            "URLs",
        )?;
        for (index, url) in self.reference_images.iter().enumerate() {
            // https only: gptimg rejects http, data: URIs and base64 outright.
            validation::check_url(
                &format!("reference_images[{index}]"),
                url,
                Schemes::HttpsOnly,
                false,
            )?;
        }
        Ok(())
    }
}

/// The `{"success": true, "data": ...}` wrapper of every successful answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Envelope<T> {
    /// `true` on success.
    pub success: bool,
    /// The payload.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps a successful payload.
    pub fn ok(data: T) -> Self {
        Envelope {
            success: true,
            data,
        }
    }
}

/// The whole answer to a create.
pub type CreateResponse = Envelope<CreatedTask>;

/// The whole answer to a poll.
pub type TaskResponse = Envelope<Task>;

/// `data` of the answer to a create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CreatedTask {
    /// Internal row id; do not poll with it.
    #[serde(default)]
    pub id: Option<RowId>,
    /// The id to poll.
    pub task_id: TaskId,
    /// Always `processing` at creation.
    pub status: TaskStatus,
    /// `gpt-image-2`.
    #[serde(default)]
    pub provider: Option<String>,
    /// `gpt-image-2`.
    #[serde(default)]
    pub model: Option<String>,
    /// `text-to-image` or `image-to-image`.
    #[serde(rename = "type", default)]
    pub kind: Option<TaskType>,
    /// `null` at creation.
    #[serde(default)]
    pub media_url: Option<String>,
    /// `[]` at creation.
    #[serde(default)]
    pub images: Option<Vec<Image>>,
    /// ISO 8601.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `data` of the answer to a poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Task {
    /// Internal row id.
    #[serde(default)]
    pub id: Option<RowId>,
    /// The task id.
    pub task_id: TaskId,
    /// Where the task is.
    pub status: TaskStatus,
    /// `gpt-image-2`.
    #[serde(default)]
    pub provider: Option<String>,
    /// `gpt-image-2`.
    #[serde(default)]
    pub model: Option<String>,
    /// `text-to-image` or `image-to-image`.
    #[serde(rename = "type", default)]
    pub kind: Option<TaskType>,
    /// The first image's URL, once completed.
    #[serde(default)]
    pub media_url: Option<String>,
    /// `null` while processing; the results once completed.
    #[serde(default)]
    pub images: Option<Vec<Image>>,
    /// Why the task failed. Its shape is not documented: a string or an object, kept as JSON.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// ISO 8601.
    #[serde(default)]
    pub created_at: Option<String>,
    /// ISO 8601.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Task {
    /// The result URLs, in order (empty until completed).
    pub fn image_urls(&self) -> Vec<&str> {
        self.images
            .iter()
            .flatten()
            .map(|image| image.url.as_str())
            .collect()
    }

    /// `error` in words: the string itself, or an object's `code` and `message`.
    pub fn error_message(&self) -> Option<String> {
        describe_json_error(self.error.as_ref()?)
    }
}

/// Words for an undocumented error value: a string as is, `{code, message}` as `CODE: message`,
/// anything else as compact JSON. `None` for `null`.
pub fn describe_json_error(error: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match error {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Object(fields) => {
            let field = |name: &str| fields.get(name).and_then(Value::as_str);
            match (field("code"), field("message")) {
                (Some(code), Some(message)) => Some(format!("{code}: {message}")),
                (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
                (None, None) => Some(error.to_string()),
            }
        }
        other => Some(other.to_string()),
    }
}

/// One result image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Image {
    /// Where to download it.
    pub url: String,
    /// `image/png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// An error answer: `{"error": {"code", "message", "request_id"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
    /// `required` next to `error` rather than inside it (the docs do not say where it goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Credits>,
    /// `available` next to `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<Credits>,
}

/// The `error` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ErrorObject {
    /// E.g. `INSUFFICIENT_CREDITS`.
    pub code: ErrorCode,
    /// What happened, in words.
    #[serde(default)]
    pub message: String,
    /// The same id as the `X-Request-Id` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// 402: credits the task needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Credits>,
    /// 402: credits the key has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<Credits>,
}

impl ErrorBody {
    /// Credits required and available on a 402, wherever in the body they are.
    pub fn credits(&self) -> Option<(Credits, Credits)> {
        let required = self.error.required.or(self.required)?;
        let available = self.error.available.or(self.available)?;
        Some((required, available))
    }

    /// The message a person can act on: on a 402, `4 credits required, 1 available`.
    pub fn describe(&self) -> String {
        match self.credits() {
            Some((required, available)) => {
                format!("{required} required, {} available", available.0)
            }
            None => self.error.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_and_references_are_checked() {
        let err = GenerateRequest::new("x").n(5).validate().unwrap_err();
        assert_eq!(err.to_string(), "n: 5 is out of range; allowed: 1 to 4");
        assert!(GenerateRequest::new("x").n(0).validate().is_err());
        let err = GenerateRequest::new("x")
            .reference_image("data:image/png;base64,AAAA")
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "reference_images[0]");
        GenerateRequest::new("x")
            .reference_image("https://example.com/portrait.jpg")
            .validate()
            .unwrap();
    }

    #[test]
    fn all_thirteen_ratios_are_accepted() {
        assert_eq!(ASPECT_RATIOS.len(), 13);
        for ratio in ASPECT_RATIOS {
            GenerateRequest::new("x")
                .aspect_ratio(ratio.clone())
                .validate()
                .unwrap();
        }
    }

    #[test]
    fn insufficient_credits_reads_like_a_sentence() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"Insufficient credits","request_id":"req_1","required":4,"available":1}}"#,
        )
        .unwrap();
        assert_eq!(body.describe(), "4 credits required, 1 available");
        let top_level: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"x"},"required":2,"available":0}"#,
        )
        .unwrap();
        assert_eq!(top_level.credits(), Some((Credits(2), Credits(0))));
    }

    #[test]
    fn undocumented_error_values_are_described() {
        use serde_json::json;
        assert_eq!(describe_json_error(&json!("boom")).as_deref(), Some("boom"));
        assert_eq!(
            describe_json_error(&json!({"code": "MODERATION_FAILED", "message": "nope"}))
                .as_deref(),
            Some("MODERATION_FAILED: nope")
        );
        assert_eq!(describe_json_error(&json!(null)), None);
    }
}
