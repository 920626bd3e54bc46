//! Images in the format asked for: converted after the download is verified and saved, the
//! provider's file removed only once the converted one is written, and a conversion that
//! fails leaving the paid image as it came.

use std::sync::Arc;
use std::time::Duration;

use imggen_core::batch::{BatchEventKind, BatchOptions, BatchRunner, RequestDefaults};
use imggen_core::{
    Conversion, DownloadOptions, GenerateOptions, GenerationRequest, ImageData, ImageFormat, Imggen,
};
use imggen_http::time::ManualTime;
use imggen_mock::{MockConfig, Profile};
use imggen_types::media;
use serde_json::json;

use crate::batch::{imggen_with, input, lines, mock};
use crate::fake::{Fake, PNG};

const S: Duration = Duration::from_secs(1);

fn imggen(time: &ManualTime, fake: &Fake) -> Imggen {
    Imggen::builder()
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time.clone()))
        .provider(fake.clone())
        .build()
        .unwrap()
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn file_of(data: &ImageData) -> String {
    match data {
        ImageData::File(path) => path.file_name().unwrap().to_string_lossy().into_owned(),
        other => panic!("expected a file, got {other:?}"),
    }
}

#[tokio::test]
async fn a_png_is_saved_as_a_jpeg_and_the_png_is_gone() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 5 * S);
    fake.serve_body(&imggen_mock::render_png("a cat", 1, 40, 30));
    let dir = tempfile::tempdir().unwrap();
    let options = GenerateOptions::default()
        .download(DownloadOptions::to_dir(dir.path()).convert(Conversion::to(ImageFormat::Jpeg)));

    let generation = imggen(&time, &fake)
        .generate(&GenerationRequest::new("a cat"), &options)
        .await
        .unwrap();

    let image = &generation.images[0];
    assert_eq!(file_of(&image.data), "task_1-1.jpg");
    assert_eq!(image.original, None);
    assert_eq!(image.conversion_error, None);
    assert_eq!(image.media_type, "image/jpeg");
    assert_eq!((image.width, image.height), (Some(40), Some(30)));
    let bytes = std::fs::read(dir.path().join("task_1-1.jpg")).unwrap();
    assert_eq!(image.bytes_len, bytes.len() as u64);
    let info = media::sniff(&bytes).unwrap();
    assert_eq!(info.format, media::ImageFormat::Jpeg);
    assert_eq!((info.width, info.height), (Some(40), Some(30)));
    assert_eq!(
        listing(dir.path()),
        ["task_1-1.jpg"],
        "no png, no temporary file"
    );
    assert!(generation.warnings.is_empty());
}

#[tokio::test]
async fn keep_original_leaves_both_files_and_names_both() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 5 * S);
    let png = imggen_mock::render_png("a cat", 1, 16, 16);
    fake.serve_body(&png);
    let dir = tempfile::tempdir().unwrap();
    // Someone else's file under the name the converted one would take.
    std::fs::write(dir.path().join("task_1-1.webp"), b"not ours").unwrap();
    let options = GenerateOptions::default().download(
        DownloadOptions::to_dir(dir.path())
            .convert(Conversion::to(ImageFormat::Webp).keep_original(true)),
    );

    let generation = imggen(&time, &fake)
        .generate(&GenerationRequest::new("a cat"), &options)
        .await
        .unwrap();

    let image = &generation.images[0];
    assert_eq!(file_of(&image.data), "task_1-1-2.webp");
    assert_eq!(file_of(image.original.as_ref().unwrap()), "task_1-1.png");
    assert_eq!(std::fs::read(dir.path().join("task_1-1.png")).unwrap(), png);
    assert_eq!(
        std::fs::read(dir.path().join("task_1-1.webp")).unwrap(),
        b"not ours",
        "a file already there is never replaced"
    );
    assert_eq!(
        listing(dir.path()),
        ["task_1-1-2.webp", "task_1-1.png", "task_1-1.webp"]
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_decoded_stays_as_it_came_with_a_warning() {
    let time = ManualTime::new();
    // The fake's PNG has a header and an end but no pixel data: it passes the download's
    // checks and cannot be decoded.
    let fake = Fake::new(crate::GPTIMG, &time, 5 * S);
    let dir = tempfile::tempdir().unwrap();
    let options = GenerateOptions::default()
        .download(DownloadOptions::to_dir(dir.path()).convert(Conversion::to(ImageFormat::Jpeg)));

    let generation = imggen(&time, &fake)
        .generate(&GenerationRequest::new("a cat"), &options)
        .await
        .unwrap();

    let image = &generation.images[0];
    assert_eq!(file_of(&image.data), "task_1-1.png");
    assert_eq!(image.media_type, "image/png");
    assert_eq!(image.bytes_len, PNG.len() as u64);
    let problem = image.conversion_error.as_deref().unwrap();
    assert!(
        problem.starts_with("could not decode the image/png to make a jpeg"),
        "{problem}"
    );
    assert_eq!(std::fs::read(dir.path().join("task_1-1.png")).unwrap(), PNG);
    assert_eq!(listing(dir.path()), ["task_1-1.png"]);
    assert_eq!(generation.warnings.len(), 1);
    let warning = generation.warnings[0].to_string();
    assert!(
        warning.contains("image 1 of task task_1 kept as it came"),
        "{warning}"
    );
}

#[tokio::test]
async fn an_image_already_in_the_format_is_not_encoded_again() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 5 * S);
    let dir = tempfile::tempdir().unwrap();
    // The fake's PNG cannot be decoded: converting it would fail and say so.
    let options = GenerateOptions::default()
        .download(DownloadOptions::to_dir(dir.path()).convert(Conversion::to(ImageFormat::Png)));

    let generation = imggen(&time, &fake)
        .generate(&GenerationRequest::new("a cat"), &options)
        .await
        .unwrap();

    let image = &generation.images[0];
    assert_eq!(image.conversion_error, None);
    assert_eq!(std::fs::read(dir.path().join("task_1-1.png")).unwrap(), PNG);
}

#[tokio::test]
async fn bytes_in_memory_are_converted_too() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::GPTIMG, &time, 5 * S);
    let png = imggen_mock::render_png("a cat", 1, 8, 8);
    fake.serve_body(&png);
    let options = GenerateOptions::default().download(
        DownloadOptions::memory().convert(Conversion::to(ImageFormat::Webp).keep_original(true)),
    );

    let generation = imggen(&time, &fake)
        .generate(&GenerationRequest::new("a cat"), &options)
        .await
        .unwrap();

    let image = &generation.images[0];
    let ImageData::Bytes(bytes) = &image.data else {
        panic!("expected bytes, got {:?}", image.data);
    };
    assert_eq!(
        media::sniff(bytes).unwrap().format,
        media::ImageFormat::Webp
    );
    assert_eq!(image.media_type, "image/webp");
    assert_eq!(image.bytes_len, bytes.len() as u64);
    assert_eq!(image.original, Some(ImageData::Bytes(png.into())));
}

#[tokio::test]
async fn a_batch_journals_the_converted_files_and_writes_a_lost_one_again_in_place() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[
        json!({"id": "hero", "prompt": "A lighthouse", "n": 2}),
        json!({"id": "lamp", "prompt": "A lamp"}),
    ]);
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let runner = |keep: bool| {
        BatchRunner::new(
            imggen_with(&server, &time, true),
            BatchOptions::new(dir.path())
                .convert(Conversion::to(ImageFormat::Webp).keep_original(keep)),
        )
    };
    let report = runner(true).run(input(&text, &defaults)).await.unwrap();
    let results = report.read_results().unwrap();
    assert_eq!(
        results[0].files,
        ["hero-1.webp", "hero-1.png", "hero-2.webp", "hero-2.png"]
    );
    assert_eq!(results[1].files, ["lamp-1.webp", "lamp-1.png"]);
    let webp = std::fs::read(dir.path().join("hero-2.webp")).unwrap();
    assert_eq!(
        media::sniff(&webp).unwrap().format,
        media::ImageFormat::Webp
    );

    // A converted file lost since is converted again under its own name, beside its kept
    // original, not beside another image's.
    std::fs::remove_file(dir.path().join("hero-2.webp")).unwrap();
    let again = runner(true).run(input(&text, &defaults)).await.unwrap();
    assert_eq!(
        again.read_results().unwrap()[0].files,
        ["hero-1.webp", "hero-1.png", "hero-2.webp", "hero-2.png"]
    );
    assert_eq!(
        listing(dir.path())
            .into_iter()
            .filter(|name| name.ends_with(".png") || name.ends_with(".webp"))
            .collect::<Vec<_>>(),
        [
            "hero-1.png",
            "hero-1.webp",
            "hero-2.png",
            "hero-2.webp",
            "lamp-1.png",
            "lamp-1.webp"
        ]
    );
}

#[tokio::test]
async fn a_batch_image_that_cannot_be_converted_is_done_with_a_warning() {
    let time = ManualTime::new();
    let fake = Fake::new(crate::RUNBASE, &time, 5 * S);
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[json!({"id": "hero", "prompt": "A lighthouse"})]);
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&warnings);
    let options = BatchOptions::new(dir.path())
        .convert(Conversion::to(ImageFormat::Jpeg))
        .on_event(move |event| {
            if let BatchEventKind::Warning { warning } = &event.kind {
                seen.lock().unwrap().push(warning.to_string());
            }
        });

    let report = BatchRunner::new(imggen(&time, &fake), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();

    let results = report.read_results().unwrap();
    assert_eq!(
        results[0].status.as_str(),
        "done",
        "a paid image is not a failure"
    );
    assert_eq!(results[0].files, ["hero-1.png"]);
    let warnings = warnings.lock().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("kept as it came"), "{}", warnings[0]);
}
