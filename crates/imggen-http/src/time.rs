//! Time, injected. Everything in imggen that sleeps or reads the clock does it through these
//! traits, so a test can drive a retry or a wait without waiting in real time.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A boxed future that sleeps.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Sleeps. The default, [`TokioSleeper`], sleeps for real.
pub trait Sleeper: Send + Sync + Debug + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// Reads the clock. The default, [`SystemClock`], reads the real one.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Monotonic time, for deadlines and elapsed times.
    fn now(&self) -> Instant;

    /// Wall-clock time, for HTTP dates (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`) and
    /// timestamps written to receipts.
    fn wall(&self) -> SystemTime;
}

/// [`tokio::time::sleep`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The machine's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock and a sleeper for tests: every sleep returns almost at once (after one yield),
/// moves the clock forward by its duration and is recorded, so a test can assert *how long*
/// code chose to wait without waiting.
///
/// Sleeps from concurrent tasks all advance the same clock, so it suits code where one loop
/// does the sleeping (a retry loop, a scheduler's driver).
///
/// ```
/// use std::time::Duration;
/// use imggen_http::time::{Clock, ManualTime, Sleeper};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let time = ManualTime::new();
/// let start = time.now();
/// time.sleep(Duration::from_secs(30)).await;
/// assert_eq!(time.now() - start, Duration::from_secs(30));
/// assert_eq!(time.sleeps(), [Duration::from_secs(30)]);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ManualTime {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    start: Instant,
    wall_start: SystemTime,
    elapsed: Duration,
    sleeps: Vec<Duration>,
}

impl ManualTime {
    /// A clock at the real present that only moves when something sleeps or [`advance`]
    /// is called.
    ///
    /// [`advance`]: ManualTime::advance
    pub fn new() -> Self {
        ManualTime {
            state: Arc::new(Mutex::new(ManualState {
                start: Instant::now(),
                wall_start: SystemTime::now(),
                elapsed: Duration::ZERO,
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward without recording a sleep.
    pub fn advance(&self, duration: Duration) {
        self.with(|state| state.elapsed += duration);
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.with(|state| state.sleeps.clone())
    }

    /// How far the clock has moved.
    pub fn elapsed(&self) -> Duration {
        self.with(|state| state.elapsed)
    }

    fn with<T>(&self, f: impl FnOnce(&mut ManualState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

impl Default for ManualTime {
    fn default() -> Self {
        ManualTime::new()
    }
}

impl Sleeper for ManualTime {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        let time = self.clone();
        Box::pin(async move {
            // Yield once so other tasks run first; the clock moves only when the sleep
            // completes, so a sleep abandoned in a `select!` (woken by a message instead)
            // takes no time.
            tokio::task::yield_now().await;
            time.with(|state| {
                state.elapsed += duration;
                state.sleeps.push(duration);
            });
        })
    }
}

impl Clock for ManualTime {
    fn now(&self) -> Instant {
        self.with(|state| state.start + state.elapsed)
    }

    fn wall(&self) -> SystemTime {
        self.with(|state| state.wall_start + state.elapsed)
    }
}
