//! `providers`, `completions`, `mock`, `--help`, and usage errors.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::{assert_code, bare, json_output, run, stderr, stdout};

#[tokio::test]
async fn providers_shows_a_table_with_the_emulator_and_which_keys_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare(dir.path(), &["providers"]);
    cmd.env("RUNBASE_API_KEY", "sk-whatever");
    let output = run(cmd).await;
    assert_code(&output, 0);
    let table = stdout(&output);
    assert!(
        table.starts_with("gptimg\n  API key     GPTIMG_API_KEY (not set)\n"),
        "a block per provider: {table}"
    );
    assert!(table.contains("RUNBASE_API_KEY (set)"), "{table}");
    assert!(table.contains("GPTIMG_API_KEY (not set)"), "{table}");
    assert!(
        table.contains("gptimg's protocol (n up to 4, 13 ratios"),
        "{table}"
    );
    assert!(!table.contains("sk-whatever"));
}

#[tokio::test]
async fn providers_json_lists_all_four() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), &["providers", "--json"])).await;
    assert_code(&output, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let names: Vec<&str> = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    // imggen-core's one default order, then the emulator.
    assert_eq!(names, ["gptimg", "runblob", "runbase", "mock"]);
}

#[tokio::test]
async fn help_documents_the_exit_codes_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), &["generate", "--help"])).await;
    assert_code(&output, 0);
    let help = stdout(&output);
    for expected in [
        "--poll-interval <SECS>",
        "--fallback <P1,P2>",
        "6  the outcome of a create is unknown",
        "5  paid tasks were left uncollected",
    ] {
        assert!(help.contains(expected), "{expected} missing:\n{help}");
    }
    let output = run(bare(dir.path(), &["--help"])).await;
    assert!(stdout(&output).contains("GPTIMG_BASE_URL"));
}

#[tokio::test]
async fn completions_are_printed_for_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(dir.path(), &["completions", "bash"])).await;
    assert_code(&output, 0);
    let script = stdout(&output);
    assert!(script.contains("_imggen()"), "{script}");
    assert!(script.contains("--aspect-ratio"));
}

#[tokio::test]
async fn a_usage_error_with_json_still_prints_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(bare(
        dir.path(),
        &["generate", "--json", "-n", "many", "a fox"],
    ))
    .await;
    assert_code(&output, 2);
    let json = json_output(&output);
    assert_eq!(json["error"]["category"], "invalid");
    assert!(json["error"]["message"].as_str().unwrap().contains("many"));
    assert!(stderr(&output).contains("many"), "clap's own message too");
}

#[tokio::test]
async fn mock_prints_the_variables_to_export_and_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imggen"))
        .args(["mock", "--port", "0", "--profile", "instant"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("IMGGEN_MOCK_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pipe = child.stdout.take().unwrap();
    let _guard = Kill(child);
    // Read the banner up to its last export line: the signal that it serves.
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(pipe).lines() {
            let line = line.unwrap();
            let last = line.starts_with("export RUNBASE_API_KEY=");
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    });
    let banner = tokio::time::timeout(Duration::from_secs(30), banner)
        .await
        .expect("the banner is printed")
        .unwrap();
    let vars: Vec<(String, String)> = banner
        .iter()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    for expected in [
        "GPTIMG_BASE_URL",
        "RUNBLOB_BASE_URL",
        "RUNBASE_BASE_URL",
        "GPTIMG_API_KEY",
        "RUNBASE_API_KEY",
    ] {
        assert!(names.contains(&expected), "{expected} in {banner:?}");
    }

    // What it prints is all a second imggen needs.
    let mut generate = bare(
        dir.path(),
        &[
            "generate",
            "a fox",
            "--provider",
            "runbase",
            "--poll-interval",
            "0.05",
        ],
    );
    for (name, value) in &vars {
        generate.env(name, value);
    }
    let output = run(generate).await;
    assert_code(&output, 0);
    assert!(
        stdout(&output).starts_with("imggen-out/run_"),
        "{}",
        stdout(&output)
    );
}
