//! `imggen list`: the tasks this machine created, from the local history — status, cost,
//! files — newest first.

use crate::args::ListArgs;
use crate::context::Ctx;
use crate::exit::{self, Failure};
use crate::history::HistoryEntry;
use crate::stdout;

/// Runs `imggen list`; returns the exit code.
pub(crate) fn command(args: &ListArgs, ctx: &Ctx) -> u8 {
    let entries = if args.pending {
        ctx.history.pending()
    } else {
        ctx.history.recent(args.limit)
    };
    let entries = match entries {
        Ok(entries) => entries,
        Err(problem) => {
            let failure = Failure::new(exit::Category::Other, problem);
            ctx.progress.failure(&failure, &[]);
            return failure.category.exit_code();
        }
    };
    let written = if args.json {
        stdout::write_json(&serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into()))
    } else {
        if entries.is_empty() {
            let place = ctx
                .history
                .path()
                .map_or_else(String::new, |path| format!(" ({})", path.display()));
            ctx.progress
                .notice(&format!("no task in the history yet{place}"));
        }
        stdout::write_lines(&entries.iter().map(line).collect::<Vec<_>>())
    };
    match written {
        Ok(()) => exit::SUCCESS,
        Err(_) => exit::OTHER,
    }
}

/// `2026-12-06 02:31  runbase:run_01…  succeeded  $0.05  a lamp  out/run_01…-1.png`.
fn line(entry: &HistoryEntry) -> String {
    let when = entry
        .created_at
        .get(..16)
        .unwrap_or(&entry.created_at)
        .replace('T', " ");
    let cost = crate::money::cost_of(&entry.cost);
    let prompt: String = entry
        .prompt
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    let mut line = format!(
        "{when}  {}:{}  {}  {cost}  {}",
        imggen_types::text::for_terminal(&entry.provider),
        imggen_types::text::for_terminal(&entry.task_id),
        imggen_types::text::for_terminal(&entry.status),
        imggen_types::text::for_terminal(&prompt)
    );
    if !entry.files.is_empty() {
        line.push_str("  ");
        line.push_str(&entry.files.join(", "));
    }
    line
}
