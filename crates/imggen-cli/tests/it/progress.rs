//! Progress where stderr is not a terminal (CI, `nohup`, a log file): plain lines on each
//! change of a short run and a summary line at a steady pace; `--progress jsonl` for scripts;
//! warnings as `imggen: warning: …` lines (or events), never a raw tracing line.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use imggen_mock::{Balance, Fault, FaultKind, MockConfig, Operation, Profile, Provider};
use imggen_types::Credits;
use serde_json::{Value, json};

use crate::{Env, KEY, assert_code, instant, stderr};

/// A failure guard for a line the run must print, never a delay.
const LINE_LIMIT: Duration = Duration::from_secs(60);

/// Writes one JSON request per line as `prompts.jsonl` in the binary's working directory.
fn write_batch(env: &Env, lines: &[Value]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(env.dir.path().join("prompts.jsonl"), text).unwrap();
}

/// stderr as JSON objects, one per line: the test fails on any line that is not one.
#[track_caller]
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line:?}\n{text}"));
            assert!(value["event"].is_string(), "no event: {line}");
            assert!(value["elapsed_ms"].is_u64(), "no elapsed_ms: {line}");
            value
        })
        .collect()
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .collect()
}

#[track_caller]
fn assert_no_control_characters(text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && imggen_types::text::needs_escape(c)),
        "{text:?}"
    );
}

#[tokio::test]
async fn captured_stderr_shows_a_line_per_change_and_a_steady_summary_during_a_batch() {
    // Tasks finish only when the test moves the emulator's clock: until then, the run can
    // only wait — and say so at its steady pace.
    let env = Env::start(
        MockConfig::default()
            .manual_clock()
            .profile(Profile::Fixed(Duration::from_secs(60))),
    )
    .await;
    write_batch(
        &env,
        &[
            json!({"id": "hero", "prompt": "A lighthouse at dusk"}),
            json!({"prompt": "A ceramic lamp"}),
            json!({"prompt": "A red fox"}),
        ],
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imggen"));
    cmd.args([
        "batch",
        "prompts.jsonl",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
    ])
    .current_dir(env.dir.path())
    .env("IMGGEN_HOME", env.dir.path().join(".imggen-home"))
    .env_remove("RUST_LOG")
    // No --progress: `auto`, on a stderr that is a pipe.
    .env_remove("IMGGEN_PROGRESS")
    .env("IMGGEN_PROGRESS_INTERVAL", "0.02")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (name, value) in env.server.env() {
        cmd.env(name, value);
    }
    cmd.env("GPTIMG_API_KEY", KEY);
    /// Ends the run if the test fails first: its tasks would never finish.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = cmd.spawn().unwrap();
    let pipe = child.stderr.take().unwrap();
    let mut child = Kill(child);
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(pipe).lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });

    // The signal: a steady line with every request in flight, what their creates cost and
    // what the whole batch was projected to cost before anything was sent.
    let mut seen = Vec::new();
    let steady = "imggen: 0/3 requests finished: 0 done, 3 in flight, 0 queued; cost 6 credits of 6 credits; ";
    loop {
        let line = tokio::time::timeout(LINE_LIMIT, lines_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no steady line in time:\n{}", seen.join("\n")))
            .unwrap_or_else(|| panic!("the run ended first:\n{}", seen.join("\n")));
        let found = line.starts_with(steady);
        seen.push(line);
        if found {
            break;
        }
    }
    env.server.advance(Duration::from_secs(60)).await;
    tokio::time::timeout(LINE_LIMIT, reader)
        .await
        .expect("the run ends once its tasks are done")
        .unwrap();
    // stderr is closed: the process has ended.
    let status = child.0.wait().unwrap();
    while let Ok(line) = lines_rx.try_recv() {
        seen.push(line);
    }
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(0), "{text}");
    assert_no_control_characters(&text);
    for label in ["line 1 (id \"hero\")", "line 2", "line 3"] {
        let created = format!("imggen: {label}: created gptimg task ");
        assert_eq!(
            seen.iter().filter(|l| l.starts_with(&created)).count(),
            1,
            "one line when {label}'s task is created:\n{text}"
        );
        let done = format!("imggen: {label}: done: imggen-out/");
        assert_eq!(
            seen.iter().filter(|l| l.starts_with(&done)).count(),
            1,
            "one line when {label} is done:\n{text}"
        );
    }
    assert!(
        seen.iter().all(|line| line.starts_with("imggen: ")),
        "nothing but imggen's lines:\n{text}"
    );
    assert!(
        seen.last()
            .unwrap()
            .starts_with("imggen: 3 requests: 3 done; cost 6 credits; "),
        "the summary ends it:\n{text}"
    );
}

#[tokio::test]
async fn a_long_batch_in_plain_mode_writes_no_line_per_request() {
    let env = Env::start(instant()).await;
    let requests: Vec<Value> = (0..25)
        .map(|i| json!({"prompt": format!("fox {i}")}))
        .collect();
    write_batch(&env, &requests);
    let args = [
        "batch",
        "prompts.jsonl",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
        "--progress",
        "plain",
    ];
    let output = env.run(&args).await;
    assert_code(&output, 0);
    let text = stderr(&output);
    assert!(!text.contains("imggen: line "), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("imggen: 25 requests: 25 done; cost 50 credits; "),
        "{text}"
    );

    // The same on a short batch says each request: the difference is the run's length.
    write_batch(&env, &requests[..2]);
    let output = env.run(&[&args[..], &["--out", "short"]].concat()).await;
    assert_code(&output, 0);
    let text = stderr(&output);
    assert!(
        text.contains("imggen: line 1: created gptimg task"),
        "{text}"
    );
    assert!(text.contains("imggen: line 2: done: short/"), "{text}");
}

#[tokio::test]
async fn jsonl_writes_a_created_and_a_saved_event_for_every_request_and_nothing_else() {
    let env = Env::start(instant()).await;
    write_batch(
        &env,
        &[
            json!({"id": "hero", "prompt": "A lighthouse at dusk"}),
            json!({"prompt": "A ceramic lamp", "provider": "runbase"}),
            json!({"prompt": "Two foxes", "n": 2}),
        ],
    );
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "gptimg",
            "--poll-interval",
            "0.05",
            "--progress",
            "jsonl",
        ])
        .await;
    assert_code(&output, 0);
    let text = stderr(&output);
    let events = json_lines(&text);
    for id in ["hero", "2", "3"] {
        let created: Vec<&Value> = named(&events, "created")
            .into_iter()
            .filter(|event| event["id"] == id)
            .collect();
        assert_eq!(created.len(), 1, "{id}: {text}");
        assert!(created[0]["task"].is_string() && created[0]["handle"].is_string());
        assert!(created[0]["provider"].is_string(), "{text}");
        let saved: Vec<&Value> = named(&events, "saved")
            .into_iter()
            .filter(|event| event["id"] == id)
            .collect();
        let images = if id == "3" { 2 } else { 1 };
        assert_eq!(saved.len(), images, "{id}: a saved event per file: {text}");
        for event in saved {
            let path = event["path"].as_str().unwrap();
            assert!(env.dir.path().join(path).is_file(), "{path}");
        }
    }
    let line_of_hero = &named(&events, "created")
        .into_iter()
        .find(|event| event["id"] == "hero")
        .unwrap()["line"];
    assert_eq!(line_of_hero, 1);
    let costs = named(&events, "cost");
    assert_eq!(
        costs.last().unwrap()["cost"],
        json!({"usd": "0.05", "credits": 6}),
        "the cost so far, last at the total: {text}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary", "{text}");
    assert_eq!(summary["counts"]["done"], 3);
}

#[tokio::test]
async fn generate_in_jsonl_says_created_status_saved_and_cost_and_errors_are_events_too() {
    let env = Env::start(instant()).await;
    let mut cmd = env.cmd(&[
        "generate",
        "a fox",
        "--provider",
        "runblob",
        "--poll-interval",
        "0.05",
    ]);
    cmd.env("IMGGEN_PROGRESS", "jsonl");
    let output = crate::run(cmd).await;
    assert_code(&output, 0);
    let text = stderr(&output);
    let events = json_lines(&text);
    let names: Vec<&str> = events
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    let task = env.server.tasks()[0].id.clone();
    assert_eq!(names[0], "created", "{text}");
    assert_eq!(events[0]["task"], task.as_str());
    assert_eq!(events[0]["handle"], format!("runblob:{task}"));
    assert!(names.contains(&"cost"), "{text}");
    let succeeded = events
        .iter()
        .any(|event| event["event"] == "status" && event["status"] == "succeeded");
    assert!(succeeded, "{text}");
    let saved = named(&events, "saved");
    assert_eq!(saved.len(), 1, "{text}");
    assert_eq!(saved[0]["task"], task.as_str());
    let path = saved[0]["path"].as_str().unwrap();
    assert_eq!(
        crate::stdout(&output).trim(),
        path,
        "stdout keeps its paths"
    );

    // A refusal is an `error` event with the fields of --json's error; still only JSON.
    env.server.set_balance(KEY, Balance::Gptimg(Credits(0)));
    let output = env
        .run(&[
            "--progress",
            "jsonl",
            "generate",
            "a fox",
            "--provider",
            "gptimg",
        ])
        .await;
    assert_code(&output, 3);
    let text = stderr(&output);
    let events = json_lines(&text);
    let error = events.last().unwrap();
    assert_eq!(error["event"], "error", "{text}");
    assert_eq!(error["exit_code"], 3);
    assert_eq!(error["category"], "refused");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("INSUFFICIENT_CREDITS"),
        "{text}"
    );

    // So is a command line clap refuses.
    let output = env
        .run(&[
            "--progress",
            "jsonl",
            "generate",
            "a fox",
            "--count",
            "many",
        ])
        .await;
    assert_code(&output, 2);
    let text = stderr(&output);
    let events = json_lines(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["event"], "error");
    assert_eq!(events[0]["exit_code"], 2);
}

/// runblob accepts the create and answers with a task id full of escape sequences: imggen
/// keeps the paid task, and warns through tracing that the id is unusual.
fn unusual_task_id(env: &Env) {
    env.server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 201,
                body: Some(json!({
                    "task_uuid": "evil\u{1b}[2J\u{1b}]0;pwned\u{7}",
                    "status": "pending",
                    "price": "0.0123"
                })),
                headers: Default::default(),
            })
            .provider(Provider::Runblob)
            .operation(Operation::Create),
        )
        .unwrap();
}

#[tokio::test]
async fn a_warning_during_a_run_is_an_imggen_warning_line_or_a_warning_event() {
    let env = Env::start(instant()).await;
    let args = [
        "generate",
        "a fox",
        "--provider",
        "runblob",
        "--poll-interval",
        "0.05",
    ];
    unusual_task_id(&env);
    let mut cmd = env.cmd(&args);
    cmd.env_remove("IMGGEN_PROGRESS");
    let output = crate::run(cmd).await;
    // The provider then says it has no such task: paid, not collected.
    assert_code(&output, 5);
    let text = stderr(&output);
    assert_no_control_characters(&text);
    let warning = text
        .lines()
        .find(|line| line.contains("unusual task id"))
        .unwrap_or_else(|| panic!("no warning:\n{text}"));
    assert!(
        warning.starts_with("imggen: warning: the provider returned an unusual task id"),
        "{text}"
    );
    assert!(
        !text.contains("WARN") && !text.contains("imggen_core"),
        "no raw tracing line:\n{text}"
    );
    assert!(
        text.contains(r"imggen: created runblob task evil\u{1b}[2J"),
        "the plain line of the task, escaped:\n{text}"
    );

    unusual_task_id(&env);
    let output = env
        .run(&[&["--progress", "jsonl"], &args[..]].concat())
        .await;
    assert_code(&output, 5);
    let text = stderr(&output);
    let events = json_lines(&text);
    let warnings = named(&events, "warning");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("the provider returned an unusual task id"),
        "{text}"
    );
    assert_no_control_characters(&text);
    assert_eq!(
        named(&events, "created")[0]["task"],
        "evil\u{1b}[2J\u{1b}]0;pwned\u{7}",
        "JSON keeps the provider's text as sent"
    );
}
