//! Reading a batch file: one request per line, as JSON, with the same fields as a single
//! generation, merged over defaults the caller gives (the CLI's flags).
//!
//! ```text
//! {"id": "hero", "prompt": "A lighthouse at dusk", "aspect_ratio": "16:9"}
//! {"prompt": "A ceramic lamp", "provider": "runbase", "options": {"resolution": "2K"}}
//! {"prompt": "Two variants", "n": 2, "refs": ["https://example.com/style.jpg"]}
//! ```
//!
//! | field | JSON | meaning |
//! |---|---|---|
//! | `id` | string or integer | the request's name in the journal and `results.jsonl`; default: the line number |
//! | `prompt` | string, required | what to draw |
//! | `provider` | `"runblob"`, `"gptimg"`, `"runbase"` | the provider; default: the caller's |
//! | `fallback` | list or comma-separated string of providers | tried in order after `provider` |
//! | `model`, `quality`, `webhook` | string | as for one generation |
//! | `aspect_ratio` (or `ratio`) | `"16:9"`, … | a ratio imggen knows |
//! | `n` | integer ≥ 1 | images wanted |
//! | `refs` (or `references`) | list of strings (URL, `data:` URI or local file) or `{"url"}`/`{"file"}`/`{"bytes"}` objects | reference images |
//! | `options` | `{"KEY": "VALUE"}` | provider settings, as `--option KEY=VALUE`: a key applies to every provider of the request's route, or to one when prefixed (`runbase.resolution`) |
//!
//! A field given on the line replaces the default (`options` are merged key by key; the line
//! wins). `null` leaves the default. Blank lines are skipped but counted. Every problem of
//! every line is reported at once, with its line number, before anything is sent; an unknown
//! field is an error (a typo must not silently become a default), and so is an id used twice.
//! Local reference files are read relative to the current directory, as for one generation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use imggen_types::AspectRatio;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::provider::ProviderId;
use crate::request::OptionReader;
use crate::request::{GenerationRequest, Reference};

/// The fields a line may have.
pub const FIELDS: &[&str] = &[
    "id",
    "prompt",
    "provider",
    "fallback",
    "model",
    "aspect_ratio",
    "ratio",
    "n",
    "quality",
    "refs",
    "references",
    "options",
    "webhook",
];

/// The longest id accepted, in characters.
pub const MAX_ID_CHARS: usize = 200;

/// What every line starts from: the caller's options (the CLI's `--provider`, `--model`, …).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RequestDefaults {
    /// The provider.
    pub provider: Option<ProviderId>,
    /// Providers tried in order after `provider`.
    pub fallback: Vec<ProviderId>,
    /// The model.
    pub model: Option<String>,
    /// The aspect ratio.
    pub aspect_ratio: Option<AspectRatio>,
    /// Images per request (default 1).
    pub n: Option<u32>,
    /// The quality.
    pub quality: Option<String>,
    /// Reference images.
    pub references: Vec<Reference>,
    /// Provider settings as `(KEY, VALUE)`, a key optionally prefixed with its provider
    /// (`runbase.resolution`). A prefixed key for a provider a line does not use is ignored
    /// for that line.
    pub options: Vec<(String, String)>,
    /// The webhook URL.
    pub webhook: Option<String>,
    /// How providers that are not built in read their options (built-in ones are known).
    pub option_readers: OptionReaders,
}

/// How providers read their options from text, by provider (compared by provider only).
#[derive(Clone, Debug, Default)]
pub struct OptionReaders(Vec<(ProviderId, OptionReader)>);

impl PartialEq for OptionReaders {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.0 == b.0)
    }
}

impl RequestDefaults {
    /// No defaults: every line stands alone.
    pub fn new() -> Self {
        RequestDefaults::default()
    }

    /// How `provider` (one that is not built in) reads its options.
    pub fn option_reader_for(mut self, provider: ProviderId, reader: OptionReader) -> Self {
        self.option_readers.0.retain(|(id, _)| *id != provider);
        self.option_readers.0.push((provider, reader));
        self
    }

    /// How `provider` reads its options: given here, or built in.
    pub fn option_reader(&self, provider: ProviderId) -> Option<OptionReader> {
        self.option_readers
            .0
            .iter()
            .find(|(id, _)| *id == provider)
            .map(|(_, reader)| *reader)
            .or_else(|| {
                crate::builtin::registration(provider).map(|registration| registration.set_option)
            })
    }

    /// The providers a line may name: the built-in ones, then those given readers here.
    pub fn known_providers(&self) -> Vec<ProviderId> {
        let mut known: Vec<ProviderId> = crate::builtin::registrations()
            .iter()
            .map(|registration| registration.id)
            .collect();
        for (id, _) in &self.option_readers.0 {
            if !known.contains(id) {
                known.push(*id);
            }
        }
        known
    }

    /// Sets the provider.
    pub fn provider(mut self, provider: ProviderId) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Sets the fallback providers.
    pub fn fallback(mut self, providers: impl IntoIterator<Item = ProviderId>) -> Self {
        self.fallback = providers.into_iter().collect();
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the aspect ratio.
    pub fn aspect_ratio(mut self, ratio: AspectRatio) -> Self {
        self.aspect_ratio = Some(ratio);
        self
    }

    /// Sets the images per request.
    pub fn n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Sets the quality.
    pub fn quality(mut self, quality: impl Into<String>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Adds a reference image.
    pub fn reference(mut self, reference: Reference) -> Self {
        self.references.push(reference);
        self
    }

    /// Adds a provider setting.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// Sets the webhook URL.
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }
}

/// One request of a batch, ready to run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BatchRequest {
    /// Its name in the journal and `results.jsonl`.
    pub id: String,
    /// Its line in the batch file, from 1.
    pub line: usize,
    /// What to generate.
    pub request: GenerationRequest,
    /// The providers to try, in order (empty: the first configured).
    pub providers: Vec<ProviderId>,
}

impl BatchRequest {
    /// A request built in code rather than read from a file.
    pub fn new(
        id: impl Into<String>,
        line: usize,
        request: GenerationRequest,
        providers: Vec<ProviderId>,
    ) -> Self {
        BatchRequest {
            id: id.into(),
            line,
            request,
            providers,
        }
    }

    /// The fingerprint of what it asks for (see [`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.request)
    }
}

/// A line that cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}{}: {problem}", id_part(id.as_deref(), *line))]
#[non_exhaustive]
pub struct LineError {
    /// The line, from 1.
    pub line: usize,
    /// The request's id, when the line was a JSON object (its `id`, or the line number).
    pub id: Option<String>,
    /// What is wrong, naming the field, the value and what is allowed.
    pub problem: String,
}

fn id_part(id: Option<&str>, line: usize) -> String {
    match id {
        Some(id) if id != line.to_string() => format!(" (id {id:?})"),
        _ => String::new(),
    }
}

impl LineError {
    /// A problem with a line.
    pub fn new(line: usize, id: Option<String>, problem: impl Into<String>) -> Self {
        LineError {
            line,
            id,
            problem: problem.into(),
        }
    }
}

/// Every invalid line of a batch, in line order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct InputErrors {
    /// The lines.
    pub lines: Vec<LineError>,
}

impl fmt::Display for InputErrors {
    /// `2 invalid lines; nothing was sent:` then one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.lines.len();
        write!(
            f,
            "{count} invalid line{}; nothing was sent",
            if count == 1 { "" } else { "s" }
        )?;
        for line in &self.lines {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

/// A batch file, read: the requests that can run and the lines that cannot.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct BatchInput {
    /// The valid requests, in line order.
    pub requests: Vec<BatchRequest>,
    /// The invalid lines, in line order.
    pub invalid: Vec<LineError>,
}

impl BatchInput {
    /// Requests built in code; ids must be unique (a repeated id is an invalid line).
    pub fn from_requests(requests: impl IntoIterator<Item = BatchRequest>) -> Self {
        let mut input = BatchInput {
            requests: requests.into_iter().collect(),
            invalid: Vec::new(),
        };
        input.reject_duplicate_ids();
        input
    }

    /// `Ok` when every line is valid; otherwise every invalid line.
    pub fn check(&self) -> Result<(), InputErrors> {
        if self.invalid.is_empty() {
            Ok(())
        } else {
            Err(InputErrors {
                lines: self.invalid.clone(),
            })
        }
    }

    /// Every use of an id used more than once becomes an invalid line.
    fn reject_duplicate_ids(&mut self) {
        let mut lines_of: HashMap<String, Vec<usize>> = HashMap::new();
        for request in &self.requests {
            lines_of
                .entry(request.id.clone())
                .or_default()
                .push(request.line);
        }
        for error in &self.invalid {
            if let Some(id) = &error.id {
                // An invalid line still claims its id: two lines named "a" are a mistake
                // whether or not the other one is valid.
                lines_of.entry(id.clone()).or_default().push(error.line);
            }
        }
        let mut kept = Vec::with_capacity(self.requests.len());
        for request in std::mem::take(&mut self.requests) {
            let lines = &lines_of[&request.id];
            if lines.len() > 1 {
                let others: Vec<String> = lines
                    .iter()
                    .filter(|&&line| line != request.line)
                    .map(ToString::to_string)
                    .collect();
                self.invalid.push(LineError::new(
                    request.line,
                    Some(request.id.clone()),
                    format!(
                        "id {:?} is also used on line {}; ids must be unique",
                        request.id,
                        others.join(", ")
                    ),
                ));
            } else {
                kept.push(request);
            }
        }
        self.requests = kept;
        self.invalid.sort_by_key(|error| error.line);
    }
}

/// Reads a batch file (see the [module docs](self)). Only reading the file can fail; problems
/// with lines are in [`BatchInput::invalid`].
pub fn read(path: &Path, defaults: &RequestDefaults) -> std::io::Result<BatchInput> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text, defaults))
}

/// Reads batch text (see the [module docs](self)).
pub fn parse(text: &str, defaults: &RequestDefaults) -> BatchInput {
    // Editors on some systems start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut input = BatchInput::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match parse_line(raw, line, defaults) {
            Ok(request) => input.requests.push(request),
            Err(error) => input.invalid.push(error),
        }
    }
    input.reject_duplicate_ids();
    input
}

/// A JSON value as a short quote for messages.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    let cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn string_field(name: &str, value: &Value, problems: &mut Vec<String>) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
        Value::String(_) => {
            problems.push(format!(
                "{name} is empty; give a value or leave the field out"
            ));
            None
        }
        other => {
            problems.push(format!(
                "{name} must be a string, not {} ({})",
                kind(other),
                quote(other)
            ));
            None
        }
    }
}

fn provider_value(
    name: &str,
    value: &Value,
    defaults: &RequestDefaults,
    problems: &mut Vec<String>,
) -> Option<ProviderId> {
    let text = string_field(name, value, problems)?;
    let known = defaults.known_providers();
    match text.parse::<ProviderId>() {
        Ok(id) if known.contains(&id) => Some(id),
        _ => {
            let names: Vec<&str> = known.iter().map(|id| id.as_str()).collect();
            problems.push(format!(
                "{name}: {} is not a provider; known providers: {}",
                quote(value),
                names.join(", ")
            ));
            None
        }
    }
}

fn id_of(object: &Map<String, Value>, line: usize) -> Result<String, String> {
    match object.get("id") {
        None | Some(Value::Null) => Ok(line.to_string()),
        Some(Value::String(id)) => {
            if id.trim().is_empty() {
                Err(
                    "id is empty; give a name or leave the field out (the line number is used)"
                        .into(),
                )
            } else if id.chars().count() > MAX_ID_CHARS {
                Err(format!("id is longer than {MAX_ID_CHARS} characters"))
            } else if id.chars().any(char::is_control) {
                Err(format!("id {id:?} holds a control character"))
            } else {
                Ok(id.clone())
            }
        }
        Some(Value::Number(number)) if number.is_u64() => Ok(number.to_string()),
        Some(other) => Err(format!(
            "id must be a string or a whole number, not {} ({})",
            kind(other),
            quote(other)
        )),
    }
}

fn reference_of(index: usize, value: &Value, problems: &mut Vec<String>) -> Option<Reference> {
    match value {
        Value::String(text) if !text.trim().is_empty() => {
            let lower = text.to_ascii_lowercase();
            let url = ["https://", "http://", "data:"]
                .iter()
                .any(|scheme| lower.starts_with(scheme));
            Some(if url {
                Reference::url(text.clone())
            } else {
                Reference::file(text.clone())
            })
        }
        Value::Object(_) => match serde_json::from_value::<Reference>(value.clone()) {
            Ok(reference) => Some(reference),
            Err(error) => {
                problems.push(format!(
                    "refs[{index}] {}: {error}; expected a URL, a file path, or {{\"url\"|\"file\"|\"bytes\": …}}",
                    quote(value)
                ));
                None
            }
        },
        other => {
            problems.push(format!(
                "refs[{index}] must be a URL, a file path or an object, not {} ({})",
                kind(other),
                quote(other)
            ));
            None
        }
    }
}

/// The text an option value is set from: strings as they are, other JSON as JSON (so
/// `"input.seed": 42` stays a number).
fn option_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

pub(super) fn parse_line(
    raw: &str,
    line: usize,
    defaults: &RequestDefaults,
) -> Result<BatchRequest, LineError> {
    let value: Value = serde_json::from_str(raw).map_err(|error| {
        LineError::new(
            line,
            None,
            format!(
                "not valid JSON ({error}); each line is one object like {{\"prompt\": \"...\"}}"
            ),
        )
    })?;
    let Value::Object(object) = value else {
        return Err(LineError::new(
            line,
            None,
            format!(
                "expected a JSON object like {{\"prompt\": \"...\"}}, not {}",
                kind(&value)
            ),
        ));
    };
    let mut problems: Vec<String> = Vec::new();
    let id = match id_of(&object, line) {
        Ok(id) => Some(id),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let error =
        |problems: Vec<String>, id: Option<String>| LineError::new(line, id, problems.join("; "));

    let mut prompt: Option<String> = None;
    let mut provider = defaults.provider;
    let mut fallback = defaults.fallback.clone();
    let mut model = defaults.model.clone();
    let mut aspect_ratio = defaults.aspect_ratio.clone();
    let mut n = defaults.n.unwrap_or(1);
    let mut quality = defaults.quality.clone();
    let mut references = defaults.references.clone();
    let mut webhook = defaults.webhook.clone();
    let mut line_options: BTreeMap<String, String> = BTreeMap::new();

    if object.contains_key("refs") && object.contains_key("references") {
        problems.push("give refs or references, not both".into());
    }
    // `ratio` is `aspect_ratio`, as `--ratio` is `--aspect-ratio`.
    if object.contains_key("aspect_ratio") && object.contains_key("ratio") {
        problems.push(
            "give aspect_ratio or ratio, not both (ratio is another name for aspect_ratio)".into(),
        );
    }
    // Unknown fields first (a typo often explains a missing field), then the known ones in
    // a fixed order, whatever order the line has them in.
    for name in object.keys() {
        if !FIELDS.contains(&name.as_str()) {
            problems.push(format!(
                "unknown field {name:?}; the fields are {}",
                FIELDS.join(", ")
            ));
        }
    }
    for (name, value) in FIELDS
        .iter()
        .filter_map(|name| Some((*name, object.get(*name)?)))
    {
        if value.is_null() {
            continue;
        }
        match name {
            "id" => {}
            "prompt" => match value {
                // The prompt is required: "leave the field out" is no way out.
                Value::String(text) if text.trim().is_empty() => problems.push(
                    "prompt is empty; every line needs a prompt, and it cannot be empty or only spaces"
                        .into(),
                ),
                _ => prompt = string_field("prompt", value, &mut problems),
            },
            "provider" => {
                if let Some(id) = provider_value("provider", value, defaults, &mut problems) {
                    provider = Some(id);
                }
            }
            "fallback" => {
                let names: Vec<Value> = match value {
                    Value::Array(items) => items.clone(),
                    Value::String(text) => text
                        .split(',')
                        .map(|name| Value::String(name.trim().to_owned()))
                        .collect(),
                    other => {
                        problems.push(format!(
                            "fallback must be a list of providers or a comma-separated string, not {} ({})",
                            kind(other),
                            quote(other)
                        ));
                        Vec::new()
                    }
                };
                fallback = names
                    .iter()
                    .enumerate()
                    .filter_map(|(i, name)| {
                        provider_value(&format!("fallback[{i}]"), name, defaults, &mut problems)
                    })
                    .collect();
            }
            "model" => model = string_field("model", value, &mut problems),
            "quality" => quality = string_field("quality", value, &mut problems),
            "webhook" => webhook = string_field("webhook", value, &mut problems),
            "aspect_ratio" | "ratio" => {
                if let Some(text) = string_field(name, value, &mut problems) {
                    match text.trim().parse::<AspectRatio>() {
                        Ok(ratio) => aspect_ratio = Some(ratio),
                        // The error names the field, the value and the known values.
                        Err(error) => problems.push(error.to_string()),
                    }
                }
            }
            "n" => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(count) if count >= 1 => n = count,
                _ => problems.push(format!(
                    "n must be a whole number of images, at least 1, not {}",
                    quote(value)
                )),
            },
            "refs" | "references" => match value {
                Value::Array(items) => {
                    references = items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| reference_of(i, item, &mut problems))
                        .collect();
                }
                other => problems.push(format!(
                    "{name} must be a list, not {} ({})",
                    kind(other),
                    quote(other)
                )),
            },
            "options" => match value {
                Value::Object(options) => {
                    for (key, value) in options {
                        if let Some(text) = option_text(value) {
                            line_options.insert(key.clone(), text);
                        }
                    }
                }
                other => problems.push(format!(
                    "options must be an object like {{\"resolution\": \"2K\"}}, not {} ({})",
                    kind(other),
                    quote(other)
                )),
            },
            _ => {}
        }
    }
    let Some(prompt) = prompt else {
        if !object.contains_key("prompt") || object.get("prompt").is_some_and(Value::is_null) {
            problems.push("prompt is missing; every line needs {\"prompt\": \"...\"}".into());
        }
        return Err(error(problems, id));
    };

    let mut providers: Vec<ProviderId> = Vec::new();
    for id in provider.into_iter().chain(fallback) {
        if !providers.contains(&id) {
            providers.push(id);
        }
    }

    let mut request = GenerationRequest::new(prompt).n(n);
    request.aspect_ratio = aspect_ratio;
    request.model = model;
    request.quality = quality;
    request.references = references;
    request.webhook = webhook;

    // Defaults first, then the line's own keys, which win.
    let mut options: Vec<(String, String, bool)> = defaults
        .options
        .iter()
        .filter(|(key, _)| !line_options.contains_key(key))
        .map(|(key, value)| (key.clone(), value.clone(), true))
        .collect();
    options.extend(
        line_options
            .into_iter()
            .map(|(key, value)| (key, value, false)),
    );
    let known = defaults.known_providers();
    for (key, value, from_defaults) in options {
        let label = if from_defaults {
            format!("option {key:?} (a default)")
        } else {
            format!("options.{key}")
        };
        // A prefix is a provider only when it names one (`input.seed` is runbase's own key).
        let scoped = key.split_once('.').and_then(|(provider, rest)| {
            let provider = known.iter().find(|id| id.as_str() == provider)?;
            Some((*provider, rest))
        });
        let targets: Vec<(ProviderId, &str)> = match scoped {
            Some((provider, rest)) => {
                if !providers.contains(&provider) {
                    if !from_defaults {
                        problems.push(format!(
                            "{label} is for {provider}, which this request does not use ({})",
                            route_text(&providers)
                        ));
                    }
                    continue;
                }
                vec![(provider, rest)]
            }
            None => {
                if providers.is_empty() {
                    problems.push(format!(
                        "{label} applies to every provider of the request, but none is named: set \"provider\" or prefix the key with one (e.g. runbase.{key})"
                    ));
                    continue;
                }
                providers.iter().map(|id| (*id, key.as_str())).collect()
            }
        };
        for (provider, key) in targets {
            // Options are read as their provider reads them; the provider need not be
            // configured yet (a line is read before any provider is built).
            let Some(reader) = defaults.option_reader(provider) else {
                problems.push(format!(
                    "{label}: {provider} is not a provider this imggen knows"
                ));
                continue;
            };
            if let Err(error) = request.options.set(provider, key, &value, reader) {
                problems.push(format!("{label}: {error}"));
            }
        }
    }

    if !problems.is_empty() {
        return Err(error(problems, id));
    }
    let id = id.unwrap_or_else(|| line.to_string());
    Ok(BatchRequest {
        id,
        line,
        request,
        providers,
    })
}

fn route_text(providers: &[ProviderId]) -> String {
    if providers.is_empty() {
        "no provider named".into()
    } else {
        providers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A short, stable fingerprint of a request: 16 hex digits of FNV-1a over its JSON with
/// object keys sorted. It tells a journal written for another batch file from this one; it
/// is not a security measure.
pub fn fingerprint(request: &GenerationRequest) -> String {
    let value = serde_json::to_value(request).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
