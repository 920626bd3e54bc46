//! The objects of `--progress jsonl`: one per line on stderr, each with `event` (what
//! happened) and `elapsed_ms` (since imggen started), then the fields of that kind of event.
//! The shapes are documented in the crate README and pinned by the tests below: scripts read
//! them. Text stays as the provider or the input file sent it (JSON-escaped where written).

use std::path::PathBuf;

use imggen_core::batch::{BatchEventKind, Progress as BatchTotals};
use imggen_core::{Cost, TaskHandle};
use serde_json::{Map, Value, json};

use crate::output::CostOutput;

/// An event: `{"event": NAME, …fields}` (`elapsed_ms` is added where it is written).
pub(crate) fn event(name: &str, fields: Value) -> Value {
    let mut object = Map::new();
    object.insert("event".into(), Value::from(name));
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Value::Object(object)
}

/// `provider:task_id` as it was sent: the JSON form keeps the provider's text (a handle's
/// `Display` escapes it for terminals).
fn handle_text(handle: &TaskHandle) -> String {
    format!("{}:{}", handle.provider, handle.task_id)
}

fn cost_value(cost: Option<Cost>) -> Value {
    cost.map_or(Value::Null, |cost| json!(CostOutput::from(cost)))
}

/// A task exists (and is paid for): `created` with its `provider`, `task`, `handle` (what
/// `imggen wait` takes) and `cost` (`null` when unknown); in a batch, the request's `id`
/// and `line`.
pub(crate) fn created(request: Option<(&str, usize)>, label: &str, handle: &TaskHandle) -> Value {
    with_request(
        request,
        event(
            "created",
            json!({
                "provider": label,
                "task": handle.task_id,
                "handle": handle_text(handle),
                "cost": cost_value(handle.cost),
            }),
        ),
    )
}

/// A task's status changed: `status` with `provider`, `task` and `status` (`queued`,
/// `running`, `succeeded`, the provider's own word, or imggen's: `waiting`, `interrupted`,
/// `deadline passed`, `stopped`).
pub(crate) fn status(
    request: Option<(&str, usize)>,
    label: &str,
    task_id: &str,
    status: &str,
) -> Value {
    with_request(
        request,
        event(
            "status",
            json!({"provider": label, "task": task_id, "status": status}),
        ),
    )
}

/// A task or request failed: `failed` with `error` (the provider's words, `null` when it
/// gave none), and `provider` and `task` when a task failed.
pub(crate) fn task_failed(label: &str, task_id: &str, error: Option<&str>) -> Value {
    event(
        "failed",
        json!({"provider": label, "task": task_id, "error": error}),
    )
}

/// A file is on disk: `saved` with its `path`, and `provider` and `task` (generate, wait) or
/// the request's `id` and `line` (batch).
pub(crate) fn saved(label: &str, task_id: &str, path: &str) -> Value {
    event(
        "saved",
        json!({"provider": label, "task": task_id, "path": path}),
    )
}

/// What a batch should cost in all, counted before anything is sent: `projected` with `cost`
/// (the priced lines) and `unpriced` (lines priced only by their create's answer).
pub(crate) fn projected(total: Cost, unpriced: usize) -> Value {
    event(
        "projected",
        json!({"cost": CostOutput::from(total), "unpriced": unpriced}),
    )
}

/// What the run has cost so far: `cost` with `cost` (`usd`, `credits`).
pub(crate) fn cost(total: Cost) -> Value {
    event("cost", json!({"cost": CostOutput::from(total)}))
}

/// A batch's totals: `progress` at a steady pace.
pub(crate) fn progress(totals: &BatchTotals) -> Value {
    event(
        "progress",
        json!({
            "total": totals.total,
            "done": totals.done,
            "failed": totals.failed,
            "unknown": totals.unknown,
            "pending": totals.pending,
            "in_flight": totals.in_flight,
            "queued": totals.queued,
            "cost": CostOutput::from(totals.cost),
        }),
    )
}

/// The events of a batch event. `status_changed` says whether a status is new for its task
/// (a repeated one is not an event).
pub(crate) fn batch_event(
    request: Option<(&str, usize)>,
    kind: &BatchEventKind,
    status_changed: bool,
) -> Vec<Value> {
    if request.is_none() {
        return Vec::new();
    }
    let mut events = Vec::new();
    match kind {
        BatchEventKind::Submitted { handles } => {
            for handle in handles {
                events.push(created(request, handle.provider.as_str(), handle));
            }
        }
        BatchEventKind::Adopted { handles } => {
            for handle in handles {
                let mut adopted = created(request, handle.provider.as_str(), handle);
                adopted["event"] = "adopted".into();
                events.push(adopted);
            }
        }
        BatchEventKind::Status { handle, state } if status_changed => {
            events.push(status(
                request,
                handle.provider.as_str(),
                &handle.task_id,
                state.name(),
            ));
        }
        BatchEventKind::Done { files } => {
            for file in files {
                events.push(with_request(
                    request,
                    event("saved", json!({"path": file.display().to_string()})),
                ));
            }
            events.push(with_request(
                request,
                event("done", json!({"files": paths(files)})),
            ));
        }
        BatchEventKind::Failed { error } => {
            events.push(with_request(
                request,
                event("failed", json!({"error": error})),
            ));
        }
        BatchEventKind::Unknown { reason } => {
            events.push(with_request(
                request,
                event("unknown", json!({"reason": reason})),
            ));
        }
        BatchEventKind::Pending { reason } => {
            events.push(with_request(
                request,
                event("pending", json!({"reason": reason})),
            ));
        }
        _ => {}
    }
    events
}

fn paths(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|file| file.display().to_string())
        .collect()
}

/// Adds a batch request's `id` and `line`.
fn with_request(request: Option<(&str, usize)>, mut value: Value) -> Value {
    if let (Some((id, line)), Value::Object(fields)) = (request, &mut value) {
        fields.insert("id".into(), Value::from(id));
        fields.insert("line".into(), Value::from(line));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use imggen_core::TaskState;

    fn handle() -> TaskHandle {
        let mut handle: TaskHandle = "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse().unwrap();
        handle.cost = Some(Cost::usd("0.05".parse().unwrap()));
        handle
    }

    #[test]
    fn a_task_of_generate_is_created_changes_status_fails_or_is_saved() {
        assert_eq!(
            created(None, "gptimg", &handle()),
            json!({"event": "created", "provider": "gptimg",
                   "task": "gpt-image-2-kUtpnus8fXpDKkuEjayG3",
                   "handle": "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3",
                   "cost": {"usd": "0.05", "credits": 0}})
        );
        assert_eq!(
            status(None, "mock", "t1", "running"),
            json!({"event": "status", "provider": "mock", "task": "t1", "status": "running"})
        );
        assert_eq!(
            task_failed("mock", "t1", None),
            json!({"event": "failed", "provider": "mock", "task": "t1", "error": null})
        );
        assert_eq!(
            saved("mock", "t1", "imggen-out/t1-1.png"),
            json!({"event": "saved", "provider": "mock", "task": "t1", "path": "imggen-out/t1-1.png"})
        );
        assert_eq!(
            cost(Cost::usd("0.0623".parse().unwrap())),
            json!({"event": "cost", "cost": {"usd": "0.0623", "credits": 0}})
        );
    }

    #[test]
    fn a_batch_request_carries_its_id_and_line_in_every_event() {
        let hero = Some(("hero", 3));
        let events = batch_event(
            hero,
            &BatchEventKind::Submitted {
                handles: vec![handle()],
            },
            false,
        );
        assert_eq!(
            events,
            [
                json!({"event": "created", "id": "hero", "line": 3, "provider": "gptimg",
                    "task": "gpt-image-2-kUtpnus8fXpDKkuEjayG3",
                    "handle": "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3",
                    "cost": {"usd": "0.05", "credits": 0}})
            ]
        );
        let status = BatchEventKind::Status {
            handle: handle(),
            state: TaskState::Running,
        };
        assert_eq!(
            batch_event(hero, &status, true),
            [
                json!({"event": "status", "id": "hero", "line": 3, "provider": "gptimg",
                    "task": "gpt-image-2-kUtpnus8fXpDKkuEjayG3", "status": "running"})
            ]
        );
        assert!(batch_event(hero, &status, false).is_empty());
        assert_eq!(
            batch_event(
                hero,
                &BatchEventKind::Done {
                    files: vec!["renders/a.png".into()]
                },
                false
            ),
            [
                json!({"event": "saved", "id": "hero", "line": 3, "path": "renders/a.png"}),
                json!({"event": "done", "id": "hero", "line": 3, "files": ["renders/a.png"]}),
            ]
        );
        assert_eq!(
            batch_event(
                hero,
                &BatchEventKind::Failed {
                    error: "MODERATION_FAILED".into()
                },
                false
            ),
            [json!({"event": "failed", "id": "hero", "line": 3, "error": "MODERATION_FAILED"})]
        );
        assert!(batch_event(None, &BatchEventKind::Finished, false).is_empty());
    }

    #[test]
    fn the_steady_batch_event_has_every_total() {
        let mut totals = BatchTotals::default();
        totals.total = 10;
        totals.done = 3;
        totals.queued = 7;
        assert_eq!(
            progress(&totals),
            json!({"event": "progress", "total": 10, "done": 3, "failed": 0, "unknown": 0,
                   "pending": 0, "in_flight": 0, "queued": 7,
                   "cost": {"usd": "0", "credits": 0}})
        );
    }
}
