//! The one request type, whichever provider serves it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imggen_types::AspectRatio;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::id::ProviderId;

/// What to generate, in terms every provider understands; provider-only settings live in
/// [`ProviderOptions`].
///
/// ```
/// use imggen_provider::{GenerationRequest, Reference};
/// use imggen_types::AspectRatio;
///
/// let request = GenerationRequest::new("A lighthouse on a cliff at dusk")
///     .aspect_ratio(AspectRatio::Landscape16x9)
///     .n(2)
///     .reference(Reference::url("https://example.com/style.jpg"));
/// assert_eq!(request.n, 2);
/// ```
///
/// Provider-only settings (`resolution=2K` for runbase) are set through the provider that
/// reads them: [`ProviderOptions::set`], or `imggen_core::Imggen::set_option`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationRequest {
    /// What to draw.
    pub prompt: String,
    /// The width:height ratio; `None` leaves the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<AspectRatio>,
    /// Images wanted (default 1). Above a provider's per-task maximum this needs several
    /// tasks, each charged, which only [`PlanOptions::allow_extra_tasks`](crate::PlanOptions::allow_extra_tasks)
    /// permits.
    #[serde(default = "one")]
    pub n: u32,
    /// A quality value of the provider and model (e.g. `medium`/`high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Reference images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// The model, as the provider names it (default: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A URL the provider calls when the task ends (for providers that call webhooks).
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

/// A reference image: a URL the provider fetches, a local file, or bytes. Which forms a model
/// takes is in its capabilities. In JSON, bytes are base64: `{"bytes": "iVBORw0…"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// Settings only one provider has, by provider, as that provider's crate reads them: each is a
/// JSON object of the provider's own shape (`{"runbase": {"resolution": "2K", "input":
/// {"seed": 7}}}`), set from `KEY=VALUE` text as the provider reads it ([`ProviderOptions::set`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderOptions(BTreeMap<ProviderId, Map<String, Value>>);

/// A provider option that cannot be set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{provider} option {key:?}: {problem}")]
pub struct OptionError {
    /// The provider.
    pub provider: ProviderId,
    /// The key as given.
    pub key: String,
    /// What is wrong, and what is allowed.
    pub problem: String,
}

impl ProviderOptions {
    /// Whether no provider has an option.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Map::is_empty)
    }

    /// One provider's options (empty when it has none).
    pub fn of(&self, provider: ProviderId) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.0
            .get(&provider)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// One option of one provider, as text.
    pub fn text(&self, provider: ProviderId, key: &str) -> Option<&str> {
        self.of(provider).get(key).and_then(Value::as_str)
    }

    /// One provider's options, to change (a provider's own `set_option` writes here).
    pub fn of_mut(&mut self, provider: ProviderId) -> &mut Map<String, Value> {
        self.0.entry(provider).or_default()
    }

    /// The providers that have options.
    pub fn providers(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.0
            .iter()
            .filter(|(_, options)| !options.is_empty())
            .map(|(provider, _)| *provider)
    }

    /// Sets `key=value` for `provider`, as that provider reads it (`read`: its
    /// [`Provider::set_option`](crate::Provider::set_option), or its [`Registration`](crate::Registration)'s): unknown keys
    /// and values it cannot take are refused, naming what is allowed.
    pub fn set(
        &mut self,
        provider: ProviderId,
        key: &str,
        value: &str,
        read: impl FnOnce(&mut Map<String, Value>, &str, &str) -> Result<(), String>,
    ) -> Result<(), OptionError> {
        let error = |problem: String| OptionError {
            provider,
            key: key.to_owned(),
            problem,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(error("the value is empty".into()));
        }
        let mut options = self.of(provider).clone();
        read(&mut options, key.trim(), value).map_err(error)?;
        *self.of_mut(provider) = options;
        Ok(())
    }
}

/// How a provider without options of its own reads them: it refuses every key.
pub fn no_options(
    _options: &mut Map<String, Value>,
    _key: &str,
    _value: &str,
) -> Result<(), String> {
    Err(
        "there are no provider options here; use the common settings (aspect ratio, n, references)"
            .into(),
    )
}

/// How a provider reads one of its options from text (see [`ProviderOptions::set`]).
pub type OptionReader = fn(&mut Map<String, Value>, &str, &str) -> Result<(), String>;

#[cfg(test)]
mod tests {
    use super::*;

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
        // Options keep each provider's own shape through JSON.
        let with_options: GenerationRequest = serde_json::from_value(serde_json::json!({
            "prompt": "a cat",
            "options": {"runbase": {"resolution": "2K", "input": {"seed": 7}}}
        }))
        .unwrap();
        let runbase = ProviderId::new("runbase");
        assert_eq!(with_options.options.text(runbase, "resolution"), Some("2K"));
        assert_eq!(with_options.options.of(runbase)["input"]["seed"], 7);
        assert!(
            with_options
                .options
                .of(ProviderId::new("gptimg"))
                .is_empty()
        );
        assert_eq!(
            serde_json::to_value(&with_options).unwrap()["options"],
            serde_json::json!({"runbase": {"resolution": "2K", "input": {"seed": 7}}})
        );
    }
}
