//! `submit` prints the receipt and returns; `status` and `wait`, in other processes, pick the
//! task up again from it.

use std::time::Duration;

use imggen_mock::{MockConfig, Profile};

use crate::{Env, assert_code, json_output, png_size, printed_paths, stderr, stdout};

fn slow() -> MockConfig {
    MockConfig::default()
        .manual_clock()
        .profile(Profile::Fixed(Duration::from_secs(60)))
}

#[tokio::test]
async fn submit_then_status_then_wait_each_in_its_own_process() {
    let env = Env::start(slow()).await;
    let submitted = env
        .run(&["submit", "a lighthouse", "--provider", "runblob"])
        .await;
    assert_code(&submitted, 0);
    let receipt = stdout(&submitted);
    let lines: Vec<&str> = receipt.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON handle per task: {receipt}");
    let handle: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(handle["provider"], "runblob");
    assert_eq!(handle["cost"]["usd"], "0.0123");
    let task_id = handle["task_id"].as_str().unwrap().to_owned();
    assert_eq!(env.server.tasks()[0].id, task_id);
    std::fs::write(env.dir.path().join("job.jsonl"), &receipt).unwrap();

    let status = env.run(&["status", "@job.jsonl"]).await;
    assert_code(&status, 0);
    assert_eq!(stdout(&status), format!("runblob:{task_id}\tqueued\n"));

    env.server.advance(Duration::from_secs(60)).await;
    let waited = env
        .run(&[
            "wait",
            "@job.jsonl",
            "--out",
            "collected",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&waited, 0);
    let paths = printed_paths(&waited, env.dir.path());
    assert_eq!(paths.len(), 1);
    assert!(paths[0].starts_with(env.dir.path().join("collected")));
    assert_eq!(png_size(&paths[0]), (256, 256));
    assert_eq!(env.server.ledger().len(), 1, "one charge, at submit");
}

#[tokio::test]
async fn submit_json_output_is_a_handle_file_for_wait() {
    let env = Env::start(slow()).await;
    let submitted = env
        .run(&[
            "submit",
            "two foxes",
            "--provider",
            "gptimg",
            "-n",
            "2",
            "--json",
        ])
        .await;
    assert_code(&submitted, 0);
    let json = json_output(&submitted);
    assert_eq!(json["tasks"][0]["status"], "created");
    assert_eq!(json["cost"]["credits"], 4);
    assert!(json["images"].as_array().unwrap().is_empty());
    std::fs::write(env.dir.path().join("job.json"), stdout(&submitted)).unwrap();

    let status = env.run(&["status", "@job.json", "--json"]).await;
    assert_code(&status, 0);
    let status = json_output(&status);
    assert_eq!(status["tasks"][0]["status"], "running");

    env.server.advance(Duration::from_secs(60)).await;
    let waited = env
        .run(&["wait", "@job.json", "--poll-interval", "0.05", "--json"])
        .await;
    assert_code(&waited, 0);
    let waited = json_output(&waited);
    assert_eq!(waited["tasks"][0]["status"], "succeeded");
    assert_eq!(waited["images"].as_array().unwrap().len(), 2);
    assert_eq!(waited["cost"]["credits"], 4, "the receipt's cost is kept");
}

#[tokio::test]
async fn a_short_handle_is_enough_and_status_lists_the_result_urls() {
    let env = Env::start(crate::instant()).await;
    let submitted = env
        .run(&["submit", "a lamp", "--provider", "runbase"])
        .await;
    assert_code(&submitted, 0);
    let handle: serde_json::Value = serde_json::from_str(stdout(&submitted).trim()).unwrap();
    let short = format!("runbase:{}", handle["task_id"].as_str().unwrap());
    let status = env.run(&["status", &short]).await;
    assert_code(&status, 0);
    let line = stdout(&status);
    let fields: Vec<&str> = line.trim_end().split('\t').collect();
    assert_eq!(fields[..2], [short.as_str(), "succeeded"]);
    assert!(fields[2].starts_with("http://127.0.0.1:"), "{line}");
}

#[tokio::test]
async fn a_task_the_provider_does_not_know_is_refused_with_exit_3() {
    let env = Env::start(crate::instant()).await;
    let output = env
        .run(&["status", "gptimg:gpt-image-2-AAAAAAAAAAAAAAAAAAAAA"])
        .await;
    assert_code(&output, 3);
    let stderr = stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].contains("gptimg status: 404 NOT_FOUND"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: poll with data.task_id"),
        "gptimg's advice, not a resume command that would fail again: {stderr}"
    );
}

#[tokio::test]
async fn a_malformed_handle_is_a_usage_error() {
    let env = Env::start(crate::instant()).await;
    let output = env.run(&["wait", "run_01JABC"]).await;
    assert_code(&output, 2);
    let stderr = stderr(&output);
    assert!(stderr.contains("provider:task_id"), "{stderr}");
    assert!(stderr.contains("hint: a handle is"), "{stderr}");
}
