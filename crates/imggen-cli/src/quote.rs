//! What `--dry-run` prints: each task a command would create, with its provider, model and
//! price, and the total. Nothing is sent.

use imggen_core::batch::{BatchRunner, BatchSource};
use imggen_core::{Cost, GenerationRequest, Imggen, Plan, ProviderId};

use crate::context::Ctx;
use crate::exit::{Failure, provider_label};
use crate::money::{cost_of, images, plural};
use crate::output::{
    CostOutput, InvalidLineOutput, QuoteOutput, QuotedRequestOutput, QuotedTaskOutput,
    WarningOutput,
};
use crate::route::Route;
use crate::stdout;

/// `generate --dry-run` and `submit --dry-run`: plans the request for the first provider of
/// the route that can serve it, checks its reference files, prints what it would create and
/// cost (the JSON object, or a line per task and the total), sends nothing, and returns the
/// exit code.
pub(crate) fn dry_run(
    imggen: &Imggen,
    request: &GenerationRequest,
    route: &Route,
    json: bool,
    ctx: &Ctx,
) -> u8 {
    let mut quote = QuoteOutput {
        dry_run: true,
        ..QuoteOutput::default()
    };
    let planned = plan_first(imggen, request, route).and_then(|(id, plan)| {
        check_files(request, id, route.emulated())?;
        Ok((id, plan))
    });
    let failure = match planned {
        Ok((id, plan)) => {
            let label = provider_label(id, route.emulated());
            let quoted = quoted(&plan, &label, None, None);
            add(&mut quote, &plan);
            quote.warnings = plan.warnings.iter().map(WarningOutput::from).collect();
            for warning in &plan.warnings {
                ctx.progress.warning(&warning.to_string());
            }
            quote.requests.push(quoted);
            None
        }
        Err(failure) => Some(failure),
    };
    ctx.progress
        .notice("dry run: nothing was sent, and nothing was paid for");
    if let Some(failure) = &failure {
        quote.error = Some(failure.to_output());
    }
    let _ = if json {
        stdout::write_json(&serde_json::to_string(&quote).unwrap_or_default())
    } else if failure.is_none() {
        let mut lines: Vec<String> = quote.requests.iter().flat_map(request_lines).collect();
        lines.push(total_line(&quote));
        stdout::write_lines(&lines)
    } else {
        Ok(())
    };
    match failure {
        Some(failure) => {
            ctx.progress.failure(&failure, &[]);
            failure.category.exit_code()
        }
        None => crate::exit::SUCCESS,
    }
}

/// The plan of the first provider of the route that can serve the request, as a submission
/// would try them; the last provider's error when none can.
fn plan_first(
    imggen: &Imggen,
    request: &GenerationRequest,
    route: &Route,
) -> Result<(ProviderId, Plan), Failure> {
    let mut last = None;
    for id in route.ids() {
        match imggen.plan(request, id) {
            Ok(plan) => return Ok((id, plan)),
            Err(error) => last = Some(Failure::from_core(&error, route.emulated())),
        }
    }
    Err(last.unwrap_or_else(|| Failure::usage("no provider to plan the request for")))
}

/// Every reference file must be readable, as a submission checks before its first create.
fn check_files(
    request: &GenerationRequest,
    provider: ProviderId,
    emulated: bool,
) -> Result<(), Failure> {
    for reference in &request.references {
        if let imggen_core::Reference::File(path) = reference
            && let Err(error) = std::fs::File::open(path)
        {
            return Err(
                Failure::usage(format!("reference file {}: {error}", path.display()))
                    .provider(provider_label(provider, emulated)),
            );
        }
    }
    Ok(())
}

/// The text lines of one quoted request: a line per task.
pub(crate) fn request_lines(request: &QuotedRequestOutput) -> Vec<String> {
    let who = match (&request.line, &request.id) {
        (Some(line), Some(id)) => format!("line {line} ({id})  "),
        _ => String::new(),
    };
    let model = request.model.as_deref().unwrap_or("default model");
    let count = request.tasks.len();
    request
        .tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let price = task.price.as_ref().map_or_else(
                || "price known only from the create's answer".to_owned(),
                |price| cost_of(price).to_string(),
            );
            format!(
                "{who}{}  {model}  task {} of {count}: {}  {price}",
                request.provider,
                index + 1,
                images(u64::from(task.images)),
            )
        })
        .collect()
}

/// The dry run's last line: `total: 3 tasks · 3 images · $0.15`.
pub(crate) fn total_line(quote: &QuoteOutput) -> String {
    let mut line = format!(
        "total: {} · {} · {}",
        plural(quote.tasks as u64, "task"),
        images(quote.images),
        cost_of(&quote.total)
    );
    if quote.unpriced_tasks > 0 {
        line.push_str(&format!(
            " (and {} priced only by the create's answer)",
            plural(quote.unpriced_tasks as u64, "task")
        ));
    }
    line
}

/// One request of a dry run, from its plan: `provider` is the label shown (`mock` for the
/// emulator).
pub(crate) fn quoted(
    plan: &Plan,
    provider: &str,
    id: Option<String>,
    line: Option<usize>,
) -> QuotedRequestOutput {
    QuotedRequestOutput {
        id,
        line,
        provider: provider.to_owned(),
        model: plan.model.clone(),
        tasks: plan
            .tasks
            .iter()
            .map(|task| QuotedTaskOutput {
                images: task.images,
                price: task.price.map(CostOutput::from),
            })
            .collect(),
        price: plan.estimated_cost.map(CostOutput::from),
    }
}

/// Adds a request's plan to a dry run's totals.
pub(crate) fn add(quote: &mut QuoteOutput, plan: &Plan) {
    quote.tasks += plan.tasks.len();
    quote.images += u64::from(plan.images());
    let priced: Cost = plan.tasks.iter().filter_map(|task| task.price).sum();
    quote.unpriced_tasks += plan
        .tasks
        .iter()
        .filter(|task| task.price.is_none())
        .count();
    quote.total = CostOutput::from(cost_of(&quote.total) + priced);
}

/// `batch --dry-run`: every line planned as a run would, printed as it is read (a batch of
/// millions is quoted in constant memory, the invalid lines aside), then the total.
pub(crate) fn quote_batch(
    runner: &BatchRunner,
    source: &BatchSource,
    emulated: bool,
    json: bool,
    ctx: &Ctx,
) -> u8 {
    use std::io::Write as _;
    let mut quote = QuoteOutput {
        dry_run: true,
        ..QuoteOutput::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written: std::io::Result<()> = if json {
        out.write_all(b"{\"dry_run\":true,\"requests\":[")
    } else {
        Ok(())
    };
    let mut first = true;
    let read = runner.quote(source, &mut |item| match item {
        Ok((request, plan)) => {
            let label = provider_label(plan.provider, emulated);
            let quoted = quoted(&plan, &label, Some(request.id.clone()), Some(request.line));
            add(&mut quote, &plan);
            if written.is_err() {
                return;
            }
            written = if json {
                let comma = if std::mem::take(&mut first) { "" } else { "," };
                serde_json::to_string(&quoted)
                    .map_err(std::io::Error::other)
                    .and_then(|text| write!(out, "{comma}{text}"))
            } else {
                request_lines(&quoted)
                    .iter()
                    .try_for_each(|line| writeln!(out, "{line}"))
            };
        }
        Err(error) => quote.invalid.push(InvalidLineOutput::from(&error)),
    });
    let failure = read
        .err()
        .map(|error| Failure::usage(format!("could not read the batch file: {error}")));
    if let Some(failure) = &failure {
        quote.error = Some(failure.to_output());
    }
    if written.is_ok() {
        written = if json {
            // The rest of the object: everything but `requests`, already written.
            let mut rest = serde_json::to_value(&quote).unwrap_or_default();
            if let Some(fields) = rest.as_object_mut() {
                fields.remove("dry_run");
                fields.remove("requests");
            }
            let text = rest.to_string();
            let tail = text.strip_prefix('{').unwrap_or(&text);
            let separator = if tail == "}" { "" } else { "," };
            writeln!(out, "]{separator}{tail}")
        } else {
            writeln!(out, "{}", total_line(&quote))
        };
    }
    written = written.and_then(|()| out.flush());
    drop(out);
    ctx.progress
        .notice("dry run: nothing was sent, and nothing was paid for");
    if !quote.invalid.is_empty() {
        let mut lines = vec![format!(
            "imggen: {} cannot run:",
            plural(quote.invalid.len() as u64, "line")
        )];
        lines.extend(
            quote
                .invalid
                .iter()
                .take(20)
                .map(|line| format!("  line {}: {}", line.line, line.problem)),
        );
        ctx.progress.eprint(&lines);
    }
    if let Err(error) = written {
        ctx.progress.eprint(&[format!(
            "imggen: could not write to standard output: {error}"
        )]);
        return crate::exit::OTHER;
    }
    match failure {
        Some(failure) => {
            ctx.progress.failure(&failure, &[]);
            failure.category.exit_code()
        }
        None if !quote.invalid.is_empty() => crate::exit::USAGE,
        None => crate::exit::SUCCESS,
    }
}
