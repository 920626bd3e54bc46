//! imggen-mock over real HTTP on 127.0.0.1: every provider's shapes, validation, money,
//! rate limits, webhooks, faults, images, the seed examples, the clients and the binary.

mod admin;
mod binary;
mod clients;
mod faults;
mod gptimg;
mod images;
mod money;
mod runbase;
mod runblob;
mod seeds;
mod webhooks;

use std::time::Duration;

use imggen_mock::{MockConfig, MockServer, Profile};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// A key every provider accepts (runbase wants `sk-`).
pub const KEY: &str = "sk-mock-test-key-0001";
/// A second key, for per-key behaviour.
pub const OTHER_KEY: &str = "sk-mock-test-key-0002";
/// How long every task takes in these tests.
pub const TASK_TIME: Duration = Duration::from_secs(2);

/// A manual clock and tasks that take exactly [`TASK_TIME`]: nothing moves until a test says.
pub fn config() -> MockConfig {
    MockConfig::default()
        .manual_clock()
        .profile(Profile::Fixed(TASK_TIME))
}

/// A server and a fresh HTTP client (a shared one could reuse a stale connection to a
/// recycled port).
pub struct Mock {
    /// The server under test.
    pub server: MockServer,
    /// A client for this test only.
    pub http: reqwest::Client,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.text))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Starts a server with `config`.
pub async fn start(config: MockConfig) -> Mock {
    Mock {
        server: MockServer::start(config).await.expect("the mock starts"),
        http: http_client(),
    }
}

/// A fresh HTTP client that follows no redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Mock {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// POST a JSON body with a bearer key.
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.post_raw(path, Some(key), body.to_string()).await
    }

    /// POST a body as is, with or without a key.
    pub async fn post_raw(&self, path: &str, key: Option<&str>, body: String) -> Answer {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        answer(request.send().await.expect("the mock answers")).await
    }

    /// GET with a bearer key.
    pub async fn get(&self, path: &str, key: &str) -> Answer {
        let request = self.http.get(self.url(path)).bearer_auth(key);
        answer(request.send().await.expect("the mock answers")).await
    }

    /// GET without a key (files, `/_mock/…`).
    pub async fn get_public(&self, path: &str) -> Answer {
        answer(
            self.http
                .get(self.url(path))
                .send()
                .await
                .expect("the mock answers"),
        )
        .await
    }

    /// GET an absolute URL and return the bytes.
    pub async fn download(&self, url: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let response = self.http.get(url).send().await.expect("the mock answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        (
            status,
            content_type,
            response.bytes().await.unwrap().to_vec(),
        )
    }

    /// The ledger as `/_mock/ledger` shows it.
    pub async fn ledger(&self, query: &str) -> Vec<Value> {
        let answer = self.get_public(&format!("/_mock/ledger{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        serde_json::from_str(&answer.text).unwrap()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        text,
    }
}

/// A runblob create body with only a prompt.
pub fn runblob_body(prompt: &str) -> Value {
    serde_json::json!({ "prompt": prompt })
}

/// Percent-encodes a query value (keys hold only URL-safe characters here, but be exact).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// PNG dimensions from the IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}
