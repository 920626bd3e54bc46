//! runblob: exact shapes, lifecycle, validation, per-key visibility, list.

use serde_json::json;

use crate::{KEY, OTHER_KEY, TASK_TIME, config, runblob_body, start};

const CREATE: &str = "/v1/chatgpt-images/generate";

#[tokio::test]
async fn create_is_a_201_with_a_string_price_and_the_task_runs_its_documented_lifecycle() {
    let mock = start(config()).await;
    let created = mock
        .post(
            CREATE,
            KEY,
            json!({"prompt": "A futuristic city", "aspect_ratio": "3:4"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let body = created.json();
    insta::assert_json_snapshot!("runblob_create", body, {".task_uuid" => "[uuid]"});
    let uuid = body["task_uuid"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);

    let path = format!("/v1/chatgpt-images/generations/{uuid}");
    let status = |answer: crate::Answer| answer.json()["status"].clone();
    assert_eq!(status(mock.get(&path, KEY).await), "pending");
    mock.server.advance(TASK_TIME / 2).await;
    let processing = mock.get(&path, KEY).await.json();
    assert_eq!(processing["status"], "processing");
    assert_eq!(processing["result_image_url"], serde_json::Value::Null);
    mock.server.advance(TASK_TIME / 2).await;
    let completed = mock.get(&path, KEY).await;
    assert_eq!(completed.status, 200);
    let completed = completed.json();
    let url = completed["result_image_url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        format!("{}/files/runblob/{uuid}/0.png", mock.server.url())
    );
    insta::assert_json_snapshot!("runblob_completed", completed, {
        ".task_uuid" => "[uuid]",
        ".result_image_url" => "[url]",
    });

    let (status, content_type, png) = mock.download(&url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("image/png"));
    // 3:4 at a 256 px long side.
    assert_eq!(crate::png_size(&png), (192, 256));
}

#[tokio::test]
async fn without_a_ratio_the_image_is_square() {
    let mock = start(config().profile(imggen_mock::Profile::INSTANT)).await;
    let created = mock
        .post(CREATE, KEY, runblob_body("Auto ratio"))
        .await
        .json();
    let uuid = created["task_uuid"].as_str().unwrap();
    let done = mock
        .get(&format!("/v1/chatgpt-images/generations/{uuid}"), KEY)
        .await
        .json();
    assert_eq!(done["status"], "completed");
    let (_, _, png) = mock
        .download(done["result_image_url"].as_str().unwrap())
        .await;
    assert_eq!(crate::png_size(&png), (256, 256));
}

#[tokio::test]
async fn keys_are_required_and_each_sees_only_its_own_tasks() {
    let mock = start(config()).await;
    let unauthorized = json!({"error": "Unauthorized", "message": "Invalid API key"});
    let missing = mock
        .post_raw(CREATE, None, runblob_body("x").to_string())
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.json()),
        (401, unauthorized.clone())
    );
    let response = mock
        .http
        .post(mock.url(CREATE))
        .header("authorization", "Token abc")
        .json(&runblob_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let created = mock.post(CREATE, KEY, runblob_body("mine")).await.json();
    let path = format!(
        "/v1/chatgpt-images/generations/{}",
        created["task_uuid"].as_str().unwrap()
    );
    assert_eq!(mock.get(&path, KEY).await.status, 200);
    let other = mock.get(&path, OTHER_KEY).await;
    assert_eq!(
        (other.status.as_u16(), other.json()),
        (404, json!({"detail": "Task not found"}))
    );
    let unknown = mock
        .get(
            "/v1/chatgpt-images/generations/dc62d83d-1953-4bca-8554-222679a7a4a9",
            KEY,
        )
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.json()),
        (404, json!({"detail": "Task not found"}))
    );
}

#[tokio::test]
async fn a_fixed_key_turns_every_other_key_away() {
    let mock = start(config().api_key(KEY)).await;
    assert_eq!(mock.post(CREATE, KEY, runblob_body("x")).await.status, 201);
    assert_eq!(
        mock.post(CREATE, OTHER_KEY, runblob_body("x")).await.status,
        401
    );
}

#[tokio::test]
async fn documented_limits_are_400s_in_the_detail_shape() {
    let mock = start(config()).await;
    let png = imggen_types::media::data_uri(
        imggen_types::media::ImageFormat::Png,
        &imggen_mock::render_png("ref", 0, 4, 4),
    );
    let cases = [
        (
            json!({"prompt": ""}),
            "Validation error: prompt: must not be empty or only whitespace",
        ),
        (
            json!({"prompt": "a".repeat(4001)}),
            "Validation error: prompt: is 4001 characters long; the maximum is 4000",
        ),
        (
            json!({"prompt": "x", "aspect_ratio": "7:3"}),
            "Validation error: aspect_ratio: \"7:3\" is not accepted by runblob; allowed: 1:1, 4:3, 3:4, 3:2, 2:3, 16:9, 9:16, 21:9, 4:5",
        ),
        (
            json!({"prompt": "x", "images": vec!["https://example.com/1.jpg"; 5]}),
            "Validation error: images: has 5 images; the maximum is 4",
        ),
        (
            json!({"prompt": "x", "images": ["!!!not-base64!!!"]}),
            "Validation error: images[0]: is not valid base64",
        ),
        (
            json!({"prompt": "x", "images": ["data:image/gif;base64,R0lGODlhAQABAAAAACw="]}),
            "Validation error: images[0]: data URI of type \"image/gif\" is not accepted; allowed: image/jpeg, image/png, image/webp",
        ),
        (
            json!({"prompt": "x", "images": [png.clone().replace("image/png", "image/jpeg")]}),
            "Validation error: images[0]: data URI says image/jpeg but the bytes are image/png",
        ),
        (
            json!({"prompt": "x", "callback_url": "http://example.com/hook"}),
            "Validation error: callback_url: \"http://example.com/hook\" has scheme \"http\"; allowed: an https:// URL",
        ),
        (
            json!({"prompt": "x", "model": "gpt-9"}),
            "Validation error: model: \"gpt-9\" is not accepted by runblob; allowed: gpt-5-2, chatgpt-2.5",
        ),
    ];
    for (body, detail) in cases {
        let answer = mock.post(CREATE, KEY, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json(), json!({ "detail": detail }), "{body}");
    }
    // What the documentation and later versions accept.
    for body in [
        json!({"prompt": "x", "aspect_ratio": "16:9", "model": "chatgpt-2.5", "quality": "flare", "background": "transparent"}),
        json!({"prompt": "x", "images": ["https://example.com/a.jpg", png]}),
        json!({"prompt": "🖼".repeat(4000)}),
    ] {
        let answer = mock.post(CREATE, KEY, body.clone()).await;
        assert_eq!(answer.status, 201, "{body}: {}", answer.text);
    }
    assert_eq!(
        mock.ledger("").await.len(),
        3,
        "only the accepted creates were charged"
    );
}

#[tokio::test]
async fn bodies_that_are_not_the_documented_json_are_fastapi_422s() {
    let mock = start(config()).await;
    let not_json = mock
        .post_raw(CREATE, Some(KEY), "{\"prompt\": ".into())
        .await;
    assert_eq!(not_json.status, 422);
    assert_eq!(
        not_json.json(),
        json!({"detail": [{"loc": ["body", 10], "msg": "JSON decode error", "type": "json_invalid"}]})
    );
    let missing = mock
        .post(CREATE, KEY, json!({"aspect_ratio": "1:1", "images": "x"}))
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.json(),
        json!({"detail": [
            {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "images"], "msg": "Input should be a valid list", "type": "list_type"},
        ]})
    );
    let array = mock.post(CREATE, KEY, json!(["prompt"])).await;
    assert_eq!(array.status, 422);
    assert_eq!(array.json()["detail"][0]["type"], "model_attributes_type");
    assert!(mock.ledger("").await.is_empty());
}

#[tokio::test]
async fn the_list_returns_the_keys_generations_newest_first() {
    let mock = start(config()).await;
    for prompt in ["first", "second", "third"] {
        assert_eq!(
            mock.post(CREATE, KEY, runblob_body(prompt)).await.status,
            201
        );
    }
    mock.post(CREATE, OTHER_KEY, runblob_body("someone else's"))
        .await;
    let all = mock.get("/v1/chatgpt-images/generations", KEY).await.json();
    let prompts: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["third", "second", "first"]);
    let page = mock
        .get("/v1/chatgpt-images/generations?limit=1&offset=1", KEY)
        .await
        .json();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["prompt"], "second");
    let bad = mock
        .get("/v1/chatgpt-images/generations?limit=ten", KEY)
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["detail"][0]["loc"], json!(["query", "limit"]));
}

#[tokio::test]
async fn reference_images_of_several_megabytes_are_read_whole() {
    let mock = start(config()).await;
    // A 3 MB JPEG (its header, then padding): over axum's default body limit as base64.
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
    jpeg.resize(3 * 1024 * 1024, 0);
    let uri = imggen_types::media::data_uri(imggen_types::media::ImageFormat::Jpeg, &jpeg);
    let answer = mock
        .post(CREATE, KEY, json!({"prompt": "x", "images": [uri]}))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}
