//! runblob: one image per task, references in any form (files and bytes as data URIs), USD
//! prices, webhooks.

use imggen_http::{ApiClient as _, DownloadOptions, RetryPolicy};
use imggen_runblob::{Client, ImageSource, ListGenerationsQuery};
use imggen_types::runblob::{self, GenerateRequest, TaskUuid};

use crate::cost::Cost;
use crate::error::{CallError, CallOperation};
use crate::plan::PlannedTask;
use crate::provider::{
    BoxFuture, Created, DownloadLimits, Downloaded, Provider, ProviderId, RecentTask,
};
use crate::request::Reference;
use crate::status::JobStatus;

/// runblob behind the unified model.
#[derive(Clone, Debug)]
pub struct RunblobProvider {
    client: Client,
}

impl RunblobProvider {
    /// Wraps a client, on the same connection pool, with its own retries disabled (core
    /// retries).
    pub fn new(client: Client) -> Self {
        // Core retries, and schedules every request of the key inside its budget: the
        // client does neither.
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(imggen_http::RequestBudget::unlimited());
        RunblobProvider {
            client: Client::from_transport(transport),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn error(operation: CallOperation, error: imggen_runblob::Error) -> CallError {
    CallError::from_http(ProviderId::Runblob, operation, error)
}

/// The references already in wire form (URLs and data URIs); files and bytes are left out.
pub(crate) fn wire_images_without_io(references: &[Reference]) -> Vec<String> {
    references
        .iter()
        .filter_map(|reference| match reference {
            Reference::Url(url) => Some(url.clone()),
            _ => None,
        })
        .collect()
}

/// The wire request of a task whose references are `images`.
pub(crate) fn wire(task: &PlannedTask, images: Vec<String>) -> GenerateRequest {
    let mut request = GenerateRequest::new(task.prompt.clone());
    request.aspect_ratio = task.aspect_ratio.clone();
    request.images = images;
    request.callback_url = task.webhook.clone();
    request.model = task.model.as_deref().map(runblob::Model::from_wire);
    request.quality = task.quality.as_deref().map(runblob::Quality::from_wire);
    request.background = task.background.clone();
    request
}

fn source(reference: &Reference) -> ImageSource {
    match reference {
        Reference::Url(url) => ImageSource::wire(url.clone()),
        Reference::File(path) => ImageSource::file(path.clone()),
        Reference::Bytes(bytes) => ImageSource::bytes(bytes.clone()),
    }
}

impl RunblobProvider {
    async fn resolve(&self, references: &[Reference]) -> Result<Vec<String>, CallError> {
        if references.iter().all(|r| matches!(r, Reference::Url(_))) {
            return Ok(wire_images_without_io(references));
        }
        self.client
            .resolve_images(references.iter().map(source))
            .await
            .map_err(|err| error(CallOperation::Create, err))
    }
}

impl Provider for RunblobProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Runblob
    }

    fn key_label(&self) -> String {
        self.client.transport().key_label()
    }

    fn allows_http_downloads(&self) -> bool {
        self.client.transport().download_options().allow_http
    }

    fn prepare<'a>(
        &'a self,
        references: &'a [Reference],
    ) -> BoxFuture<'a, Result<Vec<Reference>, CallError>> {
        Box::pin(async move {
            let images = self.resolve(references).await?;
            Ok(images.into_iter().map(Reference::Url).collect())
        })
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let images = self.resolve(&task.references).await?;
            let created = self
                .client
                .create(&wire(task, images))
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            Ok(Created::new(
                created.task_uuid.into_inner(),
                Some(Cost::usd(created.price)),
                task.model.clone(),
            ))
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<JobStatus, CallError>> {
        Box::pin(async move {
            let generation = self
                .client
                .status(&TaskUuid::new(task_id))
                .await
                .map_err(|err| error(CallOperation::Status, err))?;
            Ok(JobStatus::from_runblob(generation))
        })
    }

    fn download<'a>(
        &'a self,
        url: &'a str,
        limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>> {
        Box::pin(async move {
            let options = DownloadOptions {
                max_bytes: limits.max_bytes,
                max_redirects: limits.max_redirects,
                allow_http: self.allows_http_downloads(),
                stall_timeout: limits.stall_timeout,
            };
            self.client
                .download_with(url, options)
                .await
                .map_err(|err| error(CallOperation::Download, err))
        })
    }

    fn lists_recent_tasks(&self) -> bool {
        true
    }

    /// `GET /v1/chatgpt-images/generations?limit=&offset=`: this key's tasks, newest first.
    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<RecentTask>, CallError>> {
        Box::pin(async move {
            let query = ListGenerationsQuery {
                limit: Some(limit),
                offset: Some(offset),
            };
            let generations = self
                .client
                .list(query)
                .await
                .map_err(|err| error(CallOperation::Status, err))?;
            Ok(generations
                .into_iter()
                .map(|generation| {
                    let task_id = generation.task_uuid.as_str().to_owned();
                    let prompt = generation.prompt.clone();
                    RecentTask::new(task_id, prompt, JobStatus::from_runblob(generation))
                })
                .collect())
        })
    }
}
