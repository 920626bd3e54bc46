//! gptimg.co: up to 4 images per task, https reference URLs only, credits.

use imggen_gptimg::{Client, GenerateRequest, TaskId};
use imggen_http::{ApiClient as _, DownloadOptions, RetryPolicy};
use imggen_types::ValidationError;

use crate::capabilities::GPTIMG_MODEL;
use crate::cost::Cost;
use crate::error::{CallError, CallOperation};
use crate::plan::PlannedTask;
use crate::provider::{BoxFuture, Created, DownloadLimits, Downloaded, Provider, ProviderId};
use crate::request::Reference;
use crate::status::JobStatus;

/// gptimg behind the unified model.
#[derive(Clone, Debug)]
pub struct GptimgProvider {
    client: Client,
}

impl GptimgProvider {
    /// Wraps a client, on the same connection pool, with its own retries disabled (core
    /// retries).
    pub fn new(client: Client) -> Self {
        // Core retries, and schedules every request of the key inside its budget: the
        // client does neither.
        let transport = client
            .transport()
            .with_retry(RetryPolicy::disabled())
            .with_budget(imggen_http::RequestBudget::unlimited());
        GptimgProvider {
            client: Client::from_transport(transport),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn error(operation: CallOperation, error: imggen_gptimg::Error) -> CallError {
    CallError::from_http(ProviderId::Gptimg, operation, error)
}

/// The wire request of a task.
pub(crate) fn wire(task: &PlannedTask) -> Result<GenerateRequest, ValidationError> {
    let n = u8::try_from(task.images).map_err(|_| {
        ValidationError::new(
            "n",
            format!("{} is out of range; allowed: 1 to 4", task.images),
        )
    })?;
    let mut request = GenerateRequest::new(task.prompt.clone()).n(n);
    request.aspect_ratio = task.aspect_ratio.clone();
    for (index, reference) in task.references.iter().enumerate() {
        match reference {
            Reference::Url(url) => request = request.reference_image(url.clone()),
            other => {
                return Err(ValidationError::new(
                    format!("reference_images[{index}]"),
                    format!(
                        "a {} cannot be sent to gptimg; it takes only https URLs",
                        other.form()
                    ),
                ));
            }
        }
    }
    Ok(request)
}

impl Provider for GptimgProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Gptimg
    }

    fn key_label(&self) -> String {
        self.client.transport().key_label()
    }

    fn allows_http_downloads(&self) -> bool {
        self.client.transport().download_options().allow_http
    }

    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>> {
        Box::pin(async move {
            let request = wire(task).map_err(|invalid| {
                error(
                    CallOperation::Create,
                    self.client.transport().invalid(
                        imggen_http::Operation::create("create"),
                        "/api/v1/images/generate",
                        invalid,
                    ),
                )
            })?;
            let created = self
                .client
                .create(&request)
                .await
                .map_err(|err| error(CallOperation::Create, err))?;
            Ok(Created::new(
                created.task_id.into_inner(),
                Some(Cost::credits(request.credits_required())),
                Some(created.model.unwrap_or_else(|| GPTIMG_MODEL.to_owned())),
            ))
        })
    }

    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<JobStatus, CallError>> {
        Box::pin(async move {
            let task = self
                .client
                .status(&TaskId::new(task_id))
                .await
                .map_err(|err| error(CallOperation::Status, err))?;
            Ok(JobStatus::from_gptimg(task))
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
