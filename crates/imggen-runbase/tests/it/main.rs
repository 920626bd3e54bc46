//! The runbase client against mockito: the exact request of every call, every documented answer
//! and error, and what happens when the network or the server misbehaves.

mod failures;

use std::time::Duration;

use imggen_http::testing::Bodies;
use imggen_http::time::ManualTime;
use imggen_runbase::{
    AspectRatio, Client, CreateRunRequest, Error, ErrorCode, GPT_IMAGE_1, GPT_IMAGE_1_5,
    GPT_IMAGE_2, GptImage1Input, GptImage2Input, GptImage15Input, MicroUsd, Model, ModelInput,
    Quality, RATE_LIMIT, Resolution, RetryPolicy, Run, RunId, RunStatus, Usd, advice,
};
use mockito::{Matcher, Server, ServerGuard};
use serde_json::{Value, json};

const KEY: &str = "sk-runbase-test-0123456789";
const RUN: &str = "run_2abcDEF345ghi";
const RUNS: &str = "/api/v1/runs";
const USER_AGENT: &str = r"^imggen/\S+ imggen-runbase/\S+$";

fn fixture(name: &str) -> String {
    imggen_http::testing::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn run_path(id: &str) -> String {
    format!("{RUNS}/{id}")
}

/// A fresh client per test (a shared reqwest client could reuse a stale connection to a
/// recycled port), with time that never really passes.
fn client(server: &ServerGuard, time: &ManualTime) -> Client {
    builder(&server.url(), time).build().unwrap()
}

fn builder(url: &str, time: &ManualTime) -> imggen_http::ClientBuilder<Client> {
    imggen_http::testing::builder(KEY, url, time)
}

fn api(error: Error) -> Box<imggen_http::ApiError<imggen_runbase::ErrorBody>> {
    match error {
        Error::Api(api) => api,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A create as the server sees it: one `POST /api/v1/runs` with every documented header,
/// answered with the documented create answer. Returns the JSON body sent and the run read.
async fn sent_create<F, Fut>(call: F) -> (Value, Run)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<Run, Error>>,
{
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let mock = server
        .mock("POST", RUNS)
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_header("content-type", "application/json")
        .match_header("user-agent", Matcher::Regex(USER_AGENT.into()))
        .match_request(bodies.recorder())
        .with_status(201)
        .with_body(fixture("Run.pending.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let run = call(client(&server, &time)).await.unwrap();
    mock.assert_async().await;
    assert!(time.sleeps().is_empty(), "a create must not wait or retry");
    (bodies.only(), run)
}

#[tokio::test]
async fn create_sends_exactly_the_documented_request_for_each_openai_model() {
    let input = GptImage1Input::new("Place this lamp on a walnut desk, soft morning light")
        .aspect_ratio(AspectRatio::Landscape3x2)
        .image_url("https://example.com/lamp-front.png")
        .image_url("https://example.com/lamp-side.png");
    let (body, run) = sent_create(|client| async move { client.create(&input).await }).await;
    insta::assert_json_snapshot!("create_body_gpt_image_1", body);
    assert_eq!(run.id, RunId::new(RUN));
    assert_eq!(run.status, RunStatus::Pending);

    let input = GptImage15Input::new("A poster that reads \"OPEN LATE\" in neon script")
        .aspect_ratio(AspectRatio::Portrait2x3)
        .quality(Quality::High)
        .image_url("https://example.com/storefront.jpg");
    let (body, _) = sent_create(|client| async move { client.create(&input).await }).await;
    insta::assert_json_snapshot!("create_body_gpt_image_1_5", body);

    let input = GptImage2Input::new("A lighthouse on a cliff at dusk, wide establishing shot")
        .aspect_ratio(AspectRatio::Landscape16x9)
        .resolution(Resolution::FourK)
        .image_url("https://example.com/coastline.webp");
    let (body, _) = sent_create(|client| async move { client.create(&input).await }).await;
    insta::assert_json_snapshot!("create_body_gpt_image_2", body);
}

#[tokio::test]
async fn a_minimal_typed_input_sends_only_the_prompt() {
    let input = GptImage1Input::new("A cinematic product photo of a ceramic lamp");
    let (body, _) = sent_create(|client| async move { client.create(&input).await }).await;
    // The seed page's own curl body, byte for byte in meaning.
    assert_eq!(body, fixture_json("CreateRunRequest.gpt_image_1.json"));
}

#[tokio::test]
async fn raw_json_reaches_any_model_as_given() {
    let input = json!({
        "prompt": "A cozy bookshop interior with warm lighting, watercolor style",
        "aspect_ratio": "1:1"
    });
    let (body, run) = sent_create(|client| async move {
        client
            .create_raw(&CreateRunRequest::new(
                Model::from_wire("google/nano-banana-2"),
                input,
            ))
            .await
    })
    .await;
    insta::assert_json_snapshot!("create_body_nano_banana_2", body);
    assert_eq!(body, fixture_json("CreateRunRequest.nano_banana_2.json"));
    assert_eq!(run.status, RunStatus::Pending);
}

#[tokio::test]
async fn request_fixtures_parse_validate_and_are_sent_unchanged() {
    for (name, model) in [
        ("GptImage1Input.references.json", Model::GptImage1),
        ("GptImage15Input.quality.json", Model::GptImage1_5),
        ("GptImage2Input.resolution.json", Model::GptImage2),
    ] {
        let wire = fixture_json(name);
        let expected = json!({"model": model.as_str(), "input": wire.clone()});
        let (body, _) = match model {
            Model::GptImage1 => {
                let input: GptImage1Input = serde_json::from_value(wire).unwrap();
                input.validate().unwrap();
                sent_create(|client| async move { client.create(&input).await }).await
            }
            Model::GptImage1_5 => {
                let input: GptImage15Input = serde_json::from_value(wire).unwrap();
                input.validate().unwrap();
                sent_create(|client| async move { client.create(&input).await }).await
            }
            _ => {
                let input: GptImage2Input = serde_json::from_value(wire).unwrap();
                input.validate().unwrap();
                sent_create(|client| async move { client.create(&input).await }).await
            }
        };
        assert_eq!(body, expected, "{name}");
    }
    for name in [
        "CreateRunRequest.gpt_image_1.json",
        "CreateRunRequest.gpt_image_1_5.json",
        "CreateRunRequest.nano_banana_2.json",
    ] {
        let request: CreateRunRequest = serde_json::from_str(&fixture(name)).unwrap();
        let (body, _) =
            sent_create(|client| async move { client.create_raw(&request).await }).await;
        assert_eq!(body, fixture_json(name), "{name}");
    }
}

#[tokio::test]
async fn a_create_answered_with_any_success_status_is_a_run() {
    // The docs do not say whether a create answers 200 or 201.
    for status in [200, 201, 202] {
        let mut server = Server::new_async().await;
        let mock = server
            .mock("POST", RUNS)
            .with_status(status)
            .with_body(fixture("Run.pending.json"))
            .expect(1)
            .create_async()
            .await;
        let time = ManualTime::new();
        let run = client(&server, &time)
            .create(&GptImage2Input::new("x"))
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
        mock.assert_async().await;
        assert_eq!(run.id, RunId::new(RUN), "{status}");
        assert_eq!(run.cost_usd, Some(MicroUsd(120_000)), "{status}");
    }
}

#[tokio::test]
async fn run_reads_every_state() {
    let mut server = Server::new_async().await;
    let time = ManualTime::new();
    let client = client(&server, &time);

    for (fixture_name, id, status) in [
        ("Run.pending.json", RUN, RunStatus::Pending),
        ("Run.processing.json", RUN, RunStatus::Processing),
        ("Run.succeeded.json", RUN, RunStatus::Succeeded),
        ("Run.failed.json", RUN, RunStatus::Failed),
        (
            "Run.nano_banana_2.json",
            "run_2abc7nb2",
            RunStatus::Succeeded,
        ),
    ] {
        let mock = server
            .mock("GET", run_path(id).as_str())
            .match_header("authorization", format!("Bearer {KEY}").as_str())
            .match_header("user-agent", Matcher::Regex(USER_AGENT.into()))
            .match_header("content-type", Matcher::Missing)
            .match_body("")
            .with_body(fixture(fixture_name))
            .expect(1)
            .create_async()
            .await;
        let run = client.status(&RunId::new(id)).await.unwrap();
        mock.assert_async().await;
        mock.remove_async().await;
        assert_eq!(run.id.as_str(), id, "{fixture_name}");
        assert_eq!(run.status, status, "{fixture_name}");
        insta::assert_debug_snapshot!(fixture_name, run);
    }
}

#[tokio::test]
async fn output_urls_and_failure_reasons_read_from_the_run() {
    let succeeded: Run = serde_json::from_str(&fixture("Run.succeeded.json")).unwrap();
    assert!(succeeded.status.is_terminal());
    assert_eq!(
        succeeded.output_urls(),
        ["https://runbase.net/files/generated/2abcDEF345ghi-0.png"]
    );
    let processing: Run = serde_json::from_str(&fixture("Run.processing.json")).unwrap();
    assert!(!processing.status.is_terminal());
    assert!(processing.output_urls().is_empty());
    let failed: Run = serde_json::from_str(&fixture("Run.failed.json")).unwrap();
    assert!(failed.status.is_terminal());
    assert!(failed.output_urls().is_empty());
    assert_eq!(
        failed.error_message().as_deref(),
        Some("Generation failed: the request was rejected by the safety system")
    );
}

#[tokio::test]
async fn cost_is_exact_micro_usd_and_matches_the_documented_price() {
    let run: Run = serde_json::from_str(&fixture("Run.nano_banana_2.json")).unwrap();
    let cost = run.cost_usd.unwrap();
    assert_eq!(cost, MicroUsd(40_000));
    assert_eq!(cost.to_usd(), "0.04".parse::<Usd>().unwrap());
    assert_eq!(cost.to_usd().to_string(), "$0.04");

    // What a typed input is documented to cost is what the model spec says, and what the
    // server charged for that input.
    let input = GptImage2Input::new("x").resolution(Resolution::FourK);
    let charged: Run = serde_json::from_str(&fixture("Run.succeeded.json")).unwrap();
    assert_eq!(
        input.price(),
        GPT_IMAGE_2.price(None, Some(&Resolution::FourK))
    );
    assert_eq!(input.price(), charged.cost_usd);
    assert_eq!(input.price().unwrap().to_usd().to_string(), "$0.12");
    assert_eq!(
        CreateRunRequest::from_input(&input).price(),
        input.price(),
        "raw and typed prices agree"
    );

    let high = GptImage15Input::new("x").quality(Quality::High);
    assert_eq!(
        high.price(),
        GPT_IMAGE_1_5.price(Some(&Quality::High), None)
    );
    assert_eq!(high.price().unwrap().to_usd().to_string(), "$0.16");
    assert_eq!(
        GptImage1Input::new("x").price(),
        GPT_IMAGE_1.price(None, None)
    );
    assert_eq!(
        GptImage1Input::new("x")
            .price()
            .unwrap()
            .to_usd()
            .to_string(),
        "$0.05"
    );
    // A model imggen does not know has no documented price: the run's costUsd is the truth.
    assert_eq!(
        CreateRunRequest::new(
            Model::from_wire("google/nano-banana-2"),
            json!({"prompt": "x"})
        )
        .price(),
        None
    );
}

#[tokio::test]
async fn every_documented_error_becomes_a_typed_api_error() {
    struct Case {
        status: usize,
        fixture: &'static str,
        code: Option<ErrorCode>,
        create: bool,
        retryable: bool,
        charged: bool,
    }
    let case = |status, fixture, code: Option<ErrorCode>| Case {
        status,
        fixture,
        code,
        create: true,
        retryable: false,
        charged: false,
    };
    let cases = [
        case(400, "invalid_json", Some(ErrorCode::InvalidJson)),
        case(400, "missing_model", Some(ErrorCode::MissingModel)),
        case(400, "missing_input", Some(ErrorCode::MissingInput)),
        case(400, "invalid_input", Some(ErrorCode::InvalidInput)),
        case(400, "model_not_found", Some(ErrorCode::ModelNotFound)),
        case(401, "missing_api_key", Some(ErrorCode::MissingApiKey)),
        case(401, "invalid_api_key", Some(ErrorCode::InvalidApiKey)),
        case(
            402,
            "insufficient_balance",
            Some(ErrorCode::InsufficientBalance),
        ),
        case(
            403,
            "api_key_spend_limit_exceeded",
            Some(ErrorCode::ApiKeySpendLimitExceeded),
        ),
        case(403, "ip_not_allowed", Some(ErrorCode::IpNotAllowed)),
        Case {
            create: false,
            ..case(404, "run_not_found", Some(ErrorCode::RunNotFound))
        },
        // Nothing was charged, and waiting helps: the layer above may send it again later.
        Case {
            retryable: true,
            ..case(429, "RATE_LIMITED", Some(ErrorCode::RateLimited))
        },
        // A quota does not come back in seconds.
        case(429, "USAGE_EXCEEDED", Some(ErrorCode::UsageExceeded)),
        // Undocumented: nothing proves the run was not created.
        Case {
            charged: true,
            ..case(500, "internal_error", None)
        },
    ];
    for case in cases {
        let mut server = Server::new_async().await;
        let name = format!("ErrorBody.{}.json", case.fixture);
        let body = fixture(&name);
        let (method, path) = if case.create {
            ("POST", RUNS.to_owned())
        } else {
            ("GET", run_path(RUN))
        };
        let mock = server
            .mock(method, path.as_str())
            .with_status(case.status)
            .with_body(&body)
            .expect(1)
            .create_async()
            .await;
        let time = ManualTime::new();
        let client = client(&server, &time);
        let error = if case.create {
            client.create(&GptImage1Input::new("x")).await.unwrap_err()
        } else {
            client.status(&RunId::new(RUN)).await.unwrap_err()
        };
        mock.assert_async().await;
        assert!(time.sleeps().is_empty(), "{name}: not retried");
        assert_eq!(error.status(), Some(case.status as u16), "{name}");
        assert_eq!(error.code(), case.code, "{name}");
        assert_eq!(error.raw_body(), Some(body.as_bytes()), "{name}");
        assert_eq!(error.is_retryable(), case.retryable, "{name}");
        assert_eq!(
            error.may_have_been_charged(),
            case.charged,
            "{name}: {error}"
        );
        let context = error.context().unwrap();
        assert_eq!(context.provider, "runbase");
        let wire: imggen_runbase::ErrorBody = serde_json::from_str(&body).unwrap();
        let message = error.to_string();
        assert!(message.contains(&wire.error.message), "{message}");
        assert_eq!(api(error).message(), Some(wire.error.message), "{name}");
        // Every documented code says what to do; the undocumented 500 has no code to advise on.
        let hint = case.code.as_ref().and_then(advice);
        assert_eq!(hint.is_some(), case.code.is_some(), "{name}");
        insta::assert_snapshot!(
            format!("error_{}", case.fixture),
            format!("{message}\nadvice: {}", hint.unwrap_or("-"))
        );
    }
}

#[tokio::test]
async fn an_error_body_that_is_not_json_is_kept_raw() {
    let mut server = Server::new_async().await;
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let mock = server
        .mock("POST", RUNS)
        .with_status(502)
        .with_body(html)
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GptImage1Input::new("x"))
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert_eq!(error.raw_body(), Some(html.as_bytes()));
    assert_eq!(error.code(), None);
    // A gateway error proves nothing about the run behind it.
    assert!(error.may_have_been_charged());
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "runbase create: 502 Bad Gateway: <html><body><h1>502 Bad Gateway</h1></body></html>; \
         the task may have been created and charged: check before submitting it again"
    );
}

#[tokio::test]
async fn unknown_values_and_fields_from_a_newer_api_still_parse() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("GET", run_path(RUN).as_str())
        .with_body(
            json!({
                "id": RUN,
                "model": "bytedance/seedance-2",
                "status": "queued",
                "costUsd": 250000,
                "priority": "high",
                "output": {"urls": [], "thumbnails": ["https://runbase.net/t.png"]},
                "createdAt": "2026-06-01T12:00:00.000Z",
                "progress": {"percent": 12}
            })
            .to_string(),
        )
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let run = client(&server, &time)
        .status(&RunId::new(RUN))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(run.model, Model::Other("bytedance/seedance-2".into()));
    assert_eq!(run.status, RunStatus::Other("queued".into()));
    assert!(!run.status.is_terminal(), "an unknown status is not an end");
    assert_eq!(run.cost_usd.unwrap().to_usd().to_string(), "$0.25");

    let error: imggen_runbase::ErrorBody = serde_json::from_str(
        r#"{"error":{"message":"Slow down","code":"CONCURRENCY_LIMITED","retryIn":3}}"#,
    )
    .unwrap();
    assert_eq!(
        error.error.code,
        Some(ErrorCode::Other("CONCURRENCY_LIMITED".into()))
    );
}

#[tokio::test]
async fn a_malformed_success_body_is_a_decode_error_that_keeps_the_body() {
    for (body, label) in [
        ("<html>upstream hiccup</html>", "not JSON"),
        (r#"{"status":"pending","costUsd":50000}"#, "no id"),
    ] {
        let mut server = Server::new_async().await;
        let mock = server
            .mock("POST", RUNS)
            .with_status(200)
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
        let time = ManualTime::new();
        let error = client(&server, &time)
            .create(&GptImage1Input::new("x"))
            .await
            .unwrap_err();
        mock.assert_async().await;
        assert!(matches!(error, Error::Decode(_)), "{label}: {error:?}");
        assert_eq!(error.raw_body(), Some(body.as_bytes()), "{label}");
        // A 2xx to a create means the run exists, even if its id could not be read.
        assert!(error.may_have_been_charged(), "{label}");
        assert!(!error.is_retryable(), "{label}");
        assert!(error.to_string().contains("charged"), "{label}: {error}");
    }

    let mut server = Server::new_async().await;
    let mock = server
        .mock("GET", run_path(RUN).as_str())
        .with_body("<html>upstream hiccup</html>")
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .status(&RunId::new(RUN))
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert!(matches!(error, Error::Decode(_)), "{error:?}");
    assert!(
        !error.may_have_been_charged(),
        "a status call charges nothing"
    );
    assert_eq!(
        error.to_string(),
        "runbase status: the 200 answer is not the documented JSON"
    );
}
