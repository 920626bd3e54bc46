//! The binary under hostile conditions: a full disk, servers that echo the key, trickle,
//! stall, lie about lengths or never answer, control characters in everything a server says,
//! careless input, rate limits that ask for hours. Each case asserts what a person would
//! notice: the documented exit code, one clear line, no key, nothing paid twice, nothing
//! half-written under a final name, no wait beyond `--timeout`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use imggen_mock::{EntryKind, Fault, FaultKind, ImageSize, Operation, Provider};
use serde_json::{Value, json};

use crate::secrets::assert_no_key;
use crate::{
    Env, KEY, assert_code, files_in, instant, json_output, png_size, printed_paths, stderr, stdout,
};

/// A bound on how long a run that must end by its `--timeout` may take: far above the
/// timeouts used here (2–4 s), far below the 60 s a request may otherwise take. A failure
/// guard, not a measurement.
const PROMPT_END: Duration = Duration::from_secs(30);

const PROVIDERS: [(Provider, &str); 3] = [
    (Provider::Runblob, "runblob"),
    (Provider::Gptimg, "gptimg"),
    (Provider::Runbase, "runbase"),
];

/// A hostile string: clears the screen, retitles the terminal, rings the bell, and a C1 CSI.
const HOSTILE: &str = "MODERATION\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m";

fn fault(kind: FaultKind, provider: Provider, operation: Operation) -> Fault {
    Fault::new(kind).provider(provider).operation(operation)
}

fn http(status: u16, body: Value, headers: &[(&str, &str)]) -> FaultKind {
    FaultKind::Http {
        status,
        body: Some(body),
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `generate "a fox" --provider PROVIDER --poll-interval 0.05 EXTRA…`: the emulator's tasks
/// are done at once, so polls come quickly.
fn generate<'a>(provider: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "generate",
        "a fox",
        "--provider",
        provider,
        "--poll-interval",
        "0.05",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `args` and measures how long it took.
async fn timed(env: &Env, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = env.run(args).await;
    (output, started.elapsed())
}

#[track_caller]
fn assert_ended_promptly(elapsed: Duration, output: &Output) {
    assert!(
        elapsed < PROMPT_END,
        "took {elapsed:?}, beyond --timeout\nstderr:\n{}",
        stderr(output)
    );
}

/// No control character reaches the terminal: stdout and stderr are free of them (but the
/// newlines that end lines).
#[track_caller]
fn assert_no_control_characters(output: &Output) {
    for (name, text) in [("stdout", stdout(output)), ("stderr", stderr(output))] {
        let raw: Vec<char> = text
            .chars()
            .filter(|c| *c != '\n' && imggen_types::text::needs_escape(*c))
            .collect();
        assert!(raw.is_empty(), "{name} has {raw:?}:\n{text}");
    }
}

/// How many requests fetched result files.
fn downloads(env: &Env) -> usize {
    env.server
        .requests()
        .recent
        .iter()
        .filter(|record| record.path.starts_with("/files/"))
        .count()
}

fn charges(env: &Env) -> usize {
    env.server
        .ledger()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count()
}

/// The files (and temporary files) left in `dir`, by name.
fn names_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

// --- 1. A full disk --------------------------------------------------------------------

/// `imggen ARGS` with writes beyond `limit_kib` KiB per file refused by the kernel (`ulimit
/// -f`, EFBIG — what a full disk looks like to the writer; SIGXFSZ ignored so the write
/// fails rather than killing the process). Portable: no mount, no privilege.
async fn run_with_file_size_limit(env: &Env, limit_kib: u32, args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_kib} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_imggen"))
        .args(args)
        .current_dir(env.dir.path())
        .env("IMGGEN_HOME", env.dir.path().join(".imggen-home"))
        .timeout(Duration::from_secs(60));
    for (name, value) in env.server.env() {
        cmd.env(name, value);
    }
    for name in ["GPTIMG_API_KEY", "RUNBLOB_API_KEY", "RUNBASE_API_KEY"] {
        cmd.env(name, KEY);
    }
    cmd.env_remove("RUST_LOG");
    crate::run(cmd).await
}

/// An emulator whose images are about 1 MB: larger than the 512 KiB the writes may reach.
async fn big_images() -> Env {
    Env::start(instant().image_size(ImageSize::LongSide(2048))).await
}

#[tokio::test]
async fn a_full_disk_is_an_error_with_the_handle_never_a_truncated_image_reported_saved() {
    let env = big_images().await;
    let output = run_with_file_size_limit(&env, 512, &generate("gptimg", &["--json"])).await;
    assert_code(&output, 1);
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "download", "{json:#}");
    assert_eq!(json["images"], json!([]), "no image is reported saved");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("could not write") && message.contains("imggen-out"),
        "the path and the cause: {message}"
    );
    let hint = error["hint"].as_str().unwrap();
    assert!(hint.contains("imggen wait gptimg:"), "{hint}");
    // Nothing under a final name, no temporary file left.
    assert!(
        names_in(&env.out_dir()).is_empty(),
        "{:?}",
        names_in(&env.out_dir())
    );

    // The handle fetches the paid image again, free, once there is room.
    let handle = json["tasks"][0]["handle"].to_string();
    let handle_file = env.dir.path().join("task.handle");
    std::fs::write(&handle_file, &handle).unwrap();
    let again = env
        .run(&["wait", &format!("@{}", handle_file.display())])
        .await;
    assert_code(&again, 0);
    let saved = printed_paths(&again, env.dir.path());
    assert_eq!(png_size(&saved[0]), (2048, 2048));
    assert_eq!(charges(&env), 1, "paid once");
}

#[tokio::test]
async fn a_batch_on_a_full_disk_keeps_the_request_to_collect_and_a_rerun_saves_it_free() {
    let env = big_images().await;
    std::fs::write(
        env.dir.path().join("prompts.jsonl"),
        "{\"id\": \"fox\", \"prompt\": \"a fox\", \"provider\": \"gptimg\"}\n",
    )
    .unwrap();
    let args = [
        "batch",
        "prompts.jsonl",
        "--out",
        "renders",
        "--poll-interval",
        "0.05",
        "--json",
    ];
    let output = run_with_file_size_limit(&env, 512, &args).await;
    assert_code(&output, 5);
    let renders = env.dir.path().join("renders");
    let results = std::fs::read_to_string(renders.join("results.jsonl")).unwrap();
    let line: Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "pending", "not done: {line}");
    assert_eq!(line["files"], json!([]));
    assert!(
        line["error"].as_str().unwrap().contains("could not write"),
        "{line}"
    );
    assert!(
        !names_in(&renders)
            .iter()
            .any(|name| name.ends_with(".png") || name.ends_with(".part")),
        "{:?}",
        names_in(&renders)
    );

    let rerun = env.run(&args).await;
    assert_code(&rerun, 0);
    let results = std::fs::read_to_string(renders.join("results.jsonl")).unwrap();
    let line: Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "done");
    let file = renders.join(line["files"][0].as_str().unwrap());
    assert_eq!(png_size(&file), (2048, 2048));
    assert_eq!(charges(&env), 1, "the rerun downloaded it again, free");
}

// --- 2. A key the server echoes back ------------------------------------------------------

/// An error body in `provider`'s shape that quotes the request, key included.
fn echo_body(provider: Provider) -> Value {
    let quoted = format!("invalid request {{Authorization: Bearer {KEY}}} (key {KEY})");
    match provider {
        Provider::Runblob => json!({"error": "Unauthorized", "message": quoted}),
        Provider::Gptimg => {
            json!({"error": {"code": "UNAUTHORIZED", "message": quoted, "request_id": KEY}})
        }
        Provider::Runbase => json!({"error": {"message": quoted, "code": "invalid_api_key"}}),
    }
}

#[tokio::test]
async fn a_key_echoed_by_any_provider_on_create_or_status_never_reaches_any_output() {
    let env = Env::start(instant()).await;
    for (provider, name) in PROVIDERS {
        for operation in [Operation::Create, Operation::Status] {
            for verbosity in ["-vvv", "-q"] {
                let status = if operation == Operation::Create {
                    500
                } else {
                    401
                };
                env.server
                    .add_fault(fault(
                        http(status, echo_body(provider), &[]),
                        provider,
                        operation,
                    ))
                    .unwrap();
                let output = env.run(&generate(name, &[verbosity, "--json"])).await;
                let expected = if operation == Operation::Create { 6 } else { 5 };
                assert_code(&output, expected);
                assert_no_key(&output);
                let json = json_output(&output);
                let message = json["error"]["provider_message"].as_str().unwrap_or("");
                assert!(
                    message.contains("Bearer [redacted]"),
                    "{name} {operation:?}: {json:#}"
                );
            }
        }
    }
    // And as plain text, outside any JSON shape.
    env.server
        .add_fault(fault(
            http(
                502,
                Value::String(format!("upstream said: Authorization: Bearer {KEY}")),
                &[],
            ),
            Provider::Runbase,
            Operation::Create,
        ))
        .unwrap();
    let output = env
        .run(&["-vvv", "generate", "a fox", "--provider", "runbase"])
        .await;
    assert_code(&output, 6);
    assert_no_key(&output);
    assert!(
        stderr(&output).contains("[redacted]"),
        "{}",
        stderr(&output)
    );
}

// --- 3. --timeout bounds every request ------------------------------------------------------

#[tokio::test]
async fn a_status_that_trickles_stalls_or_never_answers_ends_at_the_timeout_with_the_handle() {
    let env = Env::start(instant()).await;
    let never = FaultKind::Latency { ms: 3_600_000 };
    let trickle = FaultKind::Trickle {
        chunk_bytes: 1,
        interval_ms: 1_000,
    };
    // Headers and the first 16 bytes, then nothing for an hour.
    let stalled = FaultKind::Trickle {
        chunk_bytes: 16,
        interval_ms: 3_600_000,
    };
    for kind in [trickle, stalled, never] {
        env.server
            .add_fault(fault(kind, Provider::Gptimg, Operation::Status).always())
            .unwrap();
        let (output, elapsed) =
            timed(&env, &generate("gptimg", &["--timeout", "2", "--json"])).await;
        env.server.clear_faults();
        assert_code(&output, 5);
        assert_ended_promptly(elapsed, &output);
        let json = json_output(&output);
        assert!(
            json["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("imggen wait gptimg:"),
            "{json:#}"
        );
    }
}

#[tokio::test]
async fn a_create_that_never_answers_ends_at_the_timeout_unknown_and_is_never_resent() {
    let env = Env::start(instant()).await;
    for (provider, name) in PROVIDERS {
        env.server
            .add_fault(fault(
                FaultKind::Latency { ms: 3_600_000 },
                provider,
                Operation::Create,
            ))
            .unwrap();
        let before = charges(&env);
        let (output, elapsed) = timed(
            &env,
            &["generate", "a fox", "--provider", name, "--timeout", "2"],
        )
        .await;
        assert_code(&output, 6);
        assert_ended_promptly(elapsed, &output);
        assert!(
            stderr(&output).contains("may have been created and charged"),
            "{}",
            stderr(&output)
        );
        assert_eq!(charges(&env) - before, 1, "{name}: sent once, never again");
    }
}

// --- 4. Downloads obey the deadline; retries are bounded --------------------------------

#[tokio::test]
async fn a_download_at_a_byte_a_second_ends_at_the_timeout_after_one_attempt() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            fault(
                FaultKind::Trickle {
                    chunk_bytes: 1,
                    interval_ms: 1_000,
                },
                Provider::Gptimg,
                Operation::Download,
            )
            .always(),
        )
        .unwrap();
    let (output, elapsed) = timed(&env, &generate("gptimg", &["--timeout", "3"])).await;
    assert_code(&output, 1);
    assert_ended_promptly(elapsed, &output);
    assert_eq!(downloads(&env), 1, "a slow body is not downloaded twice");
    assert!(
        stderr(&output).contains("imggen wait gptimg:"),
        "{}",
        stderr(&output)
    );
    assert!(names_in(&env.out_dir()).is_empty());
}

#[tokio::test]
async fn a_body_shorter_than_its_length_is_retried_within_the_timeout_and_never_saved() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(fault(FaultKind::CutShort, Provider::Runbase, Operation::Download).always())
        .unwrap();
    let (output, elapsed) = timed(&env, &generate("runbase", &["--timeout", "4"])).await;
    assert_code(&output, 1);
    assert_ended_promptly(elapsed, &output);
    let attempts = downloads(&env);
    assert!((1..=6).contains(&attempts), "{attempts} attempts");
    assert!(names_in(&env.out_dir()).is_empty());

    // Cut short once: the retry gets it whole.
    env.server.clear_faults();
    env.server
        .add_fault(fault(
            FaultKind::CutShort,
            Provider::Runbase,
            Operation::Download,
        ))
        .unwrap();
    let output = env.run(&generate("runbase", &[])).await;
    assert_code(&output, 0);
    png_size(&printed_paths(&output, env.dir.path())[0]);
}

// --- 5. Control characters from a server ------------------------------------------------------

#[tokio::test]
async fn a_failure_message_full_of_escape_sequences_is_shown_escaped_for_every_provider() {
    let env = Env::start(instant()).await;
    for (provider, name) in PROVIDERS {
        env.server
            .add_fault(fault(
                FaultKind::TaskFailure {
                    code: HOSTILE.to_owned(),
                },
                provider,
                Operation::Create,
            ))
            .unwrap();
        let output = env.run(&generate(name, &["-vv"])).await;
        assert_code(&output, 4);
        assert_no_control_characters(&output);
        assert!(
            stderr(&output).contains(r"MODERATION\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m"),
            "{name}: {}",
            stderr(&output)
        );

        // --json keeps the provider's words exactly, JSON-escaped.
        env.server
            .add_fault(fault(
                FaultKind::TaskFailure {
                    code: HOSTILE.to_owned(),
                },
                provider,
                Operation::Create,
            ))
            .unwrap();
        let output = env.run(&generate(name, &["--json"])).await;
        let json = json_output(&output);
        let error = &json["error"];
        let words = format!("{} {}", error["code"], error["provider_message"]);
        assert!(words.contains("\\u001b[2J"), "{name}: {words}");
        assert_no_control_characters(&output);
    }
}

#[tokio::test]
async fn a_task_id_full_of_escape_sequences_is_shown_escaped_and_its_handle_kept() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(fault(
            http(
                201,
                json!({"task_uuid": format!("evil{HOSTILE}"), "status": "pending", "price": "0.0123"}),
                &[],
            ),
            Provider::Runblob,
            Operation::Create,
        ))
        .unwrap();
    let output = env.run(&generate("runblob", &[])).await;
    // The provider then says it has no such task: a task it accepted, so not a refusal.
    assert_code(&output, 5);
    assert_no_control_characters(&output);
    let stderr = stderr(&output);
    assert!(
        stderr.contains(r"runblob:evilMODERATION\u{1b}[2J"),
        "the handle, escaped: {stderr}"
    );
    assert!(stderr.contains("unusual task id"), "{stderr}");
}

// --- 6. Everything local before paying --------------------------------------------------------

#[tokio::test]
async fn an_out_folder_that_cannot_be_made_is_refused_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    std::fs::write(env.dir.path().join("taken"), b"a file").unwrap();
    for out in ["taken", "taken/inside"] {
        let output = env
            .run(&["generate", "a fox", "--provider", "runbase", "--out", out])
            .await;
        assert_code(&output, 2);
        assert_eq!(env.requests(), 0, "nothing was sent for --out {out}");
        let stderr = stderr(&output);
        assert!(
            stderr.contains("cannot be saved in") && stderr.contains("taken"),
            "{stderr}"
        );
    }
    assert!(env.server.ledger().is_empty());
}

#[tokio::test]
async fn a_dash_reads_the_prompt_from_stdin_and_an_empty_one_sends_nothing() {
    let env = Env::start(instant()).await;
    let mut cmd = env.cmd(&[
        "generate",
        "-",
        "--provider",
        "runbase",
        "--poll-interval",
        "0.05",
    ]);
    cmd.write_stdin("a lighthouse\nat dusk\n");
    let output = crate::run(cmd).await;
    assert_code(&output, 0);
    let prompts: Vec<String> = env
        .server
        .tasks()
        .iter()
        .map(|task| task.prompt.clone())
        .collect();
    assert_eq!(prompts, ["a lighthouse\nat dusk"]);

    for stdin in ["", "  \n\n"] {
        let mut cmd = env.cmd(&["generate", "-", "--provider", "runbase"]);
        cmd.write_stdin(stdin);
        let output = crate::run(cmd).await;
        assert_code(&output, 2);
        assert!(
            stderr(&output).contains("the prompt is empty"),
            "{}",
            stderr(&output)
        );
    }
    std::fs::write(env.dir.path().join("prompt.txt"), "a fox from a file\n").unwrap();
    let output = env
        .run(&[
            "submit",
            "--prompt-file",
            "prompt.txt",
            "--provider",
            "runbase",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let missing = env
        .run(&[
            "submit",
            "--prompt-file",
            "nowhere.txt",
            "--provider",
            "runbase",
        ])
        .await;
    assert_code(&missing, 2);
    assert!(
        stderr(&missing).contains("nowhere.txt"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        env.server.tasks().len(),
        2,
        "only the two prompts with text were sent"
    );
}

// --- 7. Exit codes that tell the truth about money ---------------------------------------------

#[tokio::test]
async fn a_rate_limit_that_asks_for_a_day_on_a_paid_task_is_exit_5_not_nothing_charged() {
    let env = Env::start(instant()).await;
    for (provider, name) in PROVIDERS {
        env.server
            .add_fault(fault(
                http(
                    429,
                    json!({"detail": "slow down"}),
                    &[("Retry-After", "86400")],
                ),
                provider,
                Operation::Status,
            ))
            .unwrap();
        let (output, elapsed) = timed(&env, &generate(name, &["--json"])).await;
        assert_code(&output, 5);
        assert_ended_promptly(elapsed, &output);
        let json = json_output(&output);
        let error = &json["error"];
        assert_eq!(error["category"], "uncollected", "{json:#}");
        assert_eq!(error["status"], 429);
        assert!(error["may_have_been_charged"].as_bool().unwrap());
        assert_eq!(error["handles"].as_array().unwrap().len(), 1);
        assert!(error["hint"].as_str().unwrap().contains("imggen wait"));
    }
}

#[tokio::test]
async fn a_status_answer_that_is_not_json_leaves_the_paid_task_to_resume_with_exit_5() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(fault(
            FaultKind::MalformedJson,
            Provider::Runbase,
            Operation::Status,
        ))
        .unwrap();
    let output = env.run(&generate("runbase", &[])).await;
    assert_code(&output, 5);
    assert!(
        stderr(&output).contains("imggen wait runbase:"),
        "{}",
        stderr(&output)
    );
    assert_eq!(charges(&env), 1);
}

#[tokio::test]
async fn a_malformed_or_cut_create_answer_is_an_unknown_outcome_paid_once() {
    let env = Env::start(instant()).await;
    for kind in [FaultKind::MalformedJson, FaultKind::CutShort] {
        for (provider, name) in PROVIDERS {
            env.server
                .add_fault(fault(kind.clone(), provider, Operation::Create))
                .unwrap();
            let before = charges(&env);
            let output = env.run(&["generate", "a fox", "--provider", name]).await;
            assert_code(&output, 6);
            assert_eq!(charges(&env) - before, 1, "{name} {kind:?}: never resent");
        }
    }
}

#[tokio::test]
async fn a_receipt_that_cannot_reach_a_full_stdout_is_kept_on_stderr_and_the_exit_says_so() {
    let full = Path::new("/dev/full");
    assert!(
        full.exists(),
        "Linux's /dev/full: every write fails with ENOSPC"
    );
    let env = Env::start(instant()).await;
    for args in [
        &["submit", "a fox", "--provider", "runbase"][..],
        &generate("runbase", &["--json"])[..],
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imggen"));
        cmd.args(args)
            .current_dir(env.dir.path())
            .env("IMGGEN_HOME", env.dir.path().join(".imggen-home"))
            .stdout(std::fs::File::options().write(true).open(full).unwrap())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env.server.env() {
            cmd.env(name, value);
        }
        cmd.env("RUNBASE_API_KEY", KEY).env_remove("RUST_LOG");
        let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert_code(&output, 1);
        let stderr = stderr(&output);
        assert!(stderr.contains("No space left on device"), "{stderr}");
        let task = env.server.tasks().last().unwrap().id.clone();
        assert!(
            stderr.contains(&format!("\"task_id\":\"{task}\"")),
            "{args:?}: the paid task's handle is on stderr: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_result_url_that_is_not_https_or_is_full_of_controls_is_refused_and_the_task_kept() {
    let env = Env::start(instant()).await;
    for url in [
        "file:///etc/passwd".to_owned(),
        format!("javascript:alert(1)//{HOSTILE}"),
    ] {
        env.server
            .add_fault(
                fault(
                    http(
                        200,
                        json!({"task_uuid": "0b5e1c2e-6f0e-4c55-9d8e-2b7f3f0b9a11",
                               "status": "completed", "prompt": "a fox",
                               "result_image_url": url, "message": null}),
                        &[],
                    ),
                    Provider::Runblob,
                    Operation::Status,
                )
                .always(),
            )
            .unwrap();
        let output = env.run(&generate("runblob", &[])).await;
        env.server.clear_faults();
        assert_code(&output, 1);
        assert_no_control_characters(&output);
        let stderr = stderr(&output);
        assert!(stderr.contains("only https:// is downloaded"), "{stderr}");
        assert!(stderr.contains("imggen wait runblob:"), "{stderr}");
    }
    assert_eq!(downloads(&env), 0, "nothing was fetched");
    assert!(names_in(&env.out_dir()).is_empty());
}

#[tokio::test]
async fn a_status_answer_larger_than_the_cap_leaves_the_paid_task_to_resume() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            fault(
                http(200, Value::String("x".repeat(5 * 1024 * 1024)), &[]),
                Provider::Gptimg,
                Operation::Status,
            )
            .always(),
        )
        .unwrap();
    let output = env.run(&generate("gptimg", &["--timeout", "3"])).await;
    assert_code(&output, 5);
    let stderr = stderr(&output);
    assert!(stderr.contains("imggen wait gptimg:"), "{stderr}");
    assert_eq!(charges(&env), 1);
}

#[tokio::test]
async fn a_damaged_journal_stops_the_batch_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("prompts.jsonl"),
        "{\"prompt\": \"a fox\", \"provider\": \"runbase\"}\n",
    )
    .unwrap();
    let renders = env.dir.path().join("renders");
    std::fs::create_dir(&renders).unwrap();
    std::fs::write(
        renders.join("imggen-journal.sqlite"),
        b"this is not a database, whatever its name says",
    )
    .unwrap();
    let output = env
        .run(&["batch", "prompts.jsonl", "--out", "renders"])
        .await;
    // Like a journal of another batch: refused before anything is sent.
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0, "nothing was sent");
    let stderr = stderr(&output);
    assert!(
        stderr.contains("imggen-journal.sqlite"),
        "the journal is named: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("imggen:")).count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_batch_line_whose_reference_file_cannot_be_read_is_listed_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("prompts.jsonl"),
        "{\"prompt\": \"a fox\", \"provider\": \"runblob\"}\n\
         {\"prompt\": \"a fox like this\", \"provider\": \"runblob\", \"refs\": [\"missing.png\"]}\n",
    )
    .unwrap();
    let output = env
        .run(&["batch", "prompts.jsonl", "--out", "renders"])
        .await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0, "not even the valid line was sent");
    let stderr = stderr(&output);
    assert!(
        stderr.contains("line 2") && stderr.contains("missing.png"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_create_answer_larger_than_the_cap_is_an_unknown_outcome_never_resent() {
    let env = Env::start(instant()).await;
    let creates = |env: &Env| {
        env.server
            .requests()
            .recent
            .iter()
            .filter(|record| record.method == "POST")
            .count()
    };
    for (provider, name) in PROVIDERS {
        env.server
            .add_fault(fault(
                http(200, Value::String("x".repeat(5 * 1024 * 1024)), &[]),
                provider,
                Operation::Create,
            ))
            .unwrap();
        let before = creates(&env);
        let output = env.run(&["generate", "a fox", "--provider", name]).await;
        // A success status whose body cannot be held: the task may well exist.
        assert_code(&output, 6);
        assert_eq!(creates(&env) - before, 1, "{name}: sent once");
    }
}
