//! Which provider: an open name, not a closed list, so that a provider crate — built into
//! imggen or written by a user — names itself and the orchestrator needs no list of them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A provider's name: `runblob`, `gptimg`, `runbase`, or any other a provider crate gives
/// itself. Lowercase ASCII letters, digits, `-` and `_`, 1–32 characters. `Copy`, compared
/// by name; serialised as the name.
///
/// ```
/// use imggen_provider::ProviderId;
///
/// const MINE: ProviderId = ProviderId::new("mine");
/// assert_eq!("mine".parse::<ProviderId>().unwrap(), MINE);
/// assert_eq!(MINE.to_string(), "mine");
/// assert!("Not A Name!".parse::<ProviderId>().is_err());
/// ```
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct ProviderId(&'static str);

impl std::hash::Hash for ProviderId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for ProviderId {
    fn eq(&self, other: &Self) -> bool {
        // The same constant (or interned name) is the same pointer: no bytes to compare.
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

/// The longest provider name.
pub const MAX_NAME_LEN: usize = 32;

impl ProviderId {
    /// A provider's own constant. The name must be a valid one (see [`ProviderId`]); a
    /// provider crate defines it once.
    pub const fn new(name: &'static str) -> Self {
        ProviderId(name)
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Reads a name (trimmed, lowercased), as a handle, a journal or a command line carries
    /// it. Names are interned: reading one many times keeps one copy.
    pub fn parse(name: &str) -> Result<Self, InvalidProviderName> {
        let name = name.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(InvalidProviderName(name));
        }
        static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
        let mut names = NAMES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = names.get(name.as_str()) {
            return Ok(ProviderId(known));
        }
        // Each distinct valid name is kept once, for the process: a handful in practice, and
        // never more than the distinct names a process reads.
        let interned: &'static str = Box::leak(name.into_boxed_str());
        names.insert(interned);
        Ok(ProviderId(interned))
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl FromStr for ProviderId {
    type Err = InvalidProviderName;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        ProviderId::parse(value)
    }
}

impl Serialize for ProviderId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ProviderId::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// A provider name that is not one: empty, too long, or with characters other than
/// lowercase letters, digits, `-` and `_`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a provider name (lowercase letters, digits, - and _, at most 32 characters)")]
pub struct InvalidProviderName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_leniently_compared_by_content_and_interned() {
        const RUNBASE: ProviderId = ProviderId::new("runbase");
        assert_eq!(" RunBase ".parse::<ProviderId>(), Ok(RUNBASE));
        let a = ProviderId::parse("my-provider").unwrap();
        let b = ProviderId::parse("MY-PROVIDER").unwrap();
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one copy");
        assert_eq!(
            serde_json::to_string(&RUNBASE).unwrap(),
            "\"runbase\"".to_owned()
        );
        let back: ProviderId = serde_json::from_str("\"runbase\"").unwrap();
        assert_eq!(back, RUNBASE);
        for bad in ["", "a b", "ü", &"x".repeat(33), "gptimg.co"] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
