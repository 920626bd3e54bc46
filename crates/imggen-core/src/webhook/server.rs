//! A small receiver for a provider's callbacks (runblob's, say) that a web app can mount
//! (feature `webhook-server`).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use imggen_core::webhook::{WebhookHub, server};
//!
//! let hub = WebhookHub::new(); // subscribe waits to it: WaitOptions::events(hub.subscribe())
//! let runblob = imggen_core::imggen_runblob::provider::RunblobProvider::new(
//!     imggen_core::imggen_runblob::Client::from_env().map_err(std::io::Error::other)?,
//! );
//! let app = axum::Router::new()
//!     .nest("/webhooks/runblob", server::router(hub.clone(), std::sync::Arc::new(runblob)));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! What it answers, and why:
//! - **200** for a runblob status object, new or a duplicate, at once: the event is handed to
//!   waiting tasks, which confirm it with a status call of their own, after the answer. A slow
//!   answer would make runblob retry (30 s timeout, 5 attempts).
//! - **400** for a body that is not a status object: it is not a delivery imggen can use, and
//!   a 2xx would tell a misconfigured sender that all is well. runblob's retries of it are
//!   harmless.
//! - **413** for a body over 64 KiB (a status object is a few hundred bytes).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;

use super::WebhookHub;
use crate::Provider;

/// The largest callback body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A router answering `POST /` with `provider`'s callbacks; mount it where your callback URL
/// points (`Router::nest`).
pub fn router(hub: WebhookHub, provider: Arc<dyn Provider>) -> Router {
    Router::new()
        .route("/", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state((hub, provider))
}

async fn receive(
    State((hub, provider)): State<(WebhookHub, Arc<dyn Provider>)>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    answer(hub.receive(provider.as_ref(), &body))
}

/// The providers whose callbacks [`any_path`] reads, in order.
type Providers = Vec<Arc<dyn Provider>>;

/// A router answering `POST` on **every** path with the callbacks of any of `providers` (the
/// first whose status object the body is): for a server that is nothing but the receiver,
/// behind a tunnel or a reverse proxy that keeps a path of its own in the public URL.
pub fn any_path(hub: WebhookHub, providers: Vec<Arc<dyn Provider>>) -> Router {
    Router::new()
        .fallback(post(receive_any))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state((hub, Arc::new(providers)))
}

/// Serves [`any_path`] on `listener` until `shutdown` completes: how a process that waits on
/// its own tasks (the `imggen` command's `--listen`) hears their callbacks.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: WebhookHub,
    providers: Vec<Arc<dyn Provider>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, any_path(hub, providers))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive_any(
    State((hub, providers)): State<(WebhookHub, Arc<Providers>)>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut last = None;
    for provider in providers.iter() {
        match hub.receive(provider.as_ref(), &body) {
            Err(error) => last = Some(error),
            read => return answer(read),
        }
    }
    match last {
        Some(error) => answer(Err(error)),
        None => (StatusCode::NOT_FOUND, "no provider calls back here"),
    }
}

/// What a callback is answered.
fn answer(read: Result<bool, super::WebhookError>) -> (StatusCode, &'static str) {
    match read {
        Ok(true) => (StatusCode::OK, "accepted"),
        Ok(false) => (StatusCode::OK, "duplicate ignored"),
        Err(error) => {
            tracing::warn!(error = %error, "webhook body is not a status its provider sends");
            (StatusCode::BAD_REQUEST, "not a status object")
        }
    }
}

#[cfg(all(test, feature = "runblob"))]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use futures_util::StreamExt as _;
    use tower::ServiceExt as _;

    use super::*;

    fn post_body(body: impl Into<Body>) -> Request<Body> {
        Request::post("/").body(body.into()).unwrap()
    }

    #[tokio::test]
    async fn accepts_status_objects_once_and_refuses_the_rest() {
        let hub = WebhookHub::new();
        let mut events = hub.subscribe();
        let provider = imggen_runblob::provider::RunblobProvider::new(
            imggen_runblob::Client::builder()
                .api_key("sk-test")
                .build()
                .unwrap(),
        );
        let app = router(hub, Arc::new(provider));
        let body = r#"{"task_uuid":"t-1","status":"completed","result_image_url":"https://cdn.example/a.png"}"#;
        let answer = app.clone().oneshot(post_body(body)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let again = app.clone().oneshot(post_body(body)).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(events.next().await.unwrap().task_id, "t-1");

        let junk = app.clone().oneshot(post_body("hello")).await.unwrap();
        assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
        let huge = app
            .oneshot(post_body(vec![b' '; MAX_BODY_BYTES + 1]))
            .await
            .unwrap();
        assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn any_path_hears_callbacks_wherever_the_proxy_sends_them() {
        let hub = WebhookHub::new();
        let mut events = hub.subscribe();
        let provider = imggen_runblob::provider::RunblobProvider::new(
            imggen_runblob::Client::builder()
                .api_key("sk-test")
                .build()
                .unwrap(),
        );
        let app = any_path(hub, vec![Arc::new(provider)]);
        let body = r#"{"task_uuid":"t-2","status":"failed","message":"declined"}"#;
        let hooked = Request::post("/hooks/imggen?from=tunnel")
            .body(Body::from(body))
            .unwrap();
        assert_eq!(
            app.clone().oneshot(hooked).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(events.next().await.unwrap().task_id, "t-2");
        let junk = app.clone().oneshot(post_body("{}")).await.unwrap();
        assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
        let get = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(
            app.oneshot(get).await.unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
