//! Money, exactly. Never a float: the providers bill in units a float cannot hold
//! (`"0.0123"` USD, micro-USD integers, whole credits), and sums of charges must add up to the
//! cent on an invoice.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact amount of US dollars, e.g. runblob's `"price": "0.0123"`.
///
/// On the wire (and in imggen's own JSON) it is a decimal **string**, as runblob sends it, so
/// no JSON parser along the way turns it into a float.
///
/// ```
/// use imggen_types::money::{MicroUsd, Usd};
/// let runblob: Usd = "0.0123".parse().unwrap();
/// let runbase = MicroUsd(40_000).to_usd();
/// assert_eq!((runblob + runbase).to_string(), "$0.0523");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(Decimal);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    /// Wraps an exact decimal amount of dollars.
    pub fn new(amount: Decimal) -> Self {
        Usd(amount)
    }

    /// `units` × 10^-`scale` dollars: `Usd::from_parts(123, 4)` is `0.0123`.
    ///
    /// Returns `None` when `scale` is above 28, the most a decimal can carry.
    pub fn from_parts(units: i64, scale: u32) -> Option<Self> {
        Decimal::try_new(units, scale).ok().map(Usd)
    }

    /// The amount as an exact decimal.
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// The amount as a plain decimal string without a currency sign and without trailing
    /// zeros: `0.05`, `0.0123`, `0`.
    pub fn to_plain_string(self) -> String {
        self.0.normalize().to_string()
    }

    /// Multiplies by a whole count (e.g. a per-image price by the number of images).
    /// Returns `None` on overflow.
    pub fn checked_mul(self, count: u32) -> Option<Self> {
        self.0.checked_mul(Decimal::from(count)).map(Usd)
    }
}

impl fmt::Display for Usd {
    /// `$0.0123`: normalized, so runbase's `40000` micro-USD reads `$0.04`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0.normalize())
    }
}

/// A string that is not an exact decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a decimal amount of dollars (expected e.g. \"0.0123\")")]
pub struct ParseUsdError {
    /// The rejected input.
    pub value: String,
}

impl FromStr for Usd {
    type Err = ParseUsdError;

    /// Accepts `0.0123` and `$0.0123`; rejects exponents and anything a float would round.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let digits = value.trim().strip_prefix('$').unwrap_or(value.trim());
        let well_formed = !digits.is_empty()
            && digits
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.');
        let parsed = well_formed
            .then(|| Decimal::from_str_exact(digits).ok())
            .flatten();
        parsed.map(Usd).ok_or_else(|| ParseUsdError {
            value: value.to_owned(),
        })
    }
}

impl Add for Usd {
    type Output = Usd;

    fn add(self, other: Usd) -> Usd {
        Usd(self.0 + other.0)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Keep the provider's scale (`"0.0120"` stays `"0.0120"`) so a round trip is byte-exact.
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// runblob documents a string; a bare JSON number is accepted too, read from its exact
        /// textual form rather than through a float where serde_json allows it.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire<'a> {
            Text(std::borrow::Cow<'a, str>),
            Integer(i64),
            Number(serde_json::Number),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Wire::Integer(whole) => Ok(Usd(Decimal::from(whole))),
            Wire::Number(number) => number
                .to_string()
                .parse::<Decimal>()
                .map(Usd)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(feature = "json-schema")]
impl schemars::JsonSchema for Usd {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Usd".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exact amount of US dollars as a decimal string, e.g. \"0.0123\".",
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$"
        })
    }
}

/// An integer number of micro-dollars (millionths of a USD), as runbase's `costUsd` sends it:
/// `40000` is $0.04.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct MicroUsd(pub i64);

impl MicroUsd {
    /// The same amount in dollars, exactly.
    pub fn to_usd(self) -> Usd {
        Usd(Decimal::new(self.0, 6).normalize())
    }
}

impl fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_usd(), f)
    }
}

/// gptimg.co credits: a balance unit, not a currency (2 credits per image). imggen reports
/// credits as credits and converts to dollars only at a rate the caller configures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Credits(pub u64);

impl Credits {
    /// Converts at a caller-supplied price of one credit in dollars.
    pub fn to_usd(self, usd_per_credit: Usd) -> Option<Usd> {
        Decimal::from(self.0)
            .checked_mul(usd_per_credit.amount())
            .map(Usd)
    }
}

impl Add for Credits {
    type Output = Credits;

    fn add(self, other: Credits) -> Credits {
        Credits(self.0.saturating_add(other.0))
    }
}

impl Sum for Credits {
    fn sum<I: Iterator<Item = Credits>>(iter: I) -> Credits {
        iter.fold(Credits(0), Add::add)
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 credit"),
            n => write!(f, "{n} credits"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runblob_price_round_trips_byte_exact() {
        let price: Usd = serde_json::from_str(r#""0.0120""#).unwrap();
        assert_eq!(serde_json::to_string(&price).unwrap(), r#""0.0120""#);
        assert_eq!(price.to_string(), "$0.012");
    }

    #[test]
    fn sums_are_exact_where_floats_are_not() {
        let tenth: Usd = "0.1".parse().unwrap();
        let total: Usd = std::iter::repeat_n(tenth, 3).sum();
        assert_eq!(total, "0.3".parse().unwrap());
    }

    #[test]
    fn micro_usd_converts_exactly() {
        assert_eq!(MicroUsd(40_000).to_usd().to_plain_string(), "0.04");
        assert_eq!(MicroUsd(1).to_usd().to_plain_string(), "0.000001");
        assert_eq!(MicroUsd(160_000).to_string(), "$0.16");
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in ["", "abc", "1e-3", "0.1.2", "NaN", "$"] {
            assert!(bad.parse::<Usd>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("$0.05".parse::<Usd>().unwrap().to_plain_string(), "0.05");
    }

    #[test]
    fn numbers_on_the_wire_are_read_without_floats() {
        let usd: Usd = serde_json::from_str("0.0123").unwrap();
        assert_eq!(usd.to_plain_string(), "0.0123");
        let whole: Usd = serde_json::from_str("2").unwrap();
        assert_eq!(whole.to_plain_string(), "2");
    }

    #[test]
    fn credits_convert_only_at_a_given_rate() {
        let rate: Usd = "0.005".parse().unwrap();
        assert_eq!(Credits(4).to_usd(rate).unwrap().to_plain_string(), "0.02");
        assert_eq!(Credits(1).to_string(), "1 credit");
    }
}
