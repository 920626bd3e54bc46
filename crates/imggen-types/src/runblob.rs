//! runblob (`platform.runblob.io`), "ChatGPT Image 1.5".
//!
//! - Create: `POST /v1/chatgpt-images/generate` with [`GenerateRequest`] → **201**
//!   [`GenerateResponse`] (`price` is a USD decimal string).
//! - Status: `GET /v1/chatgpt-images/generations/{task_uuid}` → [`Generation`].
//! - List (documented by the official SDK): `GET /v1/chatgpt-images/generations?limit=&offset=`
//!   → a bare array of [`Generation`].
//! - Webhook: the `callback_url` receives a POST whose body is a [`Generation`]
//!   ([`WebhookBody`]); no signature is documented, so treat it as a hint and confirm it with
//!   one status call.
//! - Errors: [`ErrorBody`], whose shape differs by status (`{"detail": "..."}`,
//!   `{"error","message"}`, FastAPI's `{"detail": [{loc, msg, type}]}`,
//!   `{"success": false, "message"}`).
//!
//! One image per task; typical time 1–3 minutes.

use serde::{Deserialize, Serialize};

use crate::common::AspectRatio;
use crate::id::id_newtype;
use crate::media::{self, DataUri, ImageFormat};
use crate::money::Usd;
use crate::open_enum::open_enum;
use crate::validation::{self, Schemes, ValidationError, shorten};

/// The longest prompt runblob accepts, in characters.
pub const PROMPT_MAX_CHARS: usize = 4000;
/// The most reference images one request may carry.
pub const MAX_IMAGES: usize = 4;
/// The largest reference image runblob accepts (`IMAGE_TOO_LARGE` above it), decoded.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The aspect ratios the seed documentation lists. Omit the ratio to let the model choose;
/// send any other value deliberately with [`AspectRatio::Other`].
pub const ASPECT_RATIOS: &[AspectRatio] = &[
    AspectRatio::Square,
    AspectRatio::Landscape4x3,
    AspectRatio::Portrait3x4,
];
/// Reference image formats runblob reads.
pub const IMAGE_FORMATS: &[ImageFormat] = &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp];

id_newtype! {
    /// A runblob task id (`task_uuid`), e.g. `dc62d83d-1953-4bca-8554-222679a7a4a9`.
    TaskUuid, "task_uuid"
}

open_enum! {
    /// The optional `model` later versions of the API accept.
    pub enum Model("runblob model") {
        /// `gpt-5-2`
        Gpt5_2 = "gpt-5-2",
        /// `chatgpt-2.5`
        Chatgpt2_5 = "chatgpt-2.5",
    }
}

open_enum! {
    /// The optional `quality` of the `chatgpt-2.5` model.
    pub enum Quality("runblob quality") {
        /// `flare`
        Flare = "flare",
        /// `sunburst`
        Sunburst = "sunburst",
    }
}

open_enum! {
    /// A generation's `status`.
    pub enum GenerationStatus("runblob status") {
        /// Accepted, not started.
        Pending = "pending",
        /// Being generated.
        Processing = "processing",
        /// Done: `result_image_url` is set.
        Completed = "completed",
        /// Failed: `message` carries a code; the charge is refunded.
        Failed = "failed",
    }
}

impl GenerationStatus {
    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, GenerationStatus::Completed | GenerationStatus::Failed)
    }
}

open_enum! {
    /// The code in a failed generation's `message`.
    pub enum FailureCode("runblob failure code") {
        /// OpenAI refused the prompt.
        OpenaiDeclined = "OPENAI_DECLINED",
        /// The moderation check failed.
        ModerationFailed = "MODERATION_FAILED",
        /// An upstream API error.
        ApiError = "API_ERROR",
        /// The task failed for another reason.
        TaskFailed = "TASK_FAILED",
        /// The task took too long.
        Timeout = "TIMEOUT",
        /// A reference image could not be read.
        InvalidImage = "INVALID_IMAGE",
        /// A reference image is over 20 MB.
        ImageTooLarge = "IMAGE_TOO_LARGE",
        /// A reference image is not JPEG, PNG or WEBP.
        UnsupportedImageFormat = "UNSUPPORTED_IMAGE_FORMAT",
    }
}

impl FailureCode {
    /// What to do about a task that failed this way (failed tasks are refunded); `None` for a
    /// code this version does not know.
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            FailureCode::OpenaiDeclined => {
                "OpenAI declined the prompt: rephrase it, then submit again (the failed task is refunded)"
            }
            FailureCode::ModerationFailed => {
                "the prompt or a reference failed moderation: change it, then submit again"
            }
            FailureCode::ApiError | FailureCode::TaskFailed | FailureCode::Timeout => {
                "an upstream failure, not your request: submitting again is reasonable"
            }
            FailureCode::InvalidImage
            | FailureCode::ImageTooLarge
            | FailureCode::UnsupportedImageFormat => {
                "a reference image could not be used: send a JPEG, PNG or WEBP under 20 MB"
            }
            _ => return None,
        })
    }
}

open_enum! {
    /// The code in an error response (`detail` or `error`).
    pub enum ErrorCode("runblob error code") {
        /// 402: the balance cannot pay for the task.
        InsufficientCredits = "INSUFFICIENT_CREDITS",
        /// 500: OpenAI declined; a refund is attempted.
        OpenaiDeclined = "OPENAI_DECLINED",
        /// 503: the service is down for maintenance; nothing was created.
        Maintenance = "Maintenance",
        /// 404: no task with that id for this key.
        TaskNotFound = "Task not found",
        /// 401: the key is missing or invalid.
        Unauthorized = "Unauthorized",
    }
}

impl ErrorCode {
    /// What to do about this error; `None` for a code this version does not know.
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::InsufficientCredits => "top up your runblob balance, then submit again",
            ErrorCode::OpenaiDeclined => {
                "OpenAI declined the prompt or references: rephrase them; a refund was attempted"
            }
            ErrorCode::Maintenance => {
                "runblob is down for maintenance and charged nothing: submit again later"
            }
            ErrorCode::TaskNotFound => {
                "check the task_uuid, and that the task was created with this API key"
            }
            ErrorCode::Unauthorized => "check RUNBLOB_API_KEY: the key is missing or invalid",
            _ => return None,
        })
    }
}

/// The body of `POST /v1/chatgpt-images/generate`.
///
/// ```
/// use imggen_types::{AspectRatio, runblob::GenerateRequest};
/// let request = GenerateRequest::new("A futuristic city with flying cars")
///     .aspect_ratio(AspectRatio::Portrait3x4)
///     .image("https://example.com/ref1.jpg");
/// request.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct GenerateRequest {
    /// What to draw, 1–4000 characters.
    #[cfg_attr(
        feature = "json-schema",
        schemars(length(min = 1, max = PROMPT_MAX_CHARS), pattern(crate::schema::NOT_BLANK))
    )]
    pub prompt: String,
    /// 1:1, 4:3 or 3:4 (and the ratios later API versions document); omitted, the model picks
    /// the best ratio for the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::runblob_aspect_ratio")
    )]
    pub aspect_ratio: Option<AspectRatio>,
    /// Up to 4 reference images, each an http(s) URL, a `data:image/...;base64,` URI or bare
    /// base64 (read as JPEG).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(length(max = MAX_IMAGES), inner(pattern(crate::schema::RUNBLOB_IMAGE)))
    )]
    pub images: Vec<String>,
    /// Receives a POST with the status object when the task completes or fails; https (http
    /// only to this machine, for a local emulator's receiver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(pattern(crate::schema::CALLBACK_URL))
    )]
    pub callback_url: Option<String>,
    /// A model of later API versions; omitted unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// A quality of later API versions (`chatgpt-2.5`); omitted unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// A background setting of later API versions (`chatgpt-2.5`), passed through unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
}

impl GenerateRequest {
    /// A text-to-image request; the model picks the aspect ratio.
    pub fn new(prompt: impl Into<String>) -> Self {
        GenerateRequest {
            prompt: prompt.into(),
            aspect_ratio: None,
            images: Vec::new(),
            callback_url: None,
            model: None,
            quality: None,
            background: None,
        }
    }

    /// Sets the aspect ratio.
    pub fn aspect_ratio(mut self, ratio: AspectRatio) -> Self {
        self.aspect_ratio = Some(ratio);
        self
    }

    /// Adds a reference image already in wire form (URL, data URI or bare base64).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.images.push(image.into());
        self
    }

    /// Replaces the reference images with ones already in wire form (e.g. from
    /// `imggen_runblob::Client::resolve_images`).
    pub fn images<I, S>(mut self, images: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.images = images.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the webhook URL.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: Model) -> Self {
        self.model = Some(model);
        self
    }

    /// Sets the quality.
    pub fn quality(mut self, quality: Quality) -> Self {
        self.quality = Some(quality);
        self
    }

    /// Sets the background.
    pub fn background(mut self, background: impl Into<String>) -> Self {
        self.background = Some(background.into());
        self
    }

    /// Checks every documented limit. `Other` values are sent as they are, unchecked.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validation::check_prompt(&self.prompt, Some(PROMPT_MAX_CHARS))?;
        if let Some(ratio) = &self.aspect_ratio
            && ratio.is_known()
            && !ASPECT_RATIOS.contains(ratio)
        {
            return Err(ValidationError::not_allowed(
                "aspect_ratio",
                ratio,
                "runblob",
                ASPECT_RATIOS,
            ));
        }
        validation::check_count("images", self.images.len(), MAX_IMAGES, "images")?;
        for (index, image) in self.images.iter().enumerate() {
            check_image(&format!("images[{index}]"), image)?;
        }
        if let Some(url) = &self.callback_url {
            // HTTPS is required; plain http is let through only to a loopback receiver, which
            // is what a local emulator (imggen-mock) calls back.
            validation::check_url("callback_url", url, Schemes::HttpsOnly, true)?;
        }
        Ok(())
    }
}

/// How runblob reads one entry of `images`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageReference<'a> {
    /// An `http://` or `https://` URL; runblob stores the link without downloading it.
    Url(&'a str),
    /// `data:image/...;base64,...`
    DataUri(DataUri<'a>),
    /// Base64 without a prefix, decoded as JPEG.
    Base64(&'a str),
}

impl<'a> ImageReference<'a> {
    /// Classifies an `images` entry the way runblob does.
    pub fn classify(value: &'a str) -> Self {
        let lower_prefix = value.get(..8).unwrap_or(value).to_ascii_lowercase();
        if lower_prefix.starts_with("https://") || lower_prefix.starts_with("http://") {
            ImageReference::Url(value)
        } else if let Some(uri) = DataUri::parse(value) {
            ImageReference::DataUri(uri)
        } else {
            ImageReference::Base64(value)
        }
    }
}

/// Checks one reference image: a well-formed URL, or embedded bytes that decode, are at most
/// 20 MB and are the JPEG, PNG or WEBP they claim to be.
pub fn check_image(field: &str, value: &str) -> Result<(), ValidationError> {
    match ImageReference::classify(value) {
        ImageReference::Url(url) => {
            validation::check_url(field, url, Schemes::HttpOrHttps, false).map(drop)
        }
        ImageReference::DataUri(uri) => {
            let declared = ImageFormat::from_media_type(uri.media_type)
                .filter(|format| IMAGE_FORMATS.contains(format))
                .ok_or_else(|| {
                    ValidationError::new(
                        field,
                        format!(
                            "data URI of type {:?} is not accepted; allowed: image/jpeg, image/png, image/webp",
                            uri.media_type
                        ),
                    )
                })?;
            let bytes = decode(field, uri.base64)?;
            match media::sniff(&bytes).map(|info| info.format) {
                Some(actual) if actual == declared => Ok(()),
                Some(actual) => Err(ValidationError::new(
                    field,
                    format!("data URI says {declared} but the bytes are {actual}"),
                )),
                None => Err(ValidationError::new(
                    field,
                    format!(
                        "data URI says {declared} but the bytes are not an image runblob reads (JPEG, PNG, WEBP)"
                    ),
                )),
            }
        }
        ImageReference::Base64(text) => {
            if text.contains(':') || text.contains('.') {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "{:?} is not an http(s) URL, a data:image/...;base64, URI or base64",
                        shorten(text)
                    ),
                ));
            }
            let bytes = decode(field, text)?;
            match media::sniff(&bytes).map(|info| info.format) {
                Some(ImageFormat::Jpeg) => Ok(()),
                Some(other) => Err(ValidationError::new(
                    field,
                    format!(
                        "bare base64 is decoded as JPEG by runblob but these bytes are {other}; send a data:{other};base64, URI instead"
                    ),
                )),
                None => Err(ValidationError::new(
                    field,
                    "bare base64 is decoded as JPEG by runblob but these bytes are not a JPEG image",
                )),
            }
        }
    }
}

fn decode(field: &str, base64: &str) -> Result<Vec<u8>, ValidationError> {
    // Size first, from the text, so a 200 MB string is not decoded just to be refused.
    let decoded_len = base64.len() / 4 * 3;
    if decoded_len > MAX_IMAGE_BYTES + 3 {
        return Err(ValidationError::new(
            field,
            format!(
                "image is about {} MB; the maximum is 20 MB",
                decoded_len / (1024 * 1024)
            ),
        ));
    }
    let bytes = media::decode_base64(base64)
        .ok_or_else(|| ValidationError::new(field, "is not valid base64"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ValidationError::new(
            field,
            format!("image is {} bytes; the maximum is 20 MB", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The 201 answer to a create: the task id, `"pending"` and the price charged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct GenerateResponse {
    /// The id to poll.
    pub task_uuid: TaskUuid,
    /// Always `pending` at creation.
    pub status: GenerationStatus,
    /// The amount charged, in USD (a decimal string on the wire).
    pub price: Usd,
}

/// A generation's state: the answer to a status call and the body of a webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Generation {
    /// The task id.
    pub task_uuid: TaskUuid,
    /// Where the task is.
    pub status: GenerationStatus,
    /// The prompt as submitted.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The image, once `completed`.
    #[serde(default)]
    pub result_image_url: Option<String>,
    /// On `failed`, a code such as `OPENAI_DECLINED`.
    #[serde(default)]
    pub message: Option<String>,
}

/// The body runblob POSTs to a `callback_url`: the same object a status call returns.
pub type WebhookBody = Generation;

impl Generation {
    /// The failure code in `message`, when the task failed. A message that is not a bare code
    /// (`OPENAI_DECLINED: safety system`) is read up to its first `:` or space.
    pub fn failure_code(&self) -> Option<FailureCode> {
        if self.status != GenerationStatus::Failed {
            return None;
        }
        let message = self.message.as_deref()?.trim();
        let code = message
            .split([':', ' '])
            .next()
            .filter(|code| !code.is_empty())?;
        Some(FailureCode::from_wire(code))
    }
}

/// The query of the SDK-documented list call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ListGenerationsQuery {
    /// How many to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// How many to skip, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// An error body, in any of the shapes runblob uses. Parsed leniently: every field is optional,
/// and the raw body is kept by the transport next to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// `{"detail": "INSUFFICIENT_CREDITS"}`, or FastAPI's list of validation issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ErrorDetail>,
    /// `{"error": "Unauthorized", ...}` (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A human message (401, and the `{"success": false}` shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `false` in the `{"success": false, "message"}` shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

/// The `detail` of an error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ErrorDetail {
    /// A code (`INSUFFICIENT_CREDITS`, `Maintenance`) or a sentence
    /// (`Validation error: images format invalid`).
    Text(String),
    /// FastAPI's 422 list.
    Issues(Vec<ValidationIssue>),
    /// Anything else, kept as JSON.
    Other(serde_json::Value),
}

/// One item of a 422 `detail` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ValidationIssue {
    /// Where the problem is, e.g. `["body", "prompt"]`.
    #[serde(default)]
    pub loc: Vec<serde_json::Value>,
    /// What is wrong.
    #[serde(default)]
    pub msg: String,
    /// FastAPI's error type, e.g. `string_too_long`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl ErrorBody {
    /// The error code, when the body carries one: a `detail` that is a single word or a known
    /// value, or the 401 `error`.
    pub fn code(&self) -> Option<ErrorCode> {
        if let Some(ErrorDetail::Text(text)) = &self.detail {
            let code = ErrorCode::from_wire(text.trim());
            let looks_like_code = !text.trim().is_empty() && !text.trim().contains(' ');
            if code.is_known() || looks_like_code {
                return Some(code);
            }
        }
        self.error.as_deref().map(ErrorCode::from_wire)
    }

    /// A human-readable message: `message`, a `detail` sentence, or the joined 422 issues.
    pub fn message(&self) -> Option<String> {
        if let Some(message) = &self.message {
            return Some(message.clone());
        }
        match &self.detail {
            Some(ErrorDetail::Text(text)) if self.code().is_none() => Some(text.clone()),
            Some(ErrorDetail::Issues(issues)) => Some(
                issues
                    .iter()
                    .map(|issue| {
                        let loc: Vec<String> = issue
                            .loc
                            .iter()
                            .map(|part| match part {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect();
                        format!("{}: {}", loc.join("."), issue.msg)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Some(ErrorDetail::Other(value)) => Some(value.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[
        0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
    ];
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
    ];

    #[test]
    fn seed_ratios_are_checked_and_other_is_sent_deliberately() {
        let err = GenerateRequest::new("x")
            .aspect_ratio(AspectRatio::Landscape16x9)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "aspect_ratio: \"16:9\" is not accepted by runblob; allowed: 1:1, 4:3, 3:4"
        );
        GenerateRequest::new("x")
            .aspect_ratio(AspectRatio::Other("16:9".into()))
            .validate()
            .unwrap();
    }

    #[test]
    fn reference_images_in_every_documented_form() {
        let jpeg_b64 = {
            let uri = media::data_uri(ImageFormat::Jpeg, JPEG);
            uri.trim_start_matches("data:image/jpeg;base64,").to_owned()
        };
        let request = GenerateRequest::new("collage")
            .image("https://example.com/ref1.jpg")
            .image(media::data_uri(ImageFormat::Png, PNG))
            .image(jpeg_b64);
        request.validate().unwrap();
    }

    #[test]
    fn embedded_images_must_be_what_they_claim() {
        let png_as_bare = media::data_uri(ImageFormat::Png, PNG)
            .trim_start_matches("data:image/png;base64,")
            .to_owned();
        let err = check_image("images[0]", &png_as_bare).unwrap_err();
        assert!(err.problem.contains("decoded as JPEG"), "{err}");

        let lying = media::data_uri(ImageFormat::Jpeg, PNG);
        assert!(check_image("images[0]", &lying).is_err());

        let gif = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
        let err = check_image("images[1]", gif).unwrap_err();
        assert_eq!(err.field, "images[1]");
        assert!(err.problem.contains("image/gif"), "{err}");

        assert!(check_image("images[0]", "ftp://example.com/a.jpg").is_err());
        assert!(check_image("images[0]", "!!!").is_err());
    }

    #[test]
    fn too_many_images_and_long_prompts_are_refused() {
        let mut request = GenerateRequest::new("x");
        for _ in 0..5 {
            request = request.image("https://example.com/a.jpg");
        }
        assert_eq!(
            request.validate().unwrap_err().to_string(),
            "images: has 5 images; the maximum is 4"
        );
        assert!(GenerateRequest::new("a".repeat(4001)).validate().is_err());
    }

    #[test]
    fn webhooks_need_https_except_to_a_local_receiver() {
        assert!(
            GenerateRequest::new("x")
                .callback_url("http://example.com/hook")
                .validate()
                .is_err()
        );
        GenerateRequest::new("x")
            .callback_url("https://example.com/hook")
            .validate()
            .unwrap();
        GenerateRequest::new("x")
            .callback_url("http://127.0.0.1:8080/hook")
            .validate()
            .unwrap();
    }

    #[test]
    fn error_bodies_in_every_shape_give_a_code_or_a_message() {
        let body: ErrorBody = serde_json::from_str(r#"{"detail":"INSUFFICIENT_CREDITS"}"#).unwrap();
        assert_eq!(body.code(), Some(ErrorCode::InsufficientCredits));
        let body: ErrorBody =
            serde_json::from_str(r#"{"detail":"Validation error: images format invalid"}"#)
                .unwrap();
        assert_eq!(body.code(), None);
        assert_eq!(
            body.message().as_deref(),
            Some("Validation error: images format invalid")
        );
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"Unauthorized","message":"Invalid API key"}"#)
                .unwrap();
        assert_eq!(body.code(), Some(ErrorCode::Unauthorized));
        assert_eq!(body.message().as_deref(), Some("Invalid API key"));
        let body: ErrorBody = serde_json::from_str(
            r#"{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"missing"}]}"#,
        )
        .unwrap();
        assert_eq!(
            body.message().as_deref(),
            Some("body.prompt: field required")
        );
        let body: ErrorBody = serde_json::from_str(r#"{"detail":"Task not found"}"#).unwrap();
        assert_eq!(body.code(), Some(ErrorCode::TaskNotFound));
    }

    #[test]
    fn failure_codes_are_read_from_the_message() {
        let failed: Generation = serde_json::from_str(
            r#"{"task_uuid":"t","status":"failed","prompt":"p","result_image_url":null,"message":"OPENAI_DECLINED"}"#,
        )
        .unwrap();
        assert_eq!(failed.failure_code(), Some(FailureCode::OpenaiDeclined));
        let new_code: Generation = serde_json::from_str(
            r#"{"task_uuid":"t","status":"failed","message":"GPU_MELTED: oops"}"#,
        )
        .unwrap();
        assert_eq!(
            new_code.failure_code(),
            Some(FailureCode::Other("GPU_MELTED".into()))
        );
    }
}
