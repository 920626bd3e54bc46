//! Benchmark 5, against the seed docs' client: 20 jobs through the runblob seed's Python
//! `ChatGPTImageClient` (sequential, polling every 10 s) against `imggen batch` on the same 20,
//! both on the same time-scaled mock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imggen_mock::{MockClock, MockConfig, Profile, RequestStats};

use super::harness::{MockHost, TimeWarp};
use super::polling::{SEED, SPEEDUP};
use super::report::{Section, Table, Target, Verdict, fixed, ratio};

const KEY: &str = "sk-bench-seed-0001";
/// The recipe's 10 s, on the benchmark's time base.
const RECIPE_INTERVAL: Duration = Duration::from_millis(100);

/// Runs the seed's client, taken from the file that holds it unchanged: everything before
/// the file's own checks is the seed's code (and the two lines that read the base URL and key
/// from the environment).
const PYTHON_DRIVER: &str = r#"
import json, os, sys, time
import requests

seed_path, jobs_path, out_dir, interval = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
source = open(seed_path).read()
seed = {"__name__": "seed_client"}
exec(compile(source[: source.index("\ndef check(")], seed_path, "exec"), seed)
client = seed["ChatGPTImageClient"](os.environ["RUNBLOB_API_KEY"])

done = 0
for line in open(jobs_path):
    job = json.loads(line)
    created = client.generate(job["prompt"])
    url = client.wait_for_completion(created["task_uuid"], poll_interval=interval)
    with open(os.path.join(out_dir, job["id"] + ".png"), "wb") as f:
        f.write(requests.get(url).content)
    done += 1
print(json.dumps({"done": done}))
"#;

/// One side's run.
#[derive(Debug)]
struct Side {
    name: String,
    outcome: Result<Measured, String>,
}

#[derive(Debug)]
struct Measured {
    wall: Duration,
    creates: u64,
    statuses: u64,
    downloads: u64,
    errors: u64,
    total: u64,
    /// Whether every request is in the mock's log of recent requests, so the split above is
    /// exact (otherwise only `total` is).
    complete_log: bool,
    charges: usize,
    images: usize,
}

/// Splits the mock's request log into creates, status reads and downloads.
fn classify(stats: &RequestStats) -> (u64, u64, u64, u64) {
    let (mut creates, mut statuses, mut downloads, mut errors) = (0, 0, 0, 0);
    for record in &stats.recent {
        if record.status >= 400 {
            errors += 1;
        } else if record.path.starts_with("/files/") {
            downloads += 1;
        } else if record.method == "POST" {
            creates += 1;
        } else {
            statuses += 1;
        }
    }
    (creates, statuses, downloads, errors)
}

fn count_png(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                count_png(&path)
            } else {
                usize::from(path.extension().is_some_and(|ext| ext == "png"))
            }
        })
        .sum()
}

/// Runs `command` against a fresh mock (the same seed, so the same durations) and counts.
fn measure(configure: impl FnOnce() -> Command, out: &Path) -> Result<Measured, String> {
    let clock = MockClock::manual();
    let host = MockHost::start(
        MockConfig::default()
            .profile(Profile::Realistic)
            .seed(SEED)
            .clock(clock.clone())
            .api_key(KEY),
    )?;
    let warp = TimeWarp::start(clock, SPEEDUP);
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|err| format!("creating {}: {err}", out.display()))?;
    let mut command = configure();
    for provider in ["RUNBLOB", "GPTIMG", "RUNBASE"] {
        command.env_remove(format!("{provider}_API_KEY"));
        command.env_remove(format!("{provider}_BASE_URL"));
    }
    command
        .env("RUNBLOB_API_KEY", KEY)
        .env("RUNBLOB_BASE_URL", host.url())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|err| format!("could not start {command:?}: {err}"))?;
    let wall = started.elapsed();
    drop(warp);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "exited with {}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    let stats = host.server().requests();
    let (creates, statuses, downloads, errors) = classify(&stats);
    let charges = super::harness::charges(host.server());
    Ok(Measured {
        wall,
        creates,
        statuses,
        downloads,
        errors,
        total: stats.total,
        complete_log: stats.total == stats.recent.len() as u64,
        charges,
        images: count_png(out),
    })
}

/// Why `imggen batch` cannot run here, if it cannot.
fn batch_unavailable(imggen: &Path) -> Option<String> {
    if !imggen.exists() {
        return Some(format!("{} was not built", imggen.display()));
    }
    match Command::new(imggen)
        .args(["batch", "--help"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => None,
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or("").trim();
            Some(format!(
                "this build of imggen has no `batch` command yet (`imggen batch --help`: {first})"
            ))
        }
        Err(err) => Some(format!("could not run {}: {err}", imggen.display())),
    }
}

/// Why the seed's Python client cannot run here, if it cannot.
fn python_unavailable() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import requests"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some("python3 has no `requests` (pip install requests)".into()),
        Err(err) => Some(format!("python3 is not available ({err})")),
    }
}

/// Runs the benchmark.
pub fn run(root: &Path, quick: bool) -> Result<Section, String> {
    let jobs = if quick { 5 } else { 20 };
    let work = super::target_dir(root).join("bench").join("seed");
    std::fs::create_dir_all(&work).map_err(|err| format!("creating {}: {err}", work.display()))?;
    let jobs_file = work.join("jobs.jsonl");
    let lines: Vec<String> = (1..=jobs)
        .map(|i| {
            serde_json::json!({"id": format!("job-{i:02}"), "prompt": format!("A product photo, variant {i}")})
                .to_string()
        })
        .collect();
    std::fs::write(&jobs_file, lines.join("\n") + "\n")
        .map_err(|err| format!("writing {}: {err}", jobs_file.display()))?;
    let seed_client = root.join("crates/imggen-mock/tests/seed_python_client.py");
    let driver = work.join("run_seed_client.py");
    std::fs::write(&driver, PYTHON_DRIVER)
        .map_err(|err| format!("writing {}: {err}", driver.display()))?;
    let imggen: PathBuf = std::env::current_exe()
        .map_err(|err| err.to_string())?
        .with_file_name(format!("imggen{}", std::env::consts::EXE_SUFFIX));

    let python = Side {
        name: "seed Python `ChatGPTImageClient` (sequential, every 10 s)".into(),
        outcome: match python_unavailable() {
            Some(why) => Err(why),
            None => measure(
                || {
                    let mut command = Command::new("python3");
                    command
                        .arg(&driver)
                        .arg(&seed_client)
                        .arg(&jobs_file)
                        .arg(work.join("python-out"))
                        .arg(RECIPE_INTERVAL.as_secs_f64().to_string());
                    command
                },
                &work.join("python-out"),
            ),
        },
    };
    report_side(&python);
    let batch_args = [
        "--provider".to_owned(),
        "runblob".to_owned(),
        "--poll-interval".to_owned(),
        RECIPE_INTERVAL.as_secs_f64().to_string(),
        "--concurrency".to_owned(),
        jobs.to_string(),
    ];
    let batch = Side {
        name: format!("`imggen batch {}`", batch_args.join(" ")),
        outcome: match batch_unavailable(&imggen) {
            Some(why) => Err(why),
            None => measure(
                || {
                    let mut command = Command::new(&imggen);
                    // Its task history stays in the work folder, not the maintainer's home.
                    command
                        .env("IMGGEN_HOME", work.join("imggen-home"))
                        .arg("batch")
                        .arg(&jobs_file)
                        .arg("--out")
                        .arg(work.join("batch-out"))
                        .args(&batch_args);
                    command
                },
                &work.join("batch-out"),
            ),
        },
    };
    report_side(&batch);
    Ok(section(jobs, &python, &batch))
}

fn report_side(side: &Side) {
    match &side.outcome {
        Ok(m) => eprintln!(
            "    {}: {:.1} s, {} requests",
            side.name,
            m.wall.as_secs_f64(),
            m.total
        ),
        Err(why) => eprintln!("    {}: skipped: {why}", side.name),
    }
}

fn section(jobs: usize, python: &Side, batch: &Side) -> Section {
    let mut table = Table::new(&[
        "side",
        "wall (real)",
        "wall (provider time)",
        "creates",
        "status reads",
        "downloads",
        "all requests",
        "charges",
        "images on disk",
    ]);
    let mut notes = Vec::new();
    for side in [python, batch] {
        match &side.outcome {
            Ok(m) => {
                let split = |n: u64| {
                    if m.complete_log {
                        n.to_string()
                    } else {
                        "?".into()
                    }
                };
                table.row(vec![
                    side.name.clone(),
                    format!("{:.1} s", m.wall.as_secs_f64()),
                    format!("{:.0} s", m.wall.as_secs_f64() * SPEEDUP),
                    split(m.creates),
                    split(m.statuses),
                    split(m.downloads),
                    m.total.to_string(),
                    m.charges.to_string(),
                    m.images.to_string(),
                ]);
                if m.errors > 0 {
                    notes.push(format!(
                        "{}: {} requests were answered with an error.",
                        side.name, m.errors
                    ));
                }
            }
            Err(why) => {
                let mut row = vec![side.name.clone(), format!("skipped: {why}")];
                row.resize(table.headers.len(), "—".into());
                table.row(row);
            }
        }
    }
    let target = match (&python.outcome, &batch.outcome) {
        (Ok(p), Ok(b)) => Target {
            goal: "wall time and requests of both sides".into(),
            measured: format!(
                "imggen batch: {} the wall time, {} the requests",
                ratio(b.wall.as_secs_f64(), p.wall.as_secs_f64()),
                ratio(b.total as f64, p.total as f64)
            ),
            verdict: Verdict::Reported,
        },
        (_, Err(why)) | (Err(why), _) => Target {
            goal: "wall time and requests of both sides".into(),
            measured: "—".into(),
            verdict: Verdict::NotMeasured(why.clone()),
        },
    };
    notes.push(format!(
        "`imggen batch` is given `--poll-interval {}` — the recipe's 10 s on this time base — \
         because the CLI has no way to scale its default schedule to a mock running {:.0} \
         times fast (its first runblob poll would come a real minute after the create). Both \
         sides therefore poll alike; what differs is everything else: concurrency, \
         connection reuse, the journal. Benchmark 2 measures the default schedule.",
        fixed(RECIPE_INTERVAL.as_secs_f64(), 1),
        SPEEDUP
    ));
    Section {
        number: 5,
        title: "Against the seed docs' client".into(),
        method: format!(
            "The same {jobs} runblob jobs (`target/bench/seed/jobs.jsonl`) through the seed's \
             Python `ChatGPTImageClient` — run from \
             `crates/imggen-mock/tests/seed_python_client.py`, which holds it unchanged but for \
             the base URL: one job after another, `generate`, `wait_for_completion` (a status \
             read, then a sleep of the poll interval, until done), then the image downloaded \
             with `requests.get` as the seed's usage does — and through `imggen batch`. Each \
             side gets a fresh mock with the same seed (the same realistic durations, 60–180 s) \
             on a clock {SPEEDUP:.0} times fast, the recipe's 10 s becoming {} s. Wall time is \
             the whole process, start-up included; requests are counted by the mock.",
            fixed(RECIPE_INTERVAL.as_secs_f64(), 1)
        ),
        tables: vec![table],
        targets: vec![target],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imggen_mock::RequestRecord;

    #[test]
    fn requests_are_split_into_creates_reads_downloads_and_errors() {
        let mut stats = RequestStats::default();
        for (method, path, status) in [
            ("POST", "/v1/chatgpt-images/generate", 201),
            ("GET", "/v1/chatgpt-images/generations/abc", 200),
            ("GET", "/v1/chatgpt-images/generations/abc", 200),
            ("GET", "/files/runblob/abc/0.png", 200),
            ("GET", "/v1/chatgpt-images/generations/zzz", 404),
        ] {
            stats.recent.push_back(RequestRecord {
                method: method.into(),
                path: path.into(),
                status,
                key: "-".into(),
            });
        }
        assert_eq!(classify(&stats), (1, 2, 1, 1));
    }

    #[test]
    fn the_driver_runs_the_seed_file_up_to_its_own_checks() {
        let seed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../crates/imggen-mock/tests/seed_python_client.py"),
        )
        .unwrap();
        let cut = seed
            .find("\ndef check(")
            .expect("the seed file's checks moved");
        assert!(seed[..cut].contains("class ChatGPTImageClient"));
        assert!(seed[..cut].contains("def wait_for_completion(self, task_uuid, poll_interval=10)"));
        assert!(PYTHON_DRIVER.contains(r#"source.index("\ndef check(")"#));
    }

    fn measured(wall_s: u64, total: u64) -> Measured {
        Measured {
            wall: Duration::from_secs(wall_s),
            creates: 20,
            statuses: total - 40,
            downloads: 20,
            errors: 0,
            total,
            complete_log: true,
            charges: 20,
            images: 20,
        }
    }

    #[test]
    fn both_sides_give_two_ratios() {
        let python = Side {
            name: "python".into(),
            outcome: Ok(measured(26, 300)),
        };
        let batch = Side {
            name: "batch".into(),
            outcome: Ok(measured(2, 270)),
        };
        let section = section(20, &python, &batch);
        assert_eq!(section.targets[0].verdict, Verdict::Reported);
        assert_eq!(
            section.targets[0].measured,
            "imggen batch: 0.08× the wall time, 0.90× the requests"
        );
        assert_eq!(section.tables[0].rows[1][6], "270");
    }

    #[test]
    fn a_missing_batch_command_is_a_skip_that_says_why() {
        let python = Side {
            name: "python".into(),
            outcome: Ok(measured(26, 300)),
        };
        let batch = Side {
            name: "batch".into(),
            outcome: Err("no `batch` command yet".into()),
        };
        let section = section(20, &python, &batch);
        assert_eq!(
            section.targets[0].verdict,
            Verdict::NotMeasured("no `batch` command yet".into())
        );
        let row = &section.tables[0].rows[1];
        assert_eq!(row[1], "skipped: no `batch` command yet");
        assert_eq!(row.len(), section.tables[0].headers.len());
        // The Python side is still reported.
        assert_eq!(section.tables[0].rows[0][6], "300");
    }
}
