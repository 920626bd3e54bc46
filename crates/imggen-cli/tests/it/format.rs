//! `--format`, `--jpeg-quality` and `--keep-original`: the emulator makes PNGs, so every file
//! in another format was converted here; what `--json`, stdout and `results.jsonl` name is
//! what is on disk.

use std::path::Path;

use serde_json::Value;

use crate::{
    Env, assert_code, bare, batch_json, files_in, instant, json_output, png_size, printed_paths,
    run, stderr,
};

/// Decodes `path` with the image crate: its format (from its bytes) and size.
#[track_caller]
fn decoded(path: &Path) -> (image::ImageFormat, u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let format = image::guess_format(&bytes).unwrap();
    let image = image::load_from_memory(&bytes).unwrap();
    (format, image.width(), image.height())
}

fn names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn format_jpeg_writes_a_real_jpeg_of_the_pngs_size_offline() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(
        dir.path(),
        &["generate", "a cat", "--format", "jpeg", "--out", "cats"],
    ))
    .await;
    assert_code(&output, 0);
    let out = dir.path().join("cats");
    let files = files_in(&out);
    assert_eq!(files.len(), 1, "the png is gone: {files:?}");
    assert_eq!(printed_paths(&output, dir.path()), files);
    assert!(names(&files)[0].ends_with(".jpg"), "{files:?}");
    // The emulator's images are 256×256 at 1:1.
    assert_eq!(decoded(&files[0]), (image::ImageFormat::Jpeg, 256, 256));
}

#[tokio::test]
async fn keep_original_leaves_both_files_and_json_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(
        dir.path(),
        &[
            "generate",
            "a cat",
            "--format",
            "jpg",
            "--jpeg-quality",
            "40",
            "--keep-original",
            "--json",
        ],
    ))
    .await;
    assert_code(&output, 0);
    let json = json_output(&output);
    let image = &json["images"][0];
    let path = dir.path().join(image["path"].as_str().unwrap());
    let original = dir.path().join(image["original_path"].as_str().unwrap());
    assert_eq!(
        files_in(&dir.path().join("imggen-out")),
        [path.clone(), original.clone()],
        "{json:#}"
    );
    assert_eq!(image["media_type"], "image/jpeg");
    assert_eq!(
        image["bytes"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len(),
        "the size of the converted file"
    );
    assert_eq!(decoded(&path), (image::ImageFormat::Jpeg, 256, 256));
    assert_eq!(png_size(&original), (256, 256));
}

#[tokio::test]
async fn a_batch_with_format_webp_writes_webp_files_and_results_name_them() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("prompts.jsonl"),
        "{\"id\": \"hero\", \"prompt\": \"A lighthouse\", \"n\": 2}\n{\"id\": \"lamp\", \"prompt\": \"A lamp\"}\n",
    )
    .unwrap();
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--provider",
            "gptimg",
            "--poll-interval",
            "0.05",
            "--format",
            "webp",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let summary = batch_json(&output);
    assert_eq!(summary["counts"]["done"], 2, "{summary:#}");
    let out = env.out_dir();
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let files: Vec<&str> = lines
        .iter()
        .flat_map(|line| line["files"].as_array().unwrap())
        .map(|file| file.as_str().unwrap())
        .collect();
    assert_eq!(files, ["hero-1.webp", "hero-2.webp", "lamp-1.webp"]);
    for file in &files {
        assert_eq!(
            decoded(&out.join(file)).0,
            image::ImageFormat::WebP,
            "{file}"
        );
    }
    let images: Vec<String> = names(&files_in(&out))
        .into_iter()
        .filter(|name| name.ends_with(".png") || name.ends_with(".webp"))
        .collect();
    assert_eq!(images, ["hero-1.webp", "hero-2.webp", "lamp-1.webp"]);
}

#[tokio::test]
async fn conversion_flags_that_do_not_fit_are_usage_errors_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    for (args, says) in [
        (
            &["--format", "png", "--jpeg-quality", "80"][..],
            "--jpeg-quality applies to --format jpeg only, not --format png",
        ),
        (&["--jpeg-quality", "80"][..], "--format"),
        (&["--keep-original"][..], "--format"),
        (&["--format", "jpeg", "--jpeg-quality", "0"][..], "1..=100"),
        (
            &["--format", "jpeg", "--jpeg-quality", "101"][..],
            "1..=100",
        ),
        (&["--format", "gif"][..], "png, jpeg (or jpg), webp"),
    ] {
        for command in [&["generate", "a cat"][..], &["wait", "--pending"][..]] {
            let mut all = command.to_vec();
            all.extend_from_slice(args);
            let output = env.run(&all).await;
            assert_code(&output, 2);
            let stderr = stderr(&output);
            assert!(stderr.contains(says), "{all:?}: {stderr}");
        }
    }
    assert_eq!(env.requests(), 0, "nothing was sent");
}
