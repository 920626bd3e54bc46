//! The command line, as clap types: every command, option and its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use imggen_core::ProviderId;
use imggen_types::AspectRatio;

/// The exit codes, as `--help` shows them (the crate README repeats them).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  anything else: a local I/O error, a download or save that failed, a full disk (resume
     with `imggen wait`, free)
  2  usage or validation error: nothing was sent
  3  the provider refused the request and nothing was charged, and no task is known to
     exist (bad key, no credits, rate limited after retries, every --fallback provider
     refused, a provider:task_id the provider does not know)
  4  the generation failed: the provider ran the task and it failed (providers refund it)
  5  paid tasks were left uncollected (--timeout passed, Ctrl-C, or their status could not
     be read): they go on and are paid for; the handles printed resume them with
     `imggen wait`
  6  the outcome of a create is unknown: its answer was lost, so the task may have been
     created and charged; imggen never resubmits it and prints every known fact
  7  the spending cap (--max-cost) stopped a create: it was not sent";

/// What `imggen batch --help` adds: the line format, resuming, and the batch's exit codes.
pub const BATCH_HELP: &str = "\
Each line of FILE is one JSON request with the fields of `generate`:
  {\"id\": \"hero\", \"prompt\": \"A lighthouse at dusk\", \"aspect_ratio\": \"16:9\"}
  {\"prompt\": \"A ceramic lamp\", \"provider\": \"runbase\", \"options\": {\"resolution\": \"2K\"}}
Fields: id (default: the line number), prompt (required, not empty), provider, fallback,
model, aspect_ratio (or ratio), n, quality, refs, options, webhook. The command's options
are the defaults of every line.

Resume by running the same command again: done requests are skipped, submitted ones are
waited on (never sent again), the rest are sent. A request whose create's answer was lost
may already be paid for: it is listed, and sent again only with --resubmit-unknown.
Results: DIR/results.jsonl, one line per request (id, status, provider, task ids, files,
cost, error); the journal: DIR/imggen-journal.sqlite (or --journal, a file or
postgres://USER@HOST/DB).

Exit codes (when several apply, 6 wins over 5, 5 over 7, 7 over 3, 3 over 4):
  0  every request is done (lines left out by --skip-invalid aside)
  1  anything else: local I/O, the journal could not be written
  2  invalid input or usage (every invalid line is listed), or a journal that belongs to
     another batch or is in use: nothing was sent
  3  some requests were refused and nothing was charged for them (no credits, rate limited
     after retries): fix the cause and run the same command again
  4  the batch finished, but some requests failed (providers refund failed tasks)
  5  --timeout or Ctrl-C stopped the run, or tasks did not finish in time: they go on and
     are paid for; run the same command again to collect them
  6  some requests have an unknown outcome: their create's answer was lost, so they may have
     been created and charged; they are listed and not sent again (--resubmit-unknown)
  7  the spending cap (--max-cost) was reached: the requests not sent are listed; what was
     paid for was waited on and saved (raise the cap and run the same command again)";

const ENVIRONMENT_HELP: &str = "\
Environment:
  GPTIMG_API_KEY, RUNBLOB_API_KEY, RUNBASE_API_KEY   a provider's key; with none set, imggen
                                                     runs its built-in emulator (offline, free)
  GPTIMG_BASE_URL, RUNBLOB_BASE_URL, RUNBASE_BASE_URL  another base URL (e.g. `imggen mock`)
  IMGGEN_PROGRESS, IMGGEN_PROGRESS_INTERVAL          --progress and --progress-interval
  IMGGEN_MAX_COST                                    --max-cost
  IMGGEN_HOME                                        where the task history is kept (default:
                                                     the user's data directory, imggen/)
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
    /// How progress reaches stderr: `auto` (a live bar on a terminal, `plain` otherwise),
    /// `bar`, `plain` (a line per change and a summary line every --progress-interval),
    /// `jsonl` (one JSON event per line, nothing else on stderr) or `none`.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        env = "IMGGEN_PROGRESS",
        default_value_t = ProgressMode::Auto,
        global = true,
        display_order = 902
    )]
    pub progress: ProgressMode,
    /// Seconds between the summary lines of `--progress plain` (and the `progress` events of
    /// `jsonl`) while a run goes on (decimals allowed).
    #[arg(
        long,
        value_name = "SECS",
        env = "IMGGEN_PROGRESS_INTERVAL",
        default_value = "10",
        value_parser = parse_seconds,
        global = true,
        display_order = 903
    )]
    pub progress_interval: Duration,
}

/// How progress reaches stderr (`--progress`, `IMGGEN_PROGRESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ProgressMode {
    /// A live bar when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Live lines (one per task, or a batch's bar), drawn only on a terminal.
    Bar,
    /// A line per change of a short run and a summary line at a steady pace: for logs.
    Plain,
    /// One JSON object per line (`event`: created, status, saved, failed, cost, …): for
    /// scripts. Notices, warnings and errors are events too.
    Jsonl,
    /// No progress; notices, warnings and errors only.
    None,
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
    /// The tasks this machine created, newest first, from the local history (IMGGEN_HOME):
    /// status, cost, files.
    List(ListArgs),
    /// Run a batch file (one JSON request per line) with a crash-safe journal: running the
    /// same command again resumes it, without paying twice.
    #[command(after_help = BATCH_HELP)]
    Batch(BatchArgs),
    /// What each provider (and the built-in emulator) can do.
    Providers(ProvidersArgs),
    /// Run the emulator of all three providers in the foreground and print the variables to
    /// export.
    Mock(MockCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// A provider on the command line: one imggen is built with (`imggen providers` lists them),
/// or the built-in emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderChoice {
    /// A provider's real API.
    Api(ProviderId),
    /// The built-in emulator, run in-process (offline, free), speaking the protocol of the
    /// first provider of the default order.
    Mock,
}

impl ProviderChoice {
    /// The name the emulator goes by.
    pub const MOCK: &'static str = "mock";

    /// The API this choice speaks: the emulator speaks the first built-in provider's.
    pub fn protocol(self) -> ProviderId {
        match self {
            ProviderChoice::Api(id) => id,
            ProviderChoice::Mock => emulated_protocol(),
        }
    }

    /// The provider's name, or `mock`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderChoice::Api(id) => id.as_str(),
            ProviderChoice::Mock => Self::MOCK,
        }
    }

    /// How clap reads one: a built-in provider's name or `mock`, the names listed in
    /// `--help` and completions.
    fn parser() -> impl clap::builder::TypedValueParser<Value = ProviderChoice> {
        use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
        let mut names: Vec<PossibleValue> = imggen_core::builtin::registrations()
            .into_iter()
            .map(|registration| {
                PossibleValue::new(registration.id.as_str()).help(format!(
                    "{} ({})",
                    registration.id, registration.api_key_env
                ))
            })
            .collect();
        names.push(
            PossibleValue::new(Self::MOCK)
                .help("the built-in emulator, run in-process (offline, free)"),
        );
        PossibleValuesParser::new(names).map(|name| ProviderChoice::from_name(&name))
    }

    /// A name clap has already checked against the list.
    fn from_name(name: &str) -> ProviderChoice {
        imggen_core::builtin::registrations()
            .into_iter()
            .find(|registration| registration.id.as_str() == name)
            .map_or(ProviderChoice::Mock, |registration| {
                ProviderChoice::Api(registration.id)
            })
    }
}

/// The protocol the in-process emulator speaks: the first provider of the default order.
pub fn emulated_protocol() -> ProviderId {
    imggen_core::builtin::registrations()
        .first()
        .map(|registration| registration.id)
        .expect("imggen-cli is built with at least one provider")
}

impl From<ProviderId> for ProviderChoice {
    fn from(id: ProviderId) -> Self {
        ProviderChoice::Api(id)
    }
}

/// What to generate and where to send it (`generate` and `submit`).
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct RequestArgs {
    /// What to draw; `-` reads it from standard input.
    #[arg(
        value_name = "PROMPT",
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    pub prompt: Option<String>,

    /// Read the prompt from this file (UTF-8) instead.
    #[arg(long, value_name = "PATH")]
    pub prompt_file: Option<PathBuf>,

    /// How to generate it and which provider to ask.
    #[command(flatten)]
    pub settings: RequestSettings,

    /// Print exactly one JSON object on stdout (see schemas/cli/GenerateOutput.schema.json;
    /// with --dry-run, schemas/cli/QuoteOutput.schema.json).
    #[arg(long)]
    pub json: bool,

    /// Plan everything and check everything local, print each task that would be created
    /// with its provider, model and price, and the total — and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Every setting of a generation but its prompt: the options of `generate` and `submit`, and
/// the defaults of every line of `batch` — one struct, so the commands cannot drift apart.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct RequestSettings {
    /// The provider. Default: the first of gptimg, runblob, runbase whose API key is set,
    /// else the built-in emulator (mock).
    #[arg(long, value_parser = ProviderChoice::parser(), value_name = "PROVIDER")]
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
    #[arg(long, value_parser = ProviderChoice::parser(), value_delimiter = ',', value_name = "P1,P2")]
    pub fallback: Vec<ProviderChoice>,

    /// Also refuse what imggen would send unchecked (a model it does not know, whose price
    /// is unknown). Settings a provider cannot honour are always refused before anything is
    /// sent.
    #[arg(long)]
    pub strict: bool,

    /// Let -n above a provider's per-task maximum become several tasks, each charged.
    #[arg(long)]
    pub allow_extra_tasks: bool,

    /// The most this command (for `batch`, the batch over all its runs) may spend: dollars
    /// (`0.50`, `$0.50`), gptimg credits (`100cr`), or both (`$0.50,100cr`). A task whose
    /// price could take the spend past it is not created; a create whose outcome is unknown
    /// counts as charged. Stopped by it, the command exits 7.
    #[arg(long, value_name = "COST", env = "IMGGEN_MAX_COST", value_parser = parse_cost_cap)]
    pub max_cost: Option<imggen_core::CostCap>,

    /// Under --max-cost, also create tasks whose price is not known before they are created
    /// (runblob prices a task in its create's answer; a model imggen does not know), counted
    /// at what they turn out to cost. Such a task can take the spend past the cap.
    #[arg(long, requires = "max_cost")]
    pub allow_unpriced: bool,
}

/// How long and how often to wait, and where the images go, in which format (`generate`,
/// `wait` and `batch`).
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct WaitingArgs {
    /// The directory the images are written to (created if missing); for `batch`, also
    /// results.jsonl and the journal.
    #[arg(short, long = "out", value_name = "DIR", default_value = "imggen-out")]
    pub out: PathBuf,

    /// The overall deadline in seconds (decimals allowed): every request ends by it, a create
    /// that never answers included (its outcome is then unknown, and it is never resent).
    /// When it passes, the tasks go on and imggen says how to resume them (the handle for
    /// `imggen wait`; for `batch`, the same command again).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Poll every SECS seconds (decimals allowed, e.g. 0.5) instead of the provider's
    /// schedule.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub poll_interval: Option<Duration>,

    /// How images are named, before their extension: {id} (a batch line's id; else the task
    /// id), {n} (the image's number in its request), {i} (its number in its task),
    /// {task_id}, {provider}, {prompt} (its first words). Default: {task_id}-{i}; for
    /// `batch`, {id}-{n} (hero-1.png). A file already there is never replaced: -2, -3… is
    /// added.
    #[arg(long, value_name = "TEMPLATE", value_parser = parse_names)]
    pub name: Option<imggen_core::FileNames>,

    /// Save images as png, jpeg (or jpg) or webp: an image the provider sent in another format
    /// is converted here, after it was downloaded and saved, and its file is then replaced by
    /// the converted one (same name, new extension). JPEG has no transparency: transparent
    /// pixels become white. WebP is written lossless. An image that cannot be converted is
    /// kept as it came, with a warning.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<imggen_core::ImageFormat>,

    /// JPEG quality, 1 (smallest) to 100 (best); only with --format jpeg. Default: 90.
    #[arg(
        long,
        value_name = "N",
        requires = "format",
        value_parser = clap::value_parser!(u8).range(1..=100)
    )]
    pub jpeg_quality: Option<u8>,

    /// With --format: keep the provider's file too, beside the converted one.
    #[arg(long, requires = "format")]
    pub keep_original: bool,

    /// Receive the providers' callbacks (runblob's webhooks) on ADDR, e.g. 127.0.0.1:8080,
    /// while waiting: a callback is a hint, confirmed by one status call, and polling goes
    /// on at the slower fallback pace, so a lost callback costs only time. With generate
    /// and batch, give --public-url too.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

impl WaitingArgs {
    /// The conversion `--format`, `--jpeg-quality` and `--keep-original` ask for: a quality
    /// for another format than JPEG is a usage error, found before anything is sent.
    pub fn conversion(&self) -> Result<Option<imggen_core::Conversion>, String> {
        let Some(format) = self.format else {
            return Ok(None);
        };
        let mut conversion = imggen_core::Conversion::to(format).keep_original(self.keep_original);
        if let Some(quality) = self.jpeg_quality {
            if format != imggen_core::ImageFormat::Jpeg {
                return Err(format!(
                    "--jpeg-quality applies to --format jpeg only, not --format {format}"
                ));
            }
            conversion = conversion.jpeg_quality(quality);
        }
        Ok(Some(conversion))
    }
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
    /// Also write DIR/index.html: a page showing the images with their prompt, provider,
    /// model, cost and status (open it in a browser; it needs no network).
    #[arg(long)]
    pub gallery: bool,
    /// With --listen: the URL the provider calls back (sent as runblob's callback_url). runblob
    /// needs an https URL it can reach, so put a tunnel or a reverse proxy in front of ADDR
    /// (any path is accepted); plain http is let through only to this machine (127.0.0.1),
    /// as the built-in emulator calls back.
    #[arg(
        long,
        value_name = "URL",
        requires = "listen",
        conflicts_with = "webhook"
    )]
    pub public_url: Option<String>,
}

/// `imggen batch`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct BatchArgs {
    /// The batch file: one JSON request per line (see below).
    #[arg(value_name = "FILE.jsonl")]
    pub file: PathBuf,

    /// The defaults of every line.
    #[command(flatten)]
    pub settings: RequestSettings,

    /// Where images, results.jsonl and the journal go, and how to wait.
    #[command(flatten)]
    pub waiting: WaitingArgs,

    /// Requests in progress at once: being submitted, waited on or downloaded. Every request
    /// on one key also shares that key's request budget.
    #[arg(long, value_name = "N", default_value_t = imggen_core::batch::DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// The journal: a SQLite file (default: DIR/imggen-journal.sqlite) or a PostgreSQL
    /// database, postgres://USER@HOST/DB, where the batch is kept under its file's name.
    /// Running the same batch with the same journal resumes it; in PostgreSQL, several
    /// processes (each with its own --out) drain it together, and take over the requests of
    /// one that died once its claims run out (IMGGEN_JOURNAL_LEASE seconds, default 60). If
    /// the database goes away mid-run, the batch waits for it (up to 10 minutes), sending
    /// nothing new.
    #[arg(long, value_name = "PATH|URL", env = "IMGGEN_JOURNAL")]
    pub journal: Option<PathBuf>,

    /// Send again the requests whose create's answer was lost. They may already have been
    /// created and charged: check the provider's dashboard first.
    #[arg(long)]
    pub resubmit_unknown: bool,

    /// Run the valid lines when some are invalid (by default an invalid line stops the batch
    /// before anything is sent).
    #[arg(long)]
    pub skip_invalid: bool,

    /// How long after a lost create the provider's task list (runblob's) is read for it, in
    /// seconds (default 90: longer than a create can take, so one still in flight is not
    /// taken for one that never arrived and sent again).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub reconcile_grace: Option<Duration>,

    /// Print exactly one JSON object on stdout at the end (see
    /// schemas/cli/BatchOutput.schema.json; with --dry-run, QuoteOutput.schema.json).
    #[arg(long)]
    pub json: bool,

    /// Read and plan every line, print each request with the tasks it would create and their
    /// price, and the total — and send nothing (the journal is not touched).
    #[arg(long)]
    pub dry_run: bool,

    /// Do not write DIR/index.html, the page that shows every request with its images,
    /// status and cost (by default it is redrawn every few seconds while the batch runs, and
    /// once more at the end).
    #[arg(long)]
    pub no_gallery: bool,

    /// With --listen: the URL the provider calls back (sent as runblob's callback_url). runblob
    /// needs an https URL it can reach, so put a tunnel or a reverse proxy in front of ADDR
    /// (any path is accepted); plain http is let through only to this machine (127.0.0.1),
    /// as the built-in emulator calls back.
    #[arg(
        long,
        value_name = "URL",
        requires = "listen",
        conflicts_with = "webhook"
    )]
    pub public_url: Option<String>,
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
    #[arg(value_name = "HANDLE", required_unless_present = "pending")]
    pub handles: Vec<String>,
    /// Wait for every task of the local history that has not finished (`imggen list`).
    #[arg(long, conflicts_with = "handles")]
    pub pending: bool,
    /// How to wait.
    #[command(flatten)]
    pub waiting: WaitingArgs,
    /// Also write DIR/index.html: a page showing the images with their prompt, provider,
    /// model, cost and status (open it in a browser; it needs no network).
    #[arg(long)]
    pub gallery: bool,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `imggen list`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct ListArgs {
    /// How many of the latest tasks to show.
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Only the tasks that have not finished (what `imggen wait --pending` resumes).
    #[arg(long)]
    pub pending: bool,
    /// Print the tasks as one JSON array.
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

/// Reads a spending cap: dollars (`0.50`, `$0.50`, `0.50usd`), gptimg credits (`100cr`,
/// `100 credits`), or one of each separated by a comma (`$0.50,100cr`).
pub fn parse_cost_cap(value: &str) -> Result<imggen_core::CostCap, String> {
    let example = "e.g. 0.50, $0.50, 100cr or $0.50,100cr";
    let mut cap = imggen_core::CostCap::default();
    for part in value.split(',') {
        let part = part.trim();
        let lower = part.to_ascii_lowercase();
        let credits = ["credits", "credit", "cr"]
            .iter()
            .find_map(|unit| lower.strip_suffix(unit));
        if let Some(number) = credits {
            let count: u64 = number
                .trim()
                .parse()
                .map_err(|_| format!("{part:?} is not a whole number of credits ({example})"))?;
            if cap.credits.replace(imggen_types::Credits(count)).is_some() {
                return Err(format!("{value:?} gives credits twice ({example})"));
            }
            continue;
        }
        let number = lower.strip_prefix('$').unwrap_or(&lower);
        let number = number.strip_suffix("usd").unwrap_or(number).trim();
        let usd: imggen_types::Usd = number
            .parse()
            .map_err(|_| format!("{part:?} is not an amount of dollars or credits ({example})"))?;
        if usd.amount().is_sign_negative() {
            return Err(format!("{part:?}: a spending cap cannot be negative"));
        }
        if cap.usd.replace(usd).is_some() {
            return Err(format!("{value:?} gives dollars twice ({example})"));
        }
    }
    Ok(cap)
}

/// Reads a file-name template (`{id}-{n}`).
pub fn parse_names(value: &str) -> Result<imggen_core::FileNames, String> {
    imggen_core::FileNames::parse(value).map_err(|error| error.to_string())
}

/// Reads `--format`: png, jpeg, jpg or webp.
pub fn parse_format(value: &str) -> Result<imggen_core::ImageFormat, String> {
    value
        .parse()
        .map_err(|error: imggen_core::ImageFormatError| error.to_string())
}

/// Reads a number of requests in progress at once: at least 1.
pub fn parse_concurrency(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("give at least 1 request in progress at once".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{value:?} is not a whole number (e.g. 8)")),
    }
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
    fn a_spending_cap_takes_dollars_credits_or_both_and_refuses_nonsense() {
        let cap = parse_cost_cap("$0.50").unwrap();
        assert_eq!(cap.usd, Some("0.5".parse().unwrap()));
        assert_eq!(cap.credits, None);
        assert_eq!(parse_cost_cap("0.50").unwrap(), cap);
        assert_eq!(parse_cost_cap("0.50 USD").unwrap(), cap);
        let credits = parse_cost_cap("100cr").unwrap();
        assert_eq!(credits.credits, Some(imggen_types::Credits(100)));
        assert_eq!(parse_cost_cap("100 credits").unwrap(), credits);
        let both = parse_cost_cap("$2, 40cr").unwrap();
        assert_eq!(both.to_string(), "$2 and 40 credits");
        assert!(parse_cost_cap("-1").unwrap_err().contains("negative"));
        assert!(
            parse_cost_cap("1.5cr")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_cost_cap("lots").unwrap_err().contains("e.g. 0.50"));
        assert!(parse_cost_cap("$1,$2").unwrap_err().contains("twice"));
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
            args.request.settings.fallback,
            [
                ProviderChoice::Api(ProviderId::new("runblob")),
                ProviderChoice::Api(ProviderId::new("runbase"))
            ]
        );
        assert_eq!(
            args.request.settings.aspect_ratio,
            Some(AspectRatio::Landscape16x9)
        );
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
    fn batch_takes_the_options_of_generate_and_its_own() {
        let cli = Cli::try_parse_from([
            "imggen",
            "batch",
            "prompts.jsonl",
            "--provider",
            "runblob",
            "--fallback",
            "gptimg",
            "--aspect-ratio",
            "4:3",
            "-n",
            "2",
            "--option",
            "quality=flare",
            "--out",
            "renders",
            "--timeout",
            "30",
            "--poll-interval",
            "0.5",
            "--concurrency",
            "16",
            "--journal",
            "j.sqlite",
            "--resubmit-unknown",
            "--skip-invalid",
            "--reconcile-grace",
            "120",
            "--json",
        ])
        .unwrap();
        let Command::Batch(args) = cli.command else {
            panic!("batch")
        };
        assert_eq!(args.file, PathBuf::from("prompts.jsonl"));
        assert_eq!(
            args.settings.provider,
            Some(ProviderChoice::Api(ProviderId::new("runblob")))
        );
        assert_eq!(
            args.settings.fallback,
            [ProviderChoice::Api(ProviderId::new("gptimg"))]
        );
        assert_eq!(args.settings.count, 2);
        assert_eq!(args.settings.options, ["quality=flare"]);
        assert_eq!(args.waiting.out, PathBuf::from("renders"));
        assert_eq!(args.waiting.timeout, Some(Duration::from_secs(30)));
        assert_eq!(args.concurrency, 16);
        assert_eq!(args.journal, Some(PathBuf::from("j.sqlite")));
        assert!(args.resubmit_unknown && args.skip_invalid && args.json);
        assert_eq!(args.reconcile_grace, Some(Duration::from_secs(120)));

        let defaults = Cli::try_parse_from(["imggen", "batch", "prompts.jsonl"]).unwrap();
        let Command::Batch(args) = defaults.command else {
            panic!("batch")
        };
        assert_eq!(args.concurrency, imggen_core::batch::DEFAULT_CONCURRENCY);
        assert_eq!(args.waiting.out, PathBuf::from("imggen-out"));

        let zero = Cli::try_parse_from(["imggen", "batch", "p.jsonl", "--concurrency", "0"])
            .unwrap_err()
            .to_string();
        assert!(zero.contains("at least 1"), "{zero}");
    }

    #[test]
    fn batch_help_documents_the_line_format_and_every_exit_code() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("batch")
            .unwrap()
            .render_long_help()
            .to_string();
        for text in [
            "\"prompt\"",
            "prompt (required, not empty)",
            "aspect_ratio (or ratio)",
            "--resubmit-unknown",
            "results.jsonl",
            "0  every request is done",
            "1  anything else",
            "2  invalid input",
            "3  some requests were refused",
            "4  the batch finished, but some requests failed",
            "5  --timeout or Ctrl-C",
            "6  some requests have an unknown outcome",
        ] {
            assert!(help.contains(text), "{text} missing from:\n{help}");
        }
    }

    #[test]
    fn help_documents_every_exit_code() {
        let help = Cli::command().render_long_help().to_string();
        for code in [
            "0  success",
            "2  usage",
            "3  the provider refused",
            "4  the generation failed",
            "5  paid tasks were left uncollected",
            "6  the outcome of a create is unknown",
        ] {
            assert!(help.contains(code), "{code} missing from:\n{help}");
        }
    }
}
