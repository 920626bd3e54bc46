//! Result images: real PNGs drawn from the prompt, so a person who opens one sees something
//! intentional and a test can compare bytes.
//!
//! Each image is a two-colour gradient with a motif (rings, stripes, dots or a checkerboard)
//! whose colours, direction and scale come from a stable hash of the prompt and the image's
//! index. Only exactly rounded arithmetic is used (no `sin`, no `powf`), so the same prompt
//! gives the same bytes on every machine. A caption on top says it is the mock's and which
//! prompt it shows (see `caption`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::hash::{fnv1a64, mix};
use crate::provider::Provider;

/// Draws the `index`-th image of `prompt` at `width` × `height` and encodes it as PNG.
pub fn render_png(prompt: &str, index: u32, width: u32, height: u32) -> Vec<u8> {
    let width = width.max(1);
    let height = height.max(1);
    let pixels = draw(prompt, index, width, height);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Twice as fast as the default for a slightly larger file: the files only cross loopback,
    // and a test that renders a hundred of them should not wait for the compressor.
    encoder.set_compression(png::Compression::Fast);
    // Writing into a Vec cannot fail, and the buffer has exactly width × height × 3 bytes.
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels));
    if let Err(error) = written {
        tracing::error!("rendering a {width}x{height} PNG failed: {error}");
    }
    out
}

/// The parameters one image is drawn with, all from the hash.
struct Design {
    from: [f32; 3],
    to: [f32; 3],
    accent: [f32; 3],
    direction: (f32, f32),
    motif: u64,
    scale: f32,
    center: (f32, f32),
}

impl Design {
    fn new(prompt: &str, index: u32) -> Self {
        let seed = mix(fnv1a64(prompt.as_bytes()) ^ mix(u64::from(index) + 1));
        let part = |shift: u32, modulo: u64| (seed >> shift) % modulo;
        let hue = part(0, 360) as f32;
        // The second colour sits 60–180° around the wheel: distinct, never muddy.
        let hue_to = (hue + 60.0 + part(9, 121) as f32) % 360.0;
        let from = hsl(hue, 0.65, 0.55);
        let to = hsl(hue_to, 0.70, 0.35);
        let accent = hsl((hue + 180.0) % 360.0, 0.80, 0.85);
        // A direction from small integers rather than an angle, to avoid `sin`/`cos`.
        let mut dx = part(16, 9) as f32 - 4.0;
        let dy = part(20, 9) as f32 - 4.0;
        if dx == 0.0 && dy == 0.0 {
            dx = 1.0;
        }
        Design {
            from,
            to,
            accent,
            direction: (dx, dy),
            motif: part(24, 4),
            scale: 0.06 + part(28, 10) as f32 * 0.012,
            center: (
                0.25 + part(36, 51) as f32 / 100.0,
                0.25 + part(44, 51) as f32 / 100.0,
            ),
        }
    }
}

fn draw(prompt: &str, index: u32, width: u32, height: u32) -> Vec<u8> {
    let design = Design::new(prompt, index);
    let (dx, dy) = design.direction;
    let (w, h) = (width as f32, height as f32);
    // Project the four corners to normalise the gradient to 0..1 across the image.
    let corners = [0.0, dx * w, dy * h, dx * w + dy * h];
    let low = corners.iter().copied().fold(f32::INFINITY, f32::min);
    let high = corners.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = (high - low).max(1.0);
    let short = w.min(h);
    let period = (short * design.scale).max(2.0);
    let (cx, cy) = (design.center.0 * w, design.center.1 * h);

    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = ((dx * fx + dy * fy) - low) / span;
            let mut color = lerp(design.from, design.to, t);
            let strength = match design.motif {
                // Concentric rings around a point.
                0 => {
                    let distance = ((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)).sqrt();
                    band(distance / period, 0.5) * 0.35
                }
                // Stripes across the gradient.
                1 => band((dy * fx - dx * fy) / (period * 1.5), 0.35) * 0.30,
                // A grid of dots.
                2 => {
                    let gx = (fx / period).fract() - 0.5;
                    let gy = (fy / period).fract() - 0.5;
                    if gx * gx + gy * gy < 0.09 { 0.45 } else { 0.0 }
                }
                // A soft checkerboard.
                _ => {
                    let cell = (fx / (period * 2.0)).floor() + (fy / (period * 2.0)).floor();
                    if cell.rem_euclid(2.0) < 1.0 {
                        0.18
                    } else {
                        0.0
                    }
                }
            };
            color = lerp(color, design.accent, strength);
            pixels.extend(
                color
                    .iter()
                    .map(|channel| (channel.clamp(0.0, 1.0) * 255.0).round() as u8),
            );
        }
    }
    crate::caption::draw(&mut pixels, width, height, prompt);
    pixels
}

/// 1 on the first `duty` of every unit of `position`, 0 elsewhere.
fn band(position: f32, duty: f32) -> f32 {
    if position.rem_euclid(1.0) < duty {
        1.0
    } else {
        0.0
    }
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// HSL (hue in degrees) to RGB in 0..1.
fn hsl(hue: f32, saturation: f32, lightness: f32) -> [f32; 3] {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let x = chroma * (1.0 - (sector.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = lightness - chroma / 2.0;
    [r + m, g + m, b + m]
}

/// Which file: `/files/<provider>/<task>/<index>.png`.
pub(crate) type FileKey = (Provider, String, u32);

/// Rendered files, each rendered once however many requests ask for it at the same time.
#[derive(Debug, Default)]
pub(crate) struct ImageCache {
    files: Mutex<HashMap<FileKey, Arc<OnceCell<Bytes>>>>,
}

impl ImageCache {
    /// The PNG for `key`, rendering it (off the async threads) if nobody has yet.
    pub(crate) async fn get_or_render(
        &self,
        key: FileKey,
        prompt: String,
        width: u32,
        height: u32,
    ) -> Result<Bytes, tokio::task::JoinError> {
        let index = key.2;
        let cell = {
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(files.entry(key).or_default())
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                Bytes::from(render_png(&prompt, index, width, height))
            })
            .await
        })
        .await
        .cloned()
    }

    pub(crate) fn clear(&self) {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imggen_types::media::{ImageFormat, sniff};

    #[test]
    fn images_are_real_pngs_of_the_asked_size() {
        let png = render_png("A lighthouse at dusk", 0, 256, 144);
        let info = sniff(&png).unwrap();
        assert_eq!(info.format, ImageFormat::Png);
        assert_eq!((info.width, info.height), (Some(256), Some(144)));
    }

    #[test]
    fn the_same_prompt_and_index_give_the_same_bytes() {
        let a = render_png("A lighthouse at dusk", 1, 64, 64);
        assert_eq!(a, render_png("A lighthouse at dusk", 1, 64, 64));
        assert_ne!(a, render_png("A lighthouse at dusk", 0, 64, 64));
        assert_ne!(a, render_png("A lighthouse at dawn", 1, 64, 64));
    }

    #[test]
    fn images_are_not_flat_or_noise() {
        let pixels = draw("A ceramic lamp", 0, 64, 64);
        let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
        // A gradient with a motif: many colours, but far fewer than noise would give.
        assert!(distinct.len() > 16, "only {} colours", distinct.len());
        assert!(
            distinct.len() < 64 * 64 / 2,
            "{} colours looks like noise",
            distinct.len()
        );
    }

    #[test]
    fn hsl_primaries() {
        let close = |a: [f32; 3], b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(hsl(0.0, 1.0, 0.5), [1.0, 0.0, 0.0]));
        assert!(close(hsl(120.0, 1.0, 0.5), [0.0, 1.0, 0.0]));
        assert!(close(hsl(240.0, 1.0, 0.5), [0.0, 0.0, 1.0]));
    }
}
