//! A second store, in memory and in this test file alone: the proof that a store is one more
//! implementation of [`JournalStore`], and that the journal's rules — transitions, planning,
//! one owner per task, finishing — hold whatever keeps the rows.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imggen_http::time::ManualTime;

use super::transitions::Known;
use super::*;
use crate::cost::Cost;
use crate::request::GenerationRequest;

#[derive(Clone, Debug, Default)]
struct Rows {
    requests: Vec<JournalEntry>,
    /// Each task with the request it belongs to.
    tasks: Vec<(String, JournalTask)>,
}

/// Rows in memory; a transaction works on a copy that replaces them on commit.
#[derive(Debug, Default)]
struct MemoryStore {
    rows: Mutex<Rows>,
}

impl Rows {
    fn request(&mut self, id: &str) -> Option<&mut JournalEntry> {
        self.requests.iter_mut().find(|entry| entry.id == id)
    }
}

impl JournalTx for Rows {
    fn is_empty(&mut self) -> Result<bool, JournalError> {
        Ok(self.requests.is_empty())
    }

    fn state(&mut self, id: &str) -> Result<Option<RequestState>, JournalError> {
        Ok(self.request(id).map(|entry| entry.state))
    }

    fn known(&mut self, id: &str) -> Result<Option<Known>, JournalError> {
        let tasks = self.tasks.iter().filter(|(owner, _)| owner == id).count() as u64;
        Ok(self.request(id).map(|entry| Known {
            fingerprint: entry.fingerprint.clone(),
            state: entry.state,
            tasks,
        }))
    }

    fn insert_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError> {
        self.requests.push(JournalEntry {
            id: request.id.clone(),
            line: request.line,
            fingerprint: fingerprint.to_owned(),
            request: request.request.clone(),
            providers: request.providers.clone(),
            state: RequestState::Planned,
            provider: None,
            error: None,
            attempts: 0,
            submitting_at: None,
            updated_at: at,
            listing,
            tasks: Vec::new(),
        });
        Ok(())
    }

    fn replace_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError> {
        self.requests.retain(|entry| entry.id != request.id);
        self.insert_request(request, fingerprint, at, listing)
    }

    fn relist(&mut self, request: &BatchRequest, listing: u64) -> Result<(), JournalError> {
        if let Some(entry) = self.request(&request.id) {
            entry.line = request.line;
            entry.listing = listing;
            if entry.state == RequestState::Planned {
                entry.providers.clone_from(&request.providers);
            }
        }
        Ok(())
    }

    fn set_state(
        &mut self,
        id: &str,
        state: RequestState,
        at: SystemTime,
    ) -> Result<(), JournalError> {
        if let Some(entry) = self.request(id) {
            entry.state = state;
            entry.updated_at = at;
        }
        Ok(())
    }

    fn begin_submitting(
        &mut self,
        id: &str,
        providers: &[ProviderId],
        at: SystemTime,
    ) -> Result<(), JournalError> {
        if let Some(entry) = self.request(id) {
            entry.providers = providers.to_vec();
            entry.submitting_at = Some(at);
            entry.attempts += 1;
        }
        Ok(())
    }

    fn annotate(
        &mut self,
        id: &str,
        provider: Option<ProviderId>,
        error: Option<&str>,
        touched: Option<SystemTime>,
    ) -> Result<(), JournalError> {
        if let Some(entry) = self.request(id) {
            entry.provider = provider.or(entry.provider);
            entry.error = error.map(str::to_owned);
            entry.updated_at = touched.unwrap_or(entry.updated_at);
        }
        Ok(())
    }

    fn task_owner(
        &mut self,
        provider: ProviderId,
        task_id: &str,
    ) -> Result<Option<String>, JournalError> {
        Ok(self
            .tasks
            .iter()
            .find(|(_, task)| task.handle.provider == provider && task.handle.task_id == task_id)
            .map(|(owner, _)| owner.clone()))
    }

    fn insert_task(
        &mut self,
        id: &str,
        handle: &TaskHandle,
        adopted: bool,
        at: SystemTime,
    ) -> Result<(), JournalError> {
        self.tasks.push((
            id.to_owned(),
            JournalTask {
                handle: handle.clone(),
                images: handle.images_expected.unwrap_or(1),
                recorded_at: at,
                adopted,
                outcome: None,
                files: Vec::new(),
                error: None,
                saved: None,
            },
        ));
        Ok(())
    }

    fn set_task_outcome(
        &mut self,
        provider: ProviderId,
        task_id: &str,
        outcome: Option<TaskOutcome>,
        files: &[String],
        error: Option<&str>,
        saved: Option<&SavedBy>,
    ) -> Result<bool, JournalError> {
        let Some((_, task)) = self
            .tasks
            .iter_mut()
            .find(|(_, task)| task.handle.provider == provider && task.handle.task_id == task_id)
        else {
            return Ok(false);
        };
        task.outcome = outcome;
        task.files = files.to_vec();
        task.error = error.map(str::to_owned);
        task.saved = saved.cloned();
        Ok(true)
    }
}

impl JournalStore for MemoryStore {
    fn path(&self) -> &Path {
        Path::new("memory")
    }

    fn write(
        &self,
        _what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut rows = self.rows.lock().unwrap();
        let mut draft = rows.clone();
        change(&mut draft)?;
        *rows = draft;
        Ok(())
    }

    fn read(&self, only: Option<&str>) -> Result<Vec<JournalEntry>, JournalError> {
        let rows = self.rows.lock().unwrap();
        let mut entries: Vec<JournalEntry> = rows
            .requests
            .iter()
            .filter(|entry| only.is_none_or(|id| entry.id == id))
            .cloned()
            .map(|mut entry| {
                entry.tasks = rows
                    .tasks
                    .iter()
                    .filter(|(owner, _)| *owner == entry.id)
                    .map(|(_, task)| task.clone())
                    .collect();
                entry
            })
            .collect();
        entries.sort_by(|a, b| (a.line, &a.id).cmp(&(b.line, &b.id)));
        Ok(entries)
    }

    fn page(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self
            .read(None)?
            .into_iter()
            .filter(|entry| states.is_empty() || states.contains(&entry.state))
            .filter(|entry| after.is_none_or(|after| (entry.line, entry.id.as_str()) > after))
            .take(limit)
            .collect())
    }

    fn tally(&self, listing: u64) -> Result<Tally, JournalError> {
        let mut tally = Tally::default();
        for entry in self.read(None)? {
            let listed = entry.listing >= listing;
            match tally
                .counts
                .iter_mut()
                .find(|(state, l, _)| *state == entry.state && *l == listed)
            {
                Some((_, _, count)) => *count += 1,
                None => tally.counts.push((entry.state, listed, 1)),
            }
            tally.cost = tally.cost + entry.cost();
        }
        Ok(tally)
    }

    fn latest_listing(&self) -> Result<u64, JournalError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .requests
            .iter()
            .map(|entry| entry.listing)
            .max()
            .unwrap_or(0))
    }

    fn last_activity(&self) -> Result<SystemTime, JournalError> {
        let rows = self.rows.lock().unwrap();
        let requests = rows.requests.iter().map(|entry| entry.updated_at);
        let tasks = rows.tasks.iter().map(|(_, task)| task.recorded_at);
        Ok(requests.chain(tasks).max().unwrap_or(UNIX_EPOCH))
    }

    fn tasks_of(&self, provider: ProviderId) -> Result<Vec<(String, SystemTime)>, JournalError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .tasks
            .iter()
            .filter(|(_, task)| task.handle.provider == provider)
            .map(|(_, task)| (task.handle.task_id.clone(), task.recorded_at))
            .collect())
    }
}

const RUNBLOB: ProviderId = ProviderId::new("runblob");

fn request(id: &str, prompt: &str) -> BatchRequest {
    BatchRequest::new(id, 1, GenerationRequest::new(prompt), vec![RUNBLOB])
}

fn handle(task: &str) -> TaskHandle {
    TaskHandle::new(RUNBLOB, task, UNIX_EPOCH)
        .unwrap()
        .with_cost(Some(Cost::usd("0.0123".parse().unwrap())))
        .with_images_expected(1)
}

#[test]
fn the_journals_rules_hold_in_a_store_of_another_kind() {
    let time = ManualTime::new();
    let journal = Journal::with_store(Box::new(MemoryStore::default()), Arc::new(time.clone()));
    assert_eq!(journal.path(), PathBuf::from("memory"));
    assert_eq!(journal.plan(&[request("a", "a lamp")]).unwrap().added, 1);
    time.advance(Duration::from_secs(5));
    journal.mark_submitting("a", &[RUNBLOB]).unwrap();
    journal.record_task("a", &handle("t1")).unwrap();
    // The rules are the journal's, not the store's: nothing is sent twice…
    assert!(matches!(
        journal.mark_submitting("a", &[RUNBLOB]).unwrap_err(),
        JournalError::Transition { .. }
    ));
    // …no task belongs to two requests, and a paid-for request is never replaced.
    journal.plan(&[request("b", "a cat")]).unwrap();
    journal.mark_submitting("b", &[RUNBLOB]).unwrap();
    assert!(matches!(
        journal.record_task("b", &handle("t1")).unwrap_err(),
        JournalError::TaskClaimed { .. }
    ));
    assert!(matches!(
        journal.plan(&[request("a", "another lamp")]).unwrap_err(),
        JournalError::Mismatch { .. }
    ));
    journal
        .mark_submitted("a", RUNBLOB, &[handle("t1")], None)
        .unwrap();
    journal
        .task_succeeded(RUNBLOB, "t1", &["t1-1.png".into()], &test_saved())
        .unwrap();
    assert_eq!(journal.finish("a").unwrap(), RequestState::Done);
    let entry = journal.entry("a").unwrap().unwrap();
    assert_eq!(entry.files(), ["t1-1.png"]);
    assert_eq!(entry.cost().to_string(), "$0.0123");
    assert_eq!(journal.tasks_of(RUNBLOB).unwrap().len(), 1);
    assert_eq!(journal.last_activity().unwrap(), time.wall());
}
