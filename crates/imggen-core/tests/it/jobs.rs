//! Submit, retry, fall back, wait, resume, cancel and collect, against a fake provider on
//! injected time: every rule about money and time, without a network or a real second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imggen_core::webhook::{WebhookEvent, channel_stream};
use imggen_core::{
    CallError, CallErrorKind, CallOperation, CancellationToken, DownloadOptions, Error,
    GenerateOptions, GenerationRequest, ImageData, Imggen, ImggenBuilder, ProviderId, RateLimit,
    SubmitOptions, TaskHandle, TaskState, WaitOptions, WebhookHub,
};
use imggen_http::time::{Clock, ManualTime};
use imggen_types::AspectRatio;

use crate::fake::{Fake, PNG};

const S: Duration = Duration::from_secs(1);

fn builder(time: &ManualTime, fakes: &[&Fake]) -> ImggenBuilder {
    let mut builder = Imggen::builder()
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time.clone()));
    for fake in fakes {
        builder = builder.provider((*fake).clone());
    }
    builder
}

fn imggen(time: &ManualTime, fakes: &[&Fake]) -> Imggen {
    builder(time, fakes).build().unwrap()
}

fn request() -> GenerationRequest {
    GenerationRequest::new("A lighthouse on a cliff at dusk")
}

fn refused(provider: ProviderId, status: u16, code: &str) -> CallError {
    CallError::api(provider, CallOperation::Create, status, Some(code), None)
}

#[tokio::test]
async fn every_handle_reaches_on_handle_and_the_concurrency_cap_holds() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    let imggen = builder(&time, &[&fake])
        .allow_extra_tasks(true)
        .max_concurrent_tasks(2)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&seen);
    let options = SubmitOptions::provider(crate::RUNBASE)
        .on_handle(move |handle: &TaskHandle| recorder.lock().unwrap().push(handle.clone()));

    let submission = imggen.submit(&request().n(5), &options).await.unwrap();

    assert_eq!(submission.handles.len(), 5);
    assert!(
        fake.max_in_flight_creates() <= 2,
        "{}",
        fake.max_in_flight_creates()
    );
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    let mut handles = submission.handles.clone();
    handles.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    assert_eq!(seen, handles);
    assert_eq!(submission.cost().to_string(), "$0.25");
    let handle = &submission.handles[0];
    assert_eq!(handle.images_expected, Some(1));
    assert_eq!(handle.summary.as_ref().unwrap().n, 5);
    assert!(handle.created_at.is_some());
}

#[tokio::test]
async fn a_rate_limited_create_is_retried_after_retry_after_and_charged_once() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 40 * S);
    fake.fail_creates([
        refused(crate::GPTIMG, 429, "RATE_LIMITED").with_retry_after(Some(7 * S)),
        // gptimg's 500 INTERNAL_ERROR is documented as refunded: the client marks it so.
        refused(crate::GPTIMG, 500, "INTERNAL_ERROR")
            .with_retryable(true)
            .with_may_have_been_charged(false),
    ]);
    let imggen = imggen(&time, &[&fake]);

    let generation = imggen
        .generate(&request().n(2), &GenerateOptions::default())
        .await
        .unwrap();

    assert_eq!(fake.creates().len(), 3);
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(_, kind)| *kind == "create")
        .collect();
    assert!(
        creates[1].0 - creates[0].0 >= 7 * S,
        "retried before Retry-After"
    );
    assert_eq!(generation.handles.len(), 1);
    assert_eq!(generation.images.len(), 2);
    assert_eq!(generation.cost.to_string(), "$0.1");
    assert_eq!(generation.provider(), crate::GPTIMG);
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_never_resubmitted_nor_sent_elsewhere() {
    let time = ManualTime::new();
    let runbase = Fake::new(crate::RUNBASE, &time, 5 * S);
    let gptimg = Fake::new(crate::GPTIMG, &time, 5 * S);
    runbase.fail_creates([CallError::new(
        crate::RUNBASE,
        CallOperation::Create,
        CallErrorKind::Timeout,
    )]);
    let imggen = imggen(&time, &[&runbase, &gptimg]);

    let error = imggen
        .submit(
            &request(),
            &SubmitOptions::fallback([crate::RUNBASE, crate::GPTIMG]),
        )
        .await
        .unwrap_err();

    let Error::CreateOutcomeUnknown(unknown) = &error else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert_eq!(unknown.summary.prompt, "A lighthouse on a cliff at dusk");
    assert!(error.may_have_been_charged());
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("imggen did not resubmit it"),
        "{error}"
    );
    assert_eq!(runbase.creates().len(), 1);
    assert!(gptimg.creates().is_empty());
}

#[tokio::test]
async fn fallback_moves_on_only_when_the_task_was_not_accepted_and_says_why() {
    let time = ManualTime::new();
    let runblob = Fake::new(crate::RUNBLOB, &time, 5 * S);
    let runbase = Fake::new(crate::RUNBASE, &time, 5 * S);
    let gptimg = Fake::new(crate::GPTIMG, &time, 5 * S);
    runbase.fail_creates([refused(crate::RUNBASE, 402, "insufficient_balance")]);
    let imggen = builder(&time, &[&runblob, &runbase, &gptimg])
        .strictness(imggen_core::Strictness::Exact)
        .build()
        .unwrap();
    let order = [crate::RUNBLOB, crate::RUNBASE, crate::GPTIMG];
    let wide = request().aspect_ratio(AspectRatio::Landscape16x9);

    let generation = imggen
        .generate(
            &wide,
            &GenerateOptions::default().submit(SubmitOptions::fallback(order)),
        )
        .await
        .unwrap();

    assert_eq!(generation.provider(), crate::GPTIMG);
    let reasons: Vec<String> = generation
        .fallback
        .skipped
        .iter()
        .map(|attempt| format!("{}: {}", attempt.provider, attempt.error))
        .collect();
    assert_eq!(
        reasons,
        [
            "runblob: runblob cannot serve this request: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; nothing was sent",
            "runbase: runbase create: 402 insufficient_balance; nothing was charged for it",
        ]
    );
    assert!(runblob.creates().is_empty());
    assert_eq!(runbase.creates().len(), 1);
    assert_eq!(gptimg.creates().len(), 1);

    // Every provider refusing is one error listing each reason; nothing was charged.
    runbase.fail_creates([refused(crate::RUNBASE, 402, "insufficient_balance")]);
    gptimg.fail_creates([refused(crate::GPTIMG, 402, "INSUFFICIENT_CREDITS")]);
    let error = imggen
        .submit(
            &request(),
            &SubmitOptions::fallback([crate::RUNBASE, crate::GPTIMG]),
        )
        .await
        .unwrap_err();
    let Error::AllProvidersFailed(all) = &error else {
        panic!("expected every provider to fail, got {error:?}");
    };
    assert_eq!(all.attempts.len(), 2);
    assert!(!error.may_have_been_charged());

    // One provider: its own error.
    gptimg.fail_creates([refused(crate::GPTIMG, 402, "INSUFFICIENT_CREDITS")]);
    let error = imggen
        .submit(&request(), &SubmitOptions::provider(crate::GPTIMG))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn no_fallback_once_a_task_of_the_submission_was_accepted() {
    let time = ManualTime::new();
    let runbase = Fake::new(crate::RUNBASE, &time, 5 * S);
    let gptimg = Fake::new(crate::GPTIMG, &time, 5 * S);
    runbase.script_creates([
        None,
        Some(refused(crate::RUNBASE, 402, "insufficient_balance")),
    ]);
    let imggen = builder(&time, &[&runbase, &gptimg])
        .allow_extra_tasks(true)
        .max_concurrent_tasks(1)
        .build()
        .unwrap();

    let error = imggen
        .submit(
            &request().n(3),
            &SubmitOptions::fallback([crate::RUNBASE, crate::GPTIMG]),
        )
        .await
        .unwrap_err();

    let Error::Refused(refusal) = &error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!(refusal.accepted.len(), 1, "the paid task is in the error");
    assert_eq!(error.handles().len(), 1);
    assert!(error.may_have_been_charged());
    assert_eq!(
        runbase.creates().len(),
        2,
        "no third create after the refusal"
    );
    assert!(gptimg.creates().is_empty());
}

#[tokio::test]
async fn a_deadline_returns_the_handle_and_a_fresh_imggen_resumes_from_its_json() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 100 * S);
    let imggen = imggen(&time, &[&fake]);
    let submission = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap();
    let start = time.now();

    let error = imggen
        .wait(&submission.handles[0], WaitOptions::new().deadline(30 * S))
        .await
        .unwrap_err();

    let Error::DeadlineExceeded(exceeded) = &error else {
        panic!("expected the deadline, got {error:?}");
    };
    assert_eq!(
        time.now() - start,
        30 * S,
        "the last poll is trimmed to the deadline"
    );
    assert_eq!(exceeded.last_state, Some(TaskState::Running));
    assert!(error.is_retryable() && error.may_have_been_charged());
    let saved = exceeded.handle.to_json();

    // Another process: a new Imggen, the handle read back from JSON.
    let fresh = imggen_with_fresh_scheduler(&time, &fake);
    let handle = TaskHandle::from_json(&saved).unwrap();
    let status = fresh.wait(&handle, WaitOptions::new()).await.unwrap();
    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert!(time.now() - start >= 100 * S);
    assert!(time.now() - start < 105 * S, "resumed on the 2 s schedule");
}

fn imggen_with_fresh_scheduler(time: &ManualTime, fake: &Fake) -> Imggen {
    imggen(time, &[fake])
}

#[tokio::test]
async fn cancelling_stops_the_wait_at_once_and_keeps_the_handle() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBLOB, &time, 1_000_000 * S);
    let imggen = imggen(&time, &[&fake]);
    let submission = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap();
    let handle = submission.handles[0].clone();
    let token = CancellationToken::new();
    let waiting = {
        let imggen = imggen.clone();
        let handle = handle.clone();
        let options = WaitOptions::new()
            .cancel(token.clone())
            .deadline(Duration::from_secs(100 * 86_400));
        tokio::spawn(async move { imggen.wait(&handle, options).await })
    };
    // Mid-wait: once a few polls have been made.
    let mut spins = 0;
    while fake.status_calls() < 3 {
        tokio::task::yield_now().await;
        spins += 1;
        assert!(spins < 1_000_000, "the wait never polled");
    }
    token.cancel();
    let error = waiting.await.unwrap().unwrap_err();
    let Error::Cancelled(cancelled) = &error else {
        panic!("expected a cancellation, got {error:?}");
    };
    assert_eq!(cancelled.handle, handle);
    assert!(
        error.to_string().contains("resume it from its handle"),
        "{error}"
    );
}

#[tokio::test]
async fn a_429_storm_on_status_is_waited_out_within_the_budget_of_attempts() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    let storm = || {
        (0..10).map(|_| {
            CallError::api(
                crate::RUNBASE,
                CallOperation::Status,
                429,
                Some("RATE_LIMITED"),
                None,
            )
            .with_retry_after(Some(2 * S))
        })
    };
    fake.fail_statuses(storm());
    let imggen = imggen(&time, &[&fake]);
    let submission = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap();
    let start = time.now();

    let status = imggen
        .wait(&submission.handles[0], WaitOptions::new())
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert_eq!(fake.status_calls(), 11);
    assert!(
        time.now() - start >= 3 * S + 10 * 2 * S,
        "every Retry-After was obeyed"
    );

    // A storm longer than the attempts allowed ends in a status error that keeps the handle.
    fake.fail_statuses((0..4).flat_map(|_| storm()));
    let error = imggen
        .wait(&submission.handles[0], WaitOptions::new())
        .await
        .unwrap_err();
    let Error::Status(failed) = &error else {
        panic!("expected a status error, got {error:?}");
    };
    assert_eq!(failed.handle, submission.handles[0]);
    assert!(error.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_jobs_on_one_runbase_key_earn_no_429() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    fake.rate_limit(20, 10 * S);
    let imggen = imggen(&time, &[&fake]);

    let jobs: Vec<_> = (0..50)
        .map(|i| {
            let imggen = imggen.clone();
            tokio::spawn(async move {
                let request = GenerationRequest::new(format!("lamp number {i}"));
                imggen.generate(&request, &GenerateOptions::default()).await
            })
        })
        .collect();
    for job in jobs {
        let generation = job.await.unwrap().unwrap();
        assert_eq!(generation.images.len(), 1);
    }

    assert_eq!(fake.rate_limited(), 0, "the mock-runbase answered 429");
    let requests = fake.requests();
    assert!(requests.len() >= 100, "{} requests", requests.len());
    for (i, (at, _)) in requests.iter().enumerate() {
        let in_window = requests[i..]
            .iter()
            .filter(|(later, _)| *later < *at + 10 * S)
            .count();
        assert!(in_window <= 20, "{in_window} requests within 10 s");
    }
}

#[tokio::test]
async fn a_configured_budget_replaces_runbases_default() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, S);
    let imggen = builder(&time, &[&fake])
        .budget(crate::RUNBASE, RateLimit::new(2, 10 * S))
        .build()
        .unwrap();
    let start = time.now();
    let (request, options) = (request(), SubmitOptions::default());
    let jobs: Vec<_> = (0..2).map(|_| imggen.submit(&request, &options)).collect();
    for job in futures_util::future::join_all(jobs).await {
        job.unwrap();
    }
    let third = imggen.submit(&request, &options).await;
    third.unwrap();
    assert_eq!(time.now() - start, Duration::from_millis(10_250));
}

fn event(task_id: &str, status: &str) -> WebhookEvent {
    WebhookEvent::new(crate::RUNBLOB, task_id, status)
}

fn runblob_without_jitter(time: &ManualTime, fake: &Fake) -> Imggen {
    builder(time, &[fake])
        .poll_schedule(
            crate::RUNBLOB,
            imggen_runblob::POLL_SCHEDULE.with_jitter(0.0),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_webhook_event_is_confirmed_by_one_status_call_instead_of_waiting_a_minute() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBLOB, &time, Duration::ZERO);
    let imggen = runblob_without_jitter(&time, &fake);
    let handle = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap()
        .handles
        .remove(0);
    let start = time.now();
    let hub = WebhookHub::new();
    let events = hub.subscribe();
    assert!(hub.publish(event("someone-else", "completed")));
    assert!(hub.publish(event(&handle.task_id, "completed")));

    let status = imggen
        .wait(&handle, WaitOptions::new().events(events))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert_eq!(fake.status_calls(), 1);
    assert_eq!(
        time.now() - start,
        Duration::ZERO,
        "no minute-long first poll"
    );
}

#[tokio::test]
async fn an_early_event_is_not_believed_and_its_duplicate_is_ignored() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBLOB, &time, 100 * S);
    let imggen = runblob_without_jitter(&time, &fake);
    let handle = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap()
        .handles
        .remove(0);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(event(&handle.task_id, "completed")).await.unwrap();
    tx.send(event(&handle.task_id, "completed")).await.unwrap();

    let status = imggen
        .wait(&handle, WaitOptions::new().events(channel_stream(rx)))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    // One confirmation at once (still running), then the schedule: 60, 69, 78, 87, 96, 105 s.
    assert_eq!(fake.status_calls(), 7);
    drop(tx);
}

#[tokio::test]
async fn without_events_the_wait_falls_back_to_polling() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBLOB, &time, 100 * S);
    let imggen = runblob_without_jitter(&time, &fake);
    let handle = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap()
        .handles
        .remove(0);
    let start = time.now();
    let hub = WebhookHub::new();

    let status = imggen
        .wait(&handle, WaitOptions::new().events(hub.subscribe()))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    // 60, 69, 78, 87, 96 and 105 s.
    assert_eq!(fake.status_calls(), 6);
    assert_eq!(time.now() - start, 105 * S);
}

/// A runblob task (done after 100 s) created with a webhook URL, on a jitter-free schedule.
async fn created_with_a_webhook(time: &ManualTime) -> (Fake, Imggen, TaskHandle) {
    let fake = Fake::new(crate::RUNBLOB, time, 100 * S);
    let imggen = runblob_without_jitter(time, &fake);
    let handle = imggen
        .submit(
            &request().webhook("https://example.com/hooks/runblob"),
            &SubmitOptions::default(),
        )
        .await
        .unwrap()
        .handles
        .remove(0);
    (fake, imggen, handle)
}

#[tokio::test]
async fn a_task_that_will_call_back_is_polled_only_to_catch_a_lost_callback() {
    let time = ManualTime::new();
    let (fake, imggen, handle) = created_with_a_webhook(&time).await;
    assert!(handle.webhook, "the receipt says a callback will come");
    let resumed = TaskHandle::from_json(&handle.to_json()).unwrap();
    assert!(resumed.webhook, "and keeps saying so when resumed");
    let start = time.now();
    let hub = WebhookHub::new();

    // The callback is lost: the wait finds the task by polling, every 30 s (runblob's
    // redelivery interval) rather than every 9 s.
    let status = imggen
        .wait(&resumed, WaitOptions::new().events(hub.subscribe()))
        .await
        .unwrap();

    assert!(matches!(status.state, TaskState::Succeeded { .. }));
    assert_eq!(fake.status_calls(), 3, "polls at 60, 90 and 120 s");
    assert_eq!(time.now() - start, 120 * S);

    // Without events to listen to, the same kind of task is polled on the plain schedule.
    let (fake, imggen, handle) = created_with_a_webhook(&time).await;
    imggen.wait(&handle, WaitOptions::new()).await.unwrap();
    assert_eq!(
        fake.status_calls(),
        6,
        "polls at 60, 69, 78, 87, 96 and 105 s"
    );
}

#[tokio::test]
async fn images_are_written_atomically_under_the_task_name_with_the_sniffed_type() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 40 * S);
    let imggen = imggen(&time, &[&fake]);
    let dir = tempfile::tempdir().unwrap();
    let options = GenerateOptions::default().download(DownloadOptions::to_dir(dir.path()));

    let generation = imggen.generate(&request().n(2), &options).await.unwrap();

    let names: Vec<String> = generation
        .images
        .iter()
        .map(|image| match &image.data {
            ImageData::File(path) => path.file_name().unwrap().to_string_lossy().into_owned(),
            other => panic!("expected a file, got {other:?}"),
        })
        .collect();
    assert_eq!(names, ["task_1-1.png", "task_1-2.png"]);
    let image = &generation.images[0];
    assert_eq!(image.media_type, "image/png");
    assert_eq!((image.width, image.height), (Some(3), Some(2)));
    assert_eq!(image.bytes_len, PNG.len() as u64);
    assert_eq!(std::fs::read(dir.path().join("task_1-1.png")).unwrap(), PNG);
    let mut listing: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listing.sort();
    assert_eq!(listing, names, "no temporary file left behind");
}

#[tokio::test]
async fn a_body_that_is_not_an_image_is_refused_whatever_its_url_says() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    fake.serve_body(b"<html><body>502 Bad Gateway</body></html>");
    let imggen = imggen(&time, &[&fake]);
    let dir = tempfile::tempdir().unwrap();
    let options = GenerateOptions::default().download(DownloadOptions::to_dir(dir.path()));

    let error = imggen.generate(&request(), &options).await.unwrap_err();

    let Error::Download(failed) = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert!(failed.url.ends_with(".png"));
    assert!(
        failed.problem.contains("not an image"),
        "{}",
        failed.problem
    );
    assert_eq!(
        error.handles().len(),
        1,
        "the paid task can be collected again"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_failed_task_is_an_error_with_the_providers_code_and_the_handle() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    fake.fail_tasks();
    let imggen = imggen(&time, &[&fake]);

    let error = imggen
        .generate(&request(), &GenerateOptions::default())
        .await
        .unwrap_err();

    let Error::TaskFailed(failed) = &error else {
        panic!("expected a failed task, got {error:?}");
    };
    assert_eq!(failed.code.as_deref(), Some("MODERATION_FAILED"));
    assert_eq!(
        error.to_string(),
        format!(
            "runbase task {} failed: MODERATION_FAILED: nope; the provider refunds failed tasks",
            failed.handle.task_id
        )
    );
    assert!(!error.may_have_been_charged());
    assert!(
        error
            .advice()
            .is_some_and(|advice| advice.contains("change the prompt")),
        "{:?}",
        error.advice()
    );
}

#[tokio::test]
async fn a_runblob_failure_code_brings_runblobs_own_advice() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBLOB, &time, 5 * S);
    fake.fail_tasks_with("OPENAI_DECLINED");
    let imggen = imggen(&time, &[&fake]);

    let error = imggen
        .generate(&request(), &GenerateOptions::default())
        .await
        .unwrap_err();

    assert!(matches!(error, Error::TaskFailed(_)), "{error:?}");
    assert_eq!(
        error.advice(),
        Some(
            "OpenAI declined the prompt: rephrase it, then submit again (the failed task is refunded)"
        )
    );
}

#[tokio::test]
async fn status_works_from_the_short_form_and_unconfigured_providers_are_named() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, Duration::ZERO);
    let imggen = imggen(&time, &[&fake]);
    let handle = imggen
        .submit(&request(), &SubmitOptions::default())
        .await
        .unwrap()
        .handles
        .remove(0);
    let short: TaskHandle = handle.to_string().parse().unwrap();
    let status = imggen.status(&short).await.unwrap();
    assert!(matches!(status.state, TaskState::Succeeded { .. }));

    let elsewhere: TaskHandle = "gptimg:gpt-image-2-abc".parse().unwrap();
    let error = imggen.status(&elsewhere).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "imggen: gptimg is not configured: set GPTIMG_API_KEY"
    );
    let error = imggen
        .submit(&request(), &SubmitOptions::provider(crate::RUNBLOB))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)));
    assert!(fake.creates().len() == 1);
}
