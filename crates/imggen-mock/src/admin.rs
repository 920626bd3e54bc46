//! The mock's own endpoints, all under `/_mock/` (a prefix none of the real services uses):
//! health, ledger, webhooks, faults, balances, tasks, clock, reset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use imggen_types::{Credits, Usd};
use serde::Deserialize;
use serde_json::json;

use crate::config::Balance;
use crate::faults::Fault;
use crate::keys::key_label;
use crate::provider::Provider;
use crate::respond::{json, neutral};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/health", get(health))
        .route("/_mock/ledger", get(ledger))
        .route("/_mock/webhooks", get(webhooks))
        .route(
            "/_mock/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_mock/balances", get(balances).post(set_balances))
        .route("/_mock/tasks", get(tasks))
        .route("/_mock/requests", get(requests))
        .route("/_mock/clock/advance", post(advance))
        .route("/_mock/reset", post(reset))
}

type Params = Query<HashMap<String, String>>;

fn bad_request(message: impl Into<String>) -> Response {
    neutral(StatusCode::BAD_REQUEST, "bad_request", message)
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    json(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "profile": shared.config.profile.to_string(),
            "clock": if shared.clock.is_manual() { "manual" } else { "real" },
            "now": crate::clock::iso8601(shared.clock.wall()),
        }),
    )
}

/// `?key=<full key>`, `?provider=`, `?task_id=` filter the entries.
async fn ledger(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let provider = match params.get("provider").map(|name| name.parse::<Provider>()) {
        Some(Err(error)) => return bad_request(error.to_string()),
        Some(Ok(provider)) => Some(provider),
        None => None,
    };
    let entries: Vec<_> = shared
        .lock()
        .ledger
        .entries(params.get("key").map(String::as_str))
        .into_iter()
        .filter(|entry| provider.is_none_or(|provider| entry.provider == provider))
        .filter(|entry| params.get("task_id").is_none_or(|id| &entry.task_id == id))
        .collect();
    json(StatusCode::OK, &entries)
}

async fn webhooks(State(shared): State<Arc<Shared>>) -> Response {
    let list = shared.lock().webhooks.list(&shared.clock);
    json(StatusCode::OK, &list)
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    let list = shared.lock().faults.list(&shared.clock);
    json(StatusCode::OK, &list)
}

/// One fault object or an array of them; all are checked before any is armed.
async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<serde_json::Value>),
        One(serde_json::Value),
    }
    let values = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::Many(values)) => values,
        Ok(OneOrMany::One(value)) => vec![value],
        Err(error) => return bad_request(format!("the body is not JSON: {error}")),
    };
    let mut faults = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let fault: Fault = match serde_json::from_value(value) {
            Ok(fault) => fault,
            Err(error) => return bad_request(format!("fault {index}: {error}")),
        };
        if let Err(error) = fault.check() {
            return bad_request(format!("fault {index}: {error}"));
        }
        faults.push(fault);
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let mut ids = Vec::new();
    for fault in faults {
        match state.faults.add(fault, now) {
            Ok(id) => ids.push(id),
            Err(error) => return bad_request(error.to_string()),
        }
    }
    let added: Vec<_> = state
        .faults
        .list(&shared.clock)
        .into_iter()
        .filter(|info| ids.contains(&info.id))
        .collect();
    json(StatusCode::CREATED, &added)
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `?key=<full key>`.
async fn balances(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let Some(key) = params.get("key") else {
        return bad_request("add ?key=<the full API key>");
    };
    let balances = shared.balances(key);
    json(
        StatusCode::OK,
        &json!({
            "key": key_label(key),
            "runblob": balances.runblob,
            "gptimg": balances.gptimg,
            "runbase": balances.runbase,
        }),
    )
}

/// `{"key": "...", "runblob": "0.01", "gptimg": 1, "runbase": "0.02"}`, any subset of the three.
async fn set_balances(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct SetBalances {
        key: String,
        runblob: Option<Usd>,
        gptimg: Option<Credits>,
        runbase: Option<Usd>,
    }
    let request: SetBalances = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return bad_request(format!(
                "expected {{\"key\": \"...\", \"runblob\": \"0.01\", \"gptimg\": 1, \"runbase\": \"0.02\"}}: {error}"
            ));
        }
    };
    for balance in [
        request.runblob.map(Balance::Runblob),
        request.gptimg.map(Balance::Gptimg),
        request.runbase.map(Balance::Runbase),
    ]
    .into_iter()
    .flatten()
    {
        shared.set_balance(&request.key, balance);
    }
    balances(
        State(shared),
        Query(HashMap::from([("key".to_owned(), request.key)])),
    )
    .await
}

/// Counts of the requests that reached the provider endpoints, by status, and the latest ones.
async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().requests.clone();
    json(StatusCode::OK, &stats)
}

async fn tasks(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.task_infos())
}

/// `?ms=<milliseconds>` or `{"ms": …}`: moves the mock's clock and waits for the webhooks it
/// made due.
async fn advance(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct Advance {
        ms: u64,
    }
    let ms = match params.get("ms") {
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) => ms,
            Err(_) => {
                return bad_request(format!("ms: {ms:?} is not a whole number of milliseconds"));
            }
        },
        None => match serde_json::from_slice::<Advance>(&body) {
            Ok(advance) => advance.ms,
            Err(_) => return bad_request("send ?ms=<milliseconds> or {\"ms\": <milliseconds>}"),
        },
    };
    shared.advance(Duration::from_millis(ms)).await;
    json(
        StatusCode::OK,
        &json!({
            "advanced_ms": ms,
            "elapsed_ms": u64::try_from(shared.clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            "now": crate::clock::iso8601(shared.clock.wall()),
        }),
    )
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    json(StatusCode::OK, &json!({ "status": "reset" }))
}
