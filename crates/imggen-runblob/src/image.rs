//! Reference images in any form a caller has them, turned into the strings runblob reads.
//!
//! runblob takes an http(s) URL, a `data:image/...;base64,` URI or bare base64 (read as JPEG).
//! Bytes and local files are sent as data URIs whose media type comes from the bytes
//! themselves, never from a file name: a PNG saved as `photo.jpg` and declared `image/jpeg`
//! would be misread, or fail the task as `INVALID_IMAGE`.

use std::fmt;
use std::path::{Path, PathBuf};

use imggen_types::ValidationError;
use imggen_types::media;
use imggen_types::runblob::{self, IMAGE_FORMATS, ImageReference, MAX_IMAGE_BYTES, MAX_IMAGES};
use tokio::io::AsyncReadExt as _;

/// Where a reference image comes from.
///
/// ```
/// use imggen_runblob::ImageSource;
///
/// # let png_bytes: Vec<u8> = Vec::new();
/// let sources = [
///     ImageSource::url("https://example.com/style.jpg"),
///     ImageSource::file("sketch.png"),
///     ImageSource::bytes(png_bytes),
///     ImageSource::wire("data:image/jpeg;base64,/9j/4AAQSkZJRg=="),
/// ];
/// # let _ = sources;
/// ```
///
/// Turn a list into the request's `images` with
/// [`Client::resolve_images`](crate::Client::resolve_images). `Debug` shows sizes, not
/// payloads, so logging a request with a 20 MB image stays readable.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// An `http://` or `https://` URL. runblob stores the link without downloading it, so it
    /// must stay publicly reachable until the task is done.
    Url(String),
    /// A `data:image/jpeg|png|webp;base64,...` URI, sent as it is.
    DataUri(String),
    /// Base64 without a prefix, sent as it is. runblob decodes it as JPEG, so it must be one.
    Base64(String),
    /// Image bytes (JPEG, PNG or WEBP, at most 20 MB), sent as a data URI of the format the
    /// bytes are.
    Bytes(Vec<u8>),
    /// A local file (JPEG, PNG or WEBP, at most 20 MB), read when the images are resolved and
    /// sent as a data URI of the format its bytes are, whatever its extension says. A
    /// relative path is relative to the working directory.
    File(PathBuf),
}

impl ImageSource {
    /// An `http://` or `https://` URL.
    pub fn url(url: impl Into<String>) -> Self {
        ImageSource::Url(url.into())
    }

    /// A `data:image/...;base64,` URI.
    pub fn data_uri(uri: impl Into<String>) -> Self {
        ImageSource::DataUri(uri.into())
    }

    /// Bare base64 of a JPEG image.
    pub fn base64(base64: impl Into<String>) -> Self {
        ImageSource::Base64(base64.into())
    }

    /// Image bytes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        ImageSource::Bytes(bytes.into())
    }

    /// A local file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ImageSource::File(path.into())
    }

    /// A string in any of runblob's wire forms, classified the way runblob classifies it: an
    /// `http(s)://` prefix is a URL, `data:...;base64,` a data URI, anything else bare base64.
    pub fn wire(value: impl Into<String>) -> Self {
        let value = value.into();
        match ImageReference::classify(&value) {
            ImageReference::Url(_) => ImageSource::Url(value),
            ImageReference::DataUri(_) => ImageSource::DataUri(value),
            ImageReference::Base64(_) => ImageSource::Base64(value),
        }
    }
}

impl fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Url(url) => f.debug_tuple("Url").field(&shorten(url)).finish(),
            ImageSource::DataUri(uri) => f.debug_tuple("DataUri").field(&shorten(uri)).finish(),
            ImageSource::Base64(text) => write!(f, "Base64({} chars)", text.len()),
            ImageSource::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            ImageSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Checks the count, then resolves every source in order; errors name `images[index]`.
pub(crate) async fn resolve_all(sources: Vec<ImageSource>) -> Result<Vec<String>, ValidationError> {
    // Counted first, so five 20 MB files are not read only to be refused.
    if sources.len() > MAX_IMAGES {
        return Err(ValidationError::new(
            "images",
            format!("has {} images; the maximum is {MAX_IMAGES}", sources.len()),
        ));
    }
    let mut images = Vec::with_capacity(sources.len());
    for (index, source) in sources.into_iter().enumerate() {
        images.push(resolve(&format!("images[{index}]"), source).await?);
    }
    Ok(images)
}

async fn resolve(field: &str, source: ImageSource) -> Result<String, ValidationError> {
    match source {
        ImageSource::Url(value) => wire_form(field, value, Form::Url),
        ImageSource::DataUri(value) => wire_form(field, value, Form::DataUri),
        ImageSource::Base64(value) => wire_form(field, value, Form::Base64),
        ImageSource::Bytes(bytes) => encode(field, &Origin::Bytes, &bytes),
        ImageSource::File(path) => {
            let bytes = read_file(field, &path).await?;
            encode(field, &Origin::File(&path), &bytes)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Url,
    DataUri,
    Base64,
}

impl Form {
    fn of(value: &str) -> Form {
        match ImageReference::classify(value) {
            ImageReference::Url(_) => Form::Url,
            ImageReference::DataUri(_) => Form::DataUri,
            ImageReference::Base64(_) => Form::Base64,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Form::Url => "an http(s) URL",
            Form::DataUri => "a data:image/...;base64, URI",
            Form::Base64 => "bare base64",
        }
    }
}

/// A string the caller says is in one form must be read by runblob as that form: a URL given
/// as `Base64` would be sent, and stored, as a link.
fn wire_form(field: &str, value: String, given: Form) -> Result<String, ValidationError> {
    let read_as = Form::of(&value);
    if read_as != given {
        return Err(ValidationError::new(
            field,
            format!(
                "{:?} was given as {} but runblob reads it as {}; use ImageSource::wire to let the form be detected",
                shorten(&value),
                given.words(),
                read_as.words()
            ),
        ));
    }
    runblob::check_image(field, &value)?;
    Ok(value)
}

/// What the bytes were, for messages.
enum Origin<'a> {
    Bytes,
    File(&'a Path),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Bytes => f.write_str("the data"),
            Origin::File(path) => write!(f, "file {}", shown(path)),
        }
    }
}

/// Sniffs the bytes and writes them as a data URI of the format they are.
fn encode(field: &str, origin: &Origin<'_>, bytes: &[u8]) -> Result<String, ValidationError> {
    if bytes.is_empty() {
        return Err(ValidationError::new(field, format!("{origin} is empty")));
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(too_large(field, origin, bytes.len() as u64));
    }
    match media::sniff(bytes).map(|info| info.format) {
        Some(format) if IMAGE_FORMATS.contains(&format) => Ok(media::data_uri(format, bytes)),
        Some(other) => Err(ValidationError::new(
            field,
            format!("{origin} is {other}; allowed: {}", allowed_formats()),
        )),
        None => Err(ValidationError::new(
            field,
            format!(
                "{origin} is not an image runblob reads ({} bytes that are not {})",
                bytes.len(),
                allowed_formats()
            ),
        )),
    }
}

fn too_large(field: &str, origin: &Origin<'_>, len: u64) -> ValidationError {
    ValidationError::new(
        field,
        format!("{origin} is {len} bytes; the maximum is 20 MB ({MAX_IMAGE_BYTES} bytes)"),
    )
}

fn allowed_formats() -> String {
    IMAGE_FORMATS
        .iter()
        .map(|format| format.media_type())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads at most 20 MB + 1 byte, so neither a huge file nor an endless one (a FIFO, a device)
/// is held in memory just to be refused.
async fn read_file(field: &str, path: &Path) -> Result<Vec<u8>, ValidationError> {
    let origin = Origin::File(path);
    let io_error = |doing: &str, err: std::io::Error| {
        let problem = match err.kind() {
            std::io::ErrorKind::NotFound => format!("{origin} does not exist"),
            std::io::ErrorKind::PermissionDenied => {
                format!("{origin} cannot be {doing}: permission denied")
            }
            _ => format!("{origin} cannot be {doing}: {err}"),
        };
        ValidationError::new(field, problem)
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| io_error("opened", err))?;
    let metadata = file.metadata().await.map_err(|err| io_error("read", err))?;
    if metadata.is_dir() {
        return Err(ValidationError::new(
            field,
            format!("{origin} is a directory, not an image file"),
        ));
    }
    let limit = MAX_IMAGE_BYTES as u64;
    if metadata.len() > limit {
        return Err(too_large(field, &origin, metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| io_error("read", err))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(field, &origin, bytes.len() as u64));
    }
    Ok(bytes)
}

/// A path for a message: quoted, and cut from the front when long, since the file name at the
/// end is what tells files apart.
fn shown(path: &Path) -> String {
    const KEEP: usize = 80;
    let text = path.display().to_string();
    let chars = text.chars().count();
    if chars <= KEEP {
        format!("{text:?}")
    } else {
        let tail: String = text.chars().skip(chars - KEEP).collect();
        format!("\"…{}\"", tail.escape_debug())
    }
}

/// The start of a long value, for messages and `Debug`: never megabytes of base64.
fn shorten(value: &str) -> String {
    const KEEP: usize = 60;
    match value.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use imggen_types::media::ImageFormat;

    use super::*;

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
    ];
    const JPEG: &[u8] = &[
        0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
    ];
    const WEBP: &[u8] =
        b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";

    fn declared_format(uri: &str) -> Option<ImageFormat> {
        media::DataUri::parse(uri).and_then(|uri| ImageFormat::from_media_type(uri.media_type))
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[tokio::test]
    async fn the_sniffed_format_wins_over_the_file_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "photo.jpg", PNG);
        let images = resolve_all(vec![ImageSource::file(&path)]).await.unwrap();
        assert!(
            images[0].starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{}",
            images[0]
        );
        assert_eq!(
            media::decode_base64(&images[0]["data:image/png;base64,".len()..]).unwrap(),
            PNG
        );
    }

    #[tokio::test]
    async fn bytes_of_each_accepted_format_get_their_own_media_type() {
        for (bytes, format) in [
            (JPEG, ImageFormat::Jpeg),
            (PNG, ImageFormat::Png),
            (WEBP, ImageFormat::Webp),
        ] {
            let images = resolve_all(vec![ImageSource::bytes(bytes)]).await.unwrap();
            assert_eq!(declared_format(&images[0]), Some(format));
            // What this module builds, the request validation accepts.
            runblob::check_image("images[0]", &images[0]).unwrap();
        }
    }

    #[tokio::test]
    async fn a_gif_is_refused_naming_the_field_the_file_and_what_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "anim.png", GIF);
        let sources = vec![
            ImageSource::url("https://example.com/a.jpg"),
            ImageSource::bytes(JPEG),
            ImageSource::file(&path),
        ];
        let err = resolve_all(sources).await.unwrap_err();
        assert_eq!(err.field, "images[2]");
        assert_eq!(
            err.problem,
            format!(
                "file {:?} is image/gif; allowed: image/jpeg, image/png, image/webp",
                path.display().to_string()
            )
        );
        let err = resolve_all(vec![ImageSource::bytes(GIF)])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "images[0]: the data is image/gif; allowed: image/jpeg, image/png, image/webp"
        );
    }

    #[tokio::test]
    async fn missing_empty_and_directory_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.png");
        let err = resolve_all(vec![ImageSource::file(&missing)])
            .await
            .unwrap_err();
        assert_eq!(
            err.problem,
            format!("file {:?} does not exist", missing.display().to_string())
        );

        let empty = write(&dir, "empty.png", b"");
        let err = resolve_all(vec![ImageSource::file(&empty)])
            .await
            .unwrap_err();
        assert!(err.problem.ends_with("is empty"), "{err}");

        let err = resolve_all(vec![ImageSource::file(dir.path())])
            .await
            .unwrap_err();
        assert!(
            err.problem.ends_with("is a directory, not an image file"),
            "{err}"
        );

        let text = write(&dir, "notes.jpg", b"<html>not an image</html>");
        let err = resolve_all(vec![ImageSource::file(&text)])
            .await
            .unwrap_err();
        assert!(
            err.problem.contains("is not an image runblob reads"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_over_20_mb_is_refused_without_being_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = PNG.to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        let path = write(&dir, "big.png", &big);
        let err = resolve_all(vec![ImageSource::file(&path)])
            .await
            .unwrap_err();
        assert!(
            err.problem.ends_with(&format!(
                "is {} bytes; the maximum is 20 MB (20971520 bytes)",
                MAX_IMAGE_BYTES + 1
            )),
            "{err}"
        );
        let err = resolve_all(vec![ImageSource::bytes(big)])
            .await
            .unwrap_err();
        assert!(
            err.problem.starts_with("the data is 20971521 bytes"),
            "{err}"
        );
        // Exactly 20 MB is allowed.
        let mut limit = PNG.to_vec();
        limit.resize(MAX_IMAGE_BYTES, 0);
        assert!(resolve_all(vec![ImageSource::bytes(limit)]).await.is_ok());
    }

    #[tokio::test]
    async fn five_sources_are_refused_before_any_file_is_read() {
        let missing = PathBuf::from("/definitely/not/here.png");
        let sources = vec![ImageSource::file(missing); 5];
        let err = resolve_all(sources).await.unwrap_err();
        assert_eq!(err.to_string(), "images: has 5 images; the maximum is 4");
    }

    #[tokio::test]
    async fn wire_forms_are_passed_through_checked_and_must_be_what_they_claim() {
        let png_uri = media::data_uri(ImageFormat::Png, PNG);
        let jpeg_b64 =
            media::data_uri(ImageFormat::Jpeg, JPEG)["data:image/jpeg;base64,".len()..].to_owned();
        let images = resolve_all(vec![
            ImageSource::url("https://example.com/ref1.jpg"),
            ImageSource::data_uri(png_uri.clone()),
            ImageSource::base64(jpeg_b64.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(
            images,
            [
                "https://example.com/ref1.jpg",
                png_uri.as_str(),
                jpeg_b64.as_str()
            ]
        );

        let err = resolve_all(vec![ImageSource::base64("https://example.com/a.jpg")])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "images[0]: \"https://example.com/a.jpg\" was given as bare base64 but runblob reads it as an http(s) URL; use ImageSource::wire to let the form be detected"
        );
        let err = resolve_all(vec![ImageSource::url("example.com/a.jpg")])
            .await
            .unwrap_err();
        assert!(err.problem.contains("was given as an http(s) URL"), "{err}");
        // The checks of the request itself apply too: a PNG sent as bare base64 is misread.
        let png_b64 = png_uri["data:image/png;base64,".len()..].to_owned();
        let err = resolve_all(vec![ImageSource::base64(png_b64)])
            .await
            .unwrap_err();
        assert!(err.problem.contains("decoded as JPEG"), "{err}");
    }

    #[test]
    fn wire_strings_are_classified_as_runblob_does() {
        assert_eq!(
            ImageSource::wire("HTTPS://example.com/a.jpg"),
            ImageSource::Url("HTTPS://example.com/a.jpg".into())
        );
        assert!(matches!(
            ImageSource::wire("data:image/png;base64,iVBORw0KGgo="),
            ImageSource::DataUri(_)
        ));
        assert!(matches!(
            ImageSource::wire("/9j/4AAQSkZJRg=="),
            ImageSource::Base64(_)
        ));
    }

    #[test]
    fn debug_shows_sizes_not_payloads() {
        let payload = "A".repeat(1_000_000);
        let text = format!(
            "{:?} {:?} {:?}",
            ImageSource::base64(payload.clone()),
            ImageSource::data_uri(format!("data:image/jpeg;base64,{payload}")),
            ImageSource::bytes(vec![0u8; 1_000_000]),
        );
        assert!(text.len() < 300, "{text}");
        assert!(text.contains("Base64(1000000 chars)"), "{text}");
        assert!(text.contains("Bytes(1000000 bytes)"), "{text}");
    }

    #[test]
    fn long_paths_keep_their_file_name() {
        let long = PathBuf::from(format!("/{}/photo.png", "d".repeat(200)));
        let shown = shown(&long);
        assert!(shown.ends_with("/photo.png\""), "{shown}");
        assert!(shown.chars().count() < 90, "{shown}");
    }
}
