//! Faults on demand: the failures a client must survive, injected when a test asks for them.
//!
//! A [`Fault`] is data — which provider, which kind of call, whose key, how many times, and
//! what goes wrong — so the same fault can be armed through the library
//! ([`MockServer::add_fault`](crate::MockServer::add_fault)), `POST /_mock/faults` (JSON) or
//! the command line (`--fault runblob/create:drop`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::{MockClock, iso8601};
use crate::config::parse_duration;
use crate::keys::key_label;
use crate::provider::{Operation, Provider, Route};

/// One armed failure. Matches the next `count` requests of `operation` to `provider` (any
/// provider when `None`) made with `key` (any key when `None`; a download matches the key that
/// created the task).
///
/// JSON (for `POST /_mock/faults`), with the kind's fields next to the others:
///
/// ```json
/// {"provider": "runblob", "operation": "create", "count": 2,
///  "kind": "http", "status": 500, "body": {"detail": "OPENAI_DECLINED"}}
/// ```
///
/// ```
/// use imggen_mock::{Fault, FaultKind, Operation, Provider};
/// let fault = Fault::new(FaultKind::DropConnection)
///     .provider(Provider::Runblob)
///     .operation(Operation::Create);
/// assert_eq!(fault, "runblob/create:drop".parse().unwrap());
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(from = "FaultWire")]
#[non_exhaustive]
pub struct Fault {
    /// The provider whose requests it hits; `None` for all three.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// The kind of call it hits.
    #[serde(default = "any_operation")]
    pub operation: Operation,
    /// Only requests made with this key; `None` for every key.
    #[serde(default)]
    pub key: Option<String>,
    /// How many matching requests it hits.
    #[serde(default)]
    pub count: Count,
    /// How long it stays armed, on the mock's clock, counted from when it is armed (a
    /// maintenance window, say); `None`: until used up. JSON: `for_ms`.
    pub window: Option<Duration>,
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn any_operation() -> Operation {
    Operation::Any
}

/// The JSON form: `count` defaults to 1, or to unlimited when `for_ms` sets a window.
#[derive(Deserialize)]
struct FaultWire {
    #[serde(default)]
    provider: Option<Provider>,
    #[serde(default = "any_operation")]
    operation: Operation,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    count: Option<Count>,
    #[serde(default)]
    for_ms: Option<u64>,
    #[serde(flatten)]
    kind: FaultKind,
}

impl From<FaultWire> for Fault {
    fn from(wire: FaultWire) -> Self {
        let window = wire.for_ms.map(Duration::from_millis);
        Fault {
            provider: wire.provider,
            operation: wire.operation,
            key: wire.key,
            count: wire.count.unwrap_or(if window.is_some() {
                Count::Unlimited
            } else {
                Count::Times(1)
            }),
            window,
            kind: wire.kind,
        }
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("provider", &self.provider)
            .field("operation", &self.operation)
            .field("key", &self.key.as_deref().map(key_label))
            .field("count", &self.count)
            .field("window", &self.window)
            .field("kind", &self.kind)
            .finish()
    }
}

/// How many matching requests a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// The next N (at least 1).
    Times(u32),
    /// Every one, until the faults are cleared.
    Unlimited,
}

impl Default for Count {
    /// The next matching request only.
    fn default() -> Self {
        Count::Times(1)
    }
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Times(n) => serializer.serialize_u32(*n),
            Count::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(u32),
            Word(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Number(n) => Ok(Count::Times(n)),
            Wire::Word(word) => word.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl FromStr for Count {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "unlimited" | "always" => Ok(Count::Unlimited),
            number => number.parse().map(Count::Times).map_err(|_| {
                format!("{value:?} is not a count; use a whole number or \"unlimited\"")
            }),
        }
    }
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer with this status and body instead of handling the request (a create is not
    /// charged). A JSON string body is sent as plain text; no body gives the provider's own
    /// error shape for that status.
    Http {
        /// The HTTP status.
        status: u16,
        /// The body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        /// Extra headers, e.g. `{"Retry-After": "3"}`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// 503 maintenance in the provider's shape (runblob's documented `{"detail":"Maintenance"}`);
    /// nothing is charged.
    Maintenance,
    /// The created task fails with this code (`OPENAI_DECLINED`, `MODERATION_FAILED`, …) when
    /// it finishes; it is charged at create and refunded when it fails. Hits creates only.
    TaskFailure {
        /// The failure code.
        code: String,
    },
    /// The request is handled at once (a create is charged), but its answer is held back
    /// this long.
    Latency {
        /// The delay, in milliseconds.
        ms: u64,
    },
    /// The request is read and handled (a create is charged and its task runs), then the
    /// connection is closed without an answer: the case a client must never resubmit.
    DropConnection,
    /// The request is handled (a create is charged), and the answer's status is sent with a
    /// body cut in half, so it is not JSON (for a download: not a whole PNG).
    MalformedJson,
    /// The request is handled (a create is charged) and its answer declares its whole length
    /// (`Content-Length`) but stops halfway, and the connection closes: a server that lies
    /// about its length, or a transfer cut off.
    CutShort,
    /// The request is handled and its answer sent a few bytes at a time.
    Trickle {
        /// Bytes per chunk (default 16).
        #[serde(default = "default_chunk_bytes")]
        chunk_bytes: usize,
        /// Pause between chunks, in milliseconds (default 200).
        #[serde(default = "default_interval_ms")]
        interval_ms: u64,
    },
}

fn default_chunk_bytes() -> usize {
    16
}

fn default_interval_ms() -> u64 {
    200
}

impl FaultKind {
    /// `http`, `maintenance`, … as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Http { .. } => "http",
            FaultKind::Maintenance => "maintenance",
            FaultKind::TaskFailure { .. } => "task_failure",
            FaultKind::Latency { .. } => "latency",
            FaultKind::DropConnection => "drop_connection",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::CutShort => "cut_short",
            FaultKind::Trickle { .. } => "trickle",
        }
    }

    /// Task failures are decided when a task is created; every other kind acts on the
    /// request as it arrives.
    pub(crate) fn acts_on_task(&self) -> bool {
        matches!(self, FaultKind::TaskFailure { .. })
    }
}

/// A fault that cannot be armed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault: {0}")]
pub struct InvalidFault(pub String);

impl Fault {
    /// A fault of `kind` for the next request of any kind, to any provider, with any key.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            provider: None,
            operation: Operation::Any,
            key: None,
            count: Count::default(),
            window: None,
            kind,
        }
    }

    /// Only this provider's requests.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Only this kind of call.
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operation = operation;
        self
    }

    /// Only requests made with this key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Count::Times(n);
        self
    }

    /// Every matching request, until cleared.
    pub fn always(mut self) -> Self {
        self.count = Count::Unlimited;
        self
    }

    /// Every matching request for `window` of mock time from when it is armed (e.g. a
    /// maintenance window); call [`times`](Self::times) afterwards to also cap the hits.
    pub fn for_duration(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self.count = Count::Unlimited;
        self
    }

    /// Checks that the fault can ever act.
    pub fn check(&self) -> Result<(), InvalidFault> {
        if self.count == Count::Times(0) {
            return Err(InvalidFault(
                "count must be at least 1 (or \"unlimited\")".into(),
            ));
        }
        match &self.kind {
            FaultKind::Http { status, .. } if !(200..=599).contains(status) => {
                return Err(InvalidFault(format!(
                    "http status {status} is out of range; allowed: 200 to 599"
                )));
            }
            FaultKind::Http { headers, .. } => {
                for (name, value) in headers {
                    let valid = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                        && axum::http::HeaderValue::from_str(value).is_ok();
                    if !valid {
                        return Err(InvalidFault(format!(
                            "header {name:?}: {value:?} is not a valid HTTP header"
                        )));
                    }
                }
            }
            FaultKind::TaskFailure { code } => {
                if !matches!(self.operation, Operation::Create | Operation::Any) {
                    return Err(InvalidFault(format!(
                        "task_failure acts on creates; operation {} can never match",
                        self.operation
                    )));
                }
                if code.trim().is_empty() {
                    return Err(InvalidFault(
                        "task_failure needs a code, e.g. OPENAI_DECLINED".into(),
                    ));
                }
            }
            FaultKind::Trickle { chunk_bytes: 0, .. } => {
                return Err(InvalidFault(
                    "trickle chunk_bytes must be at least 1".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn matches(&self, route: Route, key: Option<&str>) -> bool {
        self.provider
            .is_none_or(|provider| provider == route.provider)
            && self.operation.covers(route.operation)
            && self.key.as_deref().is_none_or(|wanted| key == Some(wanted))
    }
}

impl FromStr for Fault {
    type Err = InvalidFault;

    /// The command-line form `PROVIDER/OPERATION:KIND[:ARGS][@COUNT]`, where PROVIDER and
    /// OPERATION may be `*`, or the JSON form when the text starts with `{`:
    ///
    /// - `runblob/create:http:500:{"detail":"OPENAI_DECLINED"}`
    /// - `runblob/create:maintenance@3` (the next three creates)
    /// - `runblob/*:maintenance@10m` (every call for ten minutes of mock time)
    /// - `*/create:task_failure:MODERATION_FAILED@unlimited`
    /// - `gptimg/status:latency:1500ms`
    /// - `runbase/create:drop`
    /// - `*/status:malformed`
    /// - `gptimg/download:trickle:8:100` (8-byte chunks every 100 ms)
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if spec.starts_with('{') {
            let fault: Fault =
                serde_json::from_str(spec).map_err(|err| InvalidFault(err.to_string()))?;
            fault.check()?;
            return Ok(fault);
        }
        let bad = |why: &str| InvalidFault(format!("{spec:?}: {why}"));
        let (target, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected PROVIDER/OPERATION:KIND, e.g. runblob/create:drop"))?;
        let (provider, operation) = target.split_once('/').unwrap_or((target, "*"));
        let provider = match provider.trim() {
            "*" | "any" => None,
            name => Some(
                name.parse::<Provider>()
                    .map_err(|err| bad(&err.to_string()))?,
            ),
        };
        let operation: Operation = operation.parse().map_err(|err: String| bad(&err))?;
        let (rest, count, window) = match rest.rsplit_once('@') {
            Some((head, tail)) => match tail.parse::<Count>() {
                Ok(count) => (head, count, None),
                // `@5m`: every hit for five minutes.
                Err(_) if tail.trim().ends_with(|c: char| c.is_ascii_alphabetic()) => {
                    let window = parse_duration(tail).map_err(|err| bad(&err))?;
                    (head, Count::Unlimited, Some(window))
                }
                Err(_) => (rest, Count::default(), None),
            },
            None => (rest, Count::default(), None),
        };
        let (kind, args) = rest.split_once(':').unwrap_or((rest, ""));
        let number = |text: &str, what: &str| -> Result<u64, InvalidFault> {
            text.trim()
                .parse()
                .map_err(|_| bad(&format!("{what} must be a whole number, got {text:?}")))
        };
        let kind = match kind.trim() {
            "http" => {
                let (status, body) = args.split_once(':').unwrap_or((args, ""));
                let status = u16::try_from(number(status, "the status")?)
                    .map_err(|_| bad("the status must be 200 to 599"))?;
                let body = match body.trim() {
                    "" => None,
                    text => Some(
                        serde_json::from_str(text)
                            .unwrap_or_else(|_| serde_json::Value::String(text.to_owned())),
                    ),
                };
                FaultKind::Http {
                    status,
                    body,
                    headers: BTreeMap::new(),
                }
            }
            "maintenance" => FaultKind::Maintenance,
            "task_failure" | "fail" => FaultKind::TaskFailure {
                code: args.trim().to_owned(),
            },
            "latency" => {
                // A bare number is milliseconds, the unit of the JSON field.
                let ms = if args.trim().chars().all(|c| c.is_ascii_digit()) {
                    number(args, "the latency")?
                } else {
                    let delay = parse_duration(args).map_err(|err| bad(&err))?;
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
                };
                FaultKind::Latency { ms }
            }
            "drop" | "drop_connection" => FaultKind::DropConnection,
            "malformed" | "malformed_json" => FaultKind::MalformedJson,
            "cut_short" | "short" => FaultKind::CutShort,
            "trickle" => {
                let mut parts = args.split(':').filter(|part| !part.trim().is_empty());
                let chunk_bytes = match parts.next() {
                    Some(text) => {
                        usize::try_from(number(text, "the chunk size")?).unwrap_or(usize::MAX)
                    }
                    None => default_chunk_bytes(),
                };
                let interval_ms = match parts.next() {
                    Some(text) => {
                        let delay = if text.trim().chars().all(|c| c.is_ascii_digit()) {
                            Duration::from_millis(number(text, "the interval")?)
                        } else {
                            parse_duration(text).map_err(|err| bad(&err))?
                        };
                        u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
                    }
                    None => default_interval_ms(),
                };
                FaultKind::Trickle {
                    chunk_bytes,
                    interval_ms,
                }
            }
            other => {
                return Err(bad(&format!(
                    "{other:?} is not a fault kind; known: http, maintenance, task_failure, latency, drop, malformed, cut_short, trickle"
                )));
            }
        };
        let fault = Fault {
            provider,
            operation,
            key: None,
            count,
            window,
            kind,
        };
        fault.check()?;
        Ok(fault)
    }
}

/// An armed fault as `GET /_mock/faults` and [`MockServer::faults`](crate::MockServer::faults)
/// show it: the key as a label, and how many hits remain.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FaultInfo {
    /// Its id.
    pub id: u64,
    /// The provider it hits, or `null` for all.
    pub provider: Option<Provider>,
    /// The kind of call it hits.
    pub operation: Operation,
    /// The key's label, if it hits one key only.
    pub key: Option<String>,
    /// Hits left.
    pub remaining: Count,
    /// Requests it has hit so far.
    pub hits: u64,
    /// When its window closes, on the mock's clock, if it has one.
    pub expires_at: Option<String>,
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// The armed faults, in the order they were added (the first match wins).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    next_id: u64,
    armed: Vec<Armed>,
}

#[derive(Debug)]
struct Armed {
    id: u64,
    fault: Fault,
    remaining: Count,
    hits: u64,
    expires: Option<Instant>,
}

impl Faults {
    /// Arms a fault at `now` (its window, if any, starts then).
    pub(crate) fn add(&mut self, fault: Fault, now: Instant) -> Result<u64, InvalidFault> {
        fault.check()?;
        self.next_id += 1;
        let id = self.next_id;
        // A window too long to represent never closes.
        let expires = fault.window.and_then(|window| now.checked_add(window));
        self.armed.push(Armed {
            id,
            remaining: fault.count,
            fault,
            hits: 0,
            expires,
        });
        Ok(id)
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    /// The faults still armed at the clock's now.
    pub(crate) fn list(&mut self, clock: &MockClock) -> Vec<FaultInfo> {
        self.expire(clock.now());
        self.armed
            .iter()
            .map(|armed| FaultInfo {
                id: armed.id,
                provider: armed.fault.provider,
                operation: armed.fault.operation,
                key: armed.fault.key.as_deref().map(key_label),
                remaining: armed.remaining,
                hits: armed.hits,
                expires_at: armed.expires.map(|at| iso8601(clock.wall_at(at))),
                kind: armed.fault.kind.clone(),
            })
            .collect()
    }

    fn expire(&mut self, now: Instant) {
        self.armed
            .retain(|armed| armed.expires.is_none_or(|expires| now < expires));
    }

    /// Takes one hit of the first fault that matches: of a task-acting kind when `on_task`,
    /// of a request-acting kind otherwise.
    pub(crate) fn take(
        &mut self,
        route: Route,
        key: Option<&str>,
        on_task: bool,
        now: Instant,
    ) -> Option<FaultKind> {
        self.expire(now);
        let index = self.armed.iter().position(|armed| {
            armed.fault.kind.acts_on_task() == on_task && armed.fault.matches(route, key)
        })?;
        let armed = &mut self.armed[index];
        armed.hits += 1;
        let kind = armed.fault.kind.clone();
        if let Count::Times(left) = &mut armed.remaining {
            *left -= 1;
            if *left == 0 {
                self.armed.remove(index);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(provider: Provider, operation: Operation) -> Route {
        Route {
            provider,
            operation,
        }
    }

    #[test]
    fn json_and_command_line_forms_agree() {
        let from_json: Fault = serde_json::from_value(json!({
            "provider": "runblob", "operation": "create", "count": 2,
            "kind": "http", "status": 500, "body": {"detail": "OPENAI_DECLINED"}
        }))
        .unwrap();
        let from_cli: Fault = r#"runblob/create:http:500:{"detail":"OPENAI_DECLINED"}@2"#
            .parse()
            .unwrap();
        assert_eq!(from_json, from_cli);

        let latency: Fault = "gptimg/status:latency:1500".parse().unwrap();
        assert_eq!(latency.kind, FaultKind::Latency { ms: 1500 });
        let latency: Fault = "gptimg/status:latency:2s".parse().unwrap();
        assert_eq!(latency.kind, FaultKind::Latency { ms: 2000 });
        let trickle: Fault = "*/download:trickle:8:100".parse().unwrap();
        assert_eq!(trickle.provider, None);
        assert_eq!(
            trickle.kind,
            FaultKind::Trickle {
                chunk_bytes: 8,
                interval_ms: 100
            }
        );
        let always: Fault = "*/create:task_failure:MODERATION_FAILED@unlimited"
            .parse()
            .unwrap();
        assert_eq!(always.count, Count::Unlimited);
        let defaults: Fault = serde_json::from_value(json!({"kind": "maintenance"})).unwrap();
        assert_eq!(defaults, Fault::new(FaultKind::Maintenance));
    }

    #[test]
    fn faults_that_can_never_act_are_refused_with_a_reason() {
        for (spec, why) in [
            (
                "runblob/status:task_failure:OPENAI_DECLINED",
                "acts on creates",
            ),
            ("runblob/create:http:99", "out of range"),
            ("runblob/create:explode", "not a fault kind"),
            ("nobody/create:drop", "not a provider"),
            ("runblob/create:drop@0", "at least 1"),
            ("runblob/create:trickle:0", "at least 1"),
            ("runblob", "expected PROVIDER/OPERATION:KIND"),
        ] {
            let err = spec.parse::<Fault>().unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn the_next_n_matching_requests_are_hit_then_the_fault_is_gone() {
        let clock = MockClock::manual();
        let now = clock.now();
        let mut faults = Faults::default();
        faults
            .add(
                Fault::new(FaultKind::Maintenance)
                    .provider(Provider::Runblob)
                    .operation(Operation::Create)
                    .times(2),
                now,
            )
            .unwrap();
        let create = route(Provider::Runblob, Operation::Create);
        assert_eq!(
            faults.take(route(Provider::Gptimg, Operation::Create), None, false, now),
            None
        );
        assert_eq!(
            faults.take(
                route(Provider::Runblob, Operation::Status),
                None,
                false,
                now
            ),
            None
        );
        assert_eq!(
            faults.take(create, None, true, now),
            None,
            "not a task fault"
        );
        assert_eq!(
            faults.take(create, None, false, now),
            Some(FaultKind::Maintenance)
        );
        assert_eq!(faults.list(&clock)[0].remaining, Count::Times(1));
        assert_eq!(
            faults.take(create, Some("k"), false, now),
            Some(FaultKind::Maintenance)
        );
        assert_eq!(faults.take(create, None, false, now), None);
        assert!(faults.list(&clock).is_empty());
    }

    #[test]
    fn a_window_closes_on_the_mock_clock() {
        let clock = MockClock::manual();
        let mut faults = Faults::default();
        let fault: Fault = "runblob/*:maintenance@10m".parse().unwrap();
        assert_eq!(
            (fault.count, fault.window),
            (Count::Unlimited, Some(Duration::from_secs(600)))
        );
        let json: Fault = serde_json::from_value(
            json!({"kind": "maintenance", "for_ms": 600_000, "provider": "runblob"}),
        )
        .unwrap();
        assert_eq!(json, fault);
        faults.add(fault, clock.now()).unwrap();
        assert!(faults.list(&clock)[0].expires_at.is_some());
        let create = route(Provider::Runblob, Operation::Create);
        for _ in 0..3 {
            assert_eq!(
                faults.take(create, None, false, clock.now()),
                Some(FaultKind::Maintenance)
            );
        }
        clock.advance(Duration::from_secs(599));
        assert_eq!(
            faults.take(create, None, false, clock.now()),
            Some(FaultKind::Maintenance)
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(faults.take(create, None, false, clock.now()), None);
        assert!(faults.list(&clock).is_empty());
    }

    #[test]
    fn a_key_fault_hits_only_that_key_and_lists_its_label() {
        let clock = MockClock::manual();
        let now = clock.now();
        let mut faults = Faults::default();
        faults
            .add(
                Fault::new(FaultKind::DropConnection)
                    .key("sk-alice-0000")
                    .always(),
                now,
            )
            .unwrap();
        let any = route(Provider::Runbase, Operation::Status);
        assert_eq!(faults.take(any, Some("sk-bob-0000"), false, now), None);
        assert_eq!(faults.take(any, None, false, now), None);
        assert_eq!(
            faults.take(any, Some("sk-alice-0000"), false, now),
            Some(FaultKind::DropConnection)
        );
        assert_eq!(
            faults.take(any, Some("sk-alice-0000"), false, now),
            Some(FaultKind::DropConnection)
        );
        let listed = serde_json::to_string(&faults.list(&clock)).unwrap();
        assert!(!listed.contains("alice-0000"), "{listed}");
        assert!(listed.contains(r#""remaining":"unlimited""#), "{listed}");
        assert!(
            !format!(
                "{:?}",
                Fault::new(FaultKind::Maintenance).key("sk-alice-0000")
            )
            .contains("alice")
        );
    }
}
