//! The batch journal: one row per request and one per task, written **before** each
//! paid step and **after** it, so that a process killed at any instant — `kill -9` included —
//! leaves a record from which the next run knows what was paid for and what was not.
//!
//! A request moves `planned → submitting → submitted → done | failed`; `unknown` is a create
//! whose answer was lost. Every change is one transaction; the write-ahead log is synced on
//! every commit (`synchronous = FULL`), because a lost "submitting" would mean paying twice.
//! A task id is recorded the moment its create answers (from
//! [`SubmitOptions::on_handle`](crate::SubmitOptions::on_handle)) and is never dropped; no task
//! can belong to two requests (a unique index says so).
//!
//! A SQLite journal is held with an exclusive lock while open, so a second process on the
//! same journal fails at once instead of submitting the same requests again. A PostgreSQL
//! journal is shared instead: each process claims the requests it works on
//! ([`JournalStore::claim`]), and nothing is paid for under a claim another holds.
//!
//! It is built in rooms: the typed rows ([`JournalEntry`], [`JournalTask`]), the rules
//! ([`transitions`]: which state may follow which, what planning keeps or replaces, how a
//! request ends), and the storage behind the [`JournalStore`] trait — SQLite
//! ([`SqliteStore`]) built in. [`Journal`] applies the rules to a store; another store is one
//! more implementation of [`JournalStore`], the rules unchanged.

mod error;
#[cfg(test)]
mod memory_tests;

/// What a test's worker records with the files it saves.
#[cfg(test)]
fn test_saved() -> SavedBy {
    SavedBy {
        worker: "test:1".into(),
        dir: "/renders".into(),
    }
}
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
mod sqlite;
mod store;
mod stored;
pub mod transitions;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use imggen_http::time::{Clock, SystemClock};

pub use error::JournalError;
#[cfg(feature = "postgres")]
pub use postgres::{DEFAULT_LEASE, DEFAULT_OUTAGE_PATIENCE, PgJournalStore};
pub use rows::{JournalEntry, JournalTask, Planned, RequestState, SavedBy, Tally, TaskOutcome};
pub use sqlite::SqliteStore;
pub use store::{Claim, JournalStore, JournalTx};

use crate::batch::input::BatchRequest;
use crate::handle::TaskHandle;
use crate::provider::ProviderId;
use transitions::PlanAction;

/// The journal format this imggen writes and reads.
/// Format 2 added the listing each request was last found by, and indexes for reading the
/// journal a page at a time; format 3 who saved each task's images, and where. An older
/// journal is upgraded when opened.
pub const JOURNAL_VERSION: i32 = 3;

/// What [`Journal::plan_each`] hands each request to.
pub type PlanOne<'a> = dyn FnMut(&BatchRequest) -> Result<(), JournalError> + 'a;

/// The journal's file name inside the output directory, by default.
pub const DEFAULT_JOURNAL_NAME: &str = "imggen-journal.sqlite";

/// The journal of one batch: the [`transitions`] applied to a [`JournalStore`]. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Journal {
    store: Box<dyn JournalStore>,
    clock: Arc<dyn Clock>,
}

impl Journal {
    /// Opens (or creates) the SQLite journal at `path`, on the system clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, JournalError> {
        Journal::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens (or creates) the SQLite journal at `path`; its times come from `clock`.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Journal, JournalError> {
        Ok(Journal::with_store(
            Box::new(SqliteStore::open(path)?),
            clock,
        ))
    }

    /// A journal kept in `store`, on the system clock.
    pub fn from_store(store: Box<dyn JournalStore>) -> Journal {
        Journal::with_store(store, Arc::new(SystemClock))
    }

    /// A journal kept in `store`; its times come from `clock`.
    pub fn with_store(store: Box<dyn JournalStore>, clock: Arc<dyn Clock>) -> Journal {
        Journal { store, clock }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    fn now(&self) -> SystemTime {
        self.clock.wall()
    }

    fn no_such_request(&self, id: &str) -> JournalError {
        JournalError::NoSuchRequest {
            path: self.path().to_path_buf(),
            id: id.to_owned(),
        }
    }

    /// The request's state; an error when there is no such request.
    fn state_of(&self, tx: &mut dyn JournalTx, id: &str) -> Result<RequestState, JournalError> {
        tx.state(id)?.ok_or_else(|| self.no_such_request(id))
    }

    /// Moves `id` to `to`, when the [`transitions`] allow it from where it stands.
    fn transition(
        &self,
        tx: &mut dyn JournalTx,
        id: &str,
        to: RequestState,
    ) -> Result<(), JournalError> {
        let from = self.state_of(tx, id)?;
        if !transitions::allows(from, to) {
            return Err(JournalError::Transition {
                path: self.path().to_path_buf(),
                id: id.to_owned(),
                from,
                to,
            });
        }
        tx.set_state(id, to, self.now())
    }

    /// Records a task of `id`, once: the same task again is nothing, a task of another
    /// request is an error (no task belongs to two requests).
    fn insert_task(
        &self,
        tx: &mut dyn JournalTx,
        id: &str,
        handle: &TaskHandle,
        adopted: bool,
    ) -> Result<(), JournalError> {
        match tx.task_owner(handle.provider, &handle.task_id)? {
            Some(owner) if owner == id => Ok(()),
            Some(owner) => Err(JournalError::TaskClaimed {
                path: self.path().to_path_buf(),
                id: id.to_owned(),
                task: handle.to_string(),
                owner,
            }),
            None => tx.insert_task(id, handle, adopted, self.now()),
        }
    }

    /// Adds the requests it does not have, as `planned`, in one transaction — after checking
    /// every one it has: a request journaled under the same id with another fingerprint is a
    /// [`JournalError::Mismatch`] (nothing is written), unless nothing was paid for it (it is
    /// `planned`, or `failed` without a task), in which case the new request replaces it.
    pub fn plan(&self, requests: &[BatchRequest]) -> Result<Planned, JournalError> {
        let listing = self.next_listing()?;
        self.plan_listed(requests, listing)
    }

    /// A new listing: the mark a run puts on every request it finds in the batch file, so
    /// that the requests it did not find (the file was edited) are known without holding
    /// the file's ids in memory.
    pub fn next_listing(&self) -> Result<u64, JournalError> {
        Ok(self.store.latest_listing()?.saturating_add(1))
    }

    /// [`plan`](Self::plan) under `listing`: every request given is marked found by it.
    pub fn plan_listed(
        &self,
        requests: &[BatchRequest],
        listing: u64,
    ) -> Result<Planned, JournalError> {
        self.plan_each(listing, &mut |each| {
            requests.iter().try_for_each(&mut *each)
        })
    }

    /// [`plan_listed`](Self::plan_listed) for requests `feed` hands over one at a time — a
    /// batch file read a line at a time — in one transaction: every request is checked,
    /// and on a [`JournalError::Mismatch`] (listing every one) nothing is written. `feed`'s own
    /// error rolls the transaction back too. Ids must be unique (as a batch's are).
    pub fn plan_each(
        &self,
        listing: u64,
        feed: &mut dyn FnMut(&mut PlanOne<'_>) -> Result<(), JournalError>,
    ) -> Result<Planned, JournalError> {
        let mut planned = Planned::default();
        // One load at a time across the batch's workers: each compares with what the others
        // wrote.
        self.store
            .write_alone("could not plan the requests", &mut |tx| {
                planned = Planned::default();
                // A journal with no request has nothing to compare a request with: a million
                // lines are inserted without a million lookups.
                let fresh = tx.is_empty()?;
                let mut mismatches = Vec::new();
                let now = self.now();
                feed(&mut |request| {
                    let fingerprint = request.fingerprint();
                    let known = if fresh { None } else { tx.known(&request.id)? };
                    let action = transitions::plan_action(known.as_ref(), &fingerprint);
                    if action == PlanAction::Mismatch {
                        mismatches.push((request.id.clone(), request.line));
                    }
                    if !mismatches.is_empty() {
                        // Rolled back at the end: only the mismatches are still looked for.
                        return Ok(());
                    }
                    match action {
                        PlanAction::Keep => {
                            planned.kept += 1;
                            tx.relist(request, listing)
                        }
                        PlanAction::Add => {
                            planned.added += 1;
                            tx.insert_request(request, &fingerprint, now, listing)
                        }
                        _ => {
                            planned.replaced += 1;
                            tx.replace_request(request, &fingerprint, now, listing)
                        }
                    }
                })?;
                if mismatches.is_empty() {
                    Ok(())
                } else {
                    Err(JournalError::Mismatch {
                        path: self.path().to_path_buf(),
                        mismatches: std::mem::take(&mut mismatches),
                    })
                }
            })?;
        Ok(planned)
    }

    /// Takes up to `limit` requests in `states` as this worker's: see [`JournalStore::claim`].
    pub fn claim(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
        which: Claim,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        self.store.claim(states, after, limit, which)
    }

    /// Gives a request back: see [`JournalStore::release`].
    pub fn release(&self, id: &str) -> Result<(), JournalError> {
        self.store.release(id)
    }

    /// When another worker's first lease runs out: see [`JournalStore::held_elsewhere`].
    pub fn held_elsewhere(&self) -> Result<Option<std::time::Duration>, JournalError> {
        self.store.held_elsewhere()
    }

    /// Whether another worker is sending this prompt: see [`JournalStore::sending_elsewhere`].
    pub fn sending_elsewhere(&self, prompt: &str) -> Result<bool, JournalError> {
        self.store.sending_elsewhere(prompt)
    }

    /// Up to `limit` requests in `states` (all when empty), in line order, after the request
    /// at `(line, id)`: see [`JournalStore::page`].
    pub fn page(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        self.store.page(states, after, limit)
    }

    /// How many requests stand where, and what they cost: see [`JournalStore::tally`].
    pub fn tally(&self, listing: u64) -> Result<Tally, JournalError> {
        self.store.tally(listing)
    }

    /// Written **before** a create is sent: `planned` (or `unknown`, when the caller chose to
    /// resubmit it) → `submitting`, with the route and the time.
    pub fn mark_submitting(&self, id: &str, providers: &[ProviderId]) -> Result<(), JournalError> {
        self.store
            .write("could not record a submission", &mut |tx| {
                tx.check_claim(id)?;
                self.transition(tx, id, RequestState::Submitting)?;
                tx.begin_submitting(id, providers, self.now())
            })
    }

    /// Records a task of a request the moment it exists (idempotent). The state does not
    /// change: the request stays `submitting` until [`mark_submitted`](Self::mark_submitted).
    pub fn record_task(&self, id: &str, handle: &TaskHandle) -> Result<(), JournalError> {
        // The handle in what a store says when it cannot write at once (a database that went
        // away): a person then holds it, whatever happens next.
        let what = format!(
            "could not record paid task {} of request {id:?}",
            handle.to_json()
        );
        self.store.write(&what, &mut |tx| {
            self.state_of(tx, id)?;
            self.insert_task(tx, id, handle, false)
        })
    }

    /// Records a task found in the provider's list for a lost create.
    pub fn adopt_task(&self, id: &str, handle: &TaskHandle) -> Result<(), JournalError> {
        self.store.write("could not record a task", &mut |tx| {
            self.state_of(tx, id)?;
            self.insert_task(tx, id, handle, true)
        })
    }

    /// Written **after** the creates answered: `submitting` (or `unknown`, when its tasks were
    /// found, or `planned` with every task already recorded) → `submitted`, with every handle
    /// and, when fewer tasks were accepted than asked for, why (`note`).
    pub fn mark_submitted(
        &self,
        id: &str,
        provider: ProviderId,
        handles: &[TaskHandle],
        note: Option<&str>,
    ) -> Result<(), JournalError> {
        self.store
            .write("could not record a submission", &mut |tx| {
                self.transition(tx, id, RequestState::Submitted)?;
                for handle in handles {
                    self.insert_task(tx, id, handle, false)?;
                }
                tx.annotate(id, Some(provider), note, None)
            })
    }

    /// A create's answer was lost: `submitting` → `unknown`, keeping the tasks that were
    /// accepted and the facts (`provider` the lost create went to, when known).
    pub fn mark_unknown(
        &self,
        id: &str,
        provider: Option<ProviderId>,
        handles: &[TaskHandle],
        reason: &str,
    ) -> Result<(), JournalError> {
        self.store
            .write("could not record an unknown outcome", &mut |tx| {
                self.transition(tx, id, RequestState::Unknown)?;
                for handle in handles {
                    self.insert_task(tx, id, handle, false)?;
                }
                tx.annotate(id, provider, Some(reason), None)
            })
    }

    /// Nothing was charged for the create (a refusal), or the provider's list proved it never
    /// arrived: back to `planned`, with why.
    pub fn mark_planned(&self, id: &str, reason: &str) -> Result<(), JournalError> {
        self.store.write("could not record a request", &mut |tx| {
            self.transition(tx, id, RequestState::Planned)?;
            tx.annotate(id, None, Some(reason), None)
        })
    }

    /// A task's images are on disk (`files`: names in the output directory `saved` names).
    pub fn task_succeeded(
        &self,
        provider: ProviderId,
        task_id: &str,
        files: &[String],
        saved: &SavedBy,
    ) -> Result<(), JournalError> {
        self.update_task(
            provider,
            task_id,
            Some(TaskOutcome::Succeeded),
            files,
            None,
            Some(saved),
        )
    }

    /// A task failed (`error`: the provider's code and words).
    pub fn task_failed(
        &self,
        provider: ProviderId,
        task_id: &str,
        error: &str,
    ) -> Result<(), JournalError> {
        self.update_task(
            provider,
            task_id,
            Some(TaskOutcome::Failed),
            &[],
            Some(error),
            None,
        )
    }

    fn update_task(
        &self,
        provider: ProviderId,
        task_id: &str,
        outcome: Option<TaskOutcome>,
        files: &[String],
        error: Option<&str>,
        saved: Option<&SavedBy>,
    ) -> Result<(), JournalError> {
        self.store.write("could not record a task", &mut |tx| {
            if tx.set_task_outcome(provider, task_id, outcome, files, error, saved)? {
                Ok(())
            } else {
                Err(self.no_such_request(&format!("{provider}:{task_id}")))
            }
        })
    }

    /// Sets a request's note (why it is not finished) without changing its state.
    pub fn set_error(&self, id: &str, error: Option<&str>) -> Result<(), JournalError> {
        self.store.write("could not record a request", &mut |tx| {
            self.state_of(tx, id)?;
            tx.annotate(id, None, error, Some(self.now()))
        })
    }

    /// Once every task of a `submitted` request has ended: `done` when all succeeded and
    /// every image asked for was made, `failed` otherwise ([`transitions::finish`]). Returns
    /// the state it is in.
    pub fn finish(&self, id: &str) -> Result<RequestState, JournalError> {
        let entry = self.entry(id)?.ok_or_else(|| self.no_such_request(id))?;
        let Some((state, error)) = transitions::finish(&entry) else {
            return Ok(entry.state);
        };
        self.store.write("could not finish a request", &mut |tx| {
            self.transition(tx, id, state)?;
            tx.annotate(id, None, error.as_deref(), None)
        })?;
        Ok(state)
    }

    /// One request.
    pub fn entry(&self, id: &str) -> Result<Option<JournalEntry>, JournalError> {
        Ok(self.store.read(Some(id))?.into_iter().next())
    }

    /// Every request, in line order.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        self.store.read(None)
    }

    /// The latest time anything was journaled (the epoch for an empty journal): a process
    /// that stopped while writing this journal stopped after it.
    pub fn last_activity(&self) -> Result<SystemTime, JournalError> {
        self.store.last_activity()
    }

    /// Every task of `provider` the journal knows, with when it learned of it: the tasks
    /// already claimed, when a lost create is looked for.
    pub fn tasks_of(
        &self,
        provider: ProviderId,
    ) -> Result<Vec<(String, SystemTime)>, JournalError> {
        self.store.tasks_of(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use rusqlite::Connection;

    use super::stored::{from_millis, millis};
    use crate::cost::Cost;
    use crate::request::GenerationRequest;
    use imggen_http::time::ManualTime;

    fn request(id: &str, line: usize, prompt: &str) -> BatchRequest {
        BatchRequest::new(
            id,
            line,
            GenerationRequest::new(prompt),
            vec![ProviderId::new("runblob")],
        )
    }

    fn handle(task: &str) -> TaskHandle {
        TaskHandle::new(ProviderId::new("runblob"), task, UNIX_EPOCH)
            .unwrap()
            .with_cost(Some(Cost::usd("0.0123".parse().unwrap())))
            .with_images_expected(1)
    }

    fn open(dir: &tempfile::TempDir) -> Journal {
        Journal::open_with_clock(dir.path().join("j.sqlite"), Arc::new(ManualTime::new())).unwrap()
    }

    #[test]
    fn a_request_walks_the_states_and_every_step_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let time = ManualTime::new();
        let journal =
            Journal::open_with_clock(dir.path().join("j.sqlite"), Arc::new(time.clone())).unwrap();
        assert_eq!(journal.last_activity().unwrap(), UNIX_EPOCH);
        let planned = journal.plan(&[request("a", 1, "a lamp")]).unwrap();
        time.advance(Duration::from_secs(5));
        assert_eq!(planned.added, 1);
        journal
            .mark_submitting("a", &[ProviderId::new("runblob")])
            .unwrap();
        time.advance(Duration::from_secs(5));
        journal.record_task("a", &handle("t1")).unwrap();
        // The latest write, to the millisecond: when a process that stops now stopped, at
        // the earliest.
        let last = journal.last_activity().unwrap();
        assert_eq!(last, from_millis(millis(time.wall())));
        drop(journal);

        // A process that died right after the create answered left the task recorded.
        let journal = open(&dir);
        let entry = journal.entry("a").unwrap().unwrap();
        assert_eq!(entry.state, RequestState::Submitting);
        assert_eq!(entry.attempts, 1);
        assert_eq!(
            entry
                .submitting_at
                .map(|at| last.duration_since(at).unwrap()),
            Some(Duration::from_secs(5))
        );
        assert_eq!(entry.handles(), [handle("t1")]);
        journal
            .mark_submitted("a", ProviderId::new("runblob"), &[handle("t1")], None)
            .unwrap();
        assert_eq!(journal.finish("a").unwrap(), RequestState::Submitted);
        journal
            .task_succeeded(
                ProviderId::new("runblob"),
                "t1",
                &["t1-1.png".into()],
                &test_saved(),
            )
            .unwrap();
        assert_eq!(journal.finish("a").unwrap(), RequestState::Done);
        drop(journal);

        let journal = open(&dir);
        let entry = journal.entry("a").unwrap().unwrap();
        assert_eq!(entry.state, RequestState::Done);
        assert_eq!(entry.files(), ["t1-1.png"]);
        assert_eq!(entry.cost().to_string(), "$0.0123");
        assert_eq!(entry.tasks[0].outcome, Some(TaskOutcome::Succeeded));
    }

    #[test]
    fn impossible_transitions_are_refused_so_nothing_is_sent_twice() {
        let dir = tempfile::tempdir().unwrap();
        let journal = open(&dir);
        journal
            .plan(&[request("a", 1, "x"), request("b", 2, "y")])
            .unwrap();
        journal.mark_submitting("a", &[]).unwrap();
        journal
            .mark_submitted("a", ProviderId::new("runblob"), &[handle("t1")], None)
            .unwrap();
        let error = journal.mark_submitting("a", &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("request \"a\" cannot go from submitted to submitting"),
            "{error}"
        );
        assert!(matches!(journal.finish("b"), Ok(RequestState::Planned)));
        assert!(matches!(
            journal.mark_planned("b", "nothing was sent"),
            Err(JournalError::Transition { .. })
        ));
        // A task belongs to one request only.
        journal.mark_submitting("b", &[]).unwrap();
        let error = journal.record_task("b", &handle("t1")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("task runblob:t1 already belongs to request \"a\""),
            "{error}"
        );
        // Recording the same task twice for its own request is harmless.
        journal.record_task("a", &handle("t1")).unwrap();
        assert_eq!(journal.entry("a").unwrap().unwrap().tasks.len(), 1);
        assert!(matches!(
            journal.mark_submitting("nope", &[]),
            Err(JournalError::NoSuchRequest { .. })
        ));
    }

    #[test]
    fn a_partial_or_failed_request_finishes_failed_with_why() {
        let dir = tempfile::tempdir().unwrap();
        let journal = open(&dir);
        let mut two = request("a", 1, "x");
        two.request.n = 2;
        journal.plan(&[two, request("b", 2, "y")]).unwrap();
        journal.mark_submitting("a", &[]).unwrap();
        journal
            .mark_submitted(
                "a",
                ProviderId::new("runblob"),
                &[handle("t1")],
                Some("runblob create: 402 INSUFFICIENT_CREDITS"),
            )
            .unwrap();
        journal
            .task_succeeded(
                ProviderId::new("runblob"),
                "t1",
                &["t1-1.png".into()],
                &test_saved(),
            )
            .unwrap();
        assert_eq!(journal.finish("a").unwrap(), RequestState::Failed);
        let entry = journal.entry("a").unwrap().unwrap();
        assert_eq!(
            entry.error.as_deref(),
            Some("1 of 2 images were never accepted: runblob create: 402 INSUFFICIENT_CREDITS")
        );
        assert_eq!(entry.files(), ["t1-1.png"]);

        journal.mark_submitting("b", &[]).unwrap();
        journal
            .mark_submitted("b", ProviderId::new("runblob"), &[handle("t2")], None)
            .unwrap();
        journal
            .task_failed(ProviderId::new("runblob"), "t2", "OPENAI_DECLINED")
            .unwrap();
        assert_eq!(journal.finish("b").unwrap(), RequestState::Failed);
        let entry = journal.entry("b").unwrap().unwrap();
        assert_eq!(
            entry.error.as_deref(),
            Some("task runblob:t2 failed: OPENAI_DECLINED")
        );
        // A failed task is refunded: it costs nothing.
        assert!(entry.cost().is_zero());
    }

    #[test]
    fn another_batch_under_the_same_ids_is_refused_unless_nothing_was_paid() {
        let dir = tempfile::tempdir().unwrap();
        let journal = open(&dir);
        journal
            .plan(&[request("a", 1, "x"), request("b", 2, "y")])
            .unwrap();
        journal.mark_submitting("a", &[]).unwrap();

        let error = journal
            .plan(&[
                request("a", 1, "other"),
                request("b", 2, "also other"),
                request("c", 3, "z"),
            ])
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("was written for a different batch: request \"a\" (line 1) differs;"),
            "{error}"
        );
        // Nothing was written: c is not there, b is unchanged.
        assert_eq!(journal.entries().unwrap().len(), 2);
        assert_eq!(journal.entry("b").unwrap().unwrap().request.prompt, "y");

        // b was never sent: an edited b replaces it; a moved line is followed.
        let planned = journal
            .plan(&[request("a", 5, "x"), request("b", 2, "y, edited")])
            .unwrap();
        assert_eq!((planned.kept, planned.replaced, planned.added), (1, 1, 0));
        assert_eq!(
            journal.entry("b").unwrap().unwrap().request.prompt,
            "y, edited"
        );
        assert_eq!(journal.entry("a").unwrap().unwrap().line, 5);
    }

    #[test]
    fn a_second_process_cannot_open_it_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let journal = open(&dir);
        let error = Journal::open(dir.path().join("j.sqlite")).unwrap_err();
        assert!(matches!(error, JournalError::Locked { .. }), "{error}");
        assert!(
            error.to_string().contains("in use by another process"),
            "{error}"
        );
        drop(journal);
        Journal::open(dir.path().join("j.sqlite")).unwrap();

        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "not a database, just some notes that are long enough to look like a header",
        )
        .unwrap();
        let error = Journal::open(&text).unwrap_err();
        assert!(
            error.to_string().contains("not an imggen journal"),
            "{error}"
        );

        let other = dir.path().join("other.sqlite");
        let connection = Connection::open(&other).unwrap();
        connection.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(connection);
        let error = Journal::open(&other).unwrap_err();
        assert!(
            error.to_string().contains("not an imggen journal"),
            "{error}"
        );

        let newer = dir.path().join("newer.sqlite");
        drop(Journal::open(&newer).unwrap());
        let connection = Connection::open(&newer).unwrap();
        connection.pragma_update(None, "user_version", 9).unwrap();
        drop(connection);
        let error = Journal::open(&newer).unwrap_err();
        assert!(error.to_string().contains("upgrade imggen"), "{error}");
    }

    #[test]
    fn a_format_1_journal_is_upgraded_in_place_and_read_a_page_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        // The tables format 1 wrote, and one request in them.
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE requests (
                    id TEXT PRIMARY KEY NOT NULL, line INTEGER NOT NULL,
                    fingerprint TEXT NOT NULL, request TEXT NOT NULL, providers TEXT NOT NULL,
                    state TEXT NOT NULL, provider TEXT, error TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0, submitting_at INTEGER,
                    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
                 CREATE TABLE tasks (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    request_id TEXT NOT NULL REFERENCES requests (id),
                    provider TEXT NOT NULL, task_id TEXT NOT NULL, handle TEXT NOT NULL,
                    images INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
                    adopted INTEGER NOT NULL DEFAULT 0, outcome TEXT, files TEXT NOT NULL DEFAULT '[]',
                    error TEXT, UNIQUE (provider, task_id)) STRICT;
                 CREATE INDEX tasks_by_request ON tasks (request_id, seq);
                 PRAGMA application_id = 1768777575;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        let old = request("a", 2, "a lamp");
        connection
            .execute(
                "INSERT INTO requests (id, line, fingerprint, request, providers, state, created_at, updated_at)
                 VALUES ('a', 2, ?1, ?2, '[]', 'planned', 0, 0)",
                [
                    old.fingerprint(),
                    serde_json::to_string(&old.request).unwrap(),
                ],
            )
            .unwrap();
        drop(connection);

        let journal = Journal::open(&path).unwrap();
        let entries = journal.entries().unwrap();
        assert_eq!((entries.len(), entries[0].listing), (1, 0));
        // A new listing finds the request again (same fingerprint): kept, marked found.
        let listing = journal.next_listing().unwrap();
        assert_eq!(listing, 1);
        let planned = journal
            .plan_listed(&[old.clone(), request("b", 3, "a cat")], listing)
            .unwrap();
        assert_eq!((planned.added, planned.kept), (1, 1));
        let page = journal.page(&[RequestState::Planned], None, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!((page[0].id.as_str(), page[0].listing), ("a", 1));
        let rest = journal
            .page(&[RequestState::Planned], Some((2, "a")), 10)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, "b");
        assert!(
            journal
                .page(&[RequestState::Done], None, 10)
                .unwrap()
                .is_empty()
        );
        let tally = journal.tally(listing).unwrap();
        assert_eq!(tally.count(RequestState::Planned, Some(true)), 2);
        drop(journal);
        let connection = Connection::open(&path).unwrap();
        let version: i32 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, JOURNAL_VERSION);
    }
}
