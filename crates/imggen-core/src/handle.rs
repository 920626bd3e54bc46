//! The receipt of a paid task: everything needed to find it again, from another process,
//! later.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use imggen_types::text::Untrusted;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cost::Cost;
use crate::plan::PlannedTask;
use crate::provider::{Created, ProviderId};
use crate::request::GenerationRequest;

/// The version of the handle format this imggen writes and reads.
pub const HANDLE_VERSION: u32 = 1;

/// The longest prompt kept in a handle's summary, in characters.
const SUMMARY_PROMPT_CHARS: usize = 200;

/// The receipt of a task that was created — and paid for. Persist it (it is plain JSON with
/// stable field names) before anything else can go wrong: [`Imggen::wait`](crate::Imggen::wait),
/// [`status`](crate::Imggen::status) and [`resume`](crate::Imggen::resume) work from it alone,
/// in another process, later.
///
/// A handle never holds a base URL or a key: the provider's configured client is used, so a
/// crafted handle cannot send your key anywhere else.
///
/// ```
/// use imggen_core::{TaskHandle, ProviderId};
///
/// let json = r#"{"version":1,"provider":"runbase","task_id":"run_01JABC","model":"openai/gpt-image-2",
///   "created_at":"2026-04-22T00:12:03Z","cost":{"usd":"0.05","credits":0},"images_expected":1,
///   "summary":{"prompt":"a lamp","aspect_ratio":null,"n":1}}"#;
/// let handle = TaskHandle::from_json(json)?;
/// assert_eq!(handle.to_string(), "runbase:run_01JABC");
///
/// // The short form is enough to resume; cost and summary are then unknown.
/// let short: TaskHandle = "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse()?;
/// assert_eq!(short.provider, imggen_gptimg::provider::ID);
/// # Ok::<(), imggen_core::HandleError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireHandle")]
#[non_exhaustive]
pub struct TaskHandle {
    /// The format version ([`HANDLE_VERSION`]).
    pub version: u32,
    /// The provider that runs the task.
    pub provider: ProviderId,
    /// The provider's task id.
    pub task_id: String,
    /// The model, when known.
    pub model: Option<String>,
    /// When the task was created (RFC 3339, the submitting machine's clock).
    pub created_at: Option<String>,
    /// What the create charged.
    pub cost: Option<Cost>,
    /// Images the task will make.
    pub images_expected: Option<u32>,
    /// What was asked for.
    pub summary: Option<RequestSummary>,
    /// The task was created with a webhook URL: the provider will call it when the task ends,
    /// so a wait that takes webhook events polls only to catch a lost call
    /// ([`PollSchedule::webhook_interval`](crate::PollSchedule::webhook_interval)). Left out of
    /// the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub webhook: bool,
}

/// A short summary of the request behind a task, for people reading a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestSummary {
    /// The prompt, cut to 200 characters.
    pub prompt: String,
    /// The aspect ratio asked for.
    pub aspect_ratio: Option<String>,
    /// Images asked for in the whole request.
    pub n: u32,
}

impl RequestSummary {
    /// Summarises a request.
    pub fn of(request: &GenerationRequest) -> Self {
        let mut prompt: String = request.prompt.chars().take(SUMMARY_PROMPT_CHARS).collect();
        if prompt.len() < request.prompt.len() {
            prompt.push('…');
        }
        RequestSummary {
            prompt,
            aspect_ratio: request.aspect_ratio.as_ref().map(ToString::to_string),
            n: request.n,
        }
    }
}

/// A handle that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("task handle: {problem}")]
pub struct HandleError {
    /// What is wrong.
    pub problem: String,
}

impl HandleError {
    fn new(problem: impl Into<String>) -> Self {
        HandleError {
            problem: problem.into(),
        }
    }
}

impl TaskHandle {
    /// A handle for a task imggen just created; `created_at` is `now`.
    pub fn new(
        provider: ProviderId,
        task_id: impl Into<String>,
        created_at: SystemTime,
    ) -> Result<Self, HandleError> {
        let task_id = task_id.into();
        check_task_id(provider, &task_id)?;
        Ok(TaskHandle {
            version: HANDLE_VERSION,
            provider,
            task_id,
            model: None,
            created_at: Some(format_time(created_at)),
            cost: None,
            images_expected: None,
            summary: None,
            webhook: false,
        })
    }

    /// The handle of a task a provider just created. The id is kept even if it would not pass
    /// [`TaskHandle::new`]'s check: a paid task's id is never dropped.
    pub(crate) fn created(
        provider: ProviderId,
        created: Created,
        at: SystemTime,
        task: &PlannedTask,
        summary: &RequestSummary,
    ) -> TaskHandle {
        TaskHandle {
            version: HANDLE_VERSION,
            provider,
            task_id: created.task_id,
            model: created.model.or_else(|| task.model.clone()),
            created_at: Some(format_time(at)),
            cost: created.cost,
            images_expected: Some(task.images),
            summary: Some(summary.clone()),
            webhook: task.webhook.is_some(),
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    /// Sets the cost.
    pub fn with_cost(mut self, cost: Option<Cost>) -> Self {
        self.cost = cost;
        self
    }

    /// Sets the images expected.
    pub fn with_images_expected(mut self, images: u32) -> Self {
        self.images_expected = Some(images);
        self
    }

    /// Marks the task as created with a webhook URL (see [`TaskHandle::webhook`]).
    pub fn with_webhook(mut self, webhook: bool) -> Self {
        self.webhook = webhook;
        self
    }

    /// Sets the summary.
    pub fn with_summary(mut self, summary: RequestSummary) -> Self {
        self.summary = Some(summary);
        self
    }

    /// Reads a handle from its JSON. A handle that cannot be read says why in plain words:
    /// which field is missing or of the wrong kind, or where the JSON breaks off.
    pub fn from_json(json: &str) -> Result<Self, HandleError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|error| {
            let what = if error.is_eof() {
                "is cut short"
            } else {
                "is not valid JSON"
            };
            HandleError::new(format!(
                "the JSON handle {what} (line {}, column {}); {JSON_SHAPE}",
                error.line(),
                error.column()
            ))
        })?;
        check_json_fields(&value)?;
        let wire: WireHandle = serde_json::from_value(value)
            .map_err(|error| HandleError::new(format!("the JSON handle: {}", plain(&error))))?;
        TaskHandle::try_from(wire)
    }

    /// The handle as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and options: writing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// When the task was created, when the handle says.
    pub fn created_at_time(&self) -> Option<SystemTime> {
        let text = self.created_at.as_deref()?;
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(SystemTime::from)
    }
}

/// An instant as RFC 3339 in UTC (`2026-04-22T00:12:03.512Z`), as handles carry it.
pub fn format_time(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// What a JSON handle holds, for messages about one that cannot be read.
const JSON_SHAPE: &str = "a JSON handle holds at least \"version\" (1), \"provider\" and \"task_id\", as written when its task was created";

/// The fields a JSON handle must have, and what each must be (for `null`-able ones, the kind
/// besides `null`).
const JSON_FIELDS: [(&str, bool, &str); 9] = [
    ("version", true, "a whole number"),
    ("provider", true, "a string"),
    ("task_id", true, "a string"),
    ("model", false, "a string"),
    ("created_at", false, "a string"),
    ("cost", false, "an object"),
    ("images_expected", false, "a whole number"),
    ("summary", false, "an object"),
    ("webhook", false, "true or false"),
];

/// Checks that a JSON handle is an object with every required field, each field of the kind
/// it must be: the problems serde would report with its own vocabulary, said plainly.
fn check_json_fields(value: &serde_json::Value) -> Result<(), HandleError> {
    use serde_json::Value;
    let Value::Object(object) = value else {
        return Err(HandleError::new(format!(
            "a JSON handle is an object, not {}; {JSON_SHAPE}",
            json_kind(value)
        )));
    };
    let missing: Vec<String> = JSON_FIELDS
        .iter()
        .filter(|(name, required, _)| *required && object.get(*name).is_none_or(Value::is_null))
        .map(|(name, _, _)| format!("{name:?}"))
        .collect();
    if !missing.is_empty() {
        let fields = match &missing[..] {
            [rest @ .., last] if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => missing.join(""),
        };
        let mut problem = format!("the JSON handle is missing {fields}; {JSON_SHAPE}");
        // Only the version missing: the short form names the task as well.
        if let (Some(Value::String(provider)), Some(Value::String(task_id))) =
            (object.get("provider"), object.get("task_id"))
        {
            problem.push_str(&format!(
                "; or give the task as provider:task_id, {}:{}",
                Untrusted(provider),
                Untrusted(task_id)
            ));
        }
        return Err(HandleError::new(problem));
    }
    for (name, _, expected) in JSON_FIELDS {
        let Some(field) = object.get(name) else {
            continue;
        };
        let fits = match expected {
            "a whole number" => field.is_null() || field.as_u64().is_some(),
            "a string" => field.is_null() || field.is_string(),
            "an object" => field.is_null() || field.is_object(),
            _ => field.is_null() || field.is_boolean(),
        };
        if !fits {
            return Err(HandleError::new(format!(
                "in the JSON handle, {name:?} must be {expected}, not {} ({})",
                json_kind(field),
                Untrusted(&short(field))
            )));
        }
    }
    Ok(())
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON value, cut to 40 characters, for messages.
fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// serde's message without its position and its code-style quotes: `missing field `usd``
/// becomes `missing field "usd"`.
fn plain(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) if error.line() > 0 => &text[..at],
        _ => &text,
    };
    text.replace('`', "\"")
}

/// The id will be one URL path segment: refuse anything that could address another resource.
/// (A provider's own id format is checked by the provider when the handle is used.)
fn check_task_id(provider: ProviderId, task_id: &str) -> Result<(), HandleError> {
    imggen_types::validation::check_opaque_id("task_id", task_id)
        .map_err(|error| HandleError::new(format!("{provider} {error}")))
}

impl fmt::Display for TaskHandle {
    /// The short form, `provider:task_id`, safe to print: a task id is the provider's text,
    /// and its control characters are shown escaped (the JSON form keeps it as it is).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, Untrusted(&self.task_id))
    }
}

impl FromStr for TaskHandle {
    type Err = HandleError;

    /// Reads the short form `provider:task_id` (cost, model and summary are then unknown), or
    /// a whole JSON handle.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.starts_with('{') {
            return TaskHandle::from_json(value);
        }
        let (provider, task_id) = value.split_once(':').ok_or_else(|| {
            HandleError::new(format!(
                "{value:?} is not provider:task_id (e.g. runbase:run_01JABC) or a JSON handle"
            ))
        })?;
        let provider: ProviderId =
            provider
                .parse()
                .map_err(|err: crate::provider::InvalidProviderName| {
                    HandleError::new(err.to_string())
                })?;
        check_task_id(provider, task_id)?;
        Ok(TaskHandle {
            version: HANDLE_VERSION,
            provider,
            task_id: task_id.to_owned(),
            model: None,
            created_at: None,
            cost: None,
            images_expected: None,
            summary: None,
            webhook: false,
        })
    }
}

/// The JSON as read, before its checks.
#[derive(Deserialize)]
struct WireHandle {
    version: u32,
    provider: ProviderId,
    task_id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    cost: Option<Cost>,
    #[serde(default)]
    images_expected: Option<u32>,
    #[serde(default)]
    summary: Option<RequestSummary>,
    #[serde(default)]
    webhook: bool,
}

impl TryFrom<WireHandle> for TaskHandle {
    type Error = HandleError;

    fn try_from(wire: WireHandle) -> Result<Self, Self::Error> {
        if wire.version == 0 || wire.version > HANDLE_VERSION {
            return Err(HandleError::new(format!(
                "version {} is not supported by this imggen (it reads version {HANDLE_VERSION}); upgrade imggen",
                wire.version
            )));
        }
        check_task_id(wire.provider, &wire.task_id)?;
        if let Some(at) = &wire.created_at
            && OffsetDateTime::parse(at, &Rfc3339).is_err()
        {
            return Err(HandleError::new(format!(
                "created_at {at:?} is not an RFC 3339 time"
            )));
        }
        Ok(TaskHandle {
            version: wire.version,
            provider: wire.provider,
            task_id: wire.task_id,
            model: wire.model,
            created_at: wire.created_at,
            cost: wire.cost,
            images_expected: wire.images_expected,
            summary: wire.summary,
            webhook: wire.webhook,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn handle() -> TaskHandle {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_776_816_723);
        TaskHandle::new(
            imggen_gptimg::provider::ID,
            "gpt-image-2-kUtpnus8fXpDKkuEjayG3",
            at,
        )
        .unwrap()
        .with_model(Some("gpt-image-2".into()))
        .with_cost(Some(Cost::credits(imggen_types::Credits(4))))
        .with_images_expected(2)
        .with_summary(RequestSummary::of(
            &GenerationRequest::new("A lighthouse").n(2),
        ))
    }

    #[test]
    fn json_round_trips_with_stable_field_names() {
        let handle = handle();
        let json = handle.to_json();
        assert_eq!(
            json,
            r#"{"version":1,"provider":"gptimg","task_id":"gpt-image-2-kUtpnus8fXpDKkuEjayG3","model":"gpt-image-2","created_at":"2026-04-22T00:12:03Z","cost":{"usd":"0","credits":4},"images_expected":2,"summary":{"prompt":"A lighthouse","aspect_ratio":null,"n":2}}"#
        );
        assert_eq!(TaskHandle::from_json(&json).unwrap(), handle);
        assert_eq!(json.parse::<TaskHandle>().unwrap(), handle);
        assert_eq!(
            handle.created_at_time(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_776_816_723))
        );
    }

    #[test]
    fn the_short_form_is_provider_colon_task_id() {
        let handle = handle();
        let short = handle.to_string();
        assert_eq!(short, "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3");
        let back: TaskHandle = short.parse().unwrap();
        assert_eq!(back.task_id, handle.task_id);
        assert_eq!(
            (back.cost, back.summary, back.created_at),
            (None, None, None)
        );
        assert!("run_1".parse::<TaskHandle>().is_err());
        // Any provider name parses (a provider may be registered by the program); whether it
        // is configured is checked where the handle is used.
        assert_eq!(
            "dalle:abc".parse::<TaskHandle>().unwrap().provider.as_str(),
            "dalle"
        );
        assert!("Dall E:abc".parse::<TaskHandle>().is_err());
    }

    #[test]
    fn crafted_handles_are_refused() {
        let err = "runbase:../../admin".parse::<TaskHandle>().unwrap_err();
        assert!(err.problem.contains("a task id holds only"), "{err}");
        let err = TaskHandle::from_json(r#"{"version":1,"provider":"runblob","task_id":"a/b"}"#)
            .unwrap_err();
        assert!(err.problem.contains("contains '/'"), "{err}");
        let err = TaskHandle::from_json(r#"{"version":9,"provider":"runblob","task_id":"a"}"#)
            .unwrap_err();
        assert!(err.problem.contains("upgrade imggen"), "{err}");
        // Unknown fields (a base URL, say) are ignored, never used.
        let handle = TaskHandle::from_json(
            r#"{"version":1,"provider":"runblob","task_id":"a","base_url":"https://evil.example"}"#,
        )
        .unwrap();
        assert!(!handle.to_json().contains("evil"));
    }

    #[test]
    fn a_json_handle_that_cannot_be_read_says_why_in_plain_words() {
        let problem = |json: &str| TaskHandle::from_json(json).unwrap_err().to_string();
        assert_eq!(
            problem(r#"{"provider":"gptimg"}"#),
            r#"task handle: the JSON handle is missing "version" and "task_id"; a JSON handle holds at least "version" (1), "provider" and "task_id", as written when its task was created"#
        );
        assert_eq!(
            problem(r#"{"provider":"gptimg","task_id":"gpt-image-2-x"}"#),
            r#"task handle: the JSON handle is missing "version"; a JSON handle holds at least "version" (1), "provider" and "task_id", as written when its task was created; or give the task as provider:task_id, gptimg:gpt-image-2-x"#
        );
        assert_eq!(
            problem(r#"{"version":"1","provider":"runblob","task_id":"a"}"#),
            r#"task handle: in the JSON handle, "version" must be a whole number, not a string ("1")"#
        );
        assert_eq!(
            problem(r#"{"version":1,"provider":"runblob""#),
            r#"task handle: the JSON handle is cut short (line 1, column 33); a JSON handle holds at least "version" (1), "provider" and "task_id", as written when its task was created"#
        );
        assert_eq!(
            problem(r#"{"version":1,"provider":"runblob","task_id":"a","cost":{"usd":"1"}}"#),
            r#"task handle: the JSON handle: missing field "credits""#
        );
        assert_eq!(
            problem(r#"{"version":9,"provider":"runblob","task_id":"a"}"#),
            "task handle: version 9 is not supported by this imggen (it reads version 1); upgrade imggen",
            "said once"
        );
        for json in [
            r#"{"provider":"gptimg"}"#,
            r#"{"version":"1","provider":"runblob","task_id":"a"}"#,
            r#"{"version":1,"provider":"runblob""#,
        ] {
            let text = problem(json);
            assert!(
                !text.contains('`') && !text.contains("expected u32"),
                "{text}"
            );
        }
    }

    #[test]
    fn long_prompts_are_cut_in_the_summary() {
        let summary = RequestSummary::of(&GenerationRequest::new("x".repeat(1000)));
        assert_eq!(summary.prompt.chars().count(), 201);
        assert!(summary.prompt.ends_with('…'));
    }
}
