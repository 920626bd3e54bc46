//! `imggen wait`: collect tasks created earlier (by `submit`, or a run that was stopped) from
//! their handles, and download their images.

use std::time::Instant;

use crate::args::WaitArgs;
use crate::context::Ctx;
use crate::exit::Failure;
use crate::handles::parse_handles;
use crate::output::{CostOutput, TaskOutput};
use crate::report::{Report, finish};
use crate::route::{Tuning, connect_real};
use crate::tasks::{collect, providers_of};

/// Runs `imggen wait`; returns the exit code.
pub(crate) async fn command(args: WaitArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    let result = wait(&args, ctx, &mut report).await;
    finish(report, result, args.json, ctx)
}

async fn wait(args: &WaitArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    let handles = parse_handles(&args.handles)?;
    report.output.provider = handles.first().map(|h| h.provider.to_string());
    let tuning = Tuning {
        poll_interval: args.waiting.poll_interval,
        ..Tuning::default()
    };
    let imggen = connect_real(&providers_of(&handles), tuning)?;
    for handle in &handles {
        let label = handle.provider.to_string();
        ctx.progress.task(&label, handle, "waiting");
        report
            .output
            .tasks
            .push(TaskOutput::new(&label, handle, "created"));
    }
    report.output.cost = CostOutput::from(
        handles
            .iter()
            .filter_map(|h| h.cost)
            .sum::<imggen_core::Cost>(),
    );
    collect(
        &imggen,
        &handles,
        &args.waiting,
        started,
        false,
        ctx,
        report,
    )
    .await
}
