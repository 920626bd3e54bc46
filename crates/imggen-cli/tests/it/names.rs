//! Files named as the person asked: `--name` templates, a batch's line ids, and never over a
//! file that is already there.

use crate::{Env, assert_code, instant, printed_paths, stderr};

#[tokio::test]
async fn generate_names_files_from_the_template_and_never_replaces_one() {
    let env = Env::start(instant()).await;
    let out = env.dir.path().join("renders");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a-red-fox-1.png"), b"mine").unwrap();
    let output = env
        .run(&[
            "generate",
            "A red fox!",
            "--provider",
            "runbase",
            "-n",
            "2",
            "--allow-extra-tasks",
            "--out",
            "renders",
            "--name",
            "{prompt}-{n}",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let mut names: Vec<String> = printed_paths(&output, env.dir.path())
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Two runbase tasks, numbered across the request; the name taken gets -2.
    assert_eq!(names, ["a-red-fox-1-2.png", "a-red-fox-2.png"]);
    assert_eq!(std::fs::read(out.join("a-red-fox-1.png")).unwrap(), b"mine");
}

#[tokio::test]
async fn a_bad_template_is_refused_before_anything_is_sent() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&["generate", "a fox", "--name", "{size}-{n}"])
        .await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("{size} is not a field"),
        "{}",
        stderr(&output)
    );
    assert_eq!(env.requests(), 0);
}

#[tokio::test]
async fn a_batch_names_images_after_each_lines_id() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("b.jsonl"),
        "{\"id\": \"hero\", \"prompt\": \"A lighthouse\"}\n{\"prompt\": \"A lamp\"}\n",
    )
    .unwrap();
    let output = env
        .run(&[
            "batch",
            "b.jsonl",
            "--provider",
            "gptimg",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let out = env.out_dir();
    assert!(out.join("hero-1.png").is_file());
    assert!(
        out.join("2-1.png").is_file(),
        "a line without an id is named by its number"
    );
}
