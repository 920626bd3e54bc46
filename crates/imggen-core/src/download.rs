//! Collecting results: every image through the provider's client (no key sent, https only
//! unless the API itself is http, bounded redirects, a size cap), its type read from its
//! bytes, and written atomically under a name made from the task id.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use imggen_types::media;
use serde::{Serialize, Serializer};
use tracing::Instrument as _;

use crate::Imggen;
use crate::budget::{Grant, Priority};
use crate::error::{CallOperation, DownloadError, Error};
use crate::handle::JobHandle;
use crate::policy::{self, Decision, Facts};
use crate::provider::{DownloadLimits, ProviderId};
use crate::status::{JobState, JobStatus};

pub use imggen_http::DEFAULT_MAX_DOWNLOAD_BYTES;

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
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            output: Output::Memory,
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_redirects: 5,
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

/// `<task_id>-<index>.<ext>`, with anything but letters, digits, `-`, `_` and `.` replaced,
/// so a task id can never name a path outside the output directory.
pub(crate) fn file_name(task_id: &str, index: usize, extension: &str) -> String {
    let mut stem: String = task_id
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = stem.trim_start_matches('.').to_owned();
    stem = if trimmed.is_empty() {
        "task".to_owned()
    } else {
        trimmed
    };
    format!("{stem}-{index}.{extension}")
}

/// Writes `bytes` to `dir/name` so that the final name only ever holds a whole file: a
/// temporary file in the same directory, synced, then renamed over the final name.
pub(crate) async fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    use tokio::io::AsyncWriteExt as _;
    tokio::fs::create_dir_all(dir).await?;
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.{:016x}.part", fastrand::u64(..)));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temporary, &target).await
    }
    .await;
    if let Err(error) = written {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(error);
    }
    Ok(target)
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
    /// not an image is an error. Files are named `<task_id>-<n>.<ext>` and written atomically.
    pub async fn download(
        &self,
        handle: &JobHandle,
        status: &JobStatus,
        options: &DownloadOptions,
    ) -> Result<Vec<GeneratedImage>, Error> {
        let JobState::Succeeded { images } = &status.state else {
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
                task_id = %handle.task_id,
                index,
                bytes = tracing::field::Empty,
            );
            let image = self
                .download_one(handle, &image.url, index, options)
                .instrument(span)
                .await?;
            results.push(image);
        }
        Ok(results)
    }

    async fn download_one(
        &self,
        handle: &JobHandle,
        url: &str,
        index: usize,
        options: &DownloadOptions,
    ) -> Result<GeneratedImage, Error> {
        let provider = self.provider(handle.provider)?;
        let scheduler = self.scheduler(&provider)?;
        let limits = DownloadLimits {
            max_bytes: options.max_bytes,
            max_redirects: options.max_redirects,
        };
        let failed = |problem: String, call| {
            Error::Download(Box::new(DownloadError {
                handle: handle.clone(),
                url: url.to_owned(),
                problem,
                call,
                siblings: Vec::new(),
            }))
        };
        let mut attempt = 0u32;
        let downloaded = loop {
            attempt += 1;
            match provider.download(url, limits).await {
                Ok(downloaded) => break downloaded,
                Err(error) => {
                    let decision = policy::decide(
                        CallOperation::Download,
                        &Facts::from(&error),
                        attempt,
                        &self.inner.retry,
                    );
                    let Decision::Retry { after } = decision else {
                        return Err(failed(error.to_string(), Some(error)));
                    };
                    // Downloads go to a CDN, not the API: a timer, not a budget permit.
                    let at = self.inner.clock.now() + policy::jitter_up(after, fastrand::f64());
                    if let Grant::Closed = scheduler.register(Priority::Timer, at, None).await {
                        return Err(failed(error.to_string(), Some(error)));
                    }
                }
            }
        };
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
                let name = file_name(&handle.task_id, index, info.format.extension());
                let path = write_atomically(dir, &name, &bytes).await.map_err(|err| {
                    failed(
                        format!("could not write {}: {err}", dir.join(&name).display()),
                        None,
                    )
                })?;
                ImageData::File(path)
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
    fn file_names_come_from_the_task_and_cannot_escape_the_directory() {
        assert_eq!(file_name("run_01JABC", 1, "png"), "run_01JABC-1.png");
        assert_eq!(
            file_name("../../etc/passwd", 2, "jpg"),
            "_.._etc_passwd-2.jpg"
        );
        assert_eq!(file_name("..", 1, "png"), "task-1.png");
        assert_eq!(file_name("a/b\\c:d", 3, "webp"), "a_b_c_d-3.webp");
    }

    #[tokio::test]
    async fn writes_are_atomic_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomically(dir.path(), "t-1.png", b"first")
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // Writing again replaces the whole file at once.
        write_atomically(dir.path(), "t-1.png", b"second")
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["t-1.png"]);
        // A directory that cannot be created is an error, not a panic.
        let blocked = dir.path().join("t-1.png").join("sub");
        assert!(write_atomically(&blocked, "x.png", b"x").await.is_err());
    }

    #[test]
    fn images_serialize_for_the_cli_without_their_bytes() {
        let image = GeneratedImage {
            data: ImageData::Bytes(Bytes::from_static(b"12345")),
            media_type: "image/png",
            width: Some(3),
            height: Some(2),
            provider: ProviderId::Runbase,
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
