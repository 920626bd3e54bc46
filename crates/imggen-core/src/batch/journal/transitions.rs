//! The journal's rules, whatever stores it: which state may follow which, what planning does
//! with a request the journal already has, and where a request ends once its tasks have. Pure
//! functions — a store only applies what they decide.

use super::{JournalEntry, RequestState, TaskOutcome};

/// The states a request may move to `to` from.
///
/// - `submitting` is written before a create is sent: from `planned`, or from `unknown` when
///   the caller chose to resubmit.
/// - `submitted` after the creates answered: from `submitting`, from `unknown` once its tasks
///   were found, or from `planned` when every task was already recorded.
/// - `unknown` when a create's answer was lost (again, while it stays unsettled).
/// - `planned` again when nothing was charged, or a task list proved the create never arrived.
/// - `done` and `failed` only once submitted.
pub fn allowed_from(to: RequestState) -> &'static [RequestState] {
    use RequestState::{Done, Failed, Planned, Submitted, Submitting, Unknown};
    match to {
        Submitting => &[Planned, Unknown],
        Submitted => &[Planned, Submitting, Unknown],
        Unknown | Planned => &[Submitting, Unknown],
        Done | Failed => &[Submitted],
    }
}

/// Whether a request in `from` may move to `to`.
pub fn allows(from: RequestState, to: RequestState) -> bool {
    allowed_from(to).contains(&from)
}

/// What planning does with one request of the batch file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanAction {
    /// The journal does not have it: add it, `planned`.
    Add,
    /// It has it, with the same fingerprint: keep it (its line may have moved).
    Keep,
    /// It has another request under the id, but nothing was paid for it: replace it.
    Replace,
    /// It has another request under the id, and it may be paid for: refuse the batch.
    Mismatch,
}

/// What the journal already holds under a request's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its state.
    pub state: RequestState,
    /// How many tasks it has.
    pub tasks: u64,
}

/// What planning does with a request whose fingerprint is `fingerprint`, given what the
/// journal holds under its id: another request is replaced only when nothing was paid for it
/// (it is `planned`, or `failed` without a task).
pub fn plan_action(known: Option<&Known>, fingerprint: &str) -> PlanAction {
    match known {
        None => PlanAction::Add,
        Some(known) if known.fingerprint == fingerprint => PlanAction::Keep,
        Some(Known {
            state: RequestState::Planned | RequestState::Failed,
            tasks: 0,
            ..
        }) => PlanAction::Replace,
        Some(_) => PlanAction::Mismatch,
    }
}

/// Where a `submitted` request ends once every task has: `done` when all succeeded and every
/// image asked for was made, `failed` (with why) otherwise. `None` while it is not ready: not
/// submitted, no task, or a task still running.
pub fn finish(entry: &JournalEntry) -> Option<(RequestState, Option<String>)> {
    if entry.state != RequestState::Submitted
        || entry.tasks.is_empty()
        || entry.tasks.iter().any(|task| task.outcome.is_none())
    {
        return None;
    }
    let mut problems: Vec<String> = entry
        .tasks
        .iter()
        .filter(|task| task.outcome == Some(TaskOutcome::Failed))
        .map(|task| {
            format!(
                "task {} failed: {}",
                task.handle,
                task.error.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    let missing = entry.images_missing();
    if problems.is_empty() && missing == 0 {
        return Some((RequestState::Done, None));
    }
    if missing > 0 {
        problems.push(format!(
            "{missing} of {} images were never accepted{}",
            entry.request.n,
            entry
                .error
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        ));
    }
    Some((RequestState::Failed, Some(problems.join("; "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestState::{Done, Failed, Planned, Submitted, Submitting, Unknown};

    #[test]
    fn a_request_can_never_be_sent_twice_from_where_it_stands() {
        // Only a request nothing was sent for (or one the caller chose to resubmit) is sent.
        for from in [Submitting, Submitted, Done, Failed] {
            assert!(!allows(from, Submitting), "{from} → submitting");
        }
        assert!(allows(Planned, Submitting) && allows(Unknown, Submitting));
        // Nothing finishes before it is submitted, and nothing comes back from the end.
        for to in [Done, Failed] {
            assert_eq!(allowed_from(to), [Submitted]);
        }
        for to in [Planned, Submitting, Submitted, Unknown] {
            assert!(!allows(Done, to) && !allows(Failed, to), "→ {to}");
        }
    }

    #[test]
    fn planning_replaces_only_what_nothing_was_paid_for() {
        let known = |state, tasks| Known {
            fingerprint: "old".into(),
            state,
            tasks,
        };
        assert_eq!(plan_action(None, "new"), PlanAction::Add);
        assert_eq!(
            plan_action(Some(&known(Submitted, 1)), "old"),
            PlanAction::Keep
        );
        assert_eq!(
            plan_action(Some(&known(Planned, 0)), "new"),
            PlanAction::Replace
        );
        assert_eq!(
            plan_action(Some(&known(Failed, 0)), "new"),
            PlanAction::Replace
        );
        for (state, tasks) in [(Failed, 1), (Submitting, 0), (Unknown, 0), (Done, 1)] {
            assert_eq!(
                plan_action(Some(&known(state, tasks)), "new"),
                PlanAction::Mismatch,
                "{state} with {tasks} tasks"
            );
        }
    }
}
