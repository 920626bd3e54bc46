//! The mock's own endpoints and paths no provider has.

use std::time::Duration;

use serde_json::json;

use crate::{KEY, config, runblob_body, start};

#[tokio::test]
async fn unknown_paths_are_neutral_404s_and_mock_paths_shadow_nothing() {
    let mock = start(config()).await;
    let unknown = mock.get_public("/v2/anything").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json(),
        json!({"error": "not_found", "message": "no route for GET /v2/anything"})
    );
    let wrong_method = mock.get_public("/v1/chatgpt-images/generate").await;
    assert_eq!(wrong_method.status, 405);
    let health = mock.get_public("/_mock/health").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["clock"], "manual");
}

#[tokio::test]
async fn reset_forgets_tasks_money_faults_and_deliveries() {
    let mock = start(config()).await;
    let created = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
        .await
        .json();
    mock.server
        .add_fault(imggen_mock::Fault::new(imggen_mock::FaultKind::Maintenance).always())
        .unwrap();
    assert_eq!(
        mock.get_public("/_mock/tasks")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let reset = mock
        .http
        .post(mock.url("/_mock/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert!(mock.ledger("").await.is_empty());
    assert!(mock.server.faults().is_empty());
    assert!(mock.server.tasks().is_empty());
    let path = format!(
        "/v1/chatgpt-images/generations/{}",
        created["task_uuid"].as_str().unwrap()
    );
    assert_eq!(mock.get(&path, KEY).await.status, 404);
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_clock_can_be_advanced_over_http() {
    let mock = start(config()).await;
    let created = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
        .await
        .json();
    let advanced = mock
        .http
        .post(mock.url("/_mock/clock/advance?ms=2000"))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    assert_eq!(mock.server.clock().elapsed(), Duration::from_secs(2));
    let path = format!(
        "/v1/chatgpt-images/generations/{}",
        created["task_uuid"].as_str().unwrap()
    );
    assert_eq!(mock.get(&path, KEY).await.json()["status"], "completed");
    let tasks = mock.get_public("/_mock/tasks").await.json();
    assert_eq!(tasks[0]["status"], "completed");
    assert_eq!(tasks[0]["key"], imggen_mock::key_label(KEY));
    let bad = mock
        .http
        .post(mock.url("/_mock/clock/advance?ms=soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let mock = start(config()).await;
    let taken = imggen_mock::MockServer::start(config().port(mock.server.addr().port()))
        .await
        .unwrap_err();
    assert!(
        taken
            .to_string()
            .starts_with("could not listen on 127.0.0.1:"),
        "{taken}"
    );
    assert!(std::error::Error::source(&taken).is_some());
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let mock = start(config()).await;
    let url = mock.url("/_mock/health");
    assert_eq!(mock.get_public("/_mock/health").await.status, 200);
    mock.server.shutdown().await;
    assert!(crate::http_client().get(url).send().await.is_err());
}
