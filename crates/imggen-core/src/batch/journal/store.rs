//! Where a journal keeps its rows. [`Journal`](super::Journal) decides (with
//! [`transitions`](super::transitions)); a store only reads and writes, each write one
//! transaction that is durable when it returns. SQLite ([`SqliteStore`](super::SqliteStore))
//! is the one built in; another store is another implementation of these two traits.
//!
//! A store one process holds alone (SQLite's file lock) needs nothing more. A store several
//! workers drain together (PostgreSQL) also hands out **claims**: a worker takes the requests
//! it works on as its own, under a lease it renews while it lives; another worker takes over
//! a request whose lease ran out; and nothing is paid for under a lapsed claim
//! ([`JournalTx::check_claim`] is asked inside the transaction that writes `submitting`).

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::transitions::Known;
use super::{JournalEntry, JournalError, RequestState, SavedBy, Tally, TaskOutcome};
use crate::batch::input::BatchRequest;
use crate::handle::TaskHandle;
use crate::provider::ProviderId;

/// A journal's storage.
pub trait JournalStore: Send + Sync + fmt::Debug {
    /// Where it is, for messages.
    fn path(&self) -> &Path;

    /// Runs `change` in one transaction, committed (and durable) when it returns `Ok`, rolled
    /// back when it returns `Err`. `what` says what failed, should the store fail. A store may
    /// run `change` again when an earlier try was rolled back by no fault of its own (a
    /// database that went away): it reads what it decides on inside the transaction.
    fn write(
        &self,
        what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError>;

    /// One request (`Some(id)`) or every request in line order, each with its tasks in the
    /// order they were recorded.
    fn read(&self, only: Option<&str>) -> Result<Vec<JournalEntry>, JournalError>;

    /// Up to `limit` requests in `states` (every state when empty), in line order, after the
    /// request at `(line, id)` — the runner's way through a journal of a million rows, a page
    /// at a time.
    fn page(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, JournalError>;

    /// How many requests stand where (each marked whether `listing` found it in the batch
    /// file), and what they cost.
    fn tally(&self, listing: u64) -> Result<Tally, JournalError>;

    /// The latest listing recorded (0 for an empty journal).
    fn latest_listing(&self) -> Result<u64, JournalError>;

    /// The latest time anything was written (the epoch for an empty journal).
    fn last_activity(&self) -> Result<SystemTime, JournalError>;

    /// Every task of `provider` it holds, with when it was recorded.
    fn tasks_of(&self, provider: ProviderId) -> Result<Vec<(String, SystemTime)>, JournalError>;

    /// [`write`](Self::write), one such write at a time across every worker of the batch:
    /// loading the batch file, which compares and adds requests as a whole.
    fn write_alone(
        &self,
        what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.write(what, change)
    }

    /// Takes up to `limit` requests in `states`, in line order after the request at
    /// `(line, id)`, as this worker's until it [`release`](Self::release)s them or stops
    /// renewing its lease. [`Claim::Free`] takes what no other worker holds; [`Claim::Lapsed`]
    /// only what another worker held until its lease ran out (it died). A store one process
    /// holds alone hands out every request, and has no lapsed ones.
    fn claim(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
        which: Claim,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        match which {
            Claim::Free => self.page(states, after, limit),
            Claim::Lapsed => Ok(Vec::new()),
        }
    }

    /// Gives a request back once this worker's step on it ended: any worker may take it from
    /// here (the next run, when it is not finished).
    fn release(&self, _id: &str) -> Result<(), JournalError> {
        Ok(())
    }

    /// How long until the first lease another worker holds on an unfinished request runs
    /// out (zero: one already has); `None` when no other worker holds one.
    fn held_elsewhere(&self) -> Result<Option<Duration>, JournalError> {
        Ok(None)
    }

    /// Whether another worker is sending a create with this prompt at this moment: a task
    /// list cannot tell its task from a lost create's, so nothing is adopted meanwhile.
    fn sending_elsewhere(&self, _prompt: &str) -> Result<bool, JournalError> {
        Ok(false)
    }
}

/// Which requests [`JournalStore::claim`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Those no live worker holds: never claimed, given back, this worker's own, or whose
    /// holder's lease ran out.
    Free,
    /// Only those another worker held until its lease ran out: taken over.
    Lapsed,
}

/// The reads and writes of one transaction.
pub trait JournalTx {
    /// Whether the journal holds no request at all.
    fn is_empty(&mut self) -> Result<bool, JournalError>;

    /// Holds the request for this worker before anything is paid for — still its own, or held
    /// by no live worker — with its lease renewed: [`JournalError::ClaimLost`] when another
    /// worker holds it (this one's lease ran out and was taken over). A store one process
    /// holds alone always does.
    fn check_claim(&mut self, _id: &str) -> Result<(), JournalError> {
        Ok(())
    }

    /// A request's state, `None` when there is no such request.
    fn state(&mut self, id: &str) -> Result<Option<RequestState>, JournalError>;

    /// What is held under a request's id, for planning.
    fn known(&mut self, id: &str) -> Result<Option<Known>, JournalError>;

    /// Adds a request, `planned`, found by `listing`.
    fn insert_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError>;

    /// Replaces what is held under the request's id: `planned`, no provider, no error, found
    /// by `listing`.
    fn replace_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError>;

    /// Records that `listing` found a request it holds (same fingerprint) in the batch file:
    /// its line (the file may have been edited) and, while nothing was sent for it
    /// (`planned`), its route.
    fn relist(&mut self, request: &BatchRequest, listing: u64) -> Result<(), JournalError>;

    /// Moves a request to `state`, touching its time.
    fn set_state(
        &mut self,
        id: &str,
        state: RequestState,
        at: SystemTime,
    ) -> Result<(), JournalError>;

    /// Records that a create is about to be sent: its route, the time, one more attempt.
    fn begin_submitting(
        &mut self,
        id: &str,
        providers: &[ProviderId],
        at: SystemTime,
    ) -> Result<(), JournalError>;

    /// Sets a request's note, and its provider unless `provider` is `None` (kept); touches
    /// its time when `touched` is given.
    fn annotate(
        &mut self,
        id: &str,
        provider: Option<ProviderId>,
        error: Option<&str>,
        touched: Option<SystemTime>,
    ) -> Result<(), JournalError>;

    /// The request a task belongs to, `None` when it is not recorded.
    fn task_owner(
        &mut self,
        provider: ProviderId,
        task_id: &str,
    ) -> Result<Option<String>, JournalError>;

    /// Records a task of a request.
    fn insert_task(
        &mut self,
        id: &str,
        handle: &TaskHandle,
        adopted: bool,
        at: SystemTime,
    ) -> Result<(), JournalError>;

    /// Sets how a task ended; `false` when there is no such task.
    fn set_task_outcome(
        &mut self,
        provider: ProviderId,
        task_id: &str,
        outcome: Option<TaskOutcome>,
        files: &[String],
        error: Option<&str>,
        saved: Option<&SavedBy>,
    ) -> Result<bool, JournalError>;
}
