//! `BatchOptions::watch_results`: the results as they stand, handed out while a batch runs
//! (what the CLI's gallery page is drawn from).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imggen_core::batch::{BatchOptions, BatchRunner, RequestDefaults, ResultLine, ResultStatus};
use imggen_mock::MockConfig;
use serde_json::json;

use crate::batch::{imggen, input, lines, mock};

type Views = Arc<Mutex<Vec<Vec<ResultLine>>>>;

#[tokio::test]
async fn the_results_are_handed_out_as_the_batch_fills_then_written_with_prompt_and_model() {
    let (server, time) = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"id": "fox", "prompt": "a red <b>fox</b>", "provider": "runbase", "model": "openai/gpt-image-2"}),
        json!({"id": "owl", "prompt": "an owl", "provider": "gptimg"}),
        json!({"id": "elk", "prompt": "an elk", "provider": "runblob"}),
    ]);
    let views: Views = Arc::default();
    let seen = Arc::clone(&views);
    let options = BatchOptions::new(dir.path()).concurrency(1).watch_results(
        Duration::from_secs(1),
        move |results| {
            let view = results.map(Result::unwrap).collect();
            seen.lock().unwrap().push(view);
        },
    );
    let report = BatchRunner::new(imggen(&server, &time), options)
        .run(input(&text, &RequestDefaults::new()))
        .await
        .unwrap();
    assert!(report.is_complete());

    let views = views.lock().unwrap();
    // The first view comes as the run starts: every request is there, none finished yet.
    let first = &views[0];
    assert_eq!(
        first
            .iter()
            .map(|line| line.id.as_str())
            .collect::<Vec<_>>(),
        ["fox", "owl", "elk"]
    );
    assert!(
        first
            .iter()
            .all(|line| line.status == ResultStatus::Pending)
    );
    assert_eq!(first[0].prompt, "a red <b>fox</b>");
    // Later views see requests finish one by one (concurrency 1), never a create under way
    // shown as unknown.
    assert!(views.len() >= 2, "{} views", views.len());
    let done = |view: &Vec<ResultLine>| {
        view.iter()
            .filter(|line| line.status == ResultStatus::Done)
            .count()
    };
    assert!(
        views
            .windows(2)
            .all(|pair| done(&pair[0]) <= done(&pair[1]))
    );
    assert!(
        views
            .iter()
            .flatten()
            .all(|line| line.status != ResultStatus::Unknown)
    );
    assert!(views.iter().any(|view| (1..3).contains(&done(view))));

    // results.jsonl names the prompt and the model of every line.
    let results = report.read_results().unwrap();
    assert_eq!(results[0].prompt, "a red <b>fox</b>");
    assert_eq!(results[0].model.as_deref(), Some("openai/gpt-image-2"));
    assert_eq!(results[1].prompt, "an owl");
    assert_eq!(results[1].model.as_deref(), Some("gpt-image-2"));
    // runblob's default model has no name on the wire: none is made up.
    assert_eq!(results[2].model, None);
}

#[tokio::test]
async fn a_view_that_panics_does_not_stop_the_batch() {
    let (server, time) = mock(MockConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[json!({"id": "1", "prompt": "a cat"})]);
    let options = BatchOptions::new(dir.path()).watch_results(Duration::ZERO, |_| {
        panic!("a gallery that cannot be drawn");
    });
    let report = BatchRunner::new(imggen(&server, &time), options)
        .run(input(
            &text,
            &RequestDefaults::new().provider(crate::GPTIMG),
        ))
        .await
        .unwrap();
    assert!(report.is_complete());
}
