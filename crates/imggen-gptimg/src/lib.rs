//! A faithful async client for the [gptimg.co](https://gptimg.co) gpt-image-2 API.
//!
//! ```no_run
//! use std::time::Duration;
//! use imggen_gptimg::{AspectRatio, Client, GenerateRequest, TaskStatus};
//!
//! # async fn run() -> Result<(), imggen_gptimg::Error> {
//! let client = Client::from_env()?; // GPTIMG_API_KEY, optional GPTIMG_BASE_URL
//! let request = GenerateRequest::new("A lighthouse on a cliff at dusk")
//!     .aspect_ratio(AspectRatio::Landscape16x9);
//! let created = client.create(&request).await?; // charged now: keep created.task_id
//! let task = loop {
//!     let task = client.status(&created.task_id).await?;
//!     if task.status.is_terminal() { break task; }
//!     tokio::time::sleep(Duration::from_secs(5)).await;
//! };
//! if task.status == TaskStatus::Completed {
//!     for url in task.image_urls() { println!("{url}"); }
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client::generate`] checks every documented limit before sending (prompt, one of the 13
//!   ratios, `n` 1–4, at most 4 `https://` reference URLs) and sends the create **once**: a
//!   create is charged when it is accepted, so a lost answer is reported
//!   ([`Error::may_have_been_charged`](imggen_http::Error::may_have_been_charged)), never
//!   resubmitted.
//! - [`Client::task`] polls with `data.task_id` (the typed [`TaskId`] keeps `data.id` out) and
//!   retries 429s and gateway errors, obeying `Retry-After`.
//! - Unknown statuses, codes and fields from a newer API version parse, as `Other(..)`.

use imggen_http::{
    ApiClient, ClientBuilder, DownloadOptions, Downloaded, Operation, ProviderInfo, Transport,
};

pub use imggen_http::{RetryPolicy, reqwest};
pub use imggen_types::AspectRatio;
pub use imggen_types::gptimg::{
    ASPECT_RATIOS, CREDITS_PER_IMAGE, CreatedTask, ErrorBody, ErrorCode, GenerateRequest, Image,
    MAX_N, MAX_REFERENCE_IMAGES, RowId, Task, TaskId, TaskStatus, TaskType,
};
pub use imggen_types::money::Credits;

/// Everything that can go wrong in a call to gptimg.
pub type Error = imggen_http::Error<ErrorBody>;

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://gptimg.co";
/// The variable [`Client::from_env`] reads the key from.
pub const API_KEY_ENV: &str = "GPTIMG_API_KEY";
/// The variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "GPTIMG_BASE_URL";

const GENERATE: Operation = Operation::create("create");
const STATUS: Operation = Operation::read("status");
const GENERATE_PATH: &str = "/api/v1/images/generate";

/// A gptimg.co client. Cheap to clone (clones share one connection pool); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport<ErrorBody>,
}

impl ApiClient for Client {
    type ErrorBody = ErrorBody;
    const INFO: ProviderInfo = ProviderInfo {
        name: "gptimg",
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        default_base_url: DEFAULT_BASE_URL,
        client_name: env!("CARGO_PKG_NAME"),
        client_version: env!("CARGO_PKG_VERSION"),
    };

    fn from_transport(transport: Transport<ErrorBody>) -> Self {
        Client { transport }
    }
}

impl Client {
    /// A builder: `Client::builder().api_key("...").build()?`.
    pub fn builder() -> ClientBuilder<Client> {
        ClientBuilder::new()
    }

    /// A client configured from `GPTIMG_API_KEY` and, if set, `GPTIMG_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// Submits a generation task: `POST /api/v1/images/generate`.
    ///
    /// Validated first; nothing is sent if a documented limit is broken. Sent once and never
    /// retried: the task is charged (2 credits per image) when it is accepted. Poll
    /// [`CreatedTask::task_id`] with [`status`](Self::status).
    pub async fn create(&self, request: &GenerateRequest) -> Result<CreatedTask, Error> {
        request
            .validate()
            .map_err(|error| self.transport.invalid(GENERATE, GENERATE_PATH, error))?;
        let response = self
            .transport
            .post::<_, imggen_types::gptimg::CreateResponse>(GENERATE, GENERATE_PATH, request)
            .await?;
        Ok(response.value.data)
    }

    /// Reads a task: `GET /api/v1/images/task/{task_id}`. `images` is `None` while it is
    /// processing. Retried on 429 and gateway errors.
    pub async fn status(&self, task_id: &TaskId) -> Result<Task, Error> {
        let path = format!("/api/v1/images/task/{task_id}");
        task_id.validate().map_err(|error| {
            self.transport
                .invalid(STATUS, "/api/v1/images/task/{task_id}", error)
        })?;
        let response = self
            .transport
            .get::<imggen_types::gptimg::TaskResponse>(STATUS, &path)
            .await?;
        Ok(response.value.data)
    }

    /// Downloads a result image (no API key is sent to the CDN), capped at 64 MiB, https only
    /// unless the base URL itself is http.
    pub async fn download(&self, url: &str) -> Result<Downloaded, Error> {
        self.transport
            .download(url, self.transport.download_options())
            .await
    }

    /// Downloads with explicit limits.
    pub async fn download_with(
        &self,
        url: &str,
        options: DownloadOptions,
    ) -> Result<Downloaded, Error> {
        self.transport.download(url, options).await
    }

    /// The shared transport (base URL, sleeper, clock).
    pub fn transport(&self) -> &Transport<ErrorBody> {
        &self.transport
    }
}

/// Compiles the README's examples as doc tests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
