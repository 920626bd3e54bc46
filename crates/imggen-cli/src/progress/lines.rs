//! The words of `--progress plain` (and of the batch bar): pure functions of what imggen-core
//! reported, unit-tested here. Every line is escaped for the terminal where it is written.

use std::path::PathBuf;
use std::time::Duration;

use imggen_core::Cost;
use imggen_core::TaskHandle;
use imggen_core::batch::{BatchEventKind, LineError, Progress as BatchTotals};
use indicatif::HumanDuration;

/// A batch is short when this run has at most this many requests to touch: each gets a line
/// per change. A longer one gets only the summary line at a steady pace, so a batch of a
/// million lines does not write millions of lines.
pub(crate) const SHORT_RUN: usize = 20;

/// Whether a batch with these totals is short enough for a line per change.
pub(crate) fn is_short(totals: &BatchTotals) -> bool {
    totals.total.saturating_sub(totals.finished_before) <= SHORT_RUN
}

/// `line 3`, or `line 3 (id "hero")` when the id is not the line number — as imggen-core
/// names a line in its errors.
pub(crate) fn entry_label(line: usize, id: &str) -> String {
    LineError::new(line, Some(id.to_owned()), "")
        .to_string()
        .trim_end_matches(": ")
        .to_owned()
}

/// ` (2 credits)`: a charge worth a glance, or nothing when it is not known.
fn charge(cost: Option<Cost>) -> String {
    cost.map(|cost| format!(" ({cost})")).unwrap_or_default()
}

/// `imggen: created gptimg task T (2 credits)`, and when the task outlives the run, the
/// command that resumes it.
pub(crate) fn created(label: &str, handle: &TaskHandle, resumable: bool) -> String {
    let mut line = format!(
        "imggen: created {label} task {}{}",
        handle.task_id,
        charge(handle.cost)
    );
    if resumable {
        line.push_str(&format!(
            "; if this run stops, resume it with: imggen wait {handle}"
        ));
    }
    line
}

/// `imggen: gptimg task T: running`, with the provider's reason when it failed.
pub(crate) fn task_status(label: &str, task_id: &str, status: &str, why: Option<&str>) -> String {
    match why {
        Some(why) => format!("imggen: {label} task {task_id}: {status}: {why}"),
        None => format!("imggen: {label} task {task_id}: {status}"),
    }
}

/// `imggen: gptimg task T: saved imggen-out/T-1.png`.
pub(crate) fn saved(label: &str, task_id: &str, path: &str) -> String {
    format!("imggen: {label} task {task_id}: saved {path}")
}

/// The lines a batch event is worth in a short run: one per change of a request (a status
/// only when `status_changed`), none for the run's own steps.
pub(crate) fn batch_event(
    request: Option<(&str, usize)>,
    kind: &BatchEventKind,
    status_changed: bool,
) -> Vec<String> {
    let Some((id, line)) = request else {
        return Vec::new();
    };
    let who = format!("imggen: {}", entry_label(line, id));
    match kind {
        BatchEventKind::Submitted { handles } => handles
            .iter()
            .map(|handle| {
                format!(
                    "{who}: created {} task {}{}",
                    handle.provider,
                    handle.task_id,
                    charge(handle.cost)
                )
            })
            .collect(),
        BatchEventKind::Adopted { handles } => handles
            .iter()
            .map(|handle| {
                format!(
                    "{who}: found {} task {} in the provider's task list",
                    handle.provider, handle.task_id
                )
            })
            .collect(),
        BatchEventKind::Status { handle, state } if status_changed => vec![format!(
            "{who}: {} task {} {}",
            handle.provider,
            handle.task_id,
            state.name()
        )],
        BatchEventKind::Done { files } => vec![format!("{who}: done: {}", paths(files))],
        BatchEventKind::Failed { error } => vec![format!("{who}: failed: {error}")],
        BatchEventKind::Unknown { reason } => vec![format!("{who}: outcome unknown: {reason}")],
        BatchEventKind::Pending { reason } => vec![format!("{who}: not finished: {reason}")],
        _ => Vec::new(),
    }
}

fn paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|file| file.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a batch should cost in all, counted before anything was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Projection {
    /// The priced lines' total.
    pub cost: Cost,
    /// Lines whose price is known only from their create's answer.
    pub unpriced: usize,
}

/// What was spent, and of what projected total: `$0.0369 of $0.15`,
/// `$0.0369 of $0.15 + 2 unpriced`.
fn spend(totals: &BatchTotals, projected: Option<&Projection>) -> String {
    match projected {
        Some(projected) if projected.unpriced > 0 => format!(
            "{} of {} + {} unpriced",
            totals.cost, projected.cost, projected.unpriced
        ),
        Some(projected) => format!("{} of {}", totals.cost, projected.cost),
        None => totals.cost.to_string(),
    }
}

/// The steady-pace line of a batch: `imggen: 12/200 requests finished: 11 done, 1 failed,
/// 8 in flight, 180 queued; cost $0.1476 of $2.50; 40s, ETA 5m10s`.
pub(crate) fn batch_summary(
    totals: &BatchTotals,
    projected: Option<&Projection>,
    elapsed: Duration,
) -> String {
    let mut parts = vec![format!("{} done", totals.done)];
    if totals.failed > 0 {
        parts.push(format!("{} failed", totals.failed));
    }
    for (count, name) in [(totals.unknown, "unknown"), (totals.pending, "pending")] {
        if count > 0 {
            parts.push(format!("{count} {name}"));
        }
    }
    parts.push(format!("{} in flight", totals.in_flight));
    parts.push(format!("{} queued", totals.queued));
    let mut line = format!(
        "imggen: {}/{} requests finished: {}; cost {}; {}",
        totals.finished(),
        totals.total,
        parts.join(", "),
        spend(totals, projected),
        clock(elapsed)
    );
    if let Some(eta) = totals.eta(elapsed).filter(|eta| !eta.is_zero()) {
        line.push_str(&format!(", ETA {}", clock(eta.max(Duration::from_secs(1)))));
    }
    line
}

/// The steady-pace line while tasks are waited on: `imggen: waiting on 2 tasks: 1 running,
/// 1 queued; 45s`. `statuses` are the tasks not finished, with their last status.
pub(crate) fn tasks_summary(statuses: &[&str], elapsed: Duration) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for status in statuses {
        match counts.iter_mut().find(|(name, _)| name == status) {
            Some((_, count)) => *count += 1,
            None => counts.push((status, 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(name, count)| format!("{count} {name}"))
        .collect();
    format!(
        "imggen: waiting on {} task{}: {}; {}",
        statuses.len(),
        if statuses.len() == 1 { "" } else { "s" },
        parts.join(", "),
        clock(elapsed)
    )
}

/// `12 done, 1 failed, 8 in flight · $0.1476 of $2.50 · ETA 40s`: the batch bar's message,
/// only the counts that are not zero beyond done and in flight.
pub(crate) fn bar_text(
    totals: &BatchTotals,
    projected: Option<&Projection>,
    elapsed: Duration,
) -> String {
    let mut parts = vec![format!("{} done", totals.done)];
    for (count, name) in [
        (totals.failed, "failed"),
        (totals.unknown, "unknown"),
        (totals.pending, "pending"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {name}"));
        }
    }
    parts.push(format!("{} in flight", totals.in_flight));
    let mut text = format!("{} · {}", parts.join(", "), spend(totals, projected));
    if let Some(eta) = totals.eta(elapsed).filter(|eta| !eta.is_zero()) {
        // Whole seconds: a sub-second ETA would flicker on every event.
        let eta = Duration::from_secs(eta.as_secs().max(1));
        text.push_str(&format!(" · ETA {}", HumanDuration(eta)));
    }
    text
}

/// `12s`, `4m05s`, `2h03m`: short enough for a log line, exact enough to read a pace from.
pub(crate) fn clock(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imggen_core::TaskState;

    fn totals() -> BatchTotals {
        let mut totals = BatchTotals::default();
        totals.total = 10;
        totals.done = 3;
        totals.in_flight = 2;
        totals.queued = 5;
        totals.cost = Cost::usd("0.0369".parse().unwrap());
        totals
    }

    fn handle() -> TaskHandle {
        "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3".parse().unwrap()
    }

    const HERO: Option<(&str, usize)> = Some(("hero", 3));

    #[test]
    fn the_batch_bar_shows_what_is_not_zero_the_cost_and_the_eta() {
        let mut totals = totals();
        // Three finished in 30 s, seven left: 70 s.
        assert_eq!(
            bar_text(&totals, None, Duration::from_secs(30)),
            "3 done, 2 in flight · $0.0369 · ETA 70 seconds"
        );
        let projected = Projection {
            cost: Cost::usd("0.15".parse().unwrap()),
            unpriced: 0,
        };
        assert_eq!(
            bar_text(&totals, Some(&projected), Duration::from_secs(30)),
            "3 done, 2 in flight · $0.0369 of $0.15 · ETA 70 seconds",
            "spend so far, and the projected total from the start"
        );
        totals.failed = 1;
        totals.unknown = 1;
        totals.queued = 3;
        assert_eq!(
            bar_text(&totals, None, Duration::ZERO),
            "3 done, 1 failed, 1 unknown, 2 in flight · $0.0369",
            "no ETA before the pace is known"
        );
    }

    #[test]
    fn the_steady_line_of_a_batch_says_done_failed_in_flight_queued_and_cost() {
        let mut totals = totals();
        assert_eq!(
            batch_summary(&totals, None, Duration::from_secs(30)),
            "imggen: 3/10 requests finished: 3 done, 2 in flight, 5 queued; cost $0.0369; 30s, ETA 1m10s"
        );
        let projected = Projection {
            cost: Cost::usd("0.15".parse().unwrap()),
            unpriced: 2,
        };
        assert_eq!(
            batch_summary(&totals, Some(&projected), Duration::from_secs(30)),
            "imggen: 3/10 requests finished: 3 done, 2 in flight, 5 queued; cost $0.0369 of $0.15 + 2 unpriced; 30s, ETA 1m10s"
        );
        totals.failed = 2;
        totals.pending = 1;
        totals.done = 0;
        assert_eq!(
            batch_summary(&totals, None, Duration::ZERO),
            "imggen: 3/10 requests finished: 0 done, 2 failed, 1 pending, 2 in flight, 5 queued; cost $0.0369; 0s",
            "no ETA before the pace is known"
        );
    }

    #[test]
    fn a_short_run_is_counted_without_what_was_done_before() {
        let mut totals = BatchTotals::default();
        totals.total = SHORT_RUN + 5;
        assert!(!is_short(&totals));
        totals.finished_before = 5;
        assert!(is_short(&totals));
    }

    #[test]
    fn each_change_of_a_request_is_one_line_and_a_repeated_status_none() {
        let created = BatchEventKind::Submitted {
            handles: vec![handle()],
        };
        assert_eq!(
            batch_event(HERO, &created, false),
            ["imggen: line 3 (id \"hero\"): created gptimg task gpt-image-2-kUtpnus8fXpDKkuEjayG3"]
        );
        let status = BatchEventKind::Status {
            handle: handle(),
            state: TaskState::Running,
        };
        assert_eq!(
            batch_event(HERO, &status, true),
            ["imggen: line 3 (id \"hero\"): gptimg task gpt-image-2-kUtpnus8fXpDKkuEjayG3 running"]
        );
        assert!(
            batch_event(HERO, &status, false).is_empty(),
            "the same status again"
        );
        let done = BatchEventKind::Done {
            files: vec!["renders/a.png".into(), "renders/b.png".into()],
        };
        assert_eq!(
            batch_event(HERO, &done, false),
            ["imggen: line 3 (id \"hero\"): done: renders/a.png, renders/b.png"]
        );
        let failed = BatchEventKind::Failed {
            error: "MODERATION_FAILED".into(),
        };
        assert_eq!(
            batch_event(HERO, &failed, false),
            ["imggen: line 3 (id \"hero\"): failed: MODERATION_FAILED"]
        );
        assert!(batch_event(None, &BatchEventKind::Started, false).is_empty());
    }

    #[test]
    fn a_created_task_says_its_charge_and_how_to_resume_it() {
        let mut handle = handle();
        assert_eq!(
            created("gptimg", &handle, true),
            "imggen: created gptimg task gpt-image-2-kUtpnus8fXpDKkuEjayG3; if this run stops, resume it with: imggen wait gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3"
        );
        handle.cost = Some(Cost::usd("0.05".parse().unwrap()));
        assert_eq!(
            created("mock", &handle, false),
            "imggen: created mock task gpt-image-2-kUtpnus8fXpDKkuEjayG3 ($0.05)"
        );
    }

    #[test]
    fn waiting_tasks_are_counted_by_status() {
        assert_eq!(
            tasks_summary(&["running", "queued", "running"], Duration::from_secs(75)),
            "imggen: waiting on 3 tasks: 2 running, 1 queued; 1m15s"
        );
        assert_eq!(
            tasks_summary(&["created"], Duration::from_secs(7300)),
            "imggen: waiting on 1 task: 1 created; 2h01m"
        );
    }
}
