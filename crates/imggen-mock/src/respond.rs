//! Building answers: JSON bodies, and the neutral shapes of the mock's own endpoints.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `body` as JSON with `status`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(error) => {
            tracing::error!("serializing an answer failed: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The neutral error shape of paths no provider has and of the mock's own endpoints:
/// `{"error": "not_found", "message": "…"}`.
pub(crate) fn neutral(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(
        status,
        &serde_json::json!({ "error": code, "message": message.into() }),
    )
}

/// Adds `Retry-After: <secs>`.
pub(crate) fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// An answer that ends a handler early (a 4xx, say), boxed because a `Response` is large.
pub(crate) struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(response: Response) -> Self {
        Reject(Box::new(response))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}
