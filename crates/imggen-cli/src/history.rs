//! The local history: every task the command line creates, written the moment it exists —
//! before any wait begins — so a paid task stays within reach after the terminal is closed.
//!
//! One SQLite file, `IMGGEN_HOME/history.sqlite` (by default the user's data directory,
//! `~/.local/share/imggen` on Linux). It is a convenience: a history that cannot be opened or
//! written never stops a command — a warning says so, once — and several imggen processes
//! write it at once (WAL, a busy timeout).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use imggen_core::{Cost, TaskHandle};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// The variable that moves the history (and anything else imggen keeps) elsewhere.
pub(crate) const HOME_ENV: &str = "IMGGEN_HOME";

const FILE_NAME: &str = "history.sqlite";

/// How long a write waits for another process's write to the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    provider     TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    handle       TEXT NOT NULL,
    prompt       TEXT,
    cost_usd     TEXT NOT NULL,
    cost_credits INTEGER NOT NULL,
    status       TEXT NOT NULL,
    files        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (provider, task_id)
);
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (created_at);
";

/// Statuses after which a task needs nothing more.
const FINISHED: [&str; 2] = ["succeeded", "failed"];

/// One task of the history, as `imggen list --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The provider.
    pub provider: String,
    /// The provider's task id.
    pub task_id: String,
    /// The JSON handle, as `imggen wait` reads it.
    pub handle: serde_json::Value,
    /// What it was asked to draw, when known.
    pub prompt: Option<String>,
    /// What its create charged (`{"usd","credits"}`).
    pub cost: crate::output::CostOutput,
    /// `created`, a status read since (`running`, …), `succeeded` or `failed`.
    pub status: String,
    /// The images saved from it, as paths.
    pub files: Vec<String>,
    /// When imggen learned of it (RFC 3339, UTC).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// The history, opened on first use.
pub(crate) struct History {
    path: Option<PathBuf>,
    connection: OnceLock<Option<Mutex<Connection>>>,
    warned: std::sync::atomic::AtomicBool,
    warn: Box<dyn Fn(&str) + Send + Sync>,
}

impl History {
    /// The history at its usual place; `warn` says (once) when it cannot be used.
    pub(crate) fn new(warn: impl Fn(&str) + Send + Sync + 'static) -> Self {
        History {
            path: location(),
            connection: OnceLock::new(),
            warned: std::sync::atomic::AtomicBool::new(false),
            warn: Box::new(warn),
        }
    }

    /// Where the history is kept.
    pub(crate) fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    fn connection(&self) -> Option<&Mutex<Connection>> {
        self.connection
            .get_or_init(|| {
                let Some(path) = &self.path else {
                    self.warn_once(format!(
                        "no data directory to keep the task history in; set {HOME_ENV}"
                    ));
                    return None;
                };
                match open(path) {
                    Ok(connection) => Some(Mutex::new(connection)),
                    Err(error) => {
                        self.warn_once(format!(
                            "the task history {} cannot be opened ({error}); the command goes on without it",
                            path.display()
                        ));
                        None
                    }
                }
            })
            .as_ref()
    }

    fn warn_once(&self, message: String) {
        if !self.warned.swap(true, std::sync::atomic::Ordering::SeqCst) {
            (self.warn)(&message);
        }
    }

    /// Runs `work` on the connection; a failure is a warning (once), never an error.
    fn write(&self, what: &str, work: impl FnOnce(&Connection) -> rusqlite::Result<()>) {
        let Some(connection) = self.connection() else {
            return;
        };
        let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = work(&connection) {
            let path = self.path.as_ref().map(|p| p.display().to_string());
            self.warn_once(format!(
                "could not record {what} in the task history {} ({error}); the command goes on without it",
                path.unwrap_or_default()
            ));
        }
    }

    /// Records a task the moment it exists (paid for).
    pub(crate) fn created(&self, handle: &TaskHandle) {
        self.upsert("a created task", handle, "created", &[], "DO NOTHING");
    }

    /// Records a task's latest status (a task the history does not have is added: `imggen
    /// wait` on a handle from elsewhere). Nothing is written when the status is the one
    /// already kept, or the task has ended: a poll that learns nothing new costs no disk
    /// write.
    pub(crate) fn status(&self, handle: &TaskHandle, status: &str) {
        self.upsert(
            "a status",
            handle,
            status,
            &[],
            "DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
             WHERE tasks.status <> excluded.status
               AND tasks.status NOT IN ('succeeded', 'failed')",
        );
    }

    /// Records the files saved from a task, which has succeeded.
    pub(crate) fn saved(&self, handle: &TaskHandle, files: &[String]) {
        self.upsert(
            "saved files",
            handle,
            "succeeded",
            files,
            "DO UPDATE SET status = excluded.status, files = excluded.files,
                 updated_at = excluded.updated_at",
        );
    }

    /// One statement: the task as `status` with `files`, or `on_conflict` (SQLite's upsert
    /// clause) when the history has it already.
    fn upsert(
        &self,
        what: &str,
        handle: &TaskHandle,
        status: &str,
        files: &[String],
        on_conflict: &str,
    ) {
        let cost = handle.cost.unwrap_or(Cost::ZERO);
        let now = now();
        let prompt = handle
            .summary
            .as_ref()
            .map(|summary| summary.prompt.clone());
        let files = serde_json::to_string(files).unwrap_or_else(|_| "[]".to_owned());
        self.write(what, |connection| {
            connection
                .execute(
                    &format!(
                        "INSERT INTO tasks (provider, task_id, handle, prompt, cost_usd,
                             cost_credits, status, files, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                         ON CONFLICT (provider, task_id) {on_conflict}"
                    ),
                    params![
                        handle.provider.as_str(),
                        handle.task_id,
                        handle.to_json(),
                        prompt,
                        cost.usd.to_plain_string(),
                        i64::try_from(cost.credits.0).unwrap_or(i64::MAX),
                        status,
                        files,
                        now,
                    ],
                )
                .map(drop)
        });
    }

    /// The latest `limit` tasks, newest first.
    pub(crate) fn recent(&self, limit: usize) -> Result<Vec<HistoryEntry>, String> {
        self.read(
            "SELECT provider, task_id, handle, prompt, cost_usd, cost_credits, status, files,
                    created_at, updated_at
             FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?1",
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
    }

    /// Every task not finished, oldest first: what `imggen wait --pending` resumes.
    pub(crate) fn pending(&self) -> Result<Vec<HistoryEntry>, String> {
        let finished = FINISHED.map(|status| format!("'{status}'")).join(", ");
        self.read(
            &format!(
                "SELECT provider, task_id, handle, prompt, cost_usd, cost_credits, status, files,
                        created_at, updated_at
                 FROM tasks WHERE status NOT IN ({finished})
                 ORDER BY created_at, rowid LIMIT ?1"
            ),
            i64::MAX,
        )
    }

    fn read(&self, sql: &str, limit: i64) -> Result<Vec<HistoryEntry>, String> {
        let path = self.path.as_ref().ok_or_else(|| {
            format!("no data directory to keep the task history in; set {HOME_ENV}")
        })?;
        if !path.exists() {
            return Ok(Vec::new());
        }
        let connection = self
            .connection()
            .ok_or_else(|| format!("the task history {} cannot be opened", path.display()))?;
        let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
        let read = || -> rusqlite::Result<Vec<HistoryEntry>> {
            let mut statement = connection.prepare(sql)?;
            let rows = statement.query_map([limit], |row| {
                let handle: String = row.get(2)?;
                let files: String = row.get(7)?;
                let credits: i64 = row.get(5)?;
                Ok(HistoryEntry {
                    provider: row.get(0)?,
                    task_id: row.get(1)?,
                    handle: serde_json::from_str(&handle)
                        .unwrap_or(serde_json::Value::String(handle)),
                    prompt: row.get(3)?,
                    cost: crate::output::CostOutput {
                        usd: row.get(4)?,
                        credits: u64::try_from(credits).unwrap_or(0),
                    },
                    status: row.get(6)?,
                    files: serde_json::from_str(&files).unwrap_or_default(),
                    created_at: row.get(8)?,
                    updated_at: row.get(9)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|error| format!("the task history {}: {error}", path.display()))
    }

    /// A task's history entry, if it has one.
    #[cfg(test)]
    fn entry(&self, provider: &str, task_id: &str) -> Option<(String, String)> {
        use rusqlite::OptionalExtension as _;
        let connection = self
            .connection()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connection
            .query_row(
                "SELECT status, files FROM tasks WHERE provider = ?1 AND task_id = ?2",
                params![provider, task_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .ok()
            .flatten()
    }
}

/// `IMGGEN_HOME/history.sqlite`, else the user's data directory's `imggen/history.sqlite`.
fn location() -> Option<PathBuf> {
    match std::env::var_os(HOME_ENV) {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home).join(FILE_NAME)),
        _ => dirs::data_dir().map(|dir| dir.join("imggen").join(FILE_NAME)),
    }
}

fn open(path: &PathBuf) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(error.to_string()),
            )
        })?;
    }
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: a reader never blocks a writer, and a write is durable once it returns (a task
    // recorded survives kill -9 the instant after).
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

/// Now, RFC 3339 in UTC, to the millisecond: sorts as text.
fn now() -> String {
    imggen_core::handle::format_time(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(dir: &std::path::Path) -> History {
        History {
            path: Some(dir.join(FILE_NAME)),
            connection: OnceLock::new(),
            warned: std::sync::atomic::AtomicBool::new(false),
            warn: Box::new(|_| {}),
        }
    }

    #[test]
    fn a_task_is_recorded_then_followed_to_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let history = history(dir.path());
        let handle: TaskHandle = "runbase:run_01ABC".parse().unwrap();
        history.created(&handle);
        assert_eq!(history.pending().unwrap().len(), 1);
        history.status(&handle, "running");
        history.saved(&handle, &["out/run_01ABC-1.png".to_owned()]);
        assert_eq!(
            history.entry("runbase", "run_01ABC"),
            Some(("succeeded".into(), "[\"out/run_01ABC-1.png\"]".into()))
        );
        // A late status read does not undo an ending.
        history.status(&handle, "running");
        assert!(history.pending().unwrap().is_empty());
        let recent = history.recent(10).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].files, ["out/run_01ABC-1.png"]);
    }

    #[test]
    fn a_history_that_cannot_be_written_warns_once_and_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the history's folder should be.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let warnings = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&warnings);
        let history = History {
            path: Some(blocked.join(FILE_NAME)),
            connection: OnceLock::new(),
            warned: std::sync::atomic::AtomicBool::new(false),
            warn: Box::new(move |message| sink.lock().unwrap().push(message.to_owned())),
        };
        let handle: TaskHandle = "runbase:run_01ABC".parse().unwrap();
        history.created(&handle);
        history.status(&handle, "running");
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("cannot be opened"), "{warnings:?}");
    }
}
