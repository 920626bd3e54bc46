//! The one request type, whichever provider serves it.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imggen_types::AspectRatio;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::provider::ProviderId;

/// What to generate, in terms every provider understands; provider-only settings live in
/// [`ProviderOptions`].
///
/// ```
/// use imggen_core::{GenerationRequest, ProviderId, Reference};
/// use imggen_types::AspectRatio;
///
/// let mut request = GenerationRequest::new("A lighthouse on a cliff at dusk")
///     .aspect_ratio(AspectRatio::Landscape16x9)
///     .n(2)
///     .reference(Reference::url("https://example.com/style.jpg"));
/// request.options.set(ProviderId::Runbase, "resolution", "2K")?;
/// # Ok::<(), imggen_core::OptionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationRequest {
    /// What to draw.
    pub prompt: String,
    /// The width:height ratio; `None` leaves the provider's default (runblob: the model
    /// chooses; gptimg and runbase: 1:1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<AspectRatio>,
    /// Images wanted (default 1). Above a provider's per-task maximum this needs several
    /// tasks, each charged, which only [`allow_extra_tasks`](crate::ImggenBuilder::allow_extra_tasks)
    /// permits.
    #[serde(default = "one")]
    pub n: u32,
    /// A quality value of the provider and model (runbase `openai/gpt-image-1.5`:
    /// `medium`/`high`; runblob `chatgpt-2.5`: `flare`/`sunburst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Reference images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// The model: a runbase model id (default `openai/gpt-image-2`), a runblob model
    /// (`gpt-5-2`, `chatgpt-2.5`; default: none sent), or gptimg's only model `gpt-image-2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A URL the provider calls when the task ends (runblob only; https, or http to a
    /// loopback receiver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Settings only one provider has.
    #[serde(default, skip_serializing_if = "ProviderOptions::is_empty")]
    pub options: ProviderOptions,
}

fn one() -> u32 {
    1
}

impl GenerationRequest {
    /// One image of `prompt`, every other setting left to the provider.
    pub fn new(prompt: impl Into<String>) -> Self {
        GenerationRequest {
            prompt: prompt.into(),
            aspect_ratio: None,
            n: 1,
            quality: None,
            references: Vec::new(),
            model: None,
            webhook: None,
            options: ProviderOptions::default(),
        }
    }

    /// Sets the aspect ratio.
    pub fn aspect_ratio(mut self, ratio: AspectRatio) -> Self {
        self.aspect_ratio = Some(ratio);
        self
    }

    /// Sets how many images to make.
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// Sets the quality.
    pub fn quality(mut self, quality: impl Into<String>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Adds a reference image.
    pub fn reference(mut self, reference: Reference) -> Self {
        self.references.push(reference);
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the webhook URL.
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }

    /// Sets the provider-specific options.
    pub fn options(mut self, options: ProviderOptions) -> Self {
        self.options = options;
        self
    }
}

/// A reference image: a URL the provider fetches, a local file, or bytes.
///
/// Only runblob accepts files and bytes (sent as data URIs); gptimg takes https URLs and
/// runbase http(s) URLs. In JSON, bytes are base64: `{"bytes": "iVBORw0…"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reference {
    /// An `https://` (or `http://`) URL the provider downloads itself.
    Url(String),
    /// A local file, read once per submission, before the first create.
    File(PathBuf),
    /// Image bytes (JPEG, PNG or WEBP).
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
}

impl Reference {
    /// A URL.
    pub fn url(url: impl Into<String>) -> Self {
        Reference::Url(url.into())
    }

    /// A local file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Reference::File(path.into())
    }

    /// Bytes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Reference::Bytes(bytes.into())
    }

    /// The form, as messages name it: `https URL`, `http URL`, `data URI`, `local file`,
    /// `bytes`, or `value that is not a URL`.
    pub fn form(&self) -> &'static str {
        match self {
            Reference::Url(url) => {
                let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
                if lower.starts_with("https://") {
                    "https URL"
                } else if lower.starts_with("http://") {
                    "http URL"
                } else if lower.starts_with("data:") {
                    "data URI"
                } else {
                    "value that is not a URL"
                }
            }
            Reference::File(_) => "local file",
            Reference::Bytes(_) => "bytes",
        }
    }

    /// A short description for messages (a URL cut to 80 characters, a path, a byte count).
    pub fn describe(&self) -> String {
        match self {
            Reference::Url(url) => {
                let cut: String = url.chars().take(80).collect();
                if cut.len() < url.len() {
                    format!("{cut}…")
                } else {
                    cut
                }
            }
            Reference::File(path) => path.display().to_string(),
            Reference::Bytes(bytes) => format!("{} bytes", bytes.len()),
        }
    }
}

impl fmt::Debug for Reference {
    /// Sizes, not payloads: a request with a 20 MB image stays loggable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Url(_) => f.debug_tuple("Url").field(&self.describe()).finish(),
            Reference::File(path) => f.debug_tuple("File").field(path).finish(),
            Reference::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

mod base64_bytes {
    use super::*;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        imggen_types::media::decode_base64(&text)
            .ok_or_else(|| serde::de::Error::custom("reference bytes are not valid base64"))
    }
}

/// Settings only one provider has, namespaced by provider. Set them from `KEY=VALUE` strings
/// with [`set`](Self::set) (what the CLI's `--option` does).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderOptions {
    /// runblob's settings of later API versions.
    #[serde(default, skip_serializing_if = "RunblobOptions::is_empty")]
    pub runblob: RunblobOptions,
    /// runbase's model settings.
    #[serde(default, skip_serializing_if = "RunbaseOptions::is_empty")]
    pub runbase: RunbaseOptions,
    /// gptimg has no settings beyond the common ones.
    #[serde(default, skip_serializing_if = "GptimgOptions::is_empty")]
    pub gptimg: GptimgOptions,
}

/// runblob-only settings. Each overrides the common field of the same name for runblob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunblobOptions {
    /// `gpt-5-2` or `chatgpt-2.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `flare` or `sunburst` (`chatgpt-2.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// A background setting (`chatgpt-2.5`), sent as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
}

impl RunblobOptions {
    fn is_empty(&self) -> bool {
        self == &RunblobOptions::default()
    }
}

/// runbase-only settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunbaseOptions {
    /// `1K`, `2K` or `4K` (`openai/gpt-image-2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Extra fields of the model's `input`, sent as given (for models and fields imggen does
    /// not know). They may not repeat a field the common request sets.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub input: serde_json::Map<String, serde_json::Value>,
}

impl RunbaseOptions {
    fn is_empty(&self) -> bool {
        self.resolution.is_none() && self.input.is_empty()
    }
}

/// gptimg-only settings: none today.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GptimgOptions {}

impl GptimgOptions {
    fn is_empty(&self) -> bool {
        true
    }
}

/// A provider option that could not be set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{provider} option {key:?}: {problem}")]
pub struct OptionError {
    /// The provider.
    pub provider: ProviderId,
    /// The key as given.
    pub key: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl ProviderOptions {
    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.runblob.is_empty() && self.runbase.is_empty() && self.gptimg.is_empty()
    }

    /// Sets one option from text.
    ///
    /// - runblob: `model`, `quality`, `background`.
    /// - runbase: `resolution`, and `input.<field>` for any extra input field (the value is
    ///   read as JSON when it is JSON — `3`, `true`, `["a"]` — and as a string otherwise).
    /// - gptimg: none.
    ///
    /// An unknown key is an error that lists the allowed ones. Values are checked when the
    /// request is planned against a model.
    pub fn set(&mut self, provider: ProviderId, key: &str, value: &str) -> Result<(), OptionError> {
        let error = |problem: String| OptionError {
            provider,
            key: key.to_owned(),
            problem,
        };
        let key_trimmed = key.trim();
        let value = value.trim();
        if value.is_empty() {
            return Err(error("the value is empty".into()));
        }
        match (provider, key_trimmed) {
            (ProviderId::Runblob, "model") => self.runblob.model = Some(value.to_owned()),
            (ProviderId::Runblob, "quality") => self.runblob.quality = Some(value.to_owned()),
            (ProviderId::Runblob, "background") => {
                self.runblob.background = Some(value.to_owned());
            }
            (ProviderId::Runbase, "resolution") => {
                self.runbase.resolution = Some(value.to_owned());
            }
            (ProviderId::Runbase, field) if field.starts_with("input.") => {
                let name = &field["input.".len()..];
                if name.is_empty() {
                    return Err(error("name the input field: input.<field>=<value>".into()));
                }
                let parsed = serde_json::from_str(value)
                    .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
                self.runbase.input.insert(name.to_owned(), parsed);
            }
            (ProviderId::Runblob, _) => {
                return Err(error(
                    "unknown key; allowed: model, quality, background".into(),
                ));
            }
            (ProviderId::Runbase, _) => {
                return Err(error(
                    "unknown key; allowed: resolution, input.<field> (any extra input field)"
                        .into(),
                ));
            }
            (ProviderId::Gptimg, _) => {
                return Err(error(
                    "gptimg has no provider options; use the common settings (aspect ratio, n, references)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Sets one option from `KEY=VALUE`.
    pub fn set_pair(&mut self, provider: ProviderId, pair: &str) -> Result<(), OptionError> {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(OptionError {
                provider,
                key: pair.to_owned(),
                problem: "expected KEY=VALUE".into(),
            });
        };
        self.set(provider, key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_set_from_text_and_unknown_keys_list_the_allowed_ones() {
        let mut options = ProviderOptions::default();
        options
            .set(ProviderId::Runbase, "resolution", "2K")
            .unwrap();
        options
            .set_pair(ProviderId::Runbase, "input.seed=42")
            .unwrap();
        options
            .set_pair(ProviderId::Runbase, "input.style=vivid")
            .unwrap();
        options
            .set(ProviderId::Runblob, "quality", "flare")
            .unwrap();
        assert_eq!(options.runbase.resolution.as_deref(), Some("2K"));
        assert_eq!(options.runbase.input["seed"], serde_json::json!(42));
        assert_eq!(options.runbase.input["style"], serde_json::json!("vivid"));

        let err = options
            .set(ProviderId::Runblob, "colour", "red")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "runblob option \"colour\": unknown key; allowed: model, quality, background"
        );
        assert!(options.set(ProviderId::Gptimg, "n", "2").is_err());
        assert!(options.set_pair(ProviderId::Runbase, "resolution").is_err());
        assert!(options.set(ProviderId::Runbase, "input.", "x").is_err());
    }

    #[test]
    fn requests_round_trip_through_json_with_bytes_as_base64() {
        let request = GenerationRequest::new("a cat")
            .aspect_ratio(AspectRatio::Square)
            .reference(Reference::bytes(vec![1, 2, 3]))
            .reference(Reference::file("sketch.png"));
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "prompt": "a cat",
                "aspect_ratio": "1:1",
                "n": 1,
                "references": [{"bytes": "AQID"}, {"file": "sketch.png"}]
            })
        );
        let back: GenerationRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        let minimal: GenerationRequest = serde_json::from_str(r#"{"prompt":"x"}"#).unwrap();
        assert_eq!(minimal.n, 1);
    }

    #[test]
    fn debug_shows_sizes_not_payloads() {
        let big = Reference::bytes(vec![0u8; 1_000_000]);
        assert_eq!(format!("{big:?}"), "Bytes(1000000 bytes)");
        assert_eq!(Reference::url("http://x.example/a").form(), "http URL");
        assert_eq!(
            Reference::url("data:image/png;base64,AA").form(),
            "data URI"
        );
    }
}
