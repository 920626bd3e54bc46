//! Benchmark 7: 1, 2 and 4 `imggen batch` processes on one runbase key, sharing a PostgreSQL
//! journal and, through it, the key's request budget: how much of the budget they use
//! together, and how many answers are 429.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imggen_mock::{MockConfig, MockServer};

use super::harness::MockHost;
use super::report::{Section, Table, Target, Verdict};

const KEY: &str = "sk-imggen-bench-workers-0001";
/// runbase's documented budget: 20 requests per 10 s per key.
const BUDGET_PER_SECOND: f64 = 2.0;
/// Requests in each batch: more than any run finishes, so the budget is the bottleneck.
const REQUESTS: usize = 400;
/// From the workers' start to the start of the measured window: start-up, the journal load.
const WARMUP: Duration = Duration::from_secs(5);

/// What one run measured.
struct Run {
    workers: usize,
    /// API requests (creates and polls; downloads carry no key) in the window.
    requests: u64,
    window: Duration,
    /// Answers 429 over the whole run.
    rate_limited: u64,
}

impl Run {
    fn used(&self) -> f64 {
        self.requests as f64 / (BUDGET_PER_SECOND * self.window.as_secs_f64())
    }
}

/// A PostgreSQL to run against: `IMGGEN_TEST_POSTGRES_URL`, or a throwaway one started (and
/// stopped when dropped) with `.ci/postgres`.
struct Database {
    url: String,
    /// The throwaway server's directory, when this benchmark started it.
    started: Option<String>,
    root: PathBuf,
}

impl Database {
    fn find(root: &Path) -> Result<Database, String> {
        if let Ok(url) = std::env::var("IMGGEN_TEST_POSTGRES_URL")
            && !url.trim().is_empty()
        {
            return Ok(Database {
                url,
                started: None,
                root: root.to_path_buf(),
            });
        }
        let output = Command::new("bash")
            .arg(root.join(".ci/postgres"))
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|err| format!("could not run .ci/postgres: {err}"))?;
        if !output.status.success() {
            return Err("no PostgreSQL: `.ci/postgres start` failed (set IMGGEN_TEST_POSTGRES_URL to use one)".into());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let exported = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(|value| value.trim().to_owned())
        };
        match (
            exported("IMGGEN_TEST_POSTGRES_URL"),
            exported("IMGGEN_TEST_POSTGRES_DIR"),
        ) {
            (Some(url), Some(dir)) => Ok(Database {
                url,
                started: Some(dir),
                root: root.to_path_buf(),
            }),
            _ => Err(format!("`.ci/postgres start` printed no URL: {text}")),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new("bash")
                .arg(self.root.join(".ci/postgres"))
                .arg("stop")
                .env("IMGGEN_TEST_POSTGRES_DIR", dir)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// API requests (those with a key) and 429s the mock has answered, kept up to date by
/// reading its request log often enough that no request scrolls out of it unseen.
#[derive(Default)]
struct Counter {
    total: u64,
    api: u64,
}

impl Counter {
    fn update(&mut self, server: &MockServer) {
        let stats = server.requests();
        let new = stats.total.saturating_sub(self.total);
        let take = usize::try_from(new).unwrap_or(usize::MAX);
        self.api += stats
            .recent
            .iter()
            .rev()
            .take(take)
            .filter(|record| record.key != "-")
            .count() as u64;
        self.total = stats.total;
    }
}

fn run_workers(
    imggen: &Path,
    work: &Path,
    database: &Database,
    mock: &MockHost,
    workers: usize,
    window: Duration,
) -> Result<Run, String> {
    let batch = format!("workers-{workers}-{}.jsonl", std::process::id());
    let lines: Vec<String> = (1..=REQUESTS)
        .map(|i| {
            serde_json::json!({"id": format!("w{i:04}"), "prompt": format!("A chair, study {i}")})
                .to_string()
        })
        .collect();
    std::fs::write(work.join(&batch), lines.join("\n") + "\n")
        .map_err(|err| format!("writing the batch file: {err}"))?;
    let server = mock.server();
    let mut counter = Counter::default();
    counter.update(server);
    let before_429 = server.requests().with_status(429);
    let mut children: Vec<Child> = Vec::new();
    for n in 0..workers {
        let child = Command::new(imggen)
            .current_dir(work)
            .args(["-q", "batch", &batch, "--out"])
            .arg(work.join(format!("out-{workers}-{n}")))
            .args(["--journal", &database.url])
            .args(["--provider", "runbase", "--concurrency", "16"])
            .env("RUNBASE_API_KEY", KEY)
            .env("RUNBASE_BASE_URL", mock.url())
            .env("IMGGEN_PROGRESS", "none")
            .env("IMGGEN_HOME", work.join("imggen-home"))
            .env_remove("RUNBLOB_API_KEY")
            .env_remove("GPTIMG_API_KEY")
            .env_remove("IMGGEN_JOURNAL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("could not start {}: {err}", imggen.display()))?;
        children.push(child);
    }
    let started = Instant::now();
    let mut at_start = None;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(100));
        counter.update(server);
        let elapsed = started.elapsed();
        if at_start.is_none() && elapsed >= WARMUP {
            at_start = Some((counter.api, Instant::now()));
        }
        if let Some((api_at_start, since)) = at_start
            && since.elapsed() >= window
        {
            break Ok((counter.api - api_at_start, since.elapsed()));
        }
        if let Some(ended) = children
            .iter_mut()
            .find_map(|child| child.try_wait().ok().flatten())
        {
            break Err(format!(
                "a worker ended before the window did ({ended}): the batch is too small, or imggen failed"
            ));
        }
    };
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (requests, window) = outcome?;
    Ok(Run {
        workers,
        requests,
        window,
        rate_limited: server.requests().with_status(429) - before_429,
    })
}

/// Runs the benchmark.
pub fn run(root: &Path, quick: bool) -> Result<Section, String> {
    let window = if quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    let work = super::target_dir(root).join("bench").join("workers");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|err| format!("creating {}: {err}", work.display()))?;
    let imggen: PathBuf = std::env::current_exe()
        .map_err(|err| err.to_string())?
        .with_file_name(format!("imggen{}", std::env::consts::EXE_SUFFIX));
    let database = Database::find(root)?;
    // The mock keeps runbase's documented budget (20 requests per 10 s per key) and its
    // realistic durations, on the real clock.
    let mock = MockHost::start(MockConfig::default().api_key(KEY))?;
    let mut runs = Vec::new();
    for workers in [1, 2, 4] {
        let run = run_workers(&imggen, &work, &database, &mock, workers, window)?;
        eprintln!(
            "    {} workers: {} requests in {:.0} s ({:.0}% of the budget), {} answered 429",
            run.workers,
            run.requests,
            run.window.as_secs_f64(),
            run.used() * 100.0,
            run.rate_limited
        );
        runs.push(run);
    }
    Ok(section(&runs, window))
}

fn section(runs: &[Run], window: Duration) -> Section {
    let mut table = Table::new(&[
        "workers",
        "API requests in the window",
        "budget used",
        "answered 429",
    ]);
    for run in runs {
        table.row(vec![
            run.workers.to_string(),
            run.requests.to_string(),
            format!("{:.0}%", run.used() * 100.0),
            run.rate_limited.to_string(),
        ]);
    }
    let mut targets = Vec::new();
    if let Some(four) = runs.iter().find(|run| run.workers == 4) {
        targets.push(Target {
            goal: "≥ 85% of the key's budget used by 4 workers".into(),
            measured: format!("{:.0}%", four.used() * 100.0),
            verdict: Verdict::from_bool(four.used() >= 0.85),
        });
    }
    let rate_limited: u64 = runs.iter().map(|run| run.rate_limited).sum();
    targets.push(Target {
        goal: "0 responses 429 with 1, 2 and 4 workers".into(),
        measured: rate_limited.to_string(),
        verdict: Verdict::from_bool(rate_limited == 0),
    });
    Section {
        number: 7,
        title: "Workers on one key".into(),
        method: format!(
            "1, then 2, then 4 `imggen batch` processes (the release CLI) drain one runbase batch \
             of {REQUESTS} requests each time, journaled in one PostgreSQL database \
             (`--journal postgres://…`, a throwaway PostgreSQL 15 unless \
             `IMGGEN_TEST_POSTGRES_URL` names one), every process with `--concurrency 16` and \
             its own `--out`, all on one API key. The mock, in this process on the real clock, \
             keeps runbase's documented budget — 20 requests per 10 s per key, creates and \
             polls together — and its realistic durations; the processes share the budget \
             through the database (one row per key fingerprint, paced by the database's \
             clock). After {} s of start-up, the mock's log counts the API requests (creates \
             and polls; downloads carry no key and no budget) over {} s: the budget used is \
             that count over the {BUDGET_PER_SECOND} requests a second the key allows. The \
             processes are then killed.",
            WARMUP.as_secs(),
            window.as_secs()
        ),
        tables: vec![table],
        targets,
        notes: vec![
            "The batch is far larger than the window lets any run finish, so the key's budget, \
             not the work, bounds the requests."
                .into(),
        ],
    }
}
