//! One generation on each provider, resumed, cancelled and fallen back, end to end.

use super::*;

#[tokio::test]
async fn runblob_end_to_end() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(90 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = time.now();
    let request = GenerationRequest::new("A futuristic city at night")
        .aspect_ratio(AspectRatio::Landscape4x3);

    let generation = imggen
        .generate(
            &request,
            &on(crate::RUNBLOB).download(DownloadOptions::to_dir(dir.path())),
        )
        .await
        .unwrap();

    let image = &generation.images[0];
    let expected_name = format!("{}-1.png", generation.handles[0].task_id);
    assert_eq!(image.data, ImageData::File(dir.path().join(&expected_name)));
    assert_eq!(image.media_type, "image/png");
    assert_eq!((image.width, image.height), (Some(256), Some(192)));
    assert_eq!(
        imggen_types::media::sniff(&file_bytes(&image.data))
            .unwrap()
            .width,
        Some(256)
    );
    assert_eq!(generation.cost, Cost::usd("0.0123".parse().unwrap()));
    assert_eq!(charges(&server, MockProvider::Runblob), 1);
    // No poll before a minute (54 s at the earliest, jitter included); then every 9 s ±10%:
    // done at 90 s, seen by 100 s, after at most five polls that found it running.
    let waited = time.now() - start;
    assert!(waited >= 90 * S && waited <= 100 * S, "{waited:?}");
    assert!(counts[&crate::RUNBLOB].statuses() <= 6);
}

#[tokio::test]
async fn every_status_read_while_waiting_is_reported_for_progress() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let options = on(crate::GPTIMG).on_status(move |handle, status| {
        record
            .lock()
            .unwrap()
            .push((handle.task_id.clone(), status.state.name().to_owned()));
    });

    let generation = imggen
        .generate(&GenerationRequest::new("A paper boat"), &options)
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    let task_id = &generation.handles[0].task_id;
    assert!(seen.iter().all(|(id, _)| id == task_id), "{seen:?}");
    assert_eq!(
        seen.last().map(|(_, state)| state.as_str()),
        Some("succeeded"),
        "{seen:?}"
    );
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|(_, state)| state == "running"),
        "{seen:?}"
    );
    // One report per status call: nothing polled that was not reported.
    assert_eq!(seen.len(), counts[&crate::GPTIMG].statuses());
}

#[tokio::test]
async fn gptimg_end_to_end_with_several_images_per_task() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let request = GenerationRequest::new("A ceramic cup, top-down")
        .aspect_ratio(AspectRatio::Landscape16x9)
        .n(2);

    let generation = imggen.generate(&request, &on(crate::GPTIMG)).await.unwrap();

    assert_eq!(generation.handles.len(), 1);
    assert_eq!(generation.images.len(), 2);
    for (index, image) in generation.images.iter().enumerate() {
        assert_eq!(image.index, index + 1);
        assert_eq!((image.width, image.height), (Some(256), Some(144)));
        assert!(matches!(image.data, ImageData::Bytes(_)));
    }
    assert_eq!(generation.cost, Cost::credits(Credits(4)));
    assert_eq!(generation.cost.total_usd(None), None);
    let ledger = server.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].amount, imggen_mock::Amount::Credits(Credits(4)));
    assert!(generation.handles[0].task_id.starts_with("gpt-image-2-"));
}

#[tokio::test]
async fn runbase_end_to_end_with_a_resolution_and_its_exact_cost() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(6 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let mut request =
        GenerationRequest::new("A ceramic lamp").aspect_ratio(AspectRatio::Portrait9x16);
    imggen
        .set_option(&mut request, crate::RUNBASE, "resolution", "2K")
        .unwrap();

    let generation = imggen
        .generate(&request, &on(crate::RUNBASE))
        .await
        .unwrap();

    assert_eq!(generation.cost, Cost::usd("0.07".parse().unwrap()));
    assert_eq!(
        generation.handles[0].model.as_deref(),
        Some("openai/gpt-image-2")
    );
    let image = &generation.images[0];
    assert_eq!((image.width, image.height), (Some(144), Some(256)));
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
    // First poll at ~3 s, then ~2 s: done at 6 s after at most 3 polls.
    assert!(
        counts[&crate::RUNBASE].statuses() <= 3,
        "{} polls, {:?}",
        counts[&crate::RUNBASE].statuses(),
        server.tasks()
    );
}

#[tokio::test]
async fn a_handle_read_back_from_json_resumes_in_a_fresh_imggen() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(50 * S))).await;
    let time = MockTime(server.clock().clone());
    let saved = {
        let (builder, _) = imggen(&server, &time);
        let first = builder.build().unwrap();
        let submission = first
            .submit(
                &GenerationRequest::new("A lighthouse"),
                &SubmitOptions::provider(crate::GPTIMG),
            )
            .await
            .unwrap();
        submission.handles[0].to_json()
    };

    // Another process: new clients, new connection pool, the receipt from disk.
    let (builder, _) = imggen(&server, &time);
    let fresh = builder.build().unwrap();
    let handle = TaskHandle::from_json(&saved).unwrap();
    let generation = fresh
        .resume(&[handle], &GenerateOptions::default())
        .await
        .unwrap();

    assert_eq!(generation.images.len(), 1);
    assert_eq!(generation.cost, Cost::credits(Credits(2)));
    assert_eq!(charges(&server, MockProvider::Gptimg), 1);
}

#[tokio::test]
async fn a_deadline_keeps_the_handle_and_resuming_it_succeeds() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(60 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, _) = imggen(&server, &time);
    let imggen = builder.build().unwrap();

    let error = imggen
        .generate(
            &GenerationRequest::new("A slow lamp"),
            &on(crate::RUNBASE).deadline(20 * S),
        )
        .await
        .unwrap_err();

    let Error::DeadlineExceeded(exceeded) = &error else {
        panic!("expected the deadline, got {error:?}");
    };
    assert_eq!(exceeded.last_state, Some(TaskState::Running));
    let handles: Vec<TaskHandle> = error.handles().into_iter().cloned().collect();
    assert_eq!(handles.len(), 1);

    let generation = imggen
        .resume(&handles, &GenerateOptions::default())
        .await
        .unwrap();
    assert_eq!(generation.images.len(), 1);
    assert_eq!(charges(&server, MockProvider::Runbase), 1);
}

#[tokio::test]
async fn cancelling_mid_wait_returns_the_handle_and_leaves_the_task_running() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(36_000 * S))).await;
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let handle = imggen
        .submit(
            &GenerationRequest::new("A patient lamp"),
            &SubmitOptions::provider(crate::RUNBLOB),
        )
        .await
        .unwrap()
        .handles
        .remove(0);
    let token = CancellationToken::new();
    let waiting = {
        let (imggen, handle) = (imggen.clone(), handle.clone());
        let options = WaitOptions::new()
            .cancel(token.clone())
            .deadline(100_000 * S);
        tokio::spawn(async move { imggen.wait(&handle, options).await })
    };
    let runblob = counts[&crate::RUNBLOB].clone();
    let mut spins = 0u64;
    while runblob.statuses() < 2 {
        tokio::task::yield_now().await;
        spins += 1;
        assert!(spins < 10_000_000, "the wait never polled");
    }

    token.cancel();

    let error = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, Error::Cancelled(c) if c.handle == handle),
        "{error:?}"
    );
    let task = server
        .tasks()
        .into_iter()
        .find(|t| t.id == handle.task_id)
        .unwrap();
    assert!(
        matches!(task.status.as_str(), "pending" | "processing"),
        "{}",
        task.status
    );
}

#[tokio::test]
async fn fallback_follows_the_order_and_reports_why_each_provider_was_skipped() {
    let server = mock(MockConfig::default().profile(Profile::Fixed(5 * S))).await;
    server
        .add_fault(
            Fault::new(FaultKind::Maintenance)
                .provider(MockProvider::Runblob)
                .operation(Operation::Create)
                .always(),
        )
        .unwrap();
    server.set_balance(KEY, Balance::Gptimg(Credits(0)));
    let time = MockTime(server.clock().clone());
    let (builder, counts) = imggen(&server, &time);
    let imggen = builder.build().unwrap();
    let order = [crate::RUNBLOB, crate::GPTIMG, crate::RUNBASE];

    let generation = imggen
        .generate(
            &GenerationRequest::new("A lamp, wherever it can be made"),
            &GenerateOptions::default().submit(SubmitOptions::fallback(order)),
        )
        .await
        .unwrap();

    assert_eq!(generation.provider(), crate::RUNBASE);
    let skipped: Vec<(ProviderId, Option<u16>)> = generation
        .fallback
        .skipped
        .iter()
        .map(|attempt| match &attempt.error {
            Error::Refused(refused) => (attempt.provider, refused.call.status),
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(
        skipped,
        [(crate::RUNBLOB, Some(503)), (crate::GPTIMG, Some(402))]
    );
    let gptimg_refusal = &generation.fallback.skipped[1].error;
    assert!(
        gptimg_refusal.advice().is_some(),
        "the provider's advice for 402 is kept"
    );
    // Maintenance proves nothing was charged: retried (4 attempts) before moving on.
    assert_eq!(counts[&crate::RUNBLOB].creates(), 4);
    assert_eq!(counts[&crate::GPTIMG].creates(), 1);
    let ledger = server.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].provider, MockProvider::Runbase);
}
