//! runbase: camelCase runs, micro-USD costs, model schemas, error codes, the 20/10 s limit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{KEY, OTHER_KEY, TASK_TIME, config, start};

const RUNS: &str = "/api/v1/runs";

#[tokio::test]
async fn a_run_goes_from_pending_to_succeeded_in_camel_case() {
    let mock = start(config()).await;
    let created = mock
        .post(RUNS, KEY, json!({"model": "openai/gpt-image-2", "input": {"prompt": "A ceramic lamp", "aspect_ratio": "16:9", "resolution": "2K"}}))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let run = created.json();
    insta::assert_json_snapshot!("runbase_create", run, {".id" => "[run id]", ".createdAt" => "[time]"});
    let id = run["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("run_") && id.len() == 30, "{id}");

    let path = format!("{RUNS}/{id}");
    assert_eq!(mock.get(&path, KEY).await.json()["status"], "pending");
    mock.server.advance(TASK_TIME / 2).await;
    assert_eq!(mock.get(&path, KEY).await.json()["status"], "processing");
    mock.server.advance(TASK_TIME / 2).await;
    let done = mock.get(&path, KEY).await.json();
    insta::assert_json_snapshot!("runbase_succeeded", done, {
        ".id" => "[run id]",
        ".createdAt" => "[time]",
        ".completedAt" => "[time]",
        ".output.urls[]" => "[url]",
    });
    let url = done["output"]["urls"][0].as_str().unwrap();
    let (status, _, png) = mock.download(url).await;
    assert_eq!(status, 200);
    assert_eq!(crate::png_size(&png), (256, 144));
    assert_eq!(mock.get(&path, OTHER_KEY).await.status, 404);
}

#[tokio::test]
async fn costs_follow_model_quality_and_resolution() {
    let mock = start(config().rate_limit(imggen_mock::Provider::Runbase, None)).await;
    for (model, input, cost) in [
        ("openai/gpt-image-1", json!({"prompt": "x"}), 50_000),
        ("openai/gpt-image-1.5", json!({"prompt": "x"}), 30_000),
        (
            "openai/gpt-image-1.5",
            json!({"prompt": "x", "quality": "high"}),
            160_000,
        ),
        ("openai/gpt-image-2", json!({"prompt": "x"}), 50_000),
        (
            "openai/gpt-image-2",
            json!({"prompt": "x", "resolution": "2K"}),
            70_000,
        ),
        (
            "openai/gpt-image-2",
            json!({"prompt": "x", "resolution": "4K"}),
            120_000,
        ),
    ] {
        let run = mock
            .post(RUNS, KEY, json!({"model": model, "input": input}))
            .await
            .json();
        assert_eq!(run["costUsd"], cost, "{model} {input}");
    }
}

#[tokio::test]
async fn each_documented_error_code_in_its_shape() {
    let mock = start(config().rate_limit(imggen_mock::Provider::Runbase, None)).await;
    let error = |code: &str, message: &str| json!({"error": {"message": message, "code": code}});
    let not_json = mock.post_raw(RUNS, Some(KEY), "{model".into()).await;
    assert_eq!(
        (not_json.status.as_u16(), not_json.json()),
        (
            400,
            error("invalid_json", "Request body must be valid JSON")
        )
    );
    let array = mock
        .post(RUNS, KEY, json!([{"model": "openai/gpt-image-1"}]))
        .await;
    assert_eq!(
        (array.status.as_u16(), array.json()),
        (
            400,
            error("invalid_json", "Request body must be a JSON object")
        )
    );
    let cases = [
        (
            json!({"input": {"prompt": "x"}}),
            error("missing_model", "Missing required field: model"),
        ),
        (
            json!({"model": "openai/gpt-image-1"}),
            error("missing_input", "Missing required field: input"),
        ),
        (
            json!({"model": "acme/painter-9", "input": {"prompt": "x"}}),
            error("model_not_found", "Model not found: acme/painter-9"),
        ),
        (
            json!({"model": "openai/gpt-image-1", "input": "a prompt"}),
            error(
                "invalid_input",
                "Invalid input: input: must be a JSON object, e.g. {\"prompt\": \"...\"}",
            ),
        ),
        (
            json!({"model": "openai/gpt-image-1", "input": {"prompt": "x", "aspect_ratio": "16:9"}}),
            error(
                "invalid_input",
                "Invalid input: input.aspect_ratio: \"16:9\" is not accepted by openai/gpt-image-1; allowed: 1:1, 3:2, 2:3",
            ),
        ),
        (
            json!({"model": "openai/gpt-image-1.5", "input": {"prompt": "x", "quality": "ultra"}}),
            error(
                "invalid_input",
                "Invalid input: input.quality: \"ultra\" is not accepted by openai/gpt-image-1.5; allowed: medium, high",
            ),
        ),
        (
            json!({"model": "openai/gpt-image-2", "input": {"prompt": "x", "resolution": "8K"}}),
            error(
                "invalid_input",
                "Invalid input: input.resolution: \"8K\" is not accepted by openai/gpt-image-2; allowed: 1K, 2K, 4K",
            ),
        ),
        (
            json!({"model": "openai/gpt-image-2", "input": {"prompt": "a".repeat(4001)}}),
            error(
                "invalid_input",
                "Invalid input: input.prompt: is 4001 characters long; the maximum is 4000",
            ),
        ),
        (
            json!({"model": "openai/gpt-image-1.5", "input": {"prompt": "x", "image_urls": vec!["https://example.com/a.png"; 5]}}),
            error(
                "invalid_input",
                "Invalid input: input.image_urls: has 5 URLs; the maximum is 4",
            ),
        ),
    ];
    for (body, expected) in cases {
        let answer = mock.post(RUNS, KEY, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json(), expected, "{body}");
    }
    let missing_input_prompt = mock
        .post(
            RUNS,
            KEY,
            json!({"model": "openai/gpt-image-1", "input": {"aspect_ratio": "1:1"}}),
        )
        .await;
    assert_eq!(
        missing_input_prompt.json()["error"]["code"],
        "invalid_input"
    );
    // gpt-image-1 takes five references.
    let five = mock
        .post(RUNS, KEY, json!({"model": "openai/gpt-image-1", "input": {"prompt": "x", "image_urls": vec!["https://example.com/a.png"; 5]}}))
        .await;
    assert_eq!(five.status, 200, "{}", five.text);

    let unknown = mock
        .get(&format!("{RUNS}/run_01JZZZZZZZZZZZZZZZZZZZZZZZ"), KEY)
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.json()),
        (404, error("run_not_found", "Run not found"))
    );
    let no_key = mock
        .post_raw(
            RUNS,
            None,
            json!({"model": "openai/gpt-image-1", "input": {"prompt": "x"}}).to_string(),
        )
        .await;
    assert_eq!(
        (no_key.status.as_u16(), no_key.json()),
        (401, error("missing_api_key", "Missing API key"))
    );
    // runbase keys start with sk-.
    let not_sk = mock
        .post(
            RUNS,
            "rb-1234567890",
            json!({"model": "openai/gpt-image-1", "input": {"prompt": "x"}}),
        )
        .await;
    assert_eq!(
        (not_sk.status.as_u16(), not_sk.json()),
        (401, error("invalid_api_key", "Invalid API key"))
    );
    assert_eq!(
        mock.ledger("").await.len(),
        1,
        "only the accepted run was charged"
    );
}

#[tokio::test]
async fn the_twenty_first_request_in_ten_seconds_is_a_429_for_creates_and_polls_together() {
    let mock = start(config()).await;
    let body = json!({"model": "openai/gpt-image-1", "input": {"prompt": "x"}});
    let id = mock.post(RUNS, KEY, body.clone()).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..9 {
        assert_eq!(mock.get(&format!("{RUNS}/{id}"), KEY).await.status, 200);
    }
    for _ in 0..10 {
        assert_eq!(mock.post(RUNS, KEY, body.clone()).await.status, 200);
    }
    mock.server.advance(Duration::from_secs(9)).await;
    let limited = mock.get(&format!("{RUNS}/{id}"), KEY).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json(),
        json!({"error": {"message": "Rate limit exceeded", "code": "RATE_LIMITED"}})
    );
    assert_eq!(
        limited.header("retry-after"),
        None,
        "runbase documents no Retry-After"
    );
    assert_eq!(
        mock.post(RUNS, KEY, body.clone()).await.status,
        429,
        "creates count too"
    );
    assert_eq!(
        mock.get(&format!("{RUNS}/{id}"), OTHER_KEY).await.status,
        404,
        "another key has its own budget"
    );
    mock.server.advance(Duration::from_secs(1)).await;
    assert_eq!(
        mock.get(&format!("{RUNS}/{id}"), KEY).await.status,
        200,
        "the window moved on"
    );
    assert_eq!(
        mock.ledger("").await.len(),
        11,
        "the refused create was not charged"
    );
    // What a scheduler's test reads to prove it stayed inside the limit.
    let stats = mock.server.requests();
    assert_eq!(stats.with_status(429), 2);
    assert_eq!(stats.total, 24);
    let over_http: Value = mock
        .http
        .get(format!("{}/_mock/requests", mock.server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http["by_status"]["429"], 2);
    assert_eq!(
        over_http["total"], 24,
        "the /_mock/ call itself is not counted"
    );
    assert!(
        !over_http.to_string().contains(KEY),
        "only key labels are listed"
    );
}
