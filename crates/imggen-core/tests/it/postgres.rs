//! imggen-core on a real PostgreSQL: migrations applied once by processes that start
//! together, and one API key's request budget shared by many processes.
//!
//! These run where `IMGGEN_TEST_POSTGRES_URL` names a database (`.ci/run` starts a throwaway
//! PostgreSQL 15 and sets it). Elsewhere each test says loudly that it did not run — and
//! fails when `IMGGEN_REQUIRE_POSTGRES=1`, as CI sets it, so a run that skipped them cannot
//! pass there. Each test works in a schema of its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imggen_core::batch::journal::{Claim, JournalError, PgJournalStore, RequestState};
use imggen_core::batch::{BatchRequest, Journal, SavedBy};
use imggen_core::postgres::{MIGRATIONS, PgError, PgStore};
use imggen_core::{Cost, TaskHandle};
use imggen_core::{GenerationRequest, Imggen, RateLimit, SharedBudget, SubmitOptions};
use imggen_mock::{MockConfig, MockServer, Profile};

const KEY: &str = "sk-imggen-core-postgres-0001";

/// The test database's URL, or `None` (said loudly) where there is none.
pub(crate) fn database(test: &str) -> Option<String> {
    match std::env::var("IMGGEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("IMGGEN_REQUIRE_POSTGRES").as_deref() == Ok("1") => panic!(
            "IMGGEN_REQUIRE_POSTGRES=1 but IMGGEN_TEST_POSTGRES_URL is not set: the PostgreSQL tests must run here"
        ),
        _ => {
            say_not_run(test);
            None
        }
    }
}

/// Written to stderr itself, past the test harness's capture (which hides what a passing
/// test prints): a test that did not run must be seen.
fn say_not_run(test: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** NOT RUN: {test}: no PostgreSQL. Set IMGGEN_TEST_POSTGRES_URL (bash .ci/run starts one) ***\n"
    );
}

/// A connection of the test's own, to look at what the code under test wrote.
async fn look(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(connection);
    client
}

/// The first column of every row `sql` reads.
async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A fresh schema on the test database, and the URL that works in it.
pub(crate) async fn schema(url: &str, name: &str) -> String {
    let client = look(url).await;
    let schema = format!("{name}_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_set_the_tables_up_once() {
    let Some(url) = database("processes_starting_together_set_the_tables_up_once") else {
        return;
    };
    let url = schema(&url, "imggen_migrate").await;
    let stores: Vec<PgStore> = (0..4).map(|_| PgStore::connect(&url).unwrap()).collect();
    let results = futures_util::future::join_all(stores.iter().map(PgStore::migrate)).await;
    for result in results {
        result.unwrap();
    }
    let client = look(&url).await;
    let versions: Vec<i32> = column(
        &client,
        "SELECT version FROM imggen_migrations ORDER BY version",
    )
    .await;
    let known: Vec<i32> = MIGRATIONS.iter().map(|step| step.version).collect();
    assert_eq!(versions, known, "each step applied exactly once");
    // Set up by a newer imggen: refused, with what to do.
    client
        .execute(
            "INSERT INTO imggen_migrations (version, name) VALUES (999, 'from the future')",
            &[],
        )
        .await
        .unwrap();
    let error = stores[0].migrate().await.unwrap_err();
    assert!(
        matches!(error, PgError::Newer { found: 999, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade imggen"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takers_in_many_processes_share_one_pace_by_the_databases_clock() {
    let Some(url) = database("takers_in_many_processes_share_one_pace_by_the_databases_clock")
    else {
        return;
    };
    let url = schema(&url, "imggen_pace").await;
    PgStore::connect(&url).unwrap().migrate().await.unwrap();
    // Four processes, each with its own pool, on one key: 10 requests a second between them.
    let limit = RateLimit::new(10, Duration::from_secs(1));
    let run_for = Duration::from_millis(1_200);
    let granted = Arc::new(Mutex::new(0u32));
    let started = Instant::now();
    let mut takers = Vec::new();
    for _ in 0..4 {
        let budget = PgStore::connect(&url).unwrap().budget();
        let granted = Arc::clone(&granted);
        takers.push(tokio::spawn(async move {
            while started.elapsed() < run_for {
                let taken = budget.take("fingerprint-a", limit, 1).await.unwrap();
                *granted.lock().unwrap() += taken.granted;
                // Asks again when the budget says the next request is free.
                tokio::time::sleep(taken.retry_in.max(Duration::from_millis(1))).await;
            }
        }));
    }
    for taker in takers {
        taker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let granted = *granted.lock().unwrap();
    // One every 100 ms whoever asks: never more than the time allows (plus the first)…
    let most = u32::try_from(elapsed.as_millis() / 100).unwrap() + 1;
    assert!(granted <= most, "{granted} granted in {elapsed:?}");
    // …and most of it used.
    assert!(granted >= 8, "{granted} granted in {elapsed:?}");
    // Another key has its own budget.
    let other = PgStore::connect(&url).unwrap().budget();
    assert_eq!(
        other.take("fingerprint-b", limit, 1).await.unwrap().granted,
        1
    );
    // Only fingerprints are kept.
    let keys: Vec<String> = column(
        &look(&url).await,
        "SELECT key_fingerprint FROM imggen_key_budgets ORDER BY 1",
    )
    .await;
    assert_eq!(keys, ["fingerprint-a", "fingerprint-b"]);
}

fn runbase(server: &MockServer, database: Option<&str>, limit: RateLimit) -> Imggen {
    let client = imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap();
    let mut builder = Imggen::builder()
        .provider(imggen_runbase::provider::RunbaseProvider::new(client))
        .budget(crate::RUNBASE, limit);
    if let Some(url) = database {
        // The tables are set up by the first use, whichever replica that is.
        builder = builder.postgres(url);
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_key_stay_inside_its_budget_together() {
    let Some(url) = database("replicas_on_one_key_stay_inside_its_budget_together") else {
        return;
    };
    let url = schema(&url, "imggen_replicas").await;
    // A provider that allows 4 requests a second per key, and three replicas of a service
    // that each know it: alone, each would spend all of it.
    let limit = RateLimit::new(4, Duration::from_secs(1));
    let server = MockServer::start(
        MockConfig::default()
            .api_key(KEY)
            .profile(Profile::Fixed(Duration::from_secs(60)))
            .rate_limit(
                imggen_mock::Provider::Runbase,
                Some(imggen_mock::RateLimit::new(4, Duration::from_secs(1))),
            ),
    )
    .await
    .unwrap();
    let replicas: Vec<Imggen> = (0..3)
        .map(|_| runbase(&server, Some(&url), limit))
        .collect();
    let handle = replicas[0]
        .submit(
            &GenerationRequest::new("A lamp"),
            &SubmitOptions::provider(crate::RUNBASE),
        )
        .await
        .unwrap()
        .handles
        .remove(0);
    let mut calls = Vec::new();
    for replica in &replicas {
        for _ in 0..3 {
            let replica = replica.clone();
            let handle = handle.clone();
            calls.push(tokio::spawn(async move { replica.status(&handle).await }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let stats = server.requests();
    assert_eq!(stats.by_status.get(&429), None, "{stats:?}");
    assert_eq!(
        stats.total, 10,
        "one create and nine polls, none sent twice"
    );
    server.shutdown().await;
}

fn lamp(id: &str, line: usize, prompt: &str) -> BatchRequest {
    BatchRequest::new(
        id,
        line,
        GenerationRequest::new(prompt),
        vec![crate::RUNBLOB],
    )
}

fn paid(task: &str) -> TaskHandle {
    TaskHandle::new(crate::RUNBLOB, task, std::time::SystemTime::now())
        .unwrap()
        .with_cost(Some(Cost::usd("0.0123".parse().unwrap())))
        .with_images_expected(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_journal_in_postgres_keeps_the_rules() {
    let Some(url) = database("a_batch_journal_in_postgres_keeps_the_rules") else {
        return;
    };
    let url = schema(&url, "imggen_journal").await;
    let open = |batch: &str| PgJournalStore::open(&url, batch);
    let journal = Journal::with_store(
        Box::new(open("lamps").unwrap()),
        Arc::new(imggen_http::time::SystemClock),
    );
    let other = open("cats").unwrap();

    assert_eq!(
        journal
            .plan(&[lamp("a", 1, "a lamp"), lamp("b", 2, "a cat")])
            .unwrap()
            .added,
        2
    );
    journal.mark_submitting("a", &[crate::RUNBLOB]).unwrap();
    journal.record_task("a", &paid("t1")).unwrap();
    // Nothing is sent twice, no task belongs to two requests, a paid request is never
    // replaced: the journal's rules, whatever store keeps the rows.
    assert!(matches!(
        journal.mark_submitting("a", &[crate::RUNBLOB]).unwrap_err(),
        JournalError::Transition { .. }
    ));
    journal.mark_submitting("b", &[crate::RUNBLOB]).unwrap();
    assert!(matches!(
        journal.record_task("b", &paid("t1")).unwrap_err(),
        JournalError::TaskClaimed { .. }
    ));
    assert!(matches!(
        journal.plan(&[lamp("a", 1, "another lamp")]).unwrap_err(),
        JournalError::Mismatch { .. }
    ));
    journal
        .mark_submitted("a", crate::RUNBLOB, &[paid("t1")], None)
        .unwrap();
    journal
        .task_succeeded(
            crate::RUNBLOB,
            "t1",
            &["t1-1.png".into()],
            &SavedBy {
                worker: "test".into(),
                dir: "/renders".into(),
            },
        )
        .unwrap();
    assert_eq!(journal.finish("a").unwrap(), RequestState::Done);
    let entry = journal.entry("a").unwrap().unwrap();
    assert_eq!(entry.files(), ["t1-1.png"]);
    assert_eq!(entry.cost().to_string(), "$0.0123");
    let page = journal.page(&[RequestState::Submitting], None, 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, "b");
    let tally = journal.tally(1).unwrap();
    assert_eq!(tally.count(RequestState::Done, None), 1);
    assert_eq!(tally.cost.to_string(), "$0.0123");
    // The other batch sees none of it.
    let cats = Journal::with_store(Box::new(other), Arc::new(imggen_http::time::SystemClock));
    assert!(cats.entries().unwrap().is_empty());

    // Closed, the batch is opened again as it was left.
    drop(journal);
    let again = Journal::with_store(
        Box::new(open("lamps").unwrap()),
        Arc::new(imggen_http::time::SystemClock),
    );
    let entries = again.entries().unwrap();
    let states: Vec<(&str, RequestState)> = entries
        .iter()
        .map(|entry| (entry.id.as_str(), entry.state))
        .collect();
    assert_eq!(
        states,
        [("a", RequestState::Done), ("b", RequestState::Submitting)]
    );
}

/// Marks what a worker that died would have left: `id` held by `worker` under a lease that
/// ran out (`lapsed`) or still runs for a minute.
async fn held_by(client: &tokio_postgres::Client, id: &str, worker: &str, lapsed: bool) {
    let until = if lapsed {
        "clock_timestamp() - interval '1 second'"
    } else {
        "clock_timestamp() + interval '1 minute'"
    };
    let changed = client
        .execute(
            &format!(
                "UPDATE imggen_batch_requests SET claimed_by = $1, lease_until = {until}
                 WHERE batch = 'lamps' AND id = $2"
            ),
            &[&worker, &id],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_one_batch_each_claim_their_own_requests_and_take_over_a_dead_ones() {
    let Some(url) =
        database("workers_of_one_batch_each_claim_their_own_requests_and_take_over_a_dead_ones")
    else {
        return;
    };
    let url = schema(&url, "imggen_claims").await;
    let client = look(&url).await;
    let clock = || Arc::new(imggen_http::time::SystemClock);
    let first = Journal::with_store(
        Box::new(PgJournalStore::open(&url, "lamps").unwrap()),
        clock(),
    );
    let second = Journal::with_store(
        Box::new(PgJournalStore::open(&url, "lamps").unwrap()),
        clock(),
    );
    let lamps: Vec<BatchRequest> = (1..=6)
        .map(|i| lamp(&format!("l{i}"), i, &format!("lamp {i}")))
        .collect();
    first.plan(&lamps).unwrap();
    // The second worker's load of the same file finds every request kept.
    assert_eq!(second.plan(&lamps).unwrap().kept, 6);

    // Each request goes to one worker.
    let planned = [RequestState::Planned];
    let mine: Vec<String> = first
        .claim(&planned, None, 4, Claim::Free)
        .unwrap()
        .into_iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(mine, ["l1", "l2", "l3", "l4"]);
    let theirs: Vec<String> = second
        .claim(&planned, None, 4, Claim::Free)
        .unwrap()
        .into_iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(theirs, ["l5", "l6"]);
    // Nothing is paid for a request another worker holds.
    assert!(matches!(
        second.mark_submitting("l1", &[crate::RUNBLOB]).unwrap_err(),
        JournalError::ClaimLost { .. }
    ));
    assert_eq!(
        first.entry("l1").unwrap().unwrap().state,
        RequestState::Planned
    );
    first.mark_submitting("l1", &[crate::RUNBLOB]).unwrap();
    // Each sees the other's live claims, and waits on them rather than taking them.
    assert!(second.held_elsewhere().unwrap().is_some());
    assert!(
        second
            .claim(&planned, None, 10, Claim::Lapsed)
            .unwrap()
            .is_empty()
    );
    // Another worker sending a prompt is seen (a task list cannot tell its task apart).
    assert!(second.sending_elsewhere("lamp 1").unwrap());
    assert!(!second.sending_elsewhere("lamp 2").unwrap());
    assert!(!first.sending_elsewhere("lamp 1").unwrap());

    // A worker that died leaves its claims to run out; then they are taken over — a
    // request it left `submitting` included (to be settled, never sent again blindly).
    held_by(&client, "l1", "dead:1", true).await;
    held_by(&client, "l2", "dead:1", true).await;
    held_by(&client, "l3", "alive:2", false).await;
    let taken: Vec<(String, RequestState)> = second
        .claim(
            &[RequestState::Planned, RequestState::Submitting],
            None,
            10,
            Claim::Lapsed,
        )
        .unwrap()
        .into_iter()
        .map(|entry| (entry.id, entry.state))
        .collect();
    assert_eq!(
        taken,
        [
            ("l1".to_owned(), RequestState::Submitting),
            ("l2".to_owned(), RequestState::Planned)
        ]
    );
    // The worker whose lease ran out and was taken over cannot send for it any more.
    assert!(matches!(
        first.mark_submitting("l2", &[crate::RUNBLOB]).unwrap_err(),
        JournalError::ClaimLost { .. }
    ));
    second.mark_submitting("l2", &[crate::RUNBLOB]).unwrap();

    // Given back, a request is anyone's; a closed worker gives back all it held.
    second.release("l2").unwrap();
    drop(first);
    let held: Vec<String> = column(
        &client,
        "SELECT id FROM imggen_batch_requests WHERE batch = 'lamps' AND lease_until IS NOT NULL ORDER BY id",
    )
    .await;
    assert_eq!(held, ["l1", "l3", "l5", "l6"], "l4 was the first worker's");
}
