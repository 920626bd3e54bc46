//! gptimg: the envelope, ids, X-Request-Id, null images while processing, validation, 401s.

use serde_json::json;

use crate::{KEY, OTHER_KEY, TASK_TIME, config, start};

const CREATE: &str = "/api/v1/images/generate";

#[tokio::test]
async fn create_and_poll_in_the_documented_envelope() {
    let mock = start(config()).await;
    let created = mock
        .post(
            CREATE,
            KEY,
            json!({"prompt": "A lighthouse at sunset", "aspect_ratio": "16:9", "n": 2}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let request_id = created.header("x-request-id").unwrap().to_owned();
    assert!(request_id.starts_with("req_"), "{request_id}");
    let body = created.json();
    insta::assert_json_snapshot!("gptimg_create", body, {
        ".data.id" => "[row id]",
        ".data.task_id" => "[task id]",
        ".data.created_at" => "[time]",
    });
    let row_id = body["data"]["id"].as_str().unwrap().to_owned();
    let task_id = body["data"]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(row_id.len(), 21);
    assert_eq!(task_id, format!("gpt-image-2-{row_id}"));

    let path = format!("/api/v1/images/task/{task_id}");
    let processing = mock.get(&path, KEY).await;
    assert_ne!(
        processing.header("x-request-id"),
        Some(request_id.as_str()),
        "a new id per response"
    );
    let processing = processing.json();
    assert_eq!(processing["data"]["status"], "processing");
    assert_eq!(
        processing["data"]["images"],
        serde_json::Value::Null,
        "null while processing"
    );

    mock.server.advance(TASK_TIME).await;
    let completed = mock.get(&path, KEY).await.json();
    insta::assert_json_snapshot!("gptimg_completed", completed, {
        ".data.id" => "[row id]",
        ".data.task_id" => "[task id]",
        ".data.created_at" => "[time]",
        ".data.updated_at" => "[time]",
        ".data.media_url" => "[url]",
        ".data.images[].url" => "[url]",
    });
    let images = completed["data"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(completed["data"]["media_url"], images[0]["url"]);
    for (index, image) in images.iter().enumerate() {
        let url = image["url"].as_str().unwrap();
        assert_eq!(
            url,
            format!("{}/files/gptimg/{task_id}/{index}.png", mock.server.url())
        );
        let (status, _, png) = mock.download(url).await;
        assert_eq!(status, 200);
        assert_eq!(crate::png_size(&png), (256, 144));
    }

    // Polling with data.id instead of data.task_id is a 404, as documented.
    let by_row = mock
        .get(&format!("/api/v1/images/task/{row_id}"), KEY)
        .await;
    assert_eq!(by_row.status, 404);
    let error = by_row.json();
    assert_eq!(error["error"]["code"], "NOT_FOUND");
    assert_eq!(
        error["error"]["request_id"].as_str(),
        by_row.header("x-request-id")
    );
    // And another key cannot see the task.
    assert_eq!(mock.get(&path, OTHER_KEY).await.status, 404);
}

#[tokio::test]
async fn reference_images_make_an_image_to_image_task() {
    let mock = start(config()).await;
    let created = mock
        .post(CREATE, KEY, json!({"prompt": "Restyle", "reference_images": ["https://example.com/portrait.jpg"], "aspect_ratio": "3:4", "n": 2}))
        .await
        .json();
    assert_eq!(created["data"]["type"], "image-to-image");
}

#[tokio::test]
async fn every_documented_rejection_is_a_400_invalid_request_with_a_request_id() {
    let mock = start(config()).await;
    let cases = [
        (
            json!({"prompt": ""}),
            "prompt: must not be empty or only whitespace",
        ),
        (
            json!({"prompt": "x", "n": 5}),
            "n: 5 is out of range; allowed: 1 to 4",
        ),
        (
            json!({"prompt": "x", "n": 0}),
            "n: 0 is out of range; allowed: 1 to 4",
        ),
        (
            json!({"prompt": "x", "aspect_ratio": "7:3"}),
            "aspect_ratio: \"7:3\" is not accepted by gptimg; allowed: 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3, 5:4, 4:5, 2:1, 1:2, 21:9, 9:21",
        ),
        (
            json!({"prompt": "x", "reference_images": vec!["https://example.com/a.jpg"; 5]}),
            "reference_images: has 5 URLs; the maximum is 4",
        ),
        (
            json!({"prompt": "x", "reference_images": ["http://example.com/a.jpg"]}),
            "reference_images[0]: \"http://example.com/a.jpg\" has scheme \"http\"; allowed: an https:// URL",
        ),
        (
            json!({"prompt": "x", "reference_images": ["data:image/png;base64,iVBORw0KGgo="]}),
            "reference_images[0]: \"data:image/png;base64,iVBORw0KGgo=\" has scheme \"data\"; allowed: an https:// URL",
        ),
    ];
    for (body, message) in cases {
        let answer = mock.post(CREATE, KEY, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        let error = answer.json();
        assert_eq!(error["error"]["code"], "INVALID_REQUEST", "{body}");
        assert_eq!(error["error"]["message"], message, "{body}");
        assert_eq!(
            error["error"]["request_id"].as_str(),
            answer.header("x-request-id")
        );
    }
    let not_json = mock.post_raw(CREATE, Some(KEY), "prompt=x".into()).await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["error"]["code"], "INVALID_REQUEST");
    let long = mock
        .post(CREATE, KEY, json!({"prompt": "a".repeat(32_001)}))
        .await;
    assert_eq!(long.status, 400);
    assert_eq!(
        long.json()["error"]["message"],
        "prompt: is 32001 characters long; the maximum is 32000"
    );
    let n_too_big = mock
        .post(CREATE, KEY, json!({"prompt": "x", "n": 300}))
        .await;
    assert_eq!(n_too_big.status, 400);
    assert!(
        mock.ledger("").await.is_empty(),
        "nothing rejected was charged"
    );
}

#[tokio::test]
async fn keys_in_the_query_string_and_bad_keys_are_401s() {
    let mock = start(config()).await;
    let leaked = mock
        .post(
            &format!("{CREATE}?api_key={KEY}"),
            KEY,
            json!({"prompt": "x"}),
        )
        .await;
    assert_eq!(leaked.status, 401);
    assert_eq!(leaked.json()["error"]["code"], "UNAUTHORIZED");
    assert!(leaked.text.contains("query string"), "{}", leaked.text);
    assert!(!leaked.text.contains(KEY), "the key is never echoed");

    let missing = mock
        .post_raw(CREATE, None, json!({"prompt": "x"}).to_string())
        .await;
    assert_eq!(missing.status, 401);
    assert!(missing.header("x-request-id").is_some());
    assert_eq!(missing.json()["error"]["code"], "UNAUTHORIZED");
    assert!(mock.ledger("").await.is_empty());
}

#[tokio::test]
async fn a_configured_rate_limit_answers_429_with_retry_after() {
    use std::time::Duration;
    let limit = imggen_mock::RateLimit::new(2, Duration::from_secs(60));
    let mock = start(config().rate_limit(imggen_mock::Provider::Gptimg, Some(limit))).await;
    for _ in 0..2 {
        assert_eq!(
            mock.post(CREATE, KEY, json!({"prompt": "x"})).await.status,
            200
        );
    }
    let limited = mock.post(CREATE, KEY, json!({"prompt": "x"})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(limited.json()["error"]["code"], "RATE_LIMITED");
    assert_eq!(
        mock.post(CREATE, OTHER_KEY, json!({"prompt": "x"}))
            .await
            .status,
        200,
        "per key"
    );
    mock.server.advance(Duration::from_secs(45)).await;
    assert_eq!(
        mock.post(CREATE, KEY, json!({"prompt": "x"}))
            .await
            .header("retry-after"),
        Some("15")
    );
    mock.server.advance(Duration::from_secs(15)).await;
    assert_eq!(
        mock.post(CREATE, KEY, json!({"prompt": "x"})).await.status,
        200
    );
    assert_eq!(mock.ledger("").await.len(), 4, "429s are not charged");
}
