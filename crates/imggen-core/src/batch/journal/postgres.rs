//! The PostgreSQL store (feature `postgres`): the same rows as SQLite's, in
//! `imggen_batch_requests` and `imggen_batch_tasks` (created by [`PgStore::migrate`]), each
//! under its batch's name, so one database holds many batches. Every write is one
//! transaction; a batch is held by one process at a time (a session advisory lock on its
//! name, released when the store is dropped or the process dies), as SQLite's file lock does.
//!
//! [`PgStore::migrate`]: crate::postgres::PgStore::migrate

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use tokio_postgres::types::ToSql;

use super::store::{JournalStore, JournalTx};
use super::stored::{
    REQUEST_COLUMNS, RequestRow, TASK_COLUMNS, TaskRow, from_millis, json, listing_value, millis,
    outcome_text, state,
};
use super::transitions::Known;
use super::{JournalEntry, JournalError, JournalTask, RequestState, Tally, TaskOutcome};
use crate::batch::input::BatchRequest;
use crate::handle::TaskHandle;
use crate::postgres::blocking::{BlockingConnection, Connection};
use crate::postgres::{PgError, migrations};
use crate::provider::ProviderId;

/// Takes the batch's lock for the session: held until the store is dropped (it unlocks) or
/// the connection ends (the process died).
const LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended($1 || ' in ' || current_schema(), 0))";

/// How soon the server gives up on this connection when its peer stops answering.
const KEEPALIVE: &str = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
                         SET tcp_keepalives_count = 3";

/// Gives the batch's lock back.
const UNLOCK: &str =
    "SELECT pg_advisory_unlock(hashtextextended($1 || ' in ' || current_schema(), 0))";

/// A parameter that can cross to the connection's thread.
type Param = Box<dyn ToSql + Sync + Send>;

/// A batch's journal in PostgreSQL.
pub struct PgJournalStore {
    /// `postgres://HOST:PORT/DB#BATCH`, for messages (no user, no password).
    path: PathBuf,
    batch: String,
    connection: BlockingConnection,
    /// One transaction at a time on the one connection.
    writing: Mutex<()>,
}

impl Drop for PgJournalStore {
    fn drop(&mut self) {
        // At once, so that the batch can be opened again right away (the server would
        // release it too, once it noticed the connection gone).
        let key = format!("imggen batch {}", self.batch);
        let _ = self.connection.run(move |connection| {
            let _ = connection.wait(connection.client.query_one(UNLOCK, &[&key]));
        });
    }
}

impl std::fmt::Debug for PgJournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJournalStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn storage(path: &Path, problem: &str, error: impl std::fmt::Display) -> JournalError {
    let text = error.to_string();
    JournalError::Storage {
        path: path.to_path_buf(),
        problem: format!("{problem}: {text}"),
        source: Box::new(std::io::Error::other(text)),
    }
}

impl PgJournalStore {
    /// Opens the journal of the batch named `batch` in the database at `url` (setting up the
    /// tables first), and holds it: a second process on the same batch gets
    /// [`JournalError::Locked`].
    pub fn open(url: &str, batch: &str) -> Result<PgJournalStore, JournalError> {
        let unusable = |error: PgError| JournalError::Format {
            path: PathBuf::from(format!("postgres#{batch}")),
            problem: error.to_string(),
        };
        let connection = BlockingConnection::connect(url).map_err(unusable)?;
        let path = PathBuf::from(format!("postgres://{}#{batch}", connection.target));
        // The tables first, on this same connection.
        let target = connection.target.clone();
        connection
            .run(move |connection| {
                let Connection { client, runtime } = connection;
                runtime.block_on(migrations::apply(client, &target))
            })
            .map_err(unusable)?
            .map_err(unusable)?;
        // The server notices this connection gone within about a minute even when its
        // machine vanished without closing it, and frees the batch for another.
        connection
            .run(move |connection| connection.wait(connection.client.batch_execute(KEEPALIVE)))
            .map_err(unusable)?
            .map_err(|error| storage(&path, "could not configure the connection", error))?;
        // The batch, in this schema: the lock is the database's, the tables the schema's.
        let key = format!("imggen batch {batch}");
        let held: bool = connection
            .run(move |connection| {
                connection
                    .wait(connection.client.query_one(LOCK, &[&key]))
                    .map(|row| row.get(0))
            })
            .map_err(unusable)?
            .map_err(|error| storage(&path, "could not lock the batch", error))?;
        if !held {
            return Err(JournalError::Locked { path });
        }
        Ok(PgJournalStore {
            path,
            batch: batch.to_owned(),
            connection,
            writing: Mutex::new(()),
        })
    }

    /// Runs one statement on the connection's thread: its rows.
    fn query(
        &self,
        problem: &'static str,
        sql: String,
        params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, JournalError> {
        query(&self.connection, &self.path, problem, sql, params)
    }

    fn tasks_of_request(&self, id: &str) -> Result<Vec<JournalTask>, JournalError> {
        let rows = self.query(
            "could not read the tasks",
            format!(
                "SELECT {TASK_COLUMNS} FROM imggen_batch_tasks WHERE batch = $1 AND request_id = $2 ORDER BY seq"
            ),
            vec![Box::new(self.batch.clone()), Box::new(id.to_owned())],
        )?;
        rows.iter()
            .map(|row| task_row(row).into_task(&self.path))
            .collect()
    }

    fn entries(&self, rows: &[tokio_postgres::Row]) -> Result<Vec<JournalEntry>, JournalError> {
        rows.iter()
            .map(|row| {
                let row = request_row(row);
                let tasks = self.tasks_of_request(&row.id)?;
                row.into_entry(&self.path, tasks)
            })
            .collect()
    }
}

fn query(
    connection: &BlockingConnection,
    path: &Path,
    problem: &'static str,
    sql: String,
    params: Vec<Param>,
) -> Result<Vec<tokio_postgres::Row>, JournalError> {
    connection
        .run(move |connection: &mut Connection| {
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|param| &**param as &(dyn ToSql + Sync))
                .collect();
            connection.wait(connection.client.query(&sql, &params))
        })
        .map_err(|error| storage(path, problem, error))?
        .map_err(|error| storage(path, problem, error))
}

fn request_row(row: &tokio_postgres::Row) -> RequestRow {
    RequestRow {
        id: row.get("id"),
        line: row.get("line"),
        fingerprint: row.get("fingerprint"),
        request: row.get("request"),
        providers: row.get("providers"),
        state: row.get("state"),
        provider: row.get("provider"),
        error: row.get("error"),
        attempts: row.get("attempts"),
        submitting_at: row.get("submitting_at"),
        updated_at: row.get("updated_at"),
        listing: row.get("listing"),
    }
}

fn task_row(row: &tokio_postgres::Row) -> TaskRow {
    TaskRow {
        request_id: row.get("request_id"),
        handle: row.get("handle"),
        images: row.get("images"),
        recorded_at: row.get("recorded_at"),
        adopted: row.get("adopted"),
        outcome: row.get("outcome"),
        files: row.get("files"),
        error: row.get("error"),
    }
}

/// The parameters of a request written `planned`: `$2` to `$8` after the batch.
fn planned(request: &BatchRequest, fingerprint: &str, at: SystemTime, listing: u64) -> Vec<Param> {
    vec![
        Box::new(request.id.clone()),
        Box::new(usize_value(request.line)),
        Box::new(fingerprint.to_owned()),
        Box::new(json(&request.request)),
        Box::new(json(&request.providers)),
        Box::new(millis(at)),
        Box::new(listing_value(listing)),
    ]
}

fn usize_value(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl JournalStore for PgJournalStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn write(
        &self,
        what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let simple = |sql: &'static str| -> Result<(), JournalError> {
            self.connection
                .run(move |connection| connection.wait(connection.client.batch_execute(sql)))
                .map_err(|error| storage(&self.path, what, error))?
                .map_err(|error| storage(&self.path, what, error))
        };
        simple("BEGIN")?;
        match change(&mut PgTx { store: self }) {
            Ok(()) => simple("COMMIT"),
            Err(error) => {
                // Rolled back: nothing of the change is kept.
                let _ = simple("ROLLBACK");
                Err(error)
            }
        }
    }

    fn read(&self, only: Option<&str>) -> Result<Vec<JournalEntry>, JournalError> {
        let rows = match only {
            Some(id) => self.query(
                "could not read the requests",
                format!(
                    "SELECT {REQUEST_COLUMNS} FROM imggen_batch_requests WHERE batch = $1 AND id = $2"
                ),
                vec![Box::new(self.batch.clone()), Box::new(id.to_owned())],
            )?,
            None => self.query(
                "could not read the requests",
                format!(
                    "SELECT {REQUEST_COLUMNS} FROM imggen_batch_requests WHERE batch = $1 ORDER BY line, id"
                ),
                vec![Box::new(self.batch.clone())],
            )?,
        };
        self.entries(&rows)
    }

    fn page(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        let states: Vec<String> = states.iter().map(|s| s.as_str().to_owned()).collect();
        let (line, id) = after.map_or((-1, String::new()), |(line, id)| {
            (usize_value(line), id.to_owned())
        });
        let rows = self.query(
            "could not read the requests",
            format!(
                "SELECT {REQUEST_COLUMNS} FROM imggen_batch_requests
                 WHERE batch = $1 AND (cardinality($2::text[]) = 0 OR state = ANY($2))
                   AND (line, id) > ($3, $4)
                 ORDER BY line, id LIMIT $5"
            ),
            vec![
                Box::new(self.batch.clone()),
                Box::new(states),
                Box::new(line),
                Box::new(id),
                Box::new(usize_value(limit)),
            ],
        )?;
        self.entries(&rows)
    }

    fn tally(&self, listing: u64) -> Result<Tally, JournalError> {
        let rows = self.query(
            "could not count the requests",
            "SELECT state, listing = $2, count(*) FROM imggen_batch_requests WHERE batch = $1
             GROUP BY state, listing = $2"
                .to_owned(),
            vec![
                Box::new(self.batch.clone()),
                Box::new(listing_value(listing)),
            ],
        )?;
        let mut tally = Tally::default();
        for row in &rows {
            let text: String = row.get(0);
            let listed: bool = row.get(1);
            let count: i64 = row.get(2);
            tally.counts.push((
                state(&self.path, "?", &text)?,
                listed,
                usize::try_from(count).unwrap_or(0),
            ));
        }
        let handles = self.query(
            "could not count the requests",
            "SELECT handle FROM imggen_batch_tasks WHERE batch = $1 AND outcome IS DISTINCT FROM 'failed'"
                .to_owned(),
            vec![Box::new(self.batch.clone())],
        )?;
        for row in &handles {
            let text: String = row.get(0);
            let handle = TaskHandle::from_json(&text).map_err(|error| JournalError::Format {
                path: self.path.clone(),
                problem: format!("a task: {error}"),
            })?;
            if let Some(cost) = handle.cost {
                tally.cost = tally.cost + cost;
            }
        }
        Ok(tally)
    }

    fn latest_listing(&self) -> Result<u64, JournalError> {
        let rows = self.query(
            "could not read the journal",
            "SELECT coalesce(max(listing), 0) FROM imggen_batch_requests WHERE batch = $1"
                .to_owned(),
            vec![Box::new(self.batch.clone())],
        )?;
        let latest: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(u64::try_from(latest).unwrap_or(0))
    }

    fn last_activity(&self) -> Result<SystemTime, JournalError> {
        let rows = self.query(
            "could not read the journal",
            "SELECT greatest(
                 coalesce((SELECT max(updated_at) FROM imggen_batch_requests WHERE batch = $1), 0),
                 coalesce((SELECT max(recorded_at) FROM imggen_batch_tasks WHERE batch = $1), 0))"
                .to_owned(),
            vec![Box::new(self.batch.clone())],
        )?;
        let latest: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(from_millis(latest))
    }

    fn tasks_of(&self, provider: ProviderId) -> Result<Vec<(String, SystemTime)>, JournalError> {
        let rows = self.query(
            "could not read the tasks",
            "SELECT task_id, recorded_at FROM imggen_batch_tasks WHERE batch = $1 AND provider = $2"
                .to_owned(),
            vec![
                Box::new(self.batch.clone()),
                Box::new(provider.as_str().to_owned()),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), from_millis(row.get(1))))
            .collect())
    }
}

/// One transaction's statements, each a round trip on the store's connection.
struct PgTx<'a> {
    store: &'a PgJournalStore,
}

impl PgTx<'_> {
    fn execute(
        &self,
        problem: &'static str,
        sql: &str,
        mut params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, JournalError> {
        params.insert(0, Box::new(self.store.batch.clone()));
        self.store.query(problem, sql.to_owned(), params)
    }
}

impl JournalTx for PgTx<'_> {
    fn state(&mut self, id: &str) -> Result<Option<RequestState>, JournalError> {
        let rows = self.execute(
            "could not read a request",
            "SELECT state FROM imggen_batch_requests WHERE batch = $1 AND id = $2",
            vec![Box::new(id.to_owned())],
        )?;
        rows.first()
            .map(|row| state(&self.store.path, id, row.get(0)))
            .transpose()
    }

    fn known(&mut self, id: &str) -> Result<Option<Known>, JournalError> {
        let rows = self.execute(
            "could not read a request",
            "SELECT fingerprint, state,
                    (SELECT count(*) FROM imggen_batch_tasks t WHERE t.batch = r.batch AND t.request_id = r.id)
             FROM imggen_batch_requests r WHERE batch = $1 AND id = $2",
            vec![Box::new(id.to_owned())],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let tasks: i64 = row.get(2);
        Ok(Some(Known {
            fingerprint: row.get(0),
            state: state(&self.store.path, id, row.get(1))?,
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
            "INSERT INTO imggen_batch_requests
                 (batch, id, line, fingerprint, request, providers, state, created_at, updated_at, listing)
             VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $7, $8)",
            planned(request, fingerprint, at, listing),
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
            "UPDATE imggen_batch_requests SET line = $3, fingerprint = $4, request = $5,
                 providers = $6, state = 'planned', provider = NULL, error = NULL,
                 updated_at = $7, listing = $8
             WHERE batch = $1 AND id = $2",
            planned(request, fingerprint, at, listing),
        )?;
        Ok(())
    }

    fn relist(&mut self, request: &BatchRequest, listing: u64) -> Result<(), JournalError> {
        self.execute(
            "could not update a request",
            "UPDATE imggen_batch_requests SET line = $3, listing = $4,
                 providers = CASE state WHEN 'planned' THEN $5 ELSE providers END
             WHERE batch = $1 AND id = $2",
            vec![
                Box::new(request.id.clone()),
                Box::new(usize_value(request.line)),
                Box::new(listing_value(listing)),
                Box::new(json(&request.providers)),
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
            "UPDATE imggen_batch_requests SET state = $3, updated_at = $4 WHERE batch = $1 AND id = $2",
            vec![
                Box::new(id.to_owned()),
                Box::new(state.as_str().to_owned()),
                Box::new(millis(at)),
            ],
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
            "UPDATE imggen_batch_requests SET providers = $3, submitting_at = $4,
                 attempts = attempts + 1
             WHERE batch = $1 AND id = $2",
            vec![
                Box::new(id.to_owned()),
                Box::new(json(&providers)),
                Box::new(millis(at)),
            ],
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
            "UPDATE imggen_batch_requests SET provider = coalesce($3, provider), error = $4,
                 updated_at = coalesce($5, updated_at)
             WHERE batch = $1 AND id = $2",
            vec![
                Box::new(id.to_owned()),
                Box::new(provider.map(|p| p.as_str().to_owned())),
                Box::new(error.map(str::to_owned)),
                Box::new(touched.map(millis)),
            ],
        )?;
        Ok(())
    }

    fn task_owner(
        &mut self,
        provider: ProviderId,
        task_id: &str,
    ) -> Result<Option<String>, JournalError> {
        let rows = self.execute(
            "could not read a task",
            "SELECT request_id FROM imggen_batch_tasks WHERE batch = $1 AND provider = $2 AND task_id = $3",
            vec![
                Box::new(provider.as_str().to_owned()),
                Box::new(task_id.to_owned()),
            ],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
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
            "INSERT INTO imggen_batch_tasks
                 (batch, request_id, provider, task_id, handle, images, recorded_at, adopted)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Box::new(id.to_owned()),
                Box::new(handle.provider.as_str().to_owned()),
                Box::new(handle.task_id.clone()),
                Box::new(handle.to_json()),
                Box::new(i64::from(handle.images_expected.unwrap_or(1))),
                Box::new(millis(at)),
                Box::new(adopted),
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
    ) -> Result<bool, JournalError> {
        let rows = self.execute(
            "could not record a task",
            "UPDATE imggen_batch_tasks SET outcome = $4, files = $5, error = $6
             WHERE batch = $1 AND provider = $2 AND task_id = $3 RETURNING seq",
            vec![
                Box::new(provider.as_str().to_owned()),
                Box::new(task_id.to_owned()),
                Box::new(outcome.map(|o| outcome_text(o).to_owned())),
                Box::new(json(&files)),
                Box::new(error.map(str::to_owned)),
            ],
        )?;
        Ok(!rows.is_empty())
    }
}
