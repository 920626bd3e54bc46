//! The steps `generate`, `submit` and `wait` share: creating the tasks (each handle shown
//! and kept the moment it exists) and collecting them (waiting, downloading), each recorded
//! in the command's report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::{
    DownloadOptions, Error, GenerateOptions, GenerationRequest, Imggen, ProviderId, Spending,
    Submission, SubmitOptions, TaskHandle,
};

use crate::args::WaitingArgs;
use crate::context::Ctx;
use crate::exit::{self, Category, Failure, provider_label};
use crate::output::{CostOutput, ImageOutput, TaskOutput, WarningOutput};
use crate::report::Report;
use crate::route::Route;
use crate::stdout;

/// What bounds a command's creates.
#[derive(Default)]
pub(crate) struct Limits {
    /// Every create ends this long from now.
    pub deadline: Option<Duration>,
    /// Only what fits under this ledger's cap is created (`--max-cost`).
    pub spending: Option<Spending>,
}

/// Creates the tasks within `limits`. Each handle is
/// recorded (and shown) the moment its task exists; `print_handles` also writes it to stdout
/// at once, as the receipt.
pub(crate) async fn submit(
    imggen: &Imggen,
    request: &GenerationRequest,
    route: &Route,
    print_handles: bool,
    limits: Limits,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<Submission, Failure> {
    let emulated = route.emulated();
    let seen: Arc<Mutex<Vec<TaskHandle>>> = Arc::default();
    let on_handle = {
        let seen = Arc::clone(&seen);
        let progress = Arc::clone(&ctx.progress);
        let history = Arc::clone(&ctx.history);
        // Without live lines, the line of a created task keeps its handle in the logs of a
        // run that is stopped before it ends — unless stdout has it, or it is the emulator's
        // (its tasks end with the run anyway).
        let resumable = !print_handles && !emulated;
        move |handle: &TaskHandle| {
            // Kept first, before anything else can fail: the emulator's tasks end with the
            // run, so only real ones are kept.
            if !emulated {
                history.created(handle);
            }
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(handle.clone());
            let label = provider_label(handle.provider, emulated);
            progress.created(&label, handle, resumable);
            if print_handles && let Err(error) = stdout::write_json(&handle.to_json()) {
                // The receipt did not reach stdout: stderr keeps it.
                progress.eprint(&[format!(
                    "imggen: could not write the handle to standard output ({error}); keep it: {}",
                    handle.to_json()
                )]);
            }
        }
    };
    let mut options = SubmitOptions::fallback(route.ids()).on_handle(on_handle);
    options.deadline = limits.deadline;
    options.spending = limits.spending;
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
            ctx.progress.cost(submission.cost());
            for skipped in &submission.fallback.skipped {
                let message = format!(
                    "{} did not accept the request, nothing was charged: {}",
                    skipped.provider,
                    exit::one_line(&skipped.error.to_string())
                );
                ctx.progress.notice(&message);
                report.output.warnings.push(WarningOutput {
                    provider: skipped.provider.to_string(),
                    setting: None,
                    value: None,
                    message,
                });
            }
            for warning in &submission.warnings {
                ctx.progress.warning(&warning.to_string());
                report.output.warnings.push(WarningOutput::from(warning));
            }
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
pub(crate) fn record_failed_tasks(
    report: &mut Report,
    handles: &[TaskHandle],
    error: &Error,
    emulated: bool,
) {
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

/// How `collect` waits, beside `--out` and the other waiting options.
pub(crate) struct Collecting {
    /// When the command started: the overall deadline counts from then.
    pub started: Instant,
    /// The tasks run on the in-process emulator.
    pub emulated: bool,
    /// Callbacks heard by `--listen`, to shorten the waits.
    pub events: Option<imggen_core::WebhookHub>,
}

/// Waits for `handles` and downloads their images into `--out`, within the overall deadline
/// counted from `how.started`.
pub(crate) async fn collect(
    imggen: &Imggen,
    handles: &[TaskHandle],
    waiting: &WaitingArgs,
    how: Collecting,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<(), Failure> {
    let Collecting {
        started,
        emulated,
        events,
    } = how;
    let progress = Arc::clone(&ctx.progress);
    let history = (!emulated).then(|| Arc::clone(&ctx.history));
    let mut download = DownloadOptions::to_dir(&waiting.out);
    if let Some(names) = &waiting.name {
        download = download.names(names.clone());
    }
    if let Some(conversion) = waiting.conversion().map_err(Failure::usage)? {
        download = download.convert(conversion);
    }
    let mut options = GenerateOptions::default()
        .download(download)
        .cancel(ctx.cancel.clone())
        .on_status({
            let history = history.clone();
            move |handle, status| {
                progress.status(&handle.task_id, &status.state);
                if let Some(history) = &history {
                    history.status(handle, status.state.name());
                }
            }
        });
    if let Some(hub) = events {
        options = options.events(hub);
    }
    if let Some(timeout) = waiting.timeout {
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        options = options.deadline(left);
    }
    // Summary lines at a steady pace while the tasks are waited on (plain).
    let ticker = ctx.progress.ticker();
    let result = imggen.resume(handles, &options).await;
    drop(ticker);
    match result {
        Ok(generation) => {
            for handle in handles {
                ctx.progress.finish(&handle.task_id, "succeeded");
            }
            for task in &mut report.output.tasks {
                task.status = "succeeded".into();
            }
            for image in &generation.images {
                let output = ImageOutput::from(image);
                // The converted file first, then the provider's when kept.
                for path in output.path.iter().chain(&output.original_path) {
                    ctx.progress.saved(&image.task_id, path);
                    report.stdout.push(path.clone());
                }
                report.output.images.push(output);
            }
            // Images kept as they came: the conversion asked for could not be done.
            for warning in &generation.warnings {
                ctx.progress.warning(&warning.to_string());
                report.output.warnings.push(WarningOutput::from(warning));
            }
            if let Some(history) = &history {
                for handle in handles {
                    let files: Vec<String> = report
                        .output
                        .images
                        .iter()
                        .filter(|image| image.task_id == handle.task_id)
                        .flat_map(|image| image.path.iter().chain(&image.original_path))
                        .cloned()
                        .collect();
                    history.saved(handle, &files);
                }
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
            let mut all: Vec<TaskHandle> = handles.to_vec();
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

/// The providers of `handles`, each once, in order.
pub(crate) fn providers_of(handles: &[TaskHandle]) -> Vec<ProviderId> {
    let mut providers: Vec<ProviderId> = Vec::new();
    for handle in handles {
        if !providers.contains(&handle.provider) {
            providers.push(handle.provider);
        }
    }
    providers
}
