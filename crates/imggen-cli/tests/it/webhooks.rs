//! `--listen ADDR --public-url URL`: the command serves imggen-core's webhook receiver, passes
//! the URL as runblob's `callback_url`, and a callback ends the wait with one status call —
//! end to end and offline, imggen-mock delivering the callbacks to the listener.

use std::time::Duration;

use imggen_mock::{DeliveryStatus, MockConfig, Profile};
use serde_json::json;

use crate::{Env, assert_code, batch_json, json_output, stderr};

/// runblob's tasks take half a second; polling is set so slow (every 5 minutes) that only a
/// callback can end a wait within the run's time limit.
fn slow_polling() -> (MockConfig, &'static str) {
    (
        MockConfig::default().profile(Profile::Fixed(Duration::from_millis(500))),
        "300",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status reads runblob answered.
fn status_reads(env: &Env) -> usize {
    env.server
        .requests()
        .recent
        .iter()
        .filter(|record| {
            record.method == "GET" && record.path.starts_with("/v1/chatgpt-images/generations/")
        })
        .count()
}

#[tokio::test]
async fn a_callback_ends_the_wait_with_one_status_call() {
    let (config, poll) = slow_polling();
    let env = Env::start(config).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A path of the proxy's own: the listener takes callbacks on any path.
    let public = format!("http://127.0.0.1:{port}/hooks/imggen");
    let output = env
        .run(&[
            "generate",
            "a red fox",
            "--provider",
            "runblob",
            "--listen",
            &listen,
            "--public-url",
            &public,
            "--poll-interval",
            poll,
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let json = json_output(&output);
    assert_eq!(json["images"].as_array().unwrap().len(), 1);
    let deliveries = env.server.webhooks();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        deliveries[0].url, public,
        "the public URL is the callback_url"
    );
    assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
    assert_eq!(deliveries[0].attempts[0].status, Some(200));
    assert_eq!(
        status_reads(&env),
        1,
        "the callback is confirmed by one GET"
    );
    assert!(
        stderr(&output).contains(&format!("listening on {listen} for callbacks to {public}")),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_lost_callback_costs_only_time() {
    let env =
        Env::start(MockConfig::default().profile(Profile::Fixed(Duration::from_millis(300)))).await;
    let port = free_port();
    // The provider calls a URL nobody listens on: the wait polls on and ends all the same.
    let nobody = format!("http://127.0.0.1:{}/lost", free_port());
    let output = env
        .run(&[
            "generate",
            "a red fox",
            "--provider",
            "runblob",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            &nobody,
            "--poll-interval",
            "0.2",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    assert_eq!(json_output(&output)["images"].as_array().unwrap().len(), 1);
    assert!(status_reads(&env) >= 1);
}

#[tokio::test]
async fn a_batch_hears_every_callback() {
    let (config, poll) = slow_polling();
    let env = Env::start(config).await;
    let lines: Vec<String> = (1..=3)
        .map(|n| json!({"id": format!("fox{n}"), "prompt": format!("fox {n}")}).to_string())
        .collect();
    std::fs::write(env.dir.path().join("prompts.jsonl"), lines.join("\n")).unwrap();
    let port = free_port();
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "runblob",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            &format!("http://127.0.0.1:{port}/"),
            "--poll-interval",
            poll,
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    assert_eq!(batch_json(&output)["counts"]["done"], 3);
    let deliveries = env.server.webhooks();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.status == DeliveryStatus::Delivered)
    );
    assert_eq!(status_reads(&env), 3, "one confirming GET per task");
}

#[tokio::test]
async fn listen_is_refused_before_anything_is_sent() {
    let env = Env::start(crate::instant()).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}/");
    // Without the URL the provider would call.
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--listen",
            &listen,
        ])
        .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("needs --public-url"),
        "{}",
        stderr(&output)
    );
    // With a provider that never calls back.
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--listen",
            &listen,
            "--public-url",
            &public,
        ])
        .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("does not call webhooks"),
        "{}",
        stderr(&output)
    );
    // On an address already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--listen",
            &taken_addr,
            "--public-url",
            &public,
        ])
        .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("could not listen there"),
        "{}",
        stderr(&output)
    );
    // A public URL runblob would refuse (plain http to another machine).
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "runblob",
            "--listen",
            &listen,
            "--public-url",
            "http://example.com/hook",
        ])
        .await;
    assert_code(&output, 2);
    assert_eq!(env.requests(), 0, "nothing was sent");
}
