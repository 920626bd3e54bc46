//! API keys: who a request is, without ever showing who.
//!
//! The mock keeps keys in memory (tasks, balances and faults belong to a key) but shows only a
//! stable label — the first few characters and a short hash — in logs, `/_mock/…` answers and
//! `Debug` output.

use std::fmt;
use std::sync::Arc;

use axum::http::HeaderMap;

use crate::hash::fnv1a64;

/// An API key as a request presented it. `Debug` and `Display` show its [label](key_label).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct ApiKey(Arc<str>);

impl ApiKey {
    pub(crate) fn new(key: &str) -> Self {
        ApiKey(Arc::from(key))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn label(&self) -> String {
        key_label(&self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.label())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The label a key is shown as: up to its first 4 characters (fewer for short keys, so a
/// label never gives away most of a key) and 6 hex digits of its hash, e.g. `sk-t…3fa9c1`.
/// Stable across runs and machines, so a label in a log can be matched to a key one holds.
pub fn key_label(key: &str) -> String {
    let shown = (key.chars().count() / 3).min(4);
    let prefix: String = key.chars().take(shown).collect();
    format!("{prefix}…{:06x}", fnv1a64(key.as_bytes()) & 0x00ff_ffff)
}

/// Why a request's credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// A well-formed key this mock does not accept.
    Rejected,
}

/// The token of an `Authorization: Bearer <token>` header, if the header is well formed.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<ApiKey, AuthError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.chars().all(|c| c.is_ascii_graphic());
    if well_formed {
        Ok(ApiKey::new(token))
    } else {
        Err(AuthError::Malformed)
    }
}

/// The label of the bearer token in `headers`, or `-`, for the request log.
pub(crate) fn header_label(headers: &HeaderMap) -> String {
    bearer(headers).map_or_else(|_| "-".to_owned(), |key| key.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable_and_never_show_most_of_a_key() {
        let label = key_label("sk-test-0123456789abcdef");
        assert!(label.starts_with("sk-t…"), "{label}");
        assert_eq!(label, key_label("sk-test-0123456789abcdef"));
        assert_ne!(label, key_label("sk-test-0123456789abcdeg"));
        assert!(!label.contains("0123"), "{label}");
        assert!(key_label("abc").starts_with("a…"), "{}", key_label("abc"));
        assert!(key_label("ab").starts_with('…'), "{}", key_label("ab"));
    }

    #[test]
    fn debug_shows_the_label_only() {
        let key = ApiKey::new("sk-secret-value-123");
        let debug = format!("{key:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn bearer_tokens_must_be_well_formed() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert_eq!(bearer(&headers("Bearer sk-1")).unwrap().as_str(), "sk-1");
        assert_eq!(bearer(&headers("bearer  sk-1 ")).unwrap().as_str(), "sk-1");
        assert_eq!(bearer(&headers("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(&headers("Bearer ")), Err(AuthError::Malformed));
        assert_eq!(bearer(&headers("sk-1")), Err(AuthError::Malformed));
        assert_eq!(bearer(&HeaderMap::new()), Err(AuthError::Missing));
    }
}
