//! Tests of [`super`].

use super::*;

/// The smallest client over the transport: a provider that exists only in these tests.
struct Probe(Transport<imggen_types::gptimg::ErrorBody>);

impl crate::ApiClient for Probe {
    type ErrorBody = imggen_types::gptimg::ErrorBody;
    const INFO: crate::ProviderInfo = crate::ProviderInfo {
        name: "probe",
        api_key_env: "IMGGEN_PROBE_API_KEY",
        base_url_env: "IMGGEN_PROBE_BASE_URL",
        default_base_url: "https://probe.invalid",
        rate_limit: None,
        client_name: "probe",
        client_version: "0",
    };
    fn from_transport(transport: Transport<Self::ErrorBody>) -> Self {
        Probe(transport)
    }
}

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_784_000_000);
    assert_eq!(
        retry_after(&headers("7"), now),
        Some(Duration::from_secs(7))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(
        retry_after(&headers(&later), now),
        Some(Duration::from_secs(30))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
    assert_eq!(retry_after(&headers(&earlier), now), Some(Duration::ZERO));
    assert_eq!(retry_after(&headers("soon"), now), None);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}

#[test]
fn key_labels_are_stable_short_and_do_not_reveal_the_key() {
    use crate::ClientBuilder;
    let label = |key: &str| {
        ClientBuilder::<Probe>::new()
            .api_key(key)
            .build()
            .unwrap()
            .0
            .key_label()
    };
    let a = label("sk-secret-one-0123456789");
    assert_eq!(a, label("sk-secret-one-0123456789"));
    assert_ne!(a, label("sk-secret-two-0123456789"));
    assert!(a.starts_with("sk-s…"), "{a}");
    assert!(!a.contains("secret"), "{a}");
}

#[test]
fn key_fingerprints_tell_keys_apart_and_reveal_nothing() {
    use crate::ClientBuilder;
    let fingerprint = |key: &str| {
        ClientBuilder::<Probe>::new()
            .api_key(key)
            .build()
            .unwrap()
            .0
            .key_fingerprint()
    };
    let a = fingerprint("sk-secret-one-0123456789");
    assert_eq!(a, fingerprint("sk-secret-one-0123456789"));
    assert_ne!(a, fingerprint("sk-secret-two-0123456789"));
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    assert!(!a.contains("sk-"), "{a}");
}

#[test]
fn downloads_are_https_unless_allowed() {
    assert!(check_download_url("https://cdn.example/a.png", false).is_ok());
    assert!(check_download_url("http://cdn.example/a.png", false).is_err());
    assert!(check_download_url("http://127.0.0.1/a.png", true).is_ok());
    assert!(check_download_url("file:///etc/passwd", true).is_err());
}

/// A client over a server on 127.0.0.1 that answers every connection with `answer`,
/// written in the pieces given, then closes it.
mod body {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use crate::{ClientBuilder, Error, Operation, RetryPolicy};

    use super::{Probe, Transport};

    /// A server that answers every connection with `pieces`; its base URL.
    async fn listen(pieces: Vec<String>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                for piece in &pieces {
                    let _ = socket.write_all(piece.as_bytes()).await;
                    let _ = socket.flush().await;
                }
            }
        });
        url
    }

    async fn serve(pieces: Vec<String>) -> Transport<imggen_types::gptimg::ErrorBody> {
        let url = listen(pieces).await;
        ClientBuilder::<Probe>::new()
            .api_key("sk-probe")
            .base_url(url)
            .max_response_bytes(64)
            .retry(RetryPolicy::disabled())
            .build()
            .unwrap()
            .0
    }

    fn pieces(pieces: &[&str]) -> Vec<String> {
        pieces.iter().map(|piece| (*piece).to_owned()).collect()
    }

    async fn get(
        transport: &Transport<imggen_types::gptimg::ErrorBody>,
    ) -> Result<serde_json::Value, Error<imggen_types::gptimg::ErrorBody>> {
        transport
            .get::<serde_json::Value>(Operation::read("probe"), "/probe")
            .await
            .map(|response| response.value)
    }

    #[tokio::test]
    async fn a_body_of_declared_length_within_the_cap_is_read_whole() {
        let transport = serve(pieces(&[
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\n",
            "{\"ok\":true}\n",
        ]))
        .await;
        assert_eq!(
            get(&transport).await.unwrap(),
            serde_json::json!({"ok": true})
        );
    }

    #[tokio::test]
    async fn a_body_in_several_chunks_is_joined_and_capped_as_it_arrives() {
        let chunked = |second: &str| {
            pieces(&[
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                "6\r\n{\"ok\":\r\n",
                &format!("{:x}\r\n{second}\r\n", second.len()),
                "0\r\n\r\n",
            ])
        };
        let transport = serve(chunked("true}")).await;
        assert_eq!(
            get(&transport).await.unwrap(),
            serde_json::json!({"ok": true})
        );

        // No length to check first: the second chunk takes it past the 64-byte cap.
        let transport = serve(chunked(&" ".repeat(60))).await;
        let error = get(&transport).await.unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused_before_reading() {
        let transport = serve(pieces(&[
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n",
            "{}",
        ]))
        .await;
        let error = get(&transport).await.unwrap_err();
        assert!(matches!(error, Error::BodyTooLarge(_)), "{error:?}");
    }

    /// A server that writes `head` and then one byte of `byte` every `interval`, for
    /// ever; counts the connections it accepts.
    async fn trickle(
        head: &'static str,
        interval: std::time::Duration,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    loop {
                        tokio::time::sleep(interval).await;
                        if socket.write_all(b" ").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn client(url: &str) -> Transport<imggen_types::gptimg::ErrorBody> {
        ClientBuilder::<Probe>::new()
            .api_key("sk-probe-secret")
            .base_url(url)
            .retry(RetryPolicy::disabled())
            .build()
            .unwrap()
            .0
    }

    /// A failure guard, never a delay: the calls below end on their own well before it.
    async fn guarded<T>(call: impl Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(30), call)
            .await
            .expect("the call ended by its deadline, not by the test's guard")
    }

    #[tokio::test]
    async fn a_trickling_body_ends_at_the_callers_deadline_not_the_request_timeout() {
        let (url, _) = trickle(
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n{",
            std::time::Duration::from_millis(50),
        )
        .await;
        let transport = client(&url);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let error = guarded(crate::deadline::within(deadline, get(&transport)))
            .await
            .unwrap_err();
        let Error::Timeout(timeout) = &error else {
            panic!("{error:?}");
        };
        assert!(
            matches!(timeout.limit, Some(crate::TimeLimit::Deadline(_))),
            "{error}"
        );
        assert!(error.to_string().contains("before the deadline"), "{error}");

        // A create cut off by the deadline may have been charged: never repeated blindly.
        let error = guarded(crate::deadline::within(
            std::time::Instant::now() + std::time::Duration::from_millis(200),
            transport.post::<_, serde_json::Value>(
                Operation::create("create"),
                "/create",
                &serde_json::json!({}),
            ),
        ))
        .await
        .unwrap_err();
        assert!(
            error.may_have_been_charged() && !error.is_retryable(),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_request_after_the_deadline_is_not_sent_at_all() {
        let (url, accepted) = trickle(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            std::time::Duration::from_secs(1),
        )
        .await;
        let transport = client(&url);
        let passed = std::time::Instant::now();
        let error = crate::deadline::within(
            passed,
            transport.post::<_, serde_json::Value>(
                Operation::create("create"),
                "/create",
                &serde_json::json!({}),
            ),
        )
        .await
        .unwrap_err();
        assert!(!error.may_have_been_charged(), "{error}");
        assert!(error.to_string().contains("nothing was sent"), "{error}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_download_that_stops_sending_ends_after_the_stall_interval() {
        // Headers, then silence: no byte for longer than the stall interval.
        let (url, _) = trickle(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            std::time::Duration::from_secs(3600),
        )
        .await;
        let transport = client(&url);
        let mut options = transport.download_options();
        options.stall_timeout = std::time::Duration::from_millis(200);
        let error = guarded(transport.download(&format!("{url}/a.png"), options))
            .await
            .unwrap_err();
        let Error::Timeout(timeout) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(
            timeout.limit,
            Some(crate::TimeLimit::Stall(std::time::Duration::from_millis(
                200
            )))
        );
        assert!(error.is_retryable(), "a read may be tried again: {error}");

        // A body that keeps coming, a byte at a time, never stalls: only the deadline
        // ends it.
        let (url, _) = trickle(
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n",
            std::time::Duration::from_millis(20),
        )
        .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(400);
        let error = guarded(crate::deadline::within(
            deadline,
            transport.download(&format!("{url}/a.png"), options),
        ))
        .await
        .unwrap_err();
        assert!(error.to_string().contains("before the deadline"), "{error}");
    }

    #[tokio::test]
    async fn a_key_the_server_echoes_back_is_struck_from_the_error() {
        let echo = "{\"error\":{\"code\":\"UNAUTHORIZED\",\"message\":\"bad {Authorization: Bearer sk-probe-secret}\",\"request_id\":\"sk-probe-secret\"}}";
        let transport = client(
            &listen(vec![format!(
                "HTTP/1.1 401 Unauthorized\r\nx-request-id: req sk-probe-secret\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{echo}",
                echo.len()
            )])
            .await,
        );
        let error = get(&transport).await.unwrap_err();
        let everything = format!(
            "{error} {error:?} {} {:?}",
            String::from_utf8_lossy(error.raw_body().unwrap()),
            error.request_id()
        );
        assert!(!everything.contains("sk-probe-secret"), "{everything}");
        assert!(error.to_string().contains("Bearer [redacted]"), "{error}");
    }

    #[tokio::test]
    async fn control_characters_from_the_server_are_shown_escaped() {
        let body =
            "{\"error\":{\"code\":\"BAD\\u001b[2J\",\"message\":\"x\\u001b]0;title\\u0007y\"}}";
        let transport = client(
            &listen(vec![format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )])
            .await,
        );
        let error = get(&transport).await.unwrap_err();
        let shown = error.to_string();
        assert!(
            !shown.chars().any(imggen_types::text::needs_escape),
            "{shown:?}"
        );
        assert!(shown.contains(r"BAD\u{1b}[2J"), "{shown}");
        // The parsed body keeps the provider's text as it is, for JSON output.
        let message = match &error {
            Error::Api(api) => api.message().unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(message, "x\u{1b}]0;title\u{7}y");
    }

    #[tokio::test]
    async fn a_body_cut_short_of_its_declared_length_is_an_error_not_an_answer() {
        let transport = serve(pieces(&[
            "HTTP/1.1 200 OK\r\ncontent-length: 40\r\nconnection: close\r\n\r\n",
            "{\"ok\":true}",
        ]))
        .await;
        let error = get(&transport).await.unwrap_err();
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
    }

    #[tokio::test]
    async fn get_once_then_sends_once_whatever_the_retry_policy_and_finishes_the_answer() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // A server that counts its requests: 503 (retryable) first, then an answer.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}"
                };
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        // The standard policy would retry a 503; this call is sent once all the same.
        let transport = ClientBuilder::<Probe>::new()
            .api_key("sk-probe")
            .base_url(url)
            .build()
            .unwrap()
            .0;
        let read = || {
            transport.get_once_then(
                Operation::read("probe"),
                "/probe/{id}",
                "/probe/7",
                |result: Result<crate::Response<serde_json::Value>, Error<_>>| {
                    result.map(|response| response.value)
                },
            )
        };
        let refused = guarded(read()).await.unwrap_err();
        assert!(matches!(refused, Error::Api(_)), "{refused:?}");
        assert_eq!(served.load(Ordering::SeqCst), 1, "sent once");
        let answered = guarded(read()).await.unwrap();
        assert_eq!(answered, serde_json::json!({"ok": true}));
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }
}
