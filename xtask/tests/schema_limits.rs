//! The published request schemas carry every documented limit: the seed pages' own examples
//! validate, and their counter-examples — a sixth reference, an empty prompt, `n` of 5, an
//! http reference where only https is taken, a ratio a model does not make — do not. Each case
//! is checked against the Rust `validate()` too, so the schemas and the checks the clients run
//! before sending say the same thing.
//!
//! The schemas are read from `schemas/` as published (`cargo xtask schema --check` keeps them
//! equal to what the types generate), with the `jsonschema` crate as the independent validator.

use std::path::Path;

use imggen_types::{gptimg, runbase, runblob};
use serde_json::{Value, json};

fn schema(relative: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("the schema compiles")
}

/// Checks every case against the schema and `validate`: `accepted` says what both must say.
fn check(
    schema_path: &str,
    cases: &[(&str, bool, Value)],
    validate: impl Fn(&Value) -> Result<(), String>,
) {
    let validator = schema(schema_path);
    for (name, accepted, body) in cases {
        let schema_says = validator.is_valid(body);
        assert_eq!(
            schema_says, *accepted,
            "{schema_path}: {name}: the schema says {schema_says}: {body}"
        );
        let rust_says = validate(body);
        assert_eq!(
            rust_says.is_ok(),
            *accepted,
            "{schema_path}: {name}: validate() says {rust_says:?}: {body}"
        );
    }
}

/// The start of a JPEG, as the seed page's own `/9j/4AAQSkZJRg...` (bare base64 is read as
/// JPEG).
const JPEG_HEAD: &str = "/9j/4AAQSkZJRgAB";

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

#[test]
fn runblob_requests_carry_the_seed_limits() {
    let prompt_4000 = "a".repeat(4000);
    let prompt_4001 = "a".repeat(4001);
    let five: Vec<String> = (1..=5)
        .map(|n| format!("https://example.com/ref{n}.jpg"))
        .collect();
    let cases = [
        // The seed page's own bodies.
        (
            "text to image",
            true,
            json!({"prompt": "A futuristic city with flying cars, neon lights, cyberpunk style"}),
        ),
        (
            "a ratio",
            true,
            json!({"prompt": "A beautiful portrait in studio lighting", "aspect_ratio": "3:4"}),
        ),
        (
            "references of every form",
            true,
            json!({"prompt": "Combine these images into a beautiful collage", "aspect_ratio": "4:3",
                   "images": ["https://example.com/ref1.jpg",
                              format!("data:image/png;base64,{PNG_1X1}"), JPEG_HEAD]}),
        ),
        (
            "a webhook",
            true,
            json!({"prompt": "Create a story from these moments",
                   "images": ["https://example.com/moment1.jpg"],
                   "callback_url": "https://your-app.com/webhooks/chatgpt-images"}),
        ),
        ("4000 characters", true, json!({"prompt": prompt_4000})),
        // Counter-examples: what the page rules out.
        ("an empty prompt", false, json!({"prompt": ""})),
        ("a blank prompt", false, json!({"prompt": "   "})),
        ("4001 characters", false, json!({"prompt": prompt_4001})),
        ("no prompt", false, json!({"aspect_ratio": "1:1"})),
        ("five images", false, json!({"prompt": "x", "images": five})),
        (
            "a ratio runblob does not make",
            false,
            json!({"prompt": "x", "aspect_ratio": "9:21"}),
        ),
        (
            "an ftp reference",
            false,
            json!({"prompt": "x", "images": ["ftp://example.com/a.jpg"]}),
        ),
        (
            "an http webhook to another machine",
            false,
            json!({"prompt": "x", "callback_url": "http://your-app.com/hook"}),
        ),
    ];
    check("runblob/GenerateRequest.schema.json", &cases, |body| {
        serde_json::from_value::<runblob::GenerateRequest>(body.clone())
            .map_err(|err| err.to_string())?
            .validate()
            .map_err(|err| err.to_string())
    });
}

#[test]
fn gptimg_requests_carry_the_seed_limits() {
    let cases = [
        (
            "text to image",
            true,
            json!({"prompt": "A cinematic wide shot of a lone lighthouse on a cliff at sunset, oil painting style",
                   "aspect_ratio": "16:9", "n": 1}),
        ),
        (
            "image to image",
            true,
            json!({"prompt": "Restyle the subject as a watercolor painting with soft pastel tones",
                   "reference_images": ["https://example.com/portrait.jpg"],
                   "aspect_ratio": "3:4", "n": 2}),
        ),
        (
            "the complete example",
            true,
            json!({"prompt": "A minimalist product shot of a ceramic coffee cup, top-down view, soft shadow",
                   "aspect_ratio": "1:1", "n": 2}),
        ),
        ("four images", true, json!({"prompt": "x", "n": 4})),
        ("9:21", true, json!({"prompt": "x", "aspect_ratio": "9:21"})),
        // "body failed validation (empty prompt, unsupported aspect ratio, n out of range,
        // reference URL not https://)"
        ("an empty prompt", false, json!({"prompt": ""})),
        ("n of 5", false, json!({"prompt": "x", "n": 5})),
        ("n of 0", false, json!({"prompt": "x", "n": 0})),
        (
            "an unsupported ratio",
            false,
            json!({"prompt": "x", "aspect_ratio": "7:3"}),
        ),
        (
            "an http reference",
            false,
            json!({"prompt": "x", "reference_images": ["http://example.com/a.jpg"]}),
        ),
        (
            "a data URI reference",
            false,
            json!({"prompt": "x", "reference_images": [format!("data:image/png;base64,{PNG_1X1}")]}),
        ),
        (
            "five references",
            false,
            json!({"prompt": "x", "reference_images": (1..=5).map(|n| format!("https://e.com/{n}.jpg")).collect::<Vec<_>>()}),
        ),
    ];
    check("gptimg/GenerateRequest.schema.json", &cases, |body| {
        let request: gptimg::GenerateRequest =
            serde_json::from_value(body.clone()).map_err(|err| err.to_string())?;
        // The Rust type keeps a ratio no one documents as an open value, sent when the caller
        // insists; the published schema is the documented set.
        if request
            .aspect_ratio
            .as_ref()
            .is_some_and(|ratio| !ratio.is_known())
        {
            return Err("not a documented ratio".into());
        }
        request.validate().map_err(|err| err.to_string())
    });
}

#[test]
fn runbase_runs_carry_each_models_limits() {
    let urls = |count: usize| -> Vec<String> {
        (1..=count)
            .map(|n| format!("https://example.com/{n}.jpg"))
            .collect()
    };
    let run = |model: &str, input: Value| json!({"model": model, "input": input});
    let cases = [
        // The seed pages' quickstarts.
        (
            "gpt-image-1 quickstart",
            true,
            run(
                "openai/gpt-image-1",
                json!({"prompt": "A cinematic product photo of a ceramic lamp"}),
            ),
        ),
        (
            "gpt-image-1.5 with quality",
            true,
            run(
                "openai/gpt-image-1.5",
                json!({"prompt": "A cinematic product photo of a ceramic lamp", "quality": "high"}),
            ),
        ),
        (
            "gpt-image-1 with five references",
            true,
            run(
                "openai/gpt-image-1",
                json!({"prompt": "x", "image_urls": urls(5), "aspect_ratio": "3:2"}),
            ),
        ),
        (
            "gpt-image-2 at 4K and 21:9",
            true,
            run(
                "openai/gpt-image-2",
                json!({"prompt": "x", "resolution": "4K", "aspect_ratio": "21:9"}),
            ),
        ),
        (
            "another model, unchecked",
            true,
            run(
                "google/nano-banana-2",
                json!({"prompt": "x", "anything": true}),
            ),
        ),
        // Counter-examples, each against its model's documented schema.
        (
            "16:9 on gpt-image-1",
            false,
            run(
                "openai/gpt-image-1",
                json!({"prompt": "x", "aspect_ratio": "16:9"}),
            ),
        ),
        (
            "six references on gpt-image-1",
            false,
            run(
                "openai/gpt-image-1",
                json!({"prompt": "x", "image_urls": urls(6)}),
            ),
        ),
        (
            "five references on gpt-image-1.5",
            false,
            run(
                "openai/gpt-image-1.5",
                json!({"prompt": "x", "image_urls": urls(5)}),
            ),
        ),
        (
            "quality low on gpt-image-1.5",
            false,
            run(
                "openai/gpt-image-1.5",
                json!({"prompt": "x", "quality": "low"}),
            ),
        ),
        (
            "8K on gpt-image-2",
            false,
            run(
                "openai/gpt-image-2",
                json!({"prompt": "x", "resolution": "8K"}),
            ),
        ),
        (
            "an empty prompt",
            false,
            run("openai/gpt-image-2", json!({"prompt": ""})),
        ),
        (
            "4001 characters",
            false,
            run("openai/gpt-image-1", json!({"prompt": "a".repeat(4001)})),
        ),
        (
            "a file path as a reference",
            false,
            run(
                "openai/gpt-image-1",
                json!({"prompt": "x", "image_urls": ["/tmp/a.png"]}),
            ),
        ),
        (
            "input that is not an object",
            false,
            run("openai/gpt-image-1", json!("a lamp")),
        ),
    ];
    check("runbase/CreateRunRequest.schema.json", &cases, |body| {
        serde_json::from_value::<runbase::CreateRunRequest>(body.clone())
            .map_err(|err| err.to_string())?
            .validate()
            .map_err(|err| err.to_string())
    });
}
