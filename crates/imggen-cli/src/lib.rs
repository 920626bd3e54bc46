//! The `imggen` command: real images from a prompt through runblob, gptimg.co or runbase —
//! or offline, through the built-in emulator, when no API key is set.
//!
//! ```sh
//! imggen generate "a lighthouse on a cliff at dusk"          # ./imggen-out/<task>-1.png
//! imggen generate "a fox" --provider runbase --aspect-ratio 16:9 --json
//! imggen submit "a fox" > job.jsonl && imggen wait @job.jsonl
//! imggen batch prompts.jsonl --out renders   # run it again to resume, never paying twice
//! ```
//!
//! A thin layer over [`imggen_core`]: the argument types ([`args`]), the `--json` output
//! types ([`output`]), the exit codes ([`exit`]) and their formatting. Planning, submitting,
//! waiting, fallback, downloads and cost are imggen-core's.

pub mod args;
pub mod exit;
pub mod output;

mod commands;
mod context;
mod gallery;
mod handles;
mod history;
mod listen;
mod logging;
mod money;
mod progress;
mod quote;
mod report;
mod request;
mod route;
mod stdout;
mod tasks;
mod usage;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use args::Cli;
pub use exit::Category;
pub use history::HistoryEntry;
pub use output::{
    BatchCounts, BatchOutput, CostOutput, ErrorOutput, GenerateOutput, ImageOutput,
    InvalidLineOutput, QuoteOutput, QuotedRequestOutput, QuotedTaskOutput, TaskOutput,
    UnknownOutput, WarningOutput,
};

/// Runs `imggen` with the process's arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}

/// Runs `imggen` with `args` (the first is the program name) and returns its exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(mut error) => {
            usage::explain(&mut error, &args);
            return usage_error(&error, &args);
        }
    };
    if let Some(error) = usage::check(&cli) {
        return usage_error(&error, &args);
    }
    let progress = progress::Progress::new(
        cli.global.progress,
        cli.global.quiet,
        cli.global.progress_interval,
    );
    let extra = match cli.command {
        // `imggen mock` logs one line per request, as `imggen-mock` does.
        args::Command::Mock(_) => "imggen_mock=info",
        _ => "",
    };
    logging::init(cli.global.verbose, cli.global.quiet, extra, &progress);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            progress.eprint(&[format!(
                "imggen: could not start the async runtime: {error}"
            )]);
            return ExitCode::from(exit::OTHER);
        }
    };
    let code = runtime.block_on(async {
        let cancel = imggen_core::CancellationToken::new();
        let waits = matches!(
            cli.command,
            args::Command::Generate(_)
                | args::Command::Wait(_)
                | args::Command::Submit(_)
                | args::Command::Batch(_)
        );
        if waits {
            // The first Ctrl-C stops the waits, which then print the handles that resume
            // them; a second one ends the process at once.
            let mut interrupts = Interrupts::listen();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                if interrupts.next().await {
                    cancel.cancel();
                    if interrupts.next().await {
                        std::process::exit(130);
                    }
                }
            });
        }
        let warn = std::sync::Arc::clone(&progress);
        let ctx = context::Ctx {
            progress: std::sync::Arc::clone(&progress),
            history: std::sync::Arc::new(history::History::new(move |message| {
                warn.warning(message);
            })),
            cancel,
        };
        commands::execute(cli.command, &ctx).await
    });
    // Tasks still running (a create that outlived a cancelled wait has already reported its
    // handle) must not hold the process open.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// clap's message (help and version exit 0), and with `--json` the error object too. With
/// `--progress jsonl` the message is an `error` event instead: stderr stays JSON only.
fn usage_error(error: &clap::Error, args: &[OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::from(exit::SUCCESS);
    }
    let message = error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let mut failure = exit::Failure::usage(message);
    if let Some(tip) = usage::tip(error) {
        failure = failure.hint(tip);
    }
    if jsonl_asked(args) {
        let progress = progress::Progress::new(
            args::ProgressMode::Jsonl,
            false,
            std::time::Duration::from_secs(10),
        );
        progress.failure(&failure, &[]);
    } else {
        let _ = error.print();
    }
    if args.iter().any(|arg| arg == "--json") {
        // `batch` prints its own object.
        let batch = usage::subcommand_of(args).is_some_and(|command| command == "batch");
        let text = if batch {
            serde_json::to_string(&BatchOutput {
                error: Some(failure.to_output()),
                ..BatchOutput::default()
            })
        } else {
            serde_json::to_string(&GenerateOutput {
                error: Some(failure.to_output()),
                ..GenerateOutput::default()
            })
        };
        if let Ok(text) = text {
            let _ = stdout::write_json(&text);
        }
    }
    ExitCode::from(exit::USAGE)
}

/// Whether a command line clap refused asked for `--progress jsonl` (the last `--progress`
/// wins, as with clap; `IMGGEN_PROGRESS` when there is none).
fn jsonl_asked(args: &[OsString]) -> bool {
    let mut asked: Option<String> = None;
    let mut args = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if let Some(value) = arg.strip_prefix("--progress=") {
            asked = Some(value.to_owned());
        } else if arg == "--progress" {
            asked = args.next().map(|value| value.into_owned());
        }
    }
    asked
        .or_else(|| std::env::var("IMGGEN_PROGRESS").ok())
        .is_some_and(|mode| mode.trim() == "jsonl")
}

/// Ctrl-C, listened for from the moment [`Interrupts::listen`] returns (not from the first
/// poll), so an interrupt right after a task is created is never missed.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn listen() -> Self {
        Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// Waits for the next Ctrl-C; `false` when none can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            match &mut self.signal {
                Some(signal) => signal.recv().await.is_some(),
                None => false,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
