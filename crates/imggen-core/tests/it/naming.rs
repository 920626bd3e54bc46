//! Saved images are named as asked, never over a file already there, and a request's own
//! lost files come back under their names.

use std::time::Duration;

use imggen_core::FileNames;
use imggen_core::batch::{BatchOptions, BatchRunner, RequestDefaults};
use imggen_mock::{MockConfig, Profile};
use serde_json::json;

use crate::batch::{imggen_with, input, lines, mock};

const S: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_batch_names_images_by_line_id_and_number_and_never_replaces_a_file() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    // Someone else's file under the name the first image would take.
    std::fs::write(dir.path().join("hero-1.png"), b"not ours").unwrap();
    let text = lines(&[
        json!({"id": "hero", "prompt": "A lighthouse", "n": 3}),
        json!({"id": "lamp", "prompt": "A lamp"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let runner = || {
        BatchRunner::new(
            imggen_with(&server, &time, true),
            BatchOptions::new(dir.path()),
        )
    };
    let report = runner().run(input(&text, &defaults)).await.unwrap();
    let results = report.read_results().unwrap();
    // runbase makes one image a task: three tasks, numbered across the request.
    assert_eq!(
        results[0].files,
        ["hero-1-2.png", "hero-2.png", "hero-3.png"]
    );
    assert_eq!(results[1].files, ["lamp-1.png"]);
    assert_eq!(
        std::fs::read(dir.path().join("hero-1.png")).unwrap(),
        b"not ours",
        "a file already there is left alone"
    );

    // A saved image lost since is downloaded again under its own name, not beside it.
    std::fs::remove_file(dir.path().join("hero-2.png")).unwrap();
    let again = runner().run(input(&text, &defaults)).await.unwrap();
    assert_eq!(
        again.read_results().unwrap()[0].files,
        ["hero-1-2.png", "hero-2.png", "hero-3.png"]
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hero-1-2.png",
            "hero-1.png",
            "hero-2.png",
            "hero-3.png",
            "lamp-1.png"
        ]
    );
}

#[tokio::test]
async fn a_template_of_prompt_and_provider_stays_inside_the_folder() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[json!({"id": "../../escape", "prompt": "A Lighthouse at dusk!"})]);
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let options = BatchOptions::new(dir.path())
        .names(FileNames::parse("{provider}-{id}-{prompt}-{n}").unwrap());
    let report = BatchRunner::new(imggen_with(&server, &time, true), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();
    let files = &report.read_results().unwrap()[0].files;
    assert_eq!(files, &["runbase-.._.._escape-a-lighthouse-at-dusk-1.png"]);
    assert!(dir.path().join(&files[0]).is_file());
}
