//! How a mock server behaves: timing profile, keys, money, limits, images, webhooks, faults.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use imggen_types::{Credits, Usd};

use crate::clock::MockClock;
use crate::faults::Fault;
use crate::keys::key_label;
use crate::provider::Provider;

/// How long tasks take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// About 1–2 s a task, with spread (the default).
    #[default]
    Fast,
    /// The documented times: runblob 1–3 min, gptimg 45–60 s, runbase 3–8 s. Webhook retries
    /// 30 s apart.
    Realistic,
    /// Every task takes exactly this long; `Duration::ZERO` finishes a task the moment it is
    /// created (its first status read is terminal).
    Fixed(Duration),
}

impl Profile {
    /// Every task finishes at once.
    pub const INSTANT: Profile = Profile::Fixed(Duration::ZERO);

    /// The shortest and longest time a task of `provider` takes.
    pub fn duration_range(self, provider: Provider) -> (Duration, Duration) {
        let secs = Duration::from_secs;
        match self {
            Profile::Fast => (Duration::from_millis(1000), Duration::from_millis(2000)),
            Profile::Realistic => match provider {
                Provider::Runblob => (secs(60), secs(180)),
                Provider::Gptimg => (secs(45), secs(60)),
                Provider::Runbase => (secs(3), secs(8)),
            },
            Profile::Fixed(duration) => (duration, duration),
        }
    }

    /// The time between two attempts to deliver a webhook.
    pub fn webhook_retry_interval(self) -> Duration {
        match self {
            Profile::Realistic => Duration::from_secs(30),
            Profile::Fast | Profile::Fixed(_) => Duration::from_secs(1),
        }
    }

    /// How long one webhook attempt may take before it counts as failed.
    pub fn webhook_timeout(self) -> Duration {
        match self {
            Profile::Realistic => Duration::from_secs(30),
            Profile::Fast | Profile::Fixed(_) => Duration::from_secs(5),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Profile::Fast => f.write_str("fast"),
            Profile::Realistic => f.write_str("realistic"),
            Profile::Fixed(duration) if duration.is_zero() => f.write_str("instant"),
            Profile::Fixed(duration) => write!(f, "fixed {}ms", duration.as_millis()),
        }
    }
}

impl FromStr for Profile {
    type Err = String;

    /// `fast`, `realistic`, `instant`, or a fixed duration such as `3s` or `500ms`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "fast" => Ok(Profile::Fast),
            "realistic" => Ok(Profile::Realistic),
            "instant" => Ok(Profile::INSTANT),
            other => parse_duration(other).map(Profile::Fixed).map_err(|_| {
                format!(
                    "{value:?} is not a profile; use fast, realistic, instant or a duration like 3s"
                )
            }),
        }
    }
}

/// Parses `1500ms`, `2s`, `1.5s`, `3m` or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        _ => return Err(format!("{value:?} is not a duration (e.g. 500ms, 2s, 3m)")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let parse = |digits: &str| -> Result<u64, String> {
        if digits.is_empty() {
            Ok(0)
        } else {
            digits
                .parse()
                .map_err(|_| format!("{value:?} is not a duration (e.g. 500ms, 2s, 3m)"))
        }
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(format!("{value:?} is not a duration (e.g. 500ms, 2s, 3m)"));
    }
    // Exact to the millisecond without floats: the fraction's first three digits.
    let fraction_millis = {
        let mut digits: String = fraction.chars().take(3).collect();
        while digits.len() < 3 {
            digits.push('0');
        }
        parse(&digits)?
    };
    let millis = parse(whole)?
        .checked_mul(millis_per_unit)
        .and_then(|m| m.checked_add(fraction_millis * millis_per_unit / 1000))
        .ok_or_else(|| format!("{value:?} is too long"))?;
    Ok(Duration::from_millis(millis))
}

/// The size of result images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ImageSize {
    /// Long side 256 px: quick to render and download (the default).
    #[default]
    Small,
    /// The documented output size: 1024 × 1024 for 1:1 and a 1536 px long side otherwise;
    /// runbase gpt-image-2's `resolution` (1K, 2K, 4K → 1024, 2048, 4096 px long side).
    Full,
    /// This long side, in pixels, for every image.
    LongSide(u32),
}

/// A per-key request budget: at most `requests` in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The sliding window.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub fn new(requests: u32, window: Duration) -> Self {
        RateLimit { requests, window }
    }

    /// runbase's documented limit: 20 requests per 10 s per key, creates and polls together.
    pub fn runbase() -> Self {
        let (requests, window) = imggen_types::runbase::RATE_LIMIT;
        RateLimit { requests, window }
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// `20/10s`, `60/1m`, `5/500ms`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (requests, window) = value
            .split_once('/')
            .ok_or_else(|| format!("{value:?} is not a rate limit (e.g. 20/10s)"))?;
        let requests: u32 = requests
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("{value:?}: the request count must be a whole number above 0")
            })?;
        let window = parse_duration(window)?;
        if window.is_zero() {
            return Err(format!("{value:?}: the window must be longer than 0"));
        }
        Ok(RateLimit { requests, window })
    }
}

/// What every new key starts with. Amounts are exact: no floats anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balances {
    /// runblob, in USD.
    pub runblob: Usd,
    /// gptimg, in credits.
    pub gptimg: Credits,
    /// runbase, in USD (charged in micro-USD steps).
    pub runbase: Usd,
}

impl Default for Balances {
    /// Generous: $1000 at runblob and runbase, 100 000 credits at gptimg.
    fn default() -> Self {
        Balances {
            runblob: Usd::from_parts(1000, 0).unwrap_or(Usd::ZERO),
            gptimg: Credits(100_000),
            runbase: Usd::from_parts(1000, 0).unwrap_or(Usd::ZERO),
        }
    }
}

/// One provider's balance, for [`MockServer::set_balance`](crate::MockServer::set_balance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// runblob, in USD.
    Runblob(Usd),
    /// gptimg, in credits.
    Gptimg(Credits),
    /// runbase, in USD.
    Runbase(Usd),
}

/// Everything a [`MockServer`](crate::MockServer) is started with. Build it with the setters:
///
/// ```
/// use std::time::Duration;
/// use imggen_mock::{MockClock, MockConfig, Profile};
///
/// let config = MockConfig::default()
///     .profile(Profile::Fixed(Duration::from_secs(2)))
///     .clock(MockClock::manual())
///     .api_key("sk-test-key");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct MockConfig {
    /// The address to bind; 127.0.0.1 by default.
    pub host: IpAddr,
    /// The port; 0 (the default) picks a free one.
    pub port: u16,
    /// The base URL written into result and file URLs; by default `http://<bound address>`
    /// (with 127.0.0.1 when bound to 0.0.0.0).
    pub public_url: Option<String>,
    /// How long tasks take.
    pub profile: Profile,
    /// Seeds the draws of task durations, so a run can be reproduced.
    pub seed: u64,
    /// The clock; real by default.
    pub clock: MockClock,
    /// Keys the mock accepts; empty (the default) accepts any well-formed bearer token.
    api_keys: Vec<String>,
    /// Whether runbase keys must start with `sk-`, as runbase's keys do (default true).
    pub runbase_requires_sk_prefix: bool,
    /// What every key starts with.
    pub balances: Balances,
    /// What one runblob task costs (default `0.0123`, the documented example).
    pub runblob_price: Usd,
    /// runblob's per-key limit; off by default (none is documented).
    pub runblob_rate_limit: Option<RateLimit>,
    /// gptimg's per-key limit; off by default (its value is not documented).
    pub gptimg_rate_limit: Option<RateLimit>,
    /// runbase's per-key limit; the documented 20 per 10 s by default.
    pub runbase_rate_limit: Option<RateLimit>,
    /// The size of result images.
    pub image_size: ImageSize,
    /// Time between webhook attempts; the profile's by default (30 s realistic, 1 s otherwise).
    pub webhook_retry_interval: Option<Duration>,
    /// Attempts per webhook, the first included (default 5, as runblob documents).
    pub webhook_attempts: u32,
    /// Timeout of one webhook attempt; the profile's by default.
    pub webhook_timeout: Option<Duration>,
    /// Whether webhooks to hosts other than this machine are sent. Off by default, so that a
    /// test or CI run never reaches the internet (they are listed as `skipped`).
    pub deliver_external_webhooks: bool,
    /// Faults armed from the start.
    pub faults: Vec<Fault>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            public_url: None,
            profile: Profile::Fast,
            seed: 0x1a2b_3c4d,
            clock: MockClock::real(),
            api_keys: Vec::new(),
            runbase_requires_sk_prefix: true,
            balances: Balances::default(),
            runblob_price: Usd::from_parts(123, 4).unwrap_or(Usd::ZERO),
            runblob_rate_limit: None,
            gptimg_rate_limit: None,
            runbase_rate_limit: Some(RateLimit::runbase()),
            image_size: ImageSize::Small,
            webhook_retry_interval: None,
            webhook_attempts: 5,
            webhook_timeout: None,
            deliver_external_webhooks: false,
            faults: Vec::new(),
        }
    }
}

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self.api_keys.iter().map(|key| key_label(key)).collect();
        f.debug_struct("MockConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .field("profile", &self.profile)
            .field("seed", &self.seed)
            .field("clock", &self.clock)
            .field("api_keys", &labels)
            .field(
                "runbase_requires_sk_prefix",
                &self.runbase_requires_sk_prefix,
            )
            .field("balances", &self.balances)
            .field("runblob_price", &self.runblob_price)
            .field("runblob_rate_limit", &self.runblob_rate_limit)
            .field("gptimg_rate_limit", &self.gptimg_rate_limit)
            .field("runbase_rate_limit", &self.runbase_rate_limit)
            .field("image_size", &self.image_size)
            .field("webhook_retry_interval", &self.webhook_retry_interval)
            .field("webhook_attempts", &self.webhook_attempts)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("deliver_external_webhooks", &self.deliver_external_webhooks)
            .field("faults", &self.faults)
            .finish()
    }
}

impl MockConfig {
    /// Binds this port (0 picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds this address instead of 127.0.0.1.
    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// Writes this base URL into result URLs.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Sets the timing profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Seeds the duration draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Uses this clock (e.g. [`MockClock::manual`]).
    pub fn clock(mut self, clock: MockClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses a fresh manual clock.
    pub fn manual_clock(self) -> Self {
        self.clock(MockClock::manual())
    }

    /// Accepts this key (call again to accept several); once one is set, any other key gets
    /// the provider's 401.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// The keys set with [`api_key`](Self::api_key).
    pub fn api_keys(&self) -> &[String] {
        &self.api_keys
    }

    /// Lets runbase accept keys that do not start with `sk-`.
    pub fn any_runbase_key(mut self) -> Self {
        self.runbase_requires_sk_prefix = false;
        self
    }

    /// What every key starts with.
    pub fn balances(mut self, balances: Balances) -> Self {
        self.balances = balances;
        self
    }

    /// The price of one runblob task.
    pub fn runblob_price(mut self, price: Usd) -> Self {
        self.runblob_price = price;
        self
    }

    /// Sets (or with `None` removes) a provider's per-key rate limit.
    pub fn rate_limit(mut self, provider: Provider, limit: Option<RateLimit>) -> Self {
        match provider {
            Provider::Runblob => self.runblob_rate_limit = limit,
            Provider::Gptimg => self.gptimg_rate_limit = limit,
            Provider::Runbase => self.runbase_rate_limit = limit,
        }
        self
    }

    /// A provider's per-key rate limit.
    pub fn rate_limit_of(&self, provider: Provider) -> Option<RateLimit> {
        match provider {
            Provider::Runblob => self.runblob_rate_limit,
            Provider::Gptimg => self.gptimg_rate_limit,
            Provider::Runbase => self.runbase_rate_limit,
        }
    }

    /// The size of result images.
    pub fn image_size(mut self, size: ImageSize) -> Self {
        self.image_size = size;
        self
    }

    /// Time between webhook attempts.
    pub fn webhook_retry_interval(mut self, interval: Duration) -> Self {
        self.webhook_retry_interval = Some(interval);
        self
    }

    /// Sends webhooks to hosts other than this machine too.
    pub fn deliver_external_webhooks(mut self, deliver: bool) -> Self {
        self.deliver_external_webhooks = deliver;
        self
    }

    /// Arms a fault from the start.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    pub(crate) fn effective_webhook_retry_interval(&self) -> Duration {
        self.webhook_retry_interval
            .unwrap_or_else(|| self.profile.webhook_retry_interval())
    }

    pub(crate) fn effective_webhook_timeout(&self) -> Duration {
        self.webhook_timeout
            .unwrap_or_else(|| self.profile.webhook_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_without_floats() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        for bad in ["", "s", "2h", "abc", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn profiles_parse_by_name_or_duration() {
        assert_eq!("fast".parse(), Ok(Profile::Fast));
        assert_eq!("Realistic".parse(), Ok(Profile::Realistic));
        assert_eq!("instant".parse(), Ok(Profile::INSTANT));
        assert_eq!("3s".parse(), Ok(Profile::Fixed(Duration::from_secs(3))));
        let err = "slow".parse::<Profile>().unwrap_err();
        assert!(err.contains("fast, realistic, instant"), "{err}");
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!("20/10s".parse(), Ok(RateLimit::runbase()));
        assert!("0/10s".parse::<RateLimit>().is_err());
        assert!("20/0s".parse::<RateLimit>().is_err());
        assert!("20".parse::<RateLimit>().is_err());
    }

    #[test]
    fn debug_never_shows_keys() {
        let config = MockConfig::default().api_key("sk-very-secret-key");
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
    }
}
