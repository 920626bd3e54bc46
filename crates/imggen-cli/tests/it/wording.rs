//! What a new user reads (issue 13, point 7): each message as it reaches the terminal, against
//! the emulator — built in when no key is set, or in this process behind every key.

use std::collections::BTreeMap;

use imggen_mock::{Fault, FaultKind, Operation, Provider};
use serde_json::{Value, json};

use crate::{Env, KEY, assert_code, bare, instant, png_size, run, stderr, stdout};

/// `imggen ARGS` with no key set (the built-in emulator), in a fresh directory.
async fn offline(args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), args)).await;
    (output, dir)
}

/// Writes one JSON request per line as `prompts.jsonl` in `dir`.
fn write_batch(dir: &std::path::Path, lines: &[Value]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(dir.join("prompts.jsonl"), text).unwrap();
}

#[tokio::test]
async fn zero_images_says_n_must_be_at_least_one() {
    let (output, dir) = offline(&["generate", "a fox", "-n", "0"]).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.starts_with(
            "error: invalid value '0' for '--count <N>': -n is the number of images to make, at least 1\n"
        ),
        "{text}"
    );
    assert!(!text.contains("--allow-extra-tasks"), "{text}");
    assert!(!text.contains("lower -n"), "{text}");
    assert!(
        !dir.path().join("imggen-out").exists(),
        "nothing was written"
    );

    // The defaults of a batch too: said once, not once per line.
    let dir = tempfile::tempdir().unwrap();
    write_batch(
        dir.path(),
        &[json!({"prompt": "a"}), json!({"prompt": "b"})],
    );
    let output = run(bare(dir.path(), &["batch", "prompts.jsonl", "-n", "0"])).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.starts_with("error: invalid value '0' for '--count <N>': -n is the number of images to make, at least 1\n"),
        "{text}"
    );
    assert!(!text.contains("line 1"), "{text}");
}

#[tokio::test]
async fn a_missing_reference_file_says_nothing_was_sent_once() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--ref",
            "sketches/missing.png",
        ])
        .await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0, "nothing was sent");
    let text = stderr(&output);
    assert_eq!(
        text,
        "imggen: runblob create: invalid request, nothing was sent: images[0]: file \"sketches/missing.png\" does not exist\n"
    );
    assert_eq!(text.matches("nothing was sent").count(), 1, "{text}");
    assert_eq!(text.matches("invalid request").count(), 1, "{text}");
}

#[tokio::test]
async fn a_malformed_handle_says_what_a_handle_is_and_which_field_is_missing() {
    let hint = "hint: a handle is provider:task_id (e.g. gptimg:gpt-image-2-…), the JSON line `imggen submit` prints, or @FILE holding either\n";

    let (output, _dir) = offline(&["wait", r#"{"provider":"gptimg"}"#]).await;
    assert_code(&output, 2);
    assert_eq!(
        stderr(&output),
        format!(
            "imggen: task handle: the JSON handle is missing \"version\" and \"task_id\"; a JSON handle holds at least \"version\" (1), \"provider\" and \"task_id\", as written when its task was created\n{hint}"
        )
    );

    let (output, _dir) = offline(&[
        "status",
        r#"{"provider":"gptimg","task_id":"gpt-image-2-abc"}"#,
    ])
    .await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.starts_with("imggen: task handle: the JSON handle is missing \"version\"; "),
        "{text}"
    );
    assert!(
        text.contains("or give the task as provider:task_id, gptimg:gpt-image-2-abc"),
        "{text}"
    );

    let (output, _dir) = offline(&[
        "wait",
        r#"{"version":"1","provider":"runblob","task_id":"a"}"#,
    ])
    .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).starts_with(
            "imggen: task handle: in the JSON handle, \"version\" must be a whole number, not a string (\"1\")\n"
        ),
        "{}",
        stderr(&output)
    );

    // serde's own words never reach a person.
    for handle in [
        r#"{"provider":"gptimg"}"#,
        r#"{"version":1,"provider":"runblob""#,
        r#"{"version":9,"provider":"runblob","task_id":"a"}"#,
    ] {
        let (output, _dir) = offline(&["wait", handle]).await;
        assert_code(&output, 2);
        let text = stderr(&output);
        assert!(
            !text.contains('`') || text.contains("`imggen submit`"),
            "{text}"
        );
        for raw in [
            "missing field",
            "at line 1 column",
            "expected u32",
            "task handle: task handle",
        ] {
            assert!(!text.contains(raw), "{raw}: {text}");
        }
    }
}

#[tokio::test]
async fn an_empty_prompt_in_a_batch_line_is_required_not_optional() {
    let dir = tempfile::tempdir().unwrap();
    write_batch(
        dir.path(),
        &[json!({"prompt": ""}), json!({"prompt": "a fox"})],
    );
    let output = run(bare(dir.path(), &["batch", "prompts.jsonl"])).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.contains(
            "\n  line 1: prompt is empty; every line needs a prompt, and it cannot be empty or only spaces\n"
        ),
        "{text}"
    );
    assert!(!text.contains("leave the field out"), "{text}");
}

#[tokio::test]
async fn a_batch_line_takes_ratio_as_the_command_line_takes_ratio() {
    let dir = tempfile::tempdir().unwrap();
    write_batch(
        dir.path(),
        &[json!({"id": "wide", "prompt": "a fox", "ratio": "16:9"})],
    );
    let output = run(bare(
        dir.path(),
        &["batch", "prompts.jsonl", "--out", "renders"],
    ))
    .await;
    assert_code(&output, 0);
    let results = std::fs::read_to_string(dir.path().join("renders/results.jsonl")).unwrap();
    let line: Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "done", "{line}");
    let file = dir
        .path()
        .join("renders")
        .join(line["files"][0].as_str().unwrap());
    let (width, height) = png_size(&file);
    assert!(width > height, "16:9 was sent: {width}x{height}");

    // Both names on one line: which one would win is not guessed.
    let dir = tempfile::tempdir().unwrap();
    write_batch(
        dir.path(),
        &[json!({"prompt": "a fox", "ratio": "16:9", "aspect_ratio": "4:3"})],
    );
    let output = run(bare(dir.path(), &["batch", "prompts.jsonl"])).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.contains(
            "  line 1: give aspect_ratio or ratio, not both (ratio is another name for aspect_ratio)\n"
        ),
        "{text}"
    );

    let (output, _dir) = offline(&["batch", "--help"]).await;
    assert_code(&output, 0);
    assert!(
        stdout(&output).contains("aspect_ratio (or ratio)"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn a_quality_the_model_does_not_take_names_the_model_that_does() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runbase",
            "--quality",
            "high",
        ])
        .await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0);
    assert_eq!(
        stderr(&output),
        "imggen: runbase cannot serve this request: quality \"high\": openai/gpt-image-2 takes no quality setting; openai/gpt-image-1.5 (medium, high) takes it: ask for model openai/gpt-image-1.5; nothing was sent\n"
    );

    // runblob: only chatgpt-2.5 takes a quality, and not "high".
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--quality",
            "high",
        ])
        .await;
    assert_code(&output, 2);
    assert_eq!(
        stderr(&output),
        "imggen: runblob cannot serve this request: quality \"high\": runblob's default model takes no quality setting; no runblob model takes quality \"high\"; chatgpt-2.5 (flare, sunburst) takes a quality setting; nothing was sent\n"
    );
    assert_eq!(env.requests(), 0);
}

#[tokio::test]
async fn a_task_id_the_provider_does_not_know_says_so_and_what_was_charged() {
    let env = Env::start(instant()).await;
    let output = env.run(&["status", "runbase:run_doesnotexist"]).await;
    assert_code(&output, 3);
    let text = stderr(&output);
    assert_eq!(
        text,
        "imggen: runbase status: 404 run_not_found: Run not found (task runbase:run_doesnotexist); runbase does not know this task id (a wrong id, another API key, or a task that has expired); imggen has no record of creating it, so nothing is known to have been charged for it\n\
         hint: check the run id, and that the run was created with this API key\n"
    );
    assert!(!text.contains("not lost"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(env.server.ledger().is_empty(), "nothing was charged");
}

#[tokio::test]
async fn a_warning_from_core_is_an_imggen_warning_line_in_the_default_mode() {
    let env = Env::start(instant()).await;
    // The first status read is rate limited: imggen-core's budget for the key tightens, and
    // says so with a warning.
    env.server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 429,
                body: None,
                headers: BTreeMap::from([("Retry-After".to_owned(), "0".to_owned())]),
            })
            .provider(Provider::Gptimg)
            .operation(Operation::Status)
            .times(1),
        )
        .unwrap();
    let mut cmd = env.cmd(&[
        "generate",
        "a fox",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
    ]);
    // The default mode: no --progress, no IMGGEN_PROGRESS, no -v.
    cmd.env_remove("IMGGEN_PROGRESS");
    let output = run(cmd).await;
    assert_code(&output, 0);
    let text = stderr(&output);
    let warning = text
        .lines()
        .find(|line| line.contains("429"))
        .unwrap_or_else(|| panic!("no warning:\n{text}"));
    assert!(
        warning.starts_with(
            "imggen: warning: 429 from the provider: tightening this key's request budget"
        ),
        "{text}"
    );
    for raw in ["WARN", "imggen_core", "budget.rs", "\u{1b}["] {
        assert!(
            !text.contains(raw),
            "no raw tracing line ({raw:?}):\n{text}"
        );
    }
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(stdout(&output).lines().count(), 1, "the image is saved");
}

#[tokio::test]
async fn an_option_imggen_does_not_have_gets_a_useful_tip() {
    let (output, _dir) = offline(&["generate", "a fox", "--size", "1024x1024"]).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.starts_with("error: unexpected argument '--size' found\n"),
        "{text}"
    );
    assert!(
        text.contains("  tip: imggen has no --size: choose the shape with --aspect-ratio W:H (e.g. --aspect-ratio 16:9), and on runbase the resolution with --option resolution=1K|2K|4K\n"),
        "{text}"
    );
    assert!(!text.contains("-- --size"), "{text}");
    assert!(!text.contains("as a value"), "{text}");

    // The closest real option, when there is one.
    let (output, _dir) = offline(&["generate", "a fox", "--aspect", "16:9"]).await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(
        text.contains("tip: a similar argument exists: '--aspect-ratio'"),
        "{text}"
    );
    assert!(!text.contains("-- --aspect"), "{text}");

    // With --json, the tip is the hint.
    let (output, _dir) = offline(&["generate", "a fox", "--size", "2K", "--json"]).await;
    assert_code(&output, 2);
    let json: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(
        json["error"]["hint"]
            .as_str()
            .unwrap()
            .starts_with("imggen has no --size"),
        "{json}"
    );
}

#[tokio::test]
async fn the_providers_table_fits_80_columns_with_every_fact() {
    let (output, _dir) = offline(&["providers"]).await;
    assert_code(&output, 0);
    let text = stdout(&output);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} characters: {line:?}\n{text}",
            line.chars().count()
        );
    }
    for fact in [
        // Every provider, its key and whether it is set.
        "gptimg\n",
        "runblob\n",
        "runbase\n",
        "mock\n",
        "GPTIMG_API_KEY (not set)",
        "RUNBLOB_API_KEY (not set)",
        "RUNBASE_API_KEY (not set)",
        // Every model.
        "model gpt-image-2 (default)",
        "model gpt-5-2",
        "model chatgpt-2.5",
        "model openai/gpt-image-2 (default)",
        "model openai/gpt-image-1\n",
        "model openai/gpt-image-1.5",
        // Limits, ratios, settings, references and prices.
        "20 requests per 10s",
        "45–60 s",
        "60–180 s",
        "images per task  up to 4",
        "1:1 16:9 9:16 4:3 3:4 3:2 2:3 5:4 4:5 2:1 1:2 21:9 9:21",
        "quality flare|sunburst, background",
        "quality medium|high",
        "resolution 1K|2K|4K",
        "up to 4: https, http, data URI, file",
        "2 credits",
        "$0.05 (1K), $0.07 (2K), $0.12 (4K)",
        "$0.03 (medium), $0.16 (high)",
        "per task, reported at submit",
        "free (counts 2 credits as gptimg would)",
    ] {
        assert!(text.contains(fact), "{fact:?} missing:\n{text}");
    }
    // Keys that are set say so.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare(dir.path(), &["providers"]);
    cmd.env("RUNBASE_API_KEY", KEY);
    let output = run(cmd).await;
    let text = stdout(&output);
    assert!(text.contains("RUNBASE_API_KEY (set)"), "{text}");
    assert!(!text.contains(KEY), "{text}");

    // The JSON is unchanged: one line, every provider.
    let (output, _dir) = offline(&["providers", "--json"]).await;
    assert_code(&output, 0);
    let json_text = stdout(&output);
    assert_eq!(json_text.lines().count(), 1);
    let json: Value = serde_json::from_str(&json_text).unwrap();
    let names: Vec<&str> = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gptimg", "runblob", "runbase", "mock"]);
}
