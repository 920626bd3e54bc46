//! A PostgreSQL connection on a thread of its own, for synchronous callers — the batch
//! journal's store trait, which SQLite shaped: each call hands the thread one piece of work
//! and waits for its answer, as a SQLite call waits for the disk. No async runtime is entered
//! from inside another, whatever runtime (or none) the caller is on.
//!
//! A connection the server closed (a restart, a failover, a network cut) is opened again, but
//! only when the caller asks for it ([`BlockingConnection::run_reconnecting`]) — at the start
//! of a transaction, never between two of its statements, which would otherwise run on a
//! fresh connection outside the transaction.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use super::{PgError, describe};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long opening a connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a piece of work gets: the client, and the runtime that drives it.
pub(crate) struct Connection {
    pub(crate) client: tokio_postgres::Client,
    pub(crate) runtime: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    /// Run on every connection opened (settings of the session).
    setup: Option<&'static str>,
}

impl Connection {
    /// Runs a query's future to its end, on the connection's own runtime.
    pub(crate) fn wait<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Opens a connection with `config` on `runtime`, and sets it up.
    fn open(
        runtime: &tokio::runtime::Runtime,
        config: &tokio_postgres::Config,
        setup: Option<&'static str>,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = runtime.block_on(config.connect(tokio_postgres::NoTls))?;
        // Driven whenever a piece of work waits on the runtime.
        runtime.spawn(connection);
        if let Some(sql) = setup {
            runtime.block_on(client.batch_execute(sql))?;
        }
        Ok(client)
    }

    /// Opens the connection again when the server has closed it.
    fn reopen_if_closed(&mut self) -> Result<(), tokio_postgres::Error> {
        if self.client.is_closed() {
            self.client = Connection::open(&self.runtime, &self.config, self.setup)?;
        }
        Ok(())
    }
}

/// Whether `error` says the database is out of reach for now — the connection closed or
/// could not be opened, the server shutting down or starting up — rather than that the
/// statement itself failed: the same work may succeed once it is back.
pub(crate) fn is_outage(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        // Class 08: connection exception; 57P: the server shut down, crashed or is starting.
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    // Refused, reset, timed out: the socket's own error.
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// One connection, on its own thread; closed when dropped.
pub(crate) struct BlockingConnection {
    jobs: mpsc::Sender<Job>,
    pub(crate) target: String,
}

impl BlockingConnection {
    /// Connects to `url` (waiting for the connection), on a new thread; `setup` runs on this
    /// connection and on every one opened again in its place.
    pub(crate) fn connect(
        url: &str,
        setup: Option<&'static str>,
    ) -> Result<BlockingConnection, PgError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error: tokio_postgres::Error| PgError::Url(error.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        let (ready, connected) = mpsc::sync_channel::<Result<(), String>>(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let failed = |problem: String| PgError::Database {
            target: target.clone(),
            problem,
        };
        std::thread::Builder::new()
            .name("imggen-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error.to_string()));
                        return;
                    }
                };
                let client = match Connection::open(&runtime, &config, setup) {
                    Ok(client) => client,
                    Err(error) => {
                        let _ = ready.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let mut connection = Connection {
                    client,
                    runtime,
                    config,
                    setup,
                };
                for job in queue {
                    job(&mut connection);
                }
            })
            .map_err(|error| failed(format!("could not start its thread: {error}")))?;
        connected
            .recv()
            .map_err(|_| failed("its thread stopped".to_owned()))?
            .map_err(failed)?;
        Ok(BlockingConnection { jobs, target })
    }

    /// Runs `work` on the connection's thread and waits for its answer.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, PgError> {
        let closed = || PgError::Database {
            target: self.target.clone(),
            problem: "the connection's thread has stopped".to_owned(),
        };
        let (answer, answered) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |connection| {
                let _ = answer.send(work(connection));
            }))
            .map_err(|_| closed())?;
        answered.recv().map_err(|_| closed())
    }

    /// [`run`](Self::run), first opening the connection again if the server closed it: for
    /// work that starts afresh (a transaction's first statement, a statement of its own).
    /// Should the connection not open, `work` is not run and the reason is the answer.
    pub(crate) fn run_reconnecting<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, tokio_postgres::Error> + Send + 'static,
    ) -> Result<Result<T, tokio_postgres::Error>, PgError> {
        self.run(move |connection| {
            connection.reopen_if_closed()?;
            work(connection)
        })
    }
}
