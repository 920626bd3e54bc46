//! Webhook intake: runblob's callbacks, turned into events that shorten a wait.
//!
//! runblob signs nothing, so anyone who learns the callback URL can POST to it. An event is
//! therefore only a **hint**: a waiting job that receives one for its task makes one status
//! call at once and believes that answer, not the event. Duplicates (runblob retries a
//! delivery up to 5 times) are ignored, by task id and status. When no event comes, the wait
//! polls on its normal schedule, as it would without webhooks.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::Stream;
use imggen_types::runblob;
use imggen_types::text::Untrusted;
use tokio::sync::broadcast;

use crate::provider::ProviderId;

pub use imggen_runblob::WebhookError;

#[cfg(feature = "webhook-server")]
pub mod server;

/// A stream of webhook events, as [`WaitOptions::events`](crate::WaitOptions::events) takes it.
pub type EventStream = Pin<Box<dyn Stream<Item = WebhookEvent> + Send>>;

/// A webhook delivery: a hint that a task changed, to be confirmed by a status call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// The provider that sent it.
    pub provider: ProviderId,
    /// The task it is about.
    pub task_id: String,
    /// The status it claims, as sent.
    pub status: String,
    /// The body, parsed.
    pub body: runblob::WebhookBody,
}

impl WebhookEvent {
    /// Reads the body runblob POSTs to a `callback_url`.
    pub fn parse_runblob(body: &[u8]) -> Result<Self, WebhookError> {
        let body = imggen_runblob::parse_webhook(body)?;
        Ok(WebhookEvent {
            provider: ProviderId::Runblob,
            task_id: body.task_uuid.to_string(),
            status: body.status.to_string(),
            body,
        })
    }
}

/// How many (task, status) pairs the hub remembers to drop duplicates.
const REMEMBERED: usize = 10_000;

/// Fans webhook events out to every waiting job, dropping duplicates. Cheap to clone.
///
/// ```
/// use imggen_core::webhook::WebhookHub;
///
/// let hub = WebhookHub::new();
/// let events = hub.subscribe(); // give to WaitOptions::events
/// let body = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"completed"}"#;
/// assert!(hub.receive_runblob(body)?);   // new
/// assert!(!hub.receive_runblob(body)?);  // a redelivery: ignored
/// # drop(events);
/// # Ok::<(), imggen_core::webhook::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct WebhookHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    sender: broadcast::Sender<WebhookEvent>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<(ProviderId, String, String)>,
    order: VecDeque<(ProviderId, String, String)>,
}

impl std::fmt::Debug for WebhookHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookHub")
            .field("subscribers", &self.inner.sender.receiver_count())
            .finish()
    }
}

impl Default for WebhookHub {
    fn default() -> Self {
        WebhookHub::new()
    }
}

impl WebhookHub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        WebhookHub {
            inner: Arc::new(HubInner {
                sender,
                seen: Mutex::new(Seen::default()),
            }),
        }
    }

    /// Passes an event to every subscriber, unless the same task and status came before.
    /// Returns whether it was new.
    pub fn publish(&self, event: WebhookEvent) -> bool {
        let key = (event.provider, event.task_id.clone(), event.status.clone());
        {
            let mut seen = self
                .inner
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !seen.set.insert(key.clone()) {
                return false;
            }
            seen.order.push_back(key);
            if seen.order.len() > REMEMBERED
                && let Some(oldest) = seen.order.pop_front()
            {
                seen.set.remove(&oldest);
            }
        }
        tracing::debug!(
            provider = %event.provider,
            task_id = %Untrusted(&event.task_id),
            status = %Untrusted(&event.status),
            "webhook event"
        );
        // No subscriber is fine: the event is a hint, and polling finds the result anyway.
        let _ = self.inner.sender.send(event);
        true
    }

    /// Parses a runblob callback body and publishes it. `Ok(false)` for a duplicate.
    pub fn receive_runblob(&self, body: &[u8]) -> Result<bool, WebhookError> {
        Ok(self.publish(WebhookEvent::parse_runblob(body)?))
    }

    /// A stream of the events published from now on. A subscriber too slow to keep up skips
    /// the events it missed (its wait polls instead).
    pub fn subscribe(&self) -> EventStream {
        let receiver = self.inner.sender.subscribe();
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((event, receiver)),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

/// Turns a channel of events (your own intake) into an [`EventStream`].
pub fn channel_stream(receiver: tokio::sync::mpsc::Receiver<WebhookEvent>) -> EventStream {
    Box::pin(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|event| (event, receiver)) },
    ))
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    const BODY: &[u8] = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"completed","prompt":"p","result_image_url":"https://cdn.example/a.png","message":null}"#;

    #[tokio::test]
    async fn events_reach_every_subscriber_once() {
        let hub = WebhookHub::new();
        let mut first = hub.subscribe();
        let mut second = hub.subscribe();
        assert!(hub.receive_runblob(BODY).unwrap());
        assert!(!hub.receive_runblob(BODY).unwrap());
        let event = first.next().await.unwrap();
        assert_eq!(event.task_id, "dc62d83d-1953-4bca-8554-222679a7a4a9");
        assert_eq!(event.status, "completed");
        assert_eq!(second.next().await.unwrap(), event);
        // The same task with another status is news.
        let failed = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"failed"}"#;
        assert!(hub.receive_runblob(failed).unwrap());
        assert_eq!(first.next().await.unwrap().status, "failed");
    }

    #[test]
    fn a_body_that_is_not_a_status_object_is_an_error() {
        let hub = WebhookHub::new();
        assert!(hub.receive_runblob(b"{\"hello\":1}").is_err());
    }

    #[tokio::test]
    async fn a_channel_becomes_a_stream() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = channel_stream(rx);
        tx.send(WebhookEvent::parse_runblob(BODY).unwrap())
            .await
            .unwrap();
        drop(tx);
        assert!(stream.next().await.is_some());
        assert!(stream.next().await.is_none());
    }
}
