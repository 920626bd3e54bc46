//! `imggen submit`: create the tasks and print their handles, without waiting; `imggen wait`
//! collects them later, from any process.

use crate::args::RequestArgs;
use crate::context::Ctx;
use crate::exit::Failure;
use crate::report::{Report, finish};
use crate::request::build_request;
use crate::route::{Route, Tuning, connect_real, key_set};
use crate::tasks::{Limits, submit};
use crate::{money, quote};

/// Runs `imggen submit`; returns the exit code.
pub(crate) async fn command(args: RequestArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    match submit_only(&args, ctx, &mut report).await {
        Ok(Some(code)) => code,
        Ok(None) => finish(report, Ok(()), args.json, ctx),
        Err(failure) => finish(report, Err(failure), args.json, ctx),
    }
}

/// Creates the tasks; `Some(code)` when a dry run has printed its own output instead.
async fn submit_only(
    args: &RequestArgs,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<Option<u8>, Failure> {
    let settings = &args.settings;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    report.output.provider = Some(route.first_label());
    if route.emulated() {
        return Err(Failure::usage(
            "submit needs a provider that outlives this process, and the built-in emulator stops when imggen exits",
        )
        .provider("mock")
        .hint("set a provider's API key, or run `imggen mock` in another terminal and export the variables it prints; `imggen generate` uses the emulator directly"));
    }
    let request = build_request(args, &route)?;
    let imggen = connect_real(
        &route.ids(),
        Tuning {
            poll_interval: None,
            allow_extra_tasks: settings.allow_extra_tasks,
            strict: settings.strict,
            shared_budget: None,
        },
    )?;
    if args.dry_run {
        return Ok(Some(quote::dry_run(
            &imggen, &request, &route, args.json, ctx,
        )));
    }
    let limits = Limits {
        deadline: None,
        spending: money::spending(settings, &imggen, imggen_core::Cost::ZERO),
    };
    submit(&imggen, &request, &route, !args.json, limits, ctx, report).await?;
    ctx.progress.finish_all("created");
    ctx.progress.notice(&format!(
        "{} created · {}",
        report.output.tasks.len(),
        money::cost_of(&report.output.cost)
    ));
    Ok(None)
}
