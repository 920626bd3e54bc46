//! A batch's page: redrawn from its journal while it runs, then from `results.jsonl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use imggen_core::batch::{ResultLines, results};

use super::{Card, Heading, write};
use crate::progress::Progress;

/// A view for [`BatchOptions::watch_results`](imggen_core::batch::BatchOptions::watch_results)
/// that redraws `dir/index.html` as the batch fills; a page that cannot be written is said
/// once, and the batch goes on.
pub(crate) fn live_view(
    dir: PathBuf,
    title: String,
    progress: Arc<Progress>,
) -> impl Fn(&mut ResultLines<'_>) + Send + Sync + 'static {
    let warned = AtomicBool::new(false);
    move |lines| {
        let heading = Heading {
            title: title.clone(),
            live: true,
        };
        let cards = lines.map(|line| line.map(Card::from).map_err(std::io::Error::other));
        if let Err(error) = write(&dir, &heading, cards)
            && !warned.swap(true, Ordering::Relaxed)
        {
            progress.warning(&format!(
                "the gallery page is not being refreshed: {error}; the batch goes on"
            ));
        }
    }
}

/// Writes `dir/index.html` from the batch's `results.jsonl`, so the page shows what that
/// file says; `Err` says why it could not be written.
pub(crate) fn from_results(dir: &Path, title: &str, results: &Path) -> Result<PathBuf, String> {
    let lines = results::stream(results)
        .map_err(|error| format!("could not read {}: {error}", results.display()))?;
    let heading = Heading {
        title: title.to_owned(),
        live: false,
    };
    write(dir, &heading, lines.map(|line| line.map(Card::from))).map_err(|error| error.to_string())
}
