//! With no key set, `imggen generate` runs the emulator in-process and says so in one line.

use crate::{assert_code, bare, files_in, json_output, png_size, printed_paths, run, stderr};

#[tokio::test]
async fn with_no_key_the_first_readme_command_writes_a_png_offline() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(
        dir.path(),
        &["generate", "a lighthouse on a cliff at dusk"],
    ))
    .await;
    assert_code(&output, 0);
    let printed = printed_paths(&output, dir.path());
    assert_eq!(files_in(&dir.path().join("imggen-out")), printed);
    assert_eq!(printed.len(), 1);
    assert_eq!(png_size(&printed[0]), (256, 256), "1:1 by default");

    let stderr = stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the emulator notice and what the run made:\n{stderr}"
    );
    assert!(
        lines[1].starts_with("imggen: 1 image · 2 credits · ")
            && lines[1].ends_with(" s (the emulator charges nothing)"),
        "{}",
        lines[1]
    );
    let line = lines[0];
    assert!(line.contains("no API key is set"), "{line}");
    assert!(line.contains("built-in emulator"), "{line}");
    for variable in ["GPTIMG_API_KEY", "RUNBLOB_API_KEY", "RUNBASE_API_KEY"] {
        assert!(line.contains(variable), "names {variable}: {line}");
    }
}

#[tokio::test]
async fn provider_mock_says_it_was_asked_for_and_reports_as_mock() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare(
        dir.path(),
        &[
            "generate",
            "a fox",
            "--provider",
            "mock",
            "-n",
            "3",
            "--aspect-ratio",
            "21:9",
            "--json",
        ],
    );
    // A key is set, yet --provider mock is what was asked for.
    cmd.env("GPTIMG_API_KEY", "sk-never-used");
    let output = run(cmd).await;
    assert_code(&output, 0);
    let json = json_output(&output);
    assert_eq!(json["provider"], "mock");
    assert_eq!(json["images"].as_array().unwrap().len(), 3);
    assert_eq!(json["warnings"][0]["provider"], "mock");
    assert!(
        stderr(&output).contains("--provider mock"),
        "{}",
        stderr(&output)
    );
    let path = dir.path().join(json["images"][0]["path"].as_str().unwrap());
    assert_eq!(png_size(&path), (256, 110), "21:9");
}

#[tokio::test]
async fn quiet_keeps_stderr_empty_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), &["-q", "generate", "a fox"])).await;
    assert_code(&output, 0);
    assert_eq!(stderr(&output), "");
    assert_eq!(printed_paths(&output, dir.path()).len(), 1);
}

#[tokio::test]
async fn submit_refuses_the_emulator_that_would_die_with_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), &["submit", "a fox"])).await;
    assert_code(&output, 2);
    let stderr = stderr(&output);
    assert!(stderr.contains("stops when imggen exits"), "{stderr}");
    assert!(
        stderr.contains("hint: set a provider's API key, or run `imggen mock`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_named_provider_without_its_key_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(
        dir.path(),
        &["generate", "a fox", "--provider", "runbase"],
    ))
    .await;
    assert_code(&output, 2);
    let stderr = stderr(&output);
    assert!(
        stderr.starts_with("imggen: runbase: no API key: set RUNBASE_API_KEY\n"),
        "{stderr}"
    );
}
