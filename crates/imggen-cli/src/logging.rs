//! Logs on stderr only: `-v` levels or `RUST_LOG`. The clients hold API keys as secrets, so
//! no level shows one.

use std::io::IsTerminal as _;
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::progress::Progress;

/// The filter when `RUST_LOG` is not set: warnings by default, more with each `-v`, errors
/// only with `-q`. `extra` adds directives (the emulator's request log for `imggen mock`).
pub(crate) fn default_directives(verbose: u8, quiet: bool, extra: &str) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    if extra.is_empty() || verbose > 0 || quiet {
        level.to_owned()
    } else {
        format!("{level},{extra}")
    }
}

/// Installs the subscriber: formatted logs on stderr, drawn above the live task lines.
pub(crate) fn init(verbose: u8, quiet: bool, extra: &str, progress: &Arc<Progress>) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| EnvFilter::try_new(value).ok());
    let filter = from_env.unwrap_or_else(|| {
        EnvFilter::try_new(default_directives(verbose, quiet, extra))
            .unwrap_or_else(|_| EnvFilter::new("warn"))
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(progress.log_writer())
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    // A second call (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(logs).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_adds_a_level_and_q_keeps_errors_only() {
        assert_eq!(default_directives(0, false, ""), "warn");
        assert_eq!(default_directives(1, false, ""), "info");
        assert_eq!(default_directives(2, false, ""), "debug");
        assert_eq!(default_directives(5, false, ""), "trace");
        assert_eq!(default_directives(0, true, ""), "error");
        assert_eq!(
            default_directives(0, false, "imggen_mock=info"),
            "warn,imggen_mock=info"
        );
    }
}
