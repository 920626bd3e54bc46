//! The request budget of one API key, and the scheduler that keeps every job on that key
//! inside it.
//!
//! runbase allows 20 requests per 10 s per key, creates and polls together; 50 jobs polling on
//! their own timers would earn 429s within seconds. So every request core makes on a key —
//! create, poll, status — first asks that key's **scheduler** for a permit.
//!
//! The scheduler is an actor: one driver task per (provider, key) owns a sliding-window log of
//! the requests it permitted and a queue of tickets. Creates (and explicit status calls) are
//! served first, in order; polls when they are due, and when the budget is short, the job most
//! likely to be finished first (longest running relative to its expected duration, longest
//! overdue), so an old job that is surely done is not starved by a young one. A 429 pauses the
//! whole key until `Retry-After` (or a growing backoff) and, unless the caller configured the
//! budget, tightens it to three quarters of what was observed to fail.
//!
//! **The driver is the only thing in imggen-core that sleeps**, through the injected
//! [`Sleeper`], and it never sleeps while a request it permitted is in flight: it waits for
//! the answers, which come back as messages. With `imggen_http::time::ManualTime` (whose sleep
//! moves the clock only when it completes) virtual time then moves only when every job is
//! waiting on the budget or the schedule — which makes tests with many jobs deterministic
//! enough to assert "zero 429s" without waiting in real time.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use imggen_http::time::{Clock, Sleeper};
use serde::{Serialize, Serializer};
use tokio::sync::{mpsc, oneshot};

/// A request budget: at most `requests` requests in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub const fn new(requests: u32, window: Duration) -> Self {
        RateLimit { requests, window }
    }

    /// runbase's documented budget: 20 requests per 10 s per key, creates and polls together.
    pub const fn runbase() -> Self {
        let (requests, window) = imggen_types::runbase::RATE_LIMIT;
        RateLimit::new(requests, window)
    }

    /// The budget the scheduler actually spends: a tenth fewer requests (at least one kept)
    /// and a window 250 ms longer, so a request granted at the edge of a window is not counted
    /// by the provider in the next one (its clock sees the request a little later than ours).
    fn effective(&self) -> (usize, Duration) {
        let margin = self.requests / 10;
        let requests = self.requests.saturating_sub(margin).max(1);
        (requests as usize, self.window + WINDOW_GUARD)
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut state = serializer.serialize_struct("RateLimit", 2)?;
        state.serialize_field("requests", &self.requests)?;
        state.serialize_field("window_ms", &(self.window.as_millis() as u64))?;
        state.end()
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests per {}s",
            self.requests,
            self.window.as_secs_f64()
        )
    }
}

const WINDOW_GUARD: Duration = Duration::from_millis(250);
/// How far back requests are counted when a 429 teaches an unconfigured budget.
const LEARN_WINDOW: Duration = Duration::from_secs(10);
const FIRST_PAUSE: Duration = Duration::from_secs(2);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The sliding-window log of requests granted on one key. Pure arithmetic over instants.
#[derive(Debug, Default)]
pub(crate) struct Window {
    log: VecDeque<Instant>,
}

impl Window {
    /// Forgets requests granted at or before `now - keep`.
    fn prune(&mut self, now: Instant, keep: Duration) {
        while let Some(&oldest) = self.log.front() {
            if oldest + keep <= now {
                self.log.pop_front();
            } else {
                break;
            }
        }
    }

    fn record(&mut self, at: Instant) {
        self.log.push_back(at);
    }

    /// Requests granted after `since`.
    fn count_after(&self, since: Instant) -> usize {
        self.log.iter().filter(|&&at| at > since).count()
    }

    /// When the next request may be sent under (`requests` per `window`): `now` if a slot is
    /// free, otherwise when enough of the oldest requests leave the window. The log must have
    /// been pruned to `window`.
    fn next_free(&self, now: Instant, requests: usize, window: Duration) -> Instant {
        if self.log.len() < requests {
            return now;
        }
        let index = self.log.len() - requests;
        self.log
            .get(index)
            .map_or(now, |&oldest| (oldest + window).max(now))
    }
}

/// How likely a polled job is to be finished by `now`, relative to others on the key: the
/// time since it was created plus the time it has been overdue for a poll, over its expected
/// duration. Counting the overdue time twice means a job that was just polled yields to one
/// that has been waiting, so no job starves when the budget is short.
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
    /// A create or an explicit status call: served first, in order.
    First,
    /// A poll of a waiting job, ordered by [`likely_finished`].
    Poll {
        /// When the job was created (or the wait began, for a handle without a time).
        started: Instant,
        /// How long such a job usually takes.
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

/// Permission to send one request. Finish it with the outcome; dropping it counts as a
/// request that got no answer.
pub(crate) struct Permit {
    tx: Option<mpsc::UnboundedSender<Message>>,
    granted_at: Instant,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("budgeted", &self.tx.is_some())
            .finish()
    }
}

impl Permit {
    /// Reports how the request ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: Outcome) {
        if let Some(tx) = self.tx.take() {
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

/// A ticket waiting for its grant. Dropping it withdraws the ticket, so a cancelled wait
/// leaves nothing behind for the driver to sleep on.
pub(crate) struct PendingGrant {
    rx: oneshot::Receiver<Grant>,
    withdraw: Option<(mpsc::UnboundedSender<Message>, u64)>,
}

impl Future for PendingGrant {
    type Output = Grant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Grant> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(result) => {
                self.withdraw = None;
                Poll::Ready(result.unwrap_or(Grant::Closed))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for PendingGrant {
    fn drop(&mut self) {
        if let Some((tx, seq)) = self.withdraw.take() {
            let _ = tx.send(Message::Withdraw(seq));
        }
    }
}

/// The handle to one key's driver. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Scheduler {
    tx: mpsc::UnboundedSender<Message>,
    seq: Arc<AtomicU64>,
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
        sleeper: Arc<dyn Sleeper>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            label,
            rx,
            tx: tx.downgrade(),
            sleeper,
            clock,
            limit,
            configured,
            window: Window::default(),
            paused_until: None,
            last_rate_limited: None,
            streak: 0,
            in_flight: 0,
            queue: Vec::new(),
        };
        tokio::spawn(driver.run());
        Scheduler {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the driver has stopped (its runtime is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues a ticket now (so its place is kept even before the grant is awaited).
    pub(crate) fn register(
        &self,
        priority: Priority,
        not_before: Instant,
        deadline: Option<Instant>,
    ) -> PendingGrant {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
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
            rx,
            withdraw: Some((self.tx.clone(), seq)),
        }
    }
}

struct Driver {
    label: String,
    rx: mpsc::UnboundedReceiver<Message>,
    /// Weak, so the driver ends once every scheduler, ticket and permit is gone.
    tx: mpsc::WeakUnboundedSender<Message>,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    limit: Option<RateLimit>,
    configured: bool,
    window: Window,
    paused_until: Option<Instant>,
    last_rate_limited: Option<Instant>,
    streak: u32,
    in_flight: usize,
    queue: Vec<Ticket>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            while let Ok(message) = self.rx.try_recv() {
                self.handle(message);
            }
            let now = self.clock.now();
            self.serve(now);
            // Never sleep while a permitted request is in flight: its answer comes back as a
            // message, and a sleep now would move a virtual clock under it.
            let wake = if self.in_flight > 0 {
                None
            } else {
                self.next_wake(now)
            };
            let message = match wake {
                None => self.rx.recv().await,
                Some(at) => {
                    let sleep = self.sleeper.sleep(at.saturating_duration_since(now));
                    tokio::select! {
                        biased;
                        message = self.rx.recv() => message,
                        () = sleep => continue,
                    }
                }
            };
            match message {
                Some(message) => self.handle(message),
                None => return,
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Ticket(ticket) => self.queue.push(ticket),
            Message::Withdraw(seq) => self.queue.retain(|ticket| ticket.seq != seq),
            Message::Done {
                granted_at,
                outcome,
            } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                match outcome {
                    Outcome::RateLimited(retry_after) => self.rate_limited(granted_at, retry_after),
                    Outcome::Answered => self.streak = 0,
                    Outcome::NoAnswer => {}
                }
            }
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
                    .window
                    .count_after(now.checked_sub(window).unwrap_or(now));
                let observed = u32::try_from(observed).unwrap_or(u32::MAX);
                let current = self.limit.map_or(u32::MAX, |limit| limit.requests);
                let requests = (observed.min(current).saturating_mul(3) / 4).max(1);
                let tightened = RateLimit::new(requests, window);
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
                let (requests, window) = limit.effective();
                (Some((requests, window)), window.max(LEARN_WINDOW))
            }
            None => (None, LEARN_WINDOW),
        }
    }

    /// When a budgeted request may next be sent.
    fn free_at(&self, now: Instant) -> Instant {
        let paused = self
            .paused_until
            .filter(|&until| until > now)
            .unwrap_or(now);
        let window = match self.keep().0 {
            Some((requests, window)) => self.window.next_free(now, requests, window),
            None => now,
        };
        paused.max(window)
    }

    fn serve(&mut self, now: Instant) {
        self.queue.retain(|ticket| !ticket.reply.is_closed());
        let keep = self.keep().1;
        self.window.prune(now, keep);

        let mut index = 0;
        while index < self.queue.len() {
            let ticket = &self.queue[index];
            if ticket.priority == Priority::Timer && ticket.not_before <= now {
                let ticket = self.queue.swap_remove(index);
                let _ = ticket.reply.send(Grant::Go(Permit {
                    tx: None,
                    granted_at: now,
                }));
            } else {
                index += 1;
            }
        }

        while self.free_at(now) <= now {
            let Some(index) = self.pick(now) else { break };
            let ticket = self.queue.swap_remove(index);
            let Some(tx) = self.tx.upgrade() else { break };
            self.window.record(now);
            self.in_flight += 1;
            let permit = Permit {
                tx: Some(tx),
                granted_at: now,
            };
            // A receiver that is gone drops the permit, whose drop reports it done.
            let _ = ticket.reply.send(Grant::Go(permit));
        }

        let mut index = 0;
        while index < self.queue.len() {
            if self.queue[index]
                .deadline
                .is_some_and(|deadline| deadline <= now)
            {
                let ticket = self.queue.swap_remove(index);
                let _ = ticket.reply.send(Grant::Deadline);
            } else {
                index += 1;
            }
        }
    }

    /// The budgeted ticket to serve now: the first creates/status calls in order, then the
    /// due poll most likely to find its job finished.
    fn pick(&self, now: Instant) -> Option<usize> {
        let due = |ticket: &&Ticket| ticket.not_before <= now;
        let first = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, ticket)| ticket.priority == Priority::First && due(ticket))
            .min_by_key(|(_, ticket)| ticket.seq);
        if let Some((index, _)) = first {
            return Some(index);
        }
        pick_poll(
            now,
            self.queue
                .iter()
                .enumerate()
                .filter_map(|(index, ticket)| match ticket.priority {
                    Priority::Poll { started, expected } if due(&ticket) => {
                        Some((index, ticket.seq, started, ticket.not_before, expected))
                    }
                    _ => None,
                }),
        )
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let free = self.free_at(now);
        self.queue
            .iter()
            .flat_map(|ticket| {
                let ready = match ticket.priority {
                    Priority::Timer => ticket.not_before,
                    _ => ticket.not_before.max(free),
                };
                [Some(ready), ticket.deadline]
            })
            .flatten()
            .min()
    }
}

/// Among due polls `(index, seq, started, due, expected)`, the one most likely finished;
/// ties go to the older ticket.
fn pick_poll(
    now: Instant,
    candidates: impl Iterator<Item = (usize, u64, Instant, Instant, Duration)>,
) -> Option<usize> {
    let mut best: Option<(usize, u64, f64)> = None;
    for (index, seq, started, due, expected) in candidates {
        let score = likely_finished(now, started, due, expected);
        let better = match best {
            None => true,
            Some((_, best_seq, best_score)) => {
                score > best_score || (score == best_score && seq < best_seq)
            }
        };
        if better {
            best = Some((index, seq, score));
        }
    }
    best.map(|(index, _, _)| index)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use imggen_http::time::ManualTime;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn window_arithmetic() {
        let t0 = Instant::now();
        let mut window = Window::default();
        for i in 0..3 {
            window.record(t0 + i * S);
        }
        // Three requests at 0, 1, 2 s under "3 per 10 s": the next goes when the first leaves.
        assert_eq!(window.next_free(t0 + 2 * S, 3, 10 * S), t0 + 10 * S);
        assert_eq!(window.next_free(t0 + 2 * S, 4, 10 * S), t0 + 2 * S);
        // "2 per 10 s": the second oldest must leave.
        assert_eq!(window.next_free(t0 + 2 * S, 2, 10 * S), t0 + 11 * S);
        window.prune(t0 + 10 * S, 10 * S);
        assert_eq!(window.log.len(), 2);
        assert_eq!(window.count_after(t0 + S), 1);
    }

    #[test]
    fn the_effective_budget_keeps_a_margin() {
        assert_eq!(
            RateLimit::runbase().effective(),
            (18, Duration::from_millis(10_250))
        );
        assert_eq!(RateLimit::new(5, S).effective().0, 5);
        assert_eq!(RateLimit::new(1, S).effective().0, 1);
        assert_eq!(
            serde_json::to_value(RateLimit::runbase()).unwrap(),
            serde_json::json!({"requests": 20, "window_ms": 10000})
        );
    }

    #[test]
    fn the_job_most_likely_finished_goes_first_and_the_just_polled_yield() {
        let now = Instant::now() + 1000 * S;
        let expected = 60 * S;
        // (index, seq, started, due, expected)
        let old = (0, 0, now - 300 * S, now, expected);
        let young = (1, 1, now - 30 * S, now, expected);
        assert_eq!(pick_poll(now, [young, old].into_iter()), Some(0));
        // Same age: the one overdue longer goes first.
        let just_due = (0, 0, now - 100 * S, now, expected);
        let overdue = (1, 1, now - 100 * S, now - 20 * S, expected);
        assert_eq!(pick_poll(now, [just_due, overdue].into_iter()), Some(1));
        // Exact ties go to the older ticket.
        let a = (0, 5, now - 10 * S, now, expected);
        let b = (1, 2, now - 10 * S, now, expected);
        assert_eq!(pick_poll(now, [a, b].into_iter()), Some(1));
        assert_eq!(pick_poll(now, std::iter::empty()), None);
        assert!(likely_finished(now, now - 60 * S, now, expected) > 0.99);
    }

    fn scheduler(time: &ManualTime, limit: Option<RateLimit>, configured: bool) -> Scheduler {
        Scheduler::start(
            "test".into(),
            limit,
            configured,
            Arc::new(time.clone()),
            Arc::new(time.clone()),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_requests_never_exceed_the_budget_in_any_window() {
        let time = ManualTime::new();
        let start = time.now();
        let sched = scheduler(&time, Some(RateLimit::runbase()), true);
        let granted = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let sched = sched.clone();
            let granted = Arc::clone(&granted);
            let time = time.clone();
            tasks.push(tokio::spawn(async move {
                let Grant::Go(permit) = sched.register(Priority::First, time.now(), None).await
                else {
                    panic!("no grant");
                };
                granted.lock().unwrap().push(time.now());
                tokio::task::yield_now().await;
                permit.finish(Outcome::Answered);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let mut granted = granted.lock().unwrap().clone();
        granted.sort();
        assert_eq!(granted.len(), 50);
        for (i, &at) in granted.iter().enumerate() {
            let in_window = granted[i..]
                .iter()
                .take_while(|&&later| later < at + 10 * S)
                .count();
            assert!(
                in_window <= 18,
                "{in_window} requests within 10 s of request {i}"
            );
        }
        // 50 requests at 18 per 10.25 s: two full windows of waiting, not more.
        assert_eq!(time.now() - start, Duration::from_millis(20_500));
    }

    #[tokio::test]
    async fn polls_wait_for_their_time_and_deadlines_fire_without_a_poll() {
        let time = ManualTime::new();
        let start = time.now();
        let sched = scheduler(&time, None, false);
        let poll = Priority::Poll {
            started: start,
            expected: 60 * S,
        };
        let Grant::Go(permit) = sched.register(poll, start + 60 * S, None).await else {
            panic!("no grant")
        };
        assert_eq!(time.now() - start, 60 * S);
        permit.finish(Outcome::Answered);

        let grant = sched
            .register(poll, start + 600 * S, Some(start + 90 * S))
            .await;
        assert!(matches!(grant, Grant::Deadline));
        assert_eq!(time.now() - start, 90 * S);
    }

    #[tokio::test]
    async fn a_withdrawn_ticket_costs_no_time() {
        let time = ManualTime::new();
        let start = time.now();
        let sched = scheduler(&time, None, false);
        let far = sched.register(Priority::First, start + 3600 * S, None);
        tokio::task::yield_now().await;
        drop(far);
        let Grant::Go(permit) = sched.register(Priority::First, start + 5 * S, None).await else {
            panic!("no grant")
        };
        permit.finish(Outcome::Answered);
        assert_eq!(time.now() - start, 5 * S);
        let timer = sched.register(Priority::Timer, start + 7 * S, None).await;
        assert!(matches!(timer, Grant::Go(_)));
        assert_eq!(time.now() - start, 7 * S);
    }

    #[tokio::test]
    async fn a_429_pauses_the_key_and_teaches_an_unconfigured_budget() {
        let time = ManualTime::new();
        let start = time.now();
        let sched = scheduler(&time, None, false);
        // Eight requests go at once (unlimited); the eighth answer is a 429 asking for 30 s.
        let mut permits = Vec::new();
        for _ in 0..8 {
            let Grant::Go(permit) = sched.register(Priority::First, start, None).await else {
                panic!("no grant")
            };
            permits.push(permit);
        }
        assert_eq!(time.now(), start);
        let last = permits.pop().unwrap();
        for permit in permits {
            permit.finish(Outcome::Answered);
        }
        last.finish(Outcome::RateLimited(Some(30 * S)));

        // Paused for 30 s, then 6 (three quarters of 8) per 10 s.
        let mut times = Vec::new();
        for _ in 0..7 {
            let Grant::Go(permit) = sched.register(Priority::First, start, None).await else {
                panic!("no grant")
            };
            times.push(time.now() - start);
            permit.finish(Outcome::Answered);
        }
        assert_eq!(times[0], 30 * S);
        assert_eq!(times[5], 30 * S);
        // 6 per 10 s becomes 6 (margin 0) per 10.25 s after the window's guard.
        assert_eq!(times[6], 30 * S + Duration::from_millis(10_250));
    }

    #[tokio::test]
    async fn a_configured_budget_is_paused_but_never_tightened() {
        let time = ManualTime::new();
        let start = time.now();
        let sched = scheduler(&time, Some(RateLimit::new(100, 10 * S)), true);
        let Grant::Go(permit) = sched.register(Priority::First, start, None).await else {
            panic!("no grant")
        };
        permit.finish(Outcome::RateLimited(None));
        for _ in 0..50 {
            let Grant::Go(permit) = sched.register(Priority::First, start, None).await else {
                panic!("no grant")
            };
            permit.finish(Outcome::Answered);
        }
        // One 2 s pause, then all fifty within the configured 90 (100 less the margin).
        assert_eq!(time.now() - start, 2 * S);
    }
}
