//! Generating: submit, wait for every task, download every image — and, from saved handles,
//! the same without the submit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::download::{DownloadOptions, GeneratedImage};
use crate::download::{RequestNaming, conversion_warnings};
use crate::error::{Error, TaskFailedError};
use crate::handle::TaskHandle;
use crate::plan::Warning;
use crate::provider::ProviderId;
use crate::request::GenerationRequest;
use crate::status::{TaskState, TaskStatus};
use crate::submit::{FallbackReport, SubmitOptions};
use crate::wait::{PollSchedule, StatusCallback, WaitOptions};
use crate::webhook::WebhookHub;
use crate::{CancellationToken, Cost, Imggen};

/// How to generate: where to submit, how long to wait, where the images go.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Providers and the handle callback.
    pub submit: SubmitOptions,
    /// The whole call's deadline, from when it starts: every create, status read and download
    /// ends by it (a create cut off is [`Error::CreateOutcomeUnknown`], never resubmitted; a
    /// wait cut off is [`Error::DeadlineExceeded`] with the handles). `None`: each request has
    /// its client's timeout, and each wait its provider's
    /// [`Provider::default_deadline`](crate::Provider::default_deadline).
    pub deadline: Option<Duration>,
    /// Stops every wait at once; the tasks go on (their handles are in the error).
    pub cancel: Option<CancellationToken>,
    /// A schedule instead of the configured one.
    pub schedule: Option<PollSchedule>,
    /// Webhook events to shorten the waits.
    pub events: Option<WebhookHub>,
    /// Where the images go.
    pub download: DownloadOptions,
    /// Called with every status read while waiting (see [`WaitOptions::on_status`]).
    pub on_status: Option<StatusCallback>,
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("submit", &self.submit)
            .field("deadline", &self.deadline)
            .field("cancel", &self.cancel.is_some())
            .field("schedule", &self.schedule)
            .field("events", &self.events.is_some())
            .field("download", &self.download)
            .field("on_status", &self.on_status.is_some())
            .finish()
    }
}

impl GenerateOptions {
    /// Sets the submit options.
    pub fn submit(mut self, submit: SubmitOptions) -> Self {
        self.submit = submit;
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets the schedule.
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Sets the webhook hub.
    pub fn events(mut self, hub: WebhookHub) -> Self {
        self.events = Some(hub);
        self
    }

    /// Calls `callback` with every status read while waiting, for each task.
    pub fn on_status(
        mut self,
        callback: impl Fn(&TaskHandle, &TaskStatus) + Send + Sync + 'static,
    ) -> Self {
        self.on_status = Some(Arc::new(callback));
        self
    }

    /// Sets the download options.
    pub fn download(mut self, download: DownloadOptions) -> Self {
        self.download = download;
        self
    }
}

/// What a generation produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Generation {
    /// Every image, in task order.
    pub images: Vec<GeneratedImage>,
    /// What it cost, exactly.
    pub cost: Cost,
    /// Settings dropped or sent unchecked, and images that could not be converted (setting
    /// `format`; the image says why in [`GeneratedImage::conversion_error`]).
    pub warnings: Vec<Warning>,
    /// The tasks' receipts.
    pub handles: Vec<TaskHandle>,
    /// The provider that served it, and why earlier ones did not.
    pub fallback: FallbackReport,
}

impl Generation {
    /// The provider that served it.
    pub fn provider(&self) -> ProviderId {
        self.fallback.served_by
    }
}

impl Imggen {
    /// Plans, submits, waits for every task and downloads its images.
    ///
    /// Everything local is checked before anything is paid for: the output folder is created
    /// and written to ([`DownloadOptions::check`]), reference files are read. Every error after
    /// the first create carries every handle of the generation ([`Error::handles`]), so
    /// nothing paid for is lost; [`resume`](Self::resume) picks them up again.
    pub async fn generate(
        &self,
        request: &GenerationRequest,
        options: &GenerateOptions,
    ) -> Result<Generation, Error> {
        let until = self.deadline_from_now(options.deadline);
        options.download.check().await?;
        let mut submit = options.submit.clone();
        if let Some(until) = until {
            let left = until.saturating_duration_since(self.inner.clock.now());
            submit.deadline = Some(submit.deadline.map_or(left, |own| own.min(left)));
        }
        let submission = self.submit(request, &submit).await?;
        let images = self.collect(&submission.handles, options, until).await?;
        let cost = submission.cost();
        let mut warnings = submission.warnings;
        warnings.extend(conversion_warnings(&images));
        Ok(Generation {
            images,
            cost,
            warnings,
            handles: submission.handles,
            fallback: submission.fallback,
        })
    }

    /// Waits for tasks submitted earlier — from their handles, in this process or another —
    /// and downloads their images.
    pub async fn resume(
        &self,
        handles: &[TaskHandle],
        options: &GenerateOptions,
    ) -> Result<Generation, Error> {
        let Some(first) = handles.first() else {
            return Err(Error::invalid(None, "no handle to resume", None));
        };
        let until = self.deadline_from_now(options.deadline);
        options.download.check().await?;
        let images = self.collect(handles, options, until).await?;
        Ok(Generation {
            cost: handles.iter().filter_map(|handle| handle.cost).sum(),
            warnings: conversion_warnings(&images),
            images,
            handles: handles.to_vec(),
            fallback: FallbackReport {
                served_by: first.provider,
                skipped: Vec::new(),
            },
        })
    }

    async fn collect(
        &self,
        handles: &[TaskHandle],
        options: &GenerateOptions,
        until: Option<Instant>,
    ) -> Result<Vec<GeneratedImage>, Error> {
        // `{n}` counts a generation's images across its tasks.
        let mut first_number = 1;
        let namings: Vec<RequestNaming> = handles
            .iter()
            .map(|handle| {
                let naming = RequestNaming {
                    id: handle.task_id.clone(),
                    first_number,
                    kept: Vec::new(),
                };
                first_number += handle.images_expected.map_or(1, |images| images as usize);
                naming
            })
            .collect();
        let waits = handles
            .iter()
            .zip(&namings)
            .map(|(handle, naming)| async move {
                let wait = WaitOptions {
                    deadline: until
                        .map(|until| until.saturating_duration_since(self.inner.clock.now())),
                    cancel: options.cancel.clone(),
                    schedule: options.schedule,
                    events: options.events.as_ref().map(WebhookHub::subscribe),
                    on_status: options.on_status.clone(),
                };
                let status = self.wait(handle, wait).await?;
                if let TaskState::Failed { code, message } = &status.state {
                    let advice = code.as_deref().and_then(|code| {
                        self.provider_ref(handle.provider)
                            .ok()?
                            .failure_advice(code)
                    });
                    return Err(Error::TaskFailed(Box::new(TaskFailedError {
                        handle: handle.clone(),
                        code: code.clone(),
                        message: message.clone(),
                        status: Box::new(status.clone()),
                        advice,
                        siblings: Vec::new(),
                    })));
                }
                self.download_until(handle, &status, &options.download, until, Some(naming))
                    .await
            });
        let results = futures_util::future::join_all(waits).await;
        let mut images = Vec::new();
        for result in results {
            match result {
                Ok(mut found) => images.append(&mut found),
                Err(error) => return Err(error.with_siblings(handles)),
            }
        }
        Ok(images)
    }
}
