//! The seed pages' examples (`/work/shared/seeds/`), replayed as the same raw HTTP — same
//! methods, paths, headers and bodies — with only the host and key changed.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::{KEY, config, start};

/// `curl -X METHOD URL -H "Authorization: Bearer KEY" -H "Content-Type: application/json" -d BODY`
async fn curl(mock: &crate::Mock, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let url = mock.url(path);
    let mut request = match method {
        "POST" => mock.http.post(url),
        _ => mock.http.get(url),
    }
    .header("Authorization", format!("Bearer {KEY}"));
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The seed's `wait_for_completion`: poll until a terminal status, moving the mock's clock
/// where the seed sleeps `poll_interval`.
async fn wait_runblob(mock: &crate::Mock, task_uuid: &str) -> String {
    for _ in 0..100 {
        let (status, result) = curl(
            mock,
            "GET",
            &format!("/v1/chatgpt-images/generations/{task_uuid}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        match result["status"].as_str().unwrap() {
            "completed" => return result["result_image_url"].as_str().unwrap().to_owned(),
            "failed" => panic!("Generation failed: {}", result["message"]),
            _ => mock.server.advance(Duration::from_secs(10)).await,
        }
    }
    panic!("never completed");
}

#[tokio::test]
async fn runblob_curl_examples() {
    let mock = start(config()).await;
    let simple = r#"{
  "prompt": "A futuristic city with flying cars, neon lights, cyberpunk style"
}"#;
    let (status, created) = curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(simple)).await;
    assert_eq!(status, 201);
    assert_eq!(
        (created["status"].as_str(), created["price"].as_str()),
        (Some("pending"), Some("0.0123"))
    );

    let ratio = r#"{
  "prompt": "A beautiful portrait in studio lighting",
  "aspect_ratio": "3:4"
}"#;
    assert_eq!(
        curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(ratio))
            .await
            .0,
        201
    );

    let urls = r#"{
  "prompt": "Combine these images into a beautiful collage",
  "aspect_ratio": "4:3",
  "images": [
    "https://example.com/image1.jpg",
    "https://example.com/image2.jpg",
    "https://example.com/image3.jpg"
  ]
}"#;
    assert_eq!(
        curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(urls))
            .await
            .0,
        201
    );

    // The seed elides its base64 payloads ("/9j/4AAQSkZJRg..."): sent as printed, they are
    // not base64, and the documented 400 says so…
    let elided = r#"{
  "prompt": "Create a story from these moments",
  "images": [
    "data:image/jpeg;base64,/9j/4AAQSkZJRg...",
    "data:image/png;base64,iVBORw0KGgoAAAANS..."
  ],
  "callback_url": "https://your-app.com/webhooks/chatgpt-images"
}"#;
    let (status, error) = curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(elided)).await;
    assert_eq!(status, 400);
    assert_eq!(
        error["detail"],
        "Validation error: images[0]: is not valid base64"
    );
    // …and with the payloads written out in full, the same request is accepted.
    let full = elided
        .replace(
            "/9j/4AAQSkZJRg...",
            &base64::engine::general_purpose::STANDARD.encode(JPEG),
        )
        .replace(
            "iVBORw0KGgoAAAANS...",
            &base64::engine::general_purpose::STANDARD
                .encode(imggen_mock::render_png("moment", 0, 8, 8)),
        );
    let (status, story) = curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(&full)).await;
    assert_eq!(status, 201, "{story}");

    let (status, checked) = curl(
        &mock,
        "GET",
        &format!(
            "/v1/chatgpt-images/generations/{}",
            created["task_uuid"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        checked["prompt"],
        "A futuristic city with flying cars, neon lights, cyberpunk style"
    );
    // The seed's own task id is someone else's: not found.
    let (status, _) = curl(
        &mock,
        "GET",
        "/v1/chatgpt-images/generations/dc62d83d-1953-4bca-8554-222679a7a4a9",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The callback goes to your-app.com: recorded, not sent from a test.
    mock.server.advance(Duration::from_secs(10)).await;
    let hooks = mock.server.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url, "https://your-app.com/webhooks/chatgpt-images");
    assert_eq!(hooks[0].task_id, story["task_uuid"].as_str().unwrap());
}

/// The smallest JPEG header runblob's format check reads.
const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff,
    0xd9,
];

#[tokio::test]
async fn runblob_python_client_flows() {
    let mock = start(config()).await;
    // client.generate("A beautiful landscape with mountains") + wait_for_completion
    let (_, result) = curl(
        &mock,
        "POST",
        "/v1/chatgpt-images/generate",
        Some(r#"{"prompt": "A beautiful landscape with mountains"}"#),
    )
    .await;
    let image_url = wait_runblob(&mock, result["task_uuid"].as_str().unwrap()).await;
    let (status, content_type, png) = mock.download(&image_url).await;
    assert_eq!(
        (status.as_u16(), content_type.as_deref()),
        (200, Some("image/png"))
    );
    assert_eq!(crate::png_size(&png), (256, 256));

    // client.generate("A portrait photo", aspect_ratio="3:4")
    let (_, result) = curl(
        &mock,
        "POST",
        "/v1/chatgpt-images/generate",
        Some(r#"{"prompt": "A portrait photo", "aspect_ratio": "3:4"}"#),
    )
    .await;
    wait_runblob(&mock, result["task_uuid"].as_str().unwrap()).await;

    // client.generate_with_references(..., images=[ref1, ref2], aspect_ratio="1:1")
    let body = r#"{"prompt": "Beautiful collage combining these styles", "images": ["https://example.com/ref1.jpg", "https://example.com/ref2.jpg"], "aspect_ratio": "1:1"}"#;
    let (_, result) = curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(body)).await;
    wait_runblob(&mock, result["task_uuid"].as_str().unwrap()).await;

    // ChatGPTImageAPI: result['task_uuid'], result['price']
    let (_, result) = curl(
        &mock,
        "POST",
        "/v1/chatgpt-images/generate",
        Some(r#"{"prompt": "A futuristic cyberpunk city"}"#),
    )
    .await;
    assert!(result["task_uuid"].is_string());
    assert_eq!(result["price"], "0.0123");
    let body = r#"{"prompt": "Combine these images", "aspect_ratio": "4:3", "images": ["https://example.com/ref1.jpg", "https://example.com/ref2.jpg"], "callback_url": "https://your-app.com/webhook"}"#;
    assert_eq!(
        curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(body))
            .await
            .0,
        201
    );

    // Upload Images as Base64: data URIs of a JPEG and a PNG file.
    let images = serde_json::json!([
        imggen_types::media::data_uri(imggen_types::media::ImageFormat::Jpeg, JPEG),
        imggen_types::media::data_uri(
            imggen_types::media::ImageFormat::Png,
            &imggen_mock::render_png("photo2", 0, 8, 8)
        ),
    ]);
    let body = serde_json::json!({"prompt": "Create a beautiful collage from these photos", "images": images}).to_string();
    let (status, result) = curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(&body)).await;
    assert_eq!(status, 201, "{result}");
    // Plain base64 (decoded as JPEG by default).
    let plain = base64::engine::general_purpose::STANDARD.encode(JPEG);
    let body = serde_json::json!({"prompt": "Plain", "images": [plain]}).to_string();
    assert_eq!(
        curl(&mock, "POST", "/v1/chatgpt-images/generate", Some(&body))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn gptimg_examples() {
    let mock = start(config()).await;
    let text_to_image = r#"{
"prompt": "A cinematic wide shot of a lone lighthouse on a cliff at sunset, oil painting style",
"aspect_ratio": "16:9",
"n": 1
}"#;
    let (status, created) = curl(
        &mock,
        "POST",
        "/api/v1/images/generate",
        Some(text_to_image),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(created["success"], true);
    assert_eq!(created["data"]["type"], "text-to-image");

    let image_to_image = r#"{
"prompt": "Restyle the subject as a watercolor painting with soft pastel tones",
"reference_images": [
"https://example.com/portrait.jpg"
],
"aspect_ratio": "3:4",
"n": 2
}"#;
    let (status, created) = curl(
        &mock,
        "POST",
        "/api/v1/images/generate",
        Some(image_to_image),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(created["data"]["type"], "image-to-image");

    let complete = r#"{
"prompt": "A minimalist product shot of a ceramic coffee cup, top-down view, soft shadow",
"aspect_ratio": "1:1",
"n": 2
}"#;
    let (_, created) = curl(&mock, "POST", "/api/v1/images/generate", Some(complete)).await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    let poll = format!("/api/v1/images/task/{task_id}");
    let task = loop {
        let (status, task) = curl(&mock, "GET", &poll, None).await;
        assert_eq!(status, 200);
        if task["data"]["status"] != "processing" {
            break task;
        }
        assert_eq!(task["data"]["images"], Value::Null);
        mock.server.advance(Duration::from_secs(15)).await;
    };
    assert_eq!(task["data"]["status"], "completed");
    for image in task["data"]["images"].as_array().unwrap() {
        assert_eq!(image["content_type"], "image/png");
        let (status, _, png) = mock.download(image["url"].as_str().unwrap()).await;
        assert_eq!((status.as_u16(), crate::png_size(&png)), (200, (256, 256)));
    }
}

#[tokio::test]
async fn runbase_examples() {
    let mock = start(config()).await;
    for model in ["openai/gpt-image-1", "openai/gpt-image-1.5"] {
        let body = format!(
            r#"{{
    "model": "{model}",
    "input": {{
      "prompt": "A cinematic product photo of a ceramic lamp"
    }}
  }}"#
        );
        let (status, run) = curl(&mock, "POST", "/api/v1/runs", Some(&body)).await;
        assert_eq!(status, 200, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let run = loop {
            let (status, run) = curl(&mock, "GET", &format!("/api/v1/runs/{id}"), None).await;
            assert_eq!(status, 200);
            if run["status"] == "succeeded" || run["status"] == "failed" {
                break run;
            }
            // The docs advise polling every 1–2 seconds.
            mock.server.advance(Duration::from_secs(2)).await;
        };
        assert_eq!(run["status"], "succeeded");
        let url = run["output"]["urls"][0].as_str().unwrap();
        assert_eq!(mock.download(url).await.0, 200);
    }
}
