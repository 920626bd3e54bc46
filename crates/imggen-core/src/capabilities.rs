//! What each provider and model can do, as data a caller can read (and `imggen providers`
//! prints). Every number comes from imggen-types' documented constants; nothing is restated.

use std::time::Duration;

use imggen_types::{AspectRatio, gptimg, runbase, runblob};
use serde::{Serialize, Serializer};

use crate::budget::RateLimit;
use crate::cost::Cost;
use crate::provider::ProviderId;

/// The runbase model used when a request names none. `openai/gpt-image-2` has the most ratios
/// and resolutions of runbase's documented models.
pub const RUNBASE_DEFAULT_MODEL: &str = "openai/gpt-image-2";
/// gptimg's only model.
pub const GPTIMG_MODEL: &str = "gpt-image-2";

/// What one provider offers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProviderCapabilities {
    /// The provider.
    pub provider: ProviderId,
    /// The model used when a request names none (`None`: runblob's default, sent without a
    /// `model` field).
    pub default_model: Option<String>,
    /// The models imggen knows, default first.
    pub models: Vec<ModelCapabilities>,
    /// Whether model ids imggen does not know are accepted and sent unchecked (runbase serves
    /// many models through one API).
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
#[non_exhaustive]
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
    /// Documented prices per image; empty when the provider reports the price per task
    /// (runblob's `price`).
    pub prices: Vec<Price>,
}

/// Which reference images a model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// runblob: "Image generation typically takes 1-3 minutes".
pub const RUNBLOB_TYPICAL: TypicalDuration = TypicalDuration {
    min: Duration::from_secs(60),
    max: Duration::from_secs(180),
};
/// gptimg: "45-second round trip", "~45–60 s".
pub const GPTIMG_TYPICAL: TypicalDuration = TypicalDuration {
    min: Duration::from_secs(45),
    max: Duration::from_secs(60),
};

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

/// The capabilities of every provider, whether configured or not.
pub fn all() -> Vec<ProviderCapabilities> {
    ProviderId::ALL.into_iter().map(of).collect()
}

/// The capabilities of one provider.
pub fn of(provider: ProviderId) -> ProviderCapabilities {
    match provider {
        ProviderId::Runblob => runblob_capabilities(),
        ProviderId::Gptimg => gptimg_capabilities(),
        ProviderId::Runbase => runbase_capabilities(),
    }
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn runblob_capabilities() -> ProviderCapabilities {
    let references = ReferenceCapabilities {
        max_count: runblob::MAX_IMAGES,
        https_url: true,
        http_url: true,
        data_uri: true,
        bytes: true,
        max_bytes: Some(runblob::MAX_IMAGE_BYTES as u64),
    };
    let model = |model: Option<&runblob::Model>| {
        let later = model == Some(&runblob::Model::Chatgpt2_5);
        ModelCapabilities {
            model: model.map(ToString::to_string),
            aspect_ratios: runblob::ASPECT_RATIOS.to_vec(),
            default_aspect_ratio: None,
            max_images_per_task: 1,
            qualities: if later {
                strings(runblob::Quality::KNOWN)
            } else {
                Vec::new()
            },
            resolutions: Vec::new(),
            background: later,
            references,
            prices: Vec::new(),
        }
    };
    let mut models = vec![model(None)];
    models.extend(runblob::Model::KNOWN.iter().map(|m| model(Some(m))));
    ProviderCapabilities {
        provider: ProviderId::Runblob,
        default_model: None,
        models,
        other_models: false,
        webhooks: true,
        rate_limit: None,
        typical_duration: Some(RUNBLOB_TYPICAL),
    }
}

fn gptimg_capabilities() -> ProviderCapabilities {
    ProviderCapabilities {
        provider: ProviderId::Gptimg,
        default_model: Some(GPTIMG_MODEL.into()),
        models: vec![ModelCapabilities {
            model: Some(GPTIMG_MODEL.into()),
            aspect_ratios: gptimg::ASPECT_RATIOS.to_vec(),
            default_aspect_ratio: Some(AspectRatio::Square),
            max_images_per_task: u32::from(gptimg::MAX_N),
            qualities: Vec::new(),
            resolutions: Vec::new(),
            background: false,
            references: ReferenceCapabilities {
                max_count: gptimg::MAX_REFERENCE_IMAGES,
                https_url: true,
                http_url: false,
                data_uri: false,
                bytes: false,
                max_bytes: None,
            },
            prices: vec![Price {
                quality: None,
                resolution: None,
                per_image: Cost::credits(gptimg::CREDITS_PER_IMAGE),
            }],
        }],
        other_models: false,
        webhooks: false,
        rate_limit: None,
        typical_duration: Some(GPTIMG_TYPICAL),
    }
}

fn runbase_capabilities() -> ProviderCapabilities {
    let model = |spec: &runbase::ModelSpec| {
        let qualities: Vec<Option<&runbase::Quality>> = if spec.qualities.is_empty() {
            vec![None]
        } else {
            spec.qualities.iter().map(Some).collect()
        };
        let resolutions: Vec<Option<&runbase::Resolution>> = if spec.resolutions.is_empty() {
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
    let mut specs: Vec<&runbase::ModelSpec> = runbase::MODELS.iter().collect();
    specs.sort_by_key(|spec| spec.model.as_str() != RUNBASE_DEFAULT_MODEL);
    let (requests, window) = runbase::RATE_LIMIT;
    ProviderCapabilities {
        provider: ProviderId::Runbase,
        default_model: Some(RUNBASE_DEFAULT_MODEL.into()),
        models: specs.into_iter().map(model).collect(),
        other_models: true,
        webhooks: false,
        rate_limit: Some(RateLimit::new(requests, window)),
        typical_duration: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_comes_from_the_documented_constants() {
        let runbase = of(ProviderId::Runbase);
        let default = runbase.model(None).unwrap();
        assert_eq!(default.model.as_deref(), Some("openai/gpt-image-2"));
        assert_eq!(default.aspect_ratios, runbase::GPT_IMAGE_2.aspect_ratios);
        assert_eq!(default.resolutions, ["1K", "2K", "4K"]);
        let prices: Vec<String> = default
            .prices
            .iter()
            .map(|p| p.per_image.to_string())
            .collect();
        assert_eq!(prices, ["$0.05", "$0.07", "$0.12"]);
        let v15 = runbase.model(Some("openai/gpt-image-1.5")).unwrap();
        assert_eq!(v15.qualities, ["medium", "high"]);
        assert_eq!(v15.references.max_count, 4);
        assert!(!v15.references.bytes);
        assert_eq!(
            runbase.rate_limit,
            Some(RateLimit::new(20, Duration::from_secs(10)))
        );

        let gptimg = of(ProviderId::Gptimg);
        let model = gptimg.model(None).unwrap();
        assert_eq!(model.max_images_per_task, 4);
        assert_eq!(model.aspect_ratios.len(), 13);
        assert!(model.references.https_url && !model.references.http_url);
        assert_eq!(
            model.prices[0].per_image,
            Cost::credits(imggen_types::Credits(2))
        );

        let runblob = of(ProviderId::Runblob);
        assert!(runblob.webhooks);
        assert_eq!(runblob.model(None).unwrap().default_aspect_ratio, None);
        assert!(runblob.model(None).unwrap().qualities.is_empty());
        assert_eq!(
            runblob.model(Some("chatgpt-2.5")).unwrap().qualities,
            ["flare", "sunburst"]
        );
        assert!(runblob.model(Some("gpt-9")).is_none());
    }

    #[test]
    fn capabilities_serialize_for_the_cli() {
        let json = serde_json::to_value(of(ProviderId::Gptimg)).unwrap();
        assert_eq!(json["provider"], "gptimg");
        assert_eq!(json["typical_duration"]["max_seconds"], 60);
        assert_eq!(json["models"][0]["prices"][0]["per_image"]["credits"], 2);
        let json = serde_json::to_value(all()).unwrap();
        assert_eq!(json[2]["rate_limit"]["requests"], 20);
    }
}
