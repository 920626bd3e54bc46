//! Each exit code, from a real failure the emulator produces, with the one line (and hint) a
//! person can act on and the JSON a script can.

use std::time::Duration;

use imggen_mock::{Balance, EntryKind, Fault, FaultKind, MockConfig, Operation, Profile, Provider};
use imggen_types::{Credits, Usd};

use crate::{Env, KEY, assert_code, files_in, instant, json_output, png_size, stderr, stdout};

#[tokio::test]
async fn exit_3_when_the_provider_refuses_and_charges_nothing() {
    let env = Env::start(instant()).await;
    env.server.set_balance(KEY, Balance::Gptimg(Credits(1)));
    let output = env
        .run(&["generate", "a fox", "--provider", "gptimg", "-n", "2"])
        .await;
    assert_code(&output, 3);
    let stderr = stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with(
            "imggen: gptimg create: 402 INSUFFICIENT_CREDITS: 4 credits required, 1 available"
        ),
        "provider, status, code and message on one line: {stderr}"
    );
    assert!(lines[0].contains("nothing was charged"), "{stderr}");
    assert_eq!(
        lines[1],
        "hint: buy credits on gptimg.co (2 per image), then submit again"
    );
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(env.server.ledger().is_empty());
}

#[tokio::test]
async fn exit_3_in_json_carries_status_code_and_message() {
    let env = Env::start(instant()).await;
    env.server.set_balance(KEY, Balance::Gptimg(Credits(0)));
    let output = env
        .run(&["generate", "a fox", "--provider", "gptimg", "--json"])
        .await;
    assert_code(&output, 3);
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "refused");
    assert_eq!(error["exit_code"], 3);
    assert_eq!(error["provider"], "gptimg");
    assert_eq!(error["operation"], "create");
    assert_eq!(error["status"], 402);
    assert_eq!(error["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(error["provider_message"], "2 credits required, 0 available");
    assert_eq!(error["may_have_been_charged"], false);
    assert!(
        error["request_id"].is_string(),
        "gptimg sends X-Request-Id: {error}"
    );
    assert_eq!(json["cost"], serde_json::json!({"usd": "0", "credits": 0}));
}

#[tokio::test]
async fn exit_3_when_every_fallback_provider_refuses() {
    let env = Env::start(instant()).await;
    env.server.set_balance(KEY, Balance::Runblob(Usd::ZERO));
    env.server.set_balance(KEY, Balance::Runbase(Usd::ZERO));
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--fallback",
            "runblob,runbase",
            "--json",
        ])
        .await;
    assert_code(&output, 3);
    let json = json_output(&output);
    assert_eq!(json["error"]["category"], "refused");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("no provider served the request and nothing was charged"),
        "{message}"
    );
    assert!(
        message.contains("runblob") && message.contains("runbase"),
        "{message}"
    );
    assert!(env.server.ledger().is_empty());
}

#[tokio::test]
async fn exit_4_when_the_task_fails_and_is_refunded() {
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
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 4);
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "failed");
    assert_eq!(error["code"], "MODERATION_FAILED");
    assert_eq!(
        error["may_have_been_charged"], false,
        "failed tasks are refunded"
    );
    assert_eq!(json["tasks"][0]["status"], "failed");
    assert!(
        stderr(&output).contains("failed: MODERATION_FAILED"),
        "{}",
        stderr(&output)
    );
    let kinds: Vec<EntryKind> = env.server.ledger().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Charge, EntryKind::Refund]);
    assert!(!env.out_dir().exists() || files_in(&env.out_dir()).is_empty());
}

#[tokio::test]
async fn exit_5_prints_the_handle_and_wait_resumes_it_in_another_process() {
    let env = Env::start(
        MockConfig::default()
            .manual_clock()
            .profile(Profile::Fixed(Duration::from_secs(30))),
    )
    .await;
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--timeout",
            "0.4",
            "--poll-interval",
            "0.1",
            "--json",
        ])
        .await;
    assert_code(&output, 5);
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "deadline");
    assert_eq!(error["may_have_been_charged"], true, "the task is paid for");
    let task_id = env.server.tasks()[0].id.clone();
    let short = format!("gptimg:{task_id}");
    assert_eq!(error["handles"], serde_json::json!([short]));
    assert_eq!(json["tasks"][0]["status"], "running");
    let stderr = stderr(&output);
    assert!(
        stderr.contains(&format!(
            "hint: the tasks are paid for; resume them with: imggen wait {short}"
        )),
        "{stderr}"
    );

    // The task finishes later; a second process collects it from the printed handle.
    env.server.advance(Duration::from_secs(30)).await;
    let handle = serde_json::to_string(&json["tasks"][0]["handle"]).unwrap();
    let resumed = env.run(&["wait", &handle, "--poll-interval", "0.05"]).await;
    assert_code(&resumed, 0);
    let path = env.dir.path().join(stdout(&resumed).trim());
    assert_eq!(png_size(&path), (256, 256));
    assert_eq!(
        env.server.ledger().len(),
        1,
        "resuming charged nothing more"
    );
}

#[tokio::test]
async fn exit_6_when_the_answer_to_a_create_is_lost_and_nothing_is_resubmitted() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Runbase)
                .operation(Operation::Create),
        )
        .unwrap();
    let output = env
        .run(&[
            "generate",
            "a ceramic lamp",
            "--provider",
            "runbase",
            "--json",
        ])
        .await;
    assert_code(&output, 6);
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "outcome_unknown");
    assert_eq!(error["exit_code"], 6);
    assert_eq!(error["may_have_been_charged"], true);
    assert!(
        error["attempted_at"].is_string(),
        "when it was sent: {error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("may have been created and charged"),
        "{message}"
    );
    assert!(message.contains("did not resubmit"), "{message}");
    assert!(
        message.contains("\"a ceramic lamp\""),
        "what was asked for: {message}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("check the provider's task list or balance"),
        "{error}"
    );
    // The emulator did create and charge it: exactly once.
    assert_eq!(env.server.tasks().len(), 1);
    let ledger = env.server.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert!(stderr(&output).contains("may have been created and charged"));
}

#[tokio::test]
async fn exit_1_when_a_download_fails_and_wait_downloads_it_again() {
    let env = Env::start(instant()).await;
    env.server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 500,
                body: Some(serde_json::json!("storage unavailable")),
                headers: Default::default(),
            })
            .provider(Provider::Gptimg)
            .operation(Operation::Download)
            .always(),
        )
        .unwrap();
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 1);
    let task_id = env.server.tasks()[0].id.clone();
    let stderr = stderr(&output);
    assert!(stderr.contains("could not collect"), "{stderr}");
    assert!(
        stderr.contains(&format!("resume them with: imggen wait gptimg:{task_id}")),
        "{stderr}"
    );
    assert!(
        files_in(&env.out_dir()).is_empty(),
        "nothing half-written is left"
    );

    env.server.clear_faults();
    let again = env
        .run(&[
            "wait",
            &format!("gptimg:{task_id}"),
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&again, 0);
    assert_eq!(
        png_size(&env.dir.path().join(stdout(&again).trim())),
        (256, 256)
    );
}

#[cfg(unix)]
#[tokio::test]
async fn exit_5_on_ctrl_c_with_the_handle_to_resume() {
    use std::io::{BufRead as _, BufReader, Read as _};
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
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (name, value) in env.server.env() {
        cmd.env(name, value);
    }
    cmd.env("RUNBASE_API_KEY", KEY);
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (child, text) = tokio::task::spawn_blocking(move || {
        // The task exists once its line is printed: the signal to interrupt.
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.starts_with("imggen: created runbase task"), "{first}");
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        let status = child.wait().unwrap();
        (status, first + &rest)
    })
    .await
    .unwrap();
    assert_eq!(child.code(), Some(5), "{text}");
    let task_id = env.server.tasks()[0].id.clone();
    assert!(text.contains("was cancelled"), "{text}");
    assert!(
        text.contains(&format!("resume them with: imggen wait runbase:{task_id}")),
        "{text}"
    );
}
