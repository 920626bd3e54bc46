//! imggen's tables in PostgreSQL, created and upgraded by the program: each step is applied
//! once, in order, in one transaction with its record in `imggen_migrations`, under an
//! advisory lock — processes that start together wait for each other instead of racing.

use super::PgError;

/// One step of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number: steps are applied in this order, each once.
    pub version: i32,
    /// What it does.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every step, oldest first. A step, once released, never changes: a change is a new step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "a request budget per API key fingerprint",
        sql: "CREATE TABLE imggen_key_budgets (
                  key_fingerprint text PRIMARY KEY,
                  -- When the key's next request is on schedule (the database's clock).
                  tat             timestamptz NOT NULL,
                  -- Whether the latest take was granted.
                  granted         boolean NOT NULL,
                  updated_at      timestamptz NOT NULL
              )",
    },
    Migration {
        version: 2,
        name: "batch journals: a row per request and per task, under the batch's name",
        sql: "CREATE TABLE imggen_batch_requests (
                  batch         text NOT NULL,
                  id            text NOT NULL,
                  line          bigint NOT NULL,
                  fingerprint   text NOT NULL,
                  request       text NOT NULL,
                  providers     text NOT NULL,
                  state         text NOT NULL CHECK (state IN ('planned', 'submitting', 'submitted', 'done', 'failed', 'unknown')),
                  provider      text,
                  error         text,
                  attempts      bigint NOT NULL DEFAULT 0,
                  submitting_at bigint,
                  created_at    bigint NOT NULL,
                  updated_at    bigint NOT NULL,
                  listing       bigint NOT NULL DEFAULT 0,
                  PRIMARY KEY (batch, id)
              );
              CREATE INDEX imggen_batch_requests_by_line ON imggen_batch_requests (batch, line, id);
              CREATE INDEX imggen_batch_requests_by_state ON imggen_batch_requests (batch, state, line, id);
              CREATE TABLE imggen_batch_tasks (
                  seq         bigserial PRIMARY KEY,
                  batch       text NOT NULL,
                  request_id  text NOT NULL,
                  provider    text NOT NULL,
                  task_id     text NOT NULL,
                  handle      text NOT NULL,
                  images      bigint NOT NULL,
                  recorded_at bigint NOT NULL,
                  adopted     boolean NOT NULL DEFAULT false,
                  outcome     text CHECK (outcome IN ('succeeded', 'failed')),
                  files       text NOT NULL DEFAULT '[]',
                  error       text,
                  UNIQUE (batch, provider, task_id),
                  FOREIGN KEY (batch, request_id) REFERENCES imggen_batch_requests (batch, id)
              );
              CREATE INDEX imggen_batch_tasks_by_request ON imggen_batch_tasks (batch, request_id, seq)",
    },
    Migration {
        version: 3,
        name: "batch journals drained by several workers: claims with a lease, and who saved what where",
        sql: "ALTER TABLE imggen_batch_requests
                  ADD COLUMN claimed_by  text,
                  -- When the claim runs out unless renewed (the database's clock); NULL: given back.
                  ADD COLUMN lease_until timestamptz;
              CREATE INDEX imggen_batch_requests_by_claim
                  ON imggen_batch_requests (batch, claimed_by) WHERE lease_until IS NOT NULL;
              ALTER TABLE imggen_batch_tasks
                  ADD COLUMN saved_by text,
                  ADD COLUMN saved_in text",
    },
];

/// An arbitrary, fixed number: the advisory lock migrations are applied under.
const LOCK: i64 = 0x696d_6767_6d69_6772;

pub(crate) async fn apply(
    client: &mut tokio_postgres::Client,
    target: &str,
) -> Result<(), PgError> {
    let fail = |error: tokio_postgres::Error| PgError::Database {
        target: target.to_owned(),
        problem: format!("could not set up imggen's tables: {error}"),
    };
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS imggen_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(fail)?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM imggen_migrations",
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |step| step.version);
    if applied > known {
        return Err(PgError::Newer {
            target: target.to_owned(),
            found: applied,
            known,
        });
    }
    for step in MIGRATIONS.iter().filter(|step| step.version > applied) {
        tx.batch_execute(step.sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO imggen_migrations (version, name) VALUES ($1, $2)",
            &[&step.version, &step.name],
        )
        .await
        .map_err(fail)?;
        tracing::info!(
            version = step.version,
            name = step.name,
            "applied a PostgreSQL migration"
        );
    }
    tx.commit().await.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_from_one_without_gaps() {
        for (index, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                step.version,
                i32::try_from(index).unwrap() + 1,
                "{}",
                step.name
            );
        }
    }
}
