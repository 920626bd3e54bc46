//! Image bytes: what format they are (read from the bytes, never from a file name or URL) and
//! how they travel inside JSON (data URIs and bare base64).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// An image format imggen can recognise from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG (`image/jpeg`, `.jpg`)
    Jpeg,
    /// PNG (`image/png`, `.png`)
    Png,
    /// WebP (`image/webp`, `.webp`)
    Webp,
    /// GIF (`image/gif`, `.gif`)
    Gif,
}

impl ImageFormat {
    /// The IANA media type, e.g. `image/png`.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    /// The format a media type names (`image/jpg` is read as JPEG, as browsers do).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type.trim().to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" => Some(ImageFormat::Jpeg),
            "image/png" => Some(ImageFormat::Png),
            "image/webp" => Some(ImageFormat::Webp),
            "image/gif" => Some(ImageFormat::Gif),
            _ => None,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// What the first bytes of an image say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format.
    pub format: ImageFormat,
    /// Width in pixels, when the header holds it.
    pub width: Option<u32>,
    /// Height in pixels, when the header holds it.
    pub height: Option<u32>,
}

/// Recognises JPEG, PNG, WebP and GIF from their bytes, and reads their dimensions from the
/// header. `None` for anything else (an HTML error page served as `image.png`, say).
pub fn sniff(bytes: &[u8]) -> Option<ImageInfo> {
    // imagesize reads a fixed 12-byte header; a shorter input can still carry a signature.
    let mut header = [0u8; 12];
    let len = bytes.len().min(header.len());
    header[..len].copy_from_slice(&bytes[..len]);
    let format = match imagesize::image_type(&header).ok()? {
        imagesize::ImageType::Jpeg => ImageFormat::Jpeg,
        imagesize::ImageType::Png => ImageFormat::Png,
        imagesize::ImageType::Webp => ImageFormat::Webp,
        imagesize::ImageType::Gif => ImageFormat::Gif,
        _ => return None,
    };
    let size = imagesize::blob_size(bytes).ok();
    let dimension = |value: usize| u32::try_from(value).ok();
    Some(ImageInfo {
        format,
        width: size.and_then(|s| dimension(s.width)),
        height: size.and_then(|s| dimension(s.height)),
    })
}

/// Whether `bytes` hold a whole image of `format` rather than its first part: a PNG ends with
/// its `IEND` chunk, a JPEG with its end-of-image marker, a GIF with its trailer, a WebP is as
/// long as its RIFF header says. A download cut short passes [`sniff`] (the header is there)
/// but not this.
pub fn is_complete(format: ImageFormat, bytes: &[u8]) -> bool {
    const PNG_IEND: &[u8] = &[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];
    match format {
        ImageFormat::Png => bytes.ends_with(PNG_IEND),
        // Some encoders pad after the marker; padding is zeros.
        ImageFormat::Jpeg => {
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            bytes[..end].ends_with(&[0xff, 0xd9])
        }
        ImageFormat::Gif => bytes.last() == Some(&0x3b),
        ImageFormat::Webp => match bytes.get(4..8) {
            Some(size) => {
                let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
                u64::try_from(bytes.len()).is_ok_and(|len| len >= u64::from(declared) + 8)
            }
            None => false,
        },
    }
}

/// Encodes bytes as `data:<media type>;base64,<payload>`.
pub fn data_uri(format: ImageFormat, bytes: &[u8]) -> String {
    let mut uri = format!("data:{};base64,", format.media_type());
    STANDARD.encode_string(bytes, &mut uri);
    uri
}

/// A `data:` URI split into its parts, without decoding the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataUri<'a> {
    /// The declared media type, e.g. `image/png`.
    pub media_type: &'a str,
    /// The base64 payload.
    pub base64: &'a str,
}

impl<'a> DataUri<'a> {
    /// Splits `data:<type>;base64,<payload>`; `None` if `value` is not a base64 data URI.
    pub fn parse(value: &'a str) -> Option<Self> {
        let rest = value.strip_prefix("data:")?;
        let (header, payload) = rest.split_once(',')?;
        let media_type = header.strip_suffix(";base64")?;
        Some(DataUri {
            media_type,
            base64: payload,
        })
    }
}

/// Decodes standard base64 (with or without padding, ignoring line breaks some encoders add).
pub fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed = compact.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The smallest valid images of each kind: headers are all `sniff` reads.
    const PNG_1X1: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0x72, 0xb6, 0x0d, 0x24,
    ];

    #[test]
    fn sniffs_format_and_size_from_bytes() {
        let info = sniff(PNG_1X1).unwrap();
        assert_eq!(info.format, ImageFormat::Png);
        assert_eq!((info.width, info.height), (Some(3), Some(2)));
        assert_eq!(sniff(b"<html>not an image</html>"), None);
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
        assert_eq!(sniff(&jpeg).map(|i| i.format), Some(ImageFormat::Jpeg));
    }

    #[test]
    fn a_truncated_image_is_not_complete() {
        let mut png = PNG_1X1.to_vec();
        assert!(!is_complete(ImageFormat::Png, &png), "no IEND yet");
        png.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]);
        assert!(is_complete(ImageFormat::Png, &png));
        assert!(is_complete(
            ImageFormat::Jpeg,
            &[0xff, 0xd8, 0xff, 0xd9, 0, 0]
        ));
        assert!(!is_complete(
            ImageFormat::Jpeg,
            &[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]
        ));
        let webp = |len: usize| {
            let mut bytes = b"RIFF\x10\0\0\0WEBPVP8 ".to_vec();
            bytes.resize(len, 0);
            bytes
        };
        assert!(is_complete(ImageFormat::Webp, &webp(24)));
        assert!(!is_complete(ImageFormat::Webp, &webp(20)));
        assert!(is_complete(ImageFormat::Gif, b"GIF89a...;"));
        assert!(!is_complete(ImageFormat::Gif, b"GIF89a..."));
    }

    #[test]
    fn data_uris_round_trip() {
        let uri = data_uri(ImageFormat::Png, PNG_1X1);
        assert!(
            uri.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{uri}"
        );
        let parsed = DataUri::parse(&uri).unwrap();
        assert_eq!(parsed.media_type, "image/png");
        assert_eq!(decode_base64(parsed.base64).unwrap(), PNG_1X1);
        assert_eq!(DataUri::parse("https://example.com/a.png"), None);
        assert_eq!(decode_base64("not base64!"), None);
    }
}
