//! Checks every documented limit before a byte is sent, because every provider charges at
//! submit: a request the provider would reject costs a round trip at best and a paid, failed
//! task at worst.

use std::fmt;

use url::Url;

use crate::open_enum::join;

/// A request that breaks a documented limit, caught before anything was sent.
///
/// It names the field, the value and what is allowed:
/// `aspect_ratio: "16:9" is not accepted by runblob; allowed: 1:1, 4:3, 3:4`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// The wire field at fault, with an index where it is a list item: `images[2]`.
    pub field: String,
    /// What is wrong and what is allowed, in words.
    pub problem: String,
}

impl ValidationError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// `value` is not one of `allowed` for `provider`.
    pub fn not_allowed<T: fmt::Display>(
        field: impl Into<String>,
        value: &T,
        provider: &str,
        allowed: &[T],
    ) -> Self {
        ValidationError::new(
            field,
            format!(
                "{:?} is not accepted by {provider}; allowed: {}",
                value.to_string(),
                join(allowed)
            ),
        )
    }
}

/// Prompt length limits, counted in characters (Unicode scalar values) as the providers count
/// them, not in bytes.
pub(crate) fn check_prompt(prompt: &str, max_chars: Option<usize>) -> Result<(), ValidationError> {
    if prompt.trim().is_empty() {
        // Whitespace alone is a mistake every time, and it would still be charged.
        return Err(ValidationError::new(
            "prompt",
            "must not be empty or only whitespace",
        ));
    }
    if let Some(max) = max_chars {
        let chars = prompt.chars().count();
        if chars > max {
            return Err(ValidationError::new(
                "prompt",
                format!("is {chars} characters long; the maximum is {max}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_count(
    field: &str,
    len: usize,
    max: usize,
    what: &str,
) -> Result<(), ValidationError> {
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("has {len} {what}; the maximum is {max}"),
        ));
    }
    Ok(())
}

/// Which URL schemes a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schemes {
    /// `https` only (gptimg references, webhooks).
    HttpsOnly,
    /// `http` or `https`.
    HttpOrHttps,
}

/// Checks an absolute URL. `allow_loopback_http` lets `http://127.0.0.1…` through for fields a
/// local emulator must be able to use (webhooks to a test receiver).
pub(crate) fn check_url(
    field: &str,
    value: &str,
    schemes: Schemes,
    allow_loopback_http: bool,
) -> Result<Url, ValidationError> {
    let url = Url::parse(value).map_err(|err| {
        ValidationError::new(field, format!("{value:?} is not an absolute URL ({err})"))
    })?;
    let scheme_ok = match (url.scheme(), schemes) {
        ("https", _) => true,
        ("http", Schemes::HttpOrHttps) => true,
        ("http", Schemes::HttpsOnly) => allow_loopback_http && is_loopback(&url),
        _ => false,
    };
    if !scheme_ok {
        let allowed = match schemes {
            Schemes::HttpsOnly => "an https:// URL",
            Schemes::HttpOrHttps => "an http:// or https:// URL",
        };
        return Err(ValidationError::new(
            field,
            format!(
                "{:?} has scheme {:?}; allowed: {allowed}",
                shorten(value),
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(
            field,
            format!("{value:?} has no host"),
        ));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a task id before it is put into a URL path: an id is opaque, but one that holds `/`,
/// `?`, `#`, `%` or whitespace would address a different resource than the caller meant.
/// Every provider's id type runs it; a provider without a documented id format uses it alone.
pub fn check_opaque_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':')))
    {
        return Err(ValidationError::new(
            field,
            format!(
                "{:?} contains {bad:?}; a task id holds only letters, digits and - _ . ~ :",
                shorten(id)
            ),
        ));
    }
    Ok(())
}

/// Long values (a data URI of several megabytes) are cut in messages.
pub(crate) fn shorten(value: &str) -> String {
    const KEEP: usize = 60;
    match value.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_counts_characters_not_bytes() {
        let four_thousand_emoji = "🖼".repeat(4000);
        assert!(check_prompt(&four_thousand_emoji, Some(4000)).is_ok());
        let err = check_prompt(&"a".repeat(4001), Some(4000)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt: is 4001 characters long; the maximum is 4000"
        );
        assert!(check_prompt(" \n\t", Some(4000)).is_err());
    }

    #[test]
    fn https_only_fields_reject_http_unless_loopback_is_allowed() {
        let err = check_url(
            "reference_images[0]",
            "http://example.com/a.jpg",
            Schemes::HttpsOnly,
            false,
        )
        .unwrap_err();
        assert_eq!(err.field, "reference_images[0]");
        assert!(err.problem.contains("https://"), "{err}");
        assert!(
            check_url(
                "callback_url",
                "http://127.0.0.1:9/x",
                Schemes::HttpsOnly,
                true
            )
            .is_ok()
        );
        assert!(
            check_url(
                "callback_url",
                "http://example.com/x",
                Schemes::HttpsOnly,
                true
            )
            .is_err()
        );
        assert!(
            check_url(
                "x",
                "data:image/png;base64,AAAA",
                Schemes::HttpOrHttps,
                false
            )
            .is_err()
        );
        assert!(check_url("x", "not a url", Schemes::HttpOrHttps, false).is_err());
    }

    #[test]
    fn path_ids_cannot_escape_their_path_segment() {
        assert!(check_opaque_id("task_id", "gpt-image-2-kUtpnus8fXpDKkuEjayG3").is_ok());
        assert!(check_opaque_id("id", "run_01J").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", "a%2F"] {
            assert!(check_opaque_id("id", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = format!("data:image/png;base64,{}", "A".repeat(1000));
        let short = shorten(&long);
        assert!(short.len() < 100, "{short}");
        assert!(short.ends_with("(1022 bytes)"), "{short}");
    }
}
