//! What several processes share, kept in PostgreSQL (feature `postgres`): each API key's
//! request budget ([`PgBudget`]), and batch journals (`batch::journal::PgJournalStore`, with
//! the `batch` feature). The tables are created and upgraded by the program itself
//! ([`PgStore::migrate`], versioned, under an advisory lock so that processes starting
//! together apply each step once); nothing to install but a database to point at.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use imggen_core::Imggen;
//! use imggen_core::postgres::PgStore;
//!
//! let store = PgStore::connect("postgres://imggen@db.internal/imggen")?;
//! store.migrate().await?; // optional: done before first use anyway
//! // Every replica built this way stays, with the others, inside each key's budget.
//! let imggen = Imggen::builder()
//!     .from_env()
//!     .shared_budget(Arc::new(store.budget()))
//!     .build()?;
//! // Or, in one line: `Imggen::builder().from_env().postgres("postgres://…").build()?`.
//! # Ok(()) }
//! ```
//!
//! The driver is tokio-postgres, pooled by deadpool-postgres: maintained, async, and small
//! for a handful of statements (sqlx's compile-time checks and migrations would bring more
//! than they give here). No job-queue crate either: none would keep a re-run from posting a
//! paid create again, so that guard stays imggen's own.

pub(crate) mod blocking;
mod budget;
pub(crate) mod migrations;

use std::fmt;
use std::sync::Arc;

pub use budget::PgBudget;
pub use migrations::{MIGRATIONS, Migration};

/// PostgreSQL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL is not a PostgreSQL connection string.
    #[error("the PostgreSQL URL is not valid: {0}")]
    Url(String),
    /// The database did not answer, or refused.
    #[error("PostgreSQL at {target}: {problem}")]
    Database {
        /// Where (host, port and database; never a password).
        target: String,
        /// What failed.
        problem: String,
    },
    /// The database was set up by a newer imggen.
    #[error(
        "PostgreSQL at {target} holds imggen tables of version {found}; this imggen knows up to {known}: upgrade imggen"
    )]
    Newer {
        /// Where.
        target: String,
        /// The version found.
        found: i32,
        /// The latest this imggen knows.
        known: i32,
    },
}

/// A pool of connections to one PostgreSQL database, and what imggen keeps there.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: deadpool_postgres::Pool,
    /// Set once the tables are this imggen's version: before the first use, whoever uses it.
    ready: tokio::sync::OnceCell<()>,
    /// Host, port and database, for messages: the URL may hold a password.
    target: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

/// Connections kept open to the database, at most.
const POOL_SIZE: usize = 8;

impl PgStore {
    /// A pool for the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or the
    /// `key=value` form). No connection is made until one is needed; call
    /// [`migrate`](Self::migrate) once before use.
    pub fn connect(url: &str) -> Result<PgStore, PgError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|error: tokio_postgres::Error| PgError::Url(error.to_string()))?;
        let target = describe(&config);
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|error| PgError::Url(error.to_string()))?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                ready: tokio::sync::OnceCell::new(),
                target,
            }),
        })
    }

    /// Creates or upgrades imggen's tables to this imggen's version: see [`MIGRATIONS`]. Done
    /// before the store's first use anyway; call it to learn of a problem at start-up.
    pub async fn migrate(&self) -> Result<(), PgError> {
        let mut client = self.client().await?;
        migrations::apply(&mut client, &self.inner.target).await?;
        let _ = self.inner.ready.set(());
        Ok(())
    }

    /// A connection, once the tables are set up.
    pub(crate) async fn ready_client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.inner.ready.get_or_try_init(|| self.migrate()).await?;
        self.client().await
    }

    /// Each API key's request budget, shared by every process that uses this database.
    pub fn budget(&self) -> PgBudget {
        PgBudget::new(self.clone())
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|error| self.error(error))
    }

    pub(crate) fn error(&self, error: impl fmt::Display) -> PgError {
        PgError::Database {
            target: self.inner.target.clone(),
            problem: error.to_string(),
        }
    }
}

/// `HOST:PORT/DB` of a configuration, without user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_never_shows_the_password_it_connects_with() {
        let store = PgStore::connect("postgres://imggen:s3cret-pw@db.internal:6543/jobs").unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("db.internal:6543/jobs"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let error = store.error("refused");
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(matches!(
            PgStore::connect("mysql://nope").unwrap_err(),
            PgError::Url(_)
        ));
    }
}
