//! The batch worker the harness starts and kills: a plain `BatchRunner` on runblob, configured
//! from the environment, printing one line per event on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use imggen_core::batch::{self, BatchEventKind, BatchOptions, BatchRunner, RequestDefaults};
use imggen_core::{Imggen, imggen_runblob};

/// Set (to anything) to run as the worker.
pub const ENV: &str = "IMGGEN_BATCH_WORKER";

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("worker: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn work() -> Result<(), String> {
    let client = imggen_runblob::Client::builder()
        .api_key(var("IMGGEN_BATCH_API_KEY")?)
        .base_url(var("IMGGEN_BATCH_BASE_URL")?)
        .build()
        .map_err(|error| error.to_string())?;
    // The mock's fast tasks take 1–2 s instead of runblob's 1–3 minutes: the same schedule,
    // sixty times faster.
    let imggen = Imggen::builder()
        .provider(imggen_core::imggen_runblob::provider::RunblobProvider::new(
            client,
        ))
        .poll_schedule(
            imggen_core::imggen_runblob::provider::ID,
            imggen_core::imggen_runblob::POLL_SCHEDULE.scaled(1.0 / 60.0),
        )
        .build()
        .map_err(|error| error.to_string())?;
    let input = batch::input::read(
        &PathBuf::from(var("IMGGEN_BATCH_INPUT")?),
        &RequestDefaults::new().provider(imggen_core::imggen_runblob::provider::ID),
    )
    .map_err(|error| error.to_string())?;
    let concurrency: usize = var("IMGGEN_BATCH_CONCURRENCY")?
        .parse()
        .map_err(|_| "IMGGEN_BATCH_CONCURRENCY is not a number".to_owned())?;
    let grace: u64 = var("IMGGEN_BATCH_GRACE_MS")?
        .parse()
        .map_err(|_| "IMGGEN_BATCH_GRACE_MS is not a number".to_owned())?;
    let options = BatchOptions::new(var("IMGGEN_BATCH_OUT")?)
        .concurrency(concurrency)
        .reconcile_grace(Duration::from_millis(grace))
        .on_event(|event| {
            let kind = match &event.kind {
                BatchEventKind::Started => "started",
                BatchEventKind::Submitting { .. } => "submitting",
                BatchEventKind::Submitted { .. } => "submitted",
                BatchEventKind::Status { .. } => "status",
                BatchEventKind::Reconciling => "reconciling",
                BatchEventKind::Adopted { .. } => "adopted",
                BatchEventKind::Done { .. } => "done",
                BatchEventKind::Failed { .. } => "failed",
                BatchEventKind::Unknown { .. } => "unknown",
                BatchEventKind::Pending { .. } => "pending",
                BatchEventKind::Finished => "finished",
                _ => "other",
            };
            println!("{kind} {}", event.id.as_deref().unwrap_or("-"));
        });
    let report = BatchRunner::new(imggen, options)
        .run(input)
        .await
        .map_err(|error| error.to_string())?;
    println!(
        "report done={} failed={} unknown={} adopted={}",
        report.progress.done,
        report.progress.failed,
        report.progress.unknown,
        report.adopted.len()
    );
    Ok(())
}
