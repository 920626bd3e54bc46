//! What the adapters put on the wire for one unified request, provider by provider, and what
//! `imggen providers --json` prints: snapshots, reviewed.

use std::sync::{Arc, Mutex};

use imggen_core::{GenerationRequest, Imggen, Reference, SubmitOptions};
use imggen_core::{imggen_gptimg, imggen_runbase, imggen_runblob};
use imggen_types::AspectRatio;
use mockito::Server;

const KEY: &str = "sk-wire-test-0123456789";

/// A JPEG header: all a reference check reads.
const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];

fn http() -> imggen_http::reqwest::Client {
    imggen_http::reqwest::Client::builder()
        .redirect(imggen_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Records the JSON bodies a mock received.
#[derive(Clone, Default)]
struct Bodies(Arc<Mutex<Vec<serde_json::Value>>>);

impl Bodies {
    fn recorder(&self) -> impl Fn(&mockito::Request) -> bool + Send + Sync + 'static {
        let bodies = Arc::clone(&self.0);
        move |request| {
            let body = request.body().map(|b| b.to_vec()).unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            bodies.lock().unwrap().push(json);
            true
        }
    }

    fn only(&self) -> serde_json::Value {
        let bodies = self.0.lock().unwrap();
        assert_eq!(bodies.len(), 1, "expected exactly one request body");
        bodies[0].clone()
    }
}

#[tokio::test]
async fn runblob_gets_every_setting_and_bytes_as_a_data_uri() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let create = server
        .mock("POST", "/v1/chatgpt-images/generate")
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_request(bodies.recorder())
        .with_status(201)
        .with_body(r#"{"task_uuid":"dc62d83d-1953-4bca-8554-222679a7a4a9","status":"pending","price":"0.0123"}"#)
        .expect(1)
        .create_async()
        .await;
    let client = imggen_runblob::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .build()
        .unwrap();
    let imggen = Imggen::builder()
        .strictness(imggen_core::Strictness::Exact)
        .provider(imggen_core::imggen_runblob::provider::RunblobProvider::new(
            client,
        ))
        .build()
        .unwrap();
    let mut request = GenerationRequest::new("Combine these images into a collage")
        .aspect_ratio(AspectRatio::Portrait3x4)
        .reference(Reference::url("https://example.com/ref1.jpg"))
        .reference(Reference::bytes(JPEG))
        .webhook("https://your-app.com/webhooks/chatgpt-images");
    imggen
        .set_option(&mut request, crate::RUNBLOB, "model", "chatgpt-2.5")
        .unwrap();
    imggen
        .set_option(&mut request, crate::RUNBLOB, "quality", "flare")
        .unwrap();
    imggen
        .set_option(&mut request, crate::RUNBLOB, "background", "transparent")
        .unwrap();

    let submission = imggen
        .submit(&request, &SubmitOptions::default())
        .await
        .unwrap();

    create.assert_async().await;
    insta::assert_json_snapshot!("runblob_create_body", bodies.only());
    let handle = &submission.handles[0];
    assert_eq!(handle.task_id, "dc62d83d-1953-4bca-8554-222679a7a4a9");
    assert_eq!(handle.cost.unwrap().to_string(), "$0.0123");
    assert_eq!(handle.model.as_deref(), Some("chatgpt-2.5"));
}

#[tokio::test]
async fn gptimg_gets_n_and_https_references() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let create = server
        .mock("POST", "/api/v1/images/generate")
        .match_request(bodies.recorder())
        .with_status(200)
        .with_header("x-request-id", "req_create_1")
        .with_body(
            r#"{"success":true,"data":{"id":"kUtpnus8fXpDKkuEjayG3","task_id":"gpt-image-2-kUtpnus8fXpDKkuEjayG3","status":"processing","provider":"gpt-image-2","model":"gpt-image-2","type":"image-to-image","media_url":null,"images":[],"created_at":"2026-04-22T00:12:03.456Z"}}"#,
        )
        .expect(1)
        .create_async()
        .await;
    let client = imggen_gptimg::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .build()
        .unwrap();
    let imggen = Imggen::builder()
        .strictness(imggen_core::Strictness::Exact)
        .provider(imggen_core::imggen_gptimg::provider::GptimgProvider::new(
            client,
        ))
        .build()
        .unwrap();
    let request = GenerationRequest::new("Restyle the subject as a watercolor painting")
        .aspect_ratio(AspectRatio::Portrait3x4)
        .n(3)
        .reference(Reference::url("https://example.com/portrait.jpg"));

    let submission = imggen
        .submit(&request, &SubmitOptions::default())
        .await
        .unwrap();

    create.assert_async().await;
    insta::assert_json_snapshot!("gptimg_create_body", bodies.only());
    let handle = &submission.handles[0];
    assert_eq!(handle.cost.unwrap().to_string(), "6 credits");
    assert_eq!(handle.images_expected, Some(3));
}

#[tokio::test]
async fn runbase_gets_the_model_its_input_and_extra_fields() {
    let mut server = Server::new_async().await;
    let bodies = Bodies::default();
    let create = server
        .mock("POST", "/api/v1/runs")
        .match_request(bodies.recorder())
        .with_status(200)
        .with_body(
            r#"{"id":"run_01JABCDEF","model":"openai/gpt-image-1.5","status":"pending","costUsd":160000,"createdAt":"2026-04-22T00:12:03Z"}"#,
        )
        .expect(1)
        .create_async()
        .await;
    let client = imggen_runbase::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .build()
        .unwrap();
    let imggen = Imggen::builder()
        .strictness(imggen_core::Strictness::Exact)
        .provider(imggen_core::imggen_runbase::provider::RunbaseProvider::new(
            client,
        ))
        .build()
        .unwrap();
    let mut request = GenerationRequest::new("A cinematic product photo of a ceramic lamp")
        .model("openai/gpt-image-1.5")
        .quality("high")
        .aspect_ratio(AspectRatio::Landscape3x2)
        .reference(Reference::url("http://example.com/lamp.jpg"));
    imggen
        .set_option(&mut request, crate::RUNBASE, "input.seed", "42")
        .unwrap();

    let submission = imggen
        .submit(&request, &SubmitOptions::default())
        .await
        .unwrap();

    create.assert_async().await;
    insta::assert_json_snapshot!("runbase_create_body", bodies.only());
    assert_eq!(submission.handles[0].cost.unwrap().to_string(), "$0.16");
}

#[tokio::test]
async fn a_request_a_provider_cannot_serve_sends_nothing() {
    let mut server = Server::new_async().await;
    let create = server
        .mock("POST", "/api/v1/images/generate")
        .expect(0)
        .create_async()
        .await;
    let client = imggen_gptimg::Client::builder()
        .api_key(KEY)
        .base_url(server.url())
        .http_client(http())
        .build()
        .unwrap();
    let imggen = Imggen::builder()
        .provider(imggen_core::imggen_gptimg::provider::GptimgProvider::new(
            client,
        ))
        .build()
        .unwrap();
    let request = GenerationRequest::new("x").reference(Reference::file("sketch.png"));

    let error = imggen
        .submit(&request, &SubmitOptions::default())
        .await
        .unwrap_err();

    create.assert_async().await;
    assert!(matches!(error, imggen_core::Error::Plan(_)), "{error:?}");
    assert!(!error.may_have_been_charged());
}

#[test]
fn capabilities_as_the_cli_prints_them() {
    insta::assert_json_snapshot!("capabilities", imggen_core::capabilities::all());
}
