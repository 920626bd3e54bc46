//! The PostgreSQL store (feature `postgres`): the same rows as SQLite's, in
//! `imggen_batch_requests` and `imggen_batch_tasks` (created by [`PgStore::migrate`]), each
//! under its batch's name, so one database holds many batches. Every write is one
//! transaction.
//!
//! Several processes — on one machine or many — drain one batch together. Each opens the
//! store as a **worker** with an id of its own, and takes requests with
//! `FOR UPDATE SKIP LOCKED` as its claim: `claimed_by` is the worker, `lease_until` when the
//! claim runs out (the database's clock, the only clock the workers share). A thread renews
//! the worker's leases every third of the lease on a connection of its own; a worker that
//! dies stops renewing, and once its leases run out the others take its requests over —
//! waiting on a submitted task is free, and a create it left `submitting` is settled or
//! reported, never sent again. A create is sent only after the transaction that writes
//! `submitting` found the claim still held ([`JournalTx::check_claim`]). Loading the batch
//! file is one transaction at a time across the workers (a transaction-level advisory lock).
//!
//! **When the database goes away** (a restart, a failover, a network cut), every call waits
//! for it — opening the connection again — for up to [`DEFAULT_OUTAGE_PATIENCE`] (see
//! [`PgJournalStore::with_outage_patience`]) and says so once: no create is sent meanwhile
//! (`submitting` cannot be written), and a task created just before is held by the call that
//! records it until the database is back. A transaction cut off before its `COMMIT` was
//! rolled back by the server and is run again; one cut off during its `COMMIT` is looked up
//! by its transaction id (`txid_status`) once the database answers, and run again only if it
//! did not commit. Past the patience the call fails, naming what it could not write (a
//! task's handle included), and the batch stops.
//!
//! [`PgStore::migrate`]: crate::postgres::PgStore::migrate

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use tokio_postgres::types::ToSql;

use super::store::{Claim, JournalStore, JournalTx};
use super::stored::{
    REQUEST_COLUMNS, RequestRow, TASK_COLUMNS, TaskRow, from_millis, json, listing_value, millis,
    outcome_text, state,
};
use super::transitions::Known;
use super::{JournalEntry, JournalError, JournalTask, RequestState, SavedBy, Tally, TaskOutcome};
use crate::batch::input::BatchRequest;
use crate::handle::TaskHandle;
use crate::postgres::blocking::{BlockingConnection, Connection, is_outage};
use crate::postgres::{PgError, migrations};
use crate::provider::ProviderId;

/// One load of the batch file at a time, across every worker: held to the end of the
/// transaction.
const LOAD_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('imggen batch ' || $1 || ' in ' || current_schema(), 0))";

/// How soon the server gives up on this connection when its peer stops answering.
const KEEPALIVE: &str = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
                         SET tcp_keepalives_count = 3";

/// How long a claim lasts unless renewed, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// This worker's claimed rows (`$1` the batch, `$2` the worker), locked in line order — the
/// order a load of the batch file locks them in — so that a statement over all of them never
/// deadlocks with another worker's load; to be followed by an `UPDATE … r` and [`OWN_ROWS`].
const OWN_CLAIMS: &str = "WITH own AS (
    SELECT id FROM imggen_batch_requests
    WHERE batch = $1 AND claimed_by = $2 AND lease_until IS NOT NULL
    ORDER BY line, id FOR UPDATE)";
const OWN_ROWS: &str = "FROM own WHERE r.batch = $1 AND r.id = own.id";

/// The states a worker holds requests in (the others are ended, or wait for a person).
const UNFINISHED: &str = "('planned', 'submitting', 'submitted')";

mod outage;

pub use outage::DEFAULT_OUTAGE_PATIENCE;
use outage::database;

/// A parameter that can cross to the connection's thread.
type Param = Box<dyn ToSql + Sync + Send>;

/// A batch's journal in PostgreSQL, opened by one worker.
pub struct PgJournalStore {
    /// `postgres://HOST:PORT/DB#BATCH`, for messages (no user, no password).
    path: PathBuf,
    batch: String,
    /// This worker, as its claims name it: unique to this store.
    worker: String,
    /// How long a claim lasts unless renewed.
    lease: Duration,
    /// How long a call waits for the database to come back.
    patience: Duration,
    connection: BlockingConnection,
    /// One transaction at a time on the one connection.
    writing: Mutex<()>,
    /// Stops the lease renewer when dropped.
    _renewer: mpsc::Sender<()>,
}

impl Drop for PgJournalStore {
    fn drop(&mut self) {
        // Every claim given back at once, so that the other workers need not wait out the
        // lease (a worker that dies gives nothing back: its leases run out instead).
        let (batch, worker) = (self.batch.clone(), self.worker.clone());
        let _ = self.connection.run_reconnecting(move |connection| {
            connection.wait(connection.client.execute(
                &format!(
                    "{OWN_CLAIMS} UPDATE imggen_batch_requests r SET lease_until = NULL {OWN_ROWS}"
                ),
                &[&batch, &worker],
            ))
        });
    }
}

impl std::fmt::Debug for PgJournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJournalStore")
            .field("path", &self.path)
            .field("worker", &self.worker)
            .field("lease", &self.lease)
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

/// A worker id no other store has: the host, the process and the moment it opened.
fn worker_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static OPENED: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!(
        "{}:{}:{nanos:x}.{}",
        crate::batch::host_name(),
        std::process::id(),
        OPENED.fetch_add(1, Ordering::Relaxed)
    )
}

impl PgJournalStore {
    /// Opens the journal of the batch named `batch` in the database at `url` (setting up the
    /// tables first) as one of its workers, with claims that last [`DEFAULT_LEASE`] unless
    /// renewed.
    pub fn open(url: &str, batch: &str) -> Result<PgJournalStore, JournalError> {
        PgJournalStore::open_with_lease(url, batch, DEFAULT_LEASE)
    }

    /// [`open`](Self::open), with claims that last `lease` unless renewed (renewed every
    /// third of it): the longest a dead worker's requests wait before another takes them.
    pub fn open_with_lease(
        url: &str,
        batch: &str,
        lease: Duration,
    ) -> Result<PgJournalStore, JournalError> {
        let unusable = |error: PgError| JournalError::Format {
            path: PathBuf::from(format!("postgres#{batch}")),
            problem: error.to_string(),
        };
        let lease = lease.max(Duration::from_millis(300));
        // The server notices this connection gone within about a minute even when its
        // machine vanished without closing it.
        let connection = BlockingConnection::connect(url, Some(KEEPALIVE)).map_err(unusable)?;
        let path = PathBuf::from(format!("postgres://{}#{batch}", connection.target));
        // The tables first, on this same connection.
        let target = connection.target.clone();
        connection
            .run(move |connection| {
                let Connection {
                    client, runtime, ..
                } = connection;
                runtime.block_on(migrations::apply(client, &target))
            })
            .map_err(unusable)?
            .map_err(unusable)?;
        let worker = worker_id();
        let renewer = renew_leases(
            BlockingConnection::connect(url, Some(KEEPALIVE)).map_err(unusable)?,
            batch.to_owned(),
            worker.clone(),
            lease,
        );
        Ok(PgJournalStore {
            path,
            batch: batch.to_owned(),
            worker,
            lease,
            patience: DEFAULT_OUTAGE_PATIENCE,
            connection,
            writing: Mutex::new(()),
            _renewer: renewer,
        })
    }

    /// How long each call waits for the database when it cannot be reached (a restart, a
    /// failover), [`DEFAULT_OUTAGE_PATIENCE`] unless set: nothing is sent meanwhile, and past
    /// it the call fails and the batch stops.
    #[must_use]
    pub fn with_outage_patience(mut self, patience: Duration) -> PgJournalStore {
        self.patience = patience;
        self
    }

    /// This worker's id, as its claims name it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn lease_millis(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
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

/// Renews the worker's leases every third of `lease`, on a connection of its own (a long
/// transaction on the store's connection holds nothing up), until the returned sender is
/// dropped. A renewal that fails is tried again at the next turn; should the leases run out
/// meanwhile, the worker's next create finds its claim lost and sends nothing.
fn renew_leases(
    connection: BlockingConnection,
    batch: String,
    worker: String,
    lease: Duration,
) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let every = lease / 3;
    let millis = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let spawned = std::thread::Builder::new()
        .name("imggen-lease".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let (batch, worker) = (batch.clone(), worker.clone());
                // A connection the server closed is opened again at the next turn.
                let renewed = connection.run_reconnecting(move |connection| {
                    connection.wait(connection.client.execute(
                        &format!(
                            "{OWN_CLAIMS} UPDATE imggen_batch_requests r
                             SET lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'
                             {OWN_ROWS}"
                        ),
                        &[&batch, &worker, &millis],
                    ))
                });
                match renewed {
                    Ok(Ok(_)) => {}
                    // The store's own calls say when the database is away.
                    Ok(Err(error)) if is_outage(&error) => {
                        tracing::debug!(%error, "could not renew this worker's claims on the batch");
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "could not renew this worker's claims on the batch");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not renew this worker's claims on the batch");
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start renewing this worker's claims; they last one lease");
    }
    stop
}

/// Parameters as the driver takes them.
fn borrowed(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| &**param as &(dyn ToSql + Sync))
        .collect()
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
        saved_by: row.get("saved_by"),
        saved_in: row.get("saved_in"),
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
        self.transaction(what, false, change)
    }

    fn write_alone(
        &self,
        what: &str,
        change: &mut dyn FnMut(&mut dyn JournalTx) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.transaction(what, true, change)
    }

    fn claim(
        &self,
        states: &[RequestState],
        after: Option<(usize, &str)>,
        limit: usize,
        which: Claim,
    ) -> Result<Vec<JournalEntry>, JournalError> {
        let states: Vec<String> = states.iter().map(|s| s.as_str().to_owned()).collect();
        let (line, id) = after.map_or((-1, String::new()), |(line, id)| {
            (usize_value(line), id.to_owned())
        });
        let whose = match which {
            Claim::Free => {
                "(claimed_by IS NULL OR lease_until IS NULL OR claimed_by = $6
                  OR lease_until < clock_timestamp())"
            }
            Claim::Lapsed => "(claimed_by <> $6 AND lease_until < clock_timestamp())",
        };
        let mut rows = self.query(
            "could not claim requests",
            format!(
                "WITH due AS (
                     SELECT id FROM imggen_batch_requests
                     WHERE batch = $1 AND state = ANY($2) AND (line, id) > ($3, $4) AND {whose}
                     ORDER BY line, id LIMIT $5
                     FOR UPDATE SKIP LOCKED)
                 UPDATE imggen_batch_requests r
                 SET claimed_by = $6, lease_until = clock_timestamp() + $7::bigint * interval '1 millisecond'
                 FROM due WHERE r.batch = $1 AND r.id = due.id
                 RETURNING r.*"
            ),
            vec![
                Box::new(self.batch.clone()),
                Box::new(states),
                Box::new(line),
                Box::new(id),
                Box::new(usize_value(limit)),
                Box::new(self.worker.clone()),
                Box::new(self.lease_millis()),
            ],
        )?;
        // RETURNING keeps no order.
        rows.sort_by_cached_key(|row| (row.get::<_, i64>("line"), row.get::<_, String>("id")));
        self.entries(&rows)
    }

    fn release(&self, id: &str) -> Result<(), JournalError> {
        self.query(
            "could not give a request back",
            "UPDATE imggen_batch_requests SET lease_until = NULL
             WHERE batch = $1 AND id = $2 AND claimed_by = $3"
                .to_owned(),
            vec![
                Box::new(self.batch.clone()),
                Box::new(id.to_owned()),
                Box::new(self.worker.clone()),
            ],
        )?;
        Ok(())
    }

    fn held_elsewhere(&self) -> Result<Option<Duration>, JournalError> {
        let rows = self.query(
            "could not read the batch's claims",
            format!(
                "SELECT (extract(epoch FROM min(lease_until) - clock_timestamp()) * 1000)::bigint
                 FROM imggen_batch_requests
                 WHERE batch = $1 AND state IN {UNFINISHED} AND claimed_by <> $2
                   AND lease_until IS NOT NULL"
            ),
            vec![Box::new(self.batch.clone()), Box::new(self.worker.clone())],
        )?;
        // No row held elsewhere: `min` is NULL.
        let left: Option<i64> = rows.first().and_then(|row| row.get(0));
        Ok(left.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
    }

    fn sending_elsewhere(&self, prompt: &str) -> Result<bool, JournalError> {
        let rows = self.query(
            "could not read the batch's claims",
            "SELECT EXISTS (SELECT 1 FROM imggen_batch_requests
                 WHERE batch = $1 AND state = 'submitting' AND claimed_by IS DISTINCT FROM $2
                   AND lease_until > clock_timestamp() AND request::jsonb ->> 'prompt' = $3)"
                .to_owned(),
            vec![
                Box::new(self.batch.clone()),
                Box::new(self.worker.clone()),
                Box::new(prompt.to_owned()),
            ],
        )?;
        Ok(rows.first().is_some_and(|row| row.get(0)))
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
            "SELECT state, listing >= $2, count(*) FROM imggen_batch_requests WHERE batch = $1
             GROUP BY state, listing >= $2"
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
    /// One statement of the transaction, on its connection as it is: a connection that was
    /// lost fails the statement (and so the transaction), never opens a new one.
    fn execute(
        &self,
        problem: &'static str,
        sql: &str,
        mut params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, JournalError> {
        params.insert(0, Box::new(self.store.batch.clone()));
        let sql = sql.to_owned();
        let path = &self.store.path;
        self.store
            .connection
            .run(move |connection: &mut Connection| {
                connection.wait(connection.client.query(sql.as_str(), &borrowed(&params)))
            })
            .map_err(|error| storage(path, problem, error))?
            .map_err(|error| database(path, problem, error))
    }
}

impl JournalTx for PgTx<'_> {
    fn is_empty(&mut self) -> Result<bool, JournalError> {
        let rows = self.execute(
            "could not read the journal",
            "SELECT NOT EXISTS (SELECT 1 FROM imggen_batch_requests WHERE batch = $1)",
            vec![],
        )?;
        Ok(rows.first().is_none_or(|row| row.get(0)))
    }

    fn check_claim(&mut self, id: &str) -> Result<(), JournalError> {
        // Held (or taken, when no live worker holds it) and renewed, in this transaction:
        // a worker whose lease ran out and was taken over finds it held by another.
        let rows = self.execute(
            "could not check this worker's claim",
            "UPDATE imggen_batch_requests
             SET claimed_by = $3, lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond'
             WHERE batch = $1 AND id = $2
               AND (claimed_by IS NULL OR lease_until IS NULL OR claimed_by = $3
                    OR lease_until < clock_timestamp())
             RETURNING id",
            vec![
                Box::new(id.to_owned()),
                Box::new(self.store.worker.clone()),
                Box::new(self.store.lease_millis()),
            ],
        )?;
        if rows.is_empty() {
            return Err(match self.state(id)? {
                Some(_) => JournalError::ClaimLost {
                    path: self.store.path.clone(),
                    id: id.to_owned(),
                },
                None => JournalError::NoSuchRequest {
                    path: self.store.path.clone(),
                    id: id.to_owned(),
                },
            });
        }
        Ok(())
    }

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
        saved: Option<&SavedBy>,
    ) -> Result<bool, JournalError> {
        let rows = self.execute(
            "could not record a task",
            "UPDATE imggen_batch_tasks SET outcome = $4, files = $5, error = $6, saved_by = $7,
                 saved_in = $8
             WHERE batch = $1 AND provider = $2 AND task_id = $3 RETURNING seq",
            vec![
                Box::new(provider.as_str().to_owned()),
                Box::new(task_id.to_owned()),
                Box::new(outcome.map(|o| outcome_text(o).to_owned())),
                Box::new(json(&files)),
                Box::new(error.map(str::to_owned)),
                Box::new(saved.map(|saved| saved.worker.clone())),
                Box::new(saved.map(|saved| saved.dir.clone())),
            ],
        )?;
        Ok(!rows.is_empty())
    }
}
