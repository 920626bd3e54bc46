//! Benchmark 3, rate budget: 100 concurrent runbase jobs on one key under the mock's 20 requests per
//! 10 s, in virtual time: how many 429s, and how much of the budget went to useful polls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use imggen_core::{GenerationRequest, Imggen, SubmitOptions, WaitOptions};
use imggen_http::time::{Clock, SleepFuture, Sleeper};
use imggen_mock::{MockClock, MockConfig, MockServer, Profile};

use super::harness::{Summary, parse_timestamp};
use super::polling::SEED;
use super::report::{Section, Table, Target, Verdict, fixed};

const KEY: &str = "sk-bench-budget-0001";

/// One virtual clock for imggen-core and the mock. Only imggen-core's request scheduler
/// sleeps, and never while a request it allowed is in flight, so moving the mock's clock by
/// each of its sleeps is exact: time passes only when every job is waiting for its turn.
#[derive(Clone, Debug)]
struct VirtualTime(MockClock);

impl Clock for VirtualTime {
    fn now(&self) -> Instant {
        self.0.now()
    }

    fn wall(&self) -> SystemTime {
        self.0.wall()
    }
}

impl Sleeper for VirtualTime {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        let clock = self.0.clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            clock.advance(duration);
        })
    }
}

#[derive(Debug, Default)]
struct Polls {
    finished: AtomicU64,
    running: AtomicU64,
}

/// What the run measured.
#[derive(Debug)]
struct Outcome {
    jobs: usize,
    succeeded: usize,
    requests: u64,
    rate_limited: u64,
    polls_finished: u64,
    polls_running: u64,
    /// Detection lag in (virtual) seconds.
    lag: Option<Summary>,
    /// When results came back, in (virtual) seconds after the run began.
    results: Option<Summary>,
    virtual_elapsed: Duration,
    real_elapsed: Duration,
}

impl Outcome {
    fn creates(&self) -> u64 {
        self.jobs as u64
    }
}

async fn run_jobs(jobs: usize) -> Result<Outcome, String> {
    let clock = MockClock::manual();
    let server = MockServer::start(
        MockConfig::default()
            .profile(Profile::Realistic)
            .seed(SEED)
            .clock(clock.clone())
            .api_key(KEY),
    )
    .await
    .map_err(|err| err.to_string())?;
    let time = Arc::new(VirtualTime(clock.clone()));
    let client = imggen_core::imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .clock(time.clone())
        .sleeper(time.clone())
        .build()
        .map_err(|err| err.to_string())?;
    let imggen = Imggen::builder()
        .provider(imggen_core::imggen_runbase::provider::RunbaseProvider::new(
            client,
        ))
        .clock(time.clone())
        .sleeper(time)
        .build()
        .map_err(|err| err.to_string())?;
    let polls = Arc::new(Polls::default());
    let virtual_start = clock.elapsed();
    let wall_start = clock.wall();
    let real_start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for index in 0..jobs {
        let imggen = imggen.clone();
        let polls = Arc::clone(&polls);
        let clock = clock.clone();
        set.spawn(async move {
            let submission = imggen
                .submit(
                    &GenerationRequest::new(format!("Product shot {index}")),
                    &SubmitOptions::provider(imggen_core::imggen_runbase::provider::ID),
                )
                .await
                .map_err(|err| err.to_string())?;
            let handle = submission
                .handles
                .into_iter()
                .next()
                .ok_or("a submission without a handle")?;
            let options = WaitOptions::new().on_status(move |_, status| {
                let counter = if status.state.is_terminal() {
                    &polls.finished
                } else {
                    &polls.running
                };
                counter.fetch_add(1, Ordering::Relaxed);
            });
            let status = imggen
                .wait(&handle, options)
                .await
                .map_err(|err| err.to_string())?;
            let succeeded = matches!(status.state, imggen_core::TaskState::Succeeded { .. });
            Ok::<_, String>((handle.task_id, clock.wall(), succeeded))
        });
    }
    let mut succeeded = 0;
    let mut returned = HashMap::new();
    while let Some(result) = set.join_next().await {
        match result {
            Ok(Ok((task_id, at, ok))) => {
                succeeded += usize::from(ok);
                returned.insert(task_id, at);
            }
            Ok(Err(error)) => return Err(format!("a job failed: {error}")),
            Err(error) => return Err(format!("a job panicked: {error}")),
        }
    }
    // From the moment the mock's task times say a task finished to the moment its wait
    // returned, on the shared clock.
    let mut lags = Vec::new();
    for task in server.tasks() {
        let Some(at) = returned.get(&task.id) else {
            continue;
        };
        let finished = parse_timestamp(&task.finishes_at)?;
        lags.push(match at.duration_since(finished) {
            Ok(lag) => lag.as_secs_f64(),
            Err(early) => -early.duration().as_secs_f64(),
        });
    }
    let results: Vec<f64> = returned
        .values()
        .map(|at| {
            at.duration_since(wall_start)
                .unwrap_or_default()
                .as_secs_f64()
        })
        .collect();
    let stats = server.requests();
    let outcome = Outcome {
        jobs,
        succeeded,
        requests: stats.total,
        rate_limited: stats.with_status(429),
        polls_finished: polls.finished.load(Ordering::Relaxed),
        polls_running: polls.running.load(Ordering::Relaxed),
        lag: Summary::of(&lags),
        results: Summary::of(&results),
        virtual_elapsed: clock.elapsed() - virtual_start,
        real_elapsed: real_start.elapsed(),
    };
    server.shutdown().await;
    Ok(outcome)
}

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Section, String> {
    let jobs = if quick { 30 } else { 100 };
    // The mock and imggen-core share this thread and one virtual clock.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let outcome = runtime.block_on(run_jobs(jobs))?;
    eprintln!(
        "    {} requests, {} 429s, {:.0} s virtual in {:.1} s real",
        outcome.requests,
        outcome.rate_limited,
        outcome.virtual_elapsed.as_secs_f64(),
        outcome.real_elapsed.as_secs_f64()
    );
    Ok(section(&outcome))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "n/a".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

fn section(outcome: &Outcome) -> Section {
    let (limit, window) = imggen_types::runbase::RATE_LIMIT;
    let windows = outcome.virtual_elapsed.as_secs_f64() / window.as_secs_f64();
    let allowed = (f64::from(limit) * windows).floor() as u64;
    let polls = outcome.polls_finished + outcome.polls_running;
    let unaccounted = outcome
        .requests
        .saturating_sub(outcome.creates() + polls + outcome.rate_limited);
    let mut table = Table::new(&["figure", "value"]);
    let mut row = |name: &str, value: String| table.row(vec![name.into(), value]);
    row("jobs (all submitted at once)", outcome.jobs.to_string());
    row("jobs succeeded", outcome.succeeded.to_string());
    row("requests the mock received", outcome.requests.to_string());
    row("— creates", outcome.creates().to_string());
    row(
        "— polls that found the task finished (useful)",
        outcome.polls_finished.to_string(),
    );
    row(
        "— polls that found it still running",
        outcome.polls_running.to_string(),
    );
    row("— answered 429", outcome.rate_limited.to_string());
    row(
        "virtual time, first create to last result",
        format!("{:.1} s", outcome.virtual_elapsed.as_secs_f64()),
    );
    row(
        "budget over that time (20 per 10 s)",
        format!("{allowed} requests"),
    );
    row("budget used", percent(outcome.requests, allowed));
    row(
        "share of all requests that were useful polls",
        percent(outcome.polls_finished, outcome.requests),
    );
    row(
        "share of all requests that did useful work (creates + useful polls)",
        percent(outcome.creates() + outcome.polls_finished, outcome.requests),
    );
    row(
        "status requests per job",
        fixed(polls as f64 / outcome.jobs.max(1) as f64, 2),
    );
    row(
        "detection lag (task finished → wait returned): mean, p50, p95",
        outcome.lag.as_ref().map_or("n/a".into(), |lag| {
            format!("{:.1} s, {:.1} s, {:.1} s", lag.mean, lag.p50, lag.p95)
        }),
    );
    row(
        "results back (after the first create): first, half, 95%",
        outcome.results.as_ref().map_or("n/a".into(), |at| {
            format!("{:.1} s, {:.1} s, {:.1} s", at.min, at.p50, at.p95)
        }),
    );
    row(
        "real time the run took",
        format!("{:.0} ms", outcome.real_elapsed.as_secs_f64() * 1000.0),
    );
    let mut notes = Vec::new();
    if unaccounted > 0 {
        notes.push(format!(
            "**{unaccounted} requests are neither creates, polls nor 429s** (other errors)."
        ));
    }
    // What imggen-core spends of runbase's budget: a tenth less, over a window 250 ms longer.
    let spent = limit - limit / 10;
    let spent_window = window.as_secs_f64() + 0.25;
    let last_create = (outcome.jobs as u32).div_ceil(spent).saturating_sub(1);
    notes.push(format!(
        "Creates are a fixed cost (one per job, paid for); of the rest, every poll that found \
         a task still running is budget that did nothing. When creates and due polls both \
         wait, the scheduler gives two slots of every three to polls — the job most likely \
         finished first — and one to the oldest create; a kind with nothing due leaves its \
         slots to the other. A job needs one create and at least one poll, so an even split \
         would keep pace with new jobs but never drain the finished ones that pile up in the \
         first window, when every slot goes to creates because no poll is due yet; two polls \
         per create drain them, then polls run out and creates take the slack. Results \
         therefore come back while later creates still go out, and a third of a contended \
         budget always goes to creates. (Serving every create before any poll, as imggen-core \
         did before, spends the same requests in the same total time, but returns no result \
         before the last create has gone out: {jobs} creates at {spent} per {spent_window} s \
         take {last_create} windows more than the first, {first_wait:.0} s.) \
         Budget windows open in bursts, so polls granted at a window's start mostly find \
         their task done. The scheduler keeps a tenth of the budget and a quarter second of \
         each window in reserve against clock skew with the provider, so the budget used \
         stays below 100%.",
        jobs = outcome.jobs,
        first_wait = f64::from(last_create) * spent_window,
    ));
    Section {
        number: 3,
        title: "Rate budget".into(),
        method: format!(
            "{} runbase jobs submitted at once on one key, with the mock's documented limit of \
             20 requests per 10 s per key (creates and polls together) and its realistic \
             runbase durations (3–8 s, seeded). imggen-core runs with its defaults for \
             runbase: the 20/10 s budget and runbase's schedule (first poll at 3 s, then every \
             2 s). Virtual time: the mock's manual clock, shared with imggen-core through \
             `imggen_http::time::{{Clock, Sleeper}}`, moves only when imggen-core's request \
             scheduler sleeps, so the run takes seconds and its figures do not depend on this \
             machine's speed. 429s are counted by the mock (`requests().with_status(429)`); \
             polls by `WaitOptions::on_status`.",
            outcome.jobs
        ),
        tables: vec![table],
        targets: vec![Target {
            goal: "0 responses 429".into(),
            measured: outcome.rate_limited.to_string(),
            verdict: Verdict::from_bool(outcome.rate_limited == 0),
        }],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(section: &'a Section, figure: &str) -> &'a str {
        &section.tables[0]
            .rows
            .iter()
            .find(|row| row[0].starts_with(figure))
            .unwrap_or_else(|| panic!("no row {figure:?}"))[1]
    }

    #[test]
    fn the_budget_is_split_into_creates_useful_polls_and_waste() {
        let outcome = Outcome {
            jobs: 100,
            succeeded: 100,
            requests: 250,
            rate_limited: 0,
            polls_finished: 100,
            polls_running: 50,
            lag: Summary::of(&[1.0, 3.0]),
            results: Summary::of(&[10.0, 20.0, 30.0]),
            virtual_elapsed: Duration::from_secs(150),
            real_elapsed: Duration::from_millis(40),
        };
        let section = section(&outcome);
        assert_eq!(value(&section, "budget over that time"), "300 requests");
        assert_eq!(value(&section, "budget used"), "83%");
        assert_eq!(
            value(&section, "share of all requests that were useful polls"),
            "40%"
        );
        assert_eq!(
            value(&section, "share of all requests that did useful work"),
            "80%"
        );
        assert_eq!(value(&section, "status requests per job"), "1.50");
        assert_eq!(value(&section, "results back"), "10.0 s, 20.0 s, 30.0 s");
        assert_eq!(section.targets[0].verdict, Verdict::Met);
        // Every request is accounted for, so no note about unexplained ones.
        assert!(!section.notes.iter().any(|note| note.contains("neither")));
        // What serving every create first would cost, from the budget's arithmetic.
        assert!(
            section.notes[0]
                .contains("100 creates at 18 per 10.25 s take 5 windows more than the first, 51 s"),
            "{}",
            section.notes[0]
        );
    }

    #[test]
    fn a_single_429_misses_the_target() {
        let outcome = Outcome {
            jobs: 1,
            succeeded: 1,
            requests: 4,
            rate_limited: 1,
            polls_finished: 1,
            polls_running: 0,
            lag: None,
            results: None,
            virtual_elapsed: Duration::from_secs(10),
            real_elapsed: Duration::from_millis(1),
        };
        let section = section(&outcome);
        assert_eq!(section.targets[0].verdict, Verdict::Missed);
        assert!(
            section.notes[0].contains("1 requests are neither"),
            "{:?}",
            section.notes
        );
    }
}
