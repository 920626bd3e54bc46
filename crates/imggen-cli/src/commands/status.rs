//! `imggen status`: one status call per handle, printed; nothing is downloaded.

use imggen_core::TaskState;

use crate::args::StatusArgs;
use crate::context::Ctx;
use crate::exit::{self, Failure};
use crate::handles::parse_handles;
use crate::output::{CostOutput, ImageOutput, TaskOutput};
use crate::report::{Report, finish};
use crate::route::{Tuning, connect_real};
use crate::tasks::providers_of;

/// Runs `imggen status`; returns the exit code.
pub(crate) async fn command(args: StatusArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    let result = status(&args, &mut report).await;
    finish(report, result, args.json, ctx)
}

async fn status(args: &StatusArgs, report: &mut Report) -> Result<(), Failure> {
    let handles = parse_handles(&args.handles)?;
    report.output.provider = handles.first().map(|h| h.provider.to_string());
    let imggen = connect_real(&providers_of(&handles), Tuning::default())?;
    for handle in &handles {
        let status = match imggen.status(handle).await {
            Ok(status) => status,
            Err(error) => {
                let failure = Failure::from_core(&error, false);
                report.output.cost = CostOutput::from(
                    handles
                        .iter()
                        .filter_map(|h| h.cost)
                        .sum::<imggen_core::Cost>(),
                );
                return Err(failure);
            }
        };
        let label = handle.provider.to_string();
        let mut line = format!("{handle}\t{}", status.state.name());
        match &status.state {
            TaskState::Succeeded { images } => {
                for image in images {
                    line.push('\t');
                    line.push_str(&image.url);
                    report.output.images.push(ImageOutput {
                        task_id: handle.task_id.clone(),
                        path: None,
                        original_path: None,
                        url: image.url.clone(),
                        media_type: image.media_type.clone(),
                        width: None,
                        height: None,
                        bytes: None,
                    });
                }
            }
            TaskState::Failed { code, message } => {
                let words: Vec<&str> = [code.as_deref(), message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !words.is_empty() {
                    line.push('\t');
                    line.push_str(&exit::one_line(&words.join(": ")));
                }
            }
            _ => {}
        }
        report.stdout.push(line);
        report
            .output
            .tasks
            .push(TaskOutput::new(&label, handle, status.state.name()));
    }
    report.output.cost = CostOutput::from(
        handles
            .iter()
            .filter_map(|h| h.cost)
            .sum::<imggen_core::Cost>(),
    );
    Ok(())
}
