//! Test helpers for the provider clients (feature `testing`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::time::ManualTime;
use crate::{ApiClient, ClientBuilder};

/// The text of `tests/fixtures/<name>` under `manifest_dir` (pass
/// `env!("CARGO_MANIFEST_DIR")`); panics naming the path when it cannot be read.
pub fn fixture(manifest_dir: &str, name: &str) -> String {
    let path = format!("{manifest_dir}/tests/fixtures/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A builder for a client under test: `key`, `url`, time that never really passes (`time`
/// as both clock and sleeper) and a fresh reqwest client, because a shared one could reuse a
/// stale connection to a recycled port.
pub fn builder<C: ApiClient>(key: &str, url: &str, time: &ManualTime) -> ClientBuilder<C> {
    ClientBuilder::<C>::new()
        .api_key(key)
        .base_url(url)
        .http_client(reqwest_client())
        .sleeper(Arc::new(time.clone()))
        .clock(Arc::new(time.clone()))
}

/// A fresh reqwest client that follows no redirects, like the one imggen-http builds.
pub fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with default TLS builds")
}

/// Records the JSON bodies a mockito mock received: `.match_request(bodies.recorder())`.
#[derive(Clone, Debug, Default)]
pub struct Bodies(Arc<Mutex<Vec<serde_json::Value>>>);

impl Bodies {
    /// A request matcher that records each body (JSON, or `null` when it is not) and matches.
    pub fn recorder(&self) -> impl Fn(&mockito::Request) -> bool + Send + Sync + 'static {
        let bodies = Arc::clone(&self.0);
        move |request| {
            let body = request.body().map(|b| b.to_vec()).unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            bodies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(json);
            true
        }
    }

    /// The one body received; panics if there was not exactly one.
    pub fn only(&self) -> serde_json::Value {
        let bodies = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(bodies.len(), 1, "expected exactly one request body");
        bodies[0].clone()
    }
}

/// A server on 127.0.0.1 that reads each request in full and then closes the connection
/// without answering: the case where a create reached the provider but its answer was lost.
#[derive(Debug)]
pub struct DropAfterRequest {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DropAfterRequest {
    /// Starts the server.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                if read_request(&mut socket).await.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let _ = socket.shutdown().await;
            }
        });
        Ok(DropAfterRequest {
            url,
            requests,
            task,
        })
    }

    /// How many complete requests arrived.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for DropAfterRequest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads headers and a `Content-Length` body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
