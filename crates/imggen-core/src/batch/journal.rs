//! The batch journal: one SQLite row per request and one per task, written **before** each
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
//! The journal is held with an exclusive lock while open, so a second process on the same
//! journal fails at once instead of submitting the same requests again. The format is
//! versioned (`PRAGMA user_version`) and marked as imggen's (`PRAGMA application_id`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imggen_http::time::{Clock, SystemClock};
use rusqlite::{
    Connection, ErrorCode, OptionalExtension as _, Transaction, TransactionBehavior, params,
};
use serde::Serialize;

use crate::batch::input::BatchRequest;
use crate::cost::Cost;
use crate::handle::TaskHandle;
use crate::provider::ProviderId;
use crate::request::GenerationRequest;

/// The journal format this imggen writes and reads.
pub const JOURNAL_VERSION: i32 = 1;

/// The journal's file name inside the output directory, by default.
pub const DEFAULT_JOURNAL_NAME: &str = "imggen-journal.sqlite";

/// `PRAGMA application_id` of an imggen journal: "imgg".
const APPLICATION_ID: i32 = 0x696d_6767;

const SCHEMA: &str = "
CREATE TABLE requests (
    id            TEXT PRIMARY KEY NOT NULL,
    line          INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL,
    request       TEXT NOT NULL,
    providers     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('planned', 'submitting', 'submitted', 'done', 'failed', 'unknown')),
    provider      TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    submitting_at INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    provider    TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    handle      TEXT NOT NULL,
    images      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    adopted     INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT CHECK (outcome IN ('succeeded', 'failed')),
    files       TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    UNIQUE (provider, task_id)
) STRICT;
CREATE INDEX tasks_by_request ON tasks (request_id, seq);
";

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Nothing sent (or a create the provider's list proved never arrived).
    Planned,
    /// A create is being sent: written before it is. Found at start-up, its outcome is
    /// unknown.
    Submitting,
    /// Tasks exist (and are paid for); waiting for them.
    Submitted,
    /// Every image is on disk.
    Done,
    /// A task failed (the providers refund failed tasks), or fewer tasks were accepted than
    /// asked for.
    Failed,
    /// A create's answer was lost and nothing could prove whether it made a task: it may be
    /// paid for. Resubmitted only when the caller says so.
    Unknown,
}

impl RequestState {
    /// `planned`, `submitting`, `submitted`, `done`, `failed` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Planned => "planned",
            RequestState::Submitting => "submitting",
            RequestState::Submitted => "submitted",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
            RequestState::Unknown => "unknown",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "planned" => RequestState::Planned,
            "submitting" => RequestState::Submitting,
            "submitted" => RequestState::Submitted,
            "done" => RequestState::Done,
            "failed" => RequestState::Failed,
            "unknown" => RequestState::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    /// Its images are on disk.
    Succeeded,
    /// It failed; the provider refunds it.
    Failed,
}

/// One task of a request, as journaled.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JournalTask {
    /// Its receipt.
    pub handle: TaskHandle,
    /// Images it makes.
    pub images: u32,
    /// When the journal learned of it.
    pub recorded_at: SystemTime,
    /// Whether it was found in the provider's task list rather than answered to a create.
    pub adopted: bool,
    /// How it ended, once it has.
    pub outcome: Option<TaskOutcome>,
    /// Its images, as file names in the output directory.
    pub files: Vec<String>,
    /// Why it failed, or why its images could not be saved.
    pub error: Option<String>,
}

/// One request, as journaled.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// Its id.
    pub id: String,
    /// Its line in the batch file.
    pub line: usize,
    /// The fingerprint of the request ([`input::fingerprint`](crate::batch::input::fingerprint)).
    pub fingerprint: String,
    /// What it asks for.
    pub request: GenerationRequest,
    /// The providers it is sent to, in order.
    pub providers: Vec<ProviderId>,
    /// Where it is.
    pub state: RequestState,
    /// The provider that accepted its tasks, or that a lost create was sent to.
    pub provider: Option<ProviderId>,
    /// The latest problem: why it failed, is unknown, or is not finished.
    pub error: Option<String>,
    /// How many times a create was started for it.
    pub attempts: u32,
    /// When its latest create was started (written before the create was sent).
    pub submitting_at: Option<SystemTime>,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// Its tasks, in the order they were recorded.
    pub tasks: Vec<JournalTask>,
}

impl JournalEntry {
    /// Images its tasks make.
    pub fn images_recorded(&self) -> u32 {
        self.tasks.iter().map(|task| task.images).sum()
    }

    /// Images asked for that no recorded task makes.
    pub fn images_missing(&self) -> u32 {
        self.request.n.saturating_sub(self.images_recorded())
    }

    /// The handles of its tasks.
    pub fn handles(&self) -> Vec<TaskHandle> {
        self.tasks.iter().map(|task| task.handle.clone()).collect()
    }

    /// What it costs: the charges of its tasks, less those of failed tasks (refunded).
    /// Tasks whose charge is not known (found in a task list) count as nothing.
    pub fn cost(&self) -> Cost {
        self.tasks
            .iter()
            .filter(|task| task.outcome != Some(TaskOutcome::Failed))
            .filter_map(|task| task.handle.cost)
            .sum()
    }

    /// Every image file of its tasks, in order.
    pub fn files(&self) -> Vec<String> {
        self.tasks
            .iter()
            .flat_map(|task| task.files.iter().cloned())
            .collect()
    }
}

/// The journal cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// SQLite or the file system failed.
    #[error("batch journal {}: {problem}", path.display())]
    Storage {
        /// The journal.
        path: PathBuf,
        /// What failed.
        problem: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process has the journal open.
    #[error(
        "batch journal {} is in use by another process (is the same batch already running?); wait for it to finish, or give another journal",
        path.display()
    )]
    Locked {
        /// The journal.
        path: PathBuf,
    },
    /// The file is not an imggen journal, or a newer imggen wrote it.
    #[error("batch journal {}: {problem}", path.display())]
    Format {
        /// The journal.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The journal was written for other requests under the same ids.
    #[error(
        "batch journal {} was written for a different batch: {}; use another output directory or journal, or restore the batch file it was written for",
        path.display(),
        describe_mismatches(mismatches)
    )]
    Mismatch {
        /// The journal.
        path: PathBuf,
        /// `(id, line)` of each request whose journaled request differs.
        mismatches: Vec<(String, usize)>,
    },
    /// A change the state machine does not allow: a bug, refused so that nothing is sent
    /// twice.
    #[error("batch journal {}: request {id:?} cannot go from {from} to {to}", path.display())]
    Transition {
        /// The journal.
        path: PathBuf,
        /// The request.
        id: String,
        /// Where it is.
        from: RequestState,
        /// Where it was asked to go.
        to: RequestState,
    },
    /// No request has this id.
    #[error("batch journal {}: no request {id:?}", path.display())]
    NoSuchRequest {
        /// The journal.
        path: PathBuf,
        /// The id.
        id: String,
    },
    /// A task already belongs to another request.
    #[error(
        "batch journal {}: task {task} already belongs to request {owner:?}, not {id:?}",
        path.display()
    )]
    TaskClaimed {
        /// The journal.
        path: PathBuf,
        /// The request it was to be added to.
        id: String,
        /// `provider:task_id`.
        task: String,
        /// The request it belongs to.
        owner: String,
    },
}

fn describe_mismatches(mismatches: &[(String, usize)]) -> String {
    let shown: Vec<String> = mismatches
        .iter()
        .take(5)
        .map(|(id, line)| format!("request {id:?} (line {line}) differs"))
        .collect();
    let more = mismatches.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The outcome of [`Journal::plan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Planned {
    /// Requests the journal did not have.
    pub added: usize,
    /// Requests it had, with the same fingerprint.
    pub kept: usize,
    /// Requests it had with another fingerprint but nothing paid (planned, or failed without
    /// a task), replaced by the new request and planned again.
    pub replaced: usize,
}

/// The journal of one batch. See the [module docs](self).
pub struct Journal {
    path: PathBuf,
    connection: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl Journal {
    /// Opens (or creates) the journal at `path`, on the system clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, JournalError> {
        Journal::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens (or creates) the journal at `path`; its times come from `clock`.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Journal, JournalError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| JournalError::Storage {
                path: path.clone(),
                problem: format!("could not create {}: {error}", parent.display()),
                source: Box::new(error),
            })?;
        }
        let storage = |problem: &str, error: rusqlite::Error| {
            if is_busy(&error) {
                return JournalError::Locked { path: path.clone() };
            }
            if error.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                return JournalError::Format {
                    path: path.clone(),
                    problem: "the file is not an imggen journal (not a SQLite database); give another path".into(),
                };
            }
            JournalError::Storage {
                path: path.clone(),
                problem: format!("{problem}: {error}"),
                source: Box::new(error),
            }
        };
        let mut connection =
            Connection::open(&path).map_err(|e| storage("could not open it", e))?;
        connection
            .busy_timeout(Duration::ZERO)
            .map_err(|e| storage("could not configure it", e))?;
        // Exclusive before WAL: no shared memory, and the lock taken below is kept until the
        // journal is closed (or the process dies, when the OS releases it).
        connection
            .pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(|e| storage("could not lock it", e))?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| storage("could not switch it to WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Format {
                path,
                problem: format!("SQLite refused write-ahead logging (journal mode {mode})"),
            });
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| storage("could not configure it", e))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| storage("could not configure it", e))?;
        {
            // A write transaction takes the exclusive lock now, so a second process fails
            // here rather than halfway through a batch.
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| storage("could not lock it", e))?;
            let version: i32 = tx
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(|e| storage("could not read its version", e))?;
            let application: i32 = tx
                .pragma_query_value(None, "application_id", |row| row.get(0))
                .map_err(|e| storage("could not read its version", e))?;
            match version {
                0 => {
                    let tables: i64 = tx
                        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
                        .map_err(|e| storage("could not read it", e))?;
                    if tables > 0 {
                        return Err(JournalError::Format {
                            path,
                            problem: "the file is a SQLite database but not an imggen journal; give another path".into(),
                        });
                    }
                    tx.execute_batch(SCHEMA)
                        .map_err(|e| storage("could not create its tables", e))?;
                    tx.pragma_update(None, "application_id", APPLICATION_ID)
                        .map_err(|e| storage("could not create it", e))?;
                    tx.pragma_update(None, "user_version", JOURNAL_VERSION)
                        .map_err(|e| storage("could not create it", e))?;
                }
                _ if application != APPLICATION_ID => {
                    return Err(JournalError::Format {
                        path,
                        problem: "the file is a SQLite database but not an imggen journal; give another path".into(),
                    });
                }
                JOURNAL_VERSION => {}
                newer => {
                    return Err(JournalError::Format {
                        path,
                        problem: format!(
                            "written by a newer imggen (format {newer}; this one reads {JOURNAL_VERSION}); upgrade imggen"
                        ),
                    });
                }
            }
            tx.commit().map_err(|e| storage("could not lock it", e))?;
        }
        Ok(Journal {
            path,
            connection: Mutex::new(connection),
            clock,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn now(&self) -> i64 {
        millis(self.clock.wall())
    }

    fn storage(&self, problem: &str, error: rusqlite::Error) -> JournalError {
        JournalError::Storage {
            path: self.path.clone(),
            problem: format!("{problem}: {error}"),
            source: Box::new(error),
        }
    }

    /// Runs `f` in one immediate transaction, committed when it returns `Ok`.
    fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.storage(what, e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| self.storage(what, e))?;
        Ok(value)
    }

    fn state_of(&self, tx: &Transaction<'_>, id: &str) -> Result<RequestState, JournalError> {
        let state: Option<String> = tx
            .query_row("SELECT state FROM requests WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.storage("could not read a request", e))?;
        let state = state.ok_or_else(|| JournalError::NoSuchRequest {
            path: self.path.clone(),
            id: id.to_owned(),
        })?;
        RequestState::parse(&state).ok_or_else(|| JournalError::Format {
            path: self.path.clone(),
            problem: format!("request {id:?} has the state {state:?}, which imggen does not know"),
        })
    }

    /// Checks that `id` is in one of `from`, and moves it to `to`.
    fn transition(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        from: &[RequestState],
        to: RequestState,
    ) -> Result<RequestState, JournalError> {
        let state = self.state_of(tx, id)?;
        if !from.contains(&state) {
            return Err(JournalError::Transition {
                path: self.path.clone(),
                id: id.to_owned(),
                from: state,
                to,
            });
        }
        tx.execute(
            "UPDATE requests SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, to.as_str(), self.now()],
        )
        .map_err(|e| self.storage("could not update a request", e))?;
        Ok(state)
    }

    fn insert_task(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        handle: &TaskHandle,
        adopted: bool,
    ) -> Result<(), JournalError> {
        let owner: Option<String> = tx
            .query_row(
                "SELECT request_id FROM tasks WHERE provider = ?1 AND task_id = ?2",
                params![handle.provider.as_str(), handle.task_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.storage("could not read a task", e))?;
        match owner {
            Some(owner) if owner == id => return Ok(()),
            Some(owner) => {
                return Err(JournalError::TaskClaimed {
                    path: self.path.clone(),
                    id: id.to_owned(),
                    task: handle.to_string(),
                    owner,
                });
            }
            None => {}
        }
        tx.execute(
            "INSERT INTO tasks (request_id, provider, task_id, handle, images, recorded_at, adopted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                handle.provider.as_str(),
                handle.task_id,
                handle.to_json(),
                handle.images_expected.unwrap_or(1),
                self.now(),
                adopted,
            ],
        )
        .map_err(|e| self.storage("could not record a task", e))?;
        Ok(())
    }

    /// Adds the requests it does not have, as `planned`, in one transaction — after checking
    /// every one it has: a request journaled under the same id with another fingerprint is a
    /// [`JournalError::Mismatch`] (nothing is written), unless nothing was paid for it (it is
    /// `planned`, or `failed` without a task), in which case the new request replaces it.
    pub fn plan(&self, requests: &[BatchRequest]) -> Result<Planned, JournalError> {
        self.write("could not plan the requests", |tx| {
            let mut planned = Planned::default();
            let mut mismatches = Vec::new();
            let mut replace = Vec::new();
            let mut add = Vec::new();
            for request in requests {
                let fingerprint = request.fingerprint();
                let found: Option<(String, String, i64)> = tx
                    .query_row(
                        "SELECT fingerprint, state, (SELECT count(*) FROM tasks WHERE request_id = requests.id)
                         FROM requests WHERE id = ?1",
                        [&request.id],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                    .map_err(|e| self.storage("could not read a request", e))?;
                match found {
                    None => add.push((request, fingerprint)),
                    Some((known, _, _)) if known == fingerprint => {
                        planned.kept += 1;
                        tx.execute(
                            "UPDATE requests SET line = ?2 WHERE id = ?1 AND line != ?2",
                            params![request.id, request.line],
                        )
                        .map_err(|e| self.storage("could not update a request", e))?;
                    }
                    Some((_, state, 0)) if state == "planned" || state == "failed" => {
                        replace.push((request, fingerprint));
                    }
                    Some(_) => mismatches.push((request.id.clone(), request.line)),
                }
            }
            if !mismatches.is_empty() {
                return Err(JournalError::Mismatch {
                    path: self.path.clone(),
                    mismatches,
                });
            }
            let now = self.now();
            for (request, fingerprint) in add {
                tx.execute(
                    "INSERT INTO requests (id, line, fingerprint, request, providers, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'planned', ?6, ?6)",
                    params![
                        request.id,
                        request.line,
                        fingerprint,
                        json(&request.request),
                        json(&request.providers),
                        now,
                    ],
                )
                .map_err(|e| self.storage("could not plan a request", e))?;
                planned.added += 1;
            }
            for (request, fingerprint) in replace {
                tx.execute(
                    "UPDATE requests SET line = ?2, fingerprint = ?3, request = ?4, providers = ?5,
                     state = 'planned', provider = NULL, error = NULL, updated_at = ?6 WHERE id = ?1",
                    params![
                        request.id,
                        request.line,
                        fingerprint,
                        json(&request.request),
                        json(&request.providers),
                        now,
                    ],
                )
                .map_err(|e| self.storage("could not plan a request", e))?;
                planned.replaced += 1;
            }
            Ok(planned)
        })
    }

    /// Written **before** a create is sent: `planned` (or `unknown`, when the caller chose to
    /// resubmit it) → `submitting`, with the route and the time.
    pub fn mark_submitting(&self, id: &str, providers: &[ProviderId]) -> Result<(), JournalError> {
        self.write("could not record a submission", |tx| {
            self.transition(
                tx,
                id,
                &[RequestState::Planned, RequestState::Unknown],
                RequestState::Submitting,
            )?;
            tx.execute(
                "UPDATE requests SET providers = ?2, submitting_at = ?3, attempts = attempts + 1 WHERE id = ?1",
                params![id, json(&providers), self.now()],
            )
            .map_err(|e| self.storage("could not record a submission", e))?;
            Ok(())
        })
    }

    /// Records a task of a request the moment it exists (idempotent). The state does not
    /// change: the request stays `submitting` until [`mark_submitted`](Self::mark_submitted).
    pub fn record_task(&self, id: &str, handle: &TaskHandle) -> Result<(), JournalError> {
        self.write("could not record a task", |tx| {
            self.state_of(tx, id)?;
            self.insert_task(tx, id, handle, false)
        })
    }

    /// Records a task found in the provider's list for a lost create.
    pub fn adopt_task(&self, id: &str, handle: &TaskHandle) -> Result<(), JournalError> {
        self.write("could not record a task", |tx| {
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
        self.write("could not record a submission", |tx| {
            self.transition(
                tx,
                id,
                &[
                    RequestState::Planned,
                    RequestState::Submitting,
                    RequestState::Unknown,
                ],
                RequestState::Submitted,
            )?;
            for handle in handles {
                self.insert_task(tx, id, handle, false)?;
            }
            tx.execute(
                "UPDATE requests SET provider = ?2, error = ?3 WHERE id = ?1",
                params![id, provider.as_str(), note],
            )
            .map_err(|e| self.storage("could not record a submission", e))?;
            Ok(())
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
        self.write("could not record an unknown outcome", |tx| {
            self.transition(
                tx,
                id,
                &[RequestState::Submitting, RequestState::Unknown],
                RequestState::Unknown,
            )?;
            for handle in handles {
                self.insert_task(tx, id, handle, false)?;
            }
            tx.execute(
                "UPDATE requests SET provider = coalesce(?2, provider), error = ?3 WHERE id = ?1",
                params![id, provider.map(ProviderId::as_str), reason],
            )
            .map_err(|e| self.storage("could not record an unknown outcome", e))?;
            Ok(())
        })
    }

    /// Nothing was charged for the create (a refusal), or the provider's list proved it never
    /// arrived: back to `planned`, with why.
    pub fn mark_planned(&self, id: &str, reason: &str) -> Result<(), JournalError> {
        self.write("could not record a request", |tx| {
            self.transition(
                tx,
                id,
                &[RequestState::Submitting, RequestState::Unknown],
                RequestState::Planned,
            )?;
            tx.execute(
                "UPDATE requests SET error = ?2 WHERE id = ?1",
                params![id, reason],
            )
            .map_err(|e| self.storage("could not record a request", e))?;
            Ok(())
        })
    }

    /// A task's images are on disk (`files`: names in the output directory).
    pub fn task_succeeded(
        &self,
        provider: ProviderId,
        task_id: &str,
        files: &[String],
    ) -> Result<(), JournalError> {
        self.update_task(provider, task_id, Some(TaskOutcome::Succeeded), files, None)
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
        )
    }

    fn update_task(
        &self,
        provider: ProviderId,
        task_id: &str,
        outcome: Option<TaskOutcome>,
        files: &[String],
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        self.write("could not record a task", |tx| {
            let changed = tx
                .execute(
                    "UPDATE tasks SET outcome = ?3, files = ?4, error = ?5 WHERE provider = ?1 AND task_id = ?2",
                    params![
                        provider.as_str(),
                        task_id,
                        outcome.map(|o| match o {
                            TaskOutcome::Succeeded => "succeeded",
                            TaskOutcome::Failed => "failed",
                        }),
                        json(&files),
                        error,
                    ],
                )
                .map_err(|e| self.storage("could not record a task", e))?;
            if changed == 0 {
                return Err(JournalError::NoSuchRequest {
                    path: self.path.clone(),
                    id: format!("{provider}:{task_id}"),
                });
            }
            Ok(())
        })
    }

    /// Sets a request's note (why it is not finished) without changing its state.
    pub fn set_error(&self, id: &str, error: Option<&str>) -> Result<(), JournalError> {
        self.write("could not record a request", |tx| {
            self.state_of(tx, id)?;
            tx.execute(
                "UPDATE requests SET error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, error, self.now()],
            )
            .map_err(|e| self.storage("could not record a request", e))?;
            Ok(())
        })
    }

    /// Once every task of a `submitted` request has ended: `done` when all succeeded and
    /// every image asked for was made, `failed` otherwise. Returns the state it is in.
    pub fn finish(&self, id: &str) -> Result<RequestState, JournalError> {
        let entry = self.entry(id)?.ok_or_else(|| JournalError::NoSuchRequest {
            path: self.path.clone(),
            id: id.to_owned(),
        })?;
        if entry.state != RequestState::Submitted
            || entry.tasks.is_empty()
            || entry.tasks.iter().any(|task| task.outcome.is_none())
        {
            return Ok(entry.state);
        }
        let failed: Vec<String> = entry
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
        let (state, error) = if failed.is_empty() && missing == 0 {
            (RequestState::Done, None)
        } else {
            let mut problems = failed;
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
            (RequestState::Failed, Some(problems.join("; ")))
        };
        self.write("could not finish a request", |tx| {
            self.transition(tx, id, &[RequestState::Submitted], state)?;
            tx.execute(
                "UPDATE requests SET error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .map_err(|e| self.storage("could not finish a request", e))?;
            Ok(())
        })?;
        Ok(state)
    }

    /// One request.
    pub fn entry(&self, id: &str) -> Result<Option<JournalEntry>, JournalError> {
        Ok(self.read(Some(id))?.into_iter().next())
    }

    /// Every request, in line order.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        self.read(None)
    }

    /// The latest time anything was journaled (the epoch for an empty journal): a process
    /// that stopped while writing this journal stopped after it.
    pub fn last_activity(&self) -> Result<SystemTime, JournalError> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let latest: Option<i64> = connection
            .query_row(
                "SELECT max(coalesce((SELECT max(updated_at) FROM requests), 0),
                            coalesce((SELECT max(recorded_at) FROM tasks), 0))",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.storage("could not read the journal", e))?;
        Ok(from_millis(latest.unwrap_or(0)))
    }

    /// Every task of `provider` the journal knows, with when it learned of it: the tasks
    /// already claimed, when a lost create is looked for.
    pub fn tasks_of(
        &self,
        provider: ProviderId,
    ) -> Result<Vec<(String, SystemTime)>, JournalError> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut statement = connection
            .prepare_cached("SELECT task_id, recorded_at FROM tasks WHERE provider = ?1")
            .map_err(|e| self.storage("could not read the tasks", e))?;
        let rows = statement
            .query_map([provider.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, from_millis(row.get(1)?)))
            })
            .map_err(|e| self.storage("could not read the tasks", e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.storage("could not read the tasks", e))
    }

    fn read(&self, only: Option<&str>) -> Result<Vec<JournalEntry>, JournalError> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let read_error = |e| self.storage("could not read the requests", e);
        type RequestRow = (
            String,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
            i64,
        );
        let map_request = |row: &rusqlite::Row<'_>| -> rusqlite::Result<RequestRow> {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(9)?,
                row.get(10)?,
            ))
        };
        let columns = "id, line, fingerprint, request, providers, state, provider, error, attempts, submitting_at, updated_at";
        let rows: Vec<RequestRow> = match only {
            Some(id) => {
                let mut statement = connection
                    .prepare_cached(&format!("SELECT {columns} FROM requests WHERE id = ?1"))
                    .map_err(read_error)?;
                statement
                    .query_map([id], map_request)
                    .map_err(read_error)?
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
            None => {
                let mut statement = connection
                    .prepare_cached(&format!("SELECT {columns} FROM requests ORDER BY line, id"))
                    .map_err(read_error)?;
                statement
                    .query_map([], map_request)
                    .map_err(read_error)?
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
        };
        type TaskRow = (
            String,
            String,
            i64,
            i64,
            bool,
            Option<String>,
            String,
            Option<String>,
        );
        let map_task = |row: &rusqlite::Row<'_>| -> rusqlite::Result<TaskRow> {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        };
        let task_columns =
            "request_id, handle, images, recorded_at, adopted, outcome, files, error";
        let task_rows: Vec<TaskRow> = match only {
            Some(id) => {
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {task_columns} FROM tasks WHERE request_id = ?1 ORDER BY seq"
                    ))
                    .map_err(read_error)?;
                statement
                    .query_map([id], map_task)
                    .map_err(read_error)?
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
            None => {
                let mut statement = connection
                    .prepare_cached(&format!("SELECT {task_columns} FROM tasks ORDER BY seq"))
                    .map_err(read_error)?;
                statement
                    .query_map([], map_task)
                    .map_err(read_error)?
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
        };
        drop(connection);
        let corrupt = |what: String| JournalError::Format {
            path: self.path.clone(),
            problem: what,
        };
        let mut tasks: std::collections::HashMap<String, Vec<JournalTask>> =
            std::collections::HashMap::new();
        for (request_id, handle, images, recorded_at, adopted, outcome, files, error) in task_rows {
            let handle = TaskHandle::from_json(&handle)
                .map_err(|e| corrupt(format!("a task of request {request_id:?}: {e}")))?;
            let outcome = match outcome.as_deref() {
                None => None,
                Some("succeeded") => Some(TaskOutcome::Succeeded),
                Some("failed") => Some(TaskOutcome::Failed),
                Some(other) => {
                    return Err(corrupt(format!("task outcome {other:?} is not known")));
                }
            };
            let files: Vec<String> = serde_json::from_str(&files)
                .map_err(|e| corrupt(format!("the files of task {handle}: {e}")))?;
            tasks.entry(request_id).or_default().push(JournalTask {
                handle,
                images: u32::try_from(images).unwrap_or(1),
                recorded_at: from_millis(recorded_at),
                adopted,
                outcome,
                files,
                error,
            });
        }
        rows.into_iter()
            .map(
                |(
                    id,
                    line,
                    fingerprint,
                    request,
                    providers,
                    state,
                    provider,
                    error,
                    attempts,
                    submitting_at,
                    updated_at,
                )| {
                    let request: GenerationRequest = serde_json::from_str(&request)
                        .map_err(|e| corrupt(format!("request {id:?}: {e}")))?;
                    let providers: Vec<ProviderId> = serde_json::from_str(&providers)
                        .map_err(|e| corrupt(format!("the providers of request {id:?}: {e}")))?;
                    let state = RequestState::parse(&state).ok_or_else(|| {
                        corrupt(format!(
                            "request {id:?} has the state {state:?}, which imggen does not know"
                        ))
                    })?;
                    let provider = provider
                        .map(|p| ProviderId::from_str(&p))
                        .transpose()
                        .map_err(|e| corrupt(format!("request {id:?}: {e}")))?;
                    Ok(JournalEntry {
                        tasks: tasks.remove(&id).unwrap_or_default(),
                        id,
                        line: usize::try_from(line).unwrap_or(0),
                        fingerprint,
                        request,
                        providers,
                        state,
                        provider,
                        error,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        submitting_at: submitting_at.map(from_millis),
                        updated_at: from_millis(updated_at),
                    })
                },
            )
            .collect()
    }
}

/// JSON of a value whose serialisation cannot fail (plain data).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
            .task_succeeded(ProviderId::new("runblob"), "t1", &["t1-1.png".into()])
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
            .task_succeeded(ProviderId::new("runblob"), "t1", &["t1-1.png".into()])
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
}
