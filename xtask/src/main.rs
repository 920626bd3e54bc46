//! `cargo xtask`: maintainers' commands, in the rust-analyzer style (one binary, subcommands,
//! few dependencies).
//!
//! - `cargo xtask schema` writes `schemas/<provider>/<Type>.schema.json`;
//!   `cargo xtask schema --check` fails, naming the stale files, when they differ from the types.
//! - `cargo xtask man` writes the man pages under `man/` from the CLI's clap definitions;
//!   `--check` fails when they are stale.
//! - `cargo xtask ci` runs exactly what CI runs (`.ci/run`).
//! - `cargo xtask bench [NAME...] [--quick]` runs the benchmarks against imggen-mock and writes
//!   `BENCHMARKS.md` (by hand only: CI never runs them).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod man;
mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  schema [--check]   write the JSON Schemas under schemas/ (--check: fail if they are stale)
  man [--check]      write the man pages under man/ from the CLI (--check: fail if stale)
  ci                 run exactly what CI runs (.ci/run)
  bench [NAME...]    run the benchmarks and write BENCHMARKS.md (see `cargo xtask bench --help`)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["schema"] => schema_write(),
        ["schema", "--check"] => schema_check(),
        ["man"] => man_write(),
        ["man", "--check"] => man_check(),
        ["ci"] => ci(),
        ["bench", rest @ ..] => bench::main(&root(), rest),
        // The processes some benchmarks measure on their own; not for people.
        ["bench-worker", rest @ ..] => bench::worker(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command: {}\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn schema_write() -> Result<(), String> {
    let changed = schema::write(&root()).map_err(|err| format!("writing schemas: {err}"))?;
    if changed.is_empty() {
        println!("schemas are up to date");
    }
    for path in changed {
        println!("updated {}", path.display());
    }
    Ok(())
}

fn schema_check() -> Result<(), String> {
    let drift = schema::check(&root()).map_err(|err| format!("reading schemas: {err}"))?;
    if drift.is_empty() {
        println!("schemas are up to date");
        Ok(())
    } else {
        Err(drift.report())
    }
}

fn man_write() -> Result<(), String> {
    let changed = man::write(&root()).map_err(|err| format!("writing man pages: {err}"))?;
    if changed.is_empty() {
        println!("man pages are up to date");
    }
    for path in changed {
        println!("updated {}", path.display());
    }
    Ok(())
}

fn man_check() -> Result<(), String> {
    let stale = man::stale(&root()).map_err(|err| format!("reading man pages: {err}"))?;
    if stale.is_empty() {
        println!("man pages are up to date");
        return Ok(());
    }
    let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "stale man pages: {} (run `cargo xtask man`)",
        names.join(", ")
    ))
}

fn ci() -> Result<(), String> {
    let status = Command::new("bash")
        .arg(root().join(".ci/run"))
        .current_dir(root())
        .status()
        .map_err(|err| format!("could not start bash .ci/run: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(".ci/run failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain `cargo test` catches a type change whose schemas were not regenerated.
    #[test]
    fn committed_schemas_match_the_types() {
        let drift = schema::check(&root()).unwrap();
        assert!(drift.is_empty(), "{}", drift.report());
    }

    /// Plain `cargo test` catches a command-line change whose man pages were not rewritten,
    /// and the pages say what a reader of `man imggen-batch` needs.
    #[test]
    fn committed_man_pages_match_the_cli() {
        let stale = man::stale(&root()).unwrap();
        assert!(stale.is_empty(), "stale: {stale:?}; run `cargo xtask man`");
        let batch = std::fs::read_to_string(root().join("man/imggen-batch.1")).unwrap();
        for text in ["max\\-cost", "dry\\-run", "resubmit\\-unknown"] {
            assert!(
                batch.contains(text),
                "{text} missing from man/imggen-batch.1"
            );
        }
        assert!(root().join("man/imggen.1").is_file());
    }

    /// Every fixture a client test parses is a documented body, so it must validate against
    /// the schema of the type it is named after (`<Type>.<case>.json`).
    #[test]
    fn every_fixture_validates_against_its_schema() {
        let schemas = schema::all();
        let mut checked = 0;
        for provider in ["runblob", "gptimg", "runbase"] {
            let dir = root().join(format!("crates/imggen-{provider}/tests/fixtures"));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{} has no fixtures", dir.display());
            for path in files {
                let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
                let type_name = file_name.split('.').next().unwrap();
                let schema = schemas
                    .iter()
                    .find(|s| s.dir == provider && s.name == type_name)
                    .unwrap_or_else(|| {
                        panic!("{file_name}: no schema named {provider}/{type_name}")
                    });
                let validator = jsonschema::validator_for(&schema.schema).unwrap();
                let text = std::fs::read_to_string(&path).unwrap();
                let instance: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                let errors: Vec<String> = validator
                    .iter_errors(&instance)
                    .map(|error| format!("{} at {}", error, error.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{} does not match {provider}/{type_name}:\n{}",
                    path.display(),
                    errors.join("\n")
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "no fixtures found");
    }
}
