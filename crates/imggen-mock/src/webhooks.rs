//! runblob's webhooks: the status object POSTed to `callback_url` when a task completes or
//! fails, retried at an interval, every attempt recorded for `GET /_mock/webhooks`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::iso8601;
use crate::keys::ApiKey;
use crate::provider::Provider;
use crate::state::Shared;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for the task to finish, or for the next attempt.
    Scheduled,
    /// An attempt is under way.
    InFlight,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Not sent: the receiver is not on this machine and external delivery is off.
    Skipped,
}

/// One attempt to deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When, on the mock's clock.
    pub at: String,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why it failed without an answer (refused, timed out).
    pub error: Option<String>,
}

/// A webhook as `GET /_mock/webhooks` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// Its id.
    pub id: u64,
    /// Whose webhook (runblob: the only provider with webhooks).
    pub provider: Provider,
    /// The task it reports.
    pub task_id: String,
    /// The creating key's label.
    pub key: String,
    /// The `callback_url`.
    pub url: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Every attempt so far.
    pub attempts: Vec<WebhookAttempt>,
    /// When the next attempt is due, on the mock's clock.
    pub next_attempt_at: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug)]
struct Delivery {
    id: u64,
    provider: Provider,
    task_id: String,
    key: ApiKey,
    url: String,
    status: DeliveryStatus,
    attempts: Vec<WebhookAttempt>,
    next_at: Option<Instant>,
    note: Option<String>,
}

/// Every delivery, in the order they were scheduled.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    next_id: u64,
    deliveries: Vec<Delivery>,
}

/// A delivery claimed for sending.
pub(crate) struct Due {
    id: u64,
    url: String,
    body: Vec<u8>,
}

impl Webhooks {
    /// Schedules a delivery for when the task finishes; a receiver off this machine is
    /// recorded as skipped unless external delivery is on.
    pub(crate) fn schedule(
        &mut self,
        provider: Provider,
        task_id: &str,
        key: &ApiKey,
        url: &str,
        due: Instant,
        deliver_external: bool,
    ) {
        self.next_id += 1;
        let local = is_local(url);
        let (status, next_at, note) = if local || deliver_external {
            (DeliveryStatus::Scheduled, Some(due), None)
        } else {
            (
                DeliveryStatus::Skipped,
                None,
                Some("the receiver is not on this machine; start the mock with external webhook delivery on to send it".to_owned()),
            )
        };
        self.deliveries.push(Delivery {
            id: self.next_id,
            provider,
            task_id: task_id.to_owned(),
            key: key.clone(),
            url: url.to_owned(),
            status,
            attempts: Vec::new(),
            next_at,
            note,
        });
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.deliveries
            .iter()
            .filter(|delivery| delivery.status == DeliveryStatus::Scheduled)
            .filter_map(|delivery| delivery.next_at)
            .min()
    }

    pub(crate) fn list(&self, clock: &crate::clock::MockClock) -> Vec<WebhookDelivery> {
        self.deliveries
            .iter()
            .map(|delivery| WebhookDelivery {
                id: delivery.id,
                provider: delivery.provider,
                task_id: delivery.task_id.clone(),
                key: delivery.key.label(),
                url: delivery.url.clone(),
                status: delivery.status,
                attempts: delivery.attempts.clone(),
                next_attempt_at: delivery
                    .next_at
                    .filter(|_| delivery.status == DeliveryStatus::Scheduled)
                    .map(|at| iso8601(clock.wall_at(at))),
                note: delivery.note.clone(),
            })
            .collect()
    }
}

impl Shared {
    /// Claims every delivery due at `now`, with the body it carries.
    fn claim_due(&self, now: Instant) -> Vec<Due> {
        let mut state = self.lock();
        let state = &mut *state;
        let mut due = Vec::new();
        for delivery in &mut state.webhooks.deliveries {
            let ready = delivery.status == DeliveryStatus::Scheduled
                && delivery.next_at.is_some_and(|at| at <= now);
            if !ready {
                continue;
            }
            let Some(task) = state
                .tasks
                .get(&(delivery.provider, delivery.task_id.clone()))
            else {
                delivery.status = DeliveryStatus::Failed;
                delivery.note = Some("the task is gone".into());
                continue;
            };
            let generation = crate::runblob::wire::generation(task, now, &self.base_url);
            let Ok(body) = serde_json::to_vec(&generation) else {
                continue;
            };
            delivery.status = DeliveryStatus::InFlight;
            due.push(Due {
                id: delivery.id,
                url: delivery.url.clone(),
                body,
            });
        }
        due
    }

    /// Moves the clock and waits until every webhook that became due has been attempted.
    pub(crate) async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        let target = self.clock.now();
        let mut settled = self.webhooks_settled.subscribe();
        // Bounded, in case the dispatcher is gone: one attempt's timeout per attempt allowed.
        let bound = self
            .config
            .effective_webhook_timeout()
            .saturating_mul(self.config.webhook_attempts.max(1))
            .saturating_add(Duration::from_secs(5));
        let _ = tokio::time::timeout(bound, settled.wait_for(|reached| *reached >= target)).await;
    }

    fn record_attempt(&self, id: u64, result: Result<u16, String>) {
        let now = self.clock.now();
        let at = iso8601(self.clock.wall_at(now));
        let interval = self.config.effective_webhook_retry_interval();
        let max_attempts = self.config.webhook_attempts.max(1);
        let mut state = self.lock();
        let Some(delivery) = state.webhooks.deliveries.iter_mut().find(|d| d.id == id) else {
            return;
        };
        let attempt = u32::try_from(delivery.attempts.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let delivered = matches!(result, Ok(status) if (200..300).contains(&status));
        let (status, error) = match result {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        delivery.attempts.push(WebhookAttempt {
            attempt,
            at,
            status,
            error,
        });
        if delivered {
            delivery.status = DeliveryStatus::Delivered;
            delivery.next_at = None;
        } else if attempt >= max_attempts {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_at = None;
        } else {
            delivery.status = DeliveryStatus::Scheduled;
            delivery.next_at = now.checked_add(interval);
        }
    }
}

/// Sends due webhooks until shut down. After each pass with nothing left due it publishes
/// the clock time it reached, so `MockServer::advance` can wait for the deliveries an advance
/// made due.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    http: reqwest::Client,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut clock_moved = shared.clock.subscribe();
    loop {
        let now = shared.clock.now();
        let due = shared.claim_due(now);
        if !due.is_empty() {
            let sends = due.into_iter().map(|due| {
                let http = http.clone();
                async move {
                    let result = send(&http, &due.url, due.body).await;
                    (due.id, due.url, result)
                }
            });
            for (id, url, result) in futures_util::future::join_all(sends).await {
                match &result {
                    Ok(status) => {
                        tracing::info!(target: "imggen_mock::webhook", "POST {url} -> {status} (delivery {id})")
                    }
                    Err(error) => {
                        tracing::info!(target: "imggen_mock::webhook", "POST {url} failed: {error} (delivery {id})")
                    }
                }
                shared.record_attempt(id, result);
            }
            continue;
        }
        shared.webhooks_settled.send_replace(now);
        let next = shared.lock().webhooks.next_due();
        // A manual clock only moves when advanced, so waiting in real time would be pointless.
        let wait = match next {
            Some(at) if !shared.clock.is_manual() => at.saturating_duration_since(now),
            _ => Duration::from_secs(3600),
        };
        tokio::select! {
            changed = clock_moved.changed() => {
                if changed.is_err() {
                    let _ = shutdown.changed().await;
                    return;
                }
            }
            () = shared.webhook_added.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn send(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<u16, String> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    Ok(response.status().as_u16())
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        // Without the source chain, which may repeat the URL.
        "request failed".to_owned()
    }
}

/// Whether a URL points at this machine.
pub(crate) fn is_local(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_local() {
        assert!(is_local("http://127.0.0.1:9/hook"));
        assert!(is_local("http://localhost:8080/hook"));
        assert!(is_local("https://[::1]/hook"));
        assert!(!is_local("https://your-app.com/webhooks/chatgpt-images"));
        assert!(!is_local("not a url"));
    }
}
