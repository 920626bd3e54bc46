//! Tests of [`super`].

use super::*;

// The built-in providers, as a batch file names them.
const GPTIMG: ProviderId = ProviderId::new("gptimg");
const RUNBLOB: ProviderId = ProviderId::new("runblob");
const RUNBASE: ProviderId = ProviderId::new("runbase");

fn problems(input: &BatchInput) -> Vec<String> {
    input.invalid.iter().map(ToString::to_string).collect()
}

#[test]
fn ids_default_to_the_line_number_and_defaults_fill_what_a_line_leaves_out() {
    let defaults = RequestDefaults::new()
        .provider(RUNBASE)
        .aspect_ratio(AspectRatio::Square)
        .option("resolution", "2K");
    let text = "\u{feff}{\"prompt\": \"a lamp\"}\r\n\n{\"id\": 7, \"prompt\": \"a cat\", \"aspect_ratio\": \"16:9\", \"n\": 2, \"options\": {\"input.seed\": 42}}\n";
    let input = parse(text, &defaults);
    assert_eq!(input.invalid, []);
    let [first, second] = &input.requests[..] else {
        panic!("{input:?}")
    };
    assert_eq!((first.id.as_str(), first.line), ("1", 1));
    assert_eq!(first.request.aspect_ratio, Some(AspectRatio::Square));
    assert_eq!(first.providers, [RUNBASE]);
    assert_eq!(
        first.request.options.text(RUNBASE, "resolution"),
        Some("2K")
    );
    // Blank lines are skipped but counted.
    assert_eq!((second.id.as_str(), second.line), ("7", 3));
    assert_eq!(
        second.request.aspect_ratio,
        Some(AspectRatio::Landscape16x9)
    );
    assert_eq!(second.request.n, 2);
    assert_eq!(
        second.request.options.of(RUNBASE)["input"]["seed"],
        serde_json::json!(42)
    );
}

#[test]
fn every_bad_line_is_reported_with_its_number_and_what_is_allowed() {
    let text = [
        r#"{"prompt": "ok"}"#,
        r#"{"prompt": "a", "promt": "typo"}"#,
        r#"not json"#,
        r#"["prompt"]"#,
        r#"{"id": "x"}"#,
        r#"{"prompt": "a", "aspect_ratio": "16x9"}"#,
        r#"{"prompt": "a", "n": 0}"#,
        r#"{"prompt": "a", "provider": "openai"}"#,
        r#"{"prompt": "a", "provider": "runblob", "options": {"colour": "red"}}"#,
        r#"{"prompt": "a", "provider": "runblob", "options": {"runbase.resolution": "2K"}}"#,
        r#"{"prompt": "a", "refs": "https://x.example/a.png"}"#,
        r#"{"prompt": "  "}"#,
        r#"{"prompt": "a", "id": ""}"#,
        r#"{"prompt": 3, "n": "two"}"#,
    ]
    .join("\n");
    let input = parse(&text, &RequestDefaults::new());
    assert_eq!(input.requests.len(), 1);
    assert_eq!(
        problems(&input),
        [
            r#"line 2: unknown field "promt"; the fields are id, prompt, provider, fallback, model, aspect_ratio, ratio, n, quality, refs, references, options, webhook"#,
            "line 3: not valid JSON (expected ident at line 1 column 2); each line is one object like {\"prompt\": \"...\"}",
            "line 4: expected a JSON object like {\"prompt\": \"...\"}, not a list",
            "line 5 (id \"x\"): prompt is missing; every line needs {\"prompt\": \"...\"}",
            "line 6: aspect ratio: \"16x9\" is not a known value; known values: 1:1, 4:3, 3:4, 3:2, 2:3, 16:9, 9:16, 5:4, 4:5, 2:1, 1:2, 21:9, 9:21",
            "line 7: n must be a whole number of images, at least 1, not 0",
            "line 8: provider: \"openai\" is not a provider; known providers: gptimg, runblob, runbase",
            "line 9: options.colour: runblob option \"colour\": unknown key; allowed: model, quality, background",
            "line 10: options.runbase.resolution is for runbase, which this request does not use (runblob)",
            "line 11: refs must be a list, not a string (\"https://x.example/a.png\")",
            "line 12: prompt is empty; every line needs a prompt, and it cannot be empty or only spaces",
            "line 13: id is empty; give a name or leave the field out (the line number is used)",
            "line 14: prompt must be a string, not a number (3); n must be a whole number of images, at least 1, not \"two\"",
        ]
    );
    let error = input.check().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("13 invalid lines; nothing was sent\n  line 2:"),
        "{error}"
    );
}

#[test]
fn an_empty_prompt_is_required_not_optional() {
    let input = parse(
        "{\"prompt\": \"\"}\n{\"prompt\": \"a\", \"model\": \"\"}",
        &RequestDefaults::new(),
    );
    assert_eq!(
        problems(&input),
        [
            "line 1: prompt is empty; every line needs a prompt, and it cannot be empty or only spaces",
            // An optional field may be left out.
            "line 2: model is empty; give a value or leave the field out",
        ]
    );
    assert!(!problems(&input)[0].contains("leave the field out"));
}

#[test]
fn ratio_is_another_name_for_aspect_ratio() {
    let defaults = RequestDefaults::new().aspect_ratio(AspectRatio::Square);
    let text = [
        r#"{"prompt": "a", "ratio": "16:9"}"#,
        r#"{"prompt": "b", "ratio": "16:9", "aspect_ratio": "4:3"}"#,
        r#"{"prompt": "c", "ratio": "16x9"}"#,
        r#"{"prompt": "d", "ratio": null}"#,
    ]
    .join("\n");
    let input = parse(&text, &defaults);
    assert_eq!(input.requests.len(), 2, "{input:?}");
    assert_eq!(
        input.requests[0].request.aspect_ratio,
        Some(AspectRatio::Landscape16x9)
    );
    assert_eq!(
        input.requests[1].request.aspect_ratio,
        Some(AspectRatio::Square),
        "null leaves the default"
    );
    let problems = problems(&input);
    assert_eq!(
        problems[0],
        "line 2: give aspect_ratio or ratio, not both (ratio is another name for aspect_ratio)"
    );
    assert!(
        problems[1].starts_with("line 3: aspect ratio: \"16x9\" is not a known value"),
        "{problems:?}"
    );
}

#[test]
fn a_repeated_id_invalidates_every_line_that_uses_it() {
    let text = "{\"id\": \"a\", \"prompt\": \"x\"}\n{\"prompt\": \"y\"}\n{\"id\": \"a\", \"prompt\": \"z\"}\n{\"id\": \"2\", \"prompt\": \"w\"}";
    let input = parse(text, &RequestDefaults::new());
    assert_eq!(input.requests, []);
    assert_eq!(
        problems(&input),
        [
            "line 1 (id \"a\"): id \"a\" is also used on line 3; ids must be unique",
            // Line 2's default id is its number, which line 4 names explicitly.
            "line 2: id \"2\" is also used on line 4; ids must be unique",
            "line 3 (id \"a\"): id \"a\" is also used on line 1; ids must be unique",
            "line 4 (id \"2\"): id \"2\" is also used on line 2; ids must be unique",
        ]
    );
}

#[test]
fn references_and_fallbacks_read_like_the_command_line() {
    let defaults = RequestDefaults::new()
        .provider(GPTIMG)
        .reference(Reference::url("https://x.example/default.png"));
    let text = r#"{"prompt": "a", "fallback": "runblob, runbase", "references": ["https://x.example/a.png", "sketch.png", {"bytes": "AQID"}], "options": {"runbase.resolution": "4K", "runblob.quality": "flare"}}
{"prompt": "b"}"#;
    let input = parse(text, &defaults);
    assert_eq!(input.invalid, []);
    let first = &input.requests[0];
    assert_eq!(first.providers, [GPTIMG, RUNBLOB, RUNBASE]);
    assert_eq!(
        first.request.references,
        [
            Reference::url("https://x.example/a.png"),
            Reference::file("sketch.png"),
            Reference::bytes(vec![1, 2, 3])
        ]
    );
    assert_eq!(
        first.request.options.text(RUNBASE, "resolution"),
        Some("4K")
    );
    assert_eq!(
        first.request.options.text(RUNBLOB, "quality"),
        Some("flare")
    );
    // A line without refs keeps the default ones.
    assert_eq!(
        input.requests[1].request.references,
        [Reference::url("https://x.example/default.png")]
    );
}

#[test]
fn an_unscoped_option_needs_a_provider() {
    let input = parse(
        r#"{"prompt": "a", "options": {"resolution": "2K"}}"#,
        &RequestDefaults::new(),
    );
    assert_eq!(
        problems(&input),
        [
            "line 1: options.resolution applies to every provider of the request, but none is named: set \"provider\" or prefix the key with one (e.g. runbase.resolution)"
        ]
    );
    // A default scoped to a provider the line does not use is simply not applied.
    let defaults = RequestDefaults::new()
        .provider(RUNBLOB)
        .option("runbase.resolution", "2K");
    let input = parse(r#"{"prompt": "a"}"#, &defaults);
    assert_eq!(input.invalid, []);
    assert!(input.requests[0].request.options.is_empty());
}

#[test]
fn the_fingerprint_follows_the_request_not_key_order() {
    let a = parse(
        r#"{"prompt": "a", "provider": "runbase", "options": {"input.x": 1, "input.y": 2}}"#,
        &RequestDefaults::new(),
    );
    let b = parse(
        r#"{"options": {"input.y": 2, "input.x": 1}, "provider": "runbase", "prompt": "a"}"#,
        &RequestDefaults::new(),
    );
    let c = parse(
        r#"{"prompt": "b", "provider": "runbase"}"#,
        &RequestDefaults::new(),
    );
    let fingerprint_a = a.requests[0].fingerprint();
    assert_eq!(fingerprint_a.len(), 16);
    assert_eq!(fingerprint_a, b.requests[0].fingerprint());
    assert_ne!(fingerprint_a, c.requests[0].fingerprint());
    // The route is not part of it: switching provider keeps the journal usable.
    let d = parse(
        r#"{"prompt": "b", "provider": "runblob"}"#,
        &RequestDefaults::new(),
    );
    assert_eq!(c.requests[0].fingerprint(), d.requests[0].fingerprint());
}
