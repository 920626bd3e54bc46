//! A create whose outcome is unknown: settled through the providers' task lists where they
//! keep one, after a grace period; otherwise left `unknown`, resubmitted only when asked.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    BatchEventKind, JournalEntry, JournalError, Reconciled, RequestState, Run, UNKNOWN_AFTER_STOP,
    lock,
};
use crate::handle::{self, RequestSummary, TaskHandle};
use crate::provider::ProviderId;
use crate::reconcile::LostTaskSearch;

/// How long to wait still before a provider's task list can be trusted about `entry`'s lost
/// create: `grace` after the latest moment the create may have been sent or answered — its
/// `submitting` time, the time its answer was found lost, and (for a process that stopped)
/// the latest thing the journal recorded before this run, since the process lived until
/// then at least.
fn grace_left(
    now: SystemTime,
    entry: &JournalEntry,
    previous_activity: SystemTime,
    grace: Duration,
) -> Duration {
    let since = entry
        .submitting_at
        .unwrap_or(entry.updated_at)
        .max(entry.updated_at)
        .max(previous_activity);
    grace.saturating_sub(now.duration_since(since).unwrap_or(Duration::ZERO))
}

impl Run {
    /// A request found `submitting` or `unknown` at the start of the run: settle it through
    /// the provider's task list where there is one, resubmit it if the caller said so, and
    /// collect whatever tasks of it are known.
    pub(super) async fn resume_unknown(
        self: &Arc<Self>,
        id: &str,
        resubmit: bool,
    ) -> Result<(), JournalError> {
        match self.reconcile(id).await? {
            Reconciled::Complete => self.collect(id).await,
            Reconciled::Absent => self.submit(id).await,
            Reconciled::Unknown if resubmit => {
                tracing::warn!(request = %id, "resubmitting a request whose outcome is unknown, as asked");
                lock(&self.resubmitted).push(id.to_owned());
                // Known tasks are collected by the submission; only what is missing is sent.
                self.submit(id).await
            }
            Reconciled::Unknown => self.collect(id).await,
        }
    }

    /// The providers a lost create may have gone to.
    pub(super) fn suspects(&self, entry: &JournalEntry) -> Vec<ProviderId> {
        if let Some(provider) = entry.provider {
            return vec![provider];
        }
        let route = &entry.providers;
        if route.is_empty() {
            self.imggen.providers().into_iter().take(1).collect()
        } else {
            route.clone()
        }
    }

    /// Waits until the provider's task list can be trusted for this request's lost create.
    pub(super) async fn grace(&self, id: &str) -> Result<(), JournalError> {
        let entry = self.entry(id)?;
        let suspects = self.suspects(&entry);
        if !suspects.iter().any(|p| self.imggen.lists_recent_tasks(*p)) {
            return Ok(());
        }
        let left = grace_left(
            self.imggen.inner.clock.wall(),
            &entry,
            self.previous_activity,
            self.options.reconcile_grace,
        );
        if !left.is_zero() {
            tracing::info!(request = %id, wait = ?left, "waiting before reading the provider's task list for a lost create");
            let left = self.time_left().map_or(left, |time| time.min(left));
            tokio::select! {
                () = self.cancel.cancelled() => {}
                () = self.imggen.inner.sleeper.sleep(left) => {}
            }
        }
        Ok(())
    }

    /// Settles an `unknown` request through the providers' task lists: adopts what is found,
    /// then `submitted` (all found), `planned` (the rest provably never arrived) or `unknown`.
    pub(super) async fn reconcile(self: &Arc<Self>, id: &str) -> Result<Reconciled, JournalError> {
        let entry = self.entry(id)?;
        let suspects = self.suspects(&entry);
        let listing: Vec<ProviderId> = suspects
            .iter()
            .copied()
            .filter(|p| self.imggen.lists_recent_tasks(*p))
            .collect();
        let original = original_reason(&entry);
        if listing.is_empty() {
            let verdict = decide(&LostCreate {
                original: &original,
                suspects: &suspects,
                listing: &listing,
                unsettled: &[],
                adopted: 0,
                images_missing: entry.images_missing(),
            });
            return self.record(id, verdict, None);
        }
        self.grace(id).await?;
        if self.stopped() {
            return Ok(Reconciled::Unknown);
        }
        self.emit(Some(id), BatchEventKind::Reconciling);
        let _creates = self.creates.write().await;
        // Why a provider's list did not settle it (each one that could not be read fully).
        let mut notes: Vec<String> = Vec::new();
        let mut adopted: Vec<TaskHandle> = Vec::new();
        for provider in &listing {
            let entry = self.entry(id)?;
            let missing = entry.images_missing();
            if missing == 0 {
                break;
            }
            let mut request = entry.request.clone();
            request.n = missing;
            let planned = self
                .imggen
                .provider(*provider)
                .map_err(|error| error.to_string())
                .and_then(|found| {
                    found
                        .plan(&request, self.plan_options)
                        .map_err(|error| error.to_string())
                });
            let plan = match planned {
                Ok(plan) => plan,
                Err(error) => {
                    notes.push(error);
                    continue;
                }
            };
            if self.journal.sending_elsewhere(&request.prompt)? {
                // Its task could be taken for this one's: nothing is adopted from the list.
                notes.push(
                    "another worker of the batch was sending a create with the same prompt meanwhile; run the batch again to settle it"
                        .to_owned(),
                );
                continue;
            }
            let sent_at = entry.submitting_at.unwrap_or(entry.updated_at);
            let known = self.journal.tasks_of(*provider)?;
            let older = known
                .iter()
                .filter(|(_, recorded)| *recorded < sent_at)
                .map(|(task, _)| task.clone())
                .collect::<Vec<_>>();
            let mut search =
                LostTaskSearch::new(*provider, request.prompt.clone(), plan.tasks.len())
                    .claimed(known.into_iter().map(|(task, _)| task))
                    .older(older)
                    .max_entries(self.options.max_list_entries);
            search.deadline = self.time_left();
            match self.imggen.find_lost_tasks(&search).await {
                Ok(Some(lost)) => {
                    let summary = RequestSummary::of(&entry.request);
                    for (found, task) in lost.found.iter().zip(plan.tasks.iter()) {
                        let handle = TaskHandle {
                            version: handle::HANDLE_VERSION,
                            provider: *provider,
                            task_id: found.task_id.clone(),
                            model: task.model.clone(),
                            created_at: Some(handle::format_time(sent_at)),
                            // The list does not say what the task cost.
                            cost: None,
                            images_expected: Some(task.images),
                            summary: Some(summary.clone()),
                            webhook: task.webhook.is_some(),
                        };
                        self.journal.adopt_task(id, &handle)?;
                        adopted.push(handle);
                    }
                    if !lost.conclusive {
                        notes.push(format!(
                            "{provider}'s task list was read to {} entries without settling it",
                            lost.searched
                        ));
                    }
                }
                Ok(None) => notes.push(format!("{provider} keeps no task list after all")),
                Err(error) => {
                    notes.push(format!("could not read {provider}'s task list: {error}"));
                }
            }
        }
        let entry = self.entry(id)?;
        if !adopted.is_empty() {
            lock(&self.adopted).push(id.to_owned());
            self.emit(
                Some(id),
                BatchEventKind::Adopted {
                    handles: adopted.clone(),
                },
            );
        }
        let provider = entry
            .provider
            .or_else(|| adopted.first().map(|h| h.provider))
            .or_else(|| listing.first().copied());
        let verdict = decide(&LostCreate {
            original: &original,
            suspects: &suspects,
            listing: &listing,
            unsettled: &notes,
            adopted: adopted.len(),
            images_missing: entry.images_missing(),
        });
        self.record(id, verdict, provider)
    }

    /// Journals a verdict: `submitted` (with `provider`), `planned` or `unknown`.
    fn record(
        &self,
        id: &str,
        verdict: Verdict,
        provider: Option<ProviderId>,
    ) -> Result<Reconciled, JournalError> {
        match (verdict, provider) {
            (Verdict::Complete, Some(provider)) => {
                self.journal.mark_submitted(id, provider, &[], None)?;
                self.update_cost(&self.entry(id)?);
                Ok(Reconciled::Complete)
            }
            (Verdict::Absent { reason }, _) => {
                self.journal.mark_planned(id, &reason)?;
                Ok(Reconciled::Absent)
            }
            (Verdict::Unknown { reason }, _) => {
                self.journal.mark_unknown(id, None, &[], &reason)?;
                Ok(Reconciled::Unknown)
            }
            // Every task is known but no provider is: cannot happen once a list was read.
            (Verdict::Complete, None) => Ok(Reconciled::Unknown),
        }
    }
}

/// Why the request's outcome is unknown in the first place.
fn original_reason(entry: &JournalEntry) -> String {
    match (entry.state, entry.submitting_at) {
        (RequestState::Submitting, Some(at)) => format!(
            "{UNKNOWN_AFTER_STOP} (the create was started at {})",
            handle::format_time(at)
        ),
        (RequestState::Submitting, None) => UNKNOWN_AFTER_STOP.to_owned(),
        _ => entry
            .error
            .clone()
            .unwrap_or_else(|| UNKNOWN_AFTER_STOP.to_owned()),
    }
}

/// What is known of a lost create once the task lists were read.
#[derive(Debug)]
pub(super) struct LostCreate<'a> {
    /// Why its outcome was unknown.
    pub original: &'a str,
    /// The providers it may have gone to.
    pub suspects: &'a [ProviderId],
    /// Those of them whose task list imggen can read.
    pub listing: &'a [ProviderId],
    /// Why a list that was read did not settle it (empty: every list settled its part).
    pub unsettled: &'a [String],
    /// Tasks found in the lists and adopted.
    pub adopted: usize,
    /// Images still missing after adopting them.
    pub images_missing: u32,
}

/// What becomes of a lost create.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every task it should have made is known: collect them.
    Complete,
    /// The lists prove the missing creates never arrived: send them again (nothing was paid).
    Absent {
        /// What the journal says.
        reason: String,
    },
    /// Nothing could be proved: it may be paid for, so it is not sent again.
    Unknown {
        /// What the journal says.
        reason: String,
    },
}

/// The lost-create decision. Sending again is allowed only when every provider it may have
/// gone to keeps a list, and every list was read to a conclusion: anything less leaves the
/// request unknown, because a task may exist and be paid for.
pub(super) fn decide(facts: &LostCreate<'_>) -> Verdict {
    let original = facts.original;
    if facts.listing.is_empty() {
        let names: Vec<String> = facts.suspects.iter().map(ToString::to_string).collect();
        return Verdict::Unknown {
            reason: format!(
                "{original}; {} keeps no task list imggen can read, so it stays unknown: check the provider's dashboard, then resubmit only if no task was made",
                names.join(" or ")
            ),
        };
    }
    if facts.images_missing == 0 {
        return Verdict::Complete;
    }
    let every_list_read = facts.listing.len() == facts.suspects.len();
    if every_list_read && facts.unsettled.is_empty() {
        let found = if facts.adopted == 0 {
            String::new()
        } else {
            format!(" ({} of its tasks were found)", facts.adopted)
        };
        return Verdict::Absent {
            reason: format!(
                "{original}; the provider's task list proves the lost create never arrived{found}, so it was sent again"
            ),
        };
    }
    let why = if facts.unsettled.is_empty() {
        String::new()
    } else {
        format!(": {}", facts.unsettled.join("; "))
    };
    Verdict::Unknown {
        reason: format!("{original}; the provider's task list could not settle it{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_list_is_read_only_a_grace_period_after_the_create_could_have_been_sent() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs);
        let entry = JournalEntry {
            id: "a".into(),
            line: 1,
            fingerprint: String::new(),
            request: crate::GenerationRequest::new("x"),
            providers: vec![imggen_runblob::provider::ID],
            state: RequestState::Submitting,
            provider: None,
            error: None,
            attempts: 1,
            submitting_at: Some(at(0)),
            updated_at: at(0),
            listing: 1,
            tasks: Vec::new(),
        };
        let grace = Duration::from_secs(90);
        // Killed at once: 90 s after the create was started.
        assert_eq!(
            grace_left(at(30), &entry, at(0), grace),
            Duration::from_secs(60)
        );
        // The process journaled other things until 50 s: it may have sent the create then.
        assert_eq!(
            grace_left(at(60), &entry, at(50), grace),
            Duration::from_secs(80)
        );
        // Long ago: read the list now.
        assert_eq!(grace_left(at(500), &entry, at(50), grace), Duration::ZERO);
        // An answer found lost at 40 s counts from then.
        let lost = JournalEntry {
            state: RequestState::Unknown,
            updated_at: at(40),
            ..entry
        };
        assert_eq!(
            grace_left(at(100), &lost, at(0), grace),
            Duration::from_secs(30)
        );
    }

    const RUNBLOB: ProviderId = ProviderId::new("runblob");
    const GPTIMG: ProviderId = ProviderId::new("gptimg");

    fn facts<'a>(
        suspects: &'a [ProviderId],
        listing: &'a [ProviderId],
        unsettled: &'a [String],
    ) -> LostCreate<'a> {
        LostCreate {
            original: "the answer was lost",
            suspects,
            listing,
            unsettled,
            adopted: 0,
            images_missing: 1,
        }
    }

    #[test]
    fn without_a_list_to_read_a_lost_create_stays_unknown() {
        let verdict = decide(&facts(&[GPTIMG], &[], &[]));
        let Verdict::Unknown { reason } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.starts_with("the answer was lost; gptimg keeps no task list"));
    }

    #[test]
    fn only_a_conclusive_read_of_every_suspects_list_sends_it_again() {
        // One list, read to the end without the task: the create never arrived.
        assert!(matches!(
            decide(&facts(&[RUNBLOB], &[RUNBLOB], &[])),
            Verdict::Absent { .. }
        ));
        // It may have gone to a provider whose list cannot be read: unknown.
        assert!(matches!(
            decide(&facts(&[RUNBLOB, GPTIMG], &[RUNBLOB], &[])),
            Verdict::Unknown { .. }
        ));
        // A list read only in part proves nothing.
        let partial =
            ["runblob's task list was read to 500 entries without settling it".to_owned()];
        let Verdict::Unknown { reason } = decide(&facts(&[RUNBLOB], &[RUNBLOB], &partial)) else {
            panic!("unknown")
        };
        assert!(reason.ends_with(
            "could not settle it: runblob's task list was read to 500 entries without settling it"
        ));
    }

    #[test]
    fn every_task_found_completes_it_and_a_partial_find_says_so() {
        let mut found = facts(&[RUNBLOB], &[RUNBLOB], &[]);
        found.adopted = 1;
        found.images_missing = 0;
        assert_eq!(decide(&found), Verdict::Complete);
        found.images_missing = 1;
        let Verdict::Absent { reason } = decide(&found) else {
            panic!("absent")
        };
        assert!(reason.contains("(1 of its tasks were found)"), "{reason}");
    }
}
