//! The runner: checks every line before anything is sent, reads the journal, and runs each
//! request's next step with bounded concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{RwLock, Semaphore};

use super::{
    BatchError, BatchEventKind, BatchInput, BatchOptions, BatchReport, BatchRequest, Category,
    InputErrors, Item, Journal, JournalError, LineError, ORPHAN_NOT_SENT, RequestState, Run, Step,
    Tracker, UNKNOWN_AFTER_STOP, UnknownRequest, collect, lock, results,
};
use crate::handle::{self};
use crate::plan::PlanOptions;
use crate::provider::ProviderId;
use crate::{CancellationToken, Imggen};

/// Runs batches with one [`Imggen`] (and so one request budget per key).
#[derive(Clone, Debug)]
pub struct BatchRunner {
    imggen: Imggen,
    options: BatchOptions,
}

impl BatchRunner {
    /// A runner of batches through `imggen`.
    pub fn new(imggen: Imggen, options: BatchOptions) -> Self {
        BatchRunner { imggen, options }
    }

    /// The options.
    pub fn options(&self) -> &BatchOptions {
        &self.options
    }

    /// The requests no provider of their route can serve as asked (a ratio it does not make,
    /// a provider not configured) or whose reference files cannot be read, as invalid lines.
    /// Nothing is sent.
    pub fn check(&self, input: &BatchInput) -> Vec<LineError> {
        input
            .requests
            .iter()
            .filter_map(|request| {
                let invalid = |problem: String| {
                    Some(LineError::new(
                        request.line,
                        Some(request.id.clone()),
                        problem,
                    ))
                };
                let route = self.route(&request.providers);
                if route.is_empty() {
                    return invalid("no provider is configured".to_owned());
                }
                let mut problems = Vec::new();
                let servable = route.iter().any(|provider| {
                    let found = match self.imggen.provider(*provider) {
                        Ok(found) => found,
                        Err(error) => {
                            problems.push(error.to_string());
                            return false;
                        }
                    };
                    match found.plan(&request.request, self.plan_options()) {
                        Ok(_) => true,
                        Err(error) => {
                            problems.push(error.to_string());
                            false
                        }
                    }
                });
                if !servable {
                    return invalid(problems.join("; "));
                }
                // A reference file that cannot be read would fail its line only once earlier
                // lines were paid for: every one is opened now.
                let unreadable: Vec<String> = request
                    .request
                    .references
                    .iter()
                    .filter_map(|reference| match reference {
                        crate::Reference::File(path) => std::fs::File::open(path)
                            .err()
                            .map(|error| format!("reference file {}: {error}", path.display())),
                        _ => None,
                    })
                    .collect();
                if unreadable.is_empty() {
                    None
                } else {
                    invalid(unreadable.join("; "))
                }
            })
            .collect()
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            strictness: self.imggen.inner.strictness,
            allow_extra_tasks: self.imggen.inner.allow_extra_tasks,
        }
    }

    /// The providers a request goes to: its own, or the first configured.
    fn route(&self, providers: &[ProviderId]) -> Vec<ProviderId> {
        if providers.is_empty() {
            self.imggen.providers().into_iter().take(1).collect()
        } else {
            providers.to_vec()
        }
    }

    /// Runs the batch — or resumes it, when its journal exists (see the [module docs](crate::batch)).
    ///
    /// Nothing is sent when a line is invalid (unless [`BatchOptions::skip_invalid`]), when
    /// the journal belongs to another batch, or when another process has it open. Requests
    /// that do not finish are not an error: the report says how each one stands.
    pub async fn run(&self, input: BatchInput) -> Result<BatchReport, BatchError> {
        let options = &self.options;
        let until = self.imggen.deadline_from_now(options.time_limit);
        if options.concurrency == 0 {
            return Err(BatchError::Config(
                "the concurrency must be at least 1".into(),
            ));
        }
        let mut invalid = input.invalid;
        let unservable = self.check(&BatchInput {
            requests: input.requests.clone(),
            invalid: Vec::new(),
        });
        let unservable_lines: std::collections::HashSet<usize> =
            unservable.iter().map(|error| error.line).collect();
        let mut requests = input.requests;
        requests.retain(|request| !unservable_lines.contains(&request.line));
        invalid.extend(unservable);
        invalid.sort_by_key(|error| error.line);
        if !invalid.is_empty() && !options.skip_invalid {
            return Err(BatchError::InvalidInput(InputErrors { lines: invalid }));
        }

        let out_dir = options.out_dir.clone();
        // Before anything is sent: the images and results.jsonl must have somewhere to go.
        let probe_dir = out_dir.clone();
        tokio::task::spawn_blocking(move || imggen_http::fs::check_writable_dir(&probe_dir))
            .await
            .map_err(|join| BatchError::Config(format!("the folder check stopped: {join}")))?
            .map_err(|error| BatchError::Io {
                path: error.path,
                source: error.cause,
            })?;
        let journal_path = options.journal_path();
        let journal = Arc::new(Journal::open_with_clock(
            &journal_path,
            Arc::clone(&self.imggen.inner.clock),
        )?);
        // Before this run writes anything: a process that stopped did so after this.
        let previous_activity = journal.last_activity()?;
        journal.plan(&requests)?;
        collect::remove_partial_files(&out_dir);

        let entries = journal.entries()?;
        let mut items: HashMap<String, Item> = requests
            .into_iter()
            .map(|request| {
                (
                    request.id.clone(),
                    Item {
                        request,
                        orphan: false,
                    },
                )
            })
            .collect();
        let mut steps: Vec<(usize, usize, Step, String)> = Vec::new();
        let mut tracker = Tracker::default();
        let mut skipped_done = 0;
        for entry in &entries {
            let item = items.entry(entry.id.clone()).or_insert_with(|| Item {
                request: BatchRequest::new(
                    entry.id.clone(),
                    entry.line,
                    entry.request.clone(),
                    entry.providers.clone(),
                ),
                orphan: true,
            });
            let step = match entry.state {
                RequestState::Done => {
                    let missing = entry
                        .files()
                        .iter()
                        .any(|file| !out_dir.join(file).exists());
                    skipped_done += 1;
                    missing.then_some(Step::Collect)
                }
                RequestState::Failed => None,
                RequestState::Submitted => Some(Step::Collect),
                RequestState::Submitting | RequestState::Unknown => Some(Step::Reconcile {
                    resubmit: options.resubmit_unknown && !item.orphan,
                }),
                RequestState::Planned if item.orphan => {
                    journal.set_error(&entry.id, Some(ORPHAN_NOT_SENT))?;
                    None
                }
                RequestState::Planned => Some(Step::Submit),
            };
            let category = match (entry.state, step) {
                (RequestState::Done, _) => Category::Done,
                (RequestState::Failed, _) => Category::Failed,
                (_, Some(_)) => Category::Queued,
                (RequestState::Unknown | RequestState::Submitting, None) => Category::Unknown,
                (_, None) => Category::Pending,
            };
            tracker.set(&entry.id, category, entry.cost());
            if let Some(step) = step {
                let order = match step {
                    Step::Collect => 0,
                    Step::Reconcile { .. } => 1,
                    Step::Submit => 2,
                };
                steps.push((order, entry.line, step, entry.id.clone()));
            }
        }
        tracker.progress.finished_before = tracker.progress.finished();
        // Paid tasks first: collecting them frees nothing but loses nothing either; then the
        // unknown ones, then new submissions, each group in line order.
        steps.sort_by_key(|(order, line, _, _)| (*order, *line));

        let cancel = options
            .cancel
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token);
        let run = Arc::new(Run {
            imggen: self.imggen.clone(),
            options: options.clone(),
            out_dir: out_dir.clone(),
            journal: Arc::clone(&journal),
            items,
            slots: Semaphore::new(options.concurrency),
            creates: RwLock::new(()),
            tracker: Mutex::new(tracker),
            cancel: cancel.clone(),
            plan_options: self.plan_options(),
            previous_activity,
            adopted: Mutex::new(Vec::new()),
            resubmitted: Mutex::new(Vec::new()),
            until,
        });
        run.emit(None, BatchEventKind::Started);

        let mut running: FuturesUnordered<_> = steps
            .into_iter()
            .map(|(_, _, step, id)| {
                let run = Arc::clone(&run);
                async move {
                    let result = run.step(&id, step).await;
                    (id, result)
                }
            })
            .collect();
        let mut fatal: Option<JournalError> = None;
        while let Some((id, result)) = running.next().await {
            if let Err(error) = result {
                tracing::error!(request = %id, %error, "the journal failed; stopping the batch");
                cancel.cancel();
                fatal.get_or_insert(error);
            }
        }
        if let Some(error) = fatal {
            return Err(BatchError::Journal(error));
        }

        let entries = journal.entries()?;
        let skipped: Vec<LineError> = invalid
            .into_iter()
            .filter(|error| {
                error
                    .id
                    .as_ref()
                    .is_none_or(|id| !entries.iter().any(|entry| &entry.id == id))
            })
            .collect();
        let results = results::lines(&entries, &skipped);
        let results_path =
            results::write(&out_dir, &results)
                .await
                .map_err(|error| BatchError::Io {
                    path: error.path,
                    source: error.cause,
                })?;
        let unknown = entries
            .iter()
            .filter(|entry| {
                matches!(
                    entry.state,
                    RequestState::Unknown | RequestState::Submitting
                )
            })
            .map(|entry| UnknownRequest {
                id: entry.id.clone(),
                line: entry.line,
                prompt: entry.request.prompt.clone(),
                provider: entry.provider,
                providers: entry.providers.clone(),
                attempted_at: entry.submitting_at.map(handle::format_time),
                attempts: entry.attempts,
                task_ids: entry
                    .tasks
                    .iter()
                    .map(|task| task.handle.task_id.clone())
                    .collect(),
                reason: entry
                    .error
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
            })
            .collect();
        run.emit(None, BatchEventKind::Finished);
        let progress = run.progress();
        let adopted = std::mem::take(&mut *lock(&run.adopted));
        let resubmitted = std::mem::take(&mut *lock(&run.resubmitted));
        drop(run);
        Ok(BatchReport {
            results,
            results_path,
            journal_path,
            progress,
            unknown,
            adopted,
            resubmitted,
            skipped_done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run can be spawned on a multi-threaded runtime: this compiles only if its future is
    /// `Send`.
    #[allow(dead_code)]
    fn a_run_is_a_send_future(runner: &BatchRunner) -> impl Send + '_ {
        runner.run(BatchInput::default())
    }
}
