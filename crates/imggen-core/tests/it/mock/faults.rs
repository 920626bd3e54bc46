//! What the mock's faults do to a run: 429 storms, lost creates, deadlines, trickling and
//! oversized downloads, refunded errors, webhooks and the traces of it all.

use super::*;

#[tokio::test]
async fn a_429_storm_on_status_is_waited_out() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 429,
                body: None,
                headers: BTreeMap::from([("Retry-After".to_owned(), "3".to_owned())]),
            })
            .provider(MockProvider::Runbase)
            .operation(Operation::Status)
            .times(8),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let start = time.now();

    let generation = imggen
        .generate(&GenerationRequest::new("A lamp"), &on(crate::RUNBASE))
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(counts[&crate::RUNBASE].rate_limited(), 8);
    assert!(
        time.now() - start >= 3 * S + 8 * 3 * S,
        "every Retry-After was obeyed"
    );
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_runbase_jobs_on_one_key_get_no_429() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let jobs: Vec<_> = (0..50)
        .map(|i| {
            let imggen = imggen.clone();
            tokio::spawn(async move {
                imggen
                    .generate(
                        &GenerationRequest::new(format!("lamp {i}")),
                        &on(crate::RUNBASE),
                    )
                    .await
            })
        })
        .collect();
    for job in jobs {
        let generation = job.await.unwrap().unwrap();
        assert_eq!(generation.images.len(), 1);
    }

    let runbase = &counts[&crate::RUNBASE];
    assert_eq!(runbase.rate_limited(), 0, "the mock answered 429");
    assert_eq!(runbase.creates(), 50);
    assert!(runbase.statuses() >= 50);
    assert_eq!(charges(&server, MockProvider::Runbase), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_storm_of_429s_the_budget_grows_back_and_the_run_finishes_without_new_ones() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    // A storm: the next twelve runbase status calls are answered 429, enough to tighten the
    // key's budget to one request per window. Each asks for a 1 s pause, so how the 429s fall
    // (together or one by one) changes the budget, not how long the key is paused. (Status
    // calls only: a create answered 429 four times is refused — rightly — and which create
    // the storm hits depends on the order the jobs run in.)
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 429,
                body: None,
                headers: BTreeMap::from([("Retry-After".to_owned(), "1".to_owned())]),
            })
            .provider(MockProvider::Runbase)
            .operation(Operation::Status)
            .times(12),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let start = time.now();

    // 80 jobs need at least 160 requests: at one per window that is over 27 minutes, far past
    // each wait's default 10-minute deadline. Grown back to 20 per 10 s, a few minutes.
    let jobs: Vec<_> = (0..80)
        .map(|i| {
            let imggen = imggen.clone();
            tokio::spawn(async move {
                imggen
                    .generate(
                        &GenerationRequest::new(format!("lamp {i}")),
                        &on(crate::RUNBASE),
                    )
                    .await
            })
        })
        .collect();
    for job in jobs {
        let generation = job.await.unwrap().unwrap();
        assert_eq!(generation.images.len(), 1);
    }

    let runbase = &counts[&crate::RUNBASE];
    assert_eq!(
        runbase.rate_limited(),
        12,
        "only the storm's 429s, none earned after it"
    );
    assert_eq!(charges(&server, MockProvider::Runbase), 80);
    assert!(
        time.now() - start < 10 * 60 * S,
        "the run took {:?}",
        time.now() - start
    );
}

#[tokio::test]
async fn a_dropped_create_is_reported_and_never_resubmitted() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(MockProvider::Runbase)
                .operation(Operation::Create)
                .times(1),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp whose answer is lost"),
            &GenerateOptions::default()
                .submit(SubmitOptions::fallback([crate::RUNBASE, crate::GPTIMG])),
        )
        .await
        .unwrap_err();

    let Error::CreateOutcomeUnknown(unknown) = &error else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert!(unknown.call.may_have_been_charged);
    assert!(
        error
            .advice()
            .is_some_and(|advice| advice.contains("do not resubmit"))
    );
    assert!(
        error
            .to_string()
            .contains("check before submitting it again"),
        "{error}"
    );
    assert_eq!(counts[&crate::RUNBASE].creates(), 1);
    assert_eq!(counts[&crate::GPTIMG].creates(), 0);
    // The mock charged for the task whose answer was lost — exactly once.
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
    assert_eq!(server.ledger().len(), 1);
}

#[tokio::test]
async fn the_deadline_ends_a_create_that_never_answers_as_an_unknown_outcome_sent_once() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Latency { ms: 3_600_000 })
                .provider(MockProvider::Runbase)
                .operation(Operation::Create),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    // A guard against a hang, not a measurement: the create ends by its 300 ms deadline.
    let error = tokio::time::timeout(
        30 * S,
        imggen.generate(
            &GenerationRequest::new("A lamp"),
            &on(crate::RUNBASE).deadline(Duration::from_millis(300)),
        ),
    )
    .await
    .expect("the deadline ended the create")
    .unwrap_err();
    let Error::CreateOutcomeUnknown(unknown) = &error else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert!(unknown.call.may_have_been_charged, "{error}");
    assert!(error.to_string().contains("before the deadline"), "{error}");
    assert_eq!(counts[&crate::RUNBASE].creates(), 1, "never resent");
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test]
async fn the_deadline_ends_a_trickling_download_and_keeps_the_handle() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Trickle {
                chunk_bytes: 1,
                interval_ms: 1_000,
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Download)
            .always(),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let submission = imggen
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::GPTIMG),
        )
        .await
        .unwrap();
    let handle = &submission.handles[0];
    let status = imggen.wait(handle, WaitOptions::new()).await.unwrap();
    let error = tokio::time::timeout(
        30 * S,
        imggen.download(
            handle,
            &status,
            &DownloadOptions::memory().deadline(Duration::from_millis(500)),
        ),
    )
    .await
    .expect("the deadline ended the download")
    .unwrap_err();
    let Error::Download(download) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert_eq!(&download.handle, handle, "the paid task's handle is kept");
    assert!(error.to_string().contains("before the deadline"), "{error}");
}

#[tokio::test]
async fn download_retries_stop_when_their_time_is_spent_however_many_attempts_are_left() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::CutShort)
                .provider(MockProvider::Runbase)
                .operation(Operation::Download)
                .always(),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let mut retry = imggen_core::RetryConfig::standard();
    retry.read_attempts = 1_000;
    retry.read_retry_time = 20 * S;
    let imggen = builder.retry(retry).build().unwrap();
    let submission = imggen
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::RUNBASE),
        )
        .await
        .unwrap();
    let handle = &submission.handles[0];
    let status = imggen.wait(handle, WaitOptions::new()).await.unwrap();
    let started = time.now();
    let error = imggen
        .download(handle, &status, &DownloadOptions::memory())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Download(_)), "{error:?}");
    assert!(time.now() - started <= 20 * S, "{:?}", time.now() - started);
    let attempts = server
        .requests()
        .recent
        .iter()
        .filter(|record| record.path.starts_with("/files/"))
        .count();
    // 1 s, 2 s, 4 s, 8 s of backoff fit in 20 s; the next (16 s) does not.
    assert_eq!(
        attempts, 5,
        "bounded by time, not by the 1,000 attempts allowed"
    );
}

#[tokio::test]
async fn status_retries_stop_when_the_read_retry_time_is_spent() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let mut retry = imggen_core::RetryConfig::standard();
    retry.read_attempts = 1_000;
    retry.read_retry_time = 20 * S;
    let imggen = builder.retry(retry).build().unwrap();
    let submission = imggen
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::RUNBASE),
        )
        .await
        .unwrap();
    let handle = &submission.handles[0];
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 503,
                body: None,
                headers: BTreeMap::new(),
            })
            .provider(MockProvider::Runbase)
            .operation(Operation::Status)
            .always(),
        )
        .unwrap();
    let before = server.requests().recent.len();
    let started = time.now();
    let error = imggen.status(handle).await.unwrap_err();
    assert!(matches!(error, Error::Status(_)), "{error:?}");
    assert!(time.now() - started <= 20 * S, "{:?}", time.now() - started);
    let attempts = server.requests().recent.len() - before;
    // Measured from the first attempt: 1 s, 2 s, 4 s and 8 s of backoff (each jittered up by a
    // tenth at most) fit in 20 s; the next (16 s) does not.
    assert_eq!(
        attempts, 5,
        "bounded by time, not by the 1,000 attempts allowed"
    );
}

#[tokio::test]
async fn a_refunded_gptimg_500_is_retried_to_success_with_one_charge() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(45 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 500,
                body: None,
                headers: BTreeMap::new(),
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Create)
            .times(1),
        )
        .unwrap();
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let generation = imggen
        .generate(
            &GenerationRequest::new("A refunded lamp"),
            &on(crate::GPTIMG),
        )
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(counts[&crate::GPTIMG].creates(), 2);
    assert_eq!(charges(&server, MockProvider::Gptimg), 1);
}

#[tokio::test]
async fn a_webhook_is_a_hint_confirmed_by_one_status_call_and_its_duplicate_is_ignored() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(30 * S))).await;
    let time = SteppedTime::new(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    // A slow schedule: without the webhook the first poll would come after 10 minutes.
    let imggen = builder
        .poll_schedule(
            crate::RUNBLOB,
            imggen_runblob::POLL_SCHEDULE
                .every(600 * S)
                .with_jitter(0.0),
        )
        .build()
        .unwrap();
    let hub = WebhookHub::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/hooks/runblob", listener.local_addr().unwrap());
    let app = axum::Router::new().nest(
        "/hooks/runblob",
        imggen_core::webhook::server::router(
            hub.clone(),
            imggen.provider_named(crate::RUNBLOB).unwrap().clone(),
        ),
    );
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let request = GenerationRequest::new("A lamp that calls back").webhook(receiver.clone());
    let handle = imggen
        .submit(&request, &SubmitOptions::provider(crate::RUNBLOB))
        .await
        .unwrap()
        .handles
        .remove(0);
    let waiting = {
        let (imggen, handle) = (imggen.clone(), handle.clone());
        let events = hub.subscribe();
        tokio::spawn(async move {
            imggen
                .wait(&handle, WaitOptions::new().events(events))
                .await
        })
    };
    let runblob = counts[&crate::RUNBLOB].clone();

    // 30 s later the task is done and the mock calls back.
    time.advance(&server, 30 * S).await;
    let status = waiting.await.unwrap().unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert_eq!(runblob.statuses(), 1, "one confirmation, no poll");
    let deliveries = server.webhooks();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].url, receiver);
    assert_eq!(deliveries[0].attempts[0].status, Some(200));

    // A redelivery of the same event is acknowledged and ignored.
    let generation = status
        .raw
        .downcast_ref::<imggen_types::runblob::Generation>()
        .expect("a runblob object");
    let body = serde_json::to_vec(generation).unwrap();
    let answer = http()
        .post(&receiver)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        !hub.receive(
            imggen.provider_named(crate::RUNBLOB).unwrap().as_ref(),
            &body
        )
        .unwrap(),
        "a duplicate is not news"
    );
    serving.abort();
}

#[tokio::test]
async fn without_a_webhook_the_wait_falls_back_to_polling() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(70 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let hub = WebhookHub::new();
    let handle = imggen
        .submit(
            &GenerationRequest::new("A quiet lamp"),
            &SubmitOptions::provider(crate::RUNBLOB),
        )
        .await
        .unwrap()
        .handles
        .remove(0);

    let status = imggen
        .wait(&handle, WaitOptions::new().events(hub.subscribe()))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert!(counts[&crate::RUNBLOB].statuses() >= 2);
    assert!(server.webhooks().is_empty());
}

#[tokio::test]
async fn downloads_are_capped_and_a_body_that_is_not_a_png_is_refused() {
    let server = mock(MockConfig::default().profile(Profile::INSTANT)).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let capped = on(crate::GPTIMG).download(DownloadOptions::memory().max_bytes(64));
    let error = imggen
        .generate(&GenerationRequest::new("A big lamp"), &capped)
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.problem.contains("64-byte cap"), "{}", failed.problem);
    // The paid task is not lost: its images can be collected again without the cap.
    let handle = failed.handle.clone();
    let status = imggen.status(&handle).await.unwrap();
    let images = imggen
        .download(&handle, &status, &DownloadOptions::memory())
        .await
        .unwrap();
    assert_eq!(images[0].media_type, "image/png");

    server
        .add_fault(
            Fault::new(FaultKind::Http {
                status: 200,
                body: Some(serde_json::json!(
                    "<html><body>Welcome to our CDN</body></html>"
                )),
                headers: BTreeMap::new(),
            })
            .provider(MockProvider::Gptimg)
            .operation(Operation::Download)
            .times(1),
        )
        .unwrap();
    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp behind a portal"),
            &on(crate::GPTIMG),
        )
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.url.ends_with(".png"), "{}", failed.url);
    assert!(
        failed.problem.contains("not an image"),
        "{}",
        failed.problem
    );
    assert!(failed.problem.contains("<html>"), "{}", failed.problem);

    // A file cut in half still starts like a PNG; it must not be saved as a success.
    server
        .add_fault(
            Fault::new(FaultKind::MalformedJson)
                .provider(MockProvider::Gptimg)
                .operation(Operation::Download)
                .times(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = imggen
        .generate(
            &GenerationRequest::new("A lamp cut in half"),
            &on(crate::GPTIMG).download(DownloadOptions::to_dir(dir.path())),
        )
        .await
        .unwrap_err();
    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.problem.contains("cut short"), "{}", failed.problem);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing saved"
    );
}

#[tokio::test]
async fn a_local_reference_file_is_sent_to_runblob_and_a_missing_one_sends_nothing() {
    let server = mock(MockConfig::default().profile(Profile::INSTANT)).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sketch = dir.path().join("sketch.jpg");
    // A PNG named .jpg: sent as what its bytes are.
    std::fs::write(&sketch, imggen_mock::render_png("sketch", 1, 8, 8)).unwrap();

    let generation = imggen
        .generate(
            &GenerationRequest::new("Turn the sketch into a watercolor")
                .reference(Reference::file(&sketch)),
            &on(crate::RUNBLOB),
        )
        .await
        .unwrap();
    assert_eq!(generation.images.len(), 1);

    let error = imggen
        .generate(
            &GenerationRequest::new("A missing sketch")
                .reference(Reference::file(dir.path().join("missing.png"))),
            &on(crate::RUNBLOB),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert!(error.to_string().contains("missing.png"), "{error}");
    assert_eq!(counts[&crate::RUNBLOB].creates(), 1);
    assert_eq!(charges(&server, MockProvider::Runblob), 1);
}

/// Everything the test binary traces from imggen, once a test asked for it. Global: a
/// thread-local subscriber misses callsites whose interest another test thread cached first.
fn trace_log() -> &'static Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_env_filter("imggen_core=trace,imggen_http=trace,it=trace")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .try_init()
            .expect("no other global subscriber in this test binary");
        log
    })
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_step_is_traced_with_provider_and_task_and_never_the_key() {
    use tracing::Instrument as _;
    let log = trace_log();
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let marker = format!("traced-{}", std::process::id());

    let generation = imggen
        .generate(
            &GenerationRequest::new("A traced lamp"),
            &on(crate::RUNBASE),
        )
        .instrument(tracing::info_span!("trace_test", marker = %marker))
        .await
        .unwrap();

    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = text.lines().filter(|line| line.contains(&marker)).collect();
    let task_id = &generation.handles[0].task_id;
    for span in [
        "imggen.plan{",
        "imggen.submit{",
        "imggen.create{",
        "imggen.poll{",
        "imggen.download{",
    ] {
        assert!(
            ours.iter().any(|line| line.contains(span)),
            "no {span} span in:\n{}",
            ours.join("\n")
        );
    }
    let polls: Vec<&&str> = ours
        .iter()
        .filter(|line| line.contains("imggen.poll{"))
        .collect();
    assert!(
        polls
            .iter()
            .all(|line| line.contains(&format!("task_id={task_id}")))
    );
    assert!(
        polls
            .iter()
            .any(|line| line.contains("status=\"succeeded\""))
    );
    assert!(
        ours.iter()
            .filter(|line| line.contains("imggen."))
            .all(|line| line.contains("provider=runbase")),
        "{}",
        ours.join("\n")
    );
    assert!(
        !text.contains(KEY) && !text.contains("imggen-core-e2e"),
        "a key was logged"
    );
}
