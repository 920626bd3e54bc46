//! Result images: real PNGs, deterministic, sized by ratio, served once complete; and 100
//! tasks at once.

use imggen_mock::{ImageSize, Profile};
use imggen_types::media::{ImageFormat, sniff};
use serde_json::json;

use crate::{KEY, OTHER_KEY, TASK_TIME, config, png_size, start};

/// The files of a two-image gptimg task.
async fn images(mock: &crate::Mock, key: &str, prompt: &str) -> Vec<Vec<u8>> {
    let task = mock
        .post(
            "/api/v1/images/generate",
            key,
            json!({"prompt": prompt, "n": 2}),
        )
        .await
        .json();
    let id = task["data"]["task_id"].as_str().unwrap().to_owned();
    let done = mock
        .get(&format!("/api/v1/images/task/{id}"), key)
        .await
        .json();
    let mut files = Vec::new();
    for image in done["data"]["images"].as_array().unwrap() {
        files.push(mock.download(image["url"].as_str().unwrap()).await.2);
    }
    files
}

#[tokio::test]
async fn the_same_prompt_gives_the_same_bytes_and_another_prompt_does_not() {
    let first = start(config().profile(Profile::INSTANT)).await;
    let second = start(config().profile(Profile::INSTANT)).await;
    let a = images(&first, KEY, "A red fox in the snow").await;
    let b = images(&second, OTHER_KEY, "A red fox in the snow").await;
    assert_eq!(
        a, b,
        "same prompt, same bytes, whatever the server, key or task"
    );
    assert_ne!(a[0], a[1], "each image of a task differs");
    let c = images(&first, KEY, "A blue fox in the snow").await;
    assert_ne!(a[0], c[0]);
    assert_eq!(
        a[0],
        imggen_mock::render_png("A red fox in the snow", 0, 256, 256)
    );
}

#[tokio::test]
async fn full_size_images_have_the_documented_dimensions() {
    let mock = start(
        config()
            .profile(Profile::INSTANT)
            .image_size(ImageSize::Full),
    )
    .await;
    let created = mock
        .post(
            "/v1/chatgpt-images/generate",
            KEY,
            json!({"prompt": "x", "aspect_ratio": "4:3"}),
        )
        .await
        .json();
    let done = mock
        .get(
            &format!(
                "/v1/chatgpt-images/generations/{}",
                created["task_uuid"].as_str().unwrap()
            ),
            KEY,
        )
        .await
        .json();
    let (_, _, png) = mock
        .download(done["result_image_url"].as_str().unwrap())
        .await;
    assert_eq!(png_size(&png), (1536, 1152));
    let info = sniff(&png).unwrap();
    assert_eq!(info.format, ImageFormat::Png);

    let run = mock.post("/api/v1/runs", KEY, json!({"model": "openai/gpt-image-2", "input": {"prompt": "x", "resolution": "2K", "aspect_ratio": "16:9"}})).await.json();
    let run = mock
        .get(
            &format!("/api/v1/runs/{}", run["id"].as_str().unwrap()),
            KEY,
        )
        .await
        .json();
    let (_, _, png) = mock
        .download(run["output"]["urls"][0].as_str().unwrap())
        .await;
    assert_eq!(png_size(&png), (2048, 1152));
}

#[tokio::test]
async fn files_exist_only_once_the_task_has_completed() {
    let mock = start(config()).await;
    let created = mock
        .post("/v1/chatgpt-images/generate", KEY, json!({"prompt": "x"}))
        .await
        .json();
    let file = format!(
        "/files/runblob/{}/0.png",
        created["task_uuid"].as_str().unwrap()
    );
    let early = mock.get_public(&file).await;
    assert_eq!(early.status, 404);
    assert_eq!(
        early.json(),
        json!({"error": "not_found", "message": "the task has not completed yet"})
    );
    mock.server.advance(TASK_TIME).await;
    assert_eq!(mock.get_public(&file).await.status, 200);
    for missing in [
        file.replace("/0.png", "/1.png"),
        file.replace("/0.png", "/0.jpg"),
        file.replace("/runblob/", "/gptimg/"),
        "/files/nobody/x/0.png".to_owned(),
    ] {
        assert_eq!(mock.get_public(&missing).await.status, 404, "{missing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_created_at_once_all_complete_and_download() {
    let mock = std::sync::Arc::new(start(config()).await);
    let creates = (0..100).map(|i| {
        let mock = std::sync::Arc::clone(&mock);
        tokio::spawn(async move {
            let answer = mock
                .post(
                    "/api/v1/images/generate",
                    KEY,
                    json!({"prompt": format!("Task number {i}")}),
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            answer.json()["data"]["task_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    });
    let mut ids = Vec::new();
    for create in creates.collect::<Vec<_>>() {
        ids.push(create.await.unwrap());
    }
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 100, "every id is distinct");
    assert_eq!(mock.ledger("").await.len(), 100);
    assert_eq!(mock.server.balances(KEY).gptimg.0, 100_000 - 200);

    mock.server.advance(TASK_TIME).await;
    let polls = ids.into_iter().map(|id| {
        let mock = std::sync::Arc::clone(&mock);
        tokio::spawn(async move {
            let task = mock
                .get(&format!("/api/v1/images/task/{id}"), KEY)
                .await
                .json();
            assert_eq!(task["data"]["status"], "completed");
            let url = task["data"]["images"][0]["url"]
                .as_str()
                .unwrap()
                .to_owned();
            let (status, _, png) = mock.download(&url).await;
            assert_eq!(status, 200);
            png_size(&png)
        })
    });
    for poll in polls.collect::<Vec<_>>() {
        assert_eq!(poll.await.unwrap(), (256, 256));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_downloads_of_one_file_get_identical_bytes() {
    let mock = std::sync::Arc::new(start(config().profile(Profile::INSTANT)).await);
    let created = mock
        .post(
            "/v1/chatgpt-images/generate",
            KEY,
            json!({"prompt": "shared"}),
        )
        .await
        .json();
    let url = mock.url(&format!(
        "/files/runblob/{}/0.png",
        created["task_uuid"].as_str().unwrap()
    ));
    let downloads: Vec<_> = (0..20)
        .map(|_| {
            let (mock, url) = (std::sync::Arc::clone(&mock), url.clone());
            tokio::spawn(async move { mock.download(&url).await.2 })
        })
        .collect();
    let mut files = Vec::new();
    for download in downloads {
        files.push(download.await.unwrap());
    }
    assert!(files.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(files[0], imggen_mock::render_png("shared", 0, 256, 256));
}
