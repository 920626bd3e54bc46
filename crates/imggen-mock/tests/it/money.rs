//! Money: charges at create, refunds on failure, 402s in each provider's shape, the ledger.

use imggen_mock::{Amount, Balance, EntryKind, Fault, FaultKind, Operation, Provider};
use imggen_types::{Credits, Usd};
use serde_json::json;

use crate::{KEY, OTHER_KEY, TASK_TIME, config, encode, runblob_body, start};

fn usd(text: &str) -> Usd {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_failed_task_is_charged_at_create_and_refunded_when_it_fails() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "OPENAI_DECLINED".into(),
            })
            .provider(Provider::Runblob),
        )
        .unwrap();
    let created = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("doomed"))
        .await
        .json();
    let uuid = created["task_uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        mock.server.balances(KEY).runblob,
        usd("999.9877"),
        "charged at create"
    );
    let ledger = mock.ledger("").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["kind"], "charge");

    mock.server.advance(TASK_TIME).await;
    let failed = mock
        .get(&format!("/v1/chatgpt-images/generations/{uuid}"), KEY)
        .await
        .json();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["message"], "OPENAI_DECLINED");
    assert_eq!(failed["result_image_url"], serde_json::Value::Null);

    let ledger = mock.ledger(&format!("?task_id={uuid}")).await;
    let kinds: Vec<(&str, &str)> = ledger
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap(),
                entry["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("charge", "0.0123"), ("refund", "0.0123")]);
    assert_eq!(ledger[1]["seq"], 2);
    assert_eq!(ledger[1]["unit"], "USD");
    assert_eq!(ledger[1]["key"], imggen_mock::key_label(KEY));
    assert_eq!(
        mock.server.balances(KEY).runblob,
        usd("1000"),
        "refunded in full"
    );
    // The failed task has no file.
    let missing = mock
        .get_public(&format!("/files/runblob/{uuid}/0.png"))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn refunds_for_gptimg_credits_and_runbase_dollars() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "MODERATION_FAILED".into(),
            })
            .always(),
        )
        .unwrap();
    let task = mock
        .post(
            "/api/v1/images/generate",
            KEY,
            json!({"prompt": "x", "n": 3}),
        )
        .await
        .json();
    let task_id = task["data"]["task_id"].as_str().unwrap().to_owned();
    let run = mock
        .post(
            "/api/v1/runs",
            KEY,
            json!({"model": "openai/gpt-image-1.5", "input": {"prompt": "x", "quality": "high"}}),
        )
        .await
        .json();
    let run_id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(mock.server.balances(KEY).gptimg, Credits(100_000 - 6));
    assert_eq!(mock.server.balances(KEY).runbase, usd("999.84"));

    mock.server.advance(TASK_TIME).await;
    let failed = mock
        .get(&format!("/api/v1/images/task/{task_id}"), KEY)
        .await
        .json();
    assert_eq!(failed["data"]["status"], "failed");
    assert_eq!(failed["data"]["error"]["code"], "MODERATION_FAILED");
    assert_eq!(failed["data"]["images"], serde_json::Value::Null);
    let failed_run = mock
        .get(&format!("/api/v1/runs/{run_id}"), KEY)
        .await
        .json();
    assert_eq!(failed_run["status"], "failed");
    assert_eq!(failed_run["error"], "MODERATION_FAILED");
    assert!(failed_run["completedAt"].is_string());

    let ledger = mock.server.ledger();
    let summary: Vec<(Provider, EntryKind, Amount)> = ledger
        .iter()
        .map(|entry| (entry.provider, entry.kind, entry.amount))
        .collect();
    assert_eq!(
        summary,
        [
            (
                Provider::Gptimg,
                EntryKind::Charge,
                Amount::Credits(Credits(6))
            ),
            (
                Provider::Runbase,
                EntryKind::Charge,
                Amount::Usd(usd("0.16"))
            ),
            (
                Provider::Gptimg,
                EntryKind::Refund,
                Amount::Credits(Credits(6))
            ),
            (
                Provider::Runbase,
                EntryKind::Refund,
                Amount::Usd(usd("0.16"))
            ),
        ]
    );
    let json = mock.ledger("?provider=gptimg").await;
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["amount"], 6, "credits are an integer");
    assert_eq!(json[0]["unit"], "credits");
    assert_eq!(mock.server.balances(KEY).gptimg, Credits(100_000));
    assert_eq!(mock.server.balances(KEY).runbase, usd("1000"));
}

#[tokio::test]
async fn a_dropped_create_is_charged_once_and_its_task_still_runs() {
    let mock = start(config()).await;
    mock.server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Runblob)
                .operation(Operation::Create),
        )
        .unwrap();
    let lost = mock
        .http
        .post(mock.url("/v1/chatgpt-images/generate"))
        .bearer_auth(KEY)
        .json(&runblob_body("lost answer"))
        .send()
        .await;
    assert!(
        lost.is_err(),
        "the connection closed without an answer: {lost:?}"
    );

    let charges = mock.ledger("").await;
    assert_eq!(charges.len(), 1, "charged exactly once");
    let task_id = charges[0]["task_id"].as_str().unwrap().to_owned();
    mock.server.advance(TASK_TIME).await;
    // The task is real: the key that paid for it can find it and its image.
    let listed = mock.get("/v1/chatgpt-images/generations", KEY).await.json();
    assert_eq!(listed[0]["task_uuid"], task_id.as_str());
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(mock.ledger("").await.len(), 1, "and never refunded");
}

#[tokio::test]
async fn a_short_balance_is_a_402_in_each_providers_shape_and_nothing_is_charged() {
    let mock = start(config()).await;
    mock.server.set_balance(KEY, Balance::Runblob(usd("0.01")));
    mock.server.set_balance(KEY, Balance::Gptimg(Credits(3)));
    mock.server.set_balance(KEY, Balance::Runbase(usd("0.04")));

    let runblob = mock
        .post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
        .await;
    assert_eq!(
        (runblob.status.as_u16(), runblob.json()),
        (402, json!({"detail": "INSUFFICIENT_CREDITS"}))
    );

    let gptimg = mock
        .post(
            "/api/v1/images/generate",
            KEY,
            json!({"prompt": "x", "n": 2}),
        )
        .await;
    assert_eq!(gptimg.status, 402);
    let error = gptimg.json()["error"].clone();
    assert_eq!(error["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(
        (error["required"].clone(), error["available"].clone()),
        (json!(4), json!(3))
    );
    // One image (2 credits) still fits.
    assert_eq!(
        mock.post("/api/v1/images/generate", KEY, json!({"prompt": "x"}))
            .await
            .status,
        200
    );

    let runbase = mock
        .post(
            "/api/v1/runs",
            KEY,
            json!({"model": "openai/gpt-image-1", "input": {"prompt": "x"}}),
        )
        .await;
    assert_eq!(runbase.status, 402);
    assert_eq!(runbase.json()["error"]["code"], "insufficient_balance");

    assert_eq!(
        mock.ledger("").await.len(),
        1,
        "only the create that fitted was charged"
    );
    assert_eq!(mock.server.balances(KEY).gptimg, Credits(1));
    // Another key starts with the configured balances.
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", OTHER_KEY, runblob_body("x"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn balances_and_the_ledger_can_be_read_and_set_over_http_by_key() {
    let mock = start(config().runblob_price(usd("0.05"))).await;
    let set = mock
        .http
        .post(mock.url("/_mock/balances"))
        .json(&json!({"key": KEY, "runblob": "0.10", "gptimg": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let balances: serde_json::Value = set.json().await.unwrap();
    assert_eq!(
        balances,
        json!({"key": imggen_mock::key_label(KEY), "runblob": "0.10", "gptimg": 2, "runbase": "1000"})
    );

    for _ in 0..2 {
        assert_eq!(
            mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
                .await
                .json()["price"],
            "0.05"
        );
    }
    assert_eq!(
        mock.post("/v1/chatgpt-images/generate", KEY, runblob_body("x"))
            .await
            .status,
        402
    );
    mock.post("/v1/chatgpt-images/generate", OTHER_KEY, runblob_body("x"))
        .await;

    let mine = mock.ledger(&format!("?key={}", encode(KEY))).await;
    assert_eq!(mine.len(), 2);
    assert!(
        mine.iter()
            .all(|entry| entry["key"] == imggen_mock::key_label(KEY).as_str())
    );
    assert_eq!(mock.ledger("").await.len(), 3);
    let all = mock.get_public("/_mock/ledger").await.text;
    assert!(
        !all.contains(KEY) && !all.contains(OTHER_KEY),
        "keys are shown as labels only"
    );
    let left = mock
        .get_public(&format!("/_mock/balances?key={}", encode(KEY)))
        .await
        .json();
    assert_eq!(left["runblob"], "0.00");
}
