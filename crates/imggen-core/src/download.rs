//! Collecting results: every image through the provider's client (no key sent, https only
//! unless the API itself is http, bounded redirects, a size cap), its type read from its
//! bytes, and written atomically under a name made from the task id.

use std::path::{Path, PathBuf};
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
use crate::plan::Warning;
use crate::provider::{DownloadLimits, ProviderId};
use crate::status::{TaskState, TaskStatus};

#[cfg(feature = "convert")]
use crate::convert::Conversion;
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
    /// The format images are converted to when they come in another (feature `convert`;
    /// default `None`: kept as the provider sent them). Files and in-memory bytes alike.
    #[cfg(feature = "convert")]
    pub conversion: Option<Conversion>,
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
            #[cfg(feature = "convert")]
            conversion: None,
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

    /// Converts every image that comes in another format than `conversion`'s (see
    /// [`Conversion`] for what is written, in which order, and what a failure leaves).
    #[cfg(feature = "convert")]
    pub fn convert(mut self, conversion: Conversion) -> Self {
        self.conversion = Some(conversion);
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
    /// The file or the bytes — converted, when a conversion was asked for and succeeded.
    pub data: ImageData,
    /// The provider's own file or bytes, kept beside the converted ones
    /// (`Conversion::keep_original`, feature `convert`); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<ImageData>,
    /// Why the image is in the provider's format rather than the one asked for (it could not
    /// be decoded, encoded or written): `data` is then the provider's file or bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_error: Option<String>,
    /// The media type of `data`, read from its bytes (`image/png`).
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
    /// The size of `data` in bytes.
    pub bytes_len: u64,
}

/// The images' conversion failures, as warnings (setting `format`).
pub(crate) fn conversion_warnings(images: &[GeneratedImage]) -> Vec<Warning> {
    images
        .iter()
        .filter_map(|image| {
            let problem = image.conversion_error.as_ref()?;
            Some(Warning::new(
                image.provider,
                "format",
                image.media_type,
                format!(
                    "image {} of task {} kept as it came: {problem}",
                    image.index,
                    Untrusted(&image.task_id)
                ),
            ))
        })
        .collect()
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
    /// The names the task's images were saved under before, in order (an image's converted
    /// file first, then the provider's when kept).
    pub kept: Vec<String>,
}

/// A task's journaled files, grouped by image. An image has one file, or two when a
/// converted file was saved with the provider's kept: the converted one first, then the
/// provider's (extension `provided`, the task's images' format), whose name the converted
/// one's extends (`hero-1.jpg` from `hero-1.png`, or `hero-1-2.jpg` when that name was
/// taken). Only a pair of that shape is taken as one image's, so one image's file is never
/// written with another's bytes.
fn files_by_image(files: &[String], provided: &str) -> Vec<Vec<String>> {
    fn split(name: &str) -> (&str, &str) {
        name.rsplit_once('.').unwrap_or((name, ""))
    }
    let mut groups: Vec<Vec<String>> = Vec::with_capacity(files.len());
    for name in files {
        let pairs = groups.last().is_some_and(|group| match group.as_slice() {
            [converted] => {
                let (converted_stem, converted_ext) = split(converted);
                let (stem, ext) = split(name);
                converted_ext != provided
                    && ext == provided
                    && (converted_stem == stem
                        || converted_stem
                            .strip_prefix(stem)
                            .and_then(|rest| rest.strip_prefix('-'))
                            .is_some_and(|n| {
                                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                            }))
            }
            _ => false,
        });
        match groups.last_mut() {
            Some(group) if pairs => group.push(name.clone()),
            _ => groups.push(vec![name.clone()]),
        }
    }
    groups
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
        let mut image = GeneratedImage {
            data: ImageData::Bytes(bytes.clone()),
            original: None,
            conversion_error: None,
            media_type: info.format.media_type(),
            width: info.width,
            height: info.height,
            provider: handle.provider,
            task_id: handle.task_id.clone(),
            index,
            url: url.to_owned(),
            bytes_len: bytes.len() as u64,
        };
        let kept: Vec<String> = naming
            .map(|naming| files_by_image(&naming.kept, info.format.extension()))
            .and_then(|mut groups| (index <= groups.len()).then(|| groups.swap_remove(index - 1)))
            .unwrap_or_default();
        if let Output::Directory(dir) = &options.output {
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
            // The provider's bytes are saved first, whatever comes next: a file that cannot be
            // written whole is an error, never a success — the image is paid for, and the
            // handle downloads it again.
            let written = write_image(
                dir,
                &kept,
                options.names.stem(&fields),
                info.format.extension(),
                bytes.clone(),
            )
            .await;
            image.data = ImageData::File(written.map_err(|error| failed(error.to_string(), None))?);
        }
        #[cfg(feature = "convert")]
        if let Some(conversion) = options
            .conversion
            .filter(|conversion| conversion.applies_to(info.format))
        {
            convert_image(&mut image, bytes, conversion, &options.output, &kept).await;
        }
        Ok(image)
    }
}

/// Writes `bytes` under the name of `kept` that has `extension` (a request's own file from an
/// earlier run, written again in place), or else under a name no file has, made from `stem`.
async fn write_image(
    dir: &Path,
    kept: &[String],
    stem: String,
    extension: &'static str,
    bytes: Bytes,
) -> Result<PathBuf, imggen_http::fs::WriteError> {
    let own = kept
        .iter()
        .find(|name| Path::new(name).extension().and_then(|e| e.to_str()) == Some(extension));
    match own {
        Some(name) => {
            imggen_http::fs::write_atomically_async(dir.to_path_buf(), name.clone(), bytes).await
        }
        None => {
            imggen_http::fs::write_new_atomically_async(dir.to_path_buf(), stem, extension, bytes)
                .await
        }
    }
}

/// Converts a verified (and, for a folder, saved) image: on success `image` names the
/// converted file or bytes, and the provider's only when kept; on failure it is left naming
/// the provider's, with [`GeneratedImage::conversion_error`] saying why.
#[cfg(feature = "convert")]
async fn convert_image(
    image: &mut GeneratedImage,
    bytes: Bytes,
    conversion: Conversion,
    output: &Output,
    kept: &[String],
) {
    let converting = bytes.clone();
    let converted = tokio::task::spawn_blocking(move || conversion.convert(&converting))
        .await
        .map_err(|join| format!("the converting thread stopped: {join}"))
        .and_then(|converted| converted.map_err(|error| error.describe()));
    let placed = match (converted, output, &image.data) {
        (Err(problem), _, _) => Err(problem),
        (Ok(converted), Output::Directory(dir), ImageData::File(original)) => {
            // The same stem as the provider's file, so the two sort together.
            let stem = original
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let len = converted.len() as u64;
            let converted = Bytes::from(converted);
            write_image(
                dir,
                kept,
                stem,
                conversion.format.extension(),
                converted.clone(),
            )
            .await
            .map(|path| (ImageData::File(path), converted, len))
            .map_err(|error| error.to_string())
        }
        (Ok(converted), _, _) => {
            let len = converted.len() as u64;
            let converted = Bytes::from(converted);
            Ok((ImageData::Bytes(converted.clone()), converted, len))
        }
    };
    let (data, converted, len) = match placed {
        Ok(placed) => placed,
        Err(problem) => {
            tracing::warn!(
                provider = %image.provider,
                task_id = %Untrusted(&image.task_id),
                index = image.index,
                format = %conversion.format,
                "image kept as it came, not converted: {problem}"
            );
            image.conversion_error = Some(problem);
            return;
        }
    };
    let original = std::mem::replace(&mut image.data, data);
    image.original = match original {
        // Removed only now that the converted file is written and synced.
        ImageData::File(path) if !conversion.keep_original => {
            let removing = path.clone();
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(&removing))
                .await
                .map_err(std::io::Error::other)
                .and_then(|removed| removed);
            match removed {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(
                        path = %path.display(),
                        "the provider's file stays beside the converted one: it could not be removed: {error}"
                    );
                    Some(ImageData::File(path))
                }
            }
        }
        ImageData::Bytes(_) if !conversion.keep_original => None,
        kept => Some(kept),
    };
    let info = media::sniff(&converted);
    image.media_type = conversion.format.media_type();
    image.width = info.and_then(|info| info.width).or(image.width);
    image.height = info.and_then(|info| info.height).or(image.height);
    image.bytes_len = len;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_serialize_for_the_cli_without_their_bytes() {
        let image = GeneratedImage {
            data: ImageData::Bytes(Bytes::from_static(b"12345")),
            original: None,
            conversion_error: None,
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

    #[test]
    fn a_converted_file_and_its_kept_original_are_one_images() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            files_by_image(
                &names(&[
                    "hero-1.jpg",
                    "hero-1.png",
                    "hero-2-2.jpg",
                    "hero-2.png",
                    "hero-3.png",
                    "hero.webp",
                    "hero.png",
                ],),
                "png"
            ),
            [
                names(&["hero-1.jpg", "hero-1.png"]),
                names(&["hero-2-2.jpg", "hero-2.png"]),
                names(&["hero-3.png"]),
                names(&["hero.webp", "hero.png"]),
            ]
        );
        // Without a conversion, each image has its file; same extensions never pair.
        assert_eq!(
            files_by_image(&names(&["hero.png", "hero-2.png", "hero-3.png"]), "png"),
            [
                names(&["hero.png"]),
                names(&["hero-2.png"]),
                names(&["hero-3.png"])
            ]
        );
        // An image not converted, then the next one's converted file: not a pair.
        assert_eq!(
            files_by_image(&names(&["t-1.png", "t-2.webp", "t-2.png"]), "png"),
            [names(&["t-1.png"]), names(&["t-2.webp", "t-2.png"])]
        );
    }
}
