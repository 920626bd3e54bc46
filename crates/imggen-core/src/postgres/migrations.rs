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
pub const MIGRATIONS: &[Migration] = &[Migration {
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
}];

/// An arbitrary, fixed number: the advisory lock migrations are applied under.
const LOCK: i64 = 0x696d_6767_6d69_6772;

pub(super) async fn apply(
    client: &mut deadpool_postgres::Object,
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
