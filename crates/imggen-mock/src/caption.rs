//! The words written on every result image: a banner saying it comes from the mock, and the
//! start of its prompt, so that nobody takes a placeholder for a real result, or one prompt's
//! image for another's.
//!
//! Glyphs are font8x8's public-domain 8 × 8 bitmaps scaled by a whole number, so the text stays
//! crisp and the bytes stay the same everywhere. Only the crate's plain tables are read: its
//! `unicode` lookup misses some Latin-1 letters (that table repeats U+00B2).

use font8x8::legacy::{BASIC_LEGACY, GREEK_LEGACY, LATIN_LEGACY};

/// What the banner says; [`SHORT_LABEL`] when the image is too narrow for it.
pub(crate) const LABEL: &str = "imggen mock";
const SHORT_LABEL: &str = "mock";
/// What a cut prompt ends with (font8x8 has no `…`).
const ELLIPSIS: &str = "...";
/// Prompt lines at most: enough to recognise a prompt, little enough to leave the pattern.
const PROMPT_LINES: usize = 2;

/// Black on yellow, like a warning sign: it has to stand out from any pattern.
pub(crate) const BANNER: [u8; 3] = [255, 212, 0];
pub(crate) const LABEL_INK: [u8; 3] = [0, 0, 0];
pub(crate) const STRIP: [u8; 3] = [16, 16, 16];
pub(crate) const PROMPT_INK: [u8; 3] = [255, 255, 255];

/// One line of text: `text` drawn from (`x`, `y`), each glyph `8 × scale` pixels square.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) scale: usize,
}

/// Where everything goes on one image; rows are half-open ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) banner: (usize, usize),
    pub(crate) label: Line,
    /// Empty rows and no lines when the prompt shows nothing or there is no room.
    pub(crate) strip: (usize, usize),
    pub(crate) prompt: Vec<Line>,
}

/// Lays out the label and prompt; `None` when not even the short label fits (a few pixels).
pub(crate) fn layout(prompt: &str, width: u32, height: u32) -> Option<Layout> {
    let (width, height) = (width as usize, height as usize);
    // The prompt's glyphs: 8 px on a 256 px image, 32 px on a 1024 px one; the label's twice.
    let unit = (width / 256).min(height / 192).max(1);
    let (label, scale) = [(LABEL, 2 * unit), (LABEL, unit), (SHORT_LABEL, unit)]
        .into_iter()
        .find(|(label, scale)| {
            label.len() * 8 * scale + 4 * scale <= width && 12 * scale <= height / 3
        })?;
    let banner_height = 12 * scale;
    let label = Line {
        text: label.to_owned(),
        x: (width - label.len() * 8 * scale) / 2,
        y: 2 * scale,
        scale,
    };

    let margin = 3 * unit;
    let per_line = (width - 2 * margin) / (8 * unit);
    // Each line is 8 units high with 2 units above; one more below the last.
    let strip_height = |lines: usize| lines * 10 * unit + 2 * unit;
    let lines = (1..=PROMPT_LINES)
        .rev()
        .find(|&lines| banner_height + strip_height(lines) <= height * 3 / 4)
        .unwrap_or(0);
    let texts = if per_line > ELLIPSIS.len() && lines > 0 {
        let shown: Vec<char> = shown_chars(prompt)
            .take(lines * (per_line + 1) + 1)
            .collect();
        wrap(&shown, per_line, lines)
    } else {
        Vec::new()
    };
    let top = height - strip_height(texts.len()).min(height);
    let prompt = texts
        .into_iter()
        .enumerate()
        .map(|(index, text)| Line {
            text,
            x: margin,
            y: top + 2 * unit + index * 10 * unit,
            scale: unit,
        })
        .collect::<Vec<_>>();
    Some(Layout {
        banner: (0, banner_height),
        label,
        strip: if prompt.is_empty() {
            (height, height)
        } else {
            (top, height)
        },
        prompt,
    })
}

/// Writes the caption over `pixels` (RGB, `width` × `height`).
pub(crate) fn draw(pixels: &mut [u8], width: u32, height: u32, prompt: &str) {
    let Some(layout) = layout(prompt, width, height) else {
        return;
    };
    let width = width as usize;
    fill_rows(pixels, width, layout.banner, BANNER);
    draw_line(pixels, width, &layout.label, LABEL_INK);
    fill_rows(pixels, width, layout.strip, STRIP);
    for line in &layout.prompt {
        draw_line(pixels, width, line, PROMPT_INK);
    }
}

/// The bitmap of `c` (row by row, bit 0 leftmost), if font8x8 has a visible one.
pub(crate) fn glyph(c: char) -> Option<[u8; 8]> {
    let code = c as usize;
    let bitmap = match code {
        0x20..=0x7e => BASIC_LEGACY[code],
        0xa0..=0xff => LATIN_LEGACY[code - 0xa0],
        0x390..=0x3c9 => GREEK_LEGACY[code - 0x390],
        _ => return None,
    };
    (c == ' ' || bitmap != [0; 8]).then_some(bitmap)
}

/// The prompt as drawn: whitespace runs become one space, anything without a glyph a `?`.
fn shown_chars(prompt: &str) -> impl Iterator<Item = char> + '_ {
    let mut space = false;
    prompt
        .chars()
        .filter_map(move |c| {
            if c.is_whitespace() {
                space = true;
                return None;
            }
            let c = if glyph(c).is_some() { c } else { '?' };
            Some([std::mem::take(&mut space).then_some(' '), Some(c)])
        })
        .flatten()
        .flatten()
        .skip_while(|c| *c == ' ')
}

/// Up to `lines` lines of at most `per_line` characters, broken at a space where one is near
/// the end, the last cut with an ellipsis if the text goes on.
fn wrap(text: &[char], per_line: usize, lines: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && out.len() < lines {
        if rest.len() <= per_line {
            out.push(rest.iter().collect());
            break;
        }
        if out.len() + 1 == lines {
            let kept = &rest[..per_line - ELLIPSIS.len()];
            let mut line: String = kept.iter().collect();
            line.truncate(line.trim_end().len());
            line.push_str(ELLIPSIS);
            out.push(line);
            break;
        }
        let cut = rest[..=per_line]
            .iter()
            .rposition(|c| *c == ' ')
            .filter(|&at| at > per_line / 2)
            .unwrap_or(per_line);
        out.push(rest[..cut].iter().collect::<String>().trim_end().to_owned());
        rest = &rest[cut..];
        while rest.first() == Some(&' ') {
            rest = &rest[1..];
        }
    }
    out
}

fn fill_rows(pixels: &mut [u8], width: usize, (from, to): (usize, usize), color: [u8; 3]) {
    if let Some(rows) = pixels.get_mut(from * width * 3..to * width * 3) {
        for pixel in rows.chunks_exact_mut(3) {
            pixel.copy_from_slice(&color);
        }
    }
}

fn draw_line(pixels: &mut [u8], width: usize, line: &Line, ink: [u8; 3]) {
    let scale = line.scale;
    for (index, c) in line.text.chars().enumerate() {
        let Some(bitmap) = glyph(c).or_else(|| glyph('?')) else {
            continue;
        };
        let left = line.x + index * 8 * scale;
        for (row, bits) in bitmap.into_iter().enumerate() {
            for column in (0..8).filter(|column| bits & (1 << column) != 0) {
                let x = left + column * scale;
                if x + scale > width {
                    continue;
                }
                for y in line.y + row * scale..line.y + (row + 1) * scale {
                    let start = (y * width + x) * 3;
                    if let Some(block) = pixels.get_mut(start..start + scale * 3) {
                        for pixel in block.chunks_exact_mut(3) {
                            pixel.copy_from_slice(&ink);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::render_png;

    /// Sizes the mock serves: the default 256 px long side at several ratios (9:21 is the
    /// narrowest), the documented full sizes, and runbase's 2K.
    const SIZES: [(u32, u32); 9] = [
        (256, 256),
        (256, 144),
        (110, 256),
        (256, 110),
        (1024, 1024),
        (1536, 1024),
        (1024, 1536),
        (1536, 864),
        (2048, 1152),
    ];

    /// The decoded RGB pixels of a rendered PNG.
    fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        pixels.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, pixels)
    }

    fn pixel(pixels: &[u8], width: usize, x: usize, y: usize) -> [u8; 3] {
        let at = (y * width + x) * 3;
        [pixels[at], pixels[at + 1], pixels[at + 2]]
    }

    fn line_width(line: &Line) -> usize {
        line.text.chars().count() * 8 * line.scale
    }

    /// Every pixel of the `index`-th glyph cell of `line` is `ink` where font8x8's bitmap of
    /// `c` is set and `paper` where it is not.
    fn assert_glyph(
        image: (usize, &[u8]),
        line: &Line,
        index: usize,
        c: char,
        (ink, paper): ([u8; 3], [u8; 3]),
    ) {
        let (width, pixels) = image;
        let bitmap = glyph(c).unwrap();
        let scale = line.scale;
        for (row, bits) in bitmap.into_iter().enumerate() {
            for column in 0..8 {
                let expected = if bits & (1 << column) != 0 {
                    ink
                } else {
                    paper
                };
                for dy in 0..scale {
                    for dx in 0..scale {
                        let x = line.x + (index * 8 + column) * scale + dx;
                        let y = line.y + row * scale + dy;
                        assert_eq!(
                            pixel(pixels, width, x, y),
                            expected,
                            "{c:?} (glyph {index} of {:?}) at ({x}, {y}), row {row}, column {column}",
                            line.text
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_served_size_shows_the_banner_and_the_prompt_in_the_font() {
        let prompt = "A lighthouse at dusk";
        let mut scales = Vec::new();
        // 2048 × 1152 only in the layout test below: slow to render unoptimised.
        for (width, height) in &SIZES[..8] {
            let (width, height) = (*width, *height);
            let png = render_png(prompt, 0, width, height);
            let (w, h, pixels) = decode(&png);
            assert_eq!((w, h), (width as usize, height as usize));
            let layout = layout(prompt, width, height).unwrap();
            let label = &layout.label;
            assert_eq!(label.text, "imggen mock", "{width}x{height}");
            // On a banner across the top, centred.
            assert_eq!(layout.banner.0, 0);
            assert!(layout.banner.1 <= h / 4, "{width}x{height}: {layout:?}");
            assert!(label.y + 8 * label.scale <= layout.banner.1);
            assert!(label.x.abs_diff(w - label.x - line_width(label)) <= 1);
            for x in [0, w / 2, w - 1] {
                assert_eq!(pixel(&pixels, w, x, 0), BANNER, "{width}x{height}");
            }
            scales.push(label.scale);
            for (index, c) in label.text.chars().enumerate() {
                assert_glyph((w, &pixels), label, index, c, (LABEL_INK, BANNER));
            }

            // The prompt on a dark strip along the bottom edge.
            let texts: Vec<&str> = layout.prompt.iter().map(|l| l.text.as_str()).collect();
            // One line where it fits; the 110 px wide 9:21 image breaks it at a space.
            let expected: &[&str] = if w > 200 {
                &[prompt]
            } else {
                &["A lighthouse", "at dusk"]
            };
            assert_eq!(texts, expected, "{width}x{height}");
            assert_eq!(layout.strip.1, h);
            assert!(layout.strip.0 > layout.banner.1);
            assert_eq!(pixel(&pixels, w, w - 1, h - 1), STRIP);
            for line in &layout.prompt {
                assert!(layout.strip.0 <= line.y && line.y + 8 * line.scale <= h);
                for (index, c) in line.text.chars().enumerate() {
                    assert_glyph((w, &pixels), line, index, c, (PROMPT_INK, STRIP));
                }
            }
        }
        // Legible and scaled with the image: 16 px letters at 256 px, 64 px at 1024 px.
        assert_eq!(scales, [2, 2, 1, 2, 8, 10, 8, 8]);
    }

    #[test]
    fn the_first_letter_is_font8x8s_i_at_the_top() {
        // Independent of `layout`: 16 px glyphs, "imggen mock" is 176 px wide, centred on 256.
        let (w, _, pixels) = decode(&render_png("x", 0, 256, 256));
        let i = BASIC_LEGACY[usize::from(b'i')];
        for (row, bits) in i.into_iter().enumerate() {
            for column in 0..8 {
                let (x, y) = (40 + column * 2, 4 + row * 2);
                let ink = bits & (1 << column) != 0;
                let expected = if ink { LABEL_INK } else { BANNER };
                assert_eq!(pixel(&pixels, w, x, y), expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_long_prompt_is_wrapped_cut_and_stays_inside_the_image() {
        let prompt = "lighthouse at dusk ".repeat(6_000); // 114k characters
        for (width, height) in SIZES.into_iter().chain([(8192, 3511), (3511, 8192)]) {
            let layout = layout(&prompt, width, height).unwrap();
            let lines = &layout.prompt;
            assert_eq!(lines.len(), 2, "{width}x{height}");
            assert!(
                lines[0].text.starts_with("lighthouse"),
                "{:?}",
                lines[0].text
            );
            assert!(!lines[0].text.ends_with(' '), "{:?}", lines[0].text);
            assert!(lines[1].text.ends_with("..."), "{:?}", lines[1].text);
            assert!(!lines[1].text.ends_with(" ..."), "{:?}", lines[1].text);
            let (w, h) = (width as usize, height as usize);
            for line in lines {
                assert!(line.x > 0 && line.x + line_width(line) < w, "{line:?}");
                assert!(line.y + 8 * line.scale < h, "{line:?}");
            }
            // Nothing is written outside the banner and the strip.
            let mut pixels = vec![7; w * h * 3];
            draw(&mut pixels, width, height, &prompt);
            let middle = &pixels[layout.banner.1 * w * 3..layout.strip.0 * w * 3];
            assert!(middle.iter().all(|byte| *byte == 7), "{width}x{height}");
            assert!(pixels[layout.strip.0 * w * 3..].iter().all(|b| *b != 7));
        }
        let (w, _, pixels) = decode(&render_png(&prompt, 0, 256, 256));
        let last = &layout(&prompt, 256, 256).unwrap().prompt[1];
        let dots = last.text.chars().count() - 3;
        for index in dots..dots + 3 {
            assert_glyph((w, &pixels), last, index, '.', (PROMPT_INK, STRIP));
        }
    }

    #[test]
    fn a_word_too_long_for_a_line_is_cut_mid_word() {
        let layout = layout(&"x".repeat(500), 256, 256).unwrap();
        let texts: Vec<&str> = layout.prompt.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts[0], "x".repeat(31));
        assert_eq!(texts[1], format!("{}...", "x".repeat(28)));
    }

    #[test]
    fn characters_without_a_glyph_become_question_marks_and_whitespace_one_space() {
        let shown = |prompt: &str| shown_chars(prompt).collect::<String>();
        assert_eq!(shown("  a\n\t\r\u{a0} b  "), "a b");
        assert_eq!(shown("fox \u{1F98A}\u{200D}!"), "fox ??!");
        assert_eq!(shown("bell\u{7}\u{0}"), "bell??");
        assert_eq!(shown("Çà ñ ß ÿ ³ αβΩ"), "Çà ñ ß ÿ ³ αβΩ");
        assert_eq!(shown("שלום \u{202E}e\u{301}"), "???? ?e?");
        assert_eq!(shown(""), "");
    }

    #[test]
    fn odd_prompts_render_without_panicking() {
        let emoji = "\u{1F98A}\u{1F525}\u{200D}".repeat(40_000);
        let prompts = [
            "",
            " \n\t ",
            "\u{0}\u{7}\u{1b}[31m",
            "🦊 in the snow 🔥",
            "مرحبا بالعالم \u{202E}txet",
            "e\u{301}\u{301}\u{301}",
            emoji.as_str(),
        ];
        let sizes = [(1, 1), (4, 4), (8, 8), (40, 40), (64, 64), (256, 256)];
        for prompt in prompts {
            for (width, height) in sizes {
                let png = render_png(prompt, 3, width, height);
                let (w, h, _) = decode(&png);
                assert_eq!((w, h), (width as usize, height as usize));
            }
        }
        // The emoji are drawn as question marks, the label as always.
        let (w, _, pixels) = decode(&render_png(&emoji, 0, 256, 256));
        let layout = layout(&emoji, 256, 256).unwrap();
        assert!(layout.prompt[0].text.starts_with("???"));
        assert_glyph((w, &pixels), &layout.prompt[0], 0, '?', (PROMPT_INK, STRIP));
        assert_glyph((w, &pixels), &layout.label, 0, 'i', (LABEL_INK, BANNER));
        // No prompt to show: the banner stays, the strip goes.
        let blank = layout_or_panic(" \n ", 256, 256);
        assert!(blank.prompt.is_empty());
        assert_eq!(blank.strip, (256, 256));
    }

    fn layout_or_panic(prompt: &str, width: u32, height: u32) -> Layout {
        layout(prompt, width, height).unwrap()
    }

    #[test]
    fn narrow_images_get_the_short_label_and_tiny_ones_none() {
        assert_eq!(layout_or_panic("x", 64, 64).label.text, "mock");
        let (w, _, pixels) = decode(&render_png("x", 0, 64, 64));
        let label = layout_or_panic("x", 64, 64).label;
        for (index, c) in "mock".chars().enumerate() {
            assert_glyph((w, &pixels), &label, index, c, (LABEL_INK, BANNER));
        }
        // The README's thresholds.
        assert_eq!(layout_or_panic("x", 92, 36).label.text, "imggen mock");
        assert_eq!(layout_or_panic("x", 91, 36).label.text, "mock");
        assert_eq!(layout_or_panic("x", 36, 36).label.text, "mock");
        for (width, height) in [(35, 256), (256, 35), (8, 8), (4, 4), (1, 1)] {
            assert_eq!(layout("x", width, height), None, "{width}x{height}");
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes_and_another_prompt_another_caption() {
        let a = render_png("A lighthouse at dusk ☀ \u{7}", 2, 256, 256);
        assert_eq!(a, render_png("A lighthouse at dusk ☀ \u{7}", 2, 256, 256));
        let (w, h, one) = decode(&render_png("Lighthouse", 0, 256, 256));
        let (_, _, other) = decode(&render_png("Lamphouse", 0, 256, 256));
        let strip = layout_or_panic("Lighthouse", 256, 256).strip.0;
        assert_ne!(
            one[strip * w * 3..h * w * 3],
            other[strip * w * 3..h * w * 3]
        );
    }
}
