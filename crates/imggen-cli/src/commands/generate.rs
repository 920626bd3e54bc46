//! `imggen generate`: plan, create, wait and download in one run — on the real APIs, or on
//! the in-process emulator when no key is set.

use std::time::Instant;

use imggen_core::{DownloadOptions, Imggen};
use imggen_mock::MockServer;

use crate::args::GenerateArgs;
use crate::context::Ctx;
use crate::exit::Failure;
use crate::listen::{self, Listening};
use crate::output::WarningOutput;
use crate::report::{Report, finish};
use crate::request::build_request;
use crate::route::{
    Route, Tuning, connect_emulator, connect_real, emulator_notice, key_set, start_emulator,
};
use crate::tasks::{Collecting, Limits, collect, submit};
use crate::{money, quote};

/// Runs `imggen generate`; returns the exit code.
pub(crate) async fn command(args: GenerateArgs, ctx: &Ctx) -> u8 {
    let mut report = Report::default();
    if args.request.dry_run {
        return match quote(&args, ctx, &mut report).await {
            Ok(code) => code,
            Err(failure) => finish(report, Err(failure), args.request.json, ctx),
        };
    }
    let result = generate(&args, ctx, &mut report).await;
    if args.gallery {
        crate::gallery::write_for_tasks(
            &args.waiting.out,
            "imggen generate",
            &mut report.output,
            &ctx.progress,
        );
    }
    finish(report, result, args.request.json, ctx)
}

/// `--dry-run`: everything `generate` checks before paying, then the plan and its price.
async fn quote(args: &GenerateArgs, ctx: &Ctx, report: &mut Report) -> Result<u8, Failure> {
    let prepared = prepare(args, ctx, report).await?;
    let code = quote::dry_run(
        &prepared.imggen,
        &prepared.request,
        &prepared.route,
        args.request.json,
        ctx,
    );
    if let Some(emulator) = prepared.emulator {
        emulator.shutdown().await;
    }
    Ok(code)
}

/// What `generate` and its dry run check and build before anything could be paid for.
struct Prepared {
    route: Route,
    request: imggen_core::GenerationRequest,
    imggen: Imggen,
    emulator: Option<MockServer>,
}

async fn prepare(args: &GenerateArgs, ctx: &Ctx, report: &mut Report) -> Result<Prepared, Failure> {
    let settings = &args.request.settings;
    args.waiting.conversion().map_err(Failure::usage)?;
    let route = Route::resolve(settings.provider, &settings.fallback, key_set)?;
    report.output.provider = Some(route.first_label());
    let mut request = build_request(&args.request, &route)?;
    if let Some(url) = listen::callback_url(args.waiting.listen, args.public_url.as_deref())? {
        request = request.webhook(url);
    }
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
    Ok(Prepared {
        route,
        request,
        imggen,
        emulator,
    })
}

async fn generate(args: &GenerateArgs, ctx: &Ctx, report: &mut Report) -> Result<(), Failure> {
    let started = Instant::now();
    let settings = &args.request.settings;
    let Prepared {
        route,
        request,
        imggen,
        emulator,
    } = prepare(args, ctx, report).await?;
    // …and every create, like every other request, ends by the overall deadline.
    let left = args
        .waiting
        .timeout
        .map(|timeout| timeout.saturating_sub(started.elapsed()));
    let limits = Limits {
        deadline: left,
        spending: money::spending(settings, &imggen, imggen_core::Cost::ZERO),
    };
    // Listening before the create: a task may call back as soon as it exists.
    let listening = listen::start(
        args.waiting.listen,
        args.public_url.as_deref(),
        &imggen,
        ctx,
    )
    .await?;
    let submission = match submit(&imggen, &request, &route, false, limits, ctx, report).await {
        Ok(submission) => submission,
        Err(failure) => {
            listen::stop(listening).await;
            return Err(failure);
        }
    };
    let how = Collecting {
        started,
        emulated: route.emulated(),
        events: listening.as_ref().map(Listening::hub),
    };
    let result = collect(
        &imggen,
        &submission.handles,
        &args.waiting,
        how,
        ctx,
        report,
    )
    .await;
    listen::stop(listening).await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    // What was paid, whether or not every image arrived.
    let mut paid = money::paid_line(
        report.output.images.len() as u64,
        money::cost_of(&report.output.cost),
        started.elapsed(),
    );
    if route.emulated() {
        paid.push_str(" (the emulator charges nothing)");
    }
    ctx.progress.notice(&paid);
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
