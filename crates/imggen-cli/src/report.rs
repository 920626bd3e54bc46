//! What `generate`, `submit`, `status` and `wait` print: the `--json` object or the text
//! lines on stdout, the error on stderr, and the exit code.

use crate::context::Ctx;
use crate::exit::{self, Failure};
use crate::output::{GenerateOutput, TaskOutput};
use crate::stdout;

/// What a command has found so far: the JSON object, and the text lines for stdout.
#[derive(Default)]
pub(crate) struct Report {
    pub output: GenerateOutput,
    pub stdout: Vec<String>,
}

/// Prints the result and returns the exit code: the JSON object (with the error, if any) or
/// the text lines on stdout, and the error on stderr.
pub(crate) fn finish(mut report: Report, result: Result<(), Failure>, json: bool, ctx: &Ctx) -> u8 {
    let failure = result.err();
    if let Some(failure) = &failure {
        report.output.error = Some(failure.to_output());
    }
    let written = if json {
        let text = serde_json::to_string(&report.output).unwrap_or_else(|err| {
            format!(r#"{{"error":{{"message":"could not write the output: {err}"}}}}"#)
        });
        stdout::write_json(&text)
    } else {
        stdout::write_lines(&report.stdout)
    };
    let lost_output = stdout_lost(ctx, written, &report.output.tasks);
    match failure {
        Some(failure) => {
            ctx.progress.failure(&failure, &[]);
            failure.category.exit_code()
        }
        None if lost_output => exit::OTHER,
        None => exit::SUCCESS,
    }
}

/// When stdout could not be written (a redirect to a full disk), says so on stderr with the
/// handle of every task — the receipts that were meant for stdout — and returns true.
fn stdout_lost(ctx: &Ctx, written: std::io::Result<()>, tasks: &[TaskOutput]) -> bool {
    let error = match written {
        Err(error) => error.to_string(),
        Ok(()) if stdout::failed() => "an earlier write failed".to_owned(),
        Ok(()) => return false,
    };
    let mut lines = vec![format!(
        "imggen: could not write to standard output: {error}"
    )];
    for task in tasks {
        lines.push(format!(
            "imggen: keep this handle of a paid task: {}",
            task.handle
        ));
    }
    ctx.progress.eprint(&lines);
    true
}
