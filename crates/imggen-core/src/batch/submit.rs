//! Sending a request's creates: journaled `submitting` before, each task the moment it
//! exists, `submitted` (or `unknown`) after.

use std::sync::Arc;

use super::{
    BatchEventKind, JournalError, ORPHAN_NOT_SENT, Reconciled, RequestState, Run, collect,
};
use crate::error::Error;
use crate::handle::TaskHandle;
use crate::submit::SubmitOptions;

/// Creates started for one request in one run, at most, when each is lost and then proved
/// never to have arrived.
const MAX_ROUNDS: u32 = 3;

impl Run {
    /// Sends the request's missing images — again when a lost create is proved never to have
    /// arrived — then collects them.
    pub(super) async fn submit(self: &Arc<Self>, id: &str) -> Result<(), JournalError> {
        if self.is_orphan(&self.entry(id)?) {
            // Removed from the batch file: what it paid for is collected, nothing is sent.
            return self.journal.set_error(id, Some(ORPHAN_NOT_SENT));
        }
        for _round in 0..MAX_ROUNDS {
            if self.stopped() {
                return Ok(());
            }
            if let Some(spending) = &self.spending
                && spending.reached()
            {
                // The cap stopped a create: nothing more is sent in this run.
                return self.journal.set_error(
                    id,
                    Some(&format!(
                        "not sent: the spending cap ({}) was reached",
                        spending.cap()
                    )),
                );
            }
            let entry = self.entry(id)?;
            let missing = entry.images_missing();
            if missing == 0 {
                // Every image already has a task (recorded before a stop): nothing to send.
                if let Some(first) = entry.tasks.first()
                    && entry.state != RequestState::Submitted
                {
                    self.journal
                        .mark_submitted(id, first.handle.provider, &[], None)?;
                }
                return self.collect(id).await;
            }
            // What the journal holds is what the batch file asks (same fingerprint), with the
            // file's route while nothing was sent.
            let mut request = entry.request.clone();
            request.n = missing;
            let route = entry.providers.clone();
            match self.journal.mark_submitting(id, &route) {
                Ok(()) => {}
                Err(JournalError::ClaimLost { .. }) => {
                    tracing::warn!(request = %id, "this worker's claim on the request ran out before its create: another worker carries it on, and nothing was sent from here");
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
            self.emit(
                Some(id),
                BatchEventKind::Submitting {
                    attempt: entry.attempts + 1,
                },
            );
            let journal = Arc::clone(&self.journal);
            let owner = id.to_owned();
            let mut submit =
                SubmitOptions::fallback(route).on_handle(move |handle: &TaskHandle| {
                    if let Err(error) = journal.record_task(&owner, handle) {
                        tracing::error!(
                            request = %owner,
                            handle = %handle.to_json(),
                            %error,
                            "could not journal a paid task: keep this handle to resume it"
                        );
                    }
                });
            submit.deadline = self.time_left();
            submit.spending = self.spending.clone();
            let result = {
                let _creates = self.creates.read().await;
                self.imggen.submit(&request, &submit).await
            };
            match result {
                Ok(submission) => {
                    self.journal
                        .mark_submitted(id, submission.provider, &submission.handles, None)
                        .inspect_err(|_| collect::log_unjournaled(id, &submission.handles))?;
                    self.update_cost(&self.entry(id)?);
                    self.emit(
                        Some(id),
                        BatchEventKind::Submitted {
                            handles: submission.handles,
                        },
                    );
                    return self.collect(id).await;
                }
                Err(Error::CreateOutcomeUnknown(lost)) => {
                    self.journal.mark_unknown(
                        id,
                        Some(lost.call.provider),
                        &lost.accepted,
                        &lost.to_string(),
                    )?;
                    self.update_cost(&self.entry(id)?);
                    match self.reconcile(id).await? {
                        Reconciled::Complete => return self.collect(id).await,
                        Reconciled::Absent => continue,
                        Reconciled::Unknown => return self.collect(id).await,
                    }
                }
                Err(error) => {
                    let accepted: Vec<TaskHandle> = error.handles().into_iter().cloned().collect();
                    if let Some(first) = accepted.first() {
                        // Some tasks were created (and charged) before the refusal: collect
                        // them; the request ends failed, short of images.
                        self.journal.mark_submitted(
                            id,
                            first.provider,
                            &accepted,
                            Some(&error.to_string()),
                        )?;
                        self.update_cost(&self.entry(id)?);
                        return self.collect(id).await;
                    }
                    // Nothing was charged: planned again, for the next run.
                    let mut reason = error.to_string();
                    if let Some(advice) = error.advice() {
                        reason = format!("{reason} ({advice})");
                    }
                    self.journal.mark_planned(id, &reason)?;
                    return Ok(());
                }
            }
        }
        self.journal.set_error(
            id,
            Some(&format!(
                "the answers to {MAX_ROUNDS} creates were lost in this run, each proved never to have arrived; run the batch again"
            )),
        )
    }
}
