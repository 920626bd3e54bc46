//! `imggen-mock`: the offline emulator of runblob, gptimg.co and runbase, on one port.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Run an offline emulator of the runblob, gptimg.co and runbase image APIs.
///
/// Prints the base URL and the variables to export, logs one line per request to stderr, and
/// stops on Ctrl-C. `RUST_LOG` overrides the log filter (default `imggen_mock=info`).
#[derive(Parser)]
#[command(name = "imggen-mock", version)]
struct Cli {
    #[command(flatten)]
    mock: imggen_mock::cli::MockArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("imggen_mock=info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())
        .and_then(|runtime| {
            runtime
                .block_on(imggen_mock::cli::run(cli.mock, &mut std::io::stdout()))
                .map_err(|error| error_chain(&error))
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "imggen-mock: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `could not listen on 127.0.0.1:80: permission denied`: the error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
