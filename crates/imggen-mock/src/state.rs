//! Everything the server remembers, behind one lock that is never held across an `await`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use imggen_types::{Credits, Usd};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::clock::{MockClock, iso8601};
use crate::config::{Balance, Balances, MockConfig};
use crate::faults::{FaultKind, Faults};
use crate::images::ImageCache;
use crate::keys::{ApiKey, AuthError, bearer};
use crate::ledger::{Amount, EntryKind, Ledger};
use crate::provider::{Operation, Provider, Route};
use crate::ratelimit::Window;
use crate::requests::RequestStats;
use crate::tasks::{Detail, Phase, Task, draw_duration};
use crate::webhooks::Webhooks;

/// What the handlers share: configuration, clock, state, rendered images.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: MockConfig,
    pub clock: MockClock,
    pub base_url: String,
    pub images: ImageCache,
    /// Wakes the webhook dispatcher when a delivery is scheduled.
    pub webhook_added: Notify,
    /// The clock time up to which every due webhook has been attempted.
    pub webhooks_settled: watch::Sender<Instant>,
    state: Mutex<State>,
}

/// The mutable part.
#[derive(Debug)]
pub(crate) struct State {
    rng: fastrand::Rng,
    pub tasks: HashMap<(Provider, String), Task>,
    /// Creation order, for runblob's list.
    order: Vec<(Provider, String)>,
    balances: HashMap<ApiKey, Balances>,
    pub ledger: Ledger,
    /// Tasks that will fail and have not been refunded yet.
    unrefunded: Vec<(Provider, String)>,
    pub faults: Faults,
    windows: HashMap<(Provider, ApiKey), Window>,
    pub webhooks: Webhooks,
    pub requests: RequestStats,
}

/// The balance cannot pay for a task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shortfall {
    pub available: Amount,
}

/// A task to create; the state adds timing, failure and the charge.
pub(crate) struct NewTask {
    pub provider: Provider,
    pub id: String,
    pub key: ApiKey,
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub images: u32,
    pub price: Amount,
    pub detail: Detail,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, base_url: String) -> Self {
        let state = State::new(config.seed);
        let (webhooks_settled, _) = watch::channel(config.clock.now());
        Shared {
            webhooks_settled,
            clock: config.clock.clone(),
            config,
            base_url,
            images: ImageCache::default(),
            webhook_added: Notify::new(),
            state: Mutex::new(state),
        }
    }

    /// Locks the state with refunds settled up to now.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.settle(&self.clock);
        state
    }

    /// Who a request is, or why it is refused.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        provider: Provider,
    ) -> Result<ApiKey, AuthError> {
        let key = bearer(headers)?;
        let accepted = self.config.api_keys();
        if !accepted.is_empty() && !accepted.iter().any(|accepted| accepted == key.as_str()) {
            return Err(AuthError::Rejected);
        }
        if provider == Provider::Runbase
            && self.config.runbase_requires_sk_prefix
            && !key.as_str().starts_with("sk-")
        {
            return Err(AuthError::Rejected);
        }
        Ok(key)
    }

    /// Counts a request against the key's budget, or says how long until it would fit.
    pub(crate) fn admit(&self, provider: Provider, key: &ApiKey) -> Result<(), Duration> {
        let Some(limit) = self.config.rate_limit_of(provider) else {
            return Ok(());
        };
        let now = self.clock.now();
        self.lock()
            .windows
            .entry((provider, key.clone()))
            .or_default()
            .admit(limit, now)
    }

    /// Takes one hit of a fault that acts on the request itself.
    pub(crate) fn take_request_fault(&self, route: Route, key: Option<&str>) -> Option<FaultKind> {
        let now = self.clock.now();
        self.lock().faults.take(route, key, false, now)
    }

    /// The full key that created a task, for faults aimed at one key's downloads.
    pub(crate) fn owner(&self, provider: Provider, id: &str) -> Option<ApiKey> {
        self.lock()
            .tasks
            .get(&(provider, id.to_owned()))
            .map(|task| task.key.clone())
    }

    /// A task `key` may see.
    pub(crate) fn task_for(&self, provider: Provider, id: &str, key: &ApiKey) -> Option<Task> {
        self.lock()
            .tasks
            .get(&(provider, id.to_owned()))
            .filter(|task| &task.key == key)
            .cloned()
    }

    /// Any task, whoever made it (result files are public links, as on a CDN).
    pub(crate) fn task(&self, provider: Provider, id: &str) -> Option<Task> {
        self.lock().tasks.get(&(provider, id.to_owned())).cloned()
    }

    /// `key`'s tasks at `provider`, newest first.
    pub(crate) fn tasks_of(&self, provider: Provider, key: &ApiKey) -> Vec<Task> {
        let state = self.lock();
        state
            .order
            .iter()
            .rev()
            .filter_map(|id| state.tasks.get(id))
            .filter(|task| task.provider == provider && &task.key == key)
            .cloned()
            .collect()
    }

    /// Charges the key and creates the task, unless the balance is short.
    pub(crate) fn create_task(&self, new: NewTask) -> Result<Task, Shortfall> {
        let now = self.clock.now();
        let wall = iso8601(self.clock.wall_at(now));
        let mut state = self.lock();
        let state = &mut *state;
        let balances = state
            .balances
            .entry(new.key.clone())
            .or_insert(self.config.balances);
        debit(balances, new.provider, new.price)?;
        let (duration, queued) = draw_duration(&mut state.rng, self.config.profile, new.provider);
        let route = Route {
            provider: new.provider,
            operation: Operation::Create,
        };
        let failure = match state.faults.take(route, Some(new.key.as_str()), true, now) {
            Some(FaultKind::TaskFailure { code }) => Some(code),
            _ => None,
        };
        let task = Task {
            provider: new.provider,
            id: new.id,
            key: new.key,
            prompt: new.prompt,
            width: new.width,
            height: new.height,
            images: new.images,
            created: now,
            queued,
            duration,
            failure,
            price: new.price,
            detail: new.detail,
        };
        state.ledger.record(
            &task.key,
            wall,
            task.provider,
            &task.id,
            EntryKind::Charge,
            task.price,
        );
        let id = (task.provider, task.id.clone());
        if task.failure.is_some() {
            state.unrefunded.push(id.clone());
        }
        state.order.push(id.clone());
        state.tasks.insert(id, task.clone());
        // A task that fails at once is refunded at once.
        state.settle(&self.clock);
        Ok(task)
    }

    /// A key's balances.
    pub(crate) fn balances(&self, key: &str) -> Balances {
        self.lock()
            .balances
            .get(&ApiKey::new(key))
            .copied()
            .unwrap_or(self.config.balances)
    }

    /// Sets one of a key's balances.
    pub(crate) fn set_balance(&self, key: &str, balance: Balance) {
        let mut state = self.lock();
        let balances = state
            .balances
            .entry(ApiKey::new(key))
            .or_insert(self.config.balances);
        match balance {
            Balance::Runblob(usd) => balances.runblob = usd,
            Balance::Gptimg(credits) => balances.gptimg = credits,
            Balance::Runbase(usd) => balances.runbase = usd,
        }
    }

    /// Every task, oldest first, for `GET /_mock/tasks`.
    pub(crate) fn task_infos(&self) -> Vec<TaskInfo> {
        let now = self.clock.now();
        let state = self.lock();
        state
            .order
            .iter()
            .filter_map(|id| state.tasks.get(id))
            .map(|task| TaskInfo {
                provider: task.provider,
                id: task.id.clone(),
                key: task.key.label(),
                status: match task.phase(now) {
                    Phase::Pending => "pending",
                    Phase::Processing => "processing",
                    Phase::Completed => "completed",
                    Phase::Failed => "failed",
                }
                .to_owned(),
                failure: task.failure.clone(),
                prompt: task.prompt.clone(),
                images: task.images,
                created_at: iso8601(self.clock.wall_at(task.created)),
                finishes_at: iso8601(self.clock.wall_at(task.finished_at())),
                price: task.price,
            })
            .collect()
    }

    /// Forgets every task, charge, fault, delivery, budget and rendered image.
    pub(crate) fn reset(&self) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            *state = State::new(self.config.seed);
        }
        self.images.clear();
    }
}

impl State {
    fn new(seed: u64) -> Self {
        State {
            rng: fastrand::Rng::with_seed(seed),
            tasks: HashMap::new(),
            order: Vec::new(),
            balances: HashMap::new(),
            ledger: Ledger::default(),
            unrefunded: Vec::new(),
            faults: Faults::default(),
            windows: HashMap::new(),
            webhooks: Webhooks::default(),
            requests: RequestStats::default(),
        }
    }

    /// Refunds every failing task whose failure time has come, dated when it failed.
    fn settle(&mut self, clock: &MockClock) {
        if self.unrefunded.is_empty() {
            return;
        }
        let now = clock.now();
        let mut due: Vec<(Instant, (Provider, String))> = Vec::new();
        self.unrefunded.retain(|id| match self.tasks.get(id) {
            Some(task) if task.finished_at() <= now => {
                due.push((task.finished_at(), id.clone()));
                false
            }
            Some(_) => true,
            None => false,
        });
        due.sort_by_key(|(at, _)| *at);
        for (at, id) in due {
            let Some(task) = self.tasks.get(&id) else {
                continue;
            };
            let (key, provider, price) = (task.key.clone(), task.provider, task.price);
            self.ledger.record(
                &key,
                iso8601(clock.wall_at(at)),
                provider,
                &id.1,
                EntryKind::Refund,
                price,
            );
            if let Some(balances) = self.balances.get_mut(&key) {
                credit(balances, provider, price);
            }
        }
    }
}

fn debit(balances: &mut Balances, provider: Provider, price: Amount) -> Result<(), Shortfall> {
    match (provider, price) {
        (Provider::Gptimg, Amount::Credits(price)) => {
            let available = balances.gptimg;
            balances.gptimg = Credits(available.0.checked_sub(price.0).ok_or(Shortfall {
                available: Amount::Credits(available),
            })?);
        }
        (Provider::Runblob | Provider::Runbase, Amount::Usd(price)) => {
            let balance = if provider == Provider::Runblob {
                &mut balances.runblob
            } else {
                &mut balances.runbase
            };
            if *balance < price {
                return Err(Shortfall {
                    available: Amount::Usd(*balance),
                });
            }
            *balance = Usd::new(balance.amount() - price.amount());
        }
        // Prices are built per provider; a mismatch would be a bug, and charging nothing for
        // it is the failure that costs the user least.
        _ => {}
    }
    Ok(())
}

fn credit(balances: &mut Balances, provider: Provider, amount: Amount) {
    match (provider, amount) {
        (Provider::Gptimg, Amount::Credits(credits)) => balances.gptimg = balances.gptimg + credits,
        (Provider::Runblob, Amount::Usd(usd)) => balances.runblob = balances.runblob + usd,
        (Provider::Runbase, Amount::Usd(usd)) => balances.runbase = balances.runbase + usd,
        _ => {}
    }
}

/// A task as `GET /_mock/tasks` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TaskInfo {
    /// Whose API.
    pub provider: Provider,
    /// The id the provider returned.
    pub id: String,
    /// The creating key's label.
    pub key: String,
    /// `pending`, `processing`, `completed` or `failed`, now.
    pub status: String,
    /// The code it fails with, if a fault doomed it.
    pub failure: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// How many images it makes.
    pub images: u32,
    /// When it was created, on the mock's clock.
    pub created_at: String,
    /// When it completes or fails, on the mock's clock.
    pub finishes_at: String,
    /// What it was charged.
    pub price: Amount,
}
