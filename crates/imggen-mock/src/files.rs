//! Result files: `/files/<provider>/<task>/<index>.png`, public links as a CDN serves them
//! (no key), available once the task has completed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::provider::Provider;
use crate::respond::neutral;
use crate::state::Shared;
use crate::tasks::Phase;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/files/{provider}/{task}/{file}", get(file))
}

async fn file(
    State(shared): State<Arc<Shared>>,
    Path((provider, task_id, file)): Path<(String, String, String)>,
) -> Response {
    let not_found = |why: &str| neutral(StatusCode::NOT_FOUND, "not_found", why);
    let Ok(provider) = provider.parse::<Provider>() else {
        return not_found("no such file");
    };
    let Some(index) = file
        .strip_suffix(".png")
        .and_then(|index| index.parse::<u32>().ok())
    else {
        return not_found("no such file");
    };
    let Some(task) = shared.task(provider, &task_id) else {
        return not_found("no such file");
    };
    match task.phase(shared.clock.now()) {
        Phase::Completed => {}
        Phase::Failed => return not_found("the task failed; it has no images"),
        Phase::Pending | Phase::Processing => return not_found("the task has not completed yet"),
    }
    if index >= task.images {
        return not_found("no such file");
    }
    let key = (provider, task.id.clone(), index);
    match shared
        .images
        .get_or_render(key, task.prompt.clone(), task.width, task.height)
        .await
    {
        Ok(png) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400, immutable"),
                ),
            ],
            png,
        )
            .into_response(),
        Err(error) => {
            tracing::error!("rendering {provider}/{task_id}/{index}.png failed: {error}");
            neutral(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "rendering the image failed",
            )
        }
    }
}
