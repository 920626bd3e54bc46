//! When the database goes away or rolls a transaction back: every call waits for it and
//! tries again, a transaction only where nothing of it can have been kept (see the [parent
//! module's docs](super)).

use std::path::Path;
use std::sync::PoisonError;
use std::time::Duration;

use super::{
    Connection, JournalError, JournalTx, LOAD_LOCK, Param, PgJournalStore, PgTx, borrowed, storage,
};
use crate::postgres::blocking::is_outage;

/// How long a call waits for the database to come back, by default: a restart or a managed
/// failover takes well under this.
pub const DEFAULT_OUTAGE_PATIENCE: Duration = Duration::from_secs(600);

/// The first wait before trying an unreachable database again; it doubles up to
/// [`OUTAGE_RETRY_MAX`].
const OUTAGE_RETRY_FIRST: Duration = Duration::from_millis(100);
const OUTAGE_RETRY_MAX: Duration = Duration::from_secs(2);

/// The database is out of reach for now: the source of a [`JournalError::Storage`] that the
/// same call may get past once it is back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Outage(String);

/// The server rolled the transaction back to get out of a deadlock with another worker's (or
/// a serialization failure): run again, it goes through.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RolledBack(String);

/// Times a transaction the server rolled back ([`RolledBack`]) is run again.
const ROLLED_BACK_TRIES: u32 = 8;

/// A failure of the database, kept as an [`Outage`] or a [`RolledBack`] when it is one.
pub(super) fn database(path: &Path, problem: &str, error: tokio_postgres::Error) -> JournalError {
    let text = match error.as_db_error() {
        // The server's own words, without the driver's "db error: " prefix.
        Some(db) => db.to_string(),
        None => error.to_string(),
    };
    let rolled_back = error.code().is_some_and(|code| {
        *code == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            || *code == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
    });
    let source: Box<dyn std::error::Error + Send + Sync> = if is_outage(&error) {
        Box::new(Outage(text.clone()))
    } else if rolled_back {
        Box::new(RolledBack(text.clone()))
    } else {
        Box::new(error)
    };
    JournalError::Storage {
        path: path.to_path_buf(),
        problem: format!("{problem}: {text}"),
        source,
    }
}

/// Whether `error` is the database out of reach: see [`Outage`].
fn is_outage_error(error: &JournalError) -> bool {
    matches!(error, JournalError::Storage { source, .. } if source.is::<Outage>())
}

impl PgJournalStore {
    /// Runs `attempt` until it gets past an outage of the database (see the [module
    /// docs](self)), for up to the store's patience, saying once that it waits and once that
    /// the database is back; and again, a few times, when the server rolled it back out of a
    /// deadlock with another worker.
    fn patiently<T>(
        &self,
        what: &str,
        attempt: &mut dyn FnMut() -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut waited = Duration::ZERO;
        let mut pause = OUTAGE_RETRY_FIRST;
        let mut rolled_back = 0;
        loop {
            match attempt() {
                Err(JournalError::Storage { ref source, .. })
                    if source.is::<RolledBack>() && rolled_back < ROLLED_BACK_TRIES =>
                {
                    // Nothing of it was kept: again, after a moment that lets the other
                    // worker's transaction end.
                    rolled_back += 1;
                    tracing::debug!(%source, "{what}: rolled back by the database; once more");
                    std::thread::sleep(Duration::from_millis(fastrand::u64(1..=20)));
                }
                Err(error) if is_outage_error(&error) && waited < self.patience => {
                    if waited.is_zero() {
                        tracing::warn!(
                            "{what}: {error}; waiting for the database to come back (up to {}s); nothing new is sent meanwhile",
                            self.patience.as_secs()
                        );
                    }
                    let pause_now = pause.min(self.patience - waited);
                    std::thread::sleep(pause_now);
                    waited += pause_now;
                    pause = (pause * 2).min(OUTAGE_RETRY_MAX);
                }
                Err(JournalError::Storage {
                    path,
                    problem,
                    source,
                }) if source.is::<Outage>() => {
                    return Err(JournalError::Storage {
                        path,
                        problem: format!(
                            "{problem} (the database could not be reached for {}s; run the batch again once it is back: nothing is sent twice)",
                            waited.as_secs()
                        ),
                        source,
                    });
                }
                answer => {
                    if !waited.is_zero() {
                        tracing::warn!(
                            "the batch journal's database is back after {:.1}s",
                            waited.as_secs_f64()
                        );
                    }
                    return answer;
                }
            }
        }
    }

    /// Runs `change` in one transaction, after taking the batch's load lock when `alone` —
    /// again should the database go away before it committed.
    pub(super) fn transaction(
        &self,
        what: &str,
        alone: bool,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        self.patiently(what, &mut || self.transaction_once(what, alone, change))
    }

    /// One try of [`transaction`](Self::transaction).
    fn transaction_once(
        &self,
        what: &str,
        alone: bool,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let path = &self.path;
        // The transaction's id, to learn whether it committed should the answer to COMMIT
        // be lost.
        let begun = self
            .connection
            .run_reconnecting(|connection| {
                let messages = connection.wait(
                    connection
                        .client
                        .simple_query("BEGIN; SELECT txid_current()"),
                )?;
                Ok(messages.into_iter().find_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        row.get(0).and_then(|id| id.parse::<i64>().ok())
                    }
                    _ => None,
                }))
            })
            .map_err(|error| storage(path, what, error))?
            .map_err(|error| database(path, what, error))?;
        let Some(xid) = begun else {
            return Err(storage(path, what, "BEGIN gave no transaction id"));
        };
        let mut tx = PgTx { store: self };
        let locked = if alone {
            tx.execute(
                "could not wait for another worker's load",
                LOAD_LOCK,
                vec![],
            )
            .map(drop)
        } else {
            Ok(())
        };
        let end = |sql: &'static str| {
            self.connection
                .run(move |connection| connection.wait(connection.client.batch_execute(sql)))
                .map_err(|error| storage(path, what, error))?
                .map_err(|error| database(path, what, error))
        };
        match locked.and_then(|()| change(&mut tx)) {
            Ok(()) => match end("COMMIT") {
                Err(error) if is_outage_error(&error) => {
                    // Cut off during COMMIT: it may have committed.
                    if self.patiently(what, &mut || self.committed(what, xid))? {
                        Ok(())
                    } else {
                        Err(error)
                    }
                }
                other => other,
            },
            Err(error) => {
                // Rolled back: nothing of the change is kept.
                let _ = end("ROLLBACK");
                Err(error)
            }
        }
    }

    /// Whether the transaction `xid` committed: asked once the database answers again.
    fn committed(&self, what: &str, xid: i64) -> Result<bool, JournalError> {
        let status: Option<String> = self
            .connection
            .run_reconnecting(move |connection| {
                let row = connection.wait(
                    connection
                        .client
                        .query_one("SELECT txid_status($1)", &[&xid]),
                )?;
                Ok(row.get(0))
            })
            .map_err(|error| storage(&self.path, what, error))?
            .map_err(|error| database(&self.path, what, error))?;
        match status.as_deref() {
            Some("committed") => Ok(true),
            Some("aborted") => Ok(false),
            // Its server process has not yet noticed its connection gone: asked again.
            Some("in progress") => Err(JournalError::Storage {
                path: self.path.clone(),
                problem: format!("{what}: its transaction is still ending"),
                source: Box::new(Outage("its transaction is still ending".to_owned())),
            }),
            _ => Err(storage(
                &self.path,
                what,
                format!(
                    "the database lost the answer to COMMIT and no longer knows transaction {xid}; run the batch again to check every request"
                ),
            )),
        }
    }

    /// Runs one statement on its own, opening the connection again when it was closed, and
    /// waiting for the database when it is away: its rows.
    pub(super) fn query(
        &self,
        problem: &'static str,
        sql: String,
        params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, JournalError> {
        let statement = std::sync::Arc::new((sql, params));
        self.patiently(problem, &mut || {
            let statement = std::sync::Arc::clone(&statement);
            self.connection
                .run_reconnecting(move |connection: &mut Connection| {
                    let (sql, params) = &*statement;
                    connection.wait(connection.client.query(sql.as_str(), &borrowed(params)))
                })
                .map_err(|error| storage(&self.path, problem, error))?
                .map_err(|error| database(&self.path, problem, error))
        })
    }
}
