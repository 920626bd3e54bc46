//! When the network, the server or the caller misbehaves: rate limits, lost answers, oversized
//! bodies, invalid requests, keys and variables, downloads.

use super::*;

#[tokio::test]
async fn a_rate_limited_status_call_is_retried_after_the_delay_asked() {
    let mut server = Server::new_async().await;
    let path = run_path(RUN);
    let limited = server
        .mock("GET", path.as_str())
        .with_status(429)
        .with_header("retry-after", "3")
        .with_body(fixture("ErrorBody.RATE_LIMITED.json"))
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("GET", path.as_str())
        .with_body(fixture("Run.succeeded.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let run = client(&server, &time)
        .status(&RunId::new(RUN))
        .await
        .unwrap();
    limited.assert_async().await;
    ok.assert_async().await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(time.sleeps(), [Duration::from_secs(3)]);
}

#[tokio::test]
async fn a_rate_limited_status_call_without_retry_after_backs_off() {
    // runbase documents no Retry-After: the client falls back to jittered exponential backoff.
    let mut server = Server::new_async().await;
    let path = run_path(RUN);
    let limited = server
        .mock("GET", path.as_str())
        .with_status(429)
        .with_body(fixture("ErrorBody.RATE_LIMITED.json"))
        .expect(2)
        .create_async()
        .await;
    let ok = server
        .mock("GET", path.as_str())
        .with_body(fixture("Run.processing.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let run = client(&server, &time)
        .status(&RunId::new(RUN))
        .await
        .unwrap();
    limited.assert_async().await;
    ok.assert_async().await;
    assert_eq!(run.status, RunStatus::Processing);
    let sleeps = time.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    let policy = RetryPolicy::standard();
    for (attempt, slept) in (1..).zip(&sleeps) {
        let window = policy.backoff(attempt, 0.0)..=policy.backoff(attempt, 1.0);
        assert!(
            window.contains(slept),
            "attempt {attempt}: {slept:?} not in {window:?}"
        );
    }
}

#[tokio::test]
async fn an_exhausted_quota_is_not_retried() {
    let mut server = Server::new_async().await;
    let exhausted = server
        .mock("GET", run_path(RUN).as_str())
        .with_status(429)
        .with_body(fixture("ErrorBody.USAGE_EXCEEDED.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .status(&RunId::new(RUN))
        .await
        .unwrap_err();
    exhausted.assert_async().await;
    assert!(time.sleeps().is_empty());
    assert_eq!(error.code(), Some(ErrorCode::UsageExceeded));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_rate_limited_create_is_not_retried_by_the_client() {
    let mut server = Server::new_async().await;
    let limited = server
        .mock("POST", RUNS)
        .with_status(429)
        .with_header("retry-after", "3")
        .with_body(fixture("ErrorBody.RATE_LIMITED.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let error = client(&server, &time)
        .create(&GptImage2Input::new("x"))
        .await
        .unwrap_err();
    limited.assert_async().await;
    assert!(time.sleeps().is_empty());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    // Nothing was charged, so the layer above may send it again after the delay.
    assert!(error.is_retryable());
    assert!(!error.may_have_been_charged());
    assert_eq!(
        error.to_string(),
        "runbase create: 429 RATE_LIMITED: Rate limit exceeded; retry after 3s"
    );
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_sent_once_and_reported_as_maybe_charged() {
    let server = imggen_http::testing::DropAfterRequest::start()
        .await
        .unwrap();
    let time = ManualTime::new();
    let client = builder(&server.url, &time).build().unwrap();
    let error = client.create(&GptImage2Input::new("x")).await.unwrap_err();
    assert_eq!(server.requests(), 1);
    assert!(error.may_have_been_charged(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(
        error
            .to_string()
            .starts_with("runbase create: the connection failed after the request was sent"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("the task may have been created and charged"),
        "{error}"
    );
    assert!(time.sleeps().is_empty());
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused() {
    let mut server = Server::new_async().await;
    let big = "x".repeat(64 * 1024);
    let status = server
        .mock("GET", run_path(RUN).as_str())
        .with_body(&big)
        .expect(1)
        .create_async()
        .await;
    let create = server
        .mock("POST", RUNS)
        .with_body(&big)
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = builder(&server.url(), &time)
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();

    let error = client.status(&RunId::new(RUN)).await.unwrap_err();
    assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "runbase status: the 200 answer is larger than the 16384-byte cap"
    );
    assert!(!error.may_have_been_charged());

    let error = client.create(&GptImage2Input::new("x")).await.unwrap_err();
    assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    // A 200 to a create whose body was refused: the run exists and was charged.
    assert!(error.may_have_been_charged(), "{error}");
    status.assert_async().await;
    create.assert_async().await;
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let mut server = Server::new_async().await;
    let never_created = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let never_read = server
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let urls = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("https://example.com/ref-{i}.png"))
            .collect()
    };
    let with_urls = |mut input: GptImage1Input, n| {
        for url in urls(n) {
            input = input.image_url(url);
        }
        input
    };

    let typed: Vec<(Result<Run, Error>, &str)> = vec![
        (
            client
                .create(&GptImage1Input::new("x").aspect_ratio(AspectRatio::Landscape16x9))
                .await,
            "input.aspect_ratio: \"16:9\" is not accepted by openai/gpt-image-1; allowed: 1:1, 3:2, 2:3",
        ),
        (
            client
                .create(&GptImage15Input::new("x").aspect_ratio(AspectRatio::Landscape4x3))
                .await,
            "input.aspect_ratio: \"4:3\" is not accepted by openai/gpt-image-1.5; allowed: 1:1, 3:2, 2:3",
        ),
        (
            client
                .create(&GptImage2Input::new("x").aspect_ratio(AspectRatio::Portrait9x21))
                .await,
            "input.aspect_ratio: \"9:21\" is not accepted by openai/gpt-image-2; allowed: 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9",
        ),
        (
            client.create(&with_urls(GptImage1Input::new("x"), 6)).await,
            "input.image_urls: has 6 URLs; the maximum is 5",
        ),
        (
            client
                .create(
                    &urls(5)
                        .into_iter()
                        .fold(GptImage2Input::new("x"), GptImage2Input::image_url),
                )
                .await,
            "input.image_urls: has 5 URLs; the maximum is 4",
        ),
        (
            client
                .create(
                    &urls(5)
                        .into_iter()
                        .fold(GptImage15Input::new("x"), GptImage15Input::image_url),
                )
                .await,
            "input.image_urls: has 5 URLs; the maximum is 4",
        ),
        (
            client.create(&GptImage2Input::new("a".repeat(4001))).await,
            "input.prompt: is 4001 characters long; the maximum is 4000",
        ),
        (
            client.create(&GptImage2Input::new(" \n")).await,
            "input.prompt: must not be empty or only whitespace",
        ),
        (
            client
                .create(&GptImage1Input::new("x").image_url("data:image/png;base64,iVBORw0KGgo="))
                .await,
            "input.image_urls[0]: \"data:image/png;base64,iVBORw0KGgo=\" has scheme \"data\"; allowed: an http:// or https:// URL",
        ),
    ];
    let raw: Vec<(Result<Run, Error>, &str)> = vec![
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage1,
                    json!("A ceramic lamp"),
                ))
                .await,
            "input: must be a JSON object, e.g. {\"prompt\": \"...\"}",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::from_wire("google/nano-banana-2"),
                    json!(["A ceramic lamp"]),
                ))
                .await,
            "input: must be a JSON object, e.g. {\"prompt\": \"...\"}",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage1,
                    json!({"prompt": "x", "aspect_ratio": "16:9"}),
                ))
                .await,
            "input.aspect_ratio: \"16:9\" is not accepted by openai/gpt-image-1; allowed: 1:1, 3:2, 2:3",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage1,
                    json!({"prompt": "x", "image_urls": urls(6)}),
                ))
                .await,
            "input.image_urls: has 6 URLs; the maximum is 5",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage2,
                    json!({"aspect_ratio": "16:9"}),
                ))
                .await,
            "input: missing field `prompt`",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage2,
                    json!({"prompt": "x", "resolution": 8}),
                ))
                .await,
            "input: invalid type: integer `8`, expected a string",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::GptImage2,
                    json!({"prompt": "x", "resolution": "8K"}),
                ))
                .await,
            "input.resolution: \"8K\" is not a documented value; to send it on purpose, use the typed input with `Other`",
        ),
        (
            client
                .create_raw(&CreateRunRequest::new(
                    Model::Other(" ".into()),
                    json!({"prompt": "x"}),
                ))
                .await,
            "model: must not be empty",
        ),
    ];
    for (result, message) in typed.into_iter().chain(raw) {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("runbase create: invalid request, nothing was sent: {message}")
        );
        assert!(!error.may_have_been_charged());
        assert!(!error.is_retryable());
    }

    let error = client.status(&RunId::new("../admin")).await.unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "runbase status: invalid request, nothing was sent: id: \"../admin\" contains '/'; a task id holds only letters, digits and - _ . ~ :"
    );

    // User input (a command line, a config file) is parsed strictly: a typo never becomes a
    // request.
    let error = "8K".parse::<Resolution>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "runbase resolution: \"8K\" is not a known value; known values: 1K, 2K, 4K"
    );
    assert!("ultra".parse::<Quality>().is_err());

    never_created.assert_async().await;
    never_read.assert_async().await;
}

#[tokio::test]
async fn other_values_are_sent_deliberately_and_unchecked() {
    // A resolution imggen does not know yet, written as `Other` on purpose, is sent as is.
    let input = GptImage2Input::new("x").resolution(Resolution::Other("8K".into()));
    let (body, _) = sent_create(|client| async move { client.create(&input).await }).await;
    assert_eq!(
        body,
        json!({"model": "openai/gpt-image-2", "input": {"prompt": "x", "resolution": "8K"}})
    );

    let input = GptImage1Input::new("x").aspect_ratio(AspectRatio::Other("7:5".into()));
    let (body, _) = sent_create(|client| async move { client.create(&input).await }).await;
    assert_eq!(body["input"]["aspect_ratio"], "7:5");

    // Raw JSON is the caller's own words: a field imggen's schema of the model does not name
    // is sent, and runbase's own check (400 invalid_input, not charged) answers it.
    let raw = json!({"prompt": "x", "quality": "high", "resolution": "2K"});
    let sent = raw.clone();
    let (body, _) = sent_create(|client| async move {
        client
            .create_raw(&CreateRunRequest::new(Model::GptImage2, sent))
            .await
    })
    .await;
    assert_eq!(body, json!({"model": "openai/gpt-image-2", "input": raw}));
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("GET", format!("/proxy/runbase{}", run_path(RUN)).as_str())
        .with_body(fixture("Run.processing.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = builder(&format!("{}/proxy/runbase/", server.url()), &time)
        .build()
        .unwrap();
    let run = client.status(&RunId::new(RUN)).await.unwrap();
    mock.assert_async().await;
    assert_eq!(run.status, RunStatus::Processing);
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_errors() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", RUNS)
        .with_status(401)
        .with_body(fixture("ErrorBody.invalid_api_key.json"))
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let api_error = client.create(&GptImage1Input::new("x")).await.unwrap_err();
    mock.assert_async().await;
    let invalid = client.create(&GptImage1Input::new("")).await.unwrap_err();
    let dropped = imggen_http::testing::DropAfterRequest::start()
        .await
        .unwrap();
    let lost = builder(&dropped.url, &time)
        .build()
        .unwrap()
        .create(&GptImage1Input::new("x"))
        .await
        .unwrap_err();
    for text in [
        format!("{client:?}"),
        format!("{:?}", client.transport()),
        format!("{:?}", Client::builder().api_key(KEY)),
        format!("{api_error}"),
        format!("{api_error:?}"),
        format!("{invalid}"),
        format!("{invalid:?}"),
        format!("{lost}"),
        format!("{lost:?}"),
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
    let error = Client::builder().build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "runbase: no API key: set RUNBASE_API_KEY or call .api_key(...)"
    );
}

/// `from_env` reads the process environment, which a test may not change in place (another
/// test thread could read it): the test runs itself again as a child process with the
/// variables set.
#[test]
fn from_env_reads_runbase_api_key_and_runbase_base_url() {
    const CHILD: &str = "IMGGEN_RUNBASE_FROM_ENV_CHILD";
    const NAME: &str = "failures::from_env_reads_runbase_api_key_and_runbase_base_url";
    match std::env::var(CHILD).as_deref() {
        Ok("set") => {
            let client = Client::from_env().unwrap();
            assert_eq!(
                client.transport().base_url().as_str(),
                "http://127.0.0.1:9/proxy"
            );
            assert!(!format!("{client:?}").contains(KEY));
            return;
        }
        Ok("unset") => {
            let client = Client::from_env().unwrap();
            assert_eq!(
                client.transport().base_url().as_str(),
                "https://runbase.net/"
            );
            return;
        }
        Ok("missing") => {
            let error = Client::from_env().unwrap_err();
            assert_eq!(
                error.to_string(),
                "runbase: no API key: set RUNBASE_API_KEY or call .api_key(...)"
            );
            return;
        }
        _ => {}
    }
    let exe = std::env::current_exe().unwrap();
    let child = |mode: &str| {
        let mut command = std::process::Command::new(&exe);
        command
            .args([NAME, "--exact", "--test-threads=1"])
            .env(CHILD, mode)
            .env_remove("RUNBASE_API_KEY")
            .env_remove("RUNBASE_BASE_URL");
        command
    };
    for (mode, key, url) in [
        ("set", Some(KEY), Some("http://127.0.0.1:9/proxy")),
        ("unset", Some(KEY), None),
        ("missing", None, None),
    ] {
        let mut command = child(mode);
        if let Some(key) = key {
            command.env("RUNBASE_API_KEY", key);
        }
        if let Some(url) = url {
            command.env("RUNBASE_BASE_URL", url);
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{mode}: {stdout}");
        // The filter must have matched this test, or the child proved nothing.
        assert!(stdout.contains("1 passed"), "{mode}: {stdout}");
    }
}

#[tokio::test]
async fn downloads_send_no_key_and_refuse_plain_http_from_an_https_api() {
    let mut server = Server::new_async().await;
    let png = server
        .mock("GET", "/files/generated/abc123.png")
        .match_header("authorization", Matcher::Missing)
        .with_header("content-type", "image/png")
        .with_body([0x89, b'P', b'N', b'G'])
        .expect(1)
        .create_async()
        .await;
    let time = ManualTime::new();
    let client = client(&server, &time);
    let downloaded = client
        .download(&format!("{}/files/generated/abc123.png", server.url()))
        .await
        .unwrap();
    png.assert_async().await;
    assert_eq!(&downloaded.bytes[..], [0x89, b'P', b'N', b'G']);
    assert_eq!(downloaded.content_type.as_deref(), Some("image/png"));

    let https_api = Client::builder()
        .api_key(KEY)
        .base_url("https://runbase.net")
        .build()
        .unwrap();
    let error = https_api
        .download("http://cdn.example/a.png")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
}

#[test]
fn the_documented_rate_limit_is_exposed() {
    // 20 requests per 10 s per key, creates and polls together: what a scheduler must obey.
    assert_eq!(RATE_LIMIT, (20, Duration::from_secs(10)));
}
