//! The API key never reaches stdout or stderr, at any log level, on success or failure.

use imggen_mock::Balance;
use imggen_types::Credits;

use crate::{Env, KEY, assert_code, instant, stderr, stdout};

/// The part of [`KEY`] that is the secret: the mock's key labels show the first few
/// characters, and so may logs.
const SECRET_PART: &str = "test-key-0123456789";

/// The key, or the part of it that is secret, appears on neither stream.
#[track_caller]
pub fn assert_no_key(output: &std::process::Output) {
    for (name, text) in [("stdout", stdout(output)), ("stderr", stderr(output))] {
        assert!(!text.contains(KEY), "the key is in {name}");
        assert!(!text.contains(SECRET_PART), "part of the key is in {name}");
    }
}

#[tokio::test]
async fn trace_logs_of_every_provider_never_show_the_key() {
    let env = Env::start(instant()).await;
    for provider in ["gptimg", "runblob", "runbase"] {
        let mut cmd = env.cmd(&[
            "generate",
            "a fox",
            "--provider",
            provider,
            "--poll-interval",
            "0.05",
        ]);
        cmd.env("RUST_LOG", "trace");
        let output = crate::run(cmd).await;
        assert_code(&output, 0);
        assert!(
            stderr(&output).contains("TRACE"),
            "trace logs were written ({provider})"
        );
        assert_no_key(&output);
    }
}

#[tokio::test]
async fn vvv_and_an_error_answer_never_show_the_key() {
    let env = Env::start(instant()).await;
    env.server.set_balance(KEY, Balance::Gptimg(Credits(0)));
    let output = env
        .run(&[
            "-vvv",
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--json",
        ])
        .await;
    assert_code(&output, 3);
    assert!(stderr(&output).contains("DEBUG"), "-vvv logs were written");
    assert_no_key(&output);

    let output = env
        .run(&["-vvv", "submit", "a fox", "--provider", "runbase"])
        .await;
    assert_code(&output, 0);
    assert_no_key(&output);
}
