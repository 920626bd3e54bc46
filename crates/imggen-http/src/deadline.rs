//! An overall deadline that bounds every request made under it.
//!
//! A client's per-request timeout (60 s by default) says how long one request may take; a
//! caller who must be done in 20 s needs every request to end by then too — a status body
//! that trickles a byte a second, a create that never answers. [`within`] runs a future with a
//! deadline that every request the transport sends inside it obeys: each runs under the
//! smaller of its own timeout and what is left, a retry that could not finish in time is not
//! started, and a request that would start after the deadline is not sent at all.
//!
//! What a request cut off this way means is what any timeout means: a read may be repeated; a
//! create that was sent has an unknown outcome ([`Error::may_have_been_charged`]) and must
//! never be sent again blindly.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//!
//! # async fn demo<T>(status_call: impl Future<Output = T>) -> T {
//! // `status_call` is any client call, e.g. `gptimg.status(&task_id)`.
//! let deadline = Instant::now() + Duration::from_secs(20);
//! imggen_http::deadline::within(deadline, status_call).await
//! # }
//! ```
//!
//! The deadline is on the real monotonic clock ([`Instant`]), like the network timers it
//! bounds. Deadlines nest: an inner one never extends an outer one.
//!
//! [`Error::may_have_been_charged`]: crate::Error::may_have_been_charged

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `future` with every request it sends ending by `deadline` (or by an earlier
/// deadline this call is already under).
pub async fn within<F: Future>(deadline: Instant, future: F) -> F::Output {
    let deadline = current().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(deadline, future).await
}

/// The deadline the current task runs under, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// How long is left of the current deadline (zero once it has passed); `None` without one.
pub fn remaining() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deadlines_nest_and_never_extend_an_outer_one() {
        assert_eq!(current(), None);
        let soon = Instant::now() + Duration::from_secs(5);
        let later = soon + Duration::from_secs(60);
        let inner = within(soon, async { within(later, async { current() }).await }).await;
        assert_eq!(inner, Some(soon));
        let tighter = within(later, async { within(soon, async { current() }).await }).await;
        assert_eq!(tighter, Some(soon));
        assert!(within(soon, async { remaining() }).await <= Some(Duration::from_secs(5)));
        assert_eq!(current(), None);
    }
}
