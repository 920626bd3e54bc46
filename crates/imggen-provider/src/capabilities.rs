//! What a provider and each of its models can do, as data a caller can read (and `imggen
//! providers` prints), and that the generic planner ([`crate::plan::Planner`]) checks a
//! request against. Each provider crate fills them from its documented constants (these are
//! plain structs, built with struct literals, for that).

use std::time::Duration;

use imggen_types::AspectRatio;
use serde::{Serialize, Serializer};

use crate::cost::Cost;
use crate::id::ProviderId;
use crate::rate_limit::RateLimit;

/// What one provider offers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderCapabilities {
    /// The provider.
    pub provider: ProviderId,
    /// The model used when a request names none (`None`: the provider's default, sent without
    /// a `model` field).
    pub default_model: Option<String>,
    /// The models imggen knows, default first.
    pub models: Vec<ModelCapabilities>,
    /// Whether model ids imggen does not know are accepted and sent unchecked (a provider that
    /// serves many models through one API).
    pub other_models: bool,
    /// Whether the provider calls a webhook when a task ends.
    pub webhooks: bool,
    /// The documented per-key request budget, creates and polls together.
    pub rate_limit: Option<RateLimit>,
    /// How long a task usually takes, as documented.
    pub typical_duration: Option<TypicalDuration>,
}

/// What one model of a provider accepts and costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCapabilities {
    /// The model id as sent (`None`: the provider's default, sent without a model field).
    pub model: Option<String>,
    /// Accepted aspect ratios.
    pub aspect_ratios: Vec<AspectRatio>,
    /// The ratio used when none is sent; `None` means the model chooses.
    pub default_aspect_ratio: Option<AspectRatio>,
    /// The most images one task makes.
    pub max_images_per_task: u32,
    /// Accepted quality values (empty: the model takes none).
    pub qualities: Vec<String>,
    /// Accepted resolution values (empty: the model takes none).
    pub resolutions: Vec<String>,
    /// Whether the model takes a `background` setting.
    pub background: bool,
    /// Reference images.
    pub references: ReferenceCapabilities,
    /// Documented prices per image; empty when the provider reports the price per task, in
    /// its create's answer.
    pub prices: Vec<Price>,
}

/// Which reference images a model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReferenceCapabilities {
    /// The most references one request may carry.
    pub max_count: usize,
    /// `https://` URLs.
    pub https_url: bool,
    /// `http://` URLs.
    pub http_url: bool,
    /// `data:image/...;base64,` URIs.
    pub data_uri: bool,
    /// Local files and bytes (sent embedded).
    pub bytes: bool,
    /// The largest reference image, where documented.
    pub max_bytes: Option<u64>,
}

/// A documented price of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Price {
    /// The quality it applies to, if the price depends on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// The resolution it applies to, if the price depends on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The price of one image.
    pub per_image: Cost,
}

/// The documented range of a task's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypicalDuration {
    /// Shortest usual time.
    pub min: Duration,
    /// Longest usual time.
    pub max: Duration,
}

impl Serialize for TypicalDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut state = serializer.serialize_struct("TypicalDuration", 2)?;
        state.serialize_field("min_seconds", &self.min.as_secs())?;
        state.serialize_field("max_seconds", &self.max.as_secs())?;
        state.end()
    }
}

impl ProviderCapabilities {
    /// A model's capabilities: `None` asks for the default model. `None` back when the model
    /// is not one imggen knows.
    pub fn model(&self, model: Option<&str>) -> Option<&ModelCapabilities> {
        let wanted = model.or(self.default_model.as_deref());
        self.models
            .iter()
            .find(|candidate| candidate.model.as_deref() == wanted)
    }

    /// The names of the models imggen knows, for messages (`(default)` for an unnamed one).
    pub fn model_names(&self) -> Vec<String> {
        self.models
            .iter()
            .map(|m| m.model.clone().unwrap_or_else(|| "(default)".into()))
            .collect()
    }
}
