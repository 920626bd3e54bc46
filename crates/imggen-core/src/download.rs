//! Collecting results: every image through the provider's client (no key sent, https only
//! unless the API itself is http, bounded redirects, a size cap), its type read from its
//! bytes, and written atomically under a name made from the task id.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use imggen_types::media;
use imggen_types::text::Untrusted;
use serde::{Serialize, Serializer};
use tracing::Instrument as _;

use crate::Imggen;
use crate::call::{Call, RetryLimit};
use crate::error::{CallOperation, DownloadError, Error};
use crate::handle::TaskHandle;
use crate::naming::{FileNames, NameFields};
use crate::provider::{DownloadLimits, ProviderId};
use crate::status::{TaskState, TaskStatus};

pub use imggen_http::{DEFAULT_DOWNLOAD_STALL_TIMEOUT, DEFAULT_MAX_DOWNLOAD_BYTES};

/// Where downloaded images go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Kept in memory ([`ImageData::Bytes`]).
    #[default]
    Memory,
    /// Written to this directory (created if missing) as `<task_id>-<n>.<ext>`.
    Directory(PathBuf),
}

/// How to download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Where the images go.
    pub output: Output,
    /// The largest image accepted, in bytes (default 64 MiB).
    pub max_bytes: u64,
    /// Redirects followed (default 5).
    pub max_redirects: u8,
    /// An attempt that receives no byte for this long ends, and may be retried (default
    /// 15 s).
    pub stall_timeout: Duration,
    /// Every download of the call ends this long after it starts, retries included; `None`:
    /// bounded by the retry policy's attempts and
    /// [`read_retry_time`](crate::RetryConfig::read_retry_time) alone.
    pub deadline: Option<Duration>,
    /// How files are named (default [`FileNames::by_task`], `<task_id>-<n>`; `{id}` is the
    /// task id). A file already there is never replaced: the name gets `-2`, `-3`…
    pub names: FileNames,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            output: Output::Memory,
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_redirects: 5,
            stall_timeout: DEFAULT_DOWNLOAD_STALL_TIMEOUT,
            deadline: None,
            names: FileNames::by_task(),
        }
    }
}

impl DownloadOptions {
    /// Images kept in memory.
    pub fn memory() -> Self {
        DownloadOptions::default()
    }

    /// Images written to `dir`.
    pub fn to_dir(dir: impl Into<PathBuf>) -> Self {
        DownloadOptions {
            output: Output::Directory(dir.into()),
            ..DownloadOptions::default()
        }
    }

    /// Sets the size cap.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the stall interval.
    pub fn stall_timeout(mut self, stall: Duration) -> Self {
        self.stall_timeout = stall;
        self
    }

    /// Sets the deadline of the whole download call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets how files are named.
    pub fn names(mut self, names: FileNames) -> Self {
        self.names = names;
        self
    }

    /// Checks, before anything is paid for, that the images can be saved where they will go:
    /// the folder (and any missing parent) is created, a probe file written, and all of it
    /// removed again. An existing file in the folder's place, a folder that cannot be
    /// written, a full disk — each is an [`Error::InvalidRequest`] naming the folder, and
    /// nothing was sent.
    pub async fn check(&self) -> Result<(), Error> {
        let Output::Directory(dir) = &self.output else {
            return Ok(());
        };
        let dir = dir.clone();
        let checked =
            tokio::task::spawn_blocking(move || imggen_http::fs::check_writable_dir(&dir))
                .await
                .map_err(|join| Error::config(format!("the folder check stopped: {join}")))?;
        checked.map_err(|error| {
            Error::invalid(
                None,
                format!(
                    "images cannot be saved in {}: {}",
                    error.path.display(),
                    error.cause
                ),
                None,
            )
        })
    }
}

/// Where an image's bytes are. In JSON: `{"file": "out/run_1-1.png"}` or
/// `{"bytes": 183204}` (the length; the bytes themselves are not written).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageData {
    /// Written to this file.
    File(PathBuf),
    /// In memory.
    Bytes(Bytes),
}

impl Serialize for ImageData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            ImageData::File(path) => map.serialize_entry("file", path)?,
            ImageData::Bytes(bytes) => map.serialize_entry("bytes", &bytes.len())?,
        }
        map.end()
    }
}

/// One downloaded image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GeneratedImage {
    /// The file or the bytes.
    pub data: ImageData,
    /// The media type, read from the bytes (`image/png`).
    pub media_type: &'static str,
    /// Width in pixels, from the image header.
    pub width: Option<u32>,
    /// Height in pixels, from the image header.
    pub height: Option<u32>,
    /// The provider that made it.
    pub provider: ProviderId,
    /// The task that made it.
    pub task_id: String,
    /// Its position among the task's images, from 1.
    pub index: usize,
    /// Where it was downloaded from.
    pub url: String,
    /// Its size in bytes.
    pub bytes_len: u64,
}

/// Where a request's images fall among its names: a batch names them by its line's id and
/// numbers them across the request's tasks, and writes again the files its journal already
/// holds for them (its own), rather than beside them.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestNaming {
    /// `{id}`.
    pub id: String,
    /// `{n}` of the task's first image.
    pub first_number: usize,
    /// The names the task's images were saved under before, in order.
    pub kept: Vec<String>,
}

/// What the start of a body that is not an image looks like, for a message.
fn describe_non_image(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]);
    let printable: String = head
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "the {} bytes are not an image imggen recognises (JPEG, PNG, WEBP, GIF); they start with {:?}",
        bytes.len(),
        printable.trim()
    )
}

impl Imggen {
    /// Downloads every image of a succeeded task (its `status`, from [`wait`](Self::wait) or
    /// [`status`](Self::status)).
    ///
    /// Through the provider's client: no key is sent, only https (http when the provider's
    /// base URL is http: an emulator), at most `max_redirects` redirects, at most `max_bytes`.
    /// The type is read from the bytes — never from the URL or a header — and a body that is
    /// not an image is an error. Files are named by [`DownloadOptions::names`]
    /// (`<task_id>-<n>.<ext>` by default), written atomically, never over a file already
    /// there.
    pub async fn download(
        &self,
        handle: &TaskHandle,
        status: &TaskStatus,
        options: &DownloadOptions,
    ) -> Result<Vec<GeneratedImage>, Error> {
        self.download_until(handle, status, options, None, None)
            .await
    }

    /// [`download`](Self::download), every attempt ending by `until` (the injected clock) as
    /// well as by the options' own deadline.
    pub(crate) async fn download_until(
        &self,
        handle: &TaskHandle,
        status: &TaskStatus,
        options: &DownloadOptions,
        until: Option<Instant>,
        naming: Option<&RequestNaming>,
    ) -> Result<Vec<GeneratedImage>, Error> {
        let until = match (until, self.deadline_from_now(options.deadline)) {
            (Some(caller), Some(own)) => Some(caller.min(own)),
            (caller, own) => caller.or(own),
        };
        let TaskState::Succeeded { images } = &status.state else {
            return Err(Error::invalid(
                Some(handle.provider),
                format!(
                    "task {} has not succeeded (status {}); there is nothing to download",
                    handle.task_id,
                    status.state.name()
                ),
                None,
            ));
        };
        if images.is_empty() {
            return Err(Error::Download(Box::new(DownloadError {
                handle: handle.clone(),
                url: String::new(),
                problem: "the provider reported success but gave no image URL".into(),
                call: None,
                siblings: Vec::new(),
            })));
        }
        let mut results = Vec::with_capacity(images.len());
        for (position, image) in images.iter().enumerate() {
            let index = position + 1;
            let span = tracing::info_span!(
                "imggen.download",
                provider = %handle.provider,
                task_id = %Untrusted(&handle.task_id),
                index,
                bytes = tracing::field::Empty,
            );
            let image = self
                .download_one(handle, &image.url, index, options, until, naming)
                .instrument(span)
                .await?;
            results.push(image);
        }
        Ok(results)
    }

    async fn download_one(
        &self,
        handle: &TaskHandle,
        url: &str,
        index: usize,
        options: &DownloadOptions,
        until: Option<Instant>,
        naming: Option<&RequestNaming>,
    ) -> Result<GeneratedImage, Error> {
        let provider = self.provider(handle.provider)?;
        let scheduler = self.scheduler(&provider)?;
        let limits = DownloadLimits::new(
            options.max_bytes,
            options.max_redirects,
            options.stall_timeout,
        );
        // Retries are bounded in time as well as in count: a body that arrives cut short, or
        // a byte at a time, must not keep a caller for attempts × timeout.
        let clock = &self.inner.clock;
        let retry_limit = clock.now() + self.inner.retry.read_retry_time;
        let limit = until.map_or(retry_limit, |until| until.min(retry_limit));
        let failed = |problem: String, call| {
            Error::Download(Box::new(DownloadError {
                handle: handle.clone(),
                url: url.to_owned(),
                problem,
                call,
                siblings: Vec::new(),
            }))
        };
        let call = Call {
            provider: handle.provider,
            operation: CallOperation::Download,
            scheduler: &scheduler,
            // No attempt outlives the retry time either.
            until: Some(limit),
            retry_until: RetryLimit::At(limit),
            // Downloads go to a CDN, not the API: a timer between attempts, not a budget.
            budgeted: false,
        };
        let downloaded = self
            .call(call, |_| provider.download(url, limits))
            .await
            .map_err(|failure| {
                let error = failure.into_call_error(handle.provider, CallOperation::Download);
                failed(error.to_string(), Some(error))
            })?;
        let bytes = downloaded.bytes;
        tracing::Span::current().record("bytes", bytes.len());
        let Some(info) = media::sniff(&bytes) else {
            return Err(failed(describe_non_image(&bytes), None));
        };
        if !media::is_complete(info.format, &bytes) {
            // The header sniffed fine but the file stops short: saving it would report a
            // broken image as a success.
            return Err(failed(
                format!(
                    "the {} is cut short ({} bytes): download it again",
                    info.format,
                    bytes.len()
                ),
                None,
            ));
        }
        let data = match &options.output {
            Output::Memory => ImageData::Bytes(bytes.clone()),
            Output::Directory(dir) => {
                // A file that cannot be written whole is an error, never a success: the image
                // is paid for, and the handle downloads it again.
                let written = match naming.and_then(|naming| naming.kept.get(index - 1)) {
                    // The request's own file from an earlier run: written again in place.
                    Some(kept) => {
                        imggen_http::fs::write_atomically_async(
                            dir.clone(),
                            kept.clone(),
                            bytes.clone(),
                        )
                        .await
                    }
                    None => {
                        let fields = NameFields {
                            id: naming.map_or(handle.task_id.as_str(), |naming| &naming.id),
                            number: naming.map_or(index, |naming| naming.first_number + index - 1),
                            index,
                            task_id: &handle.task_id,
                            provider: handle.provider.as_str(),
                            prompt: handle
                                .summary
                                .as_ref()
                                .map(|summary| summary.prompt.as_str()),
                        };
                        imggen_http::fs::write_new_atomically_async(
                            dir.clone(),
                            options.names.stem(&fields),
                            info.format.extension(),
                            bytes.clone(),
                        )
                        .await
                    }
                };
                ImageData::File(written.map_err(|error| failed(error.to_string(), None))?)
            }
        };
        Ok(GeneratedImage {
            data,
            media_type: info.format.media_type(),
            width: info.width,
            height: info.height,
            provider: handle.provider,
            task_id: handle.task_id.clone(),
            index,
            url: url.to_owned(),
            bytes_len: bytes.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_serialize_for_the_cli_without_their_bytes() {
        let image = GeneratedImage {
            data: ImageData::Bytes(Bytes::from_static(b"12345")),
            media_type: "image/png",
            width: Some(3),
            height: Some(2),
            provider: ProviderId::new("runbase"),
            task_id: "run_1".into(),
            index: 1,
            url: "https://cdn.example/1.png".into(),
            bytes_len: 5,
        };
        assert_eq!(
            serde_json::to_value(&image).unwrap(),
            serde_json::json!({
                "data": {"bytes": 5}, "media_type": "image/png", "width": 3, "height": 2,
                "provider": "runbase", "task_id": "run_1", "index": 1,
                "url": "https://cdn.example/1.png", "bytes_len": 5
            })
        );
        let file = serde_json::to_value(ImageData::File("out/run_1-1.png".into())).unwrap();
        assert_eq!(file, serde_json::json!({"file": "out/run_1-1.png"}));
    }

    #[test]
    fn a_non_image_is_described_by_its_first_bytes() {
        let message = describe_non_image(b"<html><body>Not Found</body></html>");
        assert!(
            message.contains("\"<html><body>Not Found</body></html>\""),
            "{message}"
        );
    }
}
