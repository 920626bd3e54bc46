//! The commands: argument handling and output around imggen-core's calls, nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::{
    CancellationToken, DownloadOptions, Error, GenerateOptions, GenerationRequest, Imggen,
    JobHandle, JobState, ProviderId, Reference, Submission, SubmitOptions,
};
use imggen_mock::{MockConfig, MockServer, Profile};

use crate::args::{
    Command, CompletionsArgs, GenerateArgs, MockCommand, ProviderChoice, ProvidersArgs,
    RequestArgs, StatusArgs, WaitArgs, WaitingArgs,
};
use crate::exit::{self, Category, Failure, provider_label};
use crate::handles::parse_handles;
use crate::output::{CostOutput, GenerateOutput, ImageOutput, TaskOutput, WarningOutput};
use crate::progress::Progress;
use crate::providers;
use crate::stdout;

/// The key the in-process emulator accepts. Not a secret: the emulator is local and free.
pub(crate) const EMULATOR_KEY: &str = "sk-imggen-local-emulator";

/// How often the in-process emulator is polled: its tasks take 1–2 s.
const EMULATOR_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What every command shares.
pub(crate) struct Ctx {
    pub progress: Arc<Progress>,
    /// Set on Ctrl-C: waits stop and print the handles that resume them.
    pub cancel: CancellationToken,
}

/// Runs a command; returns the exit code.
pub(crate) async fn execute(command: Command, ctx: &Ctx) -> u8 {
    match command {
        Command::Generate(args) => {
            let json = args.request.json;
            let mut report = Report::default();
            let result = generate(&args, ctx, &mut report).await;
            finish(report, result, json, ctx)
        }
        Command::Submit(args) => {
            let json = args.json;
            let mut report = Report::default();
            let result = submit_only(&args, ctx, &mut report).await;
            finish(report, result, json, ctx)
        }
        Command::Status(args) => {
            let json = args.json;
            let mut report = Report::default();
            let result = status(&args, &mut report).await;
            finish(report, result, json, ctx)
        }
        Command::Wait(args) => {
            let json = args.json;
            let mut report = Report::default();
            let result = wait(&args, ctx, &mut report).await;
            finish(report, result, json, ctx)
        }
        Command::Batch(args) => crate::batch::command(args, ctx).await,
        Command::Providers(args) => providers_command(&args),
        Command::Mock(args) => mock(args, ctx).await,
        Command::Completions(args) => completions(&args),
    }
}

/// What a command has found so far: the JSON object, and the text lines for stdout.
#[derive(Default)]
struct Report {
    output: GenerateOutput,
    stdout: Vec<String>,
}

/// Prints the result and returns the exit code: the JSON object (with the error, if any) or
/// the text lines on stdout, and the error on stderr.
fn finish(mut report: Report, result: Result<(), Failure>, json: bool, ctx: &Ctx) -> u8 {
    let failure = result.err();
    if let Some(failure) = &failure {
        report.output.error = Some(failure.to_output());
    }
    let written = if json {
        let text = serde_json::to_string(&report.output).unwrap_or_else(|err| {
            format!(r#"{{"error":{{"message":"could not write the output: {err}"}}}}"#)
        });
        stdout::write_json(&text)
    } else {
        stdout::write_lines(&report.stdout)
    };
    let lost_output = stdout_lost(ctx, written, &report.output.tasks);
    match failure {
        Some(failure) => {
            ctx.progress.eprint(&failure.lines());
            failure.category.exit_code()
        }
        None if lost_output => exit::OTHER,
        None => exit::SUCCESS,
    }
}

/// When stdout could not be written (a redirect to a full disk), says so on stderr with the
/// handle of every task — the receipts that were meant for stdout — and returns true.
fn stdout_lost(ctx: &Ctx, written: std::io::Result<()>, tasks: &[TaskOutput]) -> bool {
    let error = match written {
        Err(error) => error.to_string(),
        Ok(()) if stdout::failed() => "an earlier write failed".to_owned(),
        Ok(()) => return false,
    };
    let mut lines = vec![format!(
        "imggen: could not write to standard output: {error}"
    )];
    for task in tasks {
        lines.push(format!(
            "imggen: keep this handle of a paid task: {}",
            task.handle
        ));
    }
    ctx.progress.eprint(&lines);
    true
}

/// Lines on stderr, unless `-q`.
pub(crate) fn notice(ctx: &Ctx, lines: &[String]) {
    if !ctx.progress.is_quiet() && !lines.is_empty() {
        ctx.progress.eprint(lines);
    }
}

/// Which providers a request goes to, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub choices: Vec<ProviderChoice>,
    /// No key is set and no provider was named: the emulator was picked for the user.
    pub implicit: bool,
}

impl Route {
    /// `--provider`, then `--fallback`; with neither, the first provider whose key is set,
    /// else the emulator.
    pub fn resolve(
        provider: Option<ProviderChoice>,
        fallback: &[ProviderChoice],
        key_set: impl Fn(ProviderId) -> bool,
    ) -> Result<Route, Failure> {
        let mut choices: Vec<ProviderChoice> = Vec::new();
        let mut implicit = false;
        match provider {
            Some(first) => choices.push(first),
            None if fallback.is_empty() => {
                let keyed = [ProviderId::Gptimg, ProviderId::Runblob, ProviderId::Runbase]
                    .into_iter()
                    .find(|id| key_set(*id));
                match keyed {
                    Some(id) => choices.push(ProviderChoice::from(id)),
                    None => {
                        choices.push(ProviderChoice::Mock);
                        implicit = true;
                    }
                }
            }
            None => {}
        }
        for choice in fallback {
            if !choices.contains(choice) {
                choices.push(*choice);
            }
        }
        if choices.len() > 1 && choices.contains(&ProviderChoice::Mock) {
            return Err(Failure::usage(
                "mock cannot be combined with other providers: it is the in-process emulator of gptimg",
            )
            .hint("use --provider mock alone, or run `imggen mock` and point GPTIMG_BASE_URL at it"));
        }
        Ok(Route { choices, implicit })
    }

    /// Whether the request goes to the in-process emulator.
    pub fn emulated(&self) -> bool {
        self.choices == [ProviderChoice::Mock]
    }

    /// The APIs, in order.
    pub fn ids(&self) -> Vec<ProviderId> {
        self.choices
            .iter()
            .map(|choice| choice.protocol())
            .collect()
    }

    fn first_label(&self) -> String {
        self.choices
            .first()
            .map_or_else(String::new, |choice| choice.as_str().to_owned())
    }
}

/// Whether a provider's API key variable is set (and not blank).
pub(crate) fn key_set(provider: ProviderId) -> bool {
    std::env::var(api_key_env(provider)).is_ok_and(|value| !value.trim().is_empty())
}

pub(crate) fn api_key_env(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Runblob => imggen_core::imggen_runblob::API_KEY_ENV,
        ProviderId::Gptimg => imggen_core::imggen_gptimg::API_KEY_ENV,
        ProviderId::Runbase => imggen_core::imggen_runbase::API_KEY_ENV,
    }
}

pub(crate) fn base_url_env(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Runblob => imggen_core::imggen_runblob::BASE_URL_ENV,
        ProviderId::Gptimg => imggen_core::imggen_gptimg::BASE_URL_ENV,
        ProviderId::Runbase => imggen_core::imggen_runbase::BASE_URL_ENV,
    }
}

/// The longest prompt file or standard input read: far above any provider's limit (4,000
/// characters), so a prompt that is too long gets the provider's limit in its error rather
/// than a read that never ends.
const MAX_PROMPT_BYTES: u64 = 1024 * 1024;

/// The prompt: the argument, standard input for `-`, or `--prompt-file`. An empty one is
/// refused here, before anything is sent.
pub(crate) fn read_prompt(args: &RequestArgs) -> Result<String, Failure> {
    use std::io::Read as _;
    let (text, from) = match (&args.prompt, &args.prompt_file) {
        (_, Some(path)) => {
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|file| file.take(MAX_PROMPT_BYTES).read_to_string(&mut text))
                .map_err(|error| {
                    Failure::usage(format!(
                        "--prompt-file {}: {error}; nothing was sent",
                        path.display()
                    ))
                })?;
            (text, format!("the prompt file {}", path.display()))
        }
        (Some(dash), None) if dash == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(MAX_PROMPT_BYTES)
                .read_to_string(&mut text)
                .map_err(|error| {
                    Failure::usage(format!(
                        "could not read the prompt from standard input: {error}; nothing was sent"
                    ))
                })?;
            (text, "standard input".to_owned())
        }
        (Some(text), None) => (text.clone(), "the prompt".to_owned()),
        (None, None) => (String::new(), "the prompt".to_owned()),
    };
    // A file or a pipe ends its last line with a newline that is not part of the prompt.
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        return Err(Failure::usage(format!(
            "the prompt is empty ({from} holds no text); nothing was sent"
        ))
        .hint("give the prompt as an argument, `-` to read it from standard input, or --prompt-file PATH"));
    }
    Ok(text)
}

/// The request, from the options. `--option` keys apply to every provider of the route, or
/// to one when prefixed with its name (`runbase.resolution=2K`).
pub(crate) fn build_request(
    args: &RequestArgs,
    route: &Route,
) -> Result<GenerationRequest, Failure> {
    let settings = &args.settings;
    let mut request = GenerationRequest::new(read_prompt(args)?).n(settings.count);
    if let Some(ratio) = &settings.aspect_ratio {
        request = request.aspect_ratio(ratio.clone());
    }
    if let Some(model) = &settings.model {
        request = request.model(model.clone());
    }
    if let Some(quality) = &settings.quality {
        request = request.quality(quality.clone());
    }
    if let Some(webhook) = &settings.webhook {
        request = request.webhook(webhook.clone());
    }
    for reference in &settings.references {
        request = request.reference(reference_arg(reference));
    }
    let ids = route.ids();
    for pair in &settings.options {
        let (key, value) = option_arg(pair)?;
        let scoped = key
            .split_once('.')
            .and_then(|(provider, rest)| Some((provider.parse::<ProviderId>().ok()?, rest)));
        let targets: Vec<(ProviderId, &str)> = match scoped {
            Some((provider, rest)) => {
                if !ids.contains(&provider) {
                    return Err(Failure::usage(format!(
                        "--option {pair:?} is for {provider}, which this run does not use ({})",
                        route.first_label()
                    )));
                }
                vec![(provider, rest)]
            }
            None => ids.iter().map(|id| (*id, key)).collect(),
        };
        for (provider, key) in targets {
            if let Err(error) = request.options.set(provider, key, value) {
                let mut failure = Failure::usage(format!("--option {pair:?}: {error}"))
                    .provider(provider.to_string());
                if ids.len() > 1 {
                    failure = failure.hint(format!(
                        "prefix the key with a provider to set it for that provider only, e.g. {}.{pair}",
                        ids[0]
                    ));
                }
                return Err(failure);
            }
        }
    }
    Ok(request)
}

/// A `--ref`: a URL or data URI as given, anything else a local file.
pub(crate) fn reference_arg(reference: &str) -> Reference {
    let lower = reference.to_ascii_lowercase();
    if ["https://", "http://", "data:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        Reference::url(reference)
    } else {
        Reference::file(reference)
    }
}

/// An `--option KEY=VALUE`, split.
pub(crate) fn option_arg(pair: &str) -> Result<(&str, &str), Failure> {
    pair.split_once('=').ok_or_else(|| {
        Failure::usage(format!(
            "--option {pair:?}: expected KEY=VALUE, e.g. resolution=2K"
        ))
    })
}

/// The emulator, started in this process on 127.0.0.1: fast tasks, one fixed key.
pub(crate) async fn start_emulator() -> Result<MockServer, Failure> {
    let config = MockConfig::default()
        .profile(Profile::Fast)
        .api_key(EMULATOR_KEY);
    MockServer::start(config).await.map_err(|error| {
        Failure::new(
            Category::Other,
            format!("could not start the built-in emulator: {}", chain(&error)),
        )
    })
}

/// imggen-core over the emulator, through the real clients of `providers` (the emulator
/// speaks all three protocols on one port).
pub(crate) fn emulator_imggen(
    emulator: &MockServer,
    providers: &[ProviderId],
    poll_interval: Option<Duration>,
    allow_extra_tasks: bool,
) -> Result<Imggen, Failure> {
    use imggen_core::{imggen_gptimg, imggen_runbase, imggen_runblob};
    let client_error =
        |error: &dyn std::error::Error| Failure::new(Category::Other, error.to_string());
    let interval = poll_interval.unwrap_or(EMULATOR_POLL_INTERVAL);
    let mut builder = Imggen::builder()
        .strict(true)
        .allow_extra_tasks(allow_extra_tasks);
    for provider in providers.iter().copied() {
        builder = match provider {
            ProviderId::Runblob => builder.runblob(
                imggen_runblob::Client::builder()
                    .api_key(EMULATOR_KEY)
                    .base_url(emulator.url())
                    .build()
                    .map_err(|error| client_error(&error))?,
            ),
            ProviderId::Gptimg => builder.gptimg(
                imggen_gptimg::Client::builder()
                    .api_key(EMULATOR_KEY)
                    .base_url(emulator.url())
                    .build()
                    .map_err(|error| client_error(&error))?,
            ),
            ProviderId::Runbase => builder.runbase(
                imggen_runbase::Client::builder()
                    .api_key(EMULATOR_KEY)
                    .base_url(emulator.url())
                    .build()
                    .map_err(|error| client_error(&error))?,
            ),
        }
        .poll_schedule(
            provider,
            imggen_core::wait::default_schedule(provider).every(interval),
        );
    }
    builder
        .build()
        .map_err(|error| Failure::from_core(&error, true))
}

/// The one line that says the emulator is used, and why; `speaks` says which protocols.
pub(crate) fn emulator_notice(route: &Route, speaks: &str) -> String {
    let why = if route.implicit {
        "no API key is set, so"
    } else {
        "--provider mock:"
    };
    format!(
        "{why} this run uses the built-in emulator (imggen-mock in-process, {speaks}; offline, free, placeholder images); set GPTIMG_API_KEY, RUNBLOB_API_KEY or RUNBASE_API_KEY for real images"
    )
}

/// imggen-core over the real clients of `providers`, configured from their environment
/// variables.
// Settings a provider cannot honour are always errors: the user typed each one, and a
// degraded request would still be charged.
pub(crate) fn real_imggen(
    providers: &[ProviderId],
    poll_interval: Option<Duration>,
    allow_extra_tasks: bool,
) -> Result<Imggen, Failure> {
    use imggen_core::{imggen_gptimg, imggen_runbase, imggen_runblob};
    let mut builder = Imggen::builder()
        .strict(true)
        .allow_extra_tasks(allow_extra_tasks);
    let client_error = |provider: ProviderId, message: String| {
        Failure::usage(message).provider(provider.to_string())
    };
    for provider in providers.iter().copied() {
        if !key_set(provider) {
            return Err(Failure::usage(format!(
                "{provider}: no API key: set {}",
                api_key_env(provider)
            ))
            .provider(provider.to_string())
            .hint("with no key set and no --provider, imggen runs its built-in emulator (offline, free)"));
        }
        builder = match provider {
            ProviderId::Runblob => builder.runblob(
                imggen_runblob::Client::from_env()
                    .map_err(|error| client_error(provider, error.to_string()))?,
            ),
            ProviderId::Gptimg => builder.gptimg(
                imggen_gptimg::Client::from_env()
                    .map_err(|error| client_error(provider, error.to_string()))?,
            ),
            ProviderId::Runbase => builder.runbase(
                imggen_runbase::Client::from_env()
                    .map_err(|error| client_error(provider, error.to_string()))?,
            ),
        };
        if let Some(interval) = poll_interval {
            builder = builder.poll_schedule(
                provider,
                imggen_core::wait::default_schedule(provider).every(interval),
            );
        }
    }
    builder
        .build()
        .map_err(|error| Failure::from_core(&error, false))
}

/// The imggen a request goes through, and the emulator behind it when there is one.
async fn imggen_for_route(
    route: &Route,
    args: &RequestArgs,
    poll_interval: Option<Duration>,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<(Imggen, Option<MockServer>), Failure> {
    if !route.emulated() {
        let imggen = real_imggen(&route.ids(), poll_interval, args.settings.allow_extra_tasks)?;
        return Ok((imggen, None));
    }
    let emulator = start_emulator().await?;
    let imggen = emulator_imggen(
        &emulator,
        &[ProviderId::Gptimg],
        poll_interval,
        args.settings.allow_extra_tasks,
    )?;
    let message = emulator_notice(route, "gptimg's protocol");
    notice(ctx, &[format!("imggen: {message}")]);
    report.output.warnings.push(WarningOutput {
        provider: "mock".into(),
        setting: None,
        value: None,
        message,
    });
    Ok((imggen, Some(emulator)))
}

/// `--strict`: what imggen would send unchecked is refused too.
fn check_strict(
    imggen: &Imggen,
    request: &GenerationRequest,
    route: &Route,
) -> Result<(), Failure> {
    for provider in route.ids() {
        // A provider that cannot serve the request at all is skipped by the fallback, or
        // reported by the submission itself.
        let Ok(plan) = imggen.plan(request, provider) else {
            continue;
        };
        if let Some(warning) = plan.warnings.first() {
            return Err(
                Failure::usage(format!("--strict: {warning}; nothing was sent"))
                    .provider(provider.to_string()),
            );
        }
    }
    Ok(())
}

/// Creates the tasks, each ending by `deadline` (from now) when there is one. Each handle is
/// recorded (and shown) the moment its task exists; `print_handles` also writes it to stdout
/// at once, as the receipt.
async fn submit(
    imggen: &Imggen,
    request: &GenerationRequest,
    route: &Route,
    print_handles: bool,
    deadline: Option<Duration>,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<Submission, Failure> {
    let emulated = route.emulated();
    let seen: Arc<Mutex<Vec<JobHandle>>> = Arc::default();
    let on_handle = {
        let seen = Arc::clone(&seen);
        let progress = Arc::clone(&ctx.progress);
        // Without live lines, a plain line per task keeps its handle in the logs of a run
        // that is stopped before it ends; the emulator's tasks end with the run anyway.
        let plain = !print_handles && !emulated && !progress.is_visible() && !progress.is_quiet();
        move |handle: &JobHandle| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(handle.clone());
            let label = provider_label(handle.provider, emulated);
            progress.task(&label, handle, "created");
            if print_handles && let Err(error) = stdout::write_json(&handle.to_json()) {
                // The receipt did not reach stdout: stderr keeps it.
                progress.eprint(&[format!(
                    "imggen: could not write the handle to standard output ({error}); keep it: {}",
                    handle.to_json()
                )]);
            }
            if plain {
                progress.eprint(&[format!(
                    "imggen: created {label} task {}; if this run stops, resume it with: imggen wait {handle}",
                    handle.task_id
                )]);
            }
        }
    };
    let mut options = SubmitOptions::fallback(route.ids()).on_handle(on_handle);
    options.deadline = deadline;
    match imggen.submit(request, &options).await {
        Ok(submission) => {
            let label = provider_label(submission.provider, emulated);
            report.output.provider = Some(label.clone());
            report.output.tasks = submission
                .handles
                .iter()
                .map(|handle| TaskOutput::new(&label, handle, "created"))
                .collect();
            report.output.cost = CostOutput::from(submission.cost());
            let mut lines = Vec::new();
            for skipped in &submission.fallback.skipped {
                let message = format!(
                    "{} did not accept the request, nothing was charged: {}",
                    skipped.provider,
                    exit::one_line(&skipped.error.to_string())
                );
                lines.push(format!("imggen: {message}"));
                report.output.warnings.push(WarningOutput {
                    provider: skipped.provider.to_string(),
                    setting: None,
                    value: None,
                    message,
                });
            }
            for warning in &submission.warnings {
                lines.push(format!("imggen: warning: {warning}"));
                report.output.warnings.push(WarningOutput::from(warning));
            }
            notice(ctx, &lines);
            Ok(submission)
        }
        Err(error) => {
            let mut failure = Failure::from_core(&error, emulated);
            let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
            for handle in seen {
                if !failure.facts.handles.contains(&handle) {
                    failure.facts.handles.push(handle);
                }
            }
            ctx.progress.finish_all("stopped");
            record_failed_tasks(report, &failure.facts.handles, &error, emulated);
            if report.output.provider.is_none() {
                report.output.provider = failure
                    .facts
                    .provider
                    .clone()
                    .or_else(|| Some(route.first_label()));
            }
            Err(failure)
        }
    }
}

/// Lists every task an error carries, with what is known of its status.
fn record_failed_tasks(report: &mut Report, handles: &[JobHandle], error: &Error, emulated: bool) {
    let mut known: HashMap<&str, String> = HashMap::new();
    match error {
        Error::TaskFailed(e) => {
            known.insert(e.handle.task_id.as_str(), "failed".into());
        }
        Error::DeadlineExceeded(e) => {
            if let Some(state) = &e.last_state {
                known.insert(e.handle.task_id.as_str(), state.name().to_owned());
            }
        }
        _ => {}
    }
    report.output.tasks = handles
        .iter()
        .map(|handle| {
            let status = known
                .get(handle.task_id.as_str())
                .cloned()
                .unwrap_or_else(|| "created".into());
            TaskOutput::new(&provider_label(handle.provider, emulated), handle, status)
        })
        .collect();
    report.output.cost = CostOutput::from(
        handles
            .iter()
            .filter_map(|handle| handle.cost)
            .sum::<imggen_core::Cost>(),
    );
}

/// Waits for `handles` and downloads their images into `--out`, within the overall deadline
/// counted from `started`.
async fn collect(
    imggen: &Imggen,
    handles: &[JobHandle],
    waiting: &WaitingArgs,
    started: Instant,
    emulated: bool,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<(), Failure> {
    let progress = Arc::clone(&ctx.progress);
    let mut options = GenerateOptions::default()
        .download(DownloadOptions::to_dir(&waiting.out))
        .cancel(ctx.cancel.clone())
        .on_status(move |handle, status| progress.status(&handle.task_id, status.state.name()));
    if let Some(timeout) = waiting.timeout {
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        options = options.deadline(left);
    }
    match imggen.resume(handles, &options).await {
        Ok(generation) => {
            for handle in handles {
                ctx.progress.finish(&handle.task_id, "succeeded");
            }
            for task in &mut report.output.tasks {
                task.status = "succeeded".into();
            }
            for image in &generation.images {
                let output = ImageOutput::from(image);
                if let Some(path) = &output.path {
                    report.stdout.push(path.clone());
                }
                report.output.images.push(output);
            }
            Ok(())
        }
        Err(error) => {
            let failure = Failure::from_core(&error, emulated);
            let stopped = match Category::of(&error) {
                Category::Failed => "failed",
                Category::Deadline => "deadline passed",
                Category::Cancelled => "interrupted",
                _ => "stopped",
            };
            ctx.progress.finish_all(stopped);
            let mut all: Vec<JobHandle> = handles.to_vec();
            for handle in &failure.facts.handles {
                if !all.contains(handle) {
                    all.push(handle.clone());
                }
            }
            record_failed_tasks(report, &all, &error, emulated);
            Err(failure)
        }
    }
}

async fn generate(args: &GenerateArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    let request_args = &args.request;
    let settings = &request_args.settings;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    report.output.provider = Some(route.first_label());
    let request = build_request(request_args, &route)?;
    // Everything local is checked before anything is paid for: where the images go…
    DownloadOptions::to_dir(&args.waiting.out)
        .check()
        .await
        .map_err(|error| Failure::from_core(&error, route.emulated()))?;
    let (imggen, emulator) = imggen_for_route(
        &route,
        request_args,
        args.waiting.poll_interval,
        ctx,
        report,
    )
    .await?;
    if settings.strict {
        check_strict(&imggen, &request, &route)?;
    }
    // …and every create, like every other request, ends by the overall deadline.
    let left = args
        .waiting
        .timeout
        .map(|timeout| timeout.saturating_sub(started.elapsed()));
    let submission = submit(&imggen, &request, &route, false, left, ctx, report).await?;
    let result = collect(
        &imggen,
        &submission.handles,
        &args.waiting,
        started,
        route.emulated(),
        ctx,
        report,
    )
    .await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    result
}

async fn submit_only(args: &RequestArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let settings = &args.settings;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    report.output.provider = Some(route.first_label());
    if route.emulated() {
        return Err(Failure::usage(
            "submit needs a provider that outlives this process, and the built-in emulator stops when imggen exits",
        )
        .provider("mock")
        .hint("set a provider's API key, or run `imggen mock` in another terminal and export the variables it prints; `imggen generate` uses the emulator directly"));
    }
    let request = build_request(args, &route)?;
    let imggen = real_imggen(&route.ids(), None, settings.allow_extra_tasks)?;
    if settings.strict {
        check_strict(&imggen, &request, &route)?;
    }
    submit(&imggen, &request, &route, !args.json, None, ctx, report).await?;
    ctx.progress.finish_all("created");
    Ok(())
}

fn providers_of(handles: &[JobHandle]) -> Vec<ProviderId> {
    let mut providers: Vec<ProviderId> = Vec::new();
    for handle in handles {
        if !providers.contains(&handle.provider) {
            providers.push(handle.provider);
        }
    }
    providers
}

async fn status(args: &StatusArgs, report: &mut Report) -> Result<(), Failure> {
    let handles = parse_handles(&args.handles)?;
    report.output.provider = handles.first().map(|h| h.provider.to_string());
    let imggen = real_imggen(&providers_of(&handles), None, false)?;
    for handle in &handles {
        let status = match imggen.status(handle).await {
            Ok(status) => status,
            Err(error) => {
                let failure = Failure::from_core(&error, false);
                report.output.cost = CostOutput::from(
                    handles
                        .iter()
                        .filter_map(|h| h.cost)
                        .sum::<imggen_core::Cost>(),
                );
                return Err(failure);
            }
        };
        let label = handle.provider.to_string();
        let mut line = format!("{handle}\t{}", status.state.name());
        match &status.state {
            JobState::Succeeded { images } => {
                for image in images {
                    line.push('\t');
                    line.push_str(&image.url);
                    report.output.images.push(ImageOutput {
                        task_id: handle.task_id.clone(),
                        path: None,
                        url: image.url.clone(),
                        media_type: image.media_type.clone(),
                        width: None,
                        height: None,
                        bytes: None,
                    });
                }
            }
            JobState::Failed { code, message } => {
                let words: Vec<&str> = [code.as_deref(), message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !words.is_empty() {
                    line.push('\t');
                    line.push_str(&exit::one_line(&words.join(": ")));
                }
            }
            _ => {}
        }
        report.stdout.push(line);
        report
            .output
            .tasks
            .push(TaskOutput::new(&label, handle, status.state.name()));
    }
    report.output.cost = CostOutput::from(
        handles
            .iter()
            .filter_map(|h| h.cost)
            .sum::<imggen_core::Cost>(),
    );
    Ok(())
}

async fn wait(args: &WaitArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    let handles = parse_handles(&args.handles)?;
    report.output.provider = handles.first().map(|h| h.provider.to_string());
    let imggen = real_imggen(&providers_of(&handles), args.waiting.poll_interval, false)?;
    for handle in &handles {
        let label = handle.provider.to_string();
        ctx.progress.task(&label, handle, "waiting");
        report
            .output
            .tasks
            .push(TaskOutput::new(&label, handle, "created"));
    }
    report.output.cost = CostOutput::from(
        handles
            .iter()
            .filter_map(|h| h.cost)
            .sum::<imggen_core::Cost>(),
    );
    collect(
        &imggen,
        &handles,
        &args.waiting,
        started,
        false,
        ctx,
        report,
    )
    .await
}

fn providers_command(args: &ProvidersArgs) -> u8 {
    let text = if args.json {
        providers::json(key_set)
    } else {
        providers::table(key_set)
    };
    let _ = stdout::write_lines(&[text]);
    exit::SUCCESS
}

async fn mock(mut args: MockCommand, ctx: &Ctx) -> u8 {
    if args.mock.api_keys.is_empty() {
        // One fixed key, so the banner prints the key variables to export too.
        args.mock.api_keys.push("sk-imggen-mock".to_owned());
    }
    let mut stdout = std::io::stdout();
    match imggen_mock::cli::run(args.mock, &mut stdout).await {
        Ok(()) => exit::SUCCESS,
        Err(error) => {
            let failure = Failure::new(Category::Other, format!("mock: {}", chain(&error)));
            ctx.progress.eprint(&failure.lines());
            exit::OTHER
        }
    }
}

fn completions(args: &CompletionsArgs) -> u8 {
    use clap::CommandFactory as _;
    let mut command = crate::args::Cli::command();
    clap_complete::generate(args.shell, &mut command, "imggen", &mut std::io::stdout());
    exit::SUCCESS
}

/// An error and its sources on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::Cli;

    fn request_args(extra: &[&str]) -> RequestArgs {
        let mut argv = vec!["imggen", "submit", "a fox"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Submit(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_default_provider_is_the_first_with_a_key_else_the_emulator() {
        let none = Route::resolve(None, &[], |_| false).unwrap();
        assert_eq!(none.choices, [ProviderChoice::Mock]);
        assert!(none.implicit && none.emulated());

        let runbase_only = Route::resolve(None, &[], |id| id == ProviderId::Runbase).unwrap();
        assert_eq!(runbase_only.choices, [ProviderChoice::Runbase]);
        let all = Route::resolve(None, &[], |_| true).unwrap();
        assert_eq!(all.choices, [ProviderChoice::Gptimg]);
        assert!(!all.implicit);
    }

    #[test]
    fn fallback_follows_the_provider_and_never_mixes_in_the_emulator() {
        let route = Route::resolve(
            Some(ProviderChoice::Runblob),
            &[ProviderChoice::Runbase, ProviderChoice::Runblob],
            |_| true,
        )
        .unwrap();
        assert_eq!(route.ids(), [ProviderId::Runblob, ProviderId::Runbase]);
        let alone = Route::resolve(
            None,
            &[ProviderChoice::Runbase, ProviderChoice::Gptimg],
            |_| false,
        )
        .unwrap();
        assert_eq!(alone.ids(), [ProviderId::Runbase, ProviderId::Gptimg]);
        let mixed = Route::resolve(
            Some(ProviderChoice::Mock),
            &[ProviderChoice::Gptimg],
            |_| true,
        )
        .unwrap_err();
        assert_eq!(mixed.category, Category::Invalid);
        assert!(
            mixed.message.contains("mock cannot be combined"),
            "{}",
            mixed.message
        );
    }

    #[test]
    fn options_go_to_every_provider_or_to_the_one_named() {
        let route = Route {
            choices: vec![ProviderChoice::Runbase],
            implicit: false,
        };
        let request = build_request(
            &request_args(&[
                "--option",
                "resolution=2K",
                "--option",
                "input.seed=7",
                "--ref",
                "https://example.com/a.png",
                "--ref",
                "sketch.png",
            ]),
            &route,
        )
        .unwrap();
        assert_eq!(request.options.runbase.resolution.as_deref(), Some("2K"));
        assert_eq!(request.options.runbase.input["seed"], 7);
        assert_eq!(
            request.references,
            [
                Reference::url("https://example.com/a.png"),
                Reference::file("sketch.png")
            ]
        );

        let both = Route {
            choices: vec![ProviderChoice::Runblob, ProviderChoice::Runbase],
            implicit: false,
        };
        let err = build_request(&request_args(&["--option", "quality=flare"]), &both).unwrap_err();
        assert!(err.message.contains("unknown key"), "{}", err.message);
        assert!(err.hint.unwrap().contains("runblob.quality=flare"));
        let scoped =
            build_request(&request_args(&["--option", "runblob.quality=flare"]), &both).unwrap();
        assert_eq!(scoped.options.runblob.quality.as_deref(), Some("flare"));

        let elsewhere =
            build_request(&request_args(&["--option", "gptimg.n=2"]), &route).unwrap_err();
        assert!(
            elsewhere.message.contains("does not use"),
            "{}",
            elsewhere.message
        );
        let malformed =
            build_request(&request_args(&["--option", "resolution"]), &route).unwrap_err();
        assert!(
            malformed.message.contains("KEY=VALUE"),
            "{}",
            malformed.message
        );
    }
}
