//! The runblob client against mockito: the exact request of every call, every documented answer
//! and error, reference images in every form, webhooks, and what happens when the network or
//! the server misbehaves.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use imggen_http::testing::{Bodies, reqwest_client};
use imggen_http::time::ManualTime;
use imggen_runblob::{
    AspectRatio, Client, Error, ErrorBody, ErrorCode, FailureCode, GenerateRequest,
    GenerateResponse, Generation, GenerationStatus, ImageSource, ListGenerationsQuery, RetryPolicy,
    TaskUuid, Usd, parse_webhook,
};
use mockito::{Matcher, Server, ServerGuard};

const KEY: &str = "rb-live-test-0123456789";
const TASK: &str = "dc62d83d-1953-4bca-8554-222679a7a4a9";
const GENERATE: &str = "/v1/chatgpt-images/generate";

/// The smallest headers `sniff` recognises; runblob only ever sees them base64-encoded.
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
];
const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];
const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";

fn fixture(name: &str) -> String {
    imggen_http::testing::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// A fresh client per test (a shared reqwest client could reuse a stale connection to a
/// recycled port), with time that never really passes.
fn client(server: &ServerGuard, time: &ManualTime) -> Client {
    imggen_http::testing::builder(KEY, &server.url(), time)
        .build()
        .unwrap()
}

/// A create mock that checks every header runblob's docs show and records the body.
async fn create_mock(server: &mut ServerGuard, bodies: &Bodies) -> mockito::Mock {
    server
        .mock("POST", GENERATE)
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_header("content-type", "application/json")
        .match_header("accept", "application/json")
        .match_header(
            "user-agent",
            Matcher::Regex(r"^imggen/\S+ imggen-runblob/\S+$".into()),
        )
        .match_request(bodies.recorder())
        .with_status(201)
        .with_header("content-type", "application/json")
        .with_body(fixture("GenerateResponse.doc.json"))
        .expect(1)
        .create_async()
        .await
}

fn b64(bytes: &[u8]) -> String {
    let uri = imggen_types::media::data_uri(imggen_types::media::ImageFormat::Png, bytes);
    uri["data:image/png;base64,".len()..].to_owned()
}

#[tokio::test]
async fn generate_sends_only_the_prompt_when_nothing_else_is_set() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = create_mock(&mut server, &bodies).await;
    let time = ManualTime::new();

    let created = client(&server, &time)
        .create(&GenerateRequest::new(
            "A futuristic city with flying cars, neon lights, cyberpunk style",
        ))
        .await
        .unwrap();

    mock.assert_async().await;
    insta::assert_json_snapshot!("generate_request_minimal", bodies.only());
    insta::assert_debug_snapshot!("generate_response", created);
    assert_eq!(created.task_uuid, TaskUuid::new(TASK));
    assert_eq!(created.status, GenerationStatus::Pending);
    assert_eq!(created.price, Usd::from_str("0.0123").unwrap());
    assert_eq!(created.price.to_plain_string(), "0.0123");
}

#[tokio::test]
async fn generate_sends_the_ratio_and_callback_url() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = create_mock(&mut server, &bodies).await;
    let time = ManualTime::new();

    let request = GenerateRequest::new("A beautiful portrait in studio lighting")
        .aspect_ratio(AspectRatio::Portrait3x4)
        .callback_url("https://your-app.com/webhooks/chatgpt-images");
    client(&server, &time).create(&request).await.unwrap();

    mock.assert_async().await;
    insta::assert_json_snapshot!("generate_request_ratio_callback", bodies.only());
}

#[tokio::test]
async fn generate_sends_wire_references_as_given() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = create_mock(&mut server, &bodies).await;
    let time = ManualTime::new();
    let client = client(&server, &time);

    let mut request = GenerateRequest::new("Combine these images into a beautiful collage")
        .aspect_ratio(AspectRatio::Square);
    request.images = client
        .resolve_images([
            ImageSource::url("https://example.com/ref1.jpg"),
            ImageSource::data_uri(imggen_types::media::data_uri(
                imggen_types::media::ImageFormat::Png,
                PNG,
            )),
            ImageSource::base64(b64(JPEG)),
        ])
        .await
        .unwrap();
    client.create(&request).await.unwrap();

    mock.assert_async().await;
    insta::assert_json_snapshot!("generate_request_wire_images", bodies.only());
}

#[tokio::test]
async fn generate_sends_bytes_and_files_as_data_uris_of_their_sniffed_type() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = create_mock(&mut server, &bodies).await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let dir = tempfile::tempdir().unwrap();
    // A PNG with a JPEG name: the bytes decide.
    let photo = dir.path().join("photo.jpg");
    tokio::fs::write(&photo, PNG).await.unwrap();

    let mut request = GenerateRequest::new("Restyle the photo like the reference")
        .aspect_ratio(AspectRatio::Landscape4x3)
        .callback_url("https://your-app.com/webhooks/chatgpt-images");
    request.images = client
        .resolve_images([
            ImageSource::file(&photo),
            ImageSource::bytes(JPEG),
            ImageSource::wire("https://example.com/style.jpg"),
        ])
        .await
        .unwrap();
    client.create(&request).await.unwrap();

    mock.assert_async().await;
    let body = bodies.only();
    assert_eq!(
        body["images"][0],
        format!("data:image/png;base64,{}", b64(PNG))
    );
    assert_eq!(
        body["images"][1],
        format!("data:image/jpeg;base64,{}", b64(JPEG))
    );
    insta::assert_json_snapshot!("generate_request_local_images", body);
}

#[tokio::test]
async fn the_documented_request_examples_are_sent_as_documented() {
    for name in [
        "GenerateRequest.doc.json",
        "GenerateRequest.aspect_ratio.json",
        "GenerateRequest.urls.json",
        "GenerateRequest.references.json",
        "GenerateRequest.base64_callback.json",
    ] {
        let mut server = Server::new_async().await;
        let bodies = Bodies::default();
        let mock = create_mock(&mut server, &bodies).await;
        let time = ManualTime::new();
        let expected = fixture_json(name);
        let request: GenerateRequest = serde_json::from_value(expected.clone()).unwrap();
        request
            .validate()
            .unwrap_or_else(|err| panic!("{name}: {err}"));

        client(&server, &time).create(&request).await.unwrap();

        mock.assert_async().await;
        assert_eq!(bodies.only(), expected, "{name}");
    }
}

#[tokio::test]
async fn generation_reads_every_state() {
    let mut server = Server::new_async().await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let id = TaskUuid::new(TASK);

    for (fixture_name, status) in [
        ("Generation.pending.json", GenerationStatus::Pending),
        ("Generation.processing.json", GenerationStatus::Processing),
        ("Generation.completed.json", GenerationStatus::Completed),
        ("Generation.failed.json", GenerationStatus::Failed),
    ] {
        let mock = server
            .mock(
                "GET",
                format!("/v1/chatgpt-images/generations/{TASK}").as_str(),
            )
            .match_header("authorization", format!("Bearer {KEY}").as_str())
            .match_header("accept", "application/json")
            .match_header(
                "user-agent",
                Matcher::Regex(r"^imggen/\S+ imggen-runblob/\S+$".into()),
            )
            .match_body(Matcher::Missing)
            .with_body(fixture(fixture_name))
            .expect(1)
            .create_async()
            .await;
        let generation = client.status(&id).await.unwrap();
        mock.assert_async().await;
        mock.remove_async().await;
        assert_eq!(generation.status, status, "{fixture_name}");
        assert_eq!(generation.task_uuid, id);
        insta::assert_debug_snapshot!(fixture_name, generation);
    }
}

#[tokio::test]
async fn a_completed_generation_has_a_url_and_a_failed_one_a_code() {
    let completed: Generation =
        serde_json::from_str(&fixture("Generation.completed.json")).unwrap();
    assert!(completed.status.is_terminal());
    assert_eq!(
        completed.result_image_url.as_deref(),
        Some("https://cdn.runblob.io/chatgpt-images/dc62d83d-1953-4bca-8554-222679a7a4a9.png")
    );
    assert_eq!(completed.failure_code(), None);

    let failed: Generation = serde_json::from_str(&fixture("Generation.failed.json")).unwrap();
    assert!(failed.status.is_terminal());
    assert_eq!(failed.result_image_url, None);
    assert_eq!(failed.failure_code(), Some(FailureCode::OpenaiDeclined));

    let processing: Generation =
        serde_json::from_str(&fixture("Generation.processing.json")).unwrap();
    assert!(!processing.status.is_terminal());
}

#[tokio::test]
async fn list_generations_sends_the_query_and_reads_a_bare_array() {
    let mut server = Server::new_async().await;
    let array = format!(
        "[{}, {}]",
        fixture("Generation.completed.json"),
        fixture("Generation.failed.json")
    );
    let mock = server
        .mock("GET", "/v1/chatgpt-images/generations")
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_query(Matcher::AllOf(vec![
            Matcher::UrlEncoded("limit".into(), "50".into()),
            Matcher::UrlEncoded("offset".into(), "100".into()),
        ]))
        .with_body(array)
        .expect(1)
        .create_async()
        .await;
    let bare = server
        .mock("GET", "/v1/chatgpt-images/generations")
        .match_query(Matcher::Exact(String::new()))
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);

    let list = client
        .list(ListGenerationsQuery {
            limit: Some(50),
            offset: Some(100),
        })
        .await
        .unwrap();
    let empty = client.list(ListGenerationsQuery::default()).await.unwrap();

    mock.assert_async().await;
    bare.assert_async().await;
    let statuses: Vec<_> = list.iter().map(|g| g.status.clone()).collect();
    assert_eq!(
        statuses,
        [GenerationStatus::Completed, GenerationStatus::Failed]
    );
    assert!(empty.is_empty());
}

#[test]
fn webhook_bodies_parse_as_the_status_object() {
    let event = parse_webhook(fixture("Generation.webhook.json").as_bytes()).unwrap();
    assert_eq!(event.task_uuid, TaskUuid::new(TASK));
    assert_eq!(event.status, GenerationStatus::Completed);
    assert!(event.result_image_url.is_some());

    let error = parse_webhook(b"<html>hello</html>").unwrap_err();
    assert_eq!(error.raw_body, b"<html>hello</html>");
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn a_webhook_is_confirmed_with_one_status_call() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock(
            "GET",
            format!("/v1/chatgpt-images/generations/{TASK}").as_str(),
        )
        .with_body(fixture("Generation.completed.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let event = parse_webhook(fixture("Generation.webhook.json").as_bytes()).unwrap();
    let confirmed = client(&server, &time)
        .status(&event.task_uuid)
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(confirmed.status, event.status);
}

/// How a documented error answer reads: for which call, with what code and message, and what
/// it means for retrying and for money.
struct ErrorCase {
    status: usize,
    fixture: &'static str,
    create: bool,
    code: Option<ErrorCode>,
    message: Option<&'static str>,
    retryable: bool,
    charged: bool,
}

#[tokio::test]
async fn every_documented_error_becomes_a_typed_api_error() {
    let cases = [
        ErrorCase {
            status: 400,
            fixture: "ErrorBody.400.json",
            create: true,
            code: None,
            message: Some("Validation error: images format invalid"),
            retryable: false,
            charged: false,
        },
        ErrorCase {
            status: 401,
            fixture: "ErrorBody.401.json",
            create: true,
            code: Some(ErrorCode::Unauthorized),
            message: Some("Invalid API key"),
            retryable: false,
            charged: false,
        },
        ErrorCase {
            status: 402,
            fixture: "ErrorBody.402.json",
            create: true,
            code: Some(ErrorCode::InsufficientCredits),
            message: None,
            retryable: false,
            charged: false,
        },
        ErrorCase {
            status: 404,
            fixture: "ErrorBody.404.json",
            create: false,
            code: Some(ErrorCode::TaskNotFound),
            message: None,
            retryable: false,
            charged: false,
        },
        ErrorCase {
            status: 422,
            fixture: "ErrorBody.422.json",
            create: true,
            code: None,
            message: Some("body.prompt: Field required"),
            retryable: false,
            charged: false,
        },
        // "Refund attempted" is not a refund proven.
        ErrorCase {
            status: 500,
            fixture: "ErrorBody.500.json",
            create: true,
            code: Some(ErrorCode::OpenaiDeclined),
            message: None,
            retryable: false,
            charged: true,
        },
        ErrorCase {
            status: 503,
            fixture: "ErrorBody.503.json",
            create: true,
            code: Some(ErrorCode::Maintenance),
            message: None,
            retryable: true,
            charged: false,
        },
        ErrorCase {
            status: 400,
            fixture: "ErrorBody.success_false.json",
            create: true,
            code: None,
            message: Some("Invalid aspect_ratio. Allowed: 1:1, 4:3, 3:4"),
            retryable: false,
            charged: false,
        },
    ];
    for case in cases {
        let mut server = Server::new_async().await;
        let body = fixture(case.fixture);
        let (method, path) = if case.create {
            ("POST", GENERATE.to_owned())
        } else {
            ("GET", format!("/v1/chatgpt-images/generations/{TASK}"))
        };
        let mock = server
            .mock(method, path.as_str())
            .with_status(case.status)
            .with_header("content-type", "application/json")
            .with_body(&body)
            .expect(1)
            .create_async()
            .await;
        let time = ManualTime::new();
        let client = client(&server, &time);
        let error = if case.create {
            client.create(&GenerateRequest::new("x")).await.unwrap_err()
        } else {
            client.status(&TaskUuid::new(TASK)).await.unwrap_err()
        };
        mock.assert_async().await;
        let name = case.fixture;
        assert_eq!(error.status(), Some(case.status as u16), "{name}");
        assert_eq!(error.code(), case.code, "{name}");
        let parsed: ErrorBody = serde_json::from_str(&body).unwrap();
        assert_eq!(error.api_body(), Some(&parsed), "{name}");
        assert_eq!(parsed.message().as_deref(), case.message, "{name}");
        assert_eq!(error.raw_body(), Some(body.as_bytes()), "{name}");
        assert_eq!(error.is_retryable(), case.retryable, "{name}: {error}");
        assert_eq!(
            error.may_have_been_charged(),
            case.charged,
            "{name}: {error}"
        );
        assert!(time.sleeps().is_empty(), "{name}: retried");
        insta::assert_snapshot!(name, error.to_string());
    }
}

#[tokio::test]
async fn unknown_values_and_fields_from_a_newer_api_still_parse() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock(
            "GET",
            format!("/v1/chatgpt-images/generations/{TASK}").as_str(),
        )
        .with_body(
            serde_json::json!({
                "task_uuid": TASK,
                "status": "queued",
                "prompt": "A lighthouse",
                "result_image_url": null,
                "message": null,
                "model": "chatgpt-2.5",
                "progress": 0.25,
                "created_at": "2026-04-22T00:12:03Z"
            })
            .to_string(),
        )
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let generation = client(&server, &time)
        .status(&TaskUuid::new(TASK))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(generation.status, GenerationStatus::Other("queued".into()));
    assert!(!generation.status.is_terminal());

    let new_failure: Generation = serde_json::from_value(serde_json::json!({
        "task_uuid": TASK, "status": "failed", "message": "GPU_ON_FIRE"
    }))
    .unwrap();
    assert_eq!(
        new_failure.failure_code(),
        Some(FailureCode::Other("GPU_ON_FIRE".into()))
    );
    let created: GenerateResponse = serde_json::from_value(serde_json::json!({
        "task_uuid": TASK, "status": "queued", "price": "0.0400", "credits_left": "12.5"
    }))
    .unwrap();
    assert_eq!(created.status, GenerationStatus::Other("queued".into()));
}

#[tokio::test]
async fn a_malformed_success_body_is_a_decode_error_that_keeps_the_body() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", GENERATE)
        .with_status(201)
        .with_body("<html>upstream hiccup</html>")
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert!(matches!(error, Error::Decode(_)), "{error:?}");
    assert_eq!(error.raw_body(), Some(&b"<html>upstream hiccup</html>"[..]));
    // A 201 means the task exists, even if its id could not be read.
    assert!(error.may_have_been_charged());
    assert_eq!(
        error.to_string(),
        "runblob create: the 201 answer is not the documented JSON; the task was probably created and charged: check before submitting it again"
    );
}

#[tokio::test]
async fn a_rate_limited_status_call_is_retried_after_the_delay_asked() {
    let mut server = Server::new_async().await;
    let path = format!("/v1/chatgpt-images/generations/{TASK}");
    let limited = server
        .mock("GET", path.as_str())
        .with_status(429)
        .with_header("retry-after", "7")
        .with_body(fixture("ErrorBody.429.json"))
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("GET", path.as_str())
        .with_body(fixture("Generation.completed.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let generation = client(&server, &time)
        .status(&TaskUuid::new(TASK))
        .await
        .unwrap();
    limited.assert_async().await;
    ok.assert_async().await;
    assert_eq!(generation.status, GenerationStatus::Completed);
    assert_eq!(time.sleeps(), [Duration::from_secs(7)]);
}

#[tokio::test]
async fn a_rate_limited_create_is_not_retried_by_the_client() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("POST", GENERATE)
        .with_status(429)
        .with_header("retry-after", "7")
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
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    // Nothing was charged, so the layer above may send it again after the delay.
    assert!(error.is_retryable());
    assert!(!error.may_have_been_charged());
    assert_eq!(
        error.to_string(),
        "runblob create: 429 Too Many Requests: Rate limit exceeded; retry after 7s"
    );
}

#[tokio::test]
async fn a_maintenance_create_is_sent_once_and_says_nothing_was_charged() {
    let mut server = Server::new_async().await;
    let maintenance = server
        .mock("POST", GENERATE)
        .with_status(503)
        .with_body(fixture("ErrorBody.503.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    maintenance.assert_async().await;
    assert!(time.sleeps().is_empty());
    assert_eq!(error.code(), Some(ErrorCode::Maintenance));
    assert!(error.is_retryable());
    assert!(!error.may_have_been_charged());
    assert_eq!(error.to_string(), "runblob create: 503 Maintenance");
}

#[tokio::test]
async fn an_undocumented_503_on_a_create_may_have_been_charged() {
    let mut server = Server::new_async().await;
    let gateway = server
        .mock("POST", GENERATE)
        .with_status(503)
        .with_body("<html>503 Service Temporarily Unavailable</html>")
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    gateway.assert_async().await;
    assert!(time.sleeps().is_empty());
    assert!(!error.is_retryable());
    assert!(error.may_have_been_charged(), "{error}");
}

#[tokio::test]
async fn status_calls_stop_retrying_when_the_policy_says() {
    let mut server = Server::new_async().await;
    let maintenance = server
        .mock(
            "GET",
            format!("/v1/chatgpt-images/generations/{TASK}").as_str(),
        )
        .with_status(503)
        .with_body(fixture("ErrorBody.503.json"))
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
    let error = client.status(&TaskUuid::new(TASK)).await.unwrap_err();
    maintenance.assert_async().await;
    assert_eq!(time.sleeps().len(), 2);
    assert_eq!(error.to_string(), "runblob status: 503 Maintenance");
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
            .starts_with("runblob create: the connection failed after the request was sent; the task may have been created and charged"),
        "{error}"
    );
    assert!(time.sleeps().is_empty());
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock(
            "GET",
            format!("/v1/chatgpt-images/generations/{TASK}").as_str(),
        )
        .with_body("x".repeat(64 * 1024))
        .expect(1)
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
    let error = client.status(&TaskUuid::new(TASK)).await.unwrap_err();
    mock.assert_async().await;
    assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "runblob status: the 200 answer is larger than the 16384-byte cap"
    );
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let mut server = Server::new_async().await;
    let never_post = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let never_get = server
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);

    let mut five = GenerateRequest::new("x");
    for _ in 0..5 {
        five = five.image("https://example.com/a.jpg");
    }
    let cases = [
        (
            GenerateRequest::new("x").aspect_ratio(AspectRatio::Landscape16x9),
            "aspect_ratio: \"16:9\" is not accepted by runblob; allowed: 1:1, 4:3, 3:4",
        ),
        (five, "images: has 5 images; the maximum is 4"),
        (
            GenerateRequest::new("a".repeat(4001)),
            "prompt: is 4001 characters long; the maximum is 4000",
        ),
        (
            GenerateRequest::new("x").callback_url("http://example.com/hook"),
            "callback_url: \"http://example.com/hook\" has scheme \"http\"; allowed: an https:// URL",
        ),
        (
            GenerateRequest::new("x").image("data:image/gif;base64,R0lGODlhAQABAAAAACw="),
            "images[0]: data URI of type \"image/gif\" is not accepted; allowed: image/jpeg, image/png, image/webp",
        ),
    ];
    for (request, message) in cases {
        let error = client.create(&request).await.unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("runblob create: invalid request, nothing was sent: {message}")
        );
        assert!(!error.may_have_been_charged());
        assert!(!error.is_retryable());
    }

    // Local files are refused while resolving, before a request exists.
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("anim.png");
    tokio::fs::write(&gif, GIF).await.unwrap();
    let missing = dir.path().join("missing.jpg");
    let file_cases = [
        (
            ImageSource::file(&gif),
            format!(
                "images[1]: file {:?} is image/gif; allowed: image/jpeg, image/png, image/webp",
                gif.display().to_string()
            ),
        ),
        (
            ImageSource::file(&missing),
            format!(
                "images[1]: file {:?} does not exist",
                missing.display().to_string()
            ),
        ),
    ];
    for (source, message) in file_cases {
        let error = client
            .resolve_images([ImageSource::url("https://example.com/a.jpg"), source])
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("runblob create: invalid request, nothing was sent: {message}")
        );
    }

    let error = client
        .status(&TaskUuid::new("../../admin"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");

    never_post.assert_async().await;
    never_get.assert_async().await;
}

#[tokio::test]
async fn a_loopback_callback_is_allowed_for_a_local_receiver() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = create_mock(&mut server, &bodies).await;
    let time = ManualTime::new();
    client(&server, &time)
        .create(&GenerateRequest::new("x").callback_url("http://127.0.0.1:9000/hook"))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(bodies.only()["callback_url"], "http://127.0.0.1:9000/hook");
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_errors() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", GENERATE)
        .with_status(401)
        .with_body(fixture("ErrorBody.401.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let error = client.create(&GenerateRequest::new("x")).await.unwrap_err();
    mock.assert_async().await;
    let invalid = client.create(&GenerateRequest::new("")).await.unwrap_err();
    let config = Client::builder()
        .api_key(KEY)
        .base_url("not a url")
        .build()
        .unwrap_err();
    for text in [
        format!("{client:?}"),
        format!("{:?}", client.transport()),
        format!("{error}"),
        format!("{error:?}"),
        format!("{invalid}"),
        format!("{invalid:?}"),
        format!("{config}"),
        format!("{config:?}"),
        format!("{:?}", Client::builder().api_key(KEY)),
    ] {
        assert!(!text.contains(KEY), "key leaked: {text}");
        assert!(
            !text.contains("0123456789"),
            "part of the key leaked: {text}"
        );
    }
    assert_eq!(
        error.to_string(),
        "runblob create: 401 Unauthorized: Invalid API key"
    );
}

#[test]
fn a_missing_key_names_the_variable_and_the_default_url_is_runblobs() {
    // The variables are read only by from_env; the builder alone never looks at them.
    let error = Client::builder().build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "runblob: no API key: set RUNBLOB_API_KEY or call .api_key(...)"
    );
    let client = Client::builder().api_key(KEY).build().unwrap();
    assert_eq!(
        client.transport().base_url().as_str(),
        "https://platform.runblob.io/"
    );
}

#[test]
fn the_client_is_cheap_to_clone_and_shared_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    fn assert_sendable<T: Send + Sync + 'static>() {}
    assert_shareable::<Client>();
    assert_sendable::<Error>();
}

#[tokio::test]
async fn downloads_send_no_key_and_refuse_plain_http_from_an_https_api() {
    let mut server = Server::new_async().await;
    let png = server
        .mock("GET", "/chatgpt-images/a.png")
        .match_header("authorization", Matcher::Missing)
        .with_header("content-type", "image/png")
        .with_body(PNG)
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let downloaded = client
        .download(&format!("{}/chatgpt-images/a.png", server.url()))
        .await
        .unwrap();
    png.assert_async().await;
    assert_eq!(&downloaded.bytes[..], PNG);

    let https_api = Client::builder()
        .api_key(KEY)
        .base_url("https://platform.runblob.io")
        .build()
        .unwrap();
    let error = https_api
        .download("http://cdn.example/a.png")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
}
