//! Money: every charge and refund, in order, so a test can prove nothing was charged twice.

use imggen_types::{Credits, Usd};
use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// An exact amount in a provider's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// runblob and runbase: dollars, a decimal string in JSON (`"0.0123"`).
    Usd(Usd),
    /// gptimg: credits, an integer in JSON.
    Credits(Credits),
}

impl Amount {
    /// `USD` or `credits`.
    pub fn unit(&self) -> &'static str {
        match self {
            Amount::Usd(_) => "USD",
            Amount::Credits(_) => "credits",
        }
    }
}

/// Whether money left or came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Taken when a task was created.
    Charge,
    /// Given back when the task failed.
    Refund,
}

/// One line of `GET /_mock/ledger`.
///
/// ```json
/// {"seq": 1, "at": "2026-04-22T00:12:03.456Z", "provider": "runblob", "key": "sk-t…3fa9c1",
///  "task_id": "dc62d83d-…", "kind": "charge", "amount": "0.0123", "unit": "USD"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LedgerEntry {
    /// 1, 2, 3, … in the order entries were written.
    pub seq: u64,
    /// When, on the mock's clock (ISO 8601, UTC).
    pub at: String,
    /// Whose money.
    pub provider: Provider,
    /// The key's label (never the key).
    pub key: String,
    /// The task the money was for.
    pub task_id: String,
    /// Charge or refund.
    pub kind: EntryKind,
    /// How much, exactly.
    pub amount: Amount,
    /// `USD` or `credits`.
    pub unit: String,
}

/// Balances and entries of one key, kept with the rest of the state.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: Vec<(crate::keys::ApiKey, LedgerEntry)>,
}

impl Ledger {
    pub(crate) fn record(
        &mut self,
        key: &crate::keys::ApiKey,
        at: String,
        provider: Provider,
        task_id: &str,
        kind: EntryKind,
        amount: Amount,
    ) {
        let seq = self.entries.len() as u64 + 1;
        let entry = LedgerEntry {
            seq,
            at,
            provider,
            key: key.label(),
            task_id: task_id.to_owned(),
            kind,
            unit: amount.unit().to_owned(),
            amount,
        };
        self.entries.push((key.clone(), entry));
    }

    /// Every entry, or only those of `key` (compared in full).
    pub(crate) fn entries(&self, key: Option<&str>) -> Vec<LedgerEntry> {
        self.entries
            .iter()
            .filter(|(owner, _)| key.is_none_or(|key| owner.as_str() == key))
            .map(|(_, entry)| entry.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ApiKey;

    #[test]
    fn entries_show_exact_amounts_and_labels() {
        let mut ledger = Ledger::default();
        let key = ApiKey::new("sk-ledger-secret");
        let price: Usd = "0.0123".parse().unwrap();
        ledger.record(
            &key,
            "t".into(),
            Provider::Runblob,
            "task-1",
            EntryKind::Charge,
            Amount::Usd(price),
        );
        ledger.record(
            &key,
            "t".into(),
            Provider::Gptimg,
            "task-2",
            EntryKind::Refund,
            Amount::Credits(Credits(4)),
        );
        let json = serde_json::to_value(ledger.entries(None)).unwrap();
        assert_eq!(json[0]["amount"], "0.0123");
        assert_eq!(json[0]["unit"], "USD");
        assert_eq!(json[1]["amount"], 4);
        assert_eq!(json[1]["kind"], "refund");
        assert_eq!(json[1]["seq"], 2);
        assert!(!json.to_string().contains("ledger-secret"));
        assert_eq!(ledger.entries(Some("sk-ledger-secret")).len(), 2);
        assert!(ledger.entries(Some("sk-other")).is_empty());
    }
}
