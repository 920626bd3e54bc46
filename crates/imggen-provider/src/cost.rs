//! What generations cost, summed exactly: dollars for runblob and runbase, credits for gptimg.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use imggen_types::{Credits, MicroUsd, Usd};
use serde::{Deserialize, Serialize};

/// An exact cost: dollars (runblob's `price`, runbase's `costUsd`) and gptimg credits, kept
/// apart because a credit is not a currency. Never a float.
///
/// ```
/// use imggen_provider::Cost;
/// use imggen_types::{Credits, MicroUsd};
///
/// let total: Cost = [
///     Cost::usd("0.0123".parse().unwrap()),
///     Cost::micro_usd(MicroUsd(40_000)),
///     Cost::credits(Credits(4)),
/// ]
/// .into_iter()
/// .sum();
/// assert_eq!(total.to_string(), "$0.0523 + 4 credits");
/// assert_eq!(total.total_usd(None), None); // credits have no price until you give one
/// assert_eq!(
///     total.total_usd(Some("0.01".parse().unwrap())).unwrap().to_string(),
///     "$0.0923"
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cost {
    /// Dollars, exact.
    pub usd: Usd,
    /// gptimg credits.
    pub credits: Credits,
}

impl Cost {
    /// Nothing.
    pub const ZERO: Cost = Cost {
        usd: Usd::ZERO,
        credits: Credits(0),
    };

    /// A cost in dollars.
    pub fn usd(usd: Usd) -> Self {
        Cost {
            usd,
            credits: Credits(0),
        }
    }

    /// A cost in runbase's integer micro-dollars.
    pub fn micro_usd(micro: MicroUsd) -> Self {
        Cost::usd(micro.to_usd())
    }

    /// A cost in gptimg credits.
    pub fn credits(credits: Credits) -> Self {
        Cost {
            usd: Usd::ZERO,
            credits,
        }
    }

    /// Whether nothing was charged.
    pub fn is_zero(&self) -> bool {
        self.usd.amount().is_zero() && self.credits.0 == 0
    }

    /// `count` times this cost (a per-image price times images). `None` on overflow.
    pub fn times(&self, count: u32) -> Option<Cost> {
        Some(Cost {
            usd: self.usd.checked_mul(count)?,
            credits: Credits(self.credits.0.checked_mul(u64::from(count))?),
        })
    }

    /// Everything in dollars, converting credits at `credit_price` (dollars per credit).
    /// `None` when there are credits and no price for them: imggen never guesses one.
    pub fn total_usd(&self, credit_price: Option<Usd>) -> Option<Usd> {
        if self.credits.0 == 0 {
            return Some(self.usd);
        }
        let credits = self.credits.to_usd(credit_price?)?;
        Some(self.usd + credits)
    }
}

impl Cost {
    /// `self - other`, each unit never below zero: what is left of a total when part of it
    /// is taken back (a refund, a reservation given up).
    pub fn saturating_sub(self, other: Cost) -> Cost {
        Cost {
            usd: if self.usd > other.usd {
                Usd::new(self.usd.amount() - other.usd.amount())
            } else {
                Usd::ZERO
            },
            credits: Credits(self.credits.0.saturating_sub(other.credits.0)),
        }
    }
}

impl Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            usd: self.usd + other.usd,
            credits: self.credits + other.credits,
        }
    }
}

impl Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Cost> for Cost {
    fn sum<I: Iterator<Item = &'a Cost>>(iter: I) -> Cost {
        iter.copied().sum()
    }
}

impl fmt::Display for Cost {
    /// `$0.05`, `4 credits`, `$0.05 + 4 credits`, or `$0` for nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_usd = !self.usd.amount().is_zero();
        match (has_usd, self.credits.0) {
            (_, 0) => write!(f, "{}", self.usd),
            (false, _) => write!(f, "{}", self.credits),
            (true, _) => write!(f, "{} + {}", self.usd, self.credits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_back_never_goes_below_zero_in_either_unit() {
        let total = Cost::usd("0.15".parse().unwrap()) + Cost::credits(Credits(4));
        let part = Cost::usd("0.05".parse().unwrap()) + Cost::credits(Credits(6));
        assert_eq!(total.saturating_sub(part).to_string(), "$0.1");
        assert_eq!(part.saturating_sub(total).to_string(), "2 credits");
    }

    fn usd(text: &str) -> Usd {
        text.parse().unwrap()
    }

    #[test]
    fn sums_are_exact_and_keep_credits_apart() {
        let total: Cost = std::iter::repeat_n(Cost::usd(usd("0.1")), 3)
            .chain([Cost::credits(Credits(2)), Cost::credits(Credits(6))])
            .sum();
        assert_eq!(total.usd, usd("0.3"));
        assert_eq!(total.credits, Credits(8));
        assert_eq!(total.to_string(), "$0.3 + 8 credits");
    }

    #[test]
    fn credits_become_dollars_only_at_a_configured_price() {
        let cost = Cost::usd(usd("0.05")) + Cost::credits(Credits(4));
        assert_eq!(cost.total_usd(None), None);
        assert_eq!(cost.total_usd(Some(usd("0.005"))), Some(usd("0.07")));
        assert_eq!(Cost::usd(usd("0.05")).total_usd(None), Some(usd("0.05")));
    }

    #[test]
    fn display_and_json_are_exact() {
        assert_eq!(Cost::ZERO.to_string(), "$0");
        assert_eq!(Cost::credits(Credits(1)).to_string(), "1 credit");
        assert_eq!(Cost::micro_usd(MicroUsd(160_000)).to_string(), "$0.16");
        let json = serde_json::to_string(&Cost::usd(usd("0.0120"))).unwrap();
        assert_eq!(json, r#"{"usd":"0.0120","credits":0}"#);
        assert_eq!(
            serde_json::from_str::<Cost>(&json).unwrap(),
            Cost::usd(usd("0.012"))
        );
        assert_eq!(
            Cost::usd(usd("0.05")).times(3),
            Some(Cost::usd(usd("0.15")))
        );
    }
}
