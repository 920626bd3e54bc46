//! Webhook intake: runblob's callbacks, turned into events that shorten a wait.
//!
//! runblob signs nothing, so anyone who learns the callback URL can POST to it. An event is
//! therefore only a **hint**: a waiting task that receives one for its task makes one status
//! call at once and believes that answer, not the event. Duplicates (runblob retries a
//! delivery up to 5 times) are ignored, by task id and status. When no event comes, the wait
//! polls on its normal schedule, as it would without webhooks.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::Stream;
use imggen_types::text::Untrusted;
use tokio::sync::broadcast;

use crate::provider::{Provider, ProviderId};

#[cfg(feature = "webhook-server")]
pub mod server;

/// A stream of webhook events, as [`WaitOptions::events`](crate::WaitOptions::events) takes it.
pub type EventStream = Pin<Box<dyn Stream<Item = WebhookEvent> + Send>>;

/// A webhook delivery: a hint that a task changed, to be confirmed by a status call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// The provider that sent it.
    pub provider: ProviderId,
    /// The task it is about.
    pub task_id: String,
    /// The status it claims, as sent.
    pub status: String,
}

impl WebhookEvent {
    /// An event about `task_id` of `provider`, claiming `status`.
    pub fn new(
        provider: ProviderId,
        task_id: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        WebhookEvent {
            provider,
            task_id: task_id.into(),
            status: status.into(),
        }
    }

    /// Reads a body `provider` POSTed to its callback URL ([`Provider::parse_webhook`]).
    pub fn parse(provider: &dyn Provider, body: &[u8]) -> Result<Self, WebhookError> {
        let (task_id, status) = provider
            .parse_webhook(body)
            .map_err(|problem| WebhookError {
                provider: provider.id(),
                problem,
                raw_body: body.to_vec(),
            })?;
        Ok(WebhookEvent::new(provider.id(), task_id, status))
    }
}

/// A webhook body its provider does not read as a task's status. Keeps the body as received,
/// for a log or a dead-letter store.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} webhook: the {}-byte body is not a status it sends: {problem}", raw_body.len())]
pub struct WebhookError {
    /// The provider it was sent as.
    pub provider: ProviderId,
    /// What the provider made of it.
    pub problem: String,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
}

impl std::fmt::Debug for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookError")
            .field("provider", &self.provider)
            .field("problem", &self.problem)
            .field("raw_body_len", &self.raw_body.len())
            .finish()
    }
}

/// How many (task, status) pairs the hub remembers to drop duplicates.
const REMEMBERED: usize = 10_000;

/// Fans webhook events out to every waiting task, dropping duplicates. Cheap to clone.
///
/// ```
/// use imggen_core::webhook::{WebhookEvent, WebhookHub};
/// use imggen_core::ProviderId;
///
/// let hub = WebhookHub::new();
/// let events = hub.subscribe(); // give to WaitOptions::events
/// let event = WebhookEvent::new(ProviderId::new("runblob"), "dc62d83d", "completed");
/// assert!(hub.publish(event.clone()));   // new
/// assert!(!hub.publish(event));          // a redelivery: ignored
/// # drop(events);
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

    /// Reads a callback body `provider` sent and publishes it. `Ok(false)` for a duplicate.
    pub fn receive(&self, provider: &dyn Provider, body: &[u8]) -> Result<bool, WebhookError> {
        Ok(self.publish(WebhookEvent::parse(provider, body)?))
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

#[cfg(all(test, feature = "runblob"))]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    const BODY: &[u8] = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"completed","prompt":"p","result_image_url":"https://cdn.example/a.png","message":null}"#;

    fn runblob() -> imggen_runblob::provider::RunblobProvider {
        imggen_runblob::provider::RunblobProvider::new(
            imggen_runblob::Client::builder()
                .api_key("sk-test")
                .build()
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn events_reach_every_subscriber_once() {
        let hub = WebhookHub::new();
        let provider = runblob();
        let mut first = hub.subscribe();
        let mut second = hub.subscribe();
        assert!(hub.receive(&provider, BODY).unwrap());
        assert!(!hub.receive(&provider, BODY).unwrap());
        let event = first.next().await.unwrap();
        assert_eq!(event.task_id, "dc62d83d-1953-4bca-8554-222679a7a4a9");
        assert_eq!(event.status, "completed");
        assert_eq!(second.next().await.unwrap(), event);
        // The same task with another status is news.
        let failed = br#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"failed"}"#;
        assert!(hub.receive(&provider, failed).unwrap());
        assert_eq!(first.next().await.unwrap().status, "failed");
    }

    #[test]
    fn a_body_that_is_not_a_status_object_is_an_error() {
        let hub = WebhookHub::new();
        let error = hub.receive(&runblob(), b"{\"hello\":1}").unwrap_err();
        assert!(error.to_string().starts_with("runblob webhook"), "{error}");
    }

    #[tokio::test]
    async fn a_channel_becomes_a_stream() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut stream = channel_stream(rx);
        tx.send(WebhookEvent::parse(&runblob(), BODY).unwrap())
            .await
            .unwrap();
        drop(tx);
        assert!(stream.next().await.is_some());
        assert!(stream.next().await.is_none());
    }
}
