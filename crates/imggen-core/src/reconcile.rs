//! Finding the tasks a lost create may have made, in the provider's own list of recent tasks.
//!
//! A create whose answer was lost ([`Error::CreateOutcomeUnknown`](crate::Error), or a process
//! killed while the create was in flight) may have made — and charged — a task. Where the
//! provider keeps a list of the key's tasks that imggen can read (runblob's
//! `GET /v1/chatgpt-images/generations`, see [`Provider::lists_recent_tasks`](crate::Provider::lists_recent_tasks)), the list settles
//! the question: [`Imggen::find_lost_tasks`] pages through it, newest first, for tasks with the
//! same prompt that nobody has claimed yet.
//!
//! The search is **conclusive** — what it found is all the lost creates made — when one of
//! these holds:
//! - it found as many tasks as creates were lost (a create makes at most one task);
//! - it reached a task known to be older than the lost create (one whose answer was received
//!   before the create was sent: everything after it in a newest-first list is older still);
//! - it reached the end of the list (an empty page).
//!
//! Otherwise (the bound on entries read was reached first) it is inconclusive, and a caller
//! must not resubmit: the task may exist further down.
//!
//! The list shows only the prompt (runblob's list has no other request field and no time), so
//! a task with the same prompt made by another program on the same key could be taken for the
//! lost one; tasks this caller already owns are excluded through
//! [`LostTaskSearch::claimed`].

use std::collections::HashSet;

use tracing::Instrument as _;

use crate::Imggen;
use crate::call::{Call, CallFailure, RetryLimit};
use crate::error::{CallError, CallErrorKind, CallOperation};
use crate::provider::{ProviderId, RecentTask};

/// Entries asked for per page. A provider may cap it lower: the search moves on by what each
/// page held and stops only at an empty page, so a cap never passes for the end of the list.
pub const PAGE_SIZE: u32 = 100;

/// Entries read at most, by default, before a search gives up as inconclusive.
pub const DEFAULT_MAX_ENTRIES: usize = 500;

/// What to look for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostTaskSearch {
    /// The provider the creates were sent to.
    pub provider: ProviderId,
    /// The prompt they were sent with.
    pub prompt: String,
    /// How many creates were lost (tasks to find at most).
    pub wanted: usize,
    /// Task ids that already belong to someone (every task the caller has recorded): never
    /// returned.
    pub claimed: HashSet<String>,
    /// Task ids known to be older than the lost creates (their answer arrived before the
    /// creates were sent): reaching one ends the search, conclusively.
    pub older: HashSet<String>,
    /// Entries read at most.
    pub max_entries: usize,
    /// Every page is read by this long after the search starts, or the search ends with an
    /// error (`None`: each page has its client's timeout).
    pub deadline: Option<std::time::Duration>,
}

impl LostTaskSearch {
    /// Looks for `wanted` tasks of `prompt` on `provider`.
    pub fn new(provider: ProviderId, prompt: impl Into<String>, wanted: usize) -> Self {
        LostTaskSearch {
            provider,
            prompt: prompt.into(),
            wanted,
            claimed: HashSet::new(),
            older: HashSet::new(),
            max_entries: DEFAULT_MAX_ENTRIES,
            deadline: None,
        }
    }

    /// Sets the task ids that already belong to someone.
    pub fn claimed(mut self, claimed: impl IntoIterator<Item = String>) -> Self {
        self.claimed = claimed.into_iter().collect();
        self
    }

    /// Sets the task ids known to be older than the lost creates.
    pub fn older(mut self, older: impl IntoIterator<Item = String>) -> Self {
        self.older = older.into_iter().collect();
        self
    }

    /// Sets the bound on entries read.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Sets the search's deadline.
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// What a search found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LostTasks {
    /// The tasks taken for the lost creates, newest first (at most `wanted`).
    pub found: Vec<RecentTask>,
    /// Whether `found` is provably all the lost creates made: the creates not found never
    /// made a task, and may be sent again.
    pub conclusive: bool,
    /// Entries read.
    pub searched: usize,
}

/// The state of a search across pages. Pure: the pages come from outside.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    search: &'a LostTaskSearch,
    seen: HashSet<String>,
    found: Vec<RecentTask>,
    searched: usize,
    /// `Some(conclusive)` once the search is over.
    over: Option<bool>,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(search: &'a LostTaskSearch) -> Self {
        Scan {
            search,
            seen: HashSet::new(),
            found: Vec::new(),
            searched: 0,
            over: (search.wanted == 0).then_some(true),
        }
    }

    /// Reads one page; returns the offset of the next page while the search goes on.
    pub(crate) fn page(&mut self, offset: u32, page: Vec<RecentTask>) -> Option<u32> {
        if self.over.is_some() {
            return None;
        }
        if page.is_empty() {
            self.over = Some(true);
            return None;
        }
        let held = u32::try_from(page.len()).unwrap_or(u32::MAX);
        for task in page {
            self.searched += 1;
            // Pages may overlap when tasks are created meanwhile: each entry counts once.
            if !self.seen.insert(task.task_id.clone()) {
                continue;
            }
            if self.search.older.contains(&task.task_id) {
                self.over = Some(true);
                return None;
            }
            if self.search.claimed.contains(&task.task_id) {
                continue;
            }
            let same_prompt = task
                .prompt
                .as_deref()
                .is_some_and(|prompt| prompt.trim() == self.search.prompt.trim());
            if same_prompt {
                self.found.push(task);
                if self.found.len() >= self.search.wanted {
                    self.over = Some(true);
                    return None;
                }
            }
            if self.searched >= self.search.max_entries {
                self.over = Some(false);
                return None;
            }
        }
        Some(offset.saturating_add(held))
    }

    pub(crate) fn finish(self) -> LostTasks {
        LostTasks {
            found: self.found,
            conclusive: self.over.unwrap_or(false),
            searched: self.searched,
        }
    }
}

impl Imggen {
    /// Whether `provider` is configured and keeps a list of recent tasks imggen can read
    /// (runblob), so that a lost create can be found or proved absent.
    pub fn lists_recent_tasks(&self, provider: ProviderId) -> bool {
        self.provider(provider)
            .is_ok_and(|provider| provider.lists_recent_tasks())
    }

    /// Looks for the tasks lost creates may have made, in the provider's list of the key's
    /// recent tasks (see the [module docs](self) for when the answer is conclusive).
    ///
    /// `Ok(None)` when the provider keeps no such list (gptimg, runbase): nothing can be
    /// learned, and a create whose answer was lost must stay unknown. Each page is one request
    /// inside the key's budget, retried like a status read.
    pub async fn find_lost_tasks(
        &self,
        search: &LostTaskSearch,
    ) -> Result<Option<LostTasks>, CallError> {
        let id = search.provider;
        let provider = self
            .provider(id)
            .map_err(|error| config_error(id, error.to_string()))?;
        if !provider.lists_recent_tasks() {
            return Ok(None);
        }
        let scheduler = self
            .scheduler(&provider)
            .map_err(|error| config_error(id, error.to_string()))?;
        let until = self.deadline_from_now(search.deadline);
        let out_of_time = || {
            CallError::new(id, CallOperation::Status, CallErrorKind::Deadline)
                .with_message("the deadline passed before the task list could be read")
        };
        let mut scan = Scan::new(search);
        let mut offset = 0u32;
        loop {
            if scan.over.is_some() {
                break;
            }
            let call = Call {
                provider: id,
                operation: CallOperation::Status,
                scheduler: &scheduler,
                until,
                retry_until: RetryLimit::Attempts,
                budgeted: true,
            };
            let page = self
                .call(call, |attempt| {
                    let span = tracing::info_span!("imggen.list", provider = %id, offset, attempt);
                    provider.recent_tasks(offset, PAGE_SIZE).instrument(span)
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(CallFailure::Failed { error, .. }) => return Err(error),
                Err(CallFailure::OutOfTime { .. }) => return Err(out_of_time()),
                Err(CallFailure::Closed) => {
                    return Err(config_error(id, "the request scheduler stopped".into()));
                }
            };
            match scan.page(offset, page) {
                Some(next) => offset = next,
                None => break,
            }
        }
        let lost = scan.finish();
        tracing::info!(
            provider = %id,
            found = lost.found.len(),
            wanted = search.wanted,
            conclusive = lost.conclusive,
            searched = lost.searched,
            "looked for lost creates in the provider's task list"
        );
        Ok(Some(lost))
    }
}

fn config_error(provider: ProviderId, message: String) -> CallError {
    CallError::new(provider, CallOperation::Status, CallErrorKind::Config).with_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{RawObject, TaskState, TaskStatus};

    fn task(id: &str, prompt: &str) -> RecentTask {
        let raw = RawObject::new(serde_json::json!({"id": id, "prompt": prompt}));
        let status = TaskStatus::new(TaskState::Queued, raw);
        RecentTask::new(id, Some(prompt.to_owned()), status)
    }

    const PROVIDER: ProviderId = ProviderId::new("listing");

    fn ids(lost: &LostTasks) -> Vec<&str> {
        lost.found.iter().map(|t| t.task_id.as_str()).collect()
    }

    #[test]
    fn found_as_many_as_lost_is_conclusive_and_claimed_tasks_are_skipped() {
        let search = LostTaskSearch::new(PROVIDER, "a lamp", 1).claimed(["t3".into()]);
        let mut scan = Scan::new(&search);
        let next = scan.page(
            0,
            vec![
                task("t4", "a cat"),
                task("t3", "a lamp"),
                task("t2", "a lamp"),
            ],
        );
        assert_eq!(next, None);
        let lost = scan.finish();
        assert_eq!(ids(&lost), ["t2"]);
        assert!(lost.conclusive);
    }

    #[test]
    fn an_older_task_proves_the_rest_absent() {
        let search = LostTaskSearch::new(PROVIDER, "a lamp", 2)
            .claimed(["t1".into()])
            .older(["t1".into()]);
        let mut scan = Scan::new(&search);
        assert_eq!(
            scan.page(0, vec![task("t3", "a lamp"), task("t2", "a cat")]),
            Some(2)
        );
        // A page that overlaps the last one (a task was created meanwhile) counts each once.
        assert_eq!(
            scan.page(
                2,
                vec![
                    task("t2", "a cat"),
                    task("t1", "a lamp"),
                    task("t0", "a lamp")
                ]
            ),
            None
        );
        let lost = scan.finish();
        // t0 has the prompt but is older than the lost creates: not theirs.
        assert_eq!(ids(&lost), ["t3"]);
        assert!(lost.conclusive);
    }

    #[test]
    fn the_end_of_the_list_is_an_empty_page_not_a_short_one() {
        let search = LostTaskSearch::new(PROVIDER, "a lamp", 1);
        let mut scan = Scan::new(&search);
        // A provider capping pages at 2 answers short: that is not the end.
        assert_eq!(
            scan.page(0, vec![task("t9", "x"), task("t8", "y")]),
            Some(2)
        );
        assert_eq!(scan.page(2, Vec::new()), None);
        let lost = scan.finish();
        assert!(lost.found.is_empty());
        assert!(lost.conclusive);
        assert_eq!(lost.searched, 2);
    }

    #[test]
    fn the_bound_on_entries_leaves_the_search_inconclusive() {
        let search = LostTaskSearch::new(PROVIDER, "a lamp", 1).max_entries(3);
        let mut scan = Scan::new(&search);
        let page: Vec<RecentTask> = (0..5).map(|i| task(&format!("t{i}"), "other")).collect();
        assert_eq!(scan.page(0, page), None);
        let lost = scan.finish();
        assert!(!lost.conclusive);
        assert_eq!(lost.searched, 3);
    }

    #[test]
    fn prompts_match_exactly_up_to_surrounding_whitespace() {
        let search = LostTaskSearch::new(PROVIDER, "a lamp ", 1);
        let mut scan = Scan::new(&search);
        scan.page(0, vec![task("t2", "a Lamp"), task("t1", " a lamp")]);
        assert_eq!(ids(&scan.finish()), ["t1"]);
    }
}
