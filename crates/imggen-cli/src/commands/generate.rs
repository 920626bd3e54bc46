//! `imggen generate`: plan, create, wait and download in one run — on the real APIs, or on
//! the in-process emulator when no key is set.

use std::time::Instant;

use imggen_core::{DownloadOptions, Imggen};
use imggen_mock::MockServer;

use crate::args::GenerateArgs;
use crate::context::Ctx;
use crate::exit::Failure;
use crate::output::WarningOutput;
use crate::report::{Report, finish};
use crate::request::build_request;
use crate::route::{
    Route, Tuning, connect_emulator, connect_real, emulator_notice, key_set, start_emulator,
};
use crate::tasks::{collect, submit};

/// Runs `imggen generate`; returns the exit code.
pub(crate) async fn command(args: GenerateArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    let result = generate(&args, ctx, &mut report).await;
    finish(report, result, args.request.json, ctx)
}

async fn generate(args: &GenerateArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    let request_args = &args.request;
    let settings = &request_args.settings;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    report.output.provider = Some(route.first_label());
    let request = build_request(request_args, &route)?;
    // Everything local is checked before anything is paid for: where the images go…
    DownloadOptions::to_dir(&args.waiting.out)
        .check()
        .await
        .map_err(|error| Failure::from_core(&error, route.emulated()))?;
    let tuning = Tuning {
        poll_interval: args.waiting.poll_interval,
        allow_extra_tasks: settings.allow_extra_tasks,
        strict: settings.strict,
        shared_budget: None,
    };
    let (imggen, emulator) = connect(&route, tuning, ctx, report).await?;
    // …and every create, like every other request, ends by the overall deadline.
    let left = args
        .waiting
        .timeout
        .map(|timeout| timeout.saturating_sub(started.elapsed()));
    let submission = submit(&imggen, &request, &route, false, left, ctx, report).await?;
    let result = collect(
        &imggen,
        &submission.handles,
        &args.waiting,
        started,
        route.emulated(),
        ctx,
        report,
    )
    .await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    result
}

/// The imggen a request goes through, and the emulator behind it when there is one.
async fn connect(
    route: &Route,
    tuning: Tuning,
    ctx: &Ctx,
    report: &mut Report,
) -> Result<(Imggen, Option<MockServer>), Failure> {
    if !route.emulated() {
        let imggen = connect_real(&route.ids(), tuning)?;
        return Ok((imggen, None));
    }
    let emulator = start_emulator().await?;
    let speaks = crate::args::emulated_protocol();
    let imggen = connect_emulator(&emulator, &[speaks], tuning)?;
    let message = emulator_notice(route, &format!("{speaks}'s protocol"));
    ctx.progress.notice(&message);
    report.output.warnings.push(WarningOutput {
        provider: "mock".into(),
        setting: None,
        value: None,
        message,
    });
    Ok((imggen, Some(emulator)))
}
