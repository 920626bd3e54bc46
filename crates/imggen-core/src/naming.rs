//! How saved images are named: a template of fields (`{id}-{n}`), made safe for any file
//! system, and never a path outside the output folder.

use std::fmt;

/// A file-name template: text and the fields `{id}` (a batch line's id; elsewhere the task
/// id), `{n}` (the image's number in its request, from 1, across its tasks), `{i}` (its
/// number in its task), `{task_id}`, `{provider}` and `{prompt}` (the prompt's first words,
/// as a short slug). The extension is the image's own
/// and is added after.
///
/// Whatever the fields hold, a name is one path component of letters, digits, `-`, `_` and
/// `.`, never empty, never starting with a dot: it cannot leave the output folder.
///
/// ```
/// use imggen_core::FileNames;
///
/// let names = FileNames::parse("{id}-{n}").unwrap();
/// assert_eq!(names.to_string(), "{id}-{n}");
/// assert!(FileNames::parse("{size}").unwrap_err().to_string().contains("{prompt}"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNames {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    Number,
    Index,
    TaskId,
    Provider,
    Prompt,
}

impl Field {
    const ALL: [(&'static str, Field); 6] = [
        ("id", Field::Id),
        ("n", Field::Number),
        ("i", Field::Index),
        ("task_id", Field::TaskId),
        ("provider", Field::Provider),
        ("prompt", Field::Prompt),
    ];

    fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(_, field)| *field == self)
            .map_or("", |(name, _)| name)
    }
}

/// A template that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "file-name template {template:?}: {problem} (fields: {{id}}, {{n}}, {{i}}, {{task_id}}, {{provider}}, {{prompt}})"
)]
pub struct FileNamesError {
    /// The template.
    pub template: String,
    /// What is wrong with it.
    pub problem: String,
}

/// What one image's name is made of.
#[derive(Clone, Copy, Debug)]
pub struct NameFields<'a> {
    /// A batch line's id, or the task id.
    pub id: &'a str,
    /// The image's number in its request, from 1, across its tasks.
    pub number: usize,
    /// The image's number in its task, from 1.
    pub index: usize,
    /// The task that made it.
    pub task_id: &'a str,
    /// The provider.
    pub provider: &'a str,
    /// The prompt, when known.
    pub prompt: Option<&'a str>,
}

/// The longest stem a template makes, in bytes: room for a suffix and an extension within
/// the 255 bytes most file systems allow.
const MAX_STEM: usize = 180;
/// The words of the prompt `{prompt}` keeps, at most.
const PROMPT_SLUG: usize = 40;

impl FileNames {
    /// `{task_id}-{i}`: what `generate` and `wait` name images by default.
    pub fn by_task() -> Self {
        FileNames::parse("{task_id}-{i}").unwrap_or_else(|_| FileNames { parts: Vec::new() })
    }

    /// `{id}-{n}`: what a batch names images by default (`hero-1.png`).
    pub fn by_id() -> Self {
        FileNames::parse("{id}-{n}").unwrap_or_else(|_| FileNames { parts: Vec::new() })
    }

    /// Reads a template: `{field}` for a field, `{{` and `}}` for a brace.
    pub fn parse(template: &str) -> Result<Self, FileNamesError> {
        let error = |problem: String| FileNamesError {
            template: template.to_owned(),
            problem,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let field = Field::ALL
                        .iter()
                        .find(|(known, _)| *known == name)
                        .map(|(_, field)| *field)
                        .ok_or_else(|| error(format!("{{{name}}} is not a field")))?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err(error("a `}` with no `{` (write `}}` for a brace)".into())),
                '/' | '\\' => {
                    return Err(error(
                        "a name cannot hold a path separator: images go into --out".into(),
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !parts.iter().any(|part| matches!(part, Part::Field(_))) {
            return Err(error(
                "it names every image the same: use a field such as {n}".into(),
            ));
        }
        Ok(FileNames { parts })
    }

    /// The file name's stem for `fields`: safe, non-empty, at most 180 bytes.
    pub fn stem(&self, fields: &NameFields<'_>) -> String {
        let mut raw = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => raw.push_str(text),
                Part::Field(Field::Id) => raw.push_str(fields.id),
                Part::Field(Field::Number) => raw.push_str(&fields.number.to_string()),
                Part::Field(Field::Index) => raw.push_str(&fields.index.to_string()),
                Part::Field(Field::TaskId) => raw.push_str(fields.task_id),
                Part::Field(Field::Provider) => raw.push_str(fields.provider),
                Part::Field(Field::Prompt) => raw.push_str(&slug(fields.prompt.unwrap_or(""))),
            }
        }
        safe_stem(&raw)
    }
}

impl fmt::Display for FileNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(&text.replace('{', "{{").replace('}', "}}"))?,
                Part::Field(field) => write!(f, "{{{}}}", field.name())?,
            }
        }
        Ok(())
    }
}

/// The prompt's first words, lower case, joined by `-`: `a-lighthouse-at-dusk`.
fn slug(prompt: &str) -> String {
    let mut slug = String::new();
    for word in prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        let word = word.to_lowercase();
        if !slug.is_empty() && slug.len() + 1 + word.len() > PROMPT_SLUG {
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.extend(word.chars().take(PROMPT_SLUG));
    }
    slug
}

/// Anything but ASCII letters, digits, `-`, `_` and `.` becomes `_`; no leading dot (a hidden
/// file, or `..`); at most [`MAX_STEM`] bytes; `image` when nothing is left.
fn safe_stem(raw: &str) -> String {
    let mut stem: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    stem = stem.trim_start_matches('.').to_owned();
    if stem.chars().all(|c| c == '_' || c == '-') {
        return "image".to_owned();
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(id: &'a str, prompt: Option<&'a str>) -> NameFields<'a> {
        NameFields {
            id,
            number: 2,
            index: 1,
            task_id: "run_01ABC",
            provider: "runbase",
            prompt,
        }
    }

    #[test]
    fn every_field_fills_in() {
        let names = FileNames::parse("{provider}_{id}_{task_id}-{n}_{prompt}").unwrap();
        assert_eq!(
            names.stem(&fields("hero", Some("A lighthouse at dusk, 35mm!"))),
            "runbase_hero_run_01ABC-2_a-lighthouse-at-dusk-35mm"
        );
        assert_eq!(FileNames::by_id().stem(&fields("hero", None)), "hero-2");
        assert_eq!(
            FileNames::by_task().stem(&fields("hero", None)),
            "run_01ABC-1"
        );
        assert_eq!(
            FileNames::parse("{{{n}}}")
                .unwrap()
                .stem(&fields("x", None)),
            "_2_",
            "braces are text, then made safe"
        );
    }

    #[test]
    fn a_name_never_leaves_the_folder_whatever_the_fields_hold() {
        let names = FileNames::parse("{id}").unwrap();
        for id in [
            "../../etc/passwd",
            "..",
            ".hidden",
            "a/b\\c",
            "",
            "\u{202e}gnp.exe",
            "日本",
        ] {
            let stem = names.stem(&fields(id, None));
            assert!(
                !stem.is_empty() && !stem.starts_with('.'),
                "{id:?} → {stem:?}"
            );
            assert!(
                !stem.contains('/') && !stem.contains('\\'),
                "{id:?} → {stem:?}"
            );
            assert!(stem.is_ascii(), "{id:?} → {stem:?}");
        }
        let long = "x".repeat(1_000);
        assert_eq!(names.stem(&fields(&long, None)).len(), MAX_STEM);
        let prompt = FileNames::parse("{prompt}").unwrap();
        assert_eq!(prompt.stem(&fields("x", Some("¿¡!!"))), "image");
        assert!(prompt.stem(&fields("x", Some(&"word ".repeat(100)))).len() <= PROMPT_SLUG);
    }

    #[test]
    fn a_bad_template_says_what_is_wrong() {
        let unknown = FileNames::parse("{size}-{n}").unwrap_err();
        assert_eq!(unknown.problem, "{size} is not a field");
        assert!(
            FileNames::parse("out/{n}")
                .unwrap_err()
                .problem
                .contains("path separator")
        );
        assert!(
            FileNames::parse("same")
                .unwrap_err()
                .problem
                .contains("every image the same")
        );
        assert!(FileNames::parse("{n}}").is_err());
        assert_eq!(
            FileNames::parse("{id}-{n}").unwrap().to_string(),
            "{id}-{n}"
        );
    }
}
