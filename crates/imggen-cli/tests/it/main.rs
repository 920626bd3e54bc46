//! The `imggen` binary end to end, against imggen-mock on 127.0.0.1: the emulator runs in the
//! test process (its URL reaches the binary through `*_BASE_URL`), or in the binary itself
//! when no key is set.

mod batch;
mod commands;
mod exit_codes;
mod format;
mod gallery;
mod generate;
mod history;
mod hostile;
mod money;
mod names;
mod offline;
mod progress;
mod resume;
mod secrets;
mod validation;
mod webhooks;
mod wording;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use assert_cmd::Command;
use imggen_mock::{MockConfig, MockServer, Profile};
use serde_json::Value;

/// The key every test hands the binary (runbase wants `sk-`).
pub const KEY: &str = "sk-cli-test-key-0123456789";

/// Every variable that picks a provider, a key or a base URL: cleared for every run.
const PROVIDER_VARS: [&str; 7] = [
    "GPTIMG_API_KEY",
    "RUNBLOB_API_KEY",
    "RUNBASE_API_KEY",
    "GPTIMG_BASE_URL",
    "RUNBLOB_BASE_URL",
    "RUNBASE_BASE_URL",
    "RUST_LOG",
];

/// A failure guard for one run of the binary, never a delay.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Tasks that are done the moment they are created, on the real clock.
pub fn instant() -> MockConfig {
    MockConfig::default().profile(Profile::INSTANT)
}

/// An emulator in this process and a fresh working directory for the binary.
pub struct Env {
    /// The emulator.
    pub server: MockServer,
    /// The binary's working directory (`./imggen-out` lands here).
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Starts the emulator with `config`.
    pub async fn start(config: MockConfig) -> Env {
        Env {
            server: MockServer::start(config)
                .await
                .expect("the emulator starts"),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `imggen ARGS` with every provider's key set to [`KEY`] and pointed at the emulator.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = bare(self.dir.path(), args);
        for (name, value) in self.server.env() {
            cmd.env(name, value);
        }
        for name in ["GPTIMG_API_KEY", "RUNBLOB_API_KEY", "RUNBASE_API_KEY"] {
            cmd.env(name, KEY);
        }
        cmd
    }

    /// Runs `imggen ARGS` (see [`cmd`](Self::cmd)).
    pub async fn run(&self, args: &[&str]) -> Output {
        run(self.cmd(args)).await
    }

    /// `./imggen-out` of the binary.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("imggen-out")
    }

    /// How many requests reached the emulator's provider endpoints and files so far.
    pub fn requests(&self) -> u64 {
        self.server.requests().total
    }
}

/// `imggen ARGS` in `dir` with no provider variable at all, and `--progress none`
/// (`IMGGEN_PROGRESS`): stderr holds only notices, warnings and errors, which the other
/// tests read line by line. `progress.rs` removes it to test the progress itself.
pub fn bare(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imggen"));
    cmd.args(args).current_dir(dir).timeout(RUN_LIMIT);
    for name in PROVIDER_VARS {
        cmd.env_remove(name);
    }
    // The task history of each test's runs stays in its own folder.
    cmd.env("IMGGEN_PROGRESS", "none")
        .env("IMGGEN_HOME", dir.join(".imggen-home"))
        .env_remove("IMGGEN_MAX_COST")
        .env_remove("IMGGEN_PROGRESS_INTERVAL");
    cmd
}

/// Runs a command off the async runtime, so the emulator in this process keeps serving.
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .expect("the run finishes")
}

/// The exit code, with both streams in the message when it is not `expected`.
#[track_caller]
pub fn assert_code(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stdout as the one JSON object `--json` prints, checked against its published schema.
#[track_caller]
pub fn json_output(output: &Output) -> Value {
    json_output_of(output, "GenerateOutput")
}

/// stdout as the one JSON object `batch --json` prints, checked against its published schema.
#[track_caller]
pub fn batch_json(output: &Output) -> Value {
    json_output_of(output, "BatchOutput")
}

/// stdout as the one JSON object `--dry-run --json` prints, checked against its schema.
#[track_caller]
pub fn quote_json(output: &Output) -> Value {
    json_output_of(output, "QuoteOutput")
}

/// stdout as the JSON array `imggen list --json` prints, checked against its schema.
#[track_caller]
pub fn list_json(output: &Output) -> Value {
    json_output_of(output, "ListOutput")
}

/// stdout as one JSON object, checked against `schemas/cli/<schema>.schema.json`.
#[track_caller]
fn json_output_of(output: &Output, schema_name: &str) -> Value {
    let text = stdout(output);
    let mut lines = text.lines();
    let line = lines.next().unwrap_or_default();
    assert!(
        lines.next().is_none(),
        "--json prints exactly one line:\n{text}"
    );
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|err| panic!("not JSON ({err}):\n{text}\nstderr:\n{}", stderr(output)));
    let validator = jsonschema::validator_for(&schema(schema_name)).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the output does not match schemas/cli/{schema_name}.schema.json:\n{}\n{value:#}",
        errors.join("\n")
    );
    value
}

/// A published schema, read once per test binary.
fn schema(name: &str) -> Value {
    static SCHEMAS: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    let mut schemas = SCHEMAS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    schemas
        .entry(name.to_owned())
        .or_insert_with(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../schemas/cli/{name}.schema.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
                panic!("{}: {err}; run `cargo xtask schema`", path.display())
            });
            serde_json::from_str(&text).unwrap()
        })
        .clone()
}

/// A PNG's width and height, after checking it is a whole PNG file.
#[track_caller]
pub fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}", path.display());
    // The IEND chunk and its fixed CRC end every complete PNG.
    assert!(
        bytes.ends_with(&[b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]),
        "{} is cut short",
        path.display()
    );
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// The paths printed on stdout, one per line, relative to `dir` when relative.
pub fn printed_paths(output: &Output, dir: &Path) -> Vec<PathBuf> {
    stdout(output).lines().map(|line| dir.join(line)).collect()
}

/// The files in a directory, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}
