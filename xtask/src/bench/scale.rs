//! Benchmark 4, scale: 10,000 jobs in flight in one process that runs only imggen-core (the mock runs in
//! this one): that process's peak RSS and CPU time per job.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imggen_core::{GenerationRequest, SubmitOptions, WaitOptions};
use imggen_mock::{EntryKind, MockConfig, Profile};
use serde::{Deserialize, Serialize};

use super::harness::{
    MockHost, gptimg_imggen, print_worker_report, process_cpu, status_kib, thousands,
};
use super::report::{Section, Table, Target, Verdict, fixed};

const KEY: &str = "sk-bench-scale-0001";
const RSS_TARGET_MIB: f64 = 64.0;
/// Creates in flight at once, as a batch would send them; the waits are not limited.
const CREATE_CONCURRENCY: usize = 64;

/// What the worker process reports on stdout, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    jobs: usize,
    succeeded: usize,
    failed: usize,
    first_error: Option<String>,
    peak_in_flight: usize,
    /// Resident set before the first job (the runtime and clients built).
    baseline_rss_kib: u64,
    /// Peak resident set of the whole process (`VmHWM`).
    peak_rss_kib: u64,
    user_cpu_s: f64,
    system_cpu_s: f64,
    submit_s: f64,
    wall_s: f64,
}

struct Sizes {
    jobs: usize,
    profile: Profile,
    /// The factor applied to gptimg's default schedule (1 = as shipped).
    schedule_scale: f64,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            // A smoke run: shorter tasks, and the schedule shrunk to match.
            Sizes {
                jobs: 1_000,
                profile: Profile::Fixed(Duration::from_secs(4)),
                schedule_scale: 0.05,
            }
        } else {
            Sizes {
                jobs: 10_000,
                profile: Profile::Realistic,
                schedule_scale: 1.0,
            }
        }
    }
}

/// Runs the benchmark: the mock here, the jobs in a child process.
pub fn run(quick: bool) -> Result<Section, String> {
    let sizes = Sizes::new(quick);
    let host = MockHost::start(MockConfig::default().profile(sizes.profile).api_key(KEY))?;
    let exe = std::env::current_exe().map_err(|err| format!("where is xtask? {err}"))?;
    let started = Instant::now();
    let output = Command::new(&exe)
        .args([
            "bench-worker",
            "scale",
            "--base-url",
            &host.url(),
            "--jobs",
            &sizes.jobs.to_string(),
            "--schedule-scale",
            &sizes.schedule_scale.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("could not start {}: {err}", exe.display()))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!("the worker process failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: WorkerReport = serde_json::from_str(line)
        .map_err(|err| format!("the worker's report {line:?} is not JSON: {err}"))?;
    let stats = host.server().requests();
    let ledger = host.server().ledger();
    let charges: Vec<&str> = ledger
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .map(|entry| entry.task_id.as_str())
        .collect();
    let charged_once = charges.iter().collect::<HashSet<_>>().len() == charges.len();
    drop(host);
    eprintln!(
        "    {} jobs, peak {} in flight, peak RSS {:.1} MiB, {:.3} ms CPU per job, {:.0} s",
        report.jobs,
        report.peak_in_flight,
        report.peak_rss_kib as f64 / 1024.0,
        (report.user_cpu_s + report.system_cpu_s) * 1000.0 / report.jobs.max(1) as f64,
        wall.as_secs_f64()
    );
    Ok(section(
        &sizes,
        &report,
        stats.total,
        charges.len(),
        charged_once,
    ))
}

fn section(
    sizes: &Sizes,
    report: &WorkerReport,
    requests: u64,
    charges: usize,
    charged_once: bool,
) -> Section {
    let peak_mib = report.peak_rss_kib as f64 / 1024.0;
    let baseline_mib = report.baseline_rss_kib as f64 / 1024.0;
    let cpu = report.user_cpu_s + report.system_cpu_s;
    let jobs = report.jobs.max(1) as f64;
    let mut table = Table::new(&["figure", "value"]);
    let mut row = |name: &str, value: String| table.row(vec![name.into(), value]);
    row("jobs", thousands(report.jobs as u64));
    row("jobs succeeded", thousands(report.succeeded as u64));
    row(
        "peak jobs in flight (submitted, not yet returned)",
        thousands(report.peak_in_flight as u64),
    );
    row(
        "peak RSS of the process (VmHWM)",
        format!("{peak_mib:.1} MiB"),
    );
    row("RSS before the first job", format!("{baseline_mib:.1} MiB"));
    row(
        "memory per job in flight ((peak − before) ÷ peak in flight)",
        format!(
            "{:.1} KiB",
            (report.peak_rss_kib.saturating_sub(report.baseline_rss_kib)) as f64
                / report.peak_in_flight.max(1) as f64
        ),
    );
    row(
        "CPU time (user + system)",
        format!("{:.2} s + {:.2} s", report.user_cpu_s, report.system_cpu_s),
    );
    row(
        "CPU time per job",
        format!("{} ms", fixed(cpu * 1000.0 / jobs, 3)),
    );
    row("requests the mock received", thousands(requests));
    row("requests per job", fixed(requests as f64 / jobs, 2));
    row(
        "time to submit every job",
        format!("{:.1} s", report.submit_s),
    );
    row("wall time", format!("{:.1} s", report.wall_s));
    let mut notes = Vec::new();
    if report.failed > 0 {
        notes.push(format!(
            "**{} jobs failed**; the first: {}",
            report.failed,
            report.first_error.as_deref().unwrap_or("?")
        ));
    }
    notes.push(format!(
        "The mock's ledger holds {} charges for {} jobs{}.",
        thousands(charges as u64),
        thousands(report.jobs as u64),
        if charged_once {
            ", none for the same task twice"
        } else {
            " — **some task was charged twice**"
        }
    ));
    let (profile, schedule) = if sizes.schedule_scale == 1.0 {
        (
            "the mock's realistic gptimg durations (45–60 s)".to_owned(),
            "gptimg's default schedule (first poll at 35 s, then every 5 s)".to_owned(),
        )
    } else {
        (
            format!("tasks of {}", sizes.profile),
            format!("gptimg's schedule scaled by {}", sizes.schedule_scale),
        )
    };
    Section {
        number: 4,
        title: "Scale".into(),
        method: format!(
            "{} gptimg jobs in one process that runs nothing but imggen-core (the `xtask \
             bench-worker scale` child process, a release build, on a multi-threaded Tokio \
             runtime); the mock runs in the parent. One `Imggen`, every job submitted through \
             it ({CREATE_CONCURRENCY} creates in flight at a time, as a batch would) and then \
             waited on with `Imggen::wait` — all waits at once, on {profile} with {schedule}, \
             so every job is still running when the last is submitted. The child reads its own \
             peak resident set (`VmHWM`) and CPU time (`/proc/self/stat`) when every job has \
             returned.",
            thousands(sizes.jobs as u64)
        ),
        tables: vec![table],
        targets: vec![Target {
            goal: format!("peak RSS ≤ {RSS_TARGET_MIB:.0} MiB for the whole process"),
            measured: format!("{peak_mib:.1} MiB"),
            verdict: Verdict::from_bool(peak_mib <= RSS_TARGET_MIB),
        }],
        notes,
    }
}

/// Worker options.
#[derive(Debug)]
struct WorkerOptions {
    base_url: String,
    jobs: usize,
    schedule_scale: f64,
}

fn parse_worker(args: &[&str]) -> Result<WorkerOptions, String> {
    let mut base_url = None;
    let mut jobs = None;
    let mut schedule_scale = 1.0;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--base-url" => base_url = Some((*value).to_owned()),
            "--jobs" => jobs = Some(value.parse().map_err(|_| format!("--jobs {value}?"))?),
            "--schedule-scale" => {
                schedule_scale = value
                    .parse()
                    .map_err(|_| format!("--schedule-scale {value}?"))?;
            }
            other => return Err(format!("unknown worker flag {other}")),
        }
    }
    Ok(WorkerOptions {
        base_url: base_url.ok_or("--base-url is required")?,
        jobs: jobs.ok_or("--jobs is required")?,
        schedule_scale,
    })
}

/// `xtask bench-worker scale --base-url URL --jobs N [--schedule-scale F]`: runs the jobs and
/// prints a [`WorkerReport`] line.
pub fn worker(args: &[&str]) -> Result<(), String> {
    let options = parse_worker(args)?;
    print_worker_report(run_worker(options))
}

async fn run_worker(options: WorkerOptions) -> Result<WorkerReport, String> {
    let imggen = gptimg_imggen(&options.base_url, KEY, options.schedule_scale)?;
    let baseline_rss_kib = status_kib("VmRSS").unwrap_or(0);
    let creates = Arc::new(tokio::sync::Semaphore::new(CREATE_CONCURRENCY));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // When the last create returned, in microseconds since the start.
    let last_submit = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for index in 0..options.jobs {
        let imggen = imggen.clone();
        let creates = Arc::clone(&creates);
        let in_flight = Arc::clone(&in_flight);
        let peak = Arc::clone(&peak);
        let last_submit = Arc::clone(&last_submit);
        set.spawn(async move {
            let submission = {
                let _slot = creates.acquire().await.ok();
                imggen
                    .submit(
                        &GenerationRequest::new(format!("Dataset image {index}")),
                        &SubmitOptions::provider(imggen_core::imggen_gptimg::provider::ID),
                    )
                    .await
            };
            let at = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            last_submit.fetch_max(at, Ordering::SeqCst);
            let submission = submission.map_err(|err| err.to_string())?;
            let handle = submission
                .handles
                .into_iter()
                .next()
                .ok_or("a submission without a handle")?;
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let result = imggen.wait(&handle, WaitOptions::new()).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            result.map(drop).map_err(|err| err.to_string())
        });
    }
    let mut succeeded = 0;
    let mut failed = 0;
    let mut first_error = None;
    while let Some(result) = set.join_next().await {
        match result {
            Ok(Ok(())) => succeeded += 1,
            Ok(Err(error)) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let (user, system) = process_cpu().unwrap_or_default();
    Ok(WorkerReport {
        jobs: options.jobs,
        succeeded,
        failed,
        first_error,
        peak_in_flight: peak.load(Ordering::SeqCst),
        baseline_rss_kib,
        peak_rss_kib: status_kib("VmHWM").unwrap_or(0),
        user_cpu_s: user.as_secs_f64(),
        system_cpu_s: system.as_secs_f64(),
        submit_s: Duration::from_micros(last_submit.load(Ordering::SeqCst)).as_secs_f64(),
        wall_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_needs_a_url_and_a_job_count() {
        let options = parse_worker(&["--base-url", "http://127.0.0.1:1", "--jobs", "10"]).unwrap();
        assert_eq!(options.jobs, 10);
        assert_eq!(options.schedule_scale, 1.0);
        assert!(
            parse_worker(&["--jobs", "10"])
                .unwrap_err()
                .contains("--base-url")
        );
        assert!(
            parse_worker(&["--jobs"])
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
