//! The API key, struck from everything a server sends back.
//!
//! A server that quotes the request in an error (`... {Authorization: Bearer sk-...}`) would
//! otherwise carry the key into an error message, a log line, `--json` output or a stored
//! file. Every answer the transport reads on an authorized call — and every error answer of a
//! download — passes through [`Redactor::redact`] once, before it is decoded, so no layer above
//! ever holds the key in provider-supplied text.

use bytes::Bytes;
use memchr::memmem;

/// What replaces the key.
pub const REDACTED: &str = "[redacted]";

/// Finds and replaces one API key, as it is and in the forms a server may echo it in
/// (JSON-escaped, with or without `\/`, percent-encoded).
pub(crate) struct Redactor {
    needles: Vec<memmem::Finder<'static>>,
}

impl Redactor {
    /// A redactor of `key` (already trimmed, as sent).
    pub(crate) fn new(key: &str) -> Self {
        let mut forms: Vec<Vec<u8>> = vec![key.as_bytes().to_vec()];
        let json = serde_json::to_string(key).unwrap_or_default();
        let json = json.trim_matches('"');
        // PHP and others escape `/` in JSON strings.
        let json_slashes = json.replace('/', "\\/");
        let percent: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        for form in [json, json_slashes.as_str(), percent.as_str()] {
            if !form.is_empty() && !forms.iter().any(|known| known == form.as_bytes()) {
                forms.push(form.as_bytes().to_vec());
            }
        }
        Redactor {
            needles: forms
                .into_iter()
                .map(|form| memmem::Finder::new(&form).into_owned())
                .collect(),
        }
    }

    /// `body` with every occurrence of the key replaced by [`REDACTED`]; the same `Bytes`,
    /// uncopied, when the key is not in it (the common case: one scan per form).
    pub(crate) fn redact(&self, body: Bytes) -> Bytes {
        if !self
            .needles
            .iter()
            .any(|needle| needle.find(&body).is_some())
        {
            return body;
        }
        let mut text = body.to_vec();
        for needle in &self.needles {
            text = replace_all(&text, needle);
        }
        Bytes::from(text)
    }

    /// A header value or other short text, redacted.
    pub(crate) fn redact_str(&self, text: String) -> String {
        if !self
            .needles
            .iter()
            .any(|needle| needle.find(text.as_bytes()).is_some())
        {
            return text;
        }
        let redacted = self.redact(Bytes::from(text));
        String::from_utf8_lossy(&redacted).into_owned()
    }
}

fn replace_all(haystack: &[u8], needle: &memmem::Finder<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut last = 0;
    for at in needle.find_iter(haystack) {
        // Overlapping matches of a key with itself: the first one already removed it.
        if at < last {
            continue;
        }
        out.extend_from_slice(&haystack[last..at]);
        out.extend_from_slice(REDACTED.as_bytes());
        last = at + needle.needle().len();
    }
    out.extend_from_slice(&haystack[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_struck_alone_as_a_bearer_and_escaped() {
        let redactor = Redactor::new("sk-a/b\"c");
        let body = Bytes::from_static(
            br#"{"detail":"bad key sk-a/b"c in {Authorization: Bearer sk-a/b"c}, json \"sk-a\/b\"c\" sk-a\/b\"c, query key=sk-a%2Fb%22c"}"#,
        );
        let redacted = redactor.redact(body);
        let text = std::str::from_utf8(&redacted).unwrap();
        assert!(!text.contains("sk-a"), "{text}");
        assert!(text.contains("Bearer [redacted]"), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 5, "{text}");
    }

    #[test]
    fn text_without_the_key_is_returned_as_it_is() {
        let redactor = Redactor::new("sk-secret");
        let body = Bytes::from_static(b"{\"ok\":true}");
        let same = redactor.redact(body.clone());
        assert_eq!(same.as_ptr(), body.as_ptr(), "not copied");
        assert_eq!(redactor.redact_str("req_1".into()), "req_1");
        assert_eq!(
            redactor.redact_str("id sk-secretsk-secret".into()),
            "id [redacted][redacted]"
        );
    }
}
