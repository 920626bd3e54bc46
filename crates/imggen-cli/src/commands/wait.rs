//! `imggen wait`: collect tasks created earlier (by `submit`, or a run that was stopped) from
//! their handles, and download their images.

use std::time::Instant;

use crate::args::WaitArgs;
use crate::context::Ctx;
use crate::exit::Failure;
use crate::handles::parse_handles;
use crate::listen::{self, Listening};
use crate::output::{CostOutput, TaskOutput};
use crate::report::{Report, finish};
use crate::route::{Tuning, connect_real};
use crate::tasks::{Collecting, collect, providers_of};

/// Every unfinished task of the local history.
fn pending(ctx: &Ctx) -> Result<Vec<imggen_core::TaskHandle>, Failure> {
    let entries = ctx
        .history
        .pending()
        .map_err(|problem| Failure::new(crate::exit::Category::Other, problem))?;
    entries
        .iter()
        .map(|entry| {
            imggen_core::TaskHandle::from_json(&entry.handle.to_string()).map_err(|error| {
                Failure::new(
                    crate::exit::Category::Other,
                    format!(
                        "the history's handle of {}:{} cannot be read: {error}",
                        entry.provider, entry.task_id
                    ),
                )
            })
        })
        .collect()
}

/// Runs `imggen wait`; returns the exit code.
pub(crate) async fn command(args: WaitArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    let result = wait(&args, ctx, &mut report).await;
    if args.gallery {
        crate::gallery::write_for_tasks(
            &args.waiting.out,
            "imggen wait",
            &mut report.output,
            &ctx.progress,
        );
    }
    finish(report, result, args.json, ctx)
}

async fn wait(args: &WaitArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    args.waiting.conversion().map_err(Failure::usage)?;
    let handles = if args.pending {
        pending(ctx)?
    } else {
        parse_handles(&args.handles)?
    };
    if handles.is_empty() {
        ctx.progress
            .notice("no unfinished task in the history: nothing to wait for");
        return Ok(());
    }
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
    let listening = listen::start(args.waiting.listen, None, &imggen, ctx).await?;
    let how = Collecting {
        started,
        emulated: false,
        events: listening.as_ref().map(Listening::hub),
    };
    let result = collect(&imggen, &handles, &args.waiting, how, ctx, report).await;
    listen::stop(listening).await;
    // What the tasks collected were paid (when their handles say), and what they made.
    ctx.progress.notice(&crate::money::paid_line(
        report.output.images.len() as u64,
        crate::money::cost_of(&report.output.cost),
        started.elapsed(),
    ));
    result
}
