//! `imggen batch`: real PNGs and `results.jsonl` from a JSONL file, resumed by running the same
//! command again without paying twice, with every exit code a batch can end with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imggen_mock::{Balance, EntryKind, Fault, FaultKind, MockConfig, Operation, Profile, Provider};
use imggen_types::Credits;
use serde_json::{Value, json};

use crate::{Env, assert_code, batch_json, instant, png_size, stderr, stdout};

/// Writes `lines` (JSON values, or raw text for a broken line) as `name` in the binary's
/// working directory.
fn write_batch(env: &Env, name: &str, lines: &[Value]) {
    let text: String = lines
        .iter()
        .map(|line| match line {
            Value::String(raw) => format!("{raw}\n"),
            other => format!("{other}\n"),
        })
        .collect();
    std::fs::write(env.dir.path().join(name), text).unwrap();
}

/// `results.jsonl` of `out`, one JSON value per line.
fn results(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_else(|err| panic!("{}: {err}", out.display()));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn field<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().map(|line| &line[name]).collect()
}

fn charges(env: &Env) -> usize {
    env.server
        .ledger()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count()
}

/// The files of a result line, as paths, each checked to be a whole PNG of `size`.
#[track_caller]
fn pngs(out: &Path, line: &Value, size: (u32, u32)) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = line["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| out.join(file.as_str().unwrap()))
        .collect();
    for file in &files {
        assert_eq!(png_size(file), size, "{}", file.display());
    }
    files
}

#[tokio::test]
async fn a_batch_saves_every_image_and_a_result_line_each_and_a_rerun_sends_nothing() {
    let env = Env::start(instant()).await;
    write_batch(
        &env,
        "prompts.jsonl",
        &[
            json!({"id": "hero", "prompt": "A lighthouse at dusk", "aspect_ratio": "16:9"}),
            json!({"prompt": "A ceramic lamp", "provider": "runbase"}),
            json!({"prompt": "Two foxes", "n": 2}),
            Value::String(String::new()),
            json!({"id": 7, "prompt": "A red fox", "provider": "runblob", "aspect_ratio": "4:3"}),
        ],
    );
    let args = [
        "batch",
        "prompts.jsonl",
        "--out",
        "renders",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
    ];
    let output = env.run(&args).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "renders/results.jsonl\n");
    let summary = stderr(&output);
    assert!(
        summary.starts_with("imggen: 4 requests: 4 done; cost $0.0623 + 6 credits; "),
        "one summary line: {summary}"
    );
    assert_eq!(summary.lines().count(), 1, "{summary}");

    let out = env.dir.path().join("renders");
    let lines = results(&out);
    assert_eq!(field(&lines, "id"), ["hero", "2", "3", "7"], "input order");
    assert_eq!(field(&lines, "line"), [1, 2, 3, 5], "blank lines count");
    assert_eq!(field(&lines, "status"), ["done"; 4]);
    assert_eq!(
        field(&lines, "provider"),
        ["gptimg", "runbase", "gptimg", "runblob"],
        "--provider is every line's default; a line's own provider wins"
    );
    assert_eq!(
        field(&lines, "cost"),
        [
            &json!({"usd": "0", "credits": 2}),
            &json!({"usd": "0.05", "credits": 0}),
            &json!({"usd": "0", "credits": 4}),
            &json!({"usd": "0.0123", "credits": 0}),
        ]
    );
    assert!(lines.iter().all(|line| line["error"].is_null()));
    assert_eq!(pngs(&out, &lines[0], (256, 144)).len(), 1, "16:9");
    assert_eq!(pngs(&out, &lines[1], (256, 256)).len(), 1);
    assert_eq!(pngs(&out, &lines[2], (256, 256)).len(), 2, "n = 2");
    assert_eq!(pngs(&out, &lines[3], (256, 192)).len(), 1, "4:3");
    let mut task_ids: Vec<&str> = lines
        .iter()
        .flat_map(|line| line["task_ids"].as_array().unwrap())
        .map(|id| id.as_str().unwrap())
        .collect();
    task_ids.sort_unstable();
    let mut made: Vec<String> = env.server.tasks().into_iter().map(|t| t.id).collect();
    made.sort_unstable();
    assert_eq!(task_ids, made, "every task the provider made has its line");
    assert_eq!(charges(&env), 4, "one charge per task");
    assert!(out.join("imggen-journal.sqlite").is_file());

    // Running the same command again finds everything done: not one request is sent.
    let sent = env.requests();
    let again = env.run(&args).await;
    assert_code(&again, 0);
    assert_eq!(stdout(&again), "renders/results.jsonl\n");
    assert!(
        stderr(&again).contains("4 done (4 before this run)"),
        "{}",
        stderr(&again)
    );
    assert_eq!(env.requests(), sent, "a finished batch sends nothing");
    assert_eq!(charges(&env), 4);
    assert_eq!(results(&out), lines, "results.jsonl is the same");

    let quiet = env.run(&[&["-q"], &args[..]].concat()).await;
    assert_code(&quiet, 0);
    assert_eq!(stderr(&quiet), "", "-q: no summary");
}

#[tokio::test]
async fn invalid_lines_are_listed_by_number_and_nothing_is_sent() {
    let env = Env::start(instant()).await;
    write_batch(
        &env,
        "prompts.jsonl",
        &[
            json!({"prompt": "A fine request"}),
            json!({"prompt": 3}),
            Value::String("not json".into()),
            json!({"id": "wide", "prompt": "A fox", "provider": "runblob", "aspect_ratio": "16:9"}),
            json!({"id": "typo", "prompt": "A fox", "colour": "red"}),
            json!({"prompt": "A lamp", "provider": "runbase"}),
        ],
    );
    let mut cmd = env.cmd(&["batch", "prompts.jsonl", "--provider", "gptimg"]);
    cmd.env_remove("RUNBASE_API_KEY");
    let output = crate::run(cmd).await;
    assert_code(&output, 2);
    let stderr = stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "imggen: 5 invalid lines in prompts.jsonl; nothing was sent"
    );
    assert_eq!(
        lines[1],
        "  line 2: prompt must be a string, not a number (3)"
    );
    assert!(lines[2].starts_with("  line 3: not valid JSON"), "{stderr}");
    assert!(
        lines[3].starts_with("  line 4 (id \"wide\"): ")
            && lines[3].contains("runblob accepts 1:1, 4:3, 3:4"),
        "a ratio the line's provider does not take: {stderr}"
    );
    assert!(
        lines[4].starts_with("  line 5 (id \"typo\"): unknown field \"colour\""),
        "{stderr}"
    );
    assert!(
        lines[5].starts_with("  line 6: ") && lines[5].contains("RUNBASE_API_KEY"),
        "a provider without its key names the variable: {stderr}"
    );
    assert!(lines[6].contains("--skip-invalid"), "{stderr}");
    assert_eq!(env.requests(), 0, "no request reached the provider");
    assert!(!env.out_dir().exists(), "nothing was written");

    let json = batch_json(
        &env.run(&["batch", "prompts.jsonl", "--provider", "gptimg", "--json"])
            .await,
    );
    assert_eq!(json["error"]["category"], "invalid");
    assert_eq!(json["error"]["exit_code"], 2);
    assert_eq!(
        json["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line["line"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3, 4, 5],
        "with every key set, the runbase line is valid"
    );
    assert!(json["results"].is_null() && json["journal"].is_null());
    assert_eq!(env.requests(), 0);
}

#[tokio::test]
async fn skip_invalid_runs_the_valid_lines_and_lists_the_others() {
    let env = Env::start(instant()).await;
    write_batch(
        &env,
        "prompts.jsonl",
        &[
            json!({"id": "a", "prompt": "A fox"}),
            Value::String("{\"prompt\": ".into()),
            json!({"id": "b", "prompt": "A lamp", "aspect_ratio": "7:5"}),
            json!({"id": "c", "prompt": "A lighthouse"}),
        ],
    );
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "runbase",
            "--skip-invalid",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let json = batch_json(&output);
    assert_eq!(
        json["counts"],
        json!({"done": 2, "failed": 0, "unknown": 0, "pending": 0, "skipped_invalid": 2})
    );
    assert_eq!(json["invalid"][0]["line"], 2);
    assert_eq!(json["invalid"][1]["id"], "b");
    assert!(
        json["invalid"][1]["problem"]
            .as_str()
            .unwrap()
            .contains("\"7:5\""),
        "{json}"
    );
    assert_eq!(json["cost"], json!({"usd": "0.1", "credits": 0}));
    let lines = results(&env.out_dir());
    assert_eq!(
        field(&lines, "status"),
        ["done", "skipped_invalid", "skipped_invalid", "done"]
    );
    assert_eq!(charges(&env), 2);
}

#[tokio::test]
async fn a_lost_create_is_listed_kept_unknown_and_resent_only_with_resubmit_unknown() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Gptimg)
                .operation(Operation::Create),
        )
        .unwrap();
    write_batch(
        &env,
        "prompts.jsonl",
        &[
            json!({"id": "a", "prompt": "A ceramic lamp"}),
            json!({"id": "b", "prompt": "A red fox"}),
        ],
    );
    // One at a time, so the dropped create is line 1's.
    let args = [
        "batch",
        "prompts.jsonl",
        "--provider",
        "gptimg",
        "--concurrency",
        "1",
        "--poll-interval",
        "0.05",
    ];
    let output = env.run(&[&args[..], &["--json"]].concat()).await;
    assert_code(&output, 6);
    let json = batch_json(&output);
    assert_eq!(json["error"]["category"], "outcome_unknown");
    assert_eq!(json["error"]["may_have_been_charged"], true);
    assert_eq!(json["counts"]["done"], 1);
    assert_eq!(json["counts"]["unknown"], 1);
    let unknown = &json["unknown"][0];
    assert_eq!(unknown["id"], "a");
    assert_eq!(unknown["line"], 1);
    assert_eq!(unknown["prompt"], "A ceramic lamp");
    assert_eq!(unknown["provider"], "gptimg");
    assert_eq!(unknown["attempts"], 1);
    assert!(
        unknown["attempted_at"].is_string(),
        "when it was sent: {unknown}"
    );
    let stderr_text = stderr(&output);
    assert!(
        stderr_text.contains("imggen: 1 request may have been created and charged"),
        "{stderr_text}"
    );
    assert!(
        stderr_text.contains(
            "  line 1 (id \"a\"): gptimg create: the connection failed after the request was sent"
        ),
        "{stderr_text}"
    );
    assert!(stderr_text.contains("--resubmit-unknown"), "{stderr_text}");
    // The emulator did make and charge the lost create's task.
    assert_eq!(charges(&env), 2);
    assert_eq!(env.server.tasks().len(), 2);

    // Run again: still unknown, still listed, and nothing is sent.
    let sent = env.requests();
    let again = env.run(&args).await;
    assert_code(&again, 6);
    assert!(stderr(&again).contains("line 1 (id \"a\")"));
    assert_eq!(env.requests(), sent, "nothing was sent");
    assert_eq!(charges(&env), 2, "nothing was charged");
    let lines = results(&env.out_dir());
    assert_eq!(field(&lines, "status"), ["unknown", "done"]);

    // Asked to, imggen sends it again: exactly one more charge.
    let resent = env
        .run(&[&args[..], &["--resubmit-unknown", "--json"]].concat())
        .await;
    assert_code(&resent, 0);
    let json = batch_json(&resent);
    assert_eq!(json["resubmitted"], json!(["a"]));
    assert_eq!(json["counts"]["done"], 2);
    assert!(json["error"].is_null());
    assert_eq!(charges(&env), 3, "exactly one more charge");
    let lines = results(&env.out_dir());
    assert_eq!(field(&lines, "status"), ["done", "done"]);
    assert_eq!(pngs(&env.out_dir(), &lines[0], (256, 256)).len(), 1);
}

#[tokio::test]
async fn failed_tasks_end_the_batch_with_exit_4_and_are_refunded() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "MODERATION_FAILED".into(),
            })
            .provider(Provider::Runblob)
            .operation(Operation::Create),
        )
        .unwrap();
    write_batch(
        &env,
        "prompts.jsonl",
        &[json!({"prompt": "A fox"}), json!({"prompt": "A lamp"})],
    );
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "runblob",
            "--concurrency",
            "1",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 4);
    let json = batch_json(&output);
    assert_eq!(json["error"]["category"], "failed");
    assert_eq!(json["error"]["exit_code"], 4);
    assert_eq!(json["counts"]["failed"], 1);
    assert_eq!(json["counts"]["done"], 1);
    assert_eq!(
        json["cost"],
        json!({"usd": "0.0123", "credits": 0}),
        "the failed task is refunded"
    );
    let stderr = stderr(&output);
    assert!(
        stderr.contains("imggen: 1 of 2 requests failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  line 1: ") && stderr.contains("MODERATION_FAILED"),
        "the failed line and why: {stderr}"
    );
    let lines = results(&env.out_dir());
    assert_eq!(field(&lines, "status"), ["failed", "done"]);
    assert_eq!(lines[0]["task_ids"].as_array().unwrap().len(), 1);
    assert_eq!(lines[0]["files"], json!([]));
    let kinds: Vec<EntryKind> = env.server.ledger().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == EntryKind::Refund)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_refused_batch_charges_nothing_exits_3_and_the_next_run_sends_it() {
    let env = Env::start(instant()).await;
    env.server
        .set_balance(crate::KEY, Balance::Gptimg(Credits(0)));
    write_batch(&env, "prompts.jsonl", &[json!({"prompt": "A fox"})]);
    let args = [
        "batch",
        "prompts.jsonl",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
    ];
    let output = env.run(&args).await;
    assert_code(&output, 3);
    let stderr = stderr(&output);
    assert!(
        stderr.contains("imggen: 1 request was not sent, or refused with nothing charged: gptimg create: 402 INSUFFICIENT_CREDITS"),
        "{stderr}"
    );
    assert!(env.server.ledger().is_empty());
    assert_eq!(field(&results(&env.out_dir()), "status"), ["pending"]);

    env.server
        .set_balance(crate::KEY, Balance::Gptimg(Credits(10)));
    let again = env.run(&args).await;
    assert_code(&again, 0);
    assert_eq!(charges(&env), 1);
}

#[tokio::test]
async fn a_stopped_batch_is_collected_by_the_next_run_without_paying_again() {
    let env = Env::start(
        MockConfig::default()
            .manual_clock()
            .profile(Profile::Fixed(Duration::from_secs(60))),
    )
    .await;
    write_batch(
        &env,
        "prompts.jsonl",
        &[json!({"prompt": "A fox"}), json!({"prompt": "A lamp"})],
    );
    let args = [
        "batch",
        "prompts.jsonl",
        "--provider",
        "runbase",
        "--poll-interval",
        "0.05",
    ];
    let stopped = env
        .run(&[&args[..], &["--timeout", "1", "--json"]].concat())
        .await;
    assert_code(&stopped, 5);
    let json = batch_json(&stopped);
    assert_eq!(json["error"]["category"], "deadline");
    assert_eq!(json["error"]["may_have_been_charged"], true);
    assert_eq!(json["counts"]["pending"], 2);
    let stderr_text = stderr(&stopped);
    assert!(
        stderr_text.contains("--timeout passed with 2 requests not finished"),
        "{stderr_text}"
    );
    assert!(
        stderr_text.contains("hint: run the same command again to carry on"),
        "{stderr_text}"
    );
    assert_eq!(charges(&env), 2);

    // The built-in emulator cannot know those tasks: a resume on it is refused.
    let sent = env.requests();
    let on_emulator = env
        .run(&["batch", "prompts.jsonl", "--provider", "mock"])
        .await;
    assert_code(&on_emulator, 2);
    let refusal = stderr(&on_emulator);
    assert!(
        refusal.contains("has 2 requests with tasks still to collect")
            && refusal.contains("cannot know them"),
        "{refusal}"
    );
    assert!(refusal.contains("hint: "), "{refusal}");
    assert_eq!(env.requests(), sent);

    // The tasks finish; the same command collects them and charges nothing more.
    env.server.advance(Duration::from_secs(60)).await;
    let resumed = env.run(&args).await;
    assert_code(&resumed, 0);
    let lines = results(&env.out_dir());
    assert_eq!(field(&lines, "status"), ["done", "done"]);
    for line in &lines {
        pngs(&env.out_dir(), line, (256, 256));
    }
    assert_eq!(charges(&env), 2, "waited on, never sent again");
    assert_eq!(env.server.tasks().len(), 2);
}

#[tokio::test]
async fn with_no_key_a_batch_runs_on_the_emulator_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.jsonl"),
        "{\"prompt\": \"A fox\"}\n{\"prompt\": \"A lamp\", \"provider\": \"runbase\"}\n",
    )
    .unwrap();
    let output = crate::run(crate::bare(dir.path(), &["batch", "prompts.jsonl"])).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "imggen-out/results.jsonl\n");
    let stderr = stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the notice and the summary: {stderr}");
    assert!(
        lines[0].contains("no API key is set") && lines[0].contains("built-in emulator"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("imggen: 2 requests: 2 done"),
        "{stderr}"
    );
    let out = dir.path().join("imggen-out");
    let results = results(&out);
    assert_eq!(
        field(&results, "provider"),
        ["gptimg", "runbase"],
        "the emulator stands in for every provider"
    );
    for line in &results {
        pngs(&out, line, (256, 256));
    }
}

#[tokio::test]
async fn a_journal_in_use_by_another_process_stops_the_batch_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    write_batch(&env, "prompts.jsonl", &[json!({"prompt": "A fox"})]);
    let journal = imggen_core::batch::Journal::open(env.dir.path().join("shared.sqlite")).unwrap();
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "gptimg",
            "--journal",
            "shared.sqlite",
        ])
        .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("is in use by another process"),
        "{}",
        stderr(&output)
    );
    assert_eq!(env.requests(), 0);
    drop(journal);
}

#[tokio::test]
async fn a_usage_error_with_json_prints_the_batch_object() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&["batch", "prompts.jsonl", "--concurrency", "0", "--json"])
        .await;
    assert_code(&output, 2);
    let json = batch_json(&output);
    assert_eq!(json["error"]["category"], "invalid");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--concurrency"),
        "{json}"
    );
    assert_eq!(json["total"], 0);
}

#[tokio::test]
async fn strict_and_the_command_line_options_are_checked_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    write_batch(
        &env,
        "prompts.jsonl",
        &[
            json!({"prompt": "A fox", "model": "acme/brand-new"}),
            json!({"prompt": "A lamp"}),
        ],
    );
    let strict = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "runbase",
            "--strict",
        ])
        .await;
    assert_code(&strict, 2);
    let stderr_text = stderr(&strict);
    assert!(
        stderr_text.contains("  line 1: runbase cannot serve this request")
            && stderr_text.contains("refused because planning is strict")
            && stderr_text.contains("acme/brand-new")
            && stderr_text.contains("price is unknown"),
        "{stderr_text}"
    );
    assert!(!stderr_text.contains("line 2"), "{stderr_text}");

    let malformed = env
        .run(&["batch", "prompts.jsonl", "--option", "resolution"])
        .await;
    assert_code(&malformed, 2);
    assert!(
        stderr(&malformed).contains("expected KEY=VALUE"),
        "{}",
        stderr(&malformed)
    );
    let missing = env.run(&["batch", "nowhere.jsonl"]).await;
    assert_code(&missing, 2);
    assert!(
        stderr(&missing).starts_with("imggen: could not read the batch file nowhere.jsonl: "),
        "{}",
        stderr(&missing)
    );
    assert_eq!(env.requests(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_journal_written_for_another_batch_file_is_refused_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    write_batch(&env, "prompts.jsonl", &[json!({"prompt": "A fox"})]);
    let args = [
        "batch",
        "prompts.jsonl",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
    ];
    assert_code(&env.run(&args).await, 0);
    // The same id (line 1) now asks for something else, and the first one is paid for.
    write_batch(&env, "prompts.jsonl", &[json!({"prompt": "A lamp"})]);
    let sent = env.requests();
    let output = env.run(&args).await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("was written for a different batch"),
        "{}",
        stderr(&output)
    );
    assert_eq!(env.requests(), sent, "nothing was sent");
    assert_eq!(charges(&env), 1);
}

/// The test database (`.ci/run` starts one), or `None`, said on stderr past the harness's
/// capture — and a failure where `IMGGEN_REQUIRE_POSTGRES=1` (CI).
fn postgres(test: &str) -> Option<String> {
    match std::env::var("IMGGEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("IMGGEN_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("IMGGEN_REQUIRE_POSTGRES=1 but IMGGEN_TEST_POSTGRES_URL is not set")
        }
        _ => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** NOT RUN: {test}: no PostgreSQL. Set IMGGEN_TEST_POSTGRES_URL (bash .ci/run starts one) ***\n"
            );
            None
        }
    }
}

#[tokio::test]
async fn a_batch_journaled_in_postgres_is_resumed_by_the_same_command_on_any_worker() {
    let Some(url) =
        postgres("a_batch_journaled_in_postgres_is_resumed_by_the_same_command_on_any_worker")
    else {
        return;
    };
    let env = Env::start(instant()).await;
    // The batch is kept under its file's name: one of this test's own.
    let name = format!("cli-postgres-{}.jsonl", std::process::id());
    write_batch(
        &env,
        &name,
        &[json!({"prompt": "A fox"}), json!({"prompt": "A lamp"})],
    );
    let args = [
        "batch",
        name.as_str(),
        "--out",
        "renders",
        "--provider",
        "gptimg",
        "--poll-interval",
        "0.05",
        "--journal",
        url.as_str(),
    ];
    let output = env.run(&args).await;
    assert_code(&output, 0);
    let out = env.dir.path().join("renders");
    assert_eq!(field(&results(&out), "status"), ["done", "done"]);
    assert!(
        !out.join("imggen-journal.sqlite").exists(),
        "no SQLite journal"
    );
    assert_eq!(charges(&env), 2);

    // Again: found in PostgreSQL, nothing sent.
    let output = env.run(&args).await;
    assert_code(&output, 0);
    assert!(
        stderr(&output).contains("2 done (2 before this run)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(charges(&env), 2);

    // Another worker — its own output folder — finds the batch done: nothing is sent, and
    // its results.jsonl says where the first one saved each file.
    let other = ["--out", "elsewhere"];
    let mut args = args.to_vec();
    args.splice(2..4, other);
    let before = env.requests();
    let output = env.run(&args).await;
    assert_code(&output, 0);
    assert_eq!(env.requests(), before);
    let lines = results(&env.dir.path().join("elsewhere"));
    for line in &lines {
        let dir = line["saved"][0]["dir"].as_str().unwrap();
        assert!(dir.ends_with("renders"), "{line}");
        let file = line["files"][0].as_str().unwrap();
        assert!(Path::new(dir).join(file).is_file(), "{line}");
    }
}
