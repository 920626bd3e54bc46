//! runbase (`runbase.net`): a generic runs API in front of many models.
//!
//! - Create: `POST /api/v1/runs` with [`CreateRunRequest`] `{"model", "input"}` → a [`Run`].
//! - Get: `GET /api/v1/runs/{id}` → a [`Run`] (camelCase; `costUsd` in integer micro-USD).
//! - Errors: `{"error": {"message", "code"}}` ([`ErrorBody`]).
//! - **Rate limit: 20 requests per 10 s per key, creates and polls together** ([`RATE_LIMIT`]).
//!
//! The three OpenAI image models have typed inputs ([`GptImage1Input`], [`GptImage15Input`],
//! [`GptImage2Input`]) whose limits come from [`ModelSpec`]; any other model takes raw JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::common::AspectRatio;
use crate::id::id_newtype;
use crate::money::MicroUsd;
use crate::open_enum::open_enum;
use crate::validation::{self, Schemes, ValidationError};

/// The longest prompt any of the OpenAI models accepts, in characters.
pub const PROMPT_MAX_CHARS: usize = 4000;

/// runbase's documented request budget: this many requests…
pub const RATE_LIMIT_REQUESTS: u32 = 20;
/// …per this window, per API key, creates and polls together.
pub const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(10);
/// Both halves of the documented rate limit.
pub const RATE_LIMIT: (u32, Duration) = (RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW);

id_newtype! {
    /// A run id, e.g. `run_01JABCDEF`.
    RunId, "id"
}

open_enum! {
    /// A model id.
    pub enum Model("runbase model") {
        /// OpenAI GPT Image 1: 1:1, 3:2, 2:3; up to 5 reference images.
        GptImage1 = "openai/gpt-image-1",
        /// OpenAI GPT Image 1.5: adds `quality` (medium, high); up to 4 reference images.
        GptImage1_5 = "openai/gpt-image-1.5",
        /// OpenAI GPT Image 2: ten ratios and `resolution` (1K, 2K, 4K); up to 4 reference images.
        GptImage2 = "openai/gpt-image-2",
    }
}

open_enum! {
    /// `quality` of `openai/gpt-image-1.5`.
    pub enum Quality("runbase quality") {
        /// `medium` ($0.03)
        Medium = "medium",
        /// `high` ($0.16)
        High = "high",
    }
}

open_enum! {
    /// `resolution` of `openai/gpt-image-2`.
    pub enum Resolution("runbase resolution") {
        /// `1K` ($0.05)
        OneK = "1K",
        /// `2K` ($0.07)
        TwoK = "2K",
        /// `4K` ($0.12)
        FourK = "4K",
    }
}

open_enum! {
    /// A run's `status`.
    pub enum RunStatus("runbase status") {
        /// Accepted, queued.
        Pending = "pending",
        /// Running.
        Processing = "processing",
        /// Done: `output.urls` holds the results.
        Succeeded = "succeeded",
        /// Failed; `error` says why; the charge is refunded.
        Failed = "failed",
    }
}

impl RunStatus {
    /// Whether the run will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

open_enum! {
    /// `error.code` of an error response.
    pub enum ErrorCode("runbase error code") {
        /// 400: the body is not JSON.
        InvalidJson = "invalid_json",
        /// 400: no `model`.
        MissingModel = "missing_model",
        /// 400: no `input`.
        MissingInput = "missing_input",
        /// 400: `input` does not match the model's schema.
        InvalidInput = "invalid_input",
        /// 400: no such model.
        ModelNotFound = "model_not_found",
        /// 401: no key.
        MissingApiKey = "missing_api_key",
        /// 401: the key is not valid.
        InvalidApiKey = "invalid_api_key",
        /// 402: the balance cannot pay for the run.
        InsufficientBalance = "insufficient_balance",
        /// 403: the key's spend limit is reached.
        ApiKeySpendLimitExceeded = "api_key_spend_limit_exceeded",
        /// 403: the caller's IP is not on the key's allow list.
        IpNotAllowed = "ip_not_allowed",
        /// 404: no such run for this key.
        RunNotFound = "run_not_found",
        /// 429: over 20 requests in 10 s.
        RateLimited = "RATE_LIMITED",
        /// 429: a usage quota is exhausted.
        UsageExceeded = "USAGE_EXCEEDED",
    }
}

impl ErrorCode {
    /// What to do about this error, as runbase's error reference advises; `None` for a code
    /// this version does not know.
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::InvalidJson => {
                "the body that arrived was not valid JSON: check any proxy in between, else report an imggen bug"
            }
            ErrorCode::MissingModel => "include \"model\": \"provider/name\" in the request",
            ErrorCode::MissingInput => "include \"input\": {...}, a JSON object, in the request",
            ErrorCode::InvalidInput => {
                "check the model's API reference on runbase.net for required fields and valid values"
            }
            ErrorCode::ModelNotFound => "check the model id against the models page on runbase.net",
            ErrorCode::MissingApiKey => "set RUNBASE_API_KEY (keys start with sk-)",
            ErrorCode::InvalidApiKey => {
                "the key is invalid, disabled or expired: create or re-enable one in Settings → API Keys"
            }
            ErrorCode::InsufficientBalance => "top up your balance in Settings → Credits",
            ErrorCode::ApiKeySpendLimitExceeded => {
                "the key's lifetime spend limit is reached: raise it in Settings → API Keys"
            }
            ErrorCode::IpNotAllowed => {
                "add this machine's IP to the key's allowed list in Settings → API Keys"
            }
            ErrorCode::RunNotFound => {
                "check the run id, and that the run was created with this API key"
            }
            ErrorCode::RateLimited => {
                "over 20 requests in 10 s for this key (creates and polls together): wait, then retry"
            }
            ErrorCode::UsageExceeded => {
                "the key's usage quota is exhausted: contact support@runbase.net or create a new key"
            }
            _ => return None,
        })
    }
}

/// What one OpenAI model on runbase accepts and costs, as documented.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelSpec {
    /// The model id.
    pub model: Model,
    /// Accepted aspect ratios; the first is the default.
    pub aspect_ratios: &'static [AspectRatio],
    /// The most reference images (`image_urls`).
    pub max_reference_images: usize,
    /// The largest reference image, where documented.
    pub max_reference_image_bytes: Option<u64>,
    /// Accepted `quality` values (empty: the model takes none).
    pub qualities: &'static [Quality],
    /// Accepted `resolution` values (empty: the model takes none).
    pub resolutions: &'static [Resolution],
}

/// `openai/gpt-image-1`.
pub const GPT_IMAGE_1: ModelSpec = ModelSpec {
    model: Model::GptImage1,
    aspect_ratios: &[
        AspectRatio::Square,
        AspectRatio::Landscape3x2,
        AspectRatio::Portrait2x3,
    ],
    max_reference_images: 5,
    max_reference_image_bytes: Some(4 * 1024 * 1024),
    qualities: &[],
    resolutions: &[],
};

/// `openai/gpt-image-1.5`.
pub const GPT_IMAGE_1_5: ModelSpec = ModelSpec {
    model: Model::GptImage1_5,
    aspect_ratios: &[
        AspectRatio::Square,
        AspectRatio::Landscape3x2,
        AspectRatio::Portrait2x3,
    ],
    max_reference_images: 4,
    max_reference_image_bytes: None,
    qualities: &[Quality::Medium, Quality::High],
    resolutions: &[],
};

/// `openai/gpt-image-2`.
pub const GPT_IMAGE_2: ModelSpec = ModelSpec {
    model: Model::GptImage2,
    aspect_ratios: &[
        AspectRatio::Square,
        AspectRatio::Portrait2x3,
        AspectRatio::Landscape3x2,
        AspectRatio::Portrait3x4,
        AspectRatio::Landscape4x3,
        AspectRatio::Portrait4x5,
        AspectRatio::Landscape5x4,
        AspectRatio::Portrait9x16,
        AspectRatio::Landscape16x9,
        AspectRatio::Landscape21x9,
    ],
    max_reference_images: 4,
    max_reference_image_bytes: None,
    qualities: &[],
    resolutions: &[Resolution::OneK, Resolution::TwoK, Resolution::FourK],
};

/// Every model with a typed input, in documentation order.
pub const MODELS: &[ModelSpec] = &[GPT_IMAGE_1, GPT_IMAGE_1_5, GPT_IMAGE_2];

impl ModelSpec {
    /// The spec of a model imggen knows; `None` for any other.
    pub fn of(model: &Model) -> Option<&'static ModelSpec> {
        MODELS.iter().find(|spec| &spec.model == model)
    }

    /// The documented price of one run. `None` when the model or a setting is unknown.
    ///
    /// Where a setting is omitted, the provider's default applies: medium quality and 1K
    /// resolution (the docs do not name the defaults; the cheaper tier is assumed).
    pub fn price(
        &self,
        quality: Option<&Quality>,
        resolution: Option<&Resolution>,
    ) -> Option<MicroUsd> {
        let micro = match &self.model {
            Model::GptImage1 => 50_000,
            Model::GptImage1_5 => match quality.unwrap_or(&Quality::Medium) {
                Quality::Medium => 30_000,
                Quality::High => 160_000,
                Quality::Other(_) => return None,
            },
            Model::GptImage2 => match resolution.unwrap_or(&Resolution::OneK) {
                Resolution::OneK => 50_000,
                Resolution::TwoK => 70_000,
                Resolution::FourK => 120_000,
                Resolution::Other(_) => return None,
            },
            Model::Other(_) => return None,
        };
        Some(MicroUsd(micro))
    }

    /// Checks the fields every OpenAI model shares, then the model's own settings.
    fn check(
        &self,
        prompt: &str,
        aspect_ratio: Option<&AspectRatio>,
        image_urls: &[String],
        quality: Option<&Quality>,
        resolution: Option<&Resolution>,
    ) -> Result<(), ValidationError> {
        let name = self.model.as_str();
        validation::check_prompt(prompt, Some(PROMPT_MAX_CHARS)).map_err(in_input)?;
        if let Some(ratio) = aspect_ratio
            && ratio.is_known()
            && !self.aspect_ratios.contains(ratio)
        {
            return Err(ValidationError::not_allowed(
                "input.aspect_ratio",
                ratio,
                name,
                self.aspect_ratios,
            ));
        }
        if let Some(quality) = quality
            && quality.is_known()
            && !self.qualities.contains(quality)
        {
            return Err(ValidationError::not_allowed(
                "input.quality",
                quality,
                name,
                self.qualities,
            ));
        }
        if let Some(resolution) = resolution
            && resolution.is_known()
            && !self.resolutions.contains(resolution)
        {
            return Err(ValidationError::not_allowed(
                "input.resolution",
                resolution,
                name,
                self.resolutions,
            ));
        }
        validation::check_count(
            "input.image_urls",
            image_urls.len(),
            self.max_reference_images,
            "URLs",
        )?;
        for (index, url) in image_urls.iter().enumerate() {
            validation::check_url(
                &format!("input.image_urls[{index}]"),
                url,
                Schemes::HttpOrHttps,
                false,
            )?;
        }
        Ok(())
    }
}

fn in_input(mut error: ValidationError) -> ValidationError {
    error.field = format!("input.{}", error.field);
    error
}

/// A typed `input` for one model.
pub trait ModelInput: Serialize {
    /// The model this input is for.
    fn model(&self) -> Model;

    /// Checks the model's documented limits.
    fn validate(&self) -> Result<(), ValidationError>;

    /// The documented price of the run this input creates.
    fn price(&self) -> Option<MicroUsd>;
}

/// `input` of `openai/gpt-image-1`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct GptImage1Input {
    /// What to draw, 1–4000 characters.
    #[cfg_attr(feature = "json-schema", schemars(length(min = 1, max = PROMPT_MAX_CHARS), pattern(crate::schema::NOT_BLANK)))]
    pub prompt: String,
    /// 1:1 (default), 3:2 or 2:3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gpt_image_1_aspect_ratio")
    )]
    pub aspect_ratio: Option<AspectRatio>,
    /// Up to 5 reference image URLs, 4 MB each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "json-schema", schemars(length(max = GPT_IMAGE_1.max_reference_images), inner(pattern(crate::schema::HTTP_URL))))]
    pub image_urls: Vec<String>,
}

/// `input` of `openai/gpt-image-1.5`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct GptImage15Input {
    /// What to draw, 1–4000 characters.
    #[cfg_attr(feature = "json-schema", schemars(length(min = 1, max = PROMPT_MAX_CHARS), pattern(crate::schema::NOT_BLANK)))]
    pub prompt: String,
    /// 1:1 (default), 3:2 or 2:3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gpt_image_1_5_aspect_ratio")
    )]
    pub aspect_ratio: Option<AspectRatio>,
    /// `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gpt_image_1_5_quality")
    )]
    pub quality: Option<Quality>,
    /// Up to 4 reference image URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "json-schema", schemars(length(max = GPT_IMAGE_1_5.max_reference_images), inner(pattern(crate::schema::HTTP_URL))))]
    pub image_urls: Vec<String>,
}

/// `input` of `openai/gpt-image-2`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct GptImage2Input {
    /// What to draw, 1–4000 characters.
    #[cfg_attr(feature = "json-schema", schemars(length(min = 1, max = PROMPT_MAX_CHARS), pattern(crate::schema::NOT_BLANK)))]
    pub prompt: String,
    /// One of ten ratios; 1:1 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gpt_image_2_aspect_ratio")
    )]
    pub aspect_ratio: Option<AspectRatio>,
    /// `1K` (default), `2K` or `4K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(schema_with = "crate::schema::gpt_image_2_resolution")
    )]
    pub resolution: Option<Resolution>,
    /// Up to 4 reference image URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "json-schema", schemars(length(max = GPT_IMAGE_2.max_reference_images), inner(pattern(crate::schema::HTTP_URL))))]
    pub image_urls: Vec<String>,
}

macro_rules! input_setters {
    ($name:ident) => {
        impl $name {
            /// An input with only a prompt.
            pub fn new(prompt: impl Into<String>) -> Self {
                $name {
                    prompt: prompt.into(),
                    ..Default::default()
                }
            }

            /// Sets the aspect ratio.
            pub fn aspect_ratio(mut self, ratio: AspectRatio) -> Self {
                self.aspect_ratio = Some(ratio);
                self
            }

            /// Adds a reference image URL.
            pub fn image_url(mut self, url: impl Into<String>) -> Self {
                self.image_urls.push(url.into());
                self
            }
        }
    };
}

input_setters!(GptImage1Input);
input_setters!(GptImage15Input);
input_setters!(GptImage2Input);

impl GptImage15Input {
    /// Sets the quality.
    pub fn quality(mut self, quality: Quality) -> Self {
        self.quality = Some(quality);
        self
    }
}

impl GptImage2Input {
    /// Sets the resolution.
    pub fn resolution(mut self, resolution: Resolution) -> Self {
        self.resolution = Some(resolution);
        self
    }
}

impl ModelInput for GptImage1Input {
    fn model(&self) -> Model {
        Model::GptImage1
    }

    fn validate(&self) -> Result<(), ValidationError> {
        GPT_IMAGE_1.check(
            &self.prompt,
            self.aspect_ratio.as_ref(),
            &self.image_urls,
            None,
            None,
        )
    }

    fn price(&self) -> Option<MicroUsd> {
        GPT_IMAGE_1.price(None, None)
    }
}

impl ModelInput for GptImage15Input {
    fn model(&self) -> Model {
        Model::GptImage1_5
    }

    fn validate(&self) -> Result<(), ValidationError> {
        GPT_IMAGE_1_5.check(
            &self.prompt,
            self.aspect_ratio.as_ref(),
            &self.image_urls,
            self.quality.as_ref(),
            None,
        )
    }

    fn price(&self) -> Option<MicroUsd> {
        GPT_IMAGE_1_5.price(self.quality.as_ref(), None)
    }
}

impl ModelInput for GptImage2Input {
    fn model(&self) -> Model {
        Model::GptImage2
    }

    fn validate(&self) -> Result<(), ValidationError> {
        GPT_IMAGE_2.check(
            &self.prompt,
            self.aspect_ratio.as_ref(),
            &self.image_urls,
            None,
            self.resolution.as_ref(),
        )
    }

    fn price(&self) -> Option<MicroUsd> {
        GPT_IMAGE_2.price(None, self.resolution.as_ref())
    }
}

/// The body of `POST /api/v1/runs`: a model id and that model's input as JSON.
///
/// ```
/// use imggen_types::runbase::{CreateRunRequest, GptImage15Input, Model, Quality};
/// // Typed, for the models imggen knows…
/// let typed = CreateRunRequest::from_input(
///     &GptImage15Input::new("A ceramic lamp").quality(Quality::High),
/// );
/// typed.validate().unwrap();
/// // …or raw JSON, for any model.
/// let raw = CreateRunRequest::new(
///     Model::Other("google/nano-banana-2".into()),
///     serde_json::json!({"prompt": "A ceramic lamp"}),
/// );
/// raw.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "json-schema",
    schemars(transform = crate::schema::runbase_inputs_by_model)
)]
#[non_exhaustive]
pub struct CreateRunRequest {
    /// The model id, e.g. `openai/gpt-image-1`.
    pub model: Model,
    /// The model's input: a JSON object, checked against the model's documented schema for
    /// the models imggen knows.
    #[cfg_attr(feature = "json-schema", schemars(extend("type" = "object")))]
    pub input: serde_json::Value,
}

impl CreateRunRequest {
    /// A request with raw JSON input, for any model.
    pub fn new(model: Model, input: serde_json::Value) -> Self {
        CreateRunRequest { model, input }
    }

    /// A request from a typed input.
    pub fn from_input<I: ModelInput>(input: &I) -> Self {
        CreateRunRequest {
            model: input.model(),
            // Typed inputs hold only strings, options and lists: they always serialize.
            input: serde_json::to_value(input).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Checks the request: `input` must be a JSON object; for a model imggen knows, it must
    /// also match that model's documented schema. Other models' inputs are sent unchecked.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !self.input.is_object() {
            return Err(ValidationError::new(
                "input",
                "must be a JSON object, e.g. {\"prompt\": \"...\"}",
            ));
        }
        fn typed<I: ModelInput + serde::de::DeserializeOwned>(
            input: &serde_json::Value,
        ) -> Result<(), ValidationError> {
            let typed: I = serde_json::from_value(input.clone())
                .map_err(|err| ValidationError::new("input", err.to_string()))?;
            typed.validate()?;
            // In raw JSON a value outside a documented field's set is far likelier a typo than
            // a deliberate new value (that is what the typed input's `Other` is for), so it is
            // refused here. Fields the model's schema does not name still pass through.
            for field in ["aspect_ratio", "quality", "resolution"] {
                let Some(value) = input.get(field).and_then(serde_json::Value::as_str) else {
                    continue;
                };
                let known = match field {
                    "aspect_ratio" => AspectRatio::from_wire(value).is_known(),
                    "quality" => Quality::from_wire(value).is_known(),
                    _ => Resolution::from_wire(value).is_known(),
                };
                if !known {
                    return Err(ValidationError::new(
                        format!("input.{field}"),
                        format!(
                            "{value:?} is not a documented value; to send it on purpose, use the typed input with `Other`"
                        ),
                    ));
                }
            }
            Ok(())
        }
        match self.model {
            Model::GptImage1 => typed::<GptImage1Input>(&self.input),
            Model::GptImage1_5 => typed::<GptImage15Input>(&self.input),
            Model::GptImage2 => typed::<GptImage2Input>(&self.input),
            Model::Other(ref id) if id.trim().is_empty() => {
                Err(ValidationError::new("model", "must not be empty"))
            }
            Model::Other(_) => Ok(()),
        }
    }

    /// The documented price of the run, for the models imggen knows.
    pub fn price(&self) -> Option<MicroUsd> {
        let spec = ModelSpec::of(&self.model)?;
        let setting = |name: &str| self.input.get(name).and_then(serde_json::Value::as_str);
        let quality = setting("quality").map(Quality::from_wire);
        let resolution = setting("resolution").map(Resolution::from_wire);
        spec.price(quality.as_ref(), resolution.as_ref())
    }
}

/// A run, as create and get return it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// `run_…`
    pub id: RunId,
    /// The model id.
    pub model: Model,
    /// Where the run is.
    pub status: RunStatus,
    /// What the run costs, in integer micro-USD (`40000` = $0.04).
    #[serde(default)]
    pub cost_usd: Option<MicroUsd>,
    /// The results, once succeeded.
    #[serde(default)]
    pub output: Option<RunOutput>,
    /// ISO 8601.
    #[serde(default)]
    pub created_at: Option<String>,
    /// ISO 8601, once terminal.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// Why the run failed (probably a string; kept as any JSON).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

impl Run {
    /// The result URLs, in order (empty until succeeded).
    pub fn output_urls(&self) -> &[String] {
        self.output.as_ref().map_or(&[], |output| &output.urls)
    }

    /// `error` in words.
    pub fn error_message(&self) -> Option<String> {
        crate::gptimg::describe_json_error(self.error.as_ref()?)
    }
}

/// A run's `output`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct RunOutput {
    /// Generated output URLs.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// An error answer: `{"error": {"message", "code"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// The `error` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ErrorObject {
    /// What happened, in words.
    #[serde(default)]
    pub message: String,
    /// E.g. `run_not_found`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_model_has_its_own_ratios() {
        let err = GptImage1Input::new("x")
            .aspect_ratio(AspectRatio::Landscape16x9)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "input.aspect_ratio: \"16:9\" is not accepted by openai/gpt-image-1; allowed: 1:1, 3:2, 2:3"
        );
        GptImage2Input::new("x")
            .aspect_ratio(AspectRatio::Landscape16x9)
            .validate()
            .unwrap();
    }

    #[test]
    fn reference_limits_differ_by_model() {
        let five = |mut input: GptImage1Input| {
            for i in 0..5 {
                input = input.image_url(format!("https://example.com/{i}.png"));
            }
            input
        };
        five(GptImage1Input::new("x")).validate().unwrap();
        let mut too_many = GptImage2Input::new("x");
        for i in 0..5 {
            too_many = too_many.image_url(format!("https://example.com/{i}.png"));
        }
        assert_eq!(
            too_many.validate().unwrap_err().to_string(),
            "input.image_urls: has 5 URLs; the maximum is 4"
        );
    }

    #[test]
    fn raw_input_for_a_known_model_is_checked_against_its_schema() {
        let request =
            CreateRunRequest::new(Model::GptImage1, json!({"prompt": "x", "quality": "high"}));
        // gpt-image-1 has no quality field: unknown keys pass (sent deliberately), known ones are checked.
        request.validate().unwrap();
        // A documented field with an undocumented value is a typo until proven otherwise.
        let request = CreateRunRequest::new(
            Model::GptImage1_5,
            json!({"prompt": "x", "quality": "ultra"}),
        );
        assert_eq!(request.validate().unwrap_err().field, "input.quality");
        let request =
            CreateRunRequest::new(Model::GptImage2, json!({"prompt": "x", "resolution": "8K"}));
        assert_eq!(request.validate().unwrap_err().field, "input.resolution");
        let request = CreateRunRequest::new(Model::GptImage1, json!({"aspect_ratio": "1:1"}));
        assert!(
            request
                .validate()
                .unwrap_err()
                .to_string()
                .contains("prompt")
        );
        let request = CreateRunRequest::new(Model::GptImage1, json!("a prompt"));
        assert!(request.validate().is_err());
    }

    #[test]
    fn prices_follow_quality_and_resolution() {
        let price = |input: serde_json::Value, model| CreateRunRequest::new(model, input).price();
        assert_eq!(
            price(json!({"prompt": "x"}), Model::GptImage1),
            Some(MicroUsd(50_000))
        );
        assert_eq!(
            price(
                json!({"prompt": "x", "quality": "high"}),
                Model::GptImage1_5
            ),
            Some(MicroUsd(160_000))
        );
        assert_eq!(
            price(json!({"prompt": "x", "resolution": "4K"}), Model::GptImage2),
            Some(MicroUsd(120_000))
        );
        assert_eq!(
            price(json!({"prompt": "x"}), Model::Other("x/y".into())),
            None
        );
    }

    #[test]
    fn runs_are_camel_case_with_micro_usd() {
        let run: Run = serde_json::from_value(json!({
            "id": "run_1", "model": "openai/gpt-image-1", "status": "succeeded", "costUsd": 40000,
            "output": {"urls": ["https://cdn.runbase.net/a.png"]},
            "createdAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:09Z", "error": null
        }))
        .unwrap();
        assert_eq!(run.cost_usd.unwrap().to_usd().to_plain_string(), "0.04");
        assert_eq!(run.output_urls(), ["https://cdn.runbase.net/a.png"]);
    }
}
