//! One builder for the three clients: the same options, the same checks, the same secrecy.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use imggen_types::ProviderErrorBody;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::budget::RequestBudget;
use crate::error::Error;
use crate::redact::Redactor;
use crate::retry::RetryPolicy;
use crate::time::{Clock, Sleeper, SystemClock, TokioSleeper};
use crate::transport::{Inner, Transport};

/// What the transport needs to know about the provider a client speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// `runblob`, `gptimg` or `runbase`, as messages name it.
    pub name: &'static str,
    /// The environment variable [`ClientBuilder::from_env`] reads the key from.
    pub api_key_env: &'static str,
    /// The environment variable that overrides the base URL.
    pub base_url_env: &'static str,
    /// The provider's production base URL.
    pub default_base_url: &'static str,
    /// The documented request budget per key — `requests` in any `window`, creates and polls
    /// together — that every request of a client (and its clones) waits for; `None` where the
    /// provider documents none.
    pub rate_limit: Option<(u32, Duration)>,
    /// The client crate, for the user agent: `imggen-gptimg`.
    pub client_name: &'static str,
    /// The client crate's version.
    pub client_version: &'static str,
}

/// A provider client that can be built on a [`Transport`].
pub trait ApiClient: Sized {
    /// The provider's error body.
    type ErrorBody: ProviderErrorBody;
    /// The provider.
    const INFO: ProviderInfo;
    /// Wraps a configured transport.
    fn from_transport(transport: Transport<Self::ErrorBody>) -> Self;
}

/// The default time a whole request may take, connect to last body byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default cap on an API answer's body. Provider answers are small JSON documents; a
/// bigger one is a misconfigured base URL or a misbehaving proxy, not something to buffer.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Builds a provider client: `Client::builder().api_key(..).base_url(..).build()?`.
///
/// Every option has a default except the API key; [`from_env`](Self::from_env) fills the key
/// and base URL from the provider's environment variables.
pub struct ClientBuilder<C: ApiClient> {
    api_key: Option<SecretString>,
    env_problem: Option<String>,
    base_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    http_client: Option<reqwest::Client>,
    retry: RetryPolicy,
    max_response_bytes: u64,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    client: PhantomData<fn() -> C>,
}

impl<C: ApiClient> ClientBuilder<C> {
    /// A builder with every default and no key.
    pub fn new() -> Self {
        ClientBuilder {
            api_key: None,
            env_problem: None,
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            http_client: None,
            retry: RetryPolicy::standard(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            sleeper: Arc::new(TokioSleeper),
            clock: Arc::new(SystemClock),
            client: PhantomData,
        }
    }

    /// A builder with the key and (optional) base URL from the provider's environment
    /// variables, e.g. `GPTIMG_API_KEY` and `GPTIMG_BASE_URL`. A missing key is reported by
    /// [`build`](Self::build), naming the variable.
    pub fn from_env() -> Self {
        let mut builder = Self::new();
        match read_env(C::INFO.api_key_env) {
            Ok(Some(key)) => builder.api_key = Some(SecretString::from(key)),
            Ok(None) => {}
            Err(problem) => builder.env_problem = Some(problem),
        }
        match read_env(C::INFO.base_url_env) {
            Ok(Some(url)) => builder.base_url = Some(url),
            Ok(None) => {}
            Err(problem) => builder.env_problem = Some(problem),
        }
        builder
    }

    /// The API key, sent as `Authorization: Bearer <key>`. Held as a secret: it never appears
    /// in `Debug`, `Display`, errors or logs.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The base URL, e.g. `http://127.0.0.1:8080` for imggen-mock. A path prefix is kept:
    /// `https://proxy.example/runbase` + `/api/v1/runs`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The most a whole request may take, from connecting to the last byte of the answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connecting may take. Ignored with [`http_client`](Self::http_client), whose
    /// own setting applies.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A `reqwest::Client` of your own (proxies, certificates, connection pool). imggen still
    /// sets its headers and per-request timeout on every request.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// How status calls are retried ([`RetryPolicy::disabled`] to handle retries yourself).
    /// Creates are never retried by the client.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The largest answer body accepted, in bytes.
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// How the client sleeps between retries (tests inject a fake).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Which clock the client reads (for `Retry-After` dates).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<C, Error<C::ErrorBody>> {
        let info = C::INFO;
        let fail = |message: String| Error::config(info.name, message);
        if let Some(problem) = self.env_problem {
            return Err(fail(problem));
        }
        let key = self.api_key.ok_or_else(|| {
            fail(format!(
                "no API key: set {} or call .api_key(...)",
                info.api_key_env
            ))
        })?;
        let authorization = authorization_header(&key).map_err(fail)?;
        let redactor = Arc::new(Redactor::new(key.expose_secret().trim()));
        let base_url = parse_base_url(self.base_url.as_deref().unwrap_or(info.default_base_url))
            .map_err(fail)?;
        if self.timeout.is_zero() {
            return Err(fail("the timeout must be longer than zero".into()));
        }
        let user_agent = HeaderValue::from_str(&format!(
            "imggen/{} {}/{}",
            env!("CARGO_PKG_VERSION"),
            info.client_name,
            info.client_version
        ))
        .map_err(|_| fail("the user agent is not a valid header value".into()))?;
        let http = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                // An API call that redirects is a misconfigured base URL: report it rather than
                // follow it. Downloads follow redirects themselves, checking every hop.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|err| fail(format!("could not build the HTTP client: {err}")))?,
        };
        Ok(C::from_transport(Transport::from_inner(Inner {
            provider: info.name,
            http,
            base_url,
            authorization,
            redactor,
            budget: info
                .rate_limit
                .map_or_else(RequestBudget::unlimited, |(requests, window)| {
                    RequestBudget::new(requests, window)
                }),
            user_agent,
            timeout: self.timeout,
            retry: self.retry,
            max_response_bytes: self.max_response_bytes,
            sleeper: self.sleeper,
            clock: self.clock,
        })))
    }
}

impl<C: ApiClient> Default for ClientBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: ApiClient> fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("provider", &C::INFO.name)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

fn read_env(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

/// `Bearer <key>`, marked sensitive so no `Debug` of a request or header map shows it.
fn authorization_header(key: &SecretString) -> Result<HeaderValue, String> {
    // A key pasted with a trailing newline is the commonest mistake; the key itself never
    // contains whitespace.
    let key = key.expose_secret().trim();
    if key.is_empty() {
        return Err("the API key is empty".into());
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        // Never echo the key, not even part of it.
        return Err(
            "the API key contains characters an HTTP header cannot carry (spaces, control or non-ASCII characters)"
                .into(),
        );
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| "the API key cannot be sent in a header".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim())
        .map_err(|err| format!("base URL {raw:?} is not an absolute URL ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "base URL {raw:?} must start with https:// (or http:// for a local emulator)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("base URL {raw:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        // A key "leaked through a query string" is rejected by gptimg; refuse any query here.
        return Err(format!(
            "base URL {raw:?} must not have a query string or fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base URL must not carry credentials; use .api_key(...)".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("https://gptimg.co").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080/").is_ok());
        assert!(parse_base_url("gptimg.co").is_err());
        assert!(parse_base_url("ftp://gptimg.co").is_err());
        assert!(parse_base_url("https://gptimg.co/?key=sk-123").is_err());
        let err = parse_base_url("https://user:sk-secret@gptimg.co").unwrap_err();
        assert!(!err.contains("sk-secret"), "{err}");
    }

    #[test]
    fn keys_are_trimmed_checked_and_never_echoed() {
        let header = authorization_header(&SecretString::from("sk-abc\n".to_owned())).unwrap();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer sk-abc");
        assert_eq!(format!("{header:?}"), "Sensitive");
        let err =
            authorization_header(&SecretString::from("sk-a b-secret".to_owned())).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(authorization_header(&SecretString::from("  ".to_owned())).is_err());
    }
}
