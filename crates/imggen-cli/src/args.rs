//! The command line, as clap types: every command, option and its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use imggen_core::ProviderId;
use imggen_types::AspectRatio;

/// The exit codes, as `--help` shows them (the crate README repeats them).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  anything else: a local I/O error, a download that failed (resume with `imggen wait`)
  2  usage or validation error: nothing was sent
  3  the provider refused the request and nothing was charged (bad key, no credits,
     rate limited after retries, every --fallback provider refused)
  4  the generation failed: the provider ran the task and it failed (providers refund it)
  5  the wait stopped before the task finished (--timeout passed, or Ctrl-C): the task goes
     on and is paid for; the handle printed resumes it with `imggen wait`
  6  the outcome of a create is unknown: its answer was lost, so the task may have been
     created and charged; imggen never resubmits it and prints every known fact";

const ENVIRONMENT_HELP: &str = "\
Environment:
  GPTIMG_API_KEY, RUNBLOB_API_KEY, RUNBASE_API_KEY   a provider's key; with none set, imggen
                                                     runs its built-in emulator (offline, free)
  GPTIMG_BASE_URL, RUNBLOB_BASE_URL, RUNBASE_BASE_URL  another base URL (e.g. `imggen mock`)
  RUST_LOG                                           log filter (overrides -v and -q)";

/// `imggen`: real images from a prompt through runblob, gptimg.co or runbase — offline
/// through the built-in emulator when no API key is set.
#[derive(Debug, Parser)]
#[command(
    name = "imggen",
    version,
    about = "Real images from a prompt through runblob, gptimg.co or runbase; offline when no API key is set",
    after_help = format!("{EXIT_CODES_HELP}\n\n{ENVIRONMENT_HELP}"),
)]
#[non_exhaustive]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct GlobalArgs {
    /// More logs on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides). API keys
    /// never appear at any level.
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 900)]
    pub verbose: u8,
    /// Errors only on stderr: no progress, no notices, no warnings.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 901
    )]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Generate images and save them: submit, wait, download.
    #[command(after_help = EXIT_CODES_HELP)]
    Generate(GenerateArgs),
    /// Create the tasks and print their handles (one JSON line each) at once, without waiting.
    #[command(after_help = EXIT_CODES_HELP)]
    Submit(RequestArgs),
    /// Read the status of tasks submitted earlier, once.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// Wait for tasks submitted earlier (by this or another process) and save their images.
    #[command(after_help = EXIT_CODES_HELP)]
    Wait(WaitArgs),
    /// What each provider (and the built-in emulator) can do.
    Providers(ProvidersArgs),
    /// Run the emulator of all three providers in the foreground and print the variables to
    /// export.
    Mock(MockCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// A provider on the command line: one of the three APIs, or the built-in emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
#[non_exhaustive]
pub enum ProviderChoice {
    /// gptimg.co (GPTIMG_API_KEY).
    Gptimg,
    /// runblob (RUNBLOB_API_KEY).
    Runblob,
    /// runbase (RUNBASE_API_KEY).
    Runbase,
    /// The built-in emulator, run in-process (gptimg's protocol; offline, free).
    Mock,
}

impl ProviderChoice {
    /// The API this choice speaks: the emulator speaks gptimg's protocol.
    pub fn protocol(self) -> ProviderId {
        match self {
            ProviderChoice::Gptimg | ProviderChoice::Mock => ProviderId::Gptimg,
            ProviderChoice::Runblob => ProviderId::Runblob,
            ProviderChoice::Runbase => ProviderId::Runbase,
        }
    }

    /// `gptimg`, `runblob`, `runbase` or `mock`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderChoice::Gptimg => "gptimg",
            ProviderChoice::Runblob => "runblob",
            ProviderChoice::Runbase => "runbase",
            ProviderChoice::Mock => "mock",
        }
    }
}

impl From<ProviderId> for ProviderChoice {
    fn from(id: ProviderId) -> Self {
        match id {
            ProviderId::Runblob => ProviderChoice::Runblob,
            ProviderId::Gptimg => ProviderChoice::Gptimg,
            ProviderId::Runbase => ProviderChoice::Runbase,
        }
    }
}

/// What to generate and where to send it (`generate` and `submit`).
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct RequestArgs {
    /// What to draw.
    #[arg(value_name = "PROMPT")]
    pub prompt: String,

    /// The provider. Default: the first of gptimg, runblob, runbase whose API key is set,
    /// else the built-in emulator (mock).
    #[arg(long, value_enum, value_name = "PROVIDER")]
    pub provider: Option<ProviderChoice>,

    /// The model (runbase: openai/gpt-image-2 by default, any model id accepted; runblob:
    /// gpt-5-2 or chatgpt-2.5; gptimg: gpt-image-2 only).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// The width:height ratio, e.g. 16:9 (each provider takes its own subset: see
    /// `imggen providers`).
    #[arg(long, visible_alias = "ratio", value_name = "W:H", value_parser = parse_aspect_ratio)]
    pub aspect_ratio: Option<AspectRatio>,

    /// Images to make. Above a provider's per-task maximum (gptimg 4, runblob and runbase 1)
    /// it is refused unless --allow-extra-tasks.
    #[arg(short = 'n', long, default_value_t = 1, value_name = "N")]
    pub count: u32,

    /// The quality (runbase openai/gpt-image-1.5: medium, high; runblob chatgpt-2.5: flare,
    /// sunburst).
    #[arg(long, value_name = "QUALITY")]
    pub quality: Option<String>,

    /// A reference image: an https:// (or http://) URL, a data: URI, or a local file (runblob
    /// only). Repeatable.
    #[arg(long = "ref", value_name = "PATH|URL")]
    pub references: Vec<String>,

    /// A provider-specific setting, KEY=VALUE (repeatable): runblob model, quality, background;
    /// runbase resolution (1K, 2K, 4K) and input.FIELD for any extra input field. Prefix
    /// the key with a provider (runbase.resolution=2K) to set it for that provider only.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,

    /// A URL the provider calls when the task ends (runblob only).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Providers to try in order, comma-separated, after --provider when it is given. The
    /// next is tried only when the previous one provably did not accept (and did not charge)
    /// the task.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "P1,P2")]
    pub fallback: Vec<ProviderChoice>,

    /// Also refuse what imggen would send unchecked (a model it does not know, whose price
    /// is unknown). Settings a provider cannot honour are always refused before anything is
    /// sent.
    #[arg(long)]
    pub strict: bool,

    /// Let -n above a provider's per-task maximum become several tasks, each charged.
    #[arg(long)]
    pub allow_extra_tasks: bool,

    /// Print exactly one JSON object on stdout (see schemas/cli/GenerateOutput.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// How long and how often to wait, and where the images go (`generate` and `wait`).
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct WaitingArgs {
    /// The directory the images are written to (created if missing).
    #[arg(short, long = "out", value_name = "DIR", default_value = "imggen-out")]
    pub out: PathBuf,

    /// The overall deadline in seconds (decimals allowed). When it passes, the handle is
    /// printed so `imggen wait` can resume; the task goes on.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Poll every SECS seconds (decimals allowed, e.g. 0.5) instead of the provider's
    /// schedule.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub poll_interval: Option<Duration>,
}

/// `imggen generate`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct GenerateArgs {
    /// What to generate.
    #[command(flatten)]
    pub request: RequestArgs,
    /// How to wait.
    #[command(flatten)]
    pub waiting: WaitingArgs,
}

/// `imggen status`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct StatusArgs {
    /// provider:task_id, a JSON handle, or @FILE holding handles (one per line, or the
    /// output of `imggen submit --json`).
    #[arg(value_name = "HANDLE", required = true)]
    pub handles: Vec<String>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `imggen wait`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct WaitArgs {
    /// provider:task_id, a JSON handle, or @FILE holding handles (one per line, or the
    /// output of `imggen submit --json`).
    #[arg(value_name = "HANDLE", required = true)]
    pub handles: Vec<String>,
    /// How to wait.
    #[command(flatten)]
    pub waiting: WaitingArgs,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `imggen providers`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct ProvidersArgs {
    /// Print the capabilities as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `imggen mock`.
#[derive(Clone, Args)]
#[non_exhaustive]
pub struct MockCommand {
    /// The emulator's flags.
    #[command(flatten)]
    pub mock: imggen_mock::cli::MockArgs,
}

impl std::fmt::Debug for MockCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The emulator's flags may hold API keys.
        f.debug_struct("MockCommand").finish_non_exhaustive()
    }
}

/// `imggen completions`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Reads decimal seconds (`0.5`, `30`): positive, finite, at most a day.
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds (e.g. 0.5 or 30)"))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{value:?}: give a number of seconds above 0"));
    }
    if seconds > 86_400.0 {
        return Err(format!("{value:?}: at most 86400 seconds (a day)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Reads a ratio strictly: a value imggen does not know is refused with the known ones listed.
pub fn parse_aspect_ratio(value: &str) -> Result<AspectRatio, String> {
    value
        .trim()
        .parse::<AspectRatio>()
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_take_decimals_and_refuse_nonsense() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert!(parse_seconds("0").unwrap_err().contains("above 0"));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").unwrap_err().contains("0.5 or 30"));
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("1e9").unwrap_err().contains("a day"));
    }

    #[test]
    fn fallback_lists_are_comma_separated_and_ratios_strict() {
        let cli = Cli::try_parse_from([
            "imggen",
            "generate",
            "a fox",
            "--fallback",
            "runblob,runbase",
            "--aspect-ratio",
            "16:9",
            "-n",
            "2",
        ])
        .unwrap();
        let Command::Generate(args) = cli.command else {
            panic!("generate")
        };
        assert_eq!(
            args.request.fallback,
            [ProviderChoice::Runblob, ProviderChoice::Runbase]
        );
        assert_eq!(args.request.aspect_ratio, Some(AspectRatio::Landscape16x9));
        assert_eq!(args.waiting.out, PathBuf::from("imggen-out"));

        let err = Cli::try_parse_from(["imggen", "generate", "x", "--aspect-ratio", "16x9"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("16x9") && err.contains("1:1, 4:3, 3:4"),
            "{err}"
        );
    }

    #[test]
    fn help_documents_every_exit_code() {
        let help = Cli::command().render_long_help().to_string();
        for code in [
            "0  success",
            "2  usage",
            "3  the provider refused",
            "4  the generation failed",
            "5  the wait stopped",
            "6  the outcome of a create is unknown",
        ] {
            assert!(help.contains(code), "{code} missing from:\n{help}");
        }
    }
}
