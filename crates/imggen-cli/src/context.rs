//! What every command shares: the progress display, the Ctrl-C token, and how lines reach
//! stderr.

use std::sync::Arc;

use imggen_core::CancellationToken;

use crate::history::History;
use crate::progress::Progress;

/// What every command shares.
pub(crate) struct Ctx {
    pub progress: Arc<Progress>,
    /// Every task created, kept locally (`imggen list`, `imggen wait --pending`).
    pub history: Arc<History>,
    /// Set on Ctrl-C: waits stop and print the handles that resume them.
    pub cancel: CancellationToken,
}

/// An error and its sources on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
