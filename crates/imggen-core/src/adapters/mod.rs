//! One adapter per client crate: the unified model mapped to that client's wire request, and
//! its answers and errors mapped back. The client crates know nothing of imggen-core.
//!
//! Every adapter rebuilds its client with [`RetryPolicy::disabled`](imggen_http::RetryPolicy)
//! on the same connection pool, so that core's retry loop is the only one.

mod gptimg;
mod runbase;
mod runblob;

pub use gptimg::GptimgProvider;
pub use runbase::RunbaseProvider;
pub use runblob::RunblobProvider;

use imggen_types::ValidationError;

use crate::plan::PlannedTask;
use crate::provider::ProviderId;

/// The clients' own checks of the wire request a task becomes (prompt length, URL shapes),
/// without I/O: references that are files or bytes are checked when they are read.
pub(crate) fn validate(task: &PlannedTask) -> Result<(), ValidationError> {
    match task.provider {
        ProviderId::Runblob => {
            let images = runblob::wire_images_without_io(&task.references);
            runblob::wire(task, images).validate()
        }
        ProviderId::Gptimg => gptimg::wire(task)?.validate(),
        ProviderId::Runbase => runbase::wire(task).validate(),
    }
}
