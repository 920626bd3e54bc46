//! The POST runblob sends to a `callback_url`.

use std::fmt;

use imggen_types::runblob::WebhookBody;

/// Reads the body of a webhook runblob POSTed to your `callback_url`: the same status object
/// [`Client::status`](crate::Client::status) returns.
///
/// **Treat it as a hint.** runblob documents no signature, so anyone who learns the URL can
/// POST to it. Before acting on an event (marking a task done, downloading, crediting a user),
/// confirm it with one `client.status(&event.task_uuid)` and believe that answer.
///
/// **Deduplicate by `task_uuid`.** runblob tries a delivery up to 5 times, 30 s apart, with a
/// 30 s timeout, so the same event can arrive more than once, and late. Answer 2xx quickly
/// (confirm and download after answering), and ignore an event for a task you already hold
/// in a terminal state.
///
/// ```
/// use imggen_runblob::{GenerationStatus, parse_webhook};
///
/// let body = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"completed",
///     "prompt":"A lighthouse","result_image_url":"https://cdn.example/a.png","message":null}"#;
/// let event = parse_webhook(body)?;
/// assert_eq!(event.status, GenerationStatus::Completed);
/// // Then: client.status(&event.task_uuid).await? before trusting it.
/// # Ok::<(), imggen_runblob::WebhookError>(())
/// ```
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBody, WebhookError> {
    serde_json::from_slice(body).map_err(|source| WebhookError {
        raw_body: body.to_vec(),
        source,
    })
}

/// A webhook body that is not runblob's status object. Keeps the body as received, for a log
/// or a dead-letter store.
#[derive(thiserror::Error)]
#[error("runblob webhook: the {}-byte body is not a generation status object", raw_body.len())]
pub struct WebhookError {
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// What did not parse.
    #[source]
    pub source: serde_json::Error,
}

impl fmt::Debug for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As text, cut: a list of a million numbers helps nobody.
        const KEEP: usize = 200;
        let shown = &self.raw_body[..self.raw_body.len().min(KEEP)];
        let mut body = String::from_utf8_lossy(shown).into_owned();
        if self.raw_body.len() > KEEP {
            body.push('…');
        }
        f.debug_struct("WebhookError")
            .field("raw_body", &body)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_a_status_object_is_kept_with_the_reason() {
        let err = parse_webhook(br#"{"status":"completed"}"#).unwrap_err();
        assert_eq!(err.raw_body, br#"{"status":"completed"}"#);
        assert_eq!(
            err.to_string(),
            "runblob webhook: the 22-byte body is not a generation status object"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("task_uuid")));

        let huge = vec![b'x'; 10_000];
        let err = parse_webhook(&huge).unwrap_err();
        assert!(format!("{err:?}").len() < 400);
    }
}
