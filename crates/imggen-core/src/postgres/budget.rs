//! Each API key's request budget in one PostgreSQL row, updated in one atomic statement with
//! the database's clock as the only clock: processes on many machines, whose clocks differ,
//! pace one key together.

use futures_util::future::BoxFuture;

use super::PgStore;
use crate::budget::{RateLimit, SharedBudget, SharedBudgetError, Taken};

/// Takes one request of a key's budget, paced one request every `window / requests` (see
/// [`crate::budget::SharedBudget`]): granted when the key's next request is on schedule,
/// which then moves one interval on. The row is created by the first take. Only the key's
/// fingerprint is stored.
const TAKE: &str = "
INSERT INTO imggen_key_budgets AS b (key_fingerprint, tat, granted, updated_at)
VALUES ($1, clock_timestamp() + make_interval(secs => $2), true, clock_timestamp())
ON CONFLICT (key_fingerprint) DO UPDATE SET
    granted = b.tat <= clock_timestamp(),
    tat = CASE WHEN b.tat <= clock_timestamp()
               THEN clock_timestamp() + make_interval(secs => $2)
               ELSE b.tat END,
    updated_at = clock_timestamp()
RETURNING granted, greatest(extract(epoch FROM (tat - clock_timestamp())), 0)::float8";

/// Each API key's request budget, in PostgreSQL: [`PgStore::budget`].
#[derive(Clone, Debug)]
pub struct PgBudget {
    store: PgStore,
}

impl PgBudget {
    pub(super) fn new(store: PgStore) -> Self {
        PgBudget { store }
    }
}

impl SharedBudget for PgBudget {
    fn take<'a>(
        &'a self,
        key: &'a str,
        limit: RateLimit,
        wanted: u32,
    ) -> BoxFuture<'a, Result<Taken, SharedBudgetError>> {
        Box::pin(async move {
            if wanted == 0 {
                return Ok(Taken {
                    granted: 0,
                    retry_in: std::time::Duration::ZERO,
                });
            }
            let interval = limit.window.as_secs_f64() / f64::from(limit.requests.max(1));
            let client = self
                .store
                .ready_client()
                .await
                .map_err(|error| SharedBudgetError(error.to_string()))?;
            let row = client
                .query_one(TAKE, &[&key, &interval])
                .await
                .map_err(|error| SharedBudgetError(self.store.error(error).to_string()))?;
            let granted: bool = row.get(0);
            let wait: f64 = row.get(1);
            Ok(Taken {
                granted: u32::from(granted),
                retry_in: std::time::Duration::from_secs_f64(wait.max(0.0)),
            })
        })
    }
}
