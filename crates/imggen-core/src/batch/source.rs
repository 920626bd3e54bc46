//! Where a batch's lines come from: a file read a line at a time on every pass (a million
//! lines are never in memory at once), or requests built in code ([`BatchInput`]).

use std::fs::File;
use std::hash::{Hash as _, Hasher as _};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use super::BatchError;
use super::input::{self, BatchInput, BatchRequest, LineError, RequestDefaults};

/// A batch's lines. [`BatchRunner::run`](super::BatchRunner::run) reads them more than once —
/// to check every line before anything is sent, then to journal them — and never keeps them
/// all.
#[derive(Clone, Debug)]
pub struct BatchSource {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Memory(BatchInput),
    File {
        path: PathBuf,
        defaults: RequestDefaults,
    },
}

/// One line of a source.
#[derive(Debug)]
pub(super) enum Line {
    Request(BatchRequest),
    Invalid(LineError),
}

impl Line {
    /// The line's number.
    pub(super) fn number(&self) -> usize {
        match self {
            Line::Request(request) => request.line,
            Line::Invalid(error) => error.line,
        }
    }

    /// The id the line claims, valid or not: two lines named "a" are a mistake whether or
    /// not the other one is valid.
    fn id(&self) -> Option<&str> {
        match self {
            Line::Request(request) => Some(&request.id),
            Line::Invalid(error) => error.id.as_deref(),
        }
    }
}

impl From<BatchInput> for BatchSource {
    fn from(input: BatchInput) -> Self {
        BatchSource::requests(input)
    }
}

impl BatchSource {
    /// The batch file at `path`, each line merged over `defaults` (see [`input`]). It is read
    /// when the batch runs, a line at a time.
    pub fn file(path: impl Into<PathBuf>, defaults: RequestDefaults) -> Self {
        BatchSource {
            kind: Kind::File {
                path: path.into(),
                defaults,
            },
        }
    }

    /// Requests already in memory (built in code, or read with [`input::read`]).
    pub fn requests(input: BatchInput) -> Self {
        BatchSource {
            kind: Kind::Memory(input),
        }
    }

    /// The file, for a source read from one.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Memory(_) => None,
            Kind::File { path, .. } => Some(path),
        }
    }

    /// Hands every line (blank ones aside) to `visit`, in line order, until it returns an
    /// error. Only reading the file fails here; a line that is not UTF-8 is an invalid line.
    pub(super) fn visit(
        &self,
        visit: &mut dyn FnMut(Line) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        match &self.kind {
            Kind::Memory(input) => {
                // Both lists are in line order: merged, they are the file's order.
                let mut invalid = input.invalid.iter().peekable();
                for request in &input.requests {
                    while let Some(error) = invalid.next_if(|error| error.line < request.line) {
                        visit(Line::Invalid(error.clone()))?;
                    }
                    visit(Line::Request(request.clone()))?;
                }
                for error in invalid {
                    visit(Line::Invalid(error.clone()))?;
                }
                Ok(())
            }
            Kind::File { path, defaults } => visit_file(path, defaults, visit),
        }
    }
}

fn visit_file(
    path: &Path,
    defaults: &RequestDefaults,
    visit: &mut dyn FnMut(Line) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let unreadable = |source: std::io::Error| BatchError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(unreadable)?);
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).map_err(unreadable)? == 0 {
            return Ok(());
        }
        number += 1;
        let mut raw = bytes.as_slice();
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if number == 1 {
            // Editors on some systems start UTF-8 files with a byte-order mark.
            raw = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
        }
        let line = match std::str::from_utf8(raw) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match input::parse_line(text, number, defaults) {
                Ok(request) => Line::Request(request),
                Err(error) => Line::Invalid(error),
            },
            Err(error) => Line::Invalid(LineError::new(
                number,
                None,
                format!("not UTF-8 text ({error}); save the file as UTF-8"),
            )),
        };
        visit(line)?;
    }
}

/// Finds ids used on more than one line without keeping every id: 12 bytes a line (a hash
/// and the line number), then the few lines whose hashes collide are read again to compare
/// the ids themselves.
#[derive(Debug, Default)]
pub(super) struct DuplicateIds {
    hashes: Vec<(u64, u32)>,
}

/// The id's hash: SipHash with fixed keys, the same in every process.
fn id_hash(id: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl DuplicateIds {
    /// Notes the id a line claims.
    pub(super) fn note(&mut self, line: &Line) {
        if let Some(id) = line.id() {
            let number = u32::try_from(line.number()).unwrap_or(u32::MAX);
            self.hashes.push((id_hash(id), number));
        }
    }

    /// Every request line whose id another line uses too, as an invalid line naming the
    /// others, in line order. Reads `source` again only when two hashes are equal.
    pub(super) fn find(mut self, source: &BatchSource) -> Result<Vec<LineError>, BatchError> {
        self.hashes.sort_unstable();
        let mut suspects: Vec<u64> = self
            .hashes
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| pair[0].0)
            .collect();
        drop(self.hashes);
        suspects.dedup();
        if suspects.is_empty() {
            return Ok(Vec::new());
        }
        // The suspects' lines, by id: as few as there are duplicates (or collisions).
        let mut lines_of: std::collections::HashMap<String, Vec<(usize, bool)>> =
            std::collections::HashMap::new();
        source.visit(&mut |line| {
            if let Some(id) = line.id()
                && suspects.binary_search(&id_hash(id)).is_ok()
            {
                let is_request = matches!(line, Line::Request(_));
                lines_of
                    .entry(id.to_owned())
                    .or_default()
                    .push((line.number(), is_request));
            }
            Ok(())
        })?;
        let mut errors = Vec::new();
        for (id, lines) in lines_of {
            if lines.len() < 2 {
                continue;
            }
            for &(line, is_request) in &lines {
                if !is_request {
                    // An invalid line keeps its own error.
                    continue;
                }
                let others: Vec<String> = lines
                    .iter()
                    .filter(|(other, _)| *other != line)
                    .map(|(other, _)| other.to_string())
                    .collect();
                errors.push(LineError::new(
                    line,
                    Some(id.clone()),
                    format!(
                        "id {id:?} is also used on line {}; ids must be unique",
                        others.join(", ")
                    ),
                ));
            }
        }
        errors.sort_by_key(|error| error.line);
        Ok(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(source: &BatchSource) -> Vec<String> {
        let mut seen = Vec::new();
        source
            .visit(&mut |line| {
                seen.push(match line {
                    Line::Request(request) => format!("{} {}", request.line, request.id),
                    Line::Invalid(error) => format!("{} invalid: {}", error.line, error.problem),
                });
                Ok(())
            })
            .unwrap();
        seen
    }

    fn file(text: &[u8]) -> (tempfile::TempDir, BatchSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batch.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, BatchSource::file(path, RequestDefaults::new()))
    }

    #[test]
    fn a_file_is_read_line_by_line_as_the_whole_text_would_be() {
        let text = "\u{feff}{\"prompt\":\"a\"}\r\n\n   \n{\"id\":\"b\",\"prompt\":\"b\"}\n{\"prompt\":\"c\"}";
        let (_dir, source) = file(text.as_bytes());
        assert_eq!(lines(&source), ["1 1", "4 b", "5 5"]);
        // The same as reading it whole.
        let whole = input::parse(text, &RequestDefaults::new());
        assert_eq!(lines(&BatchSource::from(whole)), ["1 1", "4 b", "5 5"]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_invalid_line_not_an_unreadable_file() {
        let (_dir, source) =
            file(b"{\"prompt\":\"a\"}\n{\"prompt\":\"\xff\"}\n{\"prompt\":\"c\"}\n");
        let seen = lines(&source);
        assert_eq!(seen[0], "1 1");
        assert!(seen[1].starts_with("2 invalid: not UTF-8"), "{}", seen[1]);
        assert_eq!(seen[2], "3 3");
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let source = BatchSource::file("/nonexistent/batch.jsonl", RequestDefaults::new());
        let error = source.visit(&mut |_| Ok(())).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/batch.jsonl"),
            "{error}"
        );
    }

    #[test]
    fn in_memory_lines_come_in_line_order_valid_or_not() {
        let input = input::parse(
            "{\"prompt\":\"a\"}\nnot json\n{\"prompt\":\"c\"}\n{}\n",
            &RequestDefaults::new(),
        );
        let seen = lines(&BatchSource::from(input));
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], "1 1");
        assert!(seen[1].starts_with("2 invalid"));
        assert_eq!(seen[2], "3 3");
        assert!(seen[3].starts_with("4 invalid"));
    }

    #[test]
    fn every_use_of_a_repeated_id_is_found_without_keeping_the_ids() {
        let (_dir, source) = file(
            b"{\"id\":\"a\",\"prompt\":\"1\"}\n{\"id\":\"b\",\"prompt\":\"2\"}\n{\"id\":\"a\",\"prompt\":\"3\"}\n{\"id\":\"a\",\"prompt\":\"\"}\n",
        );
        let mut duplicates = DuplicateIds::default();
        source
            .visit(&mut |line| {
                duplicates.note(&line);
                Ok(())
            })
            .unwrap();
        let errors = duplicates.find(&source).unwrap();
        let found: Vec<(usize, &str)> = errors
            .iter()
            .map(|error| (error.line, error.problem.as_str()))
            .collect();
        // Line 4 is invalid on its own (an empty prompt) but still claims "a".
        assert_eq!(
            found,
            [
                (1, "id \"a\" is also used on line 3, 4; ids must be unique"),
                (3, "id \"a\" is also used on line 1, 4; ids must be unique"),
            ]
        );
    }
}
