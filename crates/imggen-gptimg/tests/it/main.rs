//! The gptimg client against mockito: the exact request of every call, every documented answer
//! and error, and what happens when the network or the server misbehaves.

use std::sync::Arc;
use std::time::Duration;

use imggen_gptimg::{
    AspectRatio, Client, Credits, Error, ErrorCode, GenerateRequest, RetryPolicy, TaskId,
    TaskStatus, TaskType,
};
use imggen_http::testing::{Bodies, reqwest_client};
use imggen_http::time::ManualTime;
use mockito::{Matcher, Server, ServerGuard};

const KEY: &str = "sk-gptimg-test-0123456789";
const TASK: &str = "gpt-image-2-kUtpnus8fXpDKkuEjayG3";

fn fixture(name: &str) -> String {
    imggen_http::testing::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// A fresh client per test (a shared reqwest client could reuse a stale connection to a
/// recycled port), with time that never really passes.
fn client(server: &ServerGuard, time: &ManualTime) -> Client {
    imggen_http::testing::builder(KEY, &server.url(), time)
        .build()
        .unwrap()
}

fn api(error: Error) -> Box<imggen_http::ApiError<imggen_gptimg::ErrorBody>> {
    match error {
        Error::Api(api) => api,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn generate_sends_exactly_the_documented_request() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = server
        .mock("POST", "/api/v1/images/generate")
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_header("content-type", "application/json")
        .match_header(
            "user-agent",
            Matcher::Regex(r"^imggen/\S+ imggen-gptimg/\S+$".into()),
        )
        .match_request(bodies.recorder())
        .with_status(200)
        .with_header("x-request-id", "req_create_1")
        .with_body(fixture("CreateResponse.doc.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();

    let request = GenerateRequest::new("Restyle the subject as a watercolor painting")
        .aspect_ratio(AspectRatio::Portrait3x4)
        .n(2)
        .reference_image("https://example.com/portrait.jpg");
    let created = client(&server, &time).create(&request).await.unwrap();

    mock.assert_async().await;
    insta::assert_json_snapshot!("generate_request_body", bodies.only());
    insta::assert_debug_snapshot!("generate_response", created);
    assert_eq!(created.task_id, TaskId::new(TASK));
    assert_eq!(created.images, Some(vec![]));
}

#[tokio::test]
async fn a_minimal_request_sends_only_the_prompt() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = server
        .mock("POST", "/api/v1/images/generate")
        .match_request(bodies.recorder())
        .with_body(fixture("CreateResponse.doc.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    client(&server, &time)
        .create(&GenerateRequest::new(
            "A minimalist product shot of a ceramic coffee cup",
        ))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(
        bodies.only(),
        serde_json::json!({"prompt": "A minimalist product shot of a ceramic coffee cup"})
    );
}

#[tokio::test]
async fn task_polls_with_task_id_and_reads_every_state() {
    let mut server = Server::new_async().await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let id = TaskId::new(TASK);

    for (fixture_name, status) in [
        ("TaskResponse.processing.json", TaskStatus::Processing),
        ("TaskResponse.completed.json", TaskStatus::Completed),
        ("TaskResponse.failed.json", TaskStatus::Failed),
    ] {
        let mock = server
            .mock("GET", format!("/api/v1/images/task/{TASK}").as_str())
            .match_header("authorization", format!("Bearer {KEY}").as_str())
            .with_body(fixture(fixture_name))
            .expect(1)
            .create_async()
            .await;
        let task = client.status(&id).await.unwrap();
        mock.assert_async().await;
        mock.remove_async().await;
        assert_eq!(task.status, status, "{fixture_name}");
        insta::assert_debug_snapshot!(fixture_name, task);
    }
}

#[tokio::test]
async fn images_are_null_while_processing_and_listed_when_completed() {
    let processing: imggen_types::gptimg::TaskResponse =
        serde_json::from_str(&fixture("TaskResponse.processing.json")).unwrap();
    assert_eq!(processing.data.images, None);
    assert!(processing.data.image_urls().is_empty());

    let completed: imggen_types::gptimg::TaskResponse =
        serde_json::from_str(&fixture("TaskResponse.completed.json")).unwrap();
    assert_eq!(completed.data.kind, Some(TaskType::ImageToImage));
    assert_eq!(
        completed.data.image_urls(),
        [
            "https://cdn.gptimg.co/results/kUtpnus8fXpDKkuEjayG3-0.png",
            "https://cdn.gptimg.co/results/kUtpnus8fXpDKkuEjayG3-1.png"
        ]
    );

    let failed: imggen_types::gptimg::TaskResponse =
        serde_json::from_str(&fixture("TaskResponse.failed.json")).unwrap();
    assert_eq!(
        failed.data.error_message().as_deref(),
        Some("Upstream generation failed: content policy violation")
    );
}

#[tokio::test]
async fn every_documented_error_becomes_a_typed_api_error() {
    let cases = [
        (400, "ErrorBody.400.json", ErrorCode::InvalidRequest),
        (401, "ErrorBody.401.json", ErrorCode::Unauthorized),
        (402, "ErrorBody.402.json", ErrorCode::InsufficientCredits),
        (404, "ErrorBody.404.json", ErrorCode::NotFound),
        (429, "ErrorBody.429.json", ErrorCode::RateLimited),
        (500, "ErrorBody.500.json", ErrorCode::InternalError),
    ];
    for (status, fixture_name, code) in cases {
        let mut server = Server::new_async().await;
        let body = fixture(fixture_name);
        let mock = server
            .mock("POST", "/api/v1/images/generate")
            .with_status(status)
            .with_header("x-request-id", "req_header_id")
            .with_body(&body)
            .expect(1)
            .create_async()
            .await;
        let time = ManualTime::new();
        let error = client(&server, &time)
            .create(&GenerateRequest::new("x"))
            .await
            .unwrap_err();
        mock.assert_async().await;
        assert_eq!(error.status(), Some(status as u16));
        assert_eq!(error.code(), Some(code), "{fixture_name}");
        assert_eq!(error.raw_body(), Some(body.as_bytes()));
        assert_eq!(error.request_id(), Some("req_header_id"));
        // Every documented create error proves nothing was charged (500 is refunded).
        assert!(!error.may_have_been_charged(), "{fixture_name}: {error}");
        let retryable = matches!(status, 429 | 500);
        assert_eq!(error.is_retryable(), retryable, "{fixture_name}");
        insta::assert_snapshot!(format!("error_{status}"), error.to_string());
    }
}

#[tokio::test]
async fn insufficient_credits_says_how_many_are_missing() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/v1/images/generate")
        .with_status(402)
        .with_body(fixture("ErrorBody.402.json"))
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x").n(2))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "gptimg create: 402 INSUFFICIENT_CREDITS: 4 credits required, 1 available (request req_8f2c1c)"
    );
    assert_eq!(
        error.advice(),
        Some("buy credits on gptimg.co (2 per image), then submit again")
    );
    let body = api(error).body.unwrap();
    assert_eq!(body.credits(), Some((Credits(4), Credits(1))));
}

#[tokio::test]
async fn unknown_values_and_fields_from_a_newer_api_still_parse() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", format!("/api/v1/images/task/{TASK}").as_str())
        .with_body(
            serde_json::json!({
                "success": true,
                "data": {
                    "id": "kUtpnus8fXpDKkuEjayG3",
                    "task_id": TASK,
                    "status": "queued",
                    "type": "sketch-to-image",
                    "priority": "high",
                    "media_url": null,
                    "images": null,
                    "created_at": "2026-04-22T00:12:03.456Z"
                },
                "meta": {"credits_left": 10}
            })
            .to_string(),
        )
        .create_async()
        .await;
    let time = ManualTime::new();
    let task = client(&server, &time)
        .status(&TaskId::new(TASK))
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Other("queued".into()));
    assert!(!task.status.is_terminal());
    assert_eq!(task.kind, Some(TaskType::Other("sketch-to-image".into())));
}

#[tokio::test]
async fn a_malformed_success_body_is_a_decode_error_that_keeps_the_body() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/v1/images/generate")
        .with_status(200)
        .with_body("<html>upstream hiccup</html>")
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Decode(_)), "{error:?}");
    assert_eq!(error.raw_body(), Some(&b"<html>upstream hiccup</html>"[..]));
    // A 200 to a create means the task exists, even if its id could not be read.
    assert!(error.may_have_been_charged());
    assert!(error.to_string().contains("charged"), "{error}");
}

#[tokio::test]
async fn a_rate_limited_status_call_is_retried_after_the_delay_asked() {
    let mut server = Server::new_async().await;
    let path = format!("/api/v1/images/task/{TASK}");
    let limited = server
        .mock("GET", path.as_str())
        .with_status(429)
        .with_header("retry-after", "3")
        .with_body(fixture("ErrorBody.429.json"))
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("GET", path.as_str())
        .with_body(fixture("TaskResponse.completed.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let task = client(&server, &time)
        .status(&TaskId::new(TASK))
        .await
        .unwrap();
    limited.assert_async().await;
    ok.assert_async().await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(time.sleeps(), [Duration::from_secs(3)]);
}

#[tokio::test]
async fn a_rate_limited_create_is_not_retried_by_the_client() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("POST", "/api/v1/images/generate")
        .with_status(429)
        .with_header("retry-after", "3")
        .with_body(fixture("ErrorBody.429.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    limited.assert_async().await;
    assert!(time.sleeps().is_empty());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    // Nothing was charged, so the layer above may retry it after the delay.
    assert!(error.is_retryable());
    assert!(!error.may_have_been_charged());
}

#[tokio::test]
async fn retries_stop_after_the_policy_allows() {
    let mut server = Server::new_async().await;
    let unavailable = server
        .mock("GET", format!("/api/v1/images/task/{TASK}").as_str())
        .with_status(503)
        .with_body("Service Unavailable")
        .expect(3)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(reqwest_client())
        .sleeper(Arc::new(time.clone()))
        .retry(RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::standard()
        })
        .build()
        .unwrap();
    let error = client.status(&TaskId::new(TASK)).await.unwrap_err();
    unavailable.assert_async().await;
    assert_eq!(time.sleeps().len(), 2);
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        error.to_string(),
        "gptimg status: 503 Service Unavailable: Service Unavailable"
    );
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_sent_once_and_reported_as_maybe_charged() {
    let server = imggen_http::testing::DropAfterRequest::start()
        .await
        .unwrap();
    let time = ManualTime::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .http_client(reqwest_client())
        .sleeper(Arc::new(time.clone()))
        .build()
        .unwrap();
    let error = client.create(&GenerateRequest::new("x")).await.unwrap_err();
    assert_eq!(server.requests(), 1);
    assert!(error.may_have_been_charged(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(
        error
            .to_string()
            .contains("the task may have been created and charged"),
        "{error}"
    );
    assert!(time.sleeps().is_empty());
    assert!(
        error
            .advice()
            .is_some_and(|advice| advice.contains("do not resubmit")),
        "{:?}",
        error.advice()
    );
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused() {
    let mut server = Server::new_async().await;
    server
        .mock("GET", format!("/api/v1/images/task/{TASK}").as_str())
        .with_body("x".repeat(64 * 1024))
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(reqwest_client())
        .sleeper(Arc::new(time.clone()))
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    let error = client.status(&TaskId::new(TASK)).await.unwrap_err();
    assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    assert!(error.to_string().contains("16384-byte cap"), "{error}");
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let mut server = Server::new_async().await;
    let never = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let cases = [
        (
            GenerateRequest::new("x").n(5),
            "n: 5 is out of range; allowed: 1 to 4",
        ),
        (
            GenerateRequest::new(""),
            "prompt: must not be empty or only whitespace",
        ),
        (
            GenerateRequest::new("x").reference_image("http://example.com/a.jpg"),
            "reference_images[0]: \"http://example.com/a.jpg\" has scheme \"http\"; allowed: an https:// URL",
        ),
        (
            GenerateRequest::new("x")
                .aspect_ratio(AspectRatio::Other("7:5".into()))
                .n(0),
            "n: 0 is out of range; allowed: 1 to 4",
        ),
    ];
    for (request, message) in cases {
        let error = client.create(&request).await.unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("gptimg create: invalid request, nothing was sent: {message}")
        );
        assert!(!error.may_have_been_charged());
    }
    let error = client
        .status(&TaskId::new("../../admin"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    never.assert_async().await;
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_errors() {
    let mut server = Server::new_async().await;
    server
        .mock("POST", "/api/v1/images/generate")
        .with_status(401)
        .with_body(fixture("ErrorBody.401.json"))
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let error = client.create(&GenerateRequest::new("x")).await.unwrap_err();
    for text in [
        format!("{client:?}"),
        format!("{error}"),
        format!("{error:?}"),
        format!("{:?}", Client::builder().api_key(KEY)),
    ] {
        assert!(!text.contains(KEY), "key leaked: {text}");
        assert!(
            !text.contains("0123456789"),
            "part of the key leaked: {text}"
        );
    }
}

#[tokio::test]
async fn a_missing_key_names_the_variable() {
    // Only this test touches GPTIMG_*; the variables are read at build time.
    let error = Client::builder().build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "gptimg: no API key: set GPTIMG_API_KEY or call .api_key(...)"
    );
}

#[tokio::test]
async fn downloads_send_no_key_and_refuse_plain_http_from_an_https_api() {
    let mut server = Server::new_async().await;
    let png = server
        .mock("GET", "/results/a.png")
        .match_header("authorization", Matcher::Missing)
        .with_header("content-type", "image/png")
        .with_body([0x89, b'P', b'N', b'G'])
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let downloaded = client
        .download(&format!("{}/results/a.png", server.url()))
        .await
        .unwrap();
    png.assert_async().await;
    assert_eq!(&downloaded.bytes[..], [0x89, b'P', b'N', b'G']);

    let https_api = Client::builder()
        .api_key(KEY)
        .base_url("https://gptimg.co")
        .build()
        .unwrap();
    let error = https_api
        .download("http://cdn.example/a.png")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
}
