//! Every fault kind, armed over HTTP and through the library, hitting exactly what it targets.

use std::time::{Duration, Instant};

use imggen_mock::{Count, Fault, FaultKind, Operation, Provider};
use serde_json::json;

use crate::{KEY, OTHER_KEY, TASK_TIME, config, runblob_body, start};

async fn arm(mock: &crate::Mock, fault: serde_json::Value) -> serde_json::Value {
    let response = mock
        .http
        .post(mock.url("/_mock/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_http_fault_answers_instead_of_the_service_for_the_next_n_requests() {
    let mock = start(config()).await;
    let armed = arm(
        &mock,
        json!({"provider": "runblob", "operation": "create", "count": 2,
               "kind": "http", "status": 500, "body": {"detail": "OPENAI_DECLINED"}}),
    )
    .await;
    assert_eq!(armed[0]["remaining"], 2);
    for _ in 0..2 {
        let answer = mock
            .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.json()),
            (500, json!({"detail": "OPENAI_DECLINED"}))
        );
    }
    assert!(
        mock.ledger("").await.is_empty(),
        "an injected rejection charges nothing"
    );
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await
            .status,
        201
    );
    let faults = mock.get_public("/_mock/faults").await.json();
    assert_eq!(faults, json!([]), "used up");
}

#[tokio::test]
async fn an_http_fault_without_a_body_speaks_the_providers_shape_and_may_set_headers() {
    let mock = start(config()).await;
    arm(&mock, json!({"provider": "gptimg", "operation": "status", "kind": "http", "status": 429, "headers": {"Retry-After": "7"}})).await;
    let answer = mock
        .get("/api/v1/images/task/gpt-image-2-xxxxxxxxxxxxxxxxxxxxx", KEY)
        .await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("7"));
    let body = answer.json();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(
        body["error"]["request_id"].as_str(),
        answer.header("x-request-id")
    );

    arm(&mock, json!({"provider": "runbase", "kind": "http", "status": 502, "body": "<html>Bad Gateway</html>"})).await;
    let gateway = mock.get("/api/v1/runs/run_x", KEY).await;
    assert_eq!(
        (gateway.status.as_u16(), gateway.text.as_str()),
        (502, "<html>Bad Gateway</html>")
    );
}

#[tokio::test]
async fn maintenance_is_a_503_in_each_providers_shape_and_charges_nothing() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::Maintenance)
                .operation(Operation::Create)
                .times(3),
        )
        .unwrap();
    let runblob = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
        .await;
    assert_eq!(
        (runblob.status.as_u16(), runblob.json()),
        (503, json!({"detail": "Maintenance"}))
    );
    let gptimg = mock
        .post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
        .await;
    assert_eq!(gptimg.status, 503);
    assert_eq!(gptimg.json()["error"]["code"], "SERVICE_UNAVAILABLE");
    assert!(gptimg.header("x-request-id").is_some());
    let runbase = mock
        .post(
            "/api/v1/runs",
            KEY,
            json!({"model": "openai/gpt-image-1", "input": {"prompt": "x"}}),
        )
        .await;
    assert_eq!(
        (runbase.status.as_u16(), runbase.json()),
        (
            503,
            json!({"error": {"message": "Service unavailable: maintenance", "code": "maintenance"}})
        )
    );
    assert!(mock.ledger("").await.is_empty());
}

#[tokio::test]
async fn a_fault_for_one_key_leaves_other_keys_alone() {
    let mock = start(config()).await;
    mock.server
        .add_fault(Fault::new(FaultKind::Maintenance).key(KEY).always())
        .unwrap();
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", OTHER_KEY, runblob_body("x"))
            .await
            .status,
        201
    );
    for _ in 0..3 {
        assert_eq!(
            mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
                .await
                .status,
            503
        );
    }
    let listed = mock.server.faults();
    assert_eq!(listed[0].remaining, Count::Unlimited);
    assert_eq!(listed[0].hits, 3);
    assert_eq!(
        listed[0].key.as_deref(),
        Some(imggen_mock::key_label(KEY).as_str())
    );
    let response = mock
        .http
        .delete(mock.url("/_mock/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_task_failure_fault_hits_only_a_create_that_succeeds() {
    let mock = start(config()).await;
    arm(
        &mock,
        json!({"provider": "gptimg", "kind": "task_failure", "code": "OPENAI_DECLINED"}),
    )
    .await;
    // A rejected create does not use the fault up…
    assert_eq!(
        mock.post("/api/v1/images/generate", KEY, json!({"prompt": ""}))
            .await
            .status,
        400
    );
    let doomed = mock
        .post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
        .await
        .json();
    let fine = mock
        .post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
        .await
        .json();
    mock.server.advance(TASK_TIME).await;
    let status = |task: &serde_json::Value| {
        let id = task["data"]["task_id"].as_str().unwrap().to_owned();
        let mock = &mock;
        async move {
            mock.get(&format!("/api/v1/images/task/{id}"), KEY)
                .await
                .json()["data"]
                .clone()
        }
    };
    let doomed = status(&doomed).await;
    assert_eq!(doomed["status"], "failed");
    assert_eq!(
        doomed["error"],
        json!({"code": "OPENAI_DECLINED", "message": "The request was declined by the image model"})
    );
    assert_eq!(status(&fine).await["status"], "completed");
}

#[tokio::test]
async fn latency_holds_the_answer_back_after_the_request_was_handled() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::Latency { ms: 1500 })
                .provider(Provider::Runblob)
                .operation(Operation::Create),
        )
        .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let timed_out = impatient
        .post(mock.url("/v1/chatgpt-images/generate"))
        .bearer_auth(KEY)
        .json(&runblob_body("slow"))
        .send()
        .await
        .unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");
    assert_eq!(
        mock.ledger("").await.len(),
        1,
        "the create behind the timeout was charged"
    );

    mock.server
        .add_fault(Fault::new(FaultKind::Latency { ms: 300 }).operation(Operation::Status))
        .unwrap();
    let start = Instant::now();
    let answer = mock.get("/v1/chatgpt-images/generations", KEY).await;
    assert_eq!(answer.status, 200);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_dropped_status_call_closes_the_connection_without_an_answer() {
    let mock = start(config()).await;
    arm(
        &mock,
        json!({"provider": "runbase", "operation": "status", "kind": "drop_connection"}),
    )
    .await;
    let result = mock
        .http
        .get(mock.url("/api/v1/runs/run_x"))
        .bearer_auth(KEY)
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        mock.get("/api/v1/runs/run_x", KEY).await.status,
        404,
        "the next call is answered"
    );
}

#[tokio::test]
async fn malformed_json_keeps_the_status_and_breaks_the_body_and_a_create_is_still_charged() {
    let mock = start(config()).await;
    mock.server
        .add_fault(Fault::new(FaultKind::MalformedJson).operation(Operation::Create))
        .unwrap();
    let answer = mock
        .post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
        .await;
    assert_eq!(answer.status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&answer.text).is_err(),
        "{}",
        answer.text
    );
    assert!(
        answer.text.starts_with("{\"success\":true"),
        "{}",
        answer.text
    );
    assert_eq!(mock.ledger("").await.len(), 1);

    mock.server
        .add_fault(Fault::new(FaultKind::MalformedJson).operation(Operation::Download))
        .unwrap();
    mock.server.advance(TASK_TIME).await;
    let task_id = mock.server.tasks()[0].id.clone();
    let (status, _, broken) = mock
        .download(&mock.url(&format!("/files/gptimg/{task_id}/0.png")))
        .await;
    assert_eq!(status, 200);
    let (_, _, whole) = mock
        .download(&mock.url(&format!("/files/gptimg/{task_id}/0.png")))
        .await;
    assert_eq!(broken.len(), whole.len() / 2, "a truncated PNG");
}

#[tokio::test]
async fn cut_short_declares_the_whole_length_and_closes_halfway() {
    let mock = start(config()).await;
    mock.post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
        .await;
    mock.server.advance(TASK_TIME).await;
    let task_id = mock.server.tasks()[0].id.clone();
    let url = mock.url(&format!("/files/gptimg/{task_id}/0.png"));
    let (_, _, whole) = mock.download(&url).await;
    mock.server
        .add_fault(Fault::new(FaultKind::CutShort).operation(Operation::Download))
        .unwrap();
    let response = mock
        .http
        .get(&url)
        .send()
        .await
        .expect("the headers arrive");
    assert_eq!(response.content_length(), Some(whole.len() as u64));
    assert!(
        response.bytes().await.is_err(),
        "the body ends short of its declared length"
    );
    let (_, _, again) = mock.download(&url).await;
    assert_eq!(again, whole, "the next download is whole");
}

#[tokio::test]
async fn trickle_sends_the_whole_answer_slowly() {
    let mock = start(config()).await;
    let created = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
        .await
        .json();
    let path = format!(
        "/v1/chatgpt-images/generations/{}",
        created["task_uuid"].as_str().unwrap()
    );
    let fast = mock.get(&path, KEY).await.text;
    arm(
        &mock,
        json!({"operation": "status", "kind": "trickle", "chunk_bytes": 10, "interval_ms": 20}),
    )
    .await;
    let start = Instant::now();
    let slow = mock.get(&path, KEY).await;
    let chunks = fast.len().div_ceil(10) as u32;
    assert!(
        start.elapsed() >= Duration::from_millis(20) * (chunks - 1),
        "{:?} for {chunks} chunks",
        start.elapsed()
    );
    assert_eq!(slow.text, fast, "every byte arrives");
    assert_eq!(
        slow.header("content-length"),
        Some(fast.len().to_string().as_str())
    );
}

#[tokio::test]
async fn download_faults_hit_the_files_of_the_targeted_key() {
    let mock = start(config()).await;
    let mine = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("mine"))
        .await
        .json();
    let theirs = mock
        .post(
            "/v1/chatgpt-images/generate",
            OTHER_KEY,
            runblob_body("theirs"),
        )
        .await
        .json();
    mock.server.advance(TASK_TIME).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 500,
                body: None,
                headers: Default::default(),
            })
            .operation(Operation::Download)
            .key(KEY),
        )
        .unwrap();
    let file = |task: &serde_json::Value| {
        mock.url(&format!(
            "/files/runblob/{}/0.png",
            task["task_uuid"].as_str().unwrap()
        ))
    };
    assert_eq!(mock.download(&file(&theirs)).await.0, 200);
    assert_eq!(mock.download(&file(&mine)).await.0, 500);
    assert_eq!(mock.download(&file(&mine)).await.0, 200);
}

#[tokio::test]
async fn faults_that_cannot_act_are_refused_with_a_reason() {
    let mock = start(config()).await;
    for (fault, reason) in [
        (
            json!({"operation": "status", "kind": "task_failure", "code": "X"}),
            "acts on creates",
        ),
        (json!({"kind": "http", "status": 42}), "out of range"),
        (json!({"kind": "explode"}), "unknown variant"),
        (json!({"kind": "maintenance", "count": 0}), "at least 1"),
        (
            json!({"kind": "maintenance", "provider": "openai"}),
            "unknown variant",
        ),
    ] {
        let response = mock
            .http
            .post(mock.url("/_mock/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{fault}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{fault}: {body}"
        );
    }
    assert!(mock.server.faults().is_empty());
    let many = arm(
        &mock,
        json!([{"kind": "maintenance"}, {"kind": "latency", "ms": 5, "count": "unlimited"}]),
    )
    .await;
    assert_eq!(many.as_array().unwrap().len(), 2);
    assert_eq!(many[1]["remaining"], "unlimited");
}

#[tokio::test]
async fn a_maintenance_window_lasts_its_time_on_the_mock_clock() {
    let mock = start(config()).await;
    let armed = arm(
        &mock,
        json!({"provider": "runblob", "kind": "maintenance", "for_ms": 60_000}),
    )
    .await;
    assert_eq!(armed[0]["remaining"], "unlimited");
    assert!(armed[0]["expires_at"].is_string());
    for _ in 0..3 {
        assert_eq!(
            mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
                .await
                .status,
            503
        );
        assert_eq!(
            mock.get("/v1/chatgpt-images/generations", KEY).await.status,
            503
        );
    }
    assert_eq!(
        mock.post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
            .await
            .status,
        200,
        "runblob only"
    );
    mock.server.advance(Duration::from_secs(60)).await;
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await
            .status,
        201
    );
    assert!(mock.server.faults().is_empty());
}
