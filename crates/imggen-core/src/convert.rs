//! Images in the format you need (feature `convert`): a download whose bytes are in another
//! format than the one asked for is decoded and encoded again locally, after it was verified
//! and saved, so a conversion that fails never loses what was paid for.
//!
//! ```
//! use imggen_core::{Conversion, DownloadOptions, ImageFormat};
//!
//! let format: ImageFormat = "jpg".parse().unwrap();
//! let options = DownloadOptions::to_dir("out")
//!     .convert(Conversion::to(format).jpeg_quality(85).keep_original(true));
//! assert_eq!(options.conversion.unwrap().format.extension(), "jpg");
//! assert!("gif".parse::<ImageFormat>().unwrap_err().to_string().contains("png, jpeg (or jpg), webp"));
//! ```
//!
//! - A file already in the format asked for is left as it is: nothing is encoded again.
//! - **JPEG** has no transparency: transparent pixels are laid on white. Its quality is
//!   [`Conversion::jpeg_quality`] (1–100, default [`DEFAULT_JPEG_QUALITY`]).
//! - **WebP** is written lossless (the `image` crate encodes lossless WebP only), so a WebP
//!   made from a PNG is about as large as the PNG; the JPEG quality does not apply to it.
//! - **PNG** is lossless.
//!
//! Decoding and encoding run on tokio's blocking pool, never on the async threads.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use image::{DynamicImage, ImageEncoder as _, RgbImage};
use imggen_types::media;

/// The JPEG quality used when none is set.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// A format images can be converted to. (The formats imggen can *read* a download as are
/// [`imggen_types::media::ImageFormat`], which has GIF too.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// PNG, lossless.
    Png,
    /// JPEG, lossy, no transparency.
    Jpeg,
    /// WebP, written lossless.
    Webp,
}

impl ImageFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

    /// The file extension a file of this format gets: `png`, `jpg`, `webp` (the extension
    /// a download in that format gets too).
    pub fn extension(self) -> &'static str {
        self.media().extension()
    }

    /// The media type: `image/png`, `image/jpeg`, `image/webp`.
    pub fn media_type(self) -> &'static str {
        self.media().media_type()
    }

    /// Its name: `png`, `jpeg`, `webp`.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
        }
    }

    /// The same format as a download's sniffed format.
    pub fn media(self) -> media::ImageFormat {
        match self {
            ImageFormat::Png => media::ImageFormat::Png,
            ImageFormat::Jpeg => media::ImageFormat::Jpeg,
            ImageFormat::Webp => media::ImageFormat::Webp,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name [`ImageFormat`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a format imggen converts to: png, jpeg (or jpg), webp")]
pub struct ImageFormatError {
    /// The name given.
    pub value: String,
}

impl FromStr for ImageFormat {
    type Err = ImageFormatError;

    /// `png`, `jpeg` or `jpg`, `webp`, in any case.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(ImageFormat::Png),
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            "webp" => Ok(ImageFormat::Webp),
            _ => Err(ImageFormatError {
                value: value.to_owned(),
            }),
        }
    }
}

/// Converting downloads to one format: set on
/// [`DownloadOptions::convert`](crate::DownloadOptions::convert) and
/// `BatchOptions::convert`.
///
/// A file is written in the provider's format first (atomically, as always); the converted
/// file takes the same name with the new extension (or `-2`, `-3`… if that name is taken:
/// no file is ever replaced), is written atomically, and only then is the provider's file
/// removed — unless [`keep_original`](Self::keep_original). An image that cannot be
/// converted stays as it came, and says why in [`GeneratedImage::conversion_error`](crate::GeneratedImage::conversion_error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conversion {
    /// The format wanted.
    pub format: ImageFormat,
    /// JPEG quality, 1 (smallest) to 100 (best); only JPEG uses it. Values outside are
    /// taken as the nearest bound.
    pub jpeg_quality: u8,
    /// Keep the provider's file beside the converted one (default: removed once the
    /// converted file is safely written).
    pub keep_original: bool,
}

impl Conversion {
    /// Converts to `format`, JPEG quality [`DEFAULT_JPEG_QUALITY`], the original removed.
    pub fn to(format: ImageFormat) -> Self {
        Conversion {
            format,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            keep_original: false,
        }
    }

    /// Sets the JPEG quality (1–100, clamped).
    pub fn jpeg_quality(mut self, quality: u8) -> Self {
        self.jpeg_quality = quality.clamp(1, 100);
        self
    }

    /// Keeps the provider's file too.
    pub fn keep_original(mut self, keep: bool) -> Self {
        self.keep_original = keep;
        self
    }

    /// Whether an image in `format` needs converting.
    pub fn applies_to(&self, format: media::ImageFormat) -> bool {
        format != self.format.media()
    }

    /// Decodes `bytes` (PNG, JPEG or WebP) and encodes them in [`format`](Self::format).
    /// CPU-bound: call it from a blocking thread (`tokio::task::spawn_blocking`) in async
    /// code. Bytes already in the format are encoded again all the same: check
    /// [`applies_to`](Self::applies_to) first.
    pub fn convert(&self, bytes: &[u8]) -> Result<Vec<u8>, ConvertError> {
        let from = media::sniff(bytes).map(|info| info.format);
        let fail = |stage: &'static str, cause: image::ImageError| ConvertError {
            from,
            to: self.format,
            stage,
            source: Box::new(cause),
        };
        let decoded = image::load_from_memory(bytes).map_err(|cause| fail("decode", cause))?;
        let mut out = Cursor::new(Vec::new());
        match self.format {
            ImageFormat::Jpeg => {
                let flat = flatten_on_white(decoded);
                image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut out,
                    self.jpeg_quality.clamp(1, 100),
                )
                .write_image(
                    flat.as_raw(),
                    flat.width(),
                    flat.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|cause| fail("encode", cause))?;
            }
            ImageFormat::Png => decoded
                .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
                .map_err(|cause| fail("encode", cause))?,
            ImageFormat::Webp => {
                // The lossless encoder takes 8-bit RGB(A) only.
                let eight_bit = if decoded.color().has_alpha() {
                    DynamicImage::ImageRgba8(decoded.into_rgba8())
                } else {
                    DynamicImage::ImageRgb8(decoded.into_rgb8())
                };
                eight_bit
                    .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
                    .map_err(|cause| fail("encode", cause))?;
            }
        }
        Ok(out.into_inner())
    }
}

/// JPEG has no alpha: a transparent pixel must come out white (the page it would have been
/// shown on), not the black its zeroed colour channels would give.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            // Rounded: (c·a + 255·(255 − a)) / 255.
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// An image that could not be converted. The original is kept.
#[derive(Debug, thiserror::Error)]
#[error("could not {stage} the {} to make a {to}", from.map_or("download", media::ImageFormat::media_type))]
pub struct ConvertError {
    /// The format the image came in, when recognised.
    pub from: Option<media::ImageFormat>,
    /// The format asked for.
    pub to: ImageFormat,
    /// `decode` or `encode`.
    pub stage: &'static str,
    /// The codec's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ConvertError {
    /// The message and its cause, on one line (for a warning).
    pub fn describe(&self) -> String {
        format!("{self}: {}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, pixel: [u8; 4]) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba(pixel));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(image)
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn format_names_are_read_in_any_case_and_an_unknown_one_lists_the_accepted() {
        assert_eq!("PNG".parse::<ImageFormat>().unwrap(), ImageFormat::Png);
        assert_eq!("jpg".parse::<ImageFormat>().unwrap(), ImageFormat::Jpeg);
        assert_eq!("jpeg".parse::<ImageFormat>().unwrap(), ImageFormat::Jpeg);
        assert_eq!("webp".parse::<ImageFormat>().unwrap(), ImageFormat::Webp);
        let error = "gif".parse::<ImageFormat>().unwrap_err().to_string();
        assert_eq!(
            error,
            "\"gif\" is not a format imggen converts to: png, jpeg (or jpg), webp"
        );
        assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
        assert_eq!(ImageFormat::Webp.media_type(), "image/webp");
    }

    #[test]
    fn a_png_becomes_a_jpeg_of_the_same_size() {
        let converted = Conversion::to(ImageFormat::Jpeg)
            .convert(&png(7, 5, [10, 200, 30, 255]))
            .unwrap();
        let info = media::sniff(&converted).unwrap();
        assert_eq!(info.format, media::ImageFormat::Jpeg);
        let back = image::load_from_memory(&converted).unwrap();
        assert_eq!((back.width(), back.height()), (7, 5));
    }

    #[test]
    fn a_transparent_pixel_becomes_white_in_a_jpeg_not_black() {
        let converted = Conversion::to(ImageFormat::Jpeg)
            .jpeg_quality(100)
            .convert(&png(8, 8, [0, 0, 0, 0]))
            .unwrap();
        let back = image::load_from_memory(&converted).unwrap().into_rgb8();
        for pixel in back.pixels() {
            assert!(pixel.0.iter().all(|c| *c >= 250), "{pixel:?}");
        }
    }

    #[test]
    fn half_transparent_red_is_pink_on_white() {
        let flat = flatten_on_white(DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            1,
            1,
            image::Rgba([255, 0, 0, 128]),
        )));
        assert_eq!(flat.get_pixel(0, 0).0, [255, 127, 127]);
    }

    #[test]
    fn webp_is_lossless_and_keeps_transparency() {
        let source = png(4, 3, [1, 2, 3, 4]);
        let converted = Conversion::to(ImageFormat::Webp).convert(&source).unwrap();
        assert_eq!(
            media::sniff(&converted).unwrap().format,
            media::ImageFormat::Webp
        );
        let back = image::load_from_memory(&converted).unwrap().into_rgba8();
        assert_eq!((back.width(), back.height()), (4, 3));
        assert!(back.pixels().all(|p| p.0 == [1, 2, 3, 4]));
    }

    #[test]
    fn bytes_that_look_like_a_png_but_do_not_decode_say_so() {
        // A PNG signature and an IHDR, then garbage: it sniffs as a PNG, decoding fails.
        let mut bytes = png(2, 2, [0, 0, 0, 255]);
        let len = bytes.len();
        bytes[40..len - 12].fill(0xAB);
        let error = Conversion::to(ImageFormat::Jpeg)
            .convert(&bytes)
            .unwrap_err();
        assert_eq!(error.stage, "decode");
        assert_eq!(
            error.to_string(),
            "could not decode the image/png to make a jpeg"
        );
    }

    #[test]
    fn the_quality_is_clamped_and_only_a_different_format_needs_converting() {
        assert_eq!(
            Conversion::to(ImageFormat::Jpeg)
                .jpeg_quality(0)
                .jpeg_quality,
            1
        );
        assert_eq!(
            Conversion::to(ImageFormat::Jpeg)
                .jpeg_quality(200)
                .jpeg_quality,
            100
        );
        let to_png = Conversion::to(ImageFormat::Png);
        assert!(!to_png.applies_to(media::ImageFormat::Png));
        assert!(to_png.applies_to(media::ImageFormat::Webp));
    }
}
