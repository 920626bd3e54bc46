//! The local task history: every task created is kept before any wait begins, listed by
//! `imggen list`, and resumed by `imggen wait --pending` — across a `kill -9`.

use std::time::Duration;

use imggen_mock::{MockConfig, Profile};
use serde_json::Value;

use crate::{Env, KEY, assert_code, instant, stderr, stdout};

/// The tasks `imggen list --json` printed, checked against `schemas/cli/ListOutput`.
fn listed(output: &std::process::Output) -> Vec<Value> {
    crate::list_json(output).as_array().cloned().unwrap()
}

#[tokio::test]
async fn a_generated_task_is_listed_with_its_status_cost_and_files() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a ceramic lamp",
            "--provider",
            "runbase",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let task_id = env.server.tasks()[0].id.clone();

    let list = env.run(&["list", "--json"]).await;
    assert_code(&list, 0);
    let tasks = listed(&list);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["task_id"], task_id.as_str());
    assert_eq!(tasks[0]["status"], "succeeded");
    assert_eq!(tasks[0]["prompt"], "a ceramic lamp");
    assert_eq!(tasks[0]["cost"]["usd"], "0.05");
    assert_eq!(
        tasks[0]["files"],
        serde_json::json!([format!("imggen-out/{task_id}-1.png")])
    );
    let text = env.run(&["list"]).await;
    let line = stdout(&text);
    assert!(
        line.contains(&format!(
            "runbase:{task_id}  succeeded  $0.05  a ceramic lamp"
        )),
        "{line}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_task_killed_mid_wait_is_kept_and_wait_pending_collects_it() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let env = Env::start(
        MockConfig::default()
            .manual_clock()
            .profile(Profile::Fixed(Duration::from_secs(30))),
    )
    .await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imggen"));
    cmd.args([
        "generate",
        "a fox",
        "--provider",
        "runbase",
        "--poll-interval",
        "0.05",
    ])
    .current_dir(env.dir.path())
    .env("IMGGEN_HOME", env.dir.path().join(".imggen-home"))
    .env_remove("RUST_LOG")
    .env_remove("IMGGEN_PROGRESS")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (name, value) in env.server.env() {
        cmd.env(name, value);
    }
    cmd.env("RUNBASE_API_KEY", KEY);
    let mut child = cmd.spawn().unwrap();
    let mut stderr_pipe = BufReader::new(child.stderr.take().unwrap());
    tokio::task::spawn_blocking(move || {
        // The task exists once its line is printed: the moment to kill the process.
        let mut first = String::new();
        stderr_pipe.read_line(&mut first).unwrap();
        assert!(first.starts_with("imggen: created runbase task"), "{first}");
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await
    .unwrap();
    let task_id = env.server.tasks()[0].id.clone();

    let pending = env.run(&["list", "--pending", "--json"]).await;
    assert_code(&pending, 0);
    let tasks = listed(&pending);
    assert_eq!(tasks.len(), 1, "the paid task survived kill -9: {tasks:?}");
    assert_eq!(tasks[0]["task_id"], task_id.as_str());

    env.server.advance(Duration::from_secs(60)).await;
    let resumed = env
        .run(&["wait", "--pending", "--poll-interval", "0.05"])
        .await;
    assert_code(&resumed, 0);
    assert!(
        env.out_dir().join(format!("{task_id}-1.png")).is_file(),
        "{}",
        stderr(&resumed)
    );
    assert!(
        stderr(&resumed).contains("imggen: 1 image · $0.05 · "),
        "what the collected task made and cost: {}",
        stderr(&resumed)
    );
    let after = env.run(&["list", "--pending", "--json"]).await;
    assert!(listed(&after).is_empty(), "nothing left to wait for");
    assert_eq!(env.server.tasks().len(), 1, "nothing was created again");
}

#[tokio::test]
async fn a_history_that_cannot_be_written_stops_nothing() {
    let env = Env::start(instant()).await;
    // A file where the history's folder should be.
    let blocked = env.dir.path().join("blocked");
    std::fs::write(&blocked, b"").unwrap();
    let mut cmd = env.cmd(&[
        "generate",
        "a fox",
        "--provider",
        "runbase",
        "--poll-interval",
        "0.05",
    ]);
    cmd.env("IMGGEN_HOME", blocked.join("home"));
    let output = crate::run(cmd).await;
    assert_code(&output, 0);
    assert!(
        stderr(&output).contains("imggen: warning: the task history"),
        "{}",
        stderr(&output)
    );
    assert_eq!(env.server.tasks().len(), 1);
}

#[tokio::test]
async fn a_batchs_tasks_are_listed_and_left_alone_once_the_batch_collected_them() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("b.jsonl"),
        "{\"id\": \"hero\", \"prompt\": \"A lighthouse\"}\n{\"id\": \"lamp\", \"prompt\": \"A lamp\"}\n",
    )
    .unwrap();
    let output = env
        .run(&[
            "batch",
            "b.jsonl",
            "--provider",
            "runbase",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let tasks = listed(&env.run(&["list", "--json"]).await);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|task| task["status"] == "succeeded"),
        "{tasks:?}"
    );
    assert!(listed(&env.run(&["list", "--pending", "--json"]).await).is_empty());
}
