//! A spending cap: the most a run may spend, and the ledger every create checks against it
//! before it is sent.
//!
//! A create reserves its plan's price first; what it then charged replaces the reservation,
//! a create whose outcome is unknown keeps it (it may have been charged), and a refusal that
//! proves nothing was charged gives it back. So a task is never created if its price could
//! take what was spent past the cap — whatever the order in which concurrent creates answer.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use imggen_types::{Credits, Usd};

use crate::cost::Cost;
use crate::provider::ProviderId;

/// The most a run may spend: dollars, gptimg credits, or both. gptimg prices in credits; a
/// dollar-only cap covers them only at a configured credit price
/// ([`ImggenBuilder::credit_price`](crate::ImggenBuilder::credit_price)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CostCap {
    /// At most this many dollars.
    pub usd: Option<Usd>,
    /// At most this many gptimg credits.
    pub credits: Option<Credits>,
    /// Let a task whose price is not known before its create (runblob prices a task in its
    /// create's answer; a model imggen does not know) be created under the cap, counted at
    /// what it turns out to cost. Off by default: such a task could pass the cap.
    pub allow_unpriced: bool,
}

impl CostCap {
    /// At most `usd` dollars.
    pub fn usd(usd: Usd) -> Self {
        CostCap {
            usd: Some(usd),
            ..CostCap::default()
        }
    }

    /// At most `credits` gptimg credits.
    pub fn credits(credits: Credits) -> Self {
        CostCap {
            credits: Some(credits),
            ..CostCap::default()
        }
    }

    /// Also at most `credits` gptimg credits.
    pub fn and_credits(mut self, credits: Credits) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Also at most `usd` dollars.
    pub fn and_usd(mut self, usd: Usd) -> Self {
        self.usd = Some(usd);
        self
    }

    /// Lets tasks of unknown price be created (see [`allow_unpriced`](Self::allow_unpriced)).
    pub fn allow_unpriced(mut self, allow: bool) -> Self {
        self.allow_unpriced = allow;
        self
    }
}

impl fmt::Display for CostCap {
    /// `$0.50`, `100 credits`, or `$0.50 and 100 credits`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.usd, self.credits) {
            (Some(usd), Some(credits)) => write!(f, "{usd} and {} credits", credits.0),
            (Some(usd), None) => write!(f, "{usd}"),
            (None, Some(credits)) => write!(f, "{} credits", credits.0),
            (None, None) => f.write_str("no limit"),
        }
    }
}

/// Why the cap stopped a create. Nothing was sent for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {problem}; nothing was sent")]
#[non_exhaustive]
pub struct SpendingCapError {
    /// The provider the task was for.
    pub provider: ProviderId,
    /// What is wrong, in a sentence.
    pub problem: String,
    /// Which kind of refusal it is.
    pub kind: SpendingCapKind,
    /// The cap.
    pub cap: CostCap,
    /// Spent (or perhaps spent) when the create was stopped, reservations included.
    pub spent: Cost,
    /// The price of what was to be created, when known.
    pub price: Option<Cost>,
}

/// Why the cap stopped a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpendingCapKind {
    /// Its price would take the spend past the cap.
    Reached,
    /// Its price is not known before its create, and unpriced tasks are not allowed.
    Unpriced,
    /// It is priced in a unit the cap does not limit (dollars under a credits-only cap;
    /// credits under a dollar-only cap without a credit price).
    Uncovered,
}

/// What one run has spent under a cap, shared by every clone: the creates of a batch's
/// requests, in flight at once, check against the same ledger.
#[derive(Clone)]
pub struct Spending {
    cap: CostCap,
    credit_price: Option<Usd>,
    ledger: Arc<Mutex<Ledger>>,
}

impl fmt::Debug for Spending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ledger = self.lock();
        f.debug_struct("Spending")
            .field("cap", &self.cap)
            .field("spent", &ledger.spent)
            .field("reserved", &ledger.reserved)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Ledger {
    /// Charged, or perhaps charged (a create whose outcome is unknown).
    spent: Cost,
    /// Held by creates under way.
    reserved: Cost,
    /// A create was stopped by the cap.
    reached: bool,
}

impl Spending {
    /// A ledger under `cap`, starting from `spent` (what earlier runs of a batch spent).
    /// `credit_price` converts credits to dollars for a dollar-only cap.
    pub fn new(cap: CostCap, credit_price: Option<Usd>, spent: Cost) -> Self {
        Spending {
            cap,
            credit_price,
            ledger: Arc::new(Mutex::new(Ledger {
                spent,
                ..Ledger::default()
            })),
        }
    }

    /// The cap.
    pub fn cap(&self) -> CostCap {
        self.cap
    }

    /// Charged or perhaps charged so far, creates under way included.
    pub fn spent(&self) -> Cost {
        let ledger = self.lock();
        ledger.spent + ledger.reserved
    }

    /// Whether the cap has stopped a create.
    pub fn reached(&self) -> bool {
        self.lock().reached
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `price` (of everything a plan creates, `None` when unknown) for a create to
    /// `provider`, or says why the cap forbids it.
    pub(crate) fn reserve(
        &self,
        provider: ProviderId,
        price: Option<Cost>,
    ) -> Result<Reservation, Box<SpendingCapError>> {
        let mut ledger = self.lock();
        let spent = ledger.spent + ledger.reserved;
        let refuse = |kind: SpendingCapKind, problem: String| {
            Box::new(SpendingCapError {
                provider,
                problem,
                kind,
                cap: self.cap,
                spent,
                price,
            })
        };
        let checked = match price {
            None if self.cap.allow_unpriced => Ok(Cost::ZERO),
            None => Err(refuse(
                SpendingCapKind::Unpriced,
                format!(
                    "its price is not known before it is created, so it could pass the spending cap ({})",
                    self.cap
                ),
            )),
            Some(price) => self
                .check(spent, price)
                .map(|()| price)
                .map_err(|(kind, problem)| refuse(kind, problem)),
        };
        match checked {
            Ok(held) => {
                ledger.reserved = ledger.reserved + held;
                Ok(Reservation {
                    spending: self.clone(),
                    held,
                })
            }
            Err(error) => {
                ledger.reached = true;
                Err(error)
            }
        }
    }

    /// Whether `price` fits on top of `spent`.
    fn check(&self, spent: Cost, price: Cost) -> Result<(), (SpendingCapKind, String)> {
        let total = spent + price;
        if let Some(limit) = self.cap.credits {
            if total.credits > limit {
                return Err(reached(self.cap, spent, price));
            }
        } else if price.credits.0 > 0 && self.credit_price.is_none() {
            return Err((
                SpendingCapKind::Uncovered,
                format!(
                    "it is priced in credits ({price}) and the spending cap ({}) is in dollars, with no price per credit to convert them",
                    self.cap
                ),
            ));
        }
        match self.cap.usd {
            Some(limit) => {
                // Credits count against the dollars only when no credit limit covers them.
                let dollars = if self.cap.credits.is_some() {
                    Some(total.usd)
                } else {
                    total.total_usd(self.credit_price)
                };
                match dollars {
                    Some(dollars) if dollars <= limit => Ok(()),
                    _ => Err(reached(self.cap, spent, price)),
                }
            }
            None if !price.usd.amount().is_zero() => Err((
                SpendingCapKind::Uncovered,
                format!(
                    "it is priced in dollars ({price}) and the spending cap ({}) is in credits only",
                    self.cap
                ),
            )),
            None => Ok(()),
        }
    }
}

fn reached(cap: CostCap, spent: Cost, price: Cost) -> (SpendingCapKind, String) {
    (
        SpendingCapKind::Reached,
        format!("its price ({price}) would take the spend ({spent}) past the spending cap ({cap})"),
    )
}

/// A price held for creates under way. [`settle`](Self::settle) it with what they charged;
/// dropped unsettled, it stays spent (their outcome is unknown).
#[derive(Debug)]
#[must_use = "settle the reservation with what the creates charged"]
pub(crate) struct Reservation {
    spending: Spending,
    held: Cost,
}

impl Reservation {
    /// Replaces the held price with what was charged (or perhaps charged).
    pub(crate) fn settle(mut self, charged: Cost) {
        let held = std::mem::replace(&mut self.held, Cost::ZERO);
        let mut ledger = self.spending.lock();
        ledger.reserved = ledger.reserved.saturating_sub(held);
        ledger.spent = ledger.spent + charged;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held.is_zero() {
            return;
        }
        // Unsettled (the submission stopped before its creates answered): perhaps charged.
        let held = std::mem::replace(&mut self.held, Cost::ZERO);
        let mut ledger = self.spending.lock();
        ledger.reserved = ledger.reserved.saturating_sub(held);
        ledger.spent = ledger.spent + held;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBASE: ProviderId = ProviderId::new("runbase");
    const GPTIMG: ProviderId = ProviderId::new("gptimg");

    fn usd(text: &str) -> Cost {
        Cost::usd(text.parse().unwrap())
    }

    #[test]
    fn a_price_that_fits_is_held_and_one_that_would_pass_the_cap_is_refused() {
        let spending = Spending::new(CostCap::usd("0.10".parse().unwrap()), None, Cost::ZERO);
        let first = spending.reserve(RUNBASE, Some(usd("0.05"))).unwrap();
        let second = spending.reserve(RUNBASE, Some(usd("0.05"))).unwrap();
        let third = spending.reserve(RUNBASE, Some(usd("0.05"))).unwrap_err();
        assert_eq!(third.kind, SpendingCapKind::Reached);
        assert_eq!(
            third.to_string(),
            "runbase: its price ($0.05) would take the spend ($0.1) past the spending cap ($0.1); nothing was sent"
        );
        assert!(spending.reached());
        // A refusal that charged nothing gives the price back…
        first.settle(Cost::ZERO);
        assert_eq!(spending.spent(), usd("0.05"));
        let again = spending.reserve(RUNBASE, Some(usd("0.05"))).unwrap();
        // …and a create whose outcome is unknown keeps it.
        drop(second);
        drop(again);
        assert_eq!(spending.spent(), usd("0.10"));
    }

    #[test]
    fn what_earlier_runs_spent_counts() {
        let spending = Spending::new(CostCap::usd("0.10".parse().unwrap()), None, usd("0.08"));
        assert!(spending.reserve(RUNBASE, Some(usd("0.05"))).is_err());
        spending
            .reserve(RUNBASE, Some(usd("0.02")))
            .unwrap()
            .settle(usd("0.02"));
        assert_eq!(spending.spent(), usd("0.10"));
    }

    #[test]
    fn an_unknown_price_needs_leave_and_then_counts_what_it_cost() {
        let cap = CostCap::usd("1".parse().unwrap());
        let strict = Spending::new(cap, None, Cost::ZERO);
        assert_eq!(
            strict.reserve(RUNBASE, None).unwrap_err().kind,
            SpendingCapKind::Unpriced
        );
        let lenient = Spending::new(cap.allow_unpriced(true), None, Cost::ZERO);
        lenient
            .reserve(RUNBASE, None)
            .unwrap()
            .settle(usd("0.0123"));
        assert_eq!(lenient.spent(), usd("0.0123"));
    }

    #[test]
    fn credits_need_a_credit_cap_or_a_credit_price_and_dollars_a_dollar_cap() {
        let four = Cost::credits(Credits(4));
        let dollars_only = Spending::new(CostCap::usd("1".parse().unwrap()), None, Cost::ZERO);
        assert_eq!(
            dollars_only.reserve(GPTIMG, Some(four)).unwrap_err().kind,
            SpendingCapKind::Uncovered
        );
        // At a cent a credit, 4 credits are $0.04: 25 such tasks fit in $1, the 26th does not.
        let priced = Spending::new(
            CostCap::usd("1".parse().unwrap()),
            Some("0.01".parse().unwrap()),
            Cost::ZERO,
        );
        for _ in 0..25 {
            priced.reserve(GPTIMG, Some(four)).unwrap().settle(four);
        }
        assert_eq!(
            priced.reserve(GPTIMG, Some(four)).unwrap_err().kind,
            SpendingCapKind::Reached
        );
        let credits_only = Spending::new(CostCap::credits(Credits(6)), None, Cost::ZERO);
        credits_only
            .reserve(GPTIMG, Some(four))
            .unwrap()
            .settle(four);
        assert_eq!(
            credits_only.reserve(GPTIMG, Some(four)).unwrap_err().kind,
            SpendingCapKind::Reached
        );
        assert_eq!(
            credits_only
                .reserve(RUNBASE, Some(usd("0.05")))
                .unwrap_err()
                .kind,
            SpendingCapKind::Uncovered
        );
        // Both limits: each unit against its own.
        let both = Spending::new(
            CostCap::usd("0.05".parse().unwrap()).and_credits(Credits(4)),
            None,
            Cost::ZERO,
        );
        both.reserve(GPTIMG, Some(four)).unwrap().settle(four);
        both.reserve(RUNBASE, Some(usd("0.05")))
            .unwrap()
            .settle(usd("0.05"));
        assert_eq!(both.spent(), four + usd("0.05"));
    }
}
