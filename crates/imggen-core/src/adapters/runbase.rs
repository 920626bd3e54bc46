//! runbase: several models through one runs API, one image per run, micro-USD costs, and a
//! 20-requests-per-10-s budget the scheduler keeps.

use imggen_http::{ApiClient as _, DownloadOptions, RetryPolicy};
use imggen_runbase::{Client, CreateRunRequest, Model, RunId};
use serde_json::{Map, Value};

use crate::capabilities::RUNBASE_DEFAULT_MODEL;
use crate::cost::Cost;
use crate::error::{CallError, CallOperation};
use crate::plan::PlannedTask;
use crate::provider::{BoxFuture, Created, DownloadLimits, Downloaded, Provider, ProviderId};
use crate::request::Reference;
use crate::status::JobStatus;

/// runbase behind the unified model.
#[derive(Clone, Debug)]
pub struct RunbaseProvider {
    client: Client,
}

impl RunbaseProvider {
    /// Wraps a client, on the same connection pool, with its own retries disabled (core
    /// retries, inside the key's budget).
    pub fn new(client: Client) -> Self {
        // Core retries, and schedules every request of the key inside its budget: the
        // client does neither.
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(imggen_http::RequestBudget::unlimited());
        RunbaseProvider {
            client: Client::from_transport(transport),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn error(operation: CallOperation, error: imggen_runbase::Error) -> CallError {
    CallError::from_http(ProviderId::Runbase, operation, error)
}

/// The wire request of a task: `{"model", "input": {prompt, aspect_ratio?, quality?,
/// resolution?, image_urls?, …extra}}`.
pub(crate) fn wire(task: &PlannedTask) -> CreateRunRequest {
    let model = Model::from_wire(task.model.as_deref().unwrap_or(RUNBASE_DEFAULT_MODEL));
    let mut input = Map::new();
    input.insert("prompt".into(), Value::String(task.prompt.clone()));
    if let Some(ratio) = &task.aspect_ratio {
        input.insert("aspect_ratio".into(), Value::String(ratio.to_string()));
    }
    if let Some(quality) = &task.quality {
        input.insert("quality".into(), Value::String(quality.clone()));
    }
    if let Some(resolution) = &task.resolution {
        input.insert("resolution".into(), Value::String(resolution.clone()));
    }
    let urls: Vec<Value> = task
        .references
        .iter()
        .filter_map(|reference| match reference {
            Reference::Url(url) => Some(Value::String(url.clone())),
            _ => None,
        })
        .collect();
    if !urls.is_empty() {
        input.insert("image_urls".into(), Value::Array(urls));
    }
    for (key, value) in &task.extra_input {
        input.entry(key.clone()).or_insert_with(|| value.clone());
    }
    CreateRunRequest::new(model, Value::Object(input))
}

impl Provider for RunbaseProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Runbase
    }

    fn key_label(&self) -> String {
        self.client.transport().key_label()
    }

    fn allows_http_downloads(&self) -> bool {
        self.client.transport().download_options().allow_http
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let request = wire(task);
            let run = self
                .client
                .create_raw(&request)
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            // What the run says it cost; the documented price when the answer has none.
            let cost = run
                .cost_usd
                .or_else(|| request.price())
                .map(Cost::micro_usd);
            Ok(Created::new(
                run.id.into_inner(),
                cost,
                Some(run.model.to_string()),
            ))
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<JobStatus, CallError>> {
        Box::pin(async move {
            let run = self
                .client
                .status(&RunId::new(task_id))
                .await
                .map_err(|err| error(CallOperation::Status, err))?;
            Ok(JobStatus::from_runbase(run))
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
}
