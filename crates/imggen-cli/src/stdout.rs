//! Standard output: what a command prints for people and scripts — and for `submit`, the
//! receipt of a paid task. Everything written here is escaped for the terminal, and a write
//! that fails is remembered: a handle that could not reach a redirected file (a full disk)
//! must be said on stderr and end the command with an error, not vanish.
//!
//! A closed pipe (`| head`) is not a failure: the reader chose to stop reading.

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use imggen_types::text::{for_terminal, needs_escape};

/// Set when a write to stdout failed for a reason other than a closed pipe.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one JSON document. serde escapes the C0 controls in strings; the rest a terminal
/// acts on (C1 controls such as a one-byte CSI, DEL, bidirectional overrides) are escaped here
/// as `\uXXXX`, which leaves the document equal to what was serialised.
pub(crate) fn write_json(text: &str) -> io::Result<()> {
    remember(write_all(&[escape_json(text)]))
}

/// A serialised JSON document with every character a terminal acts on that serde leaves
/// raw (C1 controls, DEL, bidirectional overrides) written as `\uXXXX`: the same document,
/// safe to show (stdout's `--json`, stderr's `--progress jsonl`).
pub(crate) fn escape_json(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            // Every such character outside the C0 range is in the Basic Multilingual Plane.
            escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Writes lines, their control characters but the tab (the column separator of `imggen
/// status`) shown escaped: a task's URL or failure is the provider's text.
pub(crate) fn write_lines(lines: &[String]) -> io::Result<()> {
    let lines: Vec<String> = lines
        .iter()
        .flat_map(|text| text.lines())
        .map(|line| {
            line.split('\t')
                .map(|column| for_terminal(column).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    remember(write_all(&lines))
}

/// Whether any write to stdout failed (a closed pipe aside).
pub(crate) fn failed() -> bool {
    FAILED.load(Ordering::SeqCst)
}

fn write_all(lines: &[String]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()
}

fn remember(written: io::Result<()>) -> io::Result<()> {
    match written {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => {
            FAILED.store(true, Ordering::SeqCst);
            Err(error)
        }
        Ok(()) => Ok(()),
    }
}
