//! `DIR/index.html`: one self-contained page to look at a run — a card per request with its
//! images, id, prompt, provider, model, cost, status and error, the run's totals at the top,
//! a filter by status and a larger view on click.
//!
//! No network and no build step: the style and the small script are inlined, the images are
//! referenced by their names in `DIR` (never inlined), and it works from `file://`. The
//! filter and the large view are plain CSS (`:has`, `:target`), so the page works without
//! scripts too. Everything a provider or a batch line says is HTML-escaped. The cards are
//! written as they are read and the totals after them (CSS draws them on top), so a page of
//! a million requests never holds them in memory; past [`MAX_CARDS`] only the totals count.
//!
//! A page written while a batch runs reloads itself every [`LIVE_REFRESH_SECS`] seconds; the
//! last one, written when the run ends, does not.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use imggen_core::Cost;
use imggen_core::batch::{ResultLine, ResultStatus};

mod batch;
mod tasks;

pub(crate) use batch::{from_results, live_view};
pub(crate) use tasks::write_for_tasks;

/// The page's name in the output folder.
pub(crate) const PAGE: &str = "index.html";

/// Cards drawn at most; a larger run's page counts the rest in its totals.
pub(crate) const MAX_CARDS: usize = 5_000;

/// Cards whose thumbnails load at once; the rest load as they are scrolled to.
const EAGER_CARDS: usize = 60;

/// How often a page written during a run reloads itself, in seconds.
pub(crate) const LIVE_REFRESH_SECS: u32 = 3;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The statuses, in the filter's order (the batch's own vocabulary: `results.jsonl`).
const STATUSES: [ResultStatus; 5] = [
    ResultStatus::Done,
    ResultStatus::Failed,
    ResultStatus::Unknown,
    ResultStatus::Pending,
    ResultStatus::SkippedInvalid,
];

/// One request on the page.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Card {
    /// The request's id (a batch line's id, or the task id).
    pub id: String,
    /// What it asked to draw.
    pub prompt: String,
    /// The provider that served it.
    pub provider: Option<String>,
    /// The model, when named.
    pub model: Option<String>,
    /// Where it stands.
    pub status: ResultStatus,
    /// What it cost.
    pub cost: Cost,
    /// Why it is not done.
    pub error: Option<String>,
    /// Its images, by their names in the output folder.
    pub files: Vec<String>,
}

impl From<ResultLine> for Card {
    fn from(line: ResultLine) -> Self {
        Card {
            id: line.id,
            prompt: line.prompt,
            provider: line.provider.map(|provider| provider.to_string()),
            model: line.model,
            status: line.status,
            cost: line.cost,
            error: line.error,
            files: line.files,
        }
    }
}

impl Card {
    /// Its images, and the provider's originals kept beside converted ones
    /// (`--keep-original`: the same name with another extension, listed after it), which
    /// are named but not drawn twice.
    fn images(&self) -> (Vec<&String>, Vec<&String>) {
        let mut images: Vec<&String> = Vec::new();
        let mut originals = Vec::new();
        for file in &self.files {
            let stem = Path::new(file).file_stem();
            if images
                .iter()
                .any(|image| Path::new(image).file_stem() == stem)
            {
                originals.push(file);
            } else {
                images.push(file);
            }
        }
        (images, originals)
    }
}

/// What the page says at the top.
#[derive(Clone, Debug)]
pub(crate) struct Heading {
    /// What ran: the batch file's name, or the command.
    pub title: String,
    /// The run is still going on: the page reloads itself.
    pub live: bool,
}

/// Counts of the cards written, for the totals.
#[derive(Clone, Debug, Default, PartialEq)]
struct Totals {
    requests: usize,
    by_status: [usize; STATUSES.len()],
    images: usize,
    cost: Cost,
}

/// Writes `dir/index.html` atomically from `cards`, read once, in order. A card that cannot
/// be read ends the page with the error, and nothing is written.
pub(crate) fn write(
    dir: &Path,
    heading: &Heading,
    cards: impl Iterator<Item = io::Result<Card>>,
) -> Result<PathBuf, imggen_http::fs::WriteError> {
    imggen_http::fs::write_atomically_with(dir, PAGE, |out| {
        let mut out = io::BufWriter::new(out);
        render(&mut out, dir, heading, cards)?;
        out.flush()
    })
}

/// The page, written to `out`; `dir` is where the images are looked for.
fn render(
    out: &mut dyn Write,
    dir: &Path,
    heading: &Heading,
    cards: impl Iterator<Item = io::Result<Card>>,
) -> io::Result<()> {
    let title = escape(&heading.title);
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    )?;
    if heading.live {
        writeln!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{LIVE_REFRESH_SECS}\">"
        )?;
    }
    write!(
        out,
        "<title>{title} · imggen</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1><p>{}</p></header>\n<main>\n",
        if heading.live {
            format!("running — this page reloads every {LIVE_REFRESH_SECS} s")
        } else {
            "finished".to_owned()
        }
    )?;
    let mut totals = Totals::default();
    for card in cards {
        let card = card?;
        totals.requests += 1;
        totals.images += card.images().0.len();
        totals.cost = totals.cost + card.cost;
        if let Some(index) = STATUSES.iter().position(|status| *status == card.status) {
            totals.by_status[index] += 1;
        }
        if totals.requests <= MAX_CARDS {
            write_card(out, dir, totals.requests, &card)?;
        }
    }
    writeln!(out, "</main>")?;
    if totals.requests > MAX_CARDS {
        writeln!(
            out,
            "<p class=\"more\">The first {MAX_CARDS} of {} requests are shown; \
             results.jsonl lists every one.</p>",
            totals.requests
        )?;
    }
    write_totals(out, &totals)?;
    write!(out, "<script>\n{SCRIPT}</script>\n</body>\n</html>\n")
}

fn write_card(out: &mut dyn Write, dir: &Path, number: usize, card: &Card) -> io::Result<()> {
    let status = card.status.as_str();
    writeln!(
        out,
        "<article class=\"card\" data-status=\"{status}\" data-id=\"{id}\">",
        id = escape(&card.id)
    )?;
    write!(out, "<div class=\"thumbs\">")?;
    let (images, originals) = card.images();
    let (here, elsewhere): (Vec<&String>, Vec<&String>) = images
        .into_iter()
        .partition(|file| is_local_file(dir, file));
    let loading = if number <= EAGER_CARDS {
        "eager"
    } else {
        "lazy"
    };
    for (index, file) in here.iter().enumerate() {
        write!(
            out,
            "<a href=\"#view-{number}-{index}\"><img src=\"{src}\" alt=\"{alt}\" loading=\"{loading}\"></a>",
            src = escape(&percent_encode(file)),
            alt = escape(&format!("{} image {}", card.id, index + 1)),
        )?;
    }
    if here.is_empty() {
        write!(
            out,
            "<div class=\"none\">{}</div>",
            escape(&placeholder(card, !elsewhere.is_empty()))
        )?;
    }
    writeln!(out, "</div>")?;
    write!(
        out,
        "<div class=\"meta\"><div class=\"head\"><span class=\"id\">{id}</span>\
         <span class=\"status {status}\">{label}</span></div>\n<p class=\"prompt\">{prompt}</p>\n<dl class=\"facts\">",
        id = escape(&card.id),
        label = status_label(card.status),
        prompt = escape(&card.prompt),
    )?;
    let mut fact = |name: &str, value: &str| -> io::Result<()> {
        write!(
            out,
            "<dt>{name}</dt><dd class=\"{name}\">{}</dd>",
            escape(value)
        )
    };
    fact("provider", card.provider.as_deref().unwrap_or("—"))?;
    fact("model", card.model.as_deref().unwrap_or("default"))?;
    fact("cost", &card.cost.to_string())?;
    if !elsewhere.is_empty() {
        let names = elsewhere
            .iter()
            .map(|name| name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        fact("elsewhere", &names)?;
    }
    if !originals.is_empty() {
        let names = originals
            .iter()
            .map(|name| name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        fact("original", &names)?;
    }
    write!(out, "</dl>")?;
    if let Some(error) = &card.error {
        write!(out, "\n<p class=\"error\">{}</p>", escape(error))?;
    }
    writeln!(out, "</div>")?;
    for (index, file) in here.iter().enumerate() {
        writeln!(
            out,
            "<div class=\"view\" id=\"view-{number}-{index}\"><a class=\"close\" href=\"#\" aria-label=\"close\">×</a>\
             <img src=\"{src}\" alt=\"{alt}\" loading=\"lazy\"><p>{prompt}</p></div>",
            src = escape(&percent_encode(file)),
            alt = escape(&format!("{} image {}", card.id, index + 1)),
            prompt = escape(&card.prompt),
        )?;
    }
    writeln!(out, "</article>")
}

/// What a card without an image here says instead.
fn placeholder(card: &Card, elsewhere: bool) -> String {
    if elsewhere {
        return "saved by another worker, in its output folder".to_owned();
    }
    match card.status {
        ResultStatus::Done => "no image in this folder".to_owned(),
        ResultStatus::Failed => "failed".to_owned(),
        ResultStatus::Unknown => "outcome unknown: it may have been charged".to_owned(),
        ResultStatus::Pending => "not finished yet".to_owned(),
        ResultStatus::SkippedInvalid => "invalid line, not sent".to_owned(),
    }
}

fn status_label(status: ResultStatus) -> &'static str {
    match status {
        ResultStatus::SkippedInvalid => "skipped",
        status => status.as_str(),
    }
}

fn write_totals(out: &mut dyn Write, totals: &Totals) -> io::Result<()> {
    write!(out, "<section id=\"totals\">")?;
    let mut total = |key: &str, value: &str, label: &str| -> io::Result<()> {
        write!(
            out,
            "<span class=\"total\" data-total=\"{key}\"><b>{}</b>{label}</span>",
            escape(value)
        )
    };
    total("requests", &totals.requests.to_string(), "requests")?;
    for (status, count) in STATUSES.iter().zip(totals.by_status) {
        if count > 0 || matches!(status, ResultStatus::Done) {
            total(status.as_str(), &count.to_string(), status_label(*status))?;
        }
    }
    total("images", &totals.images.to_string(), "images")?;
    total("cost", &totals.cost.to_string(), "cost")?;
    writeln!(out, "</section>")?;
    write!(
        out,
        "<nav aria-label=\"filter by status\"><input type=\"radio\" name=\"filter\" id=\"filter-all\" checked>\
         <label for=\"filter-all\">all {}</label>",
        totals.requests
    )?;
    for (status, count) in STATUSES.iter().zip(totals.by_status) {
        if count > 0 {
            let name = status.as_str();
            write!(
                out,
                "<input type=\"radio\" name=\"filter\" id=\"filter-{name}\">\
                 <label for=\"filter-{name}\">{} {count}</label>",
                status_label(*status)
            )?;
        }
    }
    writeln!(out, "</nav>")
}

/// Whether `name` is an image in `dir`: a batch drained by several workers has some of its
/// files in the others' folders.
fn is_local_file(dir: &Path, name: &str) -> bool {
    // A name is one path component (imggen names them so); anything else is not shown.
    let plain = Path::new(name).file_name().is_some_and(|file| file == name);
    plain && dir.join(name).is_file()
}

/// `text`, safe inside HTML text and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            // Control characters draw nothing useful and some confuse a reader.
            c if c.is_control() && c != '\n' && c != '\t' => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A file name as a relative URL: every byte but unreserved ASCII percent-encoded.
fn percent_encode(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

#[cfg(test)]
mod tests;
