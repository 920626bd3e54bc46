//! Bad input is refused before any request: exit 2, the value and what is allowed named, and
//! not one request reaching the emulator.

use crate::{Env, assert_code, instant, json_output, stderr};

/// Runs `args`, expects exit 2 with nothing sent, and returns stderr.
async fn refused_before_sending(args: &[&str]) -> String {
    let env = Env::start(instant()).await;
    let output = env.run(args).await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0, "no request reached the emulator");
    assert!(env.server.ledger().is_empty(), "nothing was charged");
    assert!(env.server.tasks().is_empty(), "no task exists");
    assert!(!env.out_dir().exists(), "nothing was written");
    stderr(&output)
}

#[tokio::test]
async fn a_ratio_the_provider_does_not_take_is_refused_with_the_ones_it_does() {
    let stderr = refused_before_sending(&[
        "generate",
        "a fox",
        "--provider",
        "runblob",
        "--aspect-ratio",
        "16:9",
    ])
    .await;
    assert_eq!(
        stderr,
        "imggen: runblob cannot serve this request: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; nothing was sent\n"
    );
}

#[tokio::test]
async fn a_ratio_no_provider_knows_is_a_usage_error_listing_the_known_ones() {
    let stderr = refused_before_sending(&[
        "generate",
        "a fox",
        "--provider",
        "gptimg",
        "--aspect-ratio",
        "7:3",
    ])
    .await;
    assert!(stderr.contains("7:3"), "{stderr}");
    assert!(stderr.contains("1:1, 4:3, 3:4"), "{stderr}");
}

#[tokio::test]
async fn five_images_from_gptimg_are_refused_unless_extra_tasks_are_allowed() {
    let stderr =
        refused_before_sending(&["generate", "a fox", "--provider", "gptimg", "-n", "5"]).await;
    assert!(
        stderr.starts_with("imggen: gptimg cannot serve this request: n \"5\": gpt-image-2 makes at most 4 image(s) per task"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "hint: lower -n, or pass --allow-extra-tasks to create (and pay for) several tasks\n"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_reference_file_is_named_before_anything_is_sent() {
    let stderr = refused_before_sending(&[
        "generate",
        "a fox",
        "--provider",
        "runblob",
        "--ref",
        "sketches/missing.png",
    ])
    .await;
    assert!(stderr.contains("sketches/missing.png"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn a_local_reference_for_gptimg_says_it_takes_only_https_urls() {
    let env = Env::start(instant()).await;
    std::fs::write(env.dir.path().join("style.png"), b"not sent").unwrap();
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--ref",
            "style.png",
            "--json",
        ])
        .await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0);
    assert!(env.server.ledger().is_empty());
    let json = json_output(&output);
    let error = &json["error"];
    assert_eq!(error["category"], "invalid");
    assert_eq!(error["exit_code"], 2);
    assert_eq!(error["provider"], "gptimg");
    assert_eq!(error["may_have_been_charged"], false);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("references[0] \"style.png\""), "{message}");
    assert!(message.contains("takes only https URLs"), "{message}");
    assert!(json["tasks"].as_array().unwrap().is_empty());
    assert!(stderr(&output).contains("takes only https URLs"));
}

#[tokio::test]
async fn an_unknown_provider_option_lists_the_allowed_keys() {
    let stderr = refused_before_sending(&[
        "generate",
        "a fox",
        "--provider",
        "runbase",
        "--option",
        "colour=red",
    ])
    .await;
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(
        stderr.contains("allowed: resolution, input.<field>"),
        "{stderr}"
    );
}

#[tokio::test]
async fn strict_refuses_a_model_whose_price_is_unknown() {
    let stderr = refused_before_sending(&[
        "generate",
        "a fox",
        "--provider",
        "runbase",
        "--model",
        "acme/brand-new",
        "--strict",
    ])
    .await;
    assert!(
        stderr.contains("refused because planning is strict"),
        "{stderr}"
    );
    assert!(stderr.contains("acme/brand-new"), "{stderr}");
    assert!(stderr.contains("price is unknown"), "{stderr}");
}

#[tokio::test]
async fn the_request_counter_counts_what_a_valid_run_sends() {
    // The control for every test above: a counter that saw nothing would prove nothing.
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    assert!(
        env.requests() >= 3,
        "a create, a status and a download: {}",
        env.requests()
    );
}
