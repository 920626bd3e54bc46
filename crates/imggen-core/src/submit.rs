//! Submitting: plan, create each task once (retried only when the answer proves nothing was
//! charged), hand each receipt over the moment it exists, and fall back only when a provider
//! provably did not accept the task.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use imggen_types::text::Untrusted;
use tracing::Instrument as _;

use crate::Imggen;
use crate::budget::Scheduler;
use crate::call::{Call, CallFailure, RetryLimit};
use crate::cost::Cost;
use crate::error::{
    self, CallError, CallErrorKind, CallOperation, CreateOutcomeUnknownError, Error,
    ProviderAttempt, RefusedError,
};
use crate::handle::{self, RequestSummary, TaskHandle};
use crate::plan::{PlannedTask, Warning};
use crate::policy::Decision;
use crate::provider::{Provider, ProviderId};
use crate::request::GenerationRequest;
use crate::spend::Spending;

/// Called with each [`TaskHandle`] the moment its task exists, before anything else can fail.
pub type HandleCallback = Arc<dyn Fn(&TaskHandle) + Send + Sync>;

/// Where and how to submit.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SubmitOptions {
    /// The providers to try, in order. Empty: the first provider configured. The next is
    /// tried only when the previous one provably did not accept the task (402, 429 after the
    /// retries, 503, a request it cannot serve) — never after a task was accepted, never when
    /// a create's outcome is unknown.
    pub providers: Vec<ProviderId>,
    /// Called with each handle as soon as its task exists (persist it there).
    pub on_handle: Option<HandleCallback>,
    /// Every create ends this long after the submission starts: none is sent later, and one
    /// still unanswered then is cut off — its outcome unknown, never resubmitted
    /// ([`Error::CreateOutcomeUnknown`]). `None`: each create has its client's own timeout.
    pub deadline: Option<std::time::Duration>,
    /// The spending cap every create checks, before it is sent, against what this ledger
    /// (shared by its clones) has spent: [`Error::SpendingCap`] when the plan's price would
    /// pass it.
    pub spending: Option<Spending>,
}

impl fmt::Debug for SubmitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitOptions")
            .field("providers", &self.providers)
            .field("on_handle", &self.on_handle.is_some())
            .field("deadline", &self.deadline)
            .field("spending", &self.spending)
            .finish()
    }
}

impl SubmitOptions {
    /// Submit to one provider.
    pub fn provider(provider: ProviderId) -> Self {
        SubmitOptions {
            providers: vec![provider],
            ..SubmitOptions::default()
        }
    }

    /// Submit to the first of `providers` that accepts the task.
    pub fn fallback(providers: impl IntoIterator<Item = ProviderId>) -> Self {
        SubmitOptions {
            providers: providers.into_iter().collect(),
            ..SubmitOptions::default()
        }
    }

    /// Sets the handle callback.
    pub fn on_handle(mut self, callback: impl Fn(&TaskHandle) + Send + Sync + 'static) -> Self {
        self.on_handle = Some(Arc::new(callback));
        self
    }

    /// Sets the deadline of every create.
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Creates only what fits under `spending`'s cap.
    pub fn spending(mut self, spending: Spending) -> Self {
        self.spending = Some(spending);
        self
    }
}

/// Which provider served a request, and why the ones before it did not.
#[derive(Debug)]
#[non_exhaustive]
pub struct FallbackReport {
    /// The provider that accepted the tasks.
    pub served_by: ProviderId,
    /// The providers tried before it, in order, each with the error that proves it did not
    /// accept the task (nothing was charged by them).
    pub skipped: Vec<ProviderAttempt>,
}

/// Tasks created (and paid for).
#[derive(Debug)]
#[non_exhaustive]
pub struct Submission {
    /// The provider that accepted them.
    pub provider: ProviderId,
    /// One handle per task, in task order.
    pub handles: Vec<TaskHandle>,
    /// Settings dropped or sent unchecked.
    pub warnings: Vec<Warning>,
    /// Why earlier providers of the fallback list did not serve it.
    pub fallback: FallbackReport,
}

impl Submission {
    /// What the creates charged, summed exactly (unknown charges count as zero; see each
    /// handle's `cost`).
    pub fn cost(&self) -> Cost {
        self.handles.iter().filter_map(|handle| handle.cost).sum()
    }
}

/// A failed create of one task.
struct CreateFailure {
    call: CallError,
    decision: Decision,
    attempted_at: SystemTime,
}

impl Imggen {
    /// Plans the request and creates its tasks with the first provider that accepts them.
    ///
    /// - Each create is sent once, and retried only when the answer proves nothing was
    ///   charged (the [`policy`](crate::policy)). A create, once sent, runs to its answer even if this future
    ///   is dropped, and its handle still reaches [`SubmitOptions::on_handle`].
    /// - A create whose answer was lost is [`Error::CreateOutcomeUnknown`]: not resubmitted,
    ///   not sent to another provider.
    /// - Several tasks (`n` above the per-task maximum, when allowed) are created at most
    ///   [`max_concurrent_tasks`](crate::ImggenBuilder::max_concurrent_tasks) at a time; after a
    ///   failure no new one starts, and the handles of those created are in the error.
    pub async fn submit(
        &self,
        request: &GenerationRequest,
        options: &SubmitOptions,
    ) -> Result<Submission, Error> {
        let mut order: Vec<ProviderId> = Vec::new();
        for id in &options.providers {
            if !order.contains(id) {
                order.push(*id);
            }
        }
        if order.is_empty() {
            order.extend(self.providers().first().copied());
        }
        // Every provider of the list must be usable before anything is sent.
        for id in &order {
            self.provider(*id)?;
        }
        let until = self.deadline_from_now(options.deadline);
        let mut skipped: Vec<ProviderAttempt> = Vec::new();
        for id in order.iter().copied() {
            let span = tracing::info_span!("imggen.submit", provider = %id);
            match self
                .submit_to(id, request, options, until)
                .instrument(span)
                .await
            {
                Ok((handles, warnings)) => {
                    return Ok(Submission {
                        provider: id,
                        handles,
                        warnings,
                        fallback: FallbackReport {
                            served_by: id,
                            skipped,
                        },
                    });
                }
                Err(SubmitError::NotAccepted(error)) => {
                    tracing::info!(provider = %id, error = %error, "not accepted; trying the next provider");
                    skipped.push(ProviderAttempt {
                        provider: id,
                        error: *error,
                    });
                }
                Err(SubmitError::Fatal(error)) => return Err(*error),
            }
        }
        if skipped.len() == 1 {
            // One provider: its own error says more than a list of one.
            return Err(skipped.remove(0).error);
        }
        Err(Error::AllProvidersFailed(Box::new(
            error::AllProvidersFailedError { attempts: skipped },
        )))
    }

    async fn submit_to(
        &self,
        id: ProviderId,
        request: &GenerationRequest,
        options: &SubmitOptions,
        until: Option<Instant>,
    ) -> Result<(Vec<TaskHandle>, Vec<Warning>), SubmitError> {
        let plan = match self.plan(request, id) {
            Ok(plan) => plan,
            Err(error @ Error::Plan(_)) => return Err(SubmitError::NotAccepted(Box::new(error))),
            Err(error) => return Err(SubmitError::Fatal(Box::new(error))),
        };
        let provider = self.provider(id).map_err(SubmitError::fatal)?;
        let scheduler = self.scheduler(&provider).map_err(SubmitError::fatal)?;
        let mut tasks = plan.tasks;
        if let Some(first) = tasks.first() {
            // Files are read and bytes encoded once, before the first create: a missing file
            // fails the whole submission before a byte is sent, whatever the provider.
            let references = provider.prepare(&first.references).await.map_err(|call| {
                SubmitError::fatal(Error::invalid(Some(id), call.to_string(), Some(call)))
            })?;
            for task in &mut tasks {
                task.references = references.clone();
            }
        }
        // The whole plan's price is held just before the first create (nothing that fails
        // before it holds any): a request is never left half-created by the cap.
        let reservation = match &options.spending {
            Some(spending) => Some(
                spending
                    .reserve(id, plan.estimated_cost)
                    .map_err(|error| SubmitError::fatal(Error::SpendingCap(error)))?,
            ),
            None => None,
        };
        let summary = RequestSummary::of(request);
        let mut running = FuturesUnordered::new();
        let mut next = 0;
        let mut accepted: Vec<(usize, TaskHandle)> = Vec::new();
        let mut failure: Option<CreateFailure> = None;
        // Charged, or perhaps charged (an unknown outcome, at its planned price).
        let mut charged = Cost::ZERO;
        loop {
            while failure.is_none()
                && running.len() < self.inner.max_concurrent_tasks
                && next < tasks.len()
            {
                let job = TaskCreate {
                    imggen: self.clone(),
                    provider: Arc::clone(&provider),
                    scheduler: scheduler.clone(),
                    task: tasks[next].clone(),
                    summary: summary.clone(),
                    on_handle: options.on_handle.clone(),
                    until,
                };
                let index = next;
                // Spawned: a create that was sent always runs to its answer, and its handle
                // reaches `on_handle`, even if the caller stops waiting for this submission.
                let handle = tokio::spawn(job.run().in_current_span());
                running.push(async move { (index, handle.await) });
                next += 1;
            }
            let Some((index, joined)) = running.next().await else {
                break;
            };
            let price = tasks[index].price.unwrap_or(Cost::ZERO);
            match joined {
                Ok(Ok(handle)) => {
                    charged = charged + handle.cost.unwrap_or(price);
                    accepted.push((index, handle));
                }
                Ok(Err(create_failure)) => {
                    if create_failure.call.may_have_been_charged {
                        charged = charged + price;
                    }
                    // An unknown outcome outranks a refusal: it is the one that may cost money.
                    let worse = failure
                        .as_ref()
                        .is_none_or(|current| !current.call.may_have_been_charged);
                    if worse {
                        failure = Some(create_failure);
                    }
                }
                Err(join_error) => {
                    // The reservation, dropped unsettled, stays spent.
                    return Err(SubmitError::fatal(Error::config(format!(
                        "a create task stopped: {join_error}"
                    ))));
                }
            }
        }
        if let Some(reservation) = reservation {
            reservation.settle(charged);
        }
        accepted.sort_by_key(|(index, _)| *index);
        let handles: Vec<TaskHandle> = accepted.into_iter().map(|(_, handle)| handle).collect();
        let Some(failure) = failure else {
            return Ok((handles, plan.warnings));
        };
        if failure.call.may_have_been_charged {
            return Err(SubmitError::fatal(Error::CreateOutcomeUnknown(Box::new(
                CreateOutcomeUnknownError {
                    call: failure.call,
                    attempted_at: handle::format_time(failure.attempted_at),
                    summary,
                    accepted: handles,
                },
            ))));
        }
        let fall_back = handles.is_empty() && failure.decision == Decision::FallBack;
        let error = Error::Refused(Box::new(RefusedError {
            call: failure.call,
            accepted: handles,
        }));
        if fall_back {
            Err(SubmitError::NotAccepted(Box::new(error)))
        } else {
            Err(SubmitError::fatal(error))
        }
    }
}

enum SubmitError {
    /// The provider provably did not accept the task: the next one may be tried.
    NotAccepted(Box<Error>),
    /// Stop here.
    Fatal(Box<Error>),
}

impl SubmitError {
    fn fatal(error: Error) -> Self {
        SubmitError::Fatal(Box::new(error))
    }
}

/// One task's create, with its retries, run as its own tokio task.
struct TaskCreate {
    imggen: Imggen,
    provider: Arc<dyn Provider>,
    scheduler: Scheduler,
    task: PlannedTask,
    summary: RequestSummary,
    on_handle: Option<HandleCallback>,
    /// No create is sent after this, and none outlives it (the injected clock).
    until: Option<Instant>,
}

impl TaskCreate {
    async fn run(self) -> Result<TaskHandle, CreateFailure> {
        let inner = &self.imggen.inner;
        let id = self.provider.id();
        let mut sent_at = inner.clock.wall();
        let call = Call {
            provider: id,
            operation: CallOperation::Create,
            scheduler: &self.scheduler,
            until: self.until,
            retry_until: RetryLimit::Attempts,
            budgeted: true,
        };
        let created = self
            .imggen
            .call(call, |attempt| {
                sent_at = inner.clock.wall();
                let span = tracing::info_span!(
                    "imggen.create",
                    provider = %id,
                    attempt,
                    task_id = tracing::field::Empty,
                );
                let create = self.provider.create(&self.task);
                async move {
                    let result = create.instrument(span.clone()).await;
                    if let Ok(created) = &result {
                        span.record(
                            "task_id",
                            tracing::field::display(Untrusted(&created.task_id)),
                        );
                    }
                    result
                }
            })
            .await;
        let created = match created {
            Ok(created) => created,
            Err(CallFailure::Failed {
                error,
                decision,
                attempted_at,
            }) => {
                return Err(CreateFailure {
                    call: error,
                    decision,
                    attempted_at,
                });
            }
            // Out of time: nothing more is sent, and no other provider is tried. The last
            // refusal says more than "out of time".
            Err(CallFailure::OutOfTime { last }) => {
                let (call, attempted_at) = last.unwrap_or_else(|| {
                    let call = CallError::new(id, CallOperation::Create, CallErrorKind::Deadline);
                    (call, inner.clock.wall())
                });
                return Err(CreateFailure {
                    call,
                    decision: Decision::GiveUp,
                    attempted_at,
                });
            }
            // Nothing was sent.
            Err(closed @ CallFailure::Closed) => {
                return Err(CreateFailure {
                    call: closed.into_call_error(id, CallOperation::Create),
                    decision: Decision::GiveUp,
                    attempted_at: inner.clock.wall(),
                });
            }
        };
        if let Err(error) = self.provider.check_task_id(&created.task_id) {
            // Kept all the same: a paid task's id is never dropped.
            tracing::warn!(provider = %id, task_id = %Untrusted(&created.task_id), %error, "the provider returned an unusual task id");
        }
        let handle = TaskHandle::created(id, created, sent_at, &self.task, &self.summary);
        if let Some(callback) = &self.on_handle {
            // A panicking callback must not take the paid task's handle with it: the handle
            // is still returned.
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&handle)));
            if called.is_err() {
                tracing::error!(
                    provider = %id,
                    task_id = %Untrusted(&handle.task_id),
                    "the on_handle callback panicked; the handle is still returned"
                );
            }
        }
        Ok(handle)
    }
}
