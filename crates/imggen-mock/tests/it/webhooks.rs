//! runblob webhooks: delivered when the task finishes, retried at an interval, recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use imggen_mock::{DeliveryStatus, Fault, FaultKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{KEY, TASK_TIME, config, start};

/// A receiver on 127.0.0.1 that answers with the given statuses in turn (the last one
/// repeats) and reports every body it got.
struct Receiver {
    url: String,
    bodies: mpsc::UnboundedReceiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Script {
    statuses: Arc<Mutex<Vec<u16>>>,
    sender: mpsc::UnboundedSender<Value>,
}

async fn hook(State(script): State<Script>, Json(body): Json<Value>) -> StatusCode {
    let _ = script.sender.send(body);
    let mut statuses = script.statuses.lock().unwrap();
    let status = if statuses.len() > 1 {
        statuses.remove(0)
    } else {
        statuses[0]
    };
    StatusCode::from_u16(status).unwrap()
}

async fn receiver(statuses: &[u16]) -> Receiver {
    let (sender, bodies) = mpsc::unbounded_channel();
    let script = Script {
        statuses: Arc::new(Mutex::new(statuses.to_vec())),
        sender,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, bodies, task }
}

impl Receiver {
    /// The next body, waiting on the channel (bounded as a failure guard, not as a delay).
    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.bodies.recv())
            .await
            .expect("a webhook arrives")
            .expect("the receiver is running")
    }

    fn nothing_more(&mut self) {
        assert!(self.bodies.try_recv().is_err(), "no further webhook");
    }
}

#[tokio::test]
async fn the_status_object_is_posted_when_the_task_completes() {
    let mock = start(config()).await;
    let mut receiver = receiver(&[200]).await;
    let created = mock
        .post(
            "/v1/chatgpt-images/generate",
            KEY,
            json!({"prompt": "hooked", "callback_url": receiver.url}),
        )
        .await
        .json();
    let uuid = created["task_uuid"].as_str().unwrap().to_owned();
    mock.server
        .advance(TASK_TIME - Duration::from_millis(1))
        .await;
    receiver.nothing_more();
    assert_eq!(mock.server.webhooks()[0].status, DeliveryStatus::Scheduled);

    mock.server.advance(Duration::from_millis(1)).await;
    let body = receiver.next().await;
    // Exactly what a status call returns.
    let status = mock
        .get(&format!("/v1/chatgpt-images/generations/{uuid}"), KEY)
        .await
        .json();
    assert_eq!(body, status);
    assert_eq!(body["status"], "completed");

    let listed = mock.get_public("/_mock/webhooks").await.json();
    assert_eq!(listed[0]["status"], "delivered");
    assert_eq!(listed[0]["task_id"], uuid.as_str());
    assert_eq!(listed[0]["url"], receiver.url.as_str());
    assert_eq!(listed[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["attempts"][0]["status"], 200);
    assert_eq!(listed[0]["next_attempt_at"], Value::Null);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_at_the_interval_until_it_answers() {
    let mock = start(config().webhook_retry_interval(Duration::from_secs(30))).await;
    let mut receiver = receiver(&[500, 503, 200]).await;
    mock.server
        .add_fault(Fault::new(FaultKind::TaskFailure {
            code: "OPENAI_DECLINED".into(),
        }))
        .unwrap();
    mock.post(
        "/v1/chatgpt-images/generate",
        KEY,
        json!({"prompt": "retry me", "callback_url": receiver.url}),
    )
    .await;

    mock.server.advance(TASK_TIME).await;
    let first = receiver.next().await;
    assert_eq!(
        (first["status"].clone(), first["message"].clone()),
        (json!("failed"), json!("OPENAI_DECLINED"))
    );
    let delivery = mock.server.webhooks().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Scheduled);
    assert_eq!(delivery.attempts[0].status, Some(500));

    mock.server.advance(Duration::from_secs(29)).await;
    receiver.nothing_more();
    mock.server.advance(Duration::from_secs(1)).await;
    assert_eq!(receiver.next().await, first, "the same body again");
    mock.server.advance(Duration::from_secs(30)).await;
    assert_eq!(receiver.next().await, first);

    let delivery = mock.server.webhooks().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    let statuses: Vec<Option<u16>> = delivery
        .attempts
        .iter()
        .map(|attempt| attempt.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    mock.server.advance(Duration::from_secs(300)).await;
    receiver.nothing_more();
}

#[tokio::test]
async fn delivery_gives_up_after_five_attempts() {
    let mock = start(config()).await;
    let mut receiver = receiver(&[500]).await;
    mock.post(
        "/v1/chatgpt-images/generate",
        KEY,
        json!({"prompt": "never", "callback_url": receiver.url}),
    )
    .await;
    mock.server.advance(TASK_TIME).await;
    for _ in 0..4 {
        receiver.next().await;
        mock.server.advance(Duration::from_secs(1)).await;
    }
    receiver.next().await;
    let delivery = mock.server.webhooks().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 5);
    mock.server.advance(Duration::from_secs(60)).await;
    receiver.nothing_more();
}

#[tokio::test]
async fn a_receiver_that_is_not_listening_counts_as_a_failed_attempt() {
    let mock = start(config()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    mock.post(
        "/v1/chatgpt-images/generate",
        KEY,
        json!({"prompt": "x", "callback_url": closed}),
    )
    .await;
    mock.server.advance(TASK_TIME).await;
    let attempt = mock.server.webhooks()[0].attempts[0].clone();
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.error.as_deref(), Some("could not connect"));
}

#[tokio::test]
async fn receivers_off_this_machine_are_recorded_but_not_called() {
    let mock = start(config()).await;
    mock.post(
        "/v1/chatgpt-images/generate",
        KEY,
        json!({"prompt": "x", "callback_url": "https://your-app.com/webhooks/chatgpt-images"}),
    )
    .await;
    mock.server.advance(TASK_TIME).await;
    let delivery = mock.server.webhooks().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Skipped);
    assert!(delivery.attempts.is_empty());
    assert!(delivery.note.unwrap().contains("not on this machine"));
}

#[tokio::test]
async fn webhooks_fire_on_the_real_clock_too() {
    // Real time, a 50 ms task: the dispatcher must send on its own, without an advance.
    let mock = start(
        imggen_mock::MockConfig::default()
            .profile(imggen_mock::Profile::Fixed(Duration::from_millis(50))),
    )
    .await;
    let mut receiver = receiver(&[200]).await;
    mock.post(
        "/v1/chatgpt-images/generate",
        KEY,
        json!({"prompt": "x", "callback_url": receiver.url}),
    )
    .await;
    assert_eq!(receiver.next().await["status"], "completed");
}
