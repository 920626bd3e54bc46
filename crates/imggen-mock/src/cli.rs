//! The `imggen-mock` command line, as a library: its flags ([`MockArgs`], a `clap::Args` to
//! flatten into another CLI) and its run loop ([`run`]).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use imggen_types::{Credits, Usd};

use crate::config::{Balances, ImageSize, MockConfig, Profile, RateLimit, parse_duration};
use crate::faults::Fault;
use crate::provider::Provider;
use crate::server::{Error, MockServer};

/// The default seed of the duration draws.
pub const DEFAULT_SEED: u64 = 0x1a2b_3c4d;

/// The flags of `imggen-mock`.
#[derive(Clone, clap::Args)]
#[non_exhaustive]
pub struct MockArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0, env = "IMGGEN_MOCK_PORT")]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Base URL written into result URLs (default: the listening address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Task timing: fast (1–2 s), realistic (the documented minutes), instant, or a fixed
    /// duration such as 3s.
    #[arg(long, default_value = "fast", value_name = "PROFILE")]
    pub profile: Profile,

    /// Seed of the task-duration draws, to reproduce a run.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Accept only this API key (repeat for several). Default: any well-formed bearer token.
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "IMGGEN_MOCK_API_KEY",
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Let runbase accept keys that do not start with `sk-`.
    #[arg(long)]
    pub any_runbase_key: bool,

    /// Starting runblob balance of every key, in USD.
    #[arg(long, value_name = "USD")]
    pub runblob_balance: Option<Usd>,

    /// Starting gptimg balance of every key, in credits.
    #[arg(long, value_name = "CREDITS")]
    pub gptimg_balance: Option<u64>,

    /// Starting runbase balance of every key, in USD.
    #[arg(long, value_name = "USD")]
    pub runbase_balance: Option<Usd>,

    /// Price of one runblob task, in USD.
    #[arg(long, value_name = "USD")]
    pub runblob_price: Option<Usd>,

    /// A per-key rate limit, e.g. `gptimg=10/60s` or `runbase=off` (repeatable). runbase's
    /// documented 20/10s is on by default.
    #[arg(long = "rate-limit", value_name = "PROVIDER=N/WINDOW|off")]
    pub rate_limits: Vec<ProviderRateLimit>,

    /// Render images at their documented full size instead of a 256 px long side.
    #[arg(long, conflicts_with = "image_long_side")]
    pub full_size_images: bool,

    /// Render images with this long side, in pixels.
    #[arg(long, value_name = "PIXELS")]
    pub image_long_side: Option<u32>,

    /// Time between webhook attempts (default: 30s realistic, 1s otherwise).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub webhook_retry_interval: Option<Duration>,

    /// Also deliver webhooks to hosts other than this machine.
    #[arg(long)]
    pub deliver_external_webhooks: bool,

    /// Arm a fault (repeatable): `PROVIDER/OPERATION:KIND[:ARGS][@COUNT|@DURATION]` or JSON,
    /// e.g. `runblob/create:drop`, `gptimg/status:http:500@3`, `runblob/*:maintenance@10m`,
    /// `*/create:task_failure:OPENAI_DECLINED`, `runbase/any:latency:1500`.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<Fault>,
}

impl std::fmt::Debug for MockArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Through the configuration's Debug, which shows keys as labels only.
        f.debug_tuple("MockArgs")
            .field(&self.clone().into_config())
            .finish()
    }
}

impl Default for MockArgs {
    fn default() -> Self {
        MockArgs {
            port: 0,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_url: None,
            profile: Profile::Fast,
            seed: DEFAULT_SEED,
            api_keys: Vec::new(),
            any_runbase_key: false,
            runblob_balance: None,
            gptimg_balance: None,
            runbase_balance: None,
            runblob_price: None,
            rate_limits: Vec::new(),
            full_size_images: false,
            image_long_side: None,
            webhook_retry_interval: None,
            deliver_external_webhooks: false,
            faults: Vec::new(),
        }
    }
}

/// `PROVIDER=N/WINDOW` or `PROVIDER=off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderRateLimit {
    /// Whose limit.
    pub provider: Provider,
    /// The limit, or `None` for none.
    pub limit: Option<RateLimit>,
}

impl FromStr for ProviderRateLimit {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (provider, limit) = value.split_once('=').ok_or_else(|| {
            format!("{value:?}: expected PROVIDER=N/WINDOW or PROVIDER=off, e.g. gptimg=10/60s")
        })?;
        let provider: Provider = provider
            .parse()
            .map_err(|error: crate::UnknownProvider| error.to_string())?;
        let limit = match limit.trim() {
            "off" | "none" => None,
            limit => Some(limit.parse()?),
        };
        Ok(ProviderRateLimit { provider, limit })
    }
}

impl MockArgs {
    /// The configuration these flags describe.
    pub fn into_config(self) -> MockConfig {
        let defaults = Balances::default();
        let mut config = MockConfig::default()
            .host(self.host)
            .port(self.port)
            .profile(self.profile)
            .seed(self.seed)
            .balances(Balances {
                runblob: self.runblob_balance.unwrap_or(defaults.runblob),
                gptimg: self.gptimg_balance.map_or(defaults.gptimg, Credits),
                runbase: self.runbase_balance.unwrap_or(defaults.runbase),
            })
            .deliver_external_webhooks(self.deliver_external_webhooks);
        if let Some(url) = self.public_url {
            config = config.public_url(url);
        }
        for key in self.api_keys {
            config = config.api_key(key);
        }
        if self.any_runbase_key {
            config = config.any_runbase_key();
        }
        if let Some(price) = self.runblob_price {
            config = config.runblob_price(price);
        }
        for limit in self.rate_limits {
            config = config.rate_limit(limit.provider, limit.limit);
        }
        if self.full_size_images {
            config = config.image_size(ImageSize::Full);
        } else if let Some(pixels) = self.image_long_side {
            config = config.image_size(ImageSize::LongSide(pixels));
        }
        if let Some(interval) = self.webhook_retry_interval {
            config = config.webhook_retry_interval(interval);
        }
        for fault in self.faults {
            config = config.fault(fault);
        }
        config
    }
}

/// What the binary prints once it listens: a comment line, then `export` lines a shell can
/// `eval` (the base URLs, and the key when exactly one was fixed with `--api-key`).
pub fn banner(server: &MockServer) -> String {
    let config = server.config();
    let mut out = format!(
        "# imggen-mock listening on {} (profile {}, seed {}); Ctrl-C stops it\n",
        server.url(),
        config.profile,
        config.seed
    );
    for (name, value) in server.env() {
        out.push_str(&format!("export {name}={value}\n"));
    }
    if let [key] = config.api_keys() {
        for provider in Provider::ALL {
            out.push_str(&format!("export {}={key}\n", provider.api_key_env()));
        }
    }
    out
}

/// Starts the mock with `args`, writes the [`banner`] to `out`, and serves until Ctrl-C (or
/// SIGTERM), then shuts down cleanly.
pub async fn run(args: MockArgs, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let server = MockServer::start(args.into_config()).await?;
    let _ = out.write_all(banner(&server).as_bytes());
    let _ = out.flush();
    stop_signal().await;
    tracing::info!(target: "imggen_mock::server", "stopping");
    server.shutdown().await;
    Ok(())
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mock: MockArgs,
    }

    #[test]
    fn flags_build_the_configuration() {
        let cli = Cli::try_parse_from([
            "imggen-mock",
            "--port",
            "8099",
            "--profile",
            "realistic",
            "--api-key",
            "sk-fixed",
            "--gptimg-balance",
            "3",
            "--runblob-price",
            "0.05",
            "--rate-limit",
            "runbase=off",
            "--rate-limit",
            "gptimg=10/60s",
            "--fault",
            "runblob/create:drop@2",
            "--full-size-images",
        ])
        .unwrap();
        let config = cli.mock.into_config();
        assert_eq!(config.port, 8099);
        assert_eq!(config.profile, Profile::Realistic);
        assert_eq!(config.api_keys(), ["sk-fixed"]);
        assert_eq!(config.balances.gptimg, Credits(3));
        assert_eq!(config.runblob_price.to_plain_string(), "0.05");
        assert_eq!(config.runbase_rate_limit, None);
        assert_eq!(
            config.gptimg_rate_limit,
            Some(RateLimit::new(10, Duration::from_secs(60)))
        );
        assert_eq!(config.faults.len(), 1);
        assert_eq!(config.image_size, ImageSize::Full);
    }

    #[test]
    fn debug_shows_keys_as_labels() {
        let cli = Cli::try_parse_from(["imggen-mock", "--api-key", "sk-very-secret"]).unwrap();
        let debug = format!("{:?}", cli.mock);
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(
            debug.contains(&crate::key_label("sk-very-secret")),
            "{debug}"
        );
    }

    #[test]
    fn bad_flags_say_what_is_allowed() {
        let err = Cli::try_parse_from(["imggen-mock", "--profile", "slow"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("fast, realistic, instant"), "{err}");
        let err = Cli::try_parse_from(["imggen-mock", "--fault", "runblob/create:explode"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a fault kind"), "{err}");
        let err = Cli::try_parse_from(["imggen-mock", "--rate-limit", "gptimg"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("PROVIDER=N/WINDOW"), "{err}");
    }
}
