//! `cargo xtask bench [NAME...] [--quick]`: the benchmarks of the issues (five of the batch
//! issue, two of the streaming batch and its workers), run against imggen-mock on loopback, written to
//! `BENCHMARKS.md`.
//!
//! The `xtask` alias runs this binary as a debug build, which would measure unoptimised code.
//! So, unless it already is one, it first builds the release binaries (`xtask` itself and the
//! `imggen` CLI) and runs the release `xtask` with the same arguments: every measured line of
//! code is a release build, and so is the mock it talks to.

mod batch;
mod budget;
mod harness;
mod overhead;
mod polling;
mod report;
mod scale;
mod seed;
mod workers;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::Machine;
use report::{Report, Section, Target, Verdict};

/// Set to `1` to run the benchmarks in whatever build this is (for working on them; the report
/// then says the figures are not a measurement).
const DEBUG_ENV: &str = "XTASK_BENCH_DEBUG";

/// `cargo xtask bench --help`.
pub const USAGE: &str = "\
usage: cargo xtask bench [NAME...] [--quick]

Runs the benchmarks against imggen-mock on loopback and writes BENCHMARKS.md (all seven, full
size, none failed) or else target/bench/BENCHMARKS.partial.md. Builds the measured code with
--release first. Takes a few minutes; never run by CI.

benchmarks (by name or number):
  1 overhead   status calls/s through imggen-core vs raw reqwest
  2 polling    requests per job and detection lag: imggen-core's schedule vs fixed intervals
  3 budget     100 runbase jobs on one key under 20 requests / 10 s: 429s and useful polls
  4 scale      10,000 jobs in flight in one process: peak RSS and CPU per job
  5 seed       the seed docs' Python client vs `imggen batch` on 20 jobs
  6 batch      a 1,000,000-line batch file: peak RSS, validation and journal load, first create
  7 workers    1, 2 and 4 `imggen batch` processes on one runbase key through PostgreSQL:
               budget used and 429s (starts a throwaway PostgreSQL unless
               IMGGEN_TEST_POSTGRES_URL names one)

options:
  --quick      smaller sizes: a smoke run, not a measurement";

/// The benchmarks, in the order: number, name, title.
const BENCHMARKS: [(&str, &str, &str); 7] = [
    ("1", "overhead", "Client overhead"),
    ("2", "polling", "Polling efficiency"),
    ("3", "budget", "Rate budget"),
    ("4", "scale", "Scale"),
    ("5", "seed", "Against the seed docs' client"),
    ("6", "batch", "Batch of a million lines"),
    ("7", "workers", "Workers on one key"),
];

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// Indexes into [`BENCHMARKS`], in order, no repeats.
    selected: Vec<usize>,
    quick: bool,
}

impl Options {
    fn all(&self) -> bool {
        self.selected.len() == BENCHMARKS.len()
    }
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut quick = false;
    let mut chosen = Vec::new();
    for arg in args {
        if *arg == "--quick" {
            quick = true;
            continue;
        }
        let index = BENCHMARKS
            .iter()
            .position(|(number, name, _)| arg == number || arg == name)
            .ok_or_else(|| format!("unknown benchmark or option {arg:?}\n\n{USAGE}"))?;
        chosen.push(index);
    }
    let selected = if chosen.is_empty() {
        (0..BENCHMARKS.len()).collect()
    } else {
        (0..BENCHMARKS.len())
            .filter(|index| chosen.contains(index))
            .collect()
    };
    Ok(Options { selected, quick })
}

/// `cargo xtask bench …`.
pub fn main(root: &Path, args: &[&str]) -> Result<(), String> {
    if args
        .iter()
        .any(|arg| matches!(*arg, "--help" | "-h" | "help"))
    {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse(args)?;
    let release = !cfg!(debug_assertions);
    let debug_allowed = std::env::var(DEBUG_ENV).is_ok_and(|value| value == "1");
    if !release && !debug_allowed {
        return rerun_as_release(root, args);
    }
    let command = std::iter::once("cargo xtask bench")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut report = Report {
        machine: Machine::detect(root),
        command,
        build: BUILD.join(" "),
        release,
        quick: options.quick,
        sections: Vec::new(),
    };
    if let Some(load) = harness::load_average()
        && load > report.machine.cores as f64 / 2.0
    {
        eprintln!(
            "note: the machine is busy (load average {load:.2} on {} cores): other work slows \
             the measurements down, and the report says so",
            report.machine.cores
        );
    }
    let mut failures = Vec::new();
    for index in &options.selected {
        let (number, name, title) = BENCHMARKS[*index];
        eprintln!("==> benchmark {number}: {name}");
        let started = std::time::Instant::now();
        let section = match run_one(root, name, options.quick) {
            Ok(section) => section,
            Err(error) => {
                eprintln!("    failed: {error}");
                failures.push(name);
                failed(number, title, &error)
            }
        };
        for target in &section.targets {
            eprintln!(
                "    {}: {} ({:?})",
                target.goal, target.measured, target.verdict
            );
        }
        eprintln!("    took {:.0} s", started.elapsed().as_secs_f64());
        report.sections.push(section);
    }
    if let Some(load) = harness::load_average() {
        report.machine.load = format!("{}, {load:.2} at the end", report.machine.load);
    }
    let text = report::render(&report);
    // BENCHMARKS.md only ever holds a complete, full-size release run.
    let path = if options.all() && !options.quick && release && failures.is_empty() {
        root.join("BENCHMARKS.md")
    } else {
        let dir = target_dir(root).join("bench");
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("could not create {}: {err}", dir.display()))?;
        dir.join("BENCHMARKS.partial.md")
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{} is not a file path", path.display()));
    };
    imggen_http::fs::write_atomically(dir, &name.to_string_lossy(), text.as_bytes())
        .map_err(|error| error.to_string())?;
    eprintln!("wrote {}", path.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "these benchmarks could not run: {} (their sections say why)",
            failures.join(", ")
        ))
    }
}

fn run_one(root: &Path, name: &str, quick: bool) -> Result<Section, String> {
    match name {
        "overhead" => overhead::run(quick),
        "polling" => polling::run(quick),
        "budget" => budget::run(quick),
        "scale" => scale::run(quick),
        "seed" => seed::run(root, quick),
        "batch" => batch::run(root, quick),
        "workers" => workers::run(root, quick),
        other => Err(format!("no benchmark named {other}")),
    }
}

/// A benchmark that could not run still gets its section, saying why.
fn failed(number: &str, title: &str, error: &str) -> Section {
    Section {
        number: number.parse().unwrap_or(0),
        title: title.into(),
        method: format!("This benchmark failed to run: {error}"),
        targets: vec![Target {
            goal: "runs".into(),
            measured: "failed".into(),
            verdict: Verdict::NotMeasured(error.into()),
        }],
        ..Section::default()
    }
}

/// `xtask bench-worker …`: the processes some benchmarks measure on their own.
pub fn worker(args: &[&str]) -> Result<(), String> {
    match args {
        ["scale", rest @ ..] => scale::worker(rest),
        ["batch", rest @ ..] => batch::worker(rest),
        _ => Err(format!("unknown bench worker: {}", args.join(" "))),
    }
}

/// What `cargo xtask bench` builds before measuring.
const BUILD: [&str; 7] = [
    "cargo",
    "build",
    "--release",
    "-p",
    "xtask",
    "-p",
    "imggen-cli",
];

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

fn rerun_as_release(root: &Path, args: &[&str]) -> Result<(), String> {
    eprintln!(
        "==> {} (the measured code is a release build)",
        BUILD.join(" ")
    );
    let status = Command::new(BUILD[0])
        .args(&BUILD[1..])
        .current_dir(root)
        .status()
        .map_err(|err| format!("could not run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("the release build failed ({status})"));
    }
    let exe = target_dir(root)
        .join("release")
        .join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    let status = Command::new(&exe)
        .arg("bench")
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|err| format!("could not run {}: {err}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmarks failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmarks_are_chosen_by_name_or_number_and_run_in_order() {
        let options = parse(&["seed", "2", "--quick", "polling"]).unwrap();
        assert_eq!(options.selected, [1, 4]);
        assert!(options.quick);
        assert!(!options.all());
        let all = parse(&[]).unwrap();
        assert!(all.all() && !all.quick);
    }

    #[test]
    fn an_unknown_benchmark_is_named_with_the_usage() {
        let error = parse(&["speed"]).unwrap_err();
        assert!(error.contains("\"speed\""), "{error}");
        assert!(error.contains("1 overhead"), "{error}");
    }
}
