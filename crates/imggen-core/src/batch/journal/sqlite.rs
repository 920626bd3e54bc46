//! The SQLite store: one file, WAL synced on every commit (`synchronous = FULL`, because a
//! lost "submitting" would mean paying twice), held with an exclusive lock while open so a
//! second process fails at once instead of submitting the same requests again, versioned
//! (`PRAGMA user_version`) and marked as imggen's (`PRAGMA application_id`). SQLite comes
//! from rusqlite's bundled library: nothing to install.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{
    Connection, ErrorCode, OptionalExtension as _, Row, Transaction, TransactionBehavior, params,
};

use super::store::{JournalStore, JournalTx};
use super::stored::{
    REQUEST_COLUMNS, RequestRow, TASK_COLUMNS, TaskRow, from_millis, json, listing_value, millis,
    outcome_text,
};
use super::transitions::Known;
use super::{
    JOURNAL_VERSION, JournalEntry, JournalError, JournalTask, RequestState, SavedBy, Tally,
    TaskOutcome,
};
use crate::batch::input::BatchRequest;
use crate::handle::TaskHandle;
use crate::provider::ProviderId;

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
    updated_at    INTEGER NOT NULL,
    listing       INTEGER NOT NULL DEFAULT 0
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
    saved_by    TEXT,
    saved_in    TEXT,
    UNIQUE (provider, task_id)
) STRICT;
CREATE INDEX tasks_by_request ON tasks (request_id, seq);
CREATE INDEX requests_by_line ON requests (line, id);
CREATE INDEX requests_by_state ON requests (state, line, id);
";

/// From format 1: the listing column, and the indexes a page is read by.
const UPGRADE_FROM_1: &str = "
ALTER TABLE requests ADD COLUMN listing INTEGER NOT NULL DEFAULT 0;
CREATE INDEX requests_by_line ON requests (line, id);
CREATE INDEX requests_by_state ON requests (state, line, id);
";

/// From format 2: who saved each task's images, and where.
const UPGRADE_FROM_2: &str = "
ALTER TABLE tasks ADD COLUMN saved_by TEXT;
ALTER TABLE tasks ADD COLUMN saved_in TEXT;
";

/// A journal in a SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn storage(path: &Path, problem: &str, error: rusqlite::Error) -> JournalError {
    JournalError::Storage {
        path: path.to_path_buf(),
        problem: format!("{problem}: {error}"),
        source: Box::new(error),
    }
}

impl SqliteStore {
    /// Opens (or creates) the journal file at `path`, and locks it.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, JournalError> {
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
        // Every statement the journal runs stays prepared (rusqlite keeps 16 by default).
        connection.set_prepared_statement_cache_capacity(64);
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
                older @ (1 | 2) => {
                    let problem = format!("could not upgrade it from format {older}");
                    if older == 1 {
                        tx.execute_batch(UPGRADE_FROM_1)
                            .map_err(|e| storage(&problem, e))?;
                    }
                    tx.execute_batch(UPGRADE_FROM_2)
                        .map_err(|e| storage(&problem, e))?;
                    tx.pragma_update(None, "user_version", JOURNAL_VERSION)
                        .map_err(|e| storage(&problem, e))?;
                }
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
        Ok(SqliteStore {
            path,
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn storage(&self, problem: &str, error: rusqlite::Error) -> JournalError {
        storage(&self.path, problem, error)
    }

    fn corrupt(&self, problem: String) -> JournalError {
        JournalError::Format {
            path: self.path.clone(),
            problem,
        }
    }
}

impl RequestRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RequestRow {
            id: row.get("id")?,
            line: row.get("line")?,
            fingerprint: row.get("fingerprint")?,
            request: row.get("request")?,
            providers: row.get("providers")?,
            state: row.get("state")?,
            provider: row.get("provider")?,
            error: row.get("error")?,
            attempts: row.get("attempts")?,
            submitting_at: row.get("submitting_at")?,
            updated_at: row.get("updated_at")?,
            listing: row.get("listing")?,
        })
    }
}

impl TaskRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(TaskRow {
            request_id: row.get("request_id")?,
            handle: row.get("handle")?,
            images: row.get("images")?,
            recorded_at: row.get("recorded_at")?,
            adopted: row.get("adopted")?,
            outcome: row.get("outcome")?,
            files: row.get("files")?,
            error: row.get("error")?,
            saved_by: row.get("saved_by")?,
            saved_in: row.get("saved_in")?,
        })
    }
}

impl SqliteStore {
    fn task(&self, row: TaskRow) -> Result<JournalTask, JournalError> {
        row.into_task(&self.path)
    }

    fn entry(
        &self,
        row: RequestRow,
        tasks: Vec<JournalTask>,
    ) -> Result<JournalEntry, JournalError> {
        row.into_entry(&self.path, tasks)
    }
}

impl JournalStore for SqliteStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn write(
        &self,
        what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.storage(what, e))?;
        change(&mut SqliteTx {
            tx: &tx,
            path: &self.path,
        })?;
        tx.commit().map_err(|e| self.storage(what, e))
    }

    fn read(&self, only: Option<&str>) -> Result<Vec<JournalEntry>, JournalError> {
        let read_error = |e| self.storage("could not read the requests", e);
        // One request by its key, or every one: two statements, so that the one a run makes
        // for each step is a lookup, not a scan of a million rows.
        let (request_sql, task_sql) = if only.is_some() {
            (
                format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"),
                format!("SELECT {TASK_COLUMNS} FROM tasks WHERE request_id = ?1 ORDER BY seq"),
            )
        } else {
            (
                format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY line, id"),
                format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY seq"),
            )
        };
        let params: &[&dyn rusqlite::ToSql] = match &only {
            Some(id) => &[id],
            None => &[],
        };
        let (requests, tasks) = {
            let connection = self.connection();
            let mut statement = connection
                .prepare_cached(&request_sql)
                .map_err(read_error)?;
            let requests: Vec<RequestRow> = statement
                .query_map(params, RequestRow::from_row)
                .map_err(read_error)?
                .collect::<Result<_, _>>()
                .map_err(read_error)?;
            let mut statement = connection.prepare_cached(&task_sql).map_err(read_error)?;
            let tasks: Vec<TaskRow> = statement
                .query_map(params, TaskRow::from_row)
                .map_err(read_error)?
                .collect::<Result<_, _>>()
                .map_err(read_error)?;
            (requests, tasks)
        };
        let mut by_request: std::collections::HashMap<String, Vec<JournalTask>> =
            std::collections::HashMap::new();
        for row in tasks {
            let request_id = row.request_id.clone();
            by_request
                .entry(request_id)
                .or_default()
                .push(self.task(row)?);
        }
        requests
            .into_iter()
            .map(|row| {
                let tasks = by_request.remove(&row.id).unwrap_or_default();
                self.entry(row, tasks)
            })
            .collect()
    }

    fn page(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        let read_error = |e| self.storage("could not read the requests", e);
        // The states are imggen's own words, not input: they go into the query as text, so
        // that each set of states has its own cached statement (and its index).
        let filter = if states.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = states
                .iter()
                .map(|state| format!("'{}'", state.as_str()))
                .collect();
            format!("state IN ({}) AND ", names.join(", "))
        };
        let (line, id) = after.map_or((-1, ""), |(line, id)| {
            (i64::try_from(line).unwrap_or(i64::MAX), id)
        });
        let connection = self.connection();
        let rows: Vec<RequestRow> = {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests WHERE {filter}(line, id) > (?1, ?2)
                     ORDER BY line, id LIMIT ?3"
                ))
                .map_err(read_error)?;
            statement
                .query_map(
                    params![line, id, i64::try_from(limit).unwrap_or(i64::MAX)],
                    RequestRow::from_row,
                )
                .map_err(read_error)?
                .collect::<Result<_, _>>()
                .map_err(read_error)?
        };
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE request_id = ?1 ORDER BY seq"
            ))
            .map_err(read_error)?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let tasks: Vec<TaskRow> = statement
                .query_map([&row.id], TaskRow::from_row)
                .map_err(read_error)?
                .collect::<Result<_, _>>()
                .map_err(read_error)?;
            let tasks = tasks
                .into_iter()
                .map(|task| self.task(task))
                .collect::<Result<_, _>>()?;
            entries.push(self.entry(row, tasks)?);
        }
        Ok(entries)
    }

    fn tally(&self, listing: u64) -> Result<Tally, JournalError> {
        let read_error = |e| self.storage("could not count the requests", e);
        let connection = self.connection();
        let mut statement = connection
            .prepare_cached(
                "SELECT state, listing >= ?1, count(*) FROM requests GROUP BY state, listing >= ?1",
            )
            .map_err(read_error)?;
        let rows: Vec<(String, bool, i64)> = statement
            .query_map([listing_value(listing)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(read_error)?
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        let mut tally = Tally::default();
        for (state, listed, count) in rows {
            let state = RequestState::parse(&state).ok_or_else(|| {
                self.corrupt(format!(
                    "a request has the state {state:?}, which imggen does not know"
                ))
            })?;
            tally
                .counts
                .push((state, listed, usize::try_from(count).unwrap_or(0)));
        }
        // Only paid tasks have rows: a fresh batch of a million lines reads none.
        let mut statement = connection
            .prepare_cached("SELECT handle FROM tasks WHERE outcome IS NOT 'failed'")
            .map_err(read_error)?;
        let mut rows = statement.query([]).map_err(read_error)?;
        while let Some(row) = rows.next().map_err(read_error)? {
            let text: String = row.get(0).map_err(read_error)?;
            let handle =
                TaskHandle::from_json(&text).map_err(|e| self.corrupt(format!("a task: {e}")))?;
            if let Some(cost) = handle.cost {
                tally.cost = tally.cost + cost;
            }
        }
        Ok(tally)
    }

    fn latest_listing(&self) -> Result<u64, JournalError> {
        let latest: Option<i64> = self
            .connection()
            .query_row("SELECT max(listing) FROM requests", [], |row| row.get(0))
            .map_err(|e| self.storage("could not read the journal", e))?;
        Ok(latest
            .and_then(|latest| u64::try_from(latest).ok())
            .unwrap_or(0))
    }

    fn last_activity(&self) -> Result<SystemTime, JournalError> {
        let latest: Option<i64> = self
            .connection()
            .query_row(
                "SELECT max(coalesce((SELECT max(updated_at) FROM requests), 0),
                            coalesce((SELECT max(recorded_at) FROM tasks), 0))",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.storage("could not read the journal", e))?;
        Ok(from_millis(latest.unwrap_or(0)))
    }

    fn tasks_of(&self, provider: ProviderId) -> Result<Vec<(String, SystemTime)>, JournalError> {
        let read_error = |e| self.storage("could not read the tasks", e);
        let connection = self.connection();
        let mut statement = connection
            .prepare_cached("SELECT task_id, recorded_at FROM tasks WHERE provider = ?1")
            .map_err(read_error)?;
        let rows = statement
            .query_map([provider.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, from_millis(row.get(1)?)))
            })
            .map_err(read_error)?;
        rows.collect::<Result<_, _>>().map_err(read_error)
    }
}

/// One SQLite transaction.
struct SqliteTx<'a> {
    tx: &'a Transaction<'a>,
    path: &'a Path,
}

impl SqliteTx<'_> {
    /// Runs a statement, prepared once per connection: a load of a million lines runs the
    /// same few statements a million times.
    fn execute(
        &self,
        problem: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<usize, JournalError> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(|e| storage(self.path, problem, e))
    }

    /// Reads one row (or none), with a statement prepared once per connection.
    fn query_row<T>(
        &self,
        problem: &str,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, JournalError> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, map).optional())
            .map_err(|e| storage(self.path, problem, e))
    }
}

impl JournalTx for SqliteTx<'_> {
    fn is_empty(&mut self) -> Result<bool, JournalError> {
        let any: Option<i64> = self.query_row(
            "could not read the journal",
            "SELECT 1 FROM requests LIMIT 1",
            [],
            |row| row.get(0),
        )?;
        Ok(any.is_none())
    }

    fn state(&mut self, id: &str) -> Result<Option<RequestState>, JournalError> {
        let state: Option<String> = self.query_row(
            "could not read a request",
            "SELECT state FROM requests WHERE id = ?1",
            [id],
            |row| row.get(0),
        )?;
        state
            .map(|state| {
                RequestState::parse(&state).ok_or_else(|| JournalError::Format {
                    path: self.path.to_path_buf(),
                    problem: format!(
                        "request {id:?} has the state {state:?}, which imggen does not know"
                    ),
                })
            })
            .transpose()
    }

    fn known(&mut self, id: &str) -> Result<Option<Known>, JournalError> {
        let found: Option<(String, String, i64)> = self.query_row(
            "could not read a request",
            "SELECT fingerprint, state, (SELECT count(*) FROM tasks WHERE request_id = requests.id)
             FROM requests WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        let Some((fingerprint, state, tasks)) = found else {
            return Ok(None);
        };
        let state = RequestState::parse(&state).ok_or_else(|| JournalError::Format {
            path: self.path.to_path_buf(),
            problem: format!("request {id:?} has the state {state:?}, which imggen does not know"),
        })?;
        Ok(Some(Known {
            fingerprint,
            state,
            tasks: u64::try_from(tasks).unwrap_or(0),
        }))
    }

    fn insert_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not plan a request",
            "INSERT INTO requests (id, line, fingerprint, request, providers, state, created_at, updated_at, listing)
             VALUES (?1, ?2, ?3, ?4, ?5, 'planned', ?6, ?6, ?7)",
            params![
                request.id,
                request.line,
                fingerprint,
                json(&request.request),
                json(&request.providers),
                millis(at),
                listing_value(listing),
            ],
        )?;
        Ok(())
    }

    fn replace_request(
        &mut self,
        request: &BatchRequest,
        fingerprint: &str,
        at: SystemTime,
        listing: u64,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not plan a request",
            "UPDATE requests SET line = ?2, fingerprint = ?3, request = ?4, providers = ?5,
             state = 'planned', provider = NULL, error = NULL, updated_at = ?6, listing = ?7 WHERE id = ?1",
            params![
                request.id,
                request.line,
                fingerprint,
                json(&request.request),
                json(&request.providers),
                millis(at),
                listing_value(listing),
            ],
        )?;
        Ok(())
    }

    fn relist(&mut self, request: &BatchRequest, listing: u64) -> Result<(), JournalError> {
        self.execute(
            "could not update a request",
            "UPDATE requests SET line = ?2, listing = ?3,
             providers = CASE state WHEN 'planned' THEN ?4 ELSE providers END WHERE id = ?1",
            params![
                request.id,
                request.line,
                listing_value(listing),
                json(&request.providers)
            ],
        )?;
        Ok(())
    }

    fn set_state(
        &mut self,
        id: &str,
        state: RequestState,
        at: SystemTime,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not update a request",
            "UPDATE requests SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, state.as_str(), millis(at)],
        )?;
        Ok(())
    }

    fn begin_submitting(
        &mut self,
        id: &str,
        providers: &[ProviderId],
        at: SystemTime,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not record a submission",
            "UPDATE requests SET providers = ?2, submitting_at = ?3, attempts = attempts + 1 WHERE id = ?1",
            params![id, json(&providers), millis(at)],
        )?;
        Ok(())
    }

    fn annotate(
        &mut self,
        id: &str,
        provider: Option<ProviderId>,
        error: Option<&str>,
        touched: Option<SystemTime>,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not record a request",
            "UPDATE requests SET provider = coalesce(?2, provider), error = ?3,
             updated_at = coalesce(?4, updated_at) WHERE id = ?1",
            params![
                id,
                provider.map(ProviderId::as_str),
                error,
                touched.map(millis)
            ],
        )?;
        Ok(())
    }

    fn task_owner(
        &mut self,
        provider: ProviderId,
        task_id: &str,
    ) -> Result<Option<String>, JournalError> {
        self.query_row(
            "could not read a task",
            "SELECT request_id FROM tasks WHERE provider = ?1 AND task_id = ?2",
            params![provider.as_str(), task_id],
            |row| row.get(0),
        )
    }

    fn insert_task(
        &mut self,
        id: &str,
        handle: &TaskHandle,
        adopted: bool,
        at: SystemTime,
    ) -> Result<(), JournalError> {
        self.execute(
            "could not record a task",
            "INSERT INTO tasks (request_id, provider, task_id, handle, images, recorded_at, adopted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                handle.provider.as_str(),
                handle.task_id,
                handle.to_json(),
                handle.images_expected.unwrap_or(1),
                millis(at),
                adopted,
            ],
        )?;
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
        let changed = self.execute(
            "could not record a task",
            "UPDATE tasks SET outcome = ?3, files = ?4, error = ?5, saved_by = ?6, saved_in = ?7
             WHERE provider = ?1 AND task_id = ?2",
            params![
                provider.as_str(),
                task_id,
                outcome.map(outcome_text),
                json(&files),
                error,
                saved.map(|saved| saved.worker.as_str()),
                saved.map(|saved| saved.dir.as_str()),
            ],
        )?;
        Ok(changed > 0)
    }
}
