//! A faithful async client for the [runblob](https://platform.runblob.io) "ChatGPT Image 1.5"
//! API.
//!
//! ```no_run
//! use imggen_runblob::{Client, GenerateRequest, GenerationStatus, WaitOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?; // RUNBLOB_API_KEY, optional RUNBLOB_BASE_URL
//! let request = GenerateRequest::new("A futuristic city with flying cars, neon lights");
//! // Charged at the create; polled on runblob's schedule until done, for 15 minutes at most.
//! let generation = client.create_and_wait(&request, &WaitOptions::new()).await?;
//! match (generation.status, generation.result_image_url) {
//!     (GenerationStatus::Completed, Some(url)) => println!("{url}"),
//!     (status, _) => eprintln!("{status}: {:?}", generation.message),
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client::create`] checks every documented limit before sending (a 1–4000 character
//!   prompt, 1:1, 4:3, 3:4 or no ratio, at most 4 reference images that are what they claim to
//!   be, an https `callback_url`) and sends the create **once**: runblob charges when it
//!   accepts a task (`price`, exact [`Usd`]), so a lost answer is reported
//!   ([`Error::may_have_been_charged`](imggen_http::Error::may_have_been_charged)), never
//!   resubmitted. [`Client::list`] shows whether such a create made a task.
//! - Reference images come as URLs, data URIs, bare base64, bytes or local files
//!   ([`ImageSource`], [`Client::resolve_images`]); bytes and files are sent as data URIs of
//!   the format their bytes are.
//! - [`Client::status`] reads a task and retries 429s and gateway errors, obeying
//!   `Retry-After`.
//! - [`Client::wait`] polls on runblob's [`POLL_SCHEDULE`] until the task ends, within a
//!   deadline ([`DEFAULT_DEADLINE`]), cancellable; [`Client::create_and_wait`] does both. A
//!   wait that stops returns the task id: the task goes on, and is paid for.
//! - [`parse_webhook`] reads a `callback_url` POST. runblob signs nothing: confirm an event
//!   with [`Client::status`] before believing it.
//! - Statuses, failure codes and error codes a newer API adds parse, as `Other(..)`; unknown
//!   fields are ignored.

mod image;
#[cfg(feature = "provider")]
pub mod provider;
mod webhook;

use std::time::Duration;

use imggen_http::{ApiClient, ClientBuilder, Operation, ProviderInfo, Transport};

pub use image::ImageSource;
pub use imggen_http::{
    CancellationToken, DownloadOptions, Downloaded, PollSchedule, RetryPolicy, WaitOptions, reqwest,
};
pub use imggen_types::runblob::{
    ASPECT_RATIOS, ErrorBody, ErrorCode, ErrorDetail, FailureCode, GenerateRequest,
    GenerateResponse, Generation, GenerationStatus, IMAGE_FORMATS, ListGenerationsQuery,
    MAX_IMAGE_BYTES, MAX_IMAGES, Model, PROMPT_MAX_CHARS, Quality, TaskUuid, ValidationIssue,
    WebhookBody,
};
pub use imggen_types::{AspectRatio, Usd, ValidationError};
pub use webhook::{WebhookError, parse_webhook};

/// Everything that can go wrong in a call to runblob.
pub type Error = imggen_http::Error<ErrorBody>;
/// Why a [`Client::wait`] stopped before the task ended (the task id is in it).
pub type WaitError = imggen_http::WaitError<ErrorBody>;
/// Why a [`Client::create_and_wait`] stopped.
pub type CreateAndWaitError = imggen_http::CreateAndWaitError<ErrorBody>;

/// When to poll a runblob task: it "typically takes 1-3 minutes", so the first poll comes at
/// 60 s; then every 9 s — runblob's own examples poll every 10 s, and a tenth less keeps the
/// mean detection lag under theirs while the minute without polls still saves nearly half
/// their requests; slower after 5 minutes, up to every 60 s. With a callback expected, every
/// 30 s: runblob retries an unacknowledged callback every 30 s, so a poll that often finds a
/// lost one no later than runblob's next attempt would.
pub const POLL_SCHEDULE: PollSchedule = PollSchedule::new(
    Duration::from_secs(60),
    Duration::from_secs(9),
    Duration::from_secs(300),
    Duration::from_secs(60),
)
.with_webhook_interval(Duration::from_secs(30));

/// How long a wait lasts unless told otherwise: five times runblob's longest typical time.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://platform.runblob.io";
/// The variable [`Client::from_env`] reads the key from.
pub const API_KEY_ENV: &str = "RUNBLOB_API_KEY";
/// The variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "RUNBLOB_BASE_URL";

const GENERATE: Operation = Operation::create("create");
const STATUS: Operation = Operation::read("status");
const LIST: Operation = Operation::read("list");
const GENERATE_PATH: &str = "/v1/chatgpt-images/generate";
const GENERATIONS_PATH: &str = "/v1/chatgpt-images/generations";

/// A runblob client. Cheap to clone (clones share one connection pool); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport<ErrorBody>,
}

impl ApiClient for Client {
    type ErrorBody = ErrorBody;
    const INFO: ProviderInfo = ProviderInfo {
        name: "runblob",
        api_key_env: API_KEY_ENV,
        base_url_env: BASE_URL_ENV,
        default_base_url: DEFAULT_BASE_URL,
        rate_limit: None,
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

    /// A client configured from `RUNBLOB_API_KEY` and, if set, `RUNBLOB_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// Submits a generation task: `POST /v1/chatgpt-images/generate`, answered with **201**.
    ///
    /// Validated first; nothing is sent if a documented limit is broken. Sent once and never
    /// retried: the task is charged ([`GenerateResponse::price`]) when it is accepted. If the
    /// answer is lost the error says the task may have been charged; look for it with
    /// [`list`](Self::list) before submitting again. Poll
    /// [`GenerateResponse::task_uuid`] with [`status`](Self::status).
    pub async fn create(&self, request: &GenerateRequest) -> Result<GenerateResponse, Error> {
        request
            .validate()
            .map_err(|error| self.transport.invalid(GENERATE, GENERATE_PATH, error))?;
        let response = self
            .transport
            .post::<_, GenerateResponse>(GENERATE, GENERATE_PATH, request)
            .await?;
        Ok(response.value)
    }

    /// Turns reference images in any form into the strings [`GenerateRequest::images`]
    /// carries, in order: URLs, data URIs and bare base64 are checked and passed through;
    /// bytes and files are sniffed (JPEG, PNG or WEBP, at most 20 MB) and written as
    /// `data:image/...;base64,` URIs of the format the bytes are. Files are read with
    /// tokio's async file API.
    ///
    /// Nothing is sent. A problem is an [`Error::InvalidRequest`](imggen_http::Error) naming
    /// the entry (`images[2]`), the value (shortened) and what is allowed. More than
    /// [`MAX_IMAGES`] sources are refused before any file is read.
    ///
    /// Pass every reference image here, wire strings included, so the indices in messages
    /// are the indices sent:
    ///
    /// ```no_run
    /// use imggen_runblob::{Client, GenerateRequest, ImageSource};
    ///
    /// # async fn run(client: Client) -> Result<(), imggen_runblob::Error> {
    /// let mut request = GenerateRequest::new("Turn the sketch into a watercolor");
    /// request.images = client
    ///     .resolve_images([
    ///         ImageSource::file("sketch.png"),
    ///         ImageSource::url("https://example.com/style.jpg"),
    ///     ])
    ///     .await?;
    /// let created = client.create(&request).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resolve_images(
        &self,
        sources: impl IntoIterator<Item = ImageSource>,
    ) -> Result<Vec<String>, Error> {
        image::resolve_all(sources.into_iter().collect())
            .await
            .map_err(|error| self.transport.invalid(GENERATE, GENERATE_PATH, error))
    }

    /// Reads a task: `GET /v1/chatgpt-images/generations/{task_uuid}`. `result_image_url` is
    /// set once `completed`; on `failed`, `message` holds a code
    /// ([`Generation::failure_code`]) and the charge is refunded. Retried on 429 and gateway
    /// errors.
    pub async fn status(&self, task_uuid: &TaskUuid) -> Result<Generation, Error> {
        task_uuid.validate().map_err(|error| {
            self.transport
                .invalid(STATUS, "/v1/chatgpt-images/generations/{task_uuid}", error)
        })?;
        let path = format!("{GENERATIONS_PATH}/{task_uuid}");
        let response = self.transport.get::<Generation>(STATUS, &path).await?;
        Ok(response.value)
    }

    /// [`status`](Self::status) sent once (no retries: the caller retries), its result handed
    /// to `finish`, as one boxed future — what a caller that boxes its future anyway (the
    /// `provider` feature's trait object) uses, so a call allocates once. The id is checked
    /// as its type's `validate` does, without building one.
    pub fn status_then<'a, R: Send + 'a>(
        &'a self,
        task_uuid: &str,
        finish: impl FnOnce(Result<Generation, Error>) -> R + Send + 'a,
    ) -> std::pin::Pin<Box<dyn Future<Output = R> + Send + 'a>> {
        if let Err(error) = imggen_types::validation::check_opaque_id("task_uuid", task_uuid) {
            let error =
                self.transport
                    .invalid(STATUS, "/v1/chatgpt-images/generations/{task_uuid}", error);
            return Box::pin(std::future::ready(finish(Err(error))));
        }
        self.transport.get_once_then(
            STATUS,
            "/v1/chatgpt-images/generations/{task_uuid}",
            &format!("{GENERATIONS_PATH}/{task_uuid}"),
            |result: Result<imggen_http::Response<Generation>, Error>| {
                finish(result.map(|response| response.value))
            },
        )
    }

    /// Lists this key's tasks: `GET /v1/chatgpt-images/generations?limit=&offset=`, a bare
    /// array (documented by runblob's SDK, not its API pages). The way to learn whether a
    /// create whose answer was lost made a task. Retried like a status call.
    pub async fn list(&self, query: ListGenerationsQuery) -> Result<Vec<Generation>, Error> {
        let path = list_path(query);
        let response = self.transport.get::<Vec<Generation>>(LIST, &path).await?;
        Ok(response.value)
    }

    /// Waits until the task ends — `completed` or `failed` — polling on [`POLL_SCHEDULE`]
    /// (or `options.schedule`) within `options.deadline` (default [`DEFAULT_DEADLINE`]); every
    /// status call ends by the deadline too. A task of unknown age (no
    /// `options.created_at`) is polled at once. A wait that stops first returns the task id in
    /// its [`WaitError`]: the task goes on, and is paid for.
    pub async fn wait(
        &self,
        task_uuid: &TaskUuid,
        options: &WaitOptions,
    ) -> Result<Generation, WaitError> {
        self.transport
            .wait(
                task_uuid.as_str(),
                POLL_SCHEDULE,
                DEFAULT_DEADLINE,
                options,
                || self.status(task_uuid),
                |generation: &Generation| {
                    (!generation.status.is_terminal()).then(|| generation.status.to_string())
                },
            )
            .await
    }

    /// [`create`](Self::create), then [`wait`](Self::wait) from the moment the task was
    /// created. A create whose answer was lost is [`CreateAndWaitError::Create`] and may have
    /// been charged (never resent; [`list`](Self::list) shows whether it made a task); once
    /// created, an error carries the task id. Drop this future only if losing the id is
    /// acceptable: to persist it first, call the two apart.
    pub async fn create_and_wait(
        &self,
        request: &GenerateRequest,
        options: &WaitOptions,
    ) -> Result<Generation, CreateAndWaitError> {
        let created = self
            .create(request)
            .await
            .map_err(CreateAndWaitError::Create)?;
        let mut options = options.clone();
        options.created_at = options.created_at.or(Some(self.transport.clock().wall()));
        self.wait(&created.task_uuid, &options)
            .await
            .map_err(CreateAndWaitError::Wait)
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

/// The list path with only the parameters that are set: an absent `limit` leaves runblob's
/// default in force.
fn list_path(query: ListGenerationsQuery) -> String {
    let params: Vec<String> = [("limit", query.limit), ("offset", query.offset)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}={value}")))
        .collect();
    if params.is_empty() {
        GENERATIONS_PATH.to_owned()
    } else {
        format!("{GENERATIONS_PATH}?{}", params.join("&"))
    }
}

/// Compiles the README's examples as doc tests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_carry_only_what_is_set() {
        assert_eq!(list_path(ListGenerationsQuery::default()), GENERATIONS_PATH);
        let query = ListGenerationsQuery {
            limit: Some(20),
            offset: None,
        };
        assert_eq!(list_path(query), "/v1/chatgpt-images/generations?limit=20");
        let query = ListGenerationsQuery {
            limit: Some(20),
            offset: Some(40),
        };
        assert_eq!(
            list_path(query),
            "/v1/chatgpt-images/generations?limit=20&offset=40"
        );
    }
}
