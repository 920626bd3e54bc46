//! A PostgreSQL connection on a thread of its own, for synchronous callers — the batch
//! journal's store trait, which SQLite shaped: each call hands the thread one piece of work
//! and waits for its answer, as a SQLite call waits for the disk. No async runtime is entered
//! from inside another, whatever runtime (or none) the caller is on.

use std::future::Future;
use std::sync::mpsc;

use super::{PgError, describe};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a piece of work gets: the client, and the runtime that drives it.
pub(crate) struct Connection {
    pub(crate) client: tokio_postgres::Client,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl Connection {
    /// Runs a query's future to its end, on the connection's own runtime.
    pub(crate) fn wait<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// One connection, on its own thread; closed when dropped.
pub(crate) struct BlockingConnection {
    jobs: mpsc::Sender<Job>,
    pub(crate) target: String,
}

impl BlockingConnection {
    /// Connects to `url` (waiting for the connection), on a new thread.
    pub(crate) fn connect(url: &str) -> Result<BlockingConnection, PgError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|error: tokio_postgres::Error| PgError::Url(error.to_string()))?;
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
                let (client, connection) =
                    match runtime.block_on(config.connect(tokio_postgres::NoTls)) {
                        Ok(pair) => pair,
                        Err(error) => {
                            let _ = ready.send(Err(error.to_string()));
                            return;
                        }
                    };
                // Driven whenever a piece of work waits on the runtime.
                runtime.spawn(connection);
                let _ = ready.send(Ok(()));
                let mut connection = Connection { client, runtime };
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
}
