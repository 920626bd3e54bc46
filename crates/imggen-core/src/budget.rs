//! The request budget of one API key, and the scheduler that keeps every task on that key
//! inside it.
//!
//! runbase allows 20 requests per 10 s per key, creates and polls together; 50 tasks polling on
//! their own timers would earn 429s within seconds. So every request core makes on a key —
//! create, poll, status — first asks that key's **scheduler** for a permit.
//!
//! The scheduler is an actor: one driver task per (provider, key) owns a queue of tickets and
//! shares with the permits a sliding-window log of the requests granted. When the budget is
//! short and both kinds wait, **the slots are shared**: two of every three go to due polls,
//! one to a create (creates and explicit status calls go in order), so results stream in
//! while later creates still go out, finished tasks that piled up are drained quickly, and
//! neither kind starves; a kind with nothing due leaves its slots to the other. Among polls,
//! the task most likely to be finished goes first (longest running relative to its expected
//! duration, longest overdue), so an old task that is surely done is not starved by a young
//! one. A 429 pauses
//! the whole key until `Retry-After` (or a growing backoff) and, unless the caller configured
//! the budget, tightens it to three quarters of what was observed to fail. A tightened budget
//! **grows back** after the pause: every window without a 429 adds a tenth of the documented
//! budget (runbase's 20 per 10 s, never more), or of what was observed to fail for a key with
//! no documented budget, which is unlimited again once twice that is allowed — additive
//! increase, multiplicative decrease, so one storm does not slow the rest of a run.
//!
//! **The driver is the only thing in imggen-core that sleeps**, through the injected
//! [`Sleeper`], and it never sleeps while a request it permitted is in flight: it waits for
//! the answers. With `imggen_http::time::ManualTime` (whose sleep moves the clock only when it
//! completes) virtual time then moves only when every task is waiting on the budget or the
//! schedule — which makes tests with many tasks deterministic enough to assert "zero 429s"
//! without waiting in real time.
//!
//! **A key with no budget skips the driver.** Until a 429 teaches it one, a runblob or gptimg
//! key has nothing to wait for, and a due request is granted on the spot (`Scheduler::register`
//! answers at once) instead of a round trip through the driver task. The fast path keeps the
//! driver's view exact: it counts the request in the shared in-flight count and the shared log
//! (so a later 429 still learns from it), and it is closed while the driver sleeps (so no
//! request starts while a virtual clock may move) and for good after a 429.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use imggen_http::time::{Clock, Sleeper};
use tokio::sync::{mpsc, oneshot};

pub use imggen_provider::RateLimit;

mod shared;
use shared::SharedSlot;
pub use shared::{LocalSharedBudget, SharedBudget, SharedBudgetError, Taken};

/// The budget the scheduler actually spends: a tenth fewer requests (at least one kept) and a
/// window 250 ms longer, so a request granted at the edge of a window is not counted by the
/// provider in the next one (its clock sees the request a little later than ours).
fn effective(limit: &RateLimit) -> (usize, Duration) {
    let margin = limit.requests / 10;
    let requests = limit.requests.saturating_sub(margin).max(1);
    (requests as usize, limit.window + WINDOW_GUARD)
}

const WINDOW_GUARD: Duration = Duration::from_millis(250);
/// How far back requests are counted when a 429 teaches an unconfigured budget.
const LEARN_WINDOW: Duration = Duration::from_secs(10);
const FIRST_PAUSE: Duration = Duration::from_secs(2);
/// When creates and due polls both wait: `CONTENDED_CYCLE - 1` polls, then one create. A task
/// needs one create and at least one poll, so an even split would keep up with new tasks but
/// never catch up with finished ones that piled up while creates ran alone (the first window
/// of a batch, when no poll is due yet); two polls per create drain such a pile, after which
/// polls run out and leave their slots to creates, and the split settles at what the tasks
/// need. A third of a contended budget still goes to creates, however many polls are due.
const CONTENDED_CYCLE: u8 = 3;
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// How close together two grants of the fast path may be to share one entry of the log: a
/// key served at tens of thousands of requests a second then keeps at most one entry per
/// millisecond of its learning window, not one per request.
const FAST_MERGE: Duration = Duration::from_millis(1);

/// The sliding-window log of requests granted on one key. Pure arithmetic over instants.
///
/// Grants at the same instant share one entry (virtual time grants many at once), and so may
/// grants of the fast path less than [`FAST_MERGE`] apart, counted at the first one's instant:
/// at most that much early, which only an unbudgeted key's log ever holds and the window's
/// guard covers many times over once a 429 gives it a budget.
#[derive(Debug, Default)]
pub(crate) struct Window {
    log: VecDeque<(Instant, usize)>,
    total: usize,
}

impl Window {
    /// Forgets requests granted at or before `now - keep`.
    fn prune(&mut self, now: Instant, keep: Duration) {
        while let Some(&(oldest, count)) = self.log.front() {
            if oldest + keep <= now {
                self.log.pop_front();
                self.total -= count;
            } else {
                break;
            }
        }
    }

    /// Records one request granted `at`, sharing the last entry when it was granted at most
    /// `merge` earlier.
    fn record(&mut self, at: Instant, merge: Duration) {
        self.total += 1;
        if let Some((last, count)) = self.log.back_mut()
            && *last <= at
            && at <= *last + merge
        {
            *count += 1;
            return;
        }
        self.log.push_back((at, 1));
    }

    /// Requests granted after `since`.
    fn count_after(&self, since: Instant) -> usize {
        self.log
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, count)| count)
            .sum()
    }

    /// When the next request may be sent under (`requests` per `window`): `now` if a slot is
    /// free, otherwise when enough of the oldest requests leave the window.
    fn next_free(&self, now: Instant, requests: usize, window: Duration) -> Instant {
        if self.total < requests {
            return now;
        }
        // The grant whose leaving frees a slot: the one with `total - requests` older ones.
        let mut older = self.total - requests;
        for &(at, count) in &self.log {
            if older < count {
                return (at + window).max(now);
            }
            older -= count;
        }
        now
    }
}

/// How likely a polled task is to be finished by `now`, relative to others on the key: the
/// time since it was created plus the time it has been overdue for a poll, over its expected
/// duration. Counting the overdue time twice means a task that was just polled yields to one
/// that has been waiting, so no task starves when the budget is short.
pub(crate) fn likely_finished(
    now: Instant,
    started: Instant,
    due: Instant,
    expected: Duration,
) -> f64 {
    let running = now.saturating_duration_since(started);
    let overdue = now.saturating_duration_since(due);
    (running + overdue).as_secs_f64() / expected.as_secs_f64().max(0.001)
}

/// What a ticket asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Priority {
    /// A create or an explicit status call: served in order, sharing a short budget with due
    /// polls (one slot in three when both wait).
    First,
    /// A poll of a waiting task, ordered by [`likely_finished`].
    Poll {
        /// When the task was created (or the wait began, for a handle without a time).
        started: Instant,
        /// How long such a task usually takes.
        expected: Duration,
    },
    /// Only a wake-up at `not_before` (a download's backoff); no request, no budget.
    Timer,
}

/// How a permitted request ended, as the budget needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The provider answered with anything but 429.
    Answered,
    /// The provider answered 429.
    RateLimited(Option<Duration>),
    /// No answer (a connection failure), or the permit was dropped.
    NoAnswer,
}

/// What the driver answers a ticket with.
#[derive(Debug)]
pub(crate) enum Grant {
    /// Go ahead (for a budgeted ticket: send exactly one request, then finish the permit).
    Go(Permit),
    /// The ticket's deadline passed before it could be served.
    Deadline,
    /// The driver is gone (the runtime is shutting down).
    Closed,
}

enum Message {
    Ticket(Ticket),
    Withdraw(u64),
    /// A permitted request ended (the in-flight count is already down): sent when the driver
    /// has to know — a 429, any outcome once the key is budgeted or paused, any end while it
    /// has tickets queued.
    Done {
        granted_at: Instant,
        outcome: Outcome,
    },
}

struct Ticket {
    seq: u64,
    priority: Priority,
    not_before: Instant,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Grant>,
}

/// What the driver, the schedulers and the permits of one key share.
struct Shared {
    state: Mutex<SharedState>,
    seq: AtomicU64,
    /// Weak, so the driver ends once every scheduler and ticket is gone; a permit that
    /// outlives them has nobody left to tell.
    tx: mpsc::WeakUnboundedSender<Message>,
}

#[derive(Debug, Default)]
struct SharedState {
    /// The requests granted, by the driver or the fast path.
    window: Window,
    /// Requests granted whose outcome is not yet reported.
    in_flight: usize,
    /// The key has no budget and has never been answered 429: a due request may be granted
    /// without the driver. Only ever goes from true to false.
    open: bool,
    /// The driver is sleeping: a request started now could see a virtual clock move under
    /// it, so the fast path is closed and tickets go to the driver (which wakes for them).
    sleeping: bool,
    /// The driver has tickets queued: the end of any request is news to it (a slot freed, a
    /// due ticket to serve now that it need not wait for answers, a moment to sleep), as it
    /// cannot use a timer while requests are in flight. With nothing queued, the fast path's
    /// requests come and go without a message.
    listening: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Permission to send one request. Finish it with the outcome; dropping it counts as a
/// request that got no answer.
pub(crate) struct Permit {
    /// The key it reports back to; `None` for a timer's wake-up, which is no request.
    key: Option<Arc<Shared>>,
    granted_at: Instant,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("budgeted", &self.key.is_some())
            .finish()
    }
}

impl Permit {
    /// When it was granted, on the scheduler's clock.
    pub(crate) fn granted_at(&self) -> Instant {
        self.granted_at
    }

    /// Reports how the request ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: Outcome) {
        let Some(key) = self.key.take() else { return };
        let tell_driver = {
            let mut state = key.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            let rate_limited = matches!(outcome, Outcome::RateLimited(_));
            let was_open = state.open;
            if rate_limited {
                // Closed here, not when the driver reads the message: no request may slip
                // past the pause through the fast path in between.
                state.open = false;
            }
            rate_limited || !was_open || state.listening
        };
        if tell_driver && let Some(tx) = key.tx.upgrade() {
            let _ = tx.send(Message::Done {
                granted_at: self.granted_at,
                outcome,
            });
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.report(Outcome::NoAnswer);
    }
}

/// A ticket waiting for its grant, or a grant made on the spot. Dropping a waiting ticket
/// withdraws it, so a cancelled wait leaves nothing behind for the driver to sleep on.
pub(crate) struct PendingGrant {
    state: Pending,
}

enum Pending {
    /// Granted by the fast path; taken by the first poll.
    Ready(Option<Grant>),
    Queued {
        rx: oneshot::Receiver<Grant>,
        withdraw: Option<(mpsc::UnboundedSender<Message>, u64)>,
    },
}

impl Future for PendingGrant {
    type Output = Grant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Grant> {
        match &mut self.state {
            Pending::Ready(grant) => Poll::Ready(grant.take().unwrap_or(Grant::Closed)),
            Pending::Queued { rx, withdraw } => match Pin::new(rx).poll(cx) {
                Poll::Ready(result) => {
                    *withdraw = None;
                    Poll::Ready(result.unwrap_or(Grant::Closed))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for PendingGrant {
    fn drop(&mut self) {
        if let Pending::Queued { withdraw, .. } = &mut self.state
            && let Some((tx, seq)) = withdraw.take()
        {
            let _ = tx.send(Message::Withdraw(seq));
        }
    }
}

/// The handle to one key's driver. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Scheduler {
    tx: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts the driver of one key on the current tokio runtime. `limit`: the budget (`None`:
    /// unlimited until a 429 teaches one); `configured`: the caller set it, so 429s pause but
    /// never tighten it.
    pub(crate) fn start(
        label: String,
        limit: Option<RateLimit>,
        configured: bool,
        shared_budget: Option<(Arc<dyn SharedBudget>, String)>,
        sleeper: Arc<dyn Sleeper>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(SharedState {
                open: limit.is_none(),
                ..SharedState::default()
            }),
            seq: AtomicU64::new(0),
            tx: tx.downgrade(),
        });
        let driver = Driver {
            label,
            rx,
            shared: Arc::clone(&shared),
            sleeper,
            clock: Arc::clone(&clock),
            limit,
            configured,
            ceiling: if configured { None } else { limit },
            learned_from: 0,
            quiet_since: None,
            paused_until: None,
            last_rate_limited: None,
            streak: 0,
            contended: 0,
            queue: Vec::new(),
            shared_budget: shared_budget.map(|(budget, key)| SharedSlot {
                budget,
                key,
                tokens: 0,
                taken_at: None,
                next_at: None,
                unreachable_until: None,
            }),
        };
        tokio::spawn(driver.run());
        Scheduler { tx, shared, clock }
    }

    /// Whether the driver has stopped (its runtime is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues a ticket now (so its place is kept even before the grant is awaited). A request
    /// due now on a key with no budget is granted on the spot.
    pub(crate) fn register(
        &self,
        priority: Priority,
        not_before: Instant,
        deadline: Option<Instant>,
    ) -> PendingGrant {
        self.register_at(self.clock.now(), priority, not_before, deadline)
    }

    /// [`register`](Self::register) for a request due now: the clock is read once.
    pub(crate) fn register_now(
        &self,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> PendingGrant {
        let now = self.clock.now();
        self.register_at(now, priority, now, deadline)
    }

    fn register_at(
        &self,
        now: Instant,
        priority: Priority,
        not_before: Instant,
        deadline: Option<Instant>,
    ) -> PendingGrant {
        if priority != Priority::Timer
            && let Some(permit) = self.grant_now(now, not_before, deadline)
        {
            return PendingGrant {
                state: Pending::Ready(Some(Grant::Go(permit))),
            };
        }
        let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let ticket = Ticket {
            seq,
            priority,
            not_before,
            deadline,
            reply,
        };
        // If the driver is gone the reply sender is dropped with the message and the grant
        // reads `Closed`.
        let _ = self.tx.send(Message::Ticket(ticket));
        PendingGrant {
            state: Pending::Queued {
                rx,
                withdraw: Some((self.tx.clone(), seq)),
            },
        }
    }

    /// The fast path: a permit for a request due now, when the key has no budget, has never
    /// been answered 429 and its driver is not sleeping — exactly when the driver would grant
    /// it at once. Counted in the shared log and in-flight count as the driver counts its own.
    fn grant_now(
        &self,
        now: Instant,
        not_before: Instant,
        deadline: Option<Instant>,
    ) -> Option<Permit> {
        if not_before > now || deadline.is_some_and(|deadline| deadline <= now) {
            return None;
        }
        if self.tx.is_closed() {
            return None;
        }
        {
            let mut state = self.shared.lock();
            if !state.open || state.sleeping {
                return None;
            }
            state.window.prune(now, LEARN_WINDOW);
            state.window.record(now, FAST_MERGE);
            state.in_flight += 1;
        }
        Some(Permit {
            key: Some(Arc::clone(&self.shared)),
            granted_at: now,
        })
    }
}

struct Driver {
    label: String,
    rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    limit: Option<RateLimit>,
    configured: bool,
    /// What a tightened budget grows back to: the documented budget the key started with;
    /// `None` for a key that had none (it grows back to unlimited).
    ceiling: Option<RateLimit>,
    /// Requests per window observed when a 429 last taught a key with no documented budget.
    learned_from: u32,
    /// Since when the tightened budget has gone without a 429 (growth counts whole windows
    /// from here, after any pause); `None` while nothing is to grow back.
    quiet_since: Option<Instant>,
    paused_until: Option<Instant>,
    last_rate_limited: Option<Instant>,
    streak: u32,
    /// Slots given while creates and due polls both waited, modulo [`CONTENDED_CYCLE`]:
    /// whose turn the next one is.
    contended: u8,
    queue: Vec<Ticket>,
    /// The key's budget as every process that uses it shares it, when one is configured.
    shared_budget: Option<SharedSlot>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            while let Ok(message) = self.rx.try_recv() {
                self.handle(message);
            }
            let mut now = self.clock.now();
            if self.take_shared(now).await {
                now = self.clock.now();
            }
            self.serve(now);
            let wake = self.plan_sleep(now);
            let message = match wake {
                None => self.rx.recv().await,
                Some(at) => {
                    let sleep = self.sleeper.sleep(at.saturating_duration_since(now));
                    let message = tokio::select! {
                        biased;
                        message = self.rx.recv() => Some(message),
                        () = sleep => None,
                    };
                    self.shared.lock().sleeping = false;
                    match message {
                        Some(message) => message,
                        None => continue,
                    }
                }
            };
            match message {
                Some(message) => self.handle(message),
                None => return,
            }
        }
    }

    /// When to wake next, if the driver may sleep now; marks it sleeping (closing the fast
    /// path) under the same lock that counts requests in flight, so no request can start
    /// between the check and the sleep. Never sleeps while a permitted request is in flight:
    /// a sleep now would move a virtual clock under it; with tickets queued, every request
    /// that ends wakes the driver (as its 429 would at any time).
    fn plan_sleep(&mut self, now: Instant) -> Option<Instant> {
        let mut state = self.shared.lock();
        state.listening = !self.queue.is_empty();
        if state.in_flight > 0 {
            return None;
        }
        let wake = self.next_wake(now, &state.window);
        state.sleeping = wake.is_some();
        wake
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Ticket(ticket) => self.queue.push(ticket),
            Message::Withdraw(seq) => self.queue.retain(|ticket| ticket.seq != seq),
            Message::Done {
                granted_at,
                outcome,
            } => match outcome {
                Outcome::RateLimited(retry_after) => self.rate_limited(granted_at, retry_after),
                Outcome::Answered => self.streak = 0,
                Outcome::NoAnswer => {}
            },
        }
    }

    fn rate_limited(&mut self, granted_at: Instant, retry_after: Option<Duration>) {
        let now = self.clock.now();
        // Requests sent before the previous 429 belong to the same storm: they may extend the
        // pause but neither grow the backoff nor tighten the budget again.
        let new_storm = self.last_rate_limited.is_none_or(|last| granted_at >= last);
        if new_storm {
            self.streak += 1;
            self.last_rate_limited = Some(now);
            if !self.configured {
                let window = self.limit.map_or(LEARN_WINDOW, |limit| limit.window);
                let observed = self
                    .shared
                    .lock()
                    .window
                    .count_after(now.checked_sub(window).unwrap_or(now));
                let observed = u32::try_from(observed).unwrap_or(u32::MAX);
                let current = self.limit.map_or(u32::MAX, |limit| limit.requests);
                let requests = (observed.min(current).saturating_mul(3) / 4).max(1);
                let tightened = RateLimit::new(requests, window);
                if self.ceiling.is_none() {
                    self.learned_from = observed.max(1);
                }
                self.quiet_since = Some(now);
                tracing::warn!(
                    key = %self.label,
                    observed,
                    budget = %tightened,
                    "429 from the provider: tightening this key's request budget"
                );
                self.limit = Some(tightened);
            }
        }
        let pause = retry_after.unwrap_or_else(|| {
            FIRST_PAUSE
                .saturating_mul(1u32 << self.streak.saturating_sub(1).min(5))
                .min(MAX_PAUSE)
        });
        let until = now + pause;
        if self.paused_until.is_none_or(|current| current < until) {
            tracing::debug!(key = %self.label, pause_ms = pause.as_millis() as u64, "pausing key");
            self.paused_until = Some(until);
        }
    }

    fn keep(&self) -> (Option<(usize, Duration)>, Duration) {
        match self.limit {
            Some(limit) => {
                let (requests, window) = effective(&limit);
                (Some((requests, window)), window.max(LEARN_WINDOW))
            }
            None => (None, LEARN_WINDOW),
        }
    }

    /// When a budgeted request may next be sent.
    fn free_at(&self, now: Instant, log: &Window) -> Instant {
        let paused = self
            .paused_until
            .filter(|&until| until > now)
            .unwrap_or(now);
        let window = match self.keep().0 {
            Some((requests, window)) => log.next_free(now, requests, window),
            None => now,
        };
        let shared = match self.waiting_on_shared(now) {
            Some(slot) => slot.next_at.unwrap_or(now),
            None => now,
        };
        paused.max(window).max(shared)
    }

    /// Grows a budget that 429s tightened: a tenth of the documented budget (or of what was
    /// observed to fail) per whole window without a 429 since the pause ended, up to the
    /// documented budget — or, for a key with none, back to unlimited once twice the observed
    /// rate is allowed.
    fn recover(&mut self, now: Instant) {
        let (Some(limit), Some(since)) = (self.limit, self.quiet_since) else {
            return;
        };
        let since = self.paused_until.map_or(since, |paused| since.max(paused));
        let window = limit.window.max(Duration::from_millis(1));
        let windows = now.saturating_duration_since(since).as_nanos() / window.as_nanos();
        if windows == 0 {
            return;
        }
        let windows = u32::try_from(windows).unwrap_or(u32::MAX);
        let reference = self
            .ceiling
            .map_or(self.learned_from, |ceiling| ceiling.requests);
        let step = (reference / 10).max(1);
        let grown = limit.requests.saturating_add(step.saturating_mul(windows));
        self.quiet_since = Some(since + window.saturating_mul(windows));
        let recovered = match self.ceiling {
            Some(ceiling) if grown >= ceiling.requests => Some(Some(ceiling)),
            None if grown > self.learned_from.saturating_mul(2) => Some(None),
            _ => None,
        };
        match recovered {
            Some(back) => {
                tracing::info!(
                    key = %self.label,
                    budget = %back.map_or_else(|| "unlimited".to_owned(), |limit| limit.to_string()),
                    "no 429 for a while: this key's request budget has grown back"
                );
                self.limit = back;
                self.quiet_since = None;
            }
            None => {
                tracing::debug!(key = %self.label, requests = grown, "growing this key's request budget back");
                self.limit = Some(RateLimit::new(grown, limit.window));
            }
        }
    }

    /// When a tightened budget next grows, if it is growing.
    fn next_growth(&self) -> Option<Instant> {
        let (limit, since) = (self.limit?, self.quiet_since?);
        let since = self.paused_until.map_or(since, |paused| since.max(paused));
        Some(since + limit.window)
    }

    fn serve(&mut self, now: Instant) {
        self.recover(now);
        self.queue.retain(|ticket| !ticket.reply.is_closed());
        let mut granted: Vec<(Ticket, Grant)> = Vec::new();

        let mut index = 0;
        while index < self.queue.len() {
            let ticket = &self.queue[index];
            if ticket.priority == Priority::Timer && ticket.not_before <= now {
                let ticket = self.queue.swap_remove(index);
                let permit = Permit {
                    key: None,
                    granted_at: now,
                };
                granted.push((ticket, Grant::Go(permit)));
            } else {
                index += 1;
            }
        }

        {
            let shared = Arc::clone(&self.shared);
            let mut state = shared.lock();
            let keep = self.keep().1;
            state.window.prune(now, keep);
            // A key that shares its budget sends only what it took from it.
            while self.free_at(now, &state.window) <= now && self.waiting_on_shared(now).is_none() {
                let Some(index) = self.pick(now) else { break };
                let ticket = self.queue.swap_remove(index);
                if let Some(slot) = self.shared_budget.as_mut() {
                    slot.tokens = slot.tokens.saturating_sub(1);
                }
                state.window.record(now, Duration::ZERO);
                state.in_flight += 1;
                let permit = Permit {
                    key: Some(Arc::clone(&self.shared)),
                    granted_at: now,
                };
                granted.push((ticket, Grant::Go(permit)));
            }
        }

        let mut index = 0;
        while index < self.queue.len() {
            if self.queue[index]
                .deadline
                .is_some_and(|deadline| deadline <= now)
            {
                let ticket = self.queue.swap_remove(index);
                granted.push((ticket, Grant::Deadline));
            } else {
                index += 1;
            }
        }

        // Sent with the shared state unlocked: a receiver that is gone drops the permit,
        // whose drop reports it done (and takes the lock).
        for (ticket, grant) in granted {
            let _ = ticket.reply.send(grant);
        }
    }

    /// The budgeted ticket to serve now. Creates and status calls go in order; polls that
    /// are due, the one most likely to find its task finished first. When both wait, two
    /// slots of every three go to polls and one to a create, so neither starves the other.
    fn pick(&mut self, now: Instant) -> Option<usize> {
        // One pass over the queue for both kinds: it may hold a ticket per task of a batch.
        let mut first: Option<(usize, u64)> = None;
        let mut poll = BestPoll::default();
        for (index, ticket) in self.queue.iter().enumerate() {
            if ticket.not_before > now {
                continue;
            }
            match ticket.priority {
                Priority::First => {
                    if first.is_none_or(|(_, seq)| ticket.seq < seq) {
                        first = Some((index, ticket.seq));
                    }
                }
                Priority::Poll { started, expected } => {
                    let score = likely_finished(now, started, ticket.not_before, expected);
                    poll.offer(index, ticket.seq, score);
                }
                Priority::Timer => {}
            }
        }
        match (first.map(|(index, _)| index), poll.index()) {
            (Some(first), Some(poll)) => {
                let turn = self.contended;
                self.contended = (turn + 1) % CONTENDED_CYCLE;
                Some(if turn < CONTENDED_CYCLE - 1 {
                    poll
                } else {
                    first
                })
            }
            (first, poll) => first.or(poll),
        }
    }

    fn next_wake(&self, now: Instant, log: &Window) -> Option<Instant> {
        let free = self.free_at(now, log);
        let waiting = self
            .queue
            .iter()
            .flat_map(|ticket| {
                let ready = match ticket.priority {
                    Priority::Timer => ticket.not_before,
                    _ => ticket.not_before.max(free),
                };
                [Some(ready), ticket.deadline]
            })
            .flatten()
            .min()?;
        // A budget that grows back may free a slot before the tightened one would.
        Some(match self.next_growth() {
            Some(growth) if growth > now && growth < waiting => growth,
            _ => waiting,
        })
    }
}

/// The due poll most likely to find its task finished, as candidates are offered; ties go to
/// the older ticket.
#[derive(Debug, Default)]
struct BestPoll {
    best: Option<(usize, u64, f64)>,
}

impl BestPoll {
    fn offer(&mut self, index: usize, seq: u64, score: f64) {
        let better = match self.best {
            None => true,
            Some((_, best_seq, best_score)) => {
                score > best_score || (score == best_score && seq < best_seq)
            }
        };
        if better {
            self.best = Some((index, seq, score));
        }
    }

    fn index(&self) -> Option<usize> {
        self.best.map(|(index, _, _)| index)
    }
}

/// Among due polls `(index, seq, started, due, expected)`, the one most likely finished;
/// ties go to the older ticket.
#[cfg(test)]
fn pick_poll(
    now: Instant,
    candidates: impl Iterator<Item = (usize, u64, Instant, Instant, Duration)>,
) -> Option<usize> {
    let mut best = BestPoll::default();
    for (index, seq, started, due, expected) in candidates {
        best.offer(index, seq, likely_finished(now, started, due, expected));
    }
    best.index()
}

#[cfg(test)]
mod tests;
