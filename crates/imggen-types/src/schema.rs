//! The documented limits a derived JSON Schema cannot say by itself (feature `json-schema`):
//! a closed set of values where a provider's documentation closes it — one model's ratios,
//! gptimg's thirteen — although the Rust type stays open for values a provider adds later.
//!
//! The wire types name these functions in `#[schemars(schema_with = ...)]`; each builds its
//! list from the same constants [`validate`](crate::runblob::GenerateRequest::validate) checks,
//! so the published schemas and the checks cannot drift apart.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::{AspectRatio, gptimg, runbase, runblob};

/// One of `values`, or null (the field is optional).
fn one_of<T: ToString>(values: &[T]) -> Schema {
    let mut values: Vec<Value> = values
        .iter()
        .map(|value| Value::String(value.to_string()))
        .collect();
    values.push(Value::Null);
    json_schema!({ "enum": values })
}

fn ratios(list: &[AspectRatio]) -> Schema {
    one_of(list)
}

/// runblob's ratios: the seed's three and those its later API versions document.
pub(crate) fn runblob_aspect_ratio(_: &mut SchemaGenerator) -> Schema {
    ratios(runblob::ASPECT_RATIOS)
}

/// gptimg's thirteen ratios.
pub(crate) fn gptimg_aspect_ratio(_: &mut SchemaGenerator) -> Schema {
    ratios(gptimg::ASPECT_RATIOS)
}

/// `openai/gpt-image-1`'s ratios.
pub(crate) fn gpt_image_1_aspect_ratio(_: &mut SchemaGenerator) -> Schema {
    ratios(runbase::GPT_IMAGE_1.aspect_ratios)
}

/// `openai/gpt-image-1.5`'s ratios.
pub(crate) fn gpt_image_1_5_aspect_ratio(_: &mut SchemaGenerator) -> Schema {
    ratios(runbase::GPT_IMAGE_1_5.aspect_ratios)
}

/// `openai/gpt-image-2`'s ratios.
pub(crate) fn gpt_image_2_aspect_ratio(_: &mut SchemaGenerator) -> Schema {
    ratios(runbase::GPT_IMAGE_2.aspect_ratios)
}

/// `openai/gpt-image-1.5`'s qualities.
pub(crate) fn gpt_image_1_5_quality(_: &mut SchemaGenerator) -> Schema {
    one_of(runbase::GPT_IMAGE_1_5.qualities)
}

/// `openai/gpt-image-2`'s resolutions.
pub(crate) fn gpt_image_2_resolution(_: &mut SchemaGenerator) -> Schema {
    one_of(runbase::GPT_IMAGE_2.resolutions)
}

/// A run's `input` checked against its model's schema, for the models imggen knows: one
/// `if model is … then input is …` per model (any other model's input is a JSON object).
pub(crate) fn runbase_inputs_by_model(schema: &mut Schema) {
    let generator = &mut schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let cases: Vec<Value> = [
        (
            &runbase::GPT_IMAGE_1,
            generator.root_schema_for::<runbase::GptImage1Input>(),
        ),
        (
            &runbase::GPT_IMAGE_1_5,
            generator.root_schema_for::<runbase::GptImage15Input>(),
        ),
        (
            &runbase::GPT_IMAGE_2,
            generator.root_schema_for::<runbase::GptImage2Input>(),
        ),
    ]
    .into_iter()
    .map(|(spec, input)| {
        let mut input = input.to_value();
        if let Value::Object(map) = &mut input {
            map.remove("$schema");
            map.remove("title");
        }
        serde_json::json!({
            "if": {
                "properties": { "model": { "const": spec.model.to_string() } },
                "required": ["model"]
            },
            "then": { "properties": { "input": input } }
        })
    })
    .collect();
    schema.insert("allOf".into(), Value::Array(cases));
}

/// A prompt's pattern: at least one character that is not whitespace.
pub(crate) const NOT_BLANK: &str = r"\S";

/// An `https://` URL (any letter case in the scheme).
pub(crate) const HTTPS_URL: &str = "^[Hh][Tt][Tt][Pp][Ss]://";

/// An `http://` or `https://` URL.
pub(crate) const HTTP_URL: &str = "^[Hh][Tt][Tt][Pp][Ss]?://";

/// A webhook URL: https, or http to this machine (a local emulator's receiver).
pub(crate) const CALLBACK_URL: &str = r"^(?:[Hh][Tt][Tt][Pp][Ss]://|[Hh][Tt][Tt][Pp]://(?:127(?:\.[0-9]{1,3}){3}|localhost|\[::1\])(?::[0-9]+)?(?:[/?#]|$))";

/// One of runblob's `images`: an http(s) URL, a JPEG/PNG/WEBP data URI, or bare base64.
pub(crate) const RUNBLOB_IMAGE: &str = r"^(?:[Hh][Tt][Tt][Pp][Ss]?://|data:image/(?:jpeg|jpg|png|webp);base64,|[A-Za-z0-9+/\r\n]+={0,2}$)";
