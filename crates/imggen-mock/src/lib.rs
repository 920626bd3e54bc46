//! An offline, stateful emulator of the runblob, gptimg.co and runbase image APIs — in the
//! spirit of stripe-mock — for tests, demos and CI that must not pay or reach the network.
//!
//! One HTTP server speaks all three wire protocols (their paths do not collide): tasks with
//! real lifecycles on an injectable clock, real PNG results, a money ledger with charges and
//! refunds, rate limits, runblob webhooks, and faults on demand.
//!
//! ```
//! use std::time::Duration;
//! use imggen_mock::{MockConfig, MockServer, Profile};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = MockServer::start(
//!     MockConfig::default()
//!         .profile(Profile::Fixed(Duration::from_secs(2)))
//!         .manual_clock(),
//! )
//! .await?;
//!
//! let http = reqwest::Client::new();
//! let created: serde_json::Value = http
//!     .post(format!("{}/v1/chatgpt-images/generate", server.url()))
//!     .bearer_auth("sk-test")
//!     .json(&serde_json::json!({"prompt": "A lighthouse at dusk"}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(created["status"], "pending");
//! assert_eq!(created["price"], "0.0123");
//!
//! server.advance(Duration::from_secs(2)).await; // no real waiting
//! let task = created["task_uuid"].as_str().unwrap_or_default();
//! let status: serde_json::Value = http
//!     .get(format!("{}/v1/chatgpt-images/generations/{task}", server.url()))
//!     .bearer_auth("sk-test")
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(status["status"], "completed");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - [`MockServer`]: start, URL, clock, faults, ledger, webhooks, balances, reset, shutdown.
//! - [`MockConfig`]: profile ([`Profile`]), clock ([`MockClock`]), keys, balances, rate limits,
//!   image size, webhook timing, faults ([`Fault`]).
//! - [`cli`]: the flags and run loop of the `imggen-mock` binary, reusable by other CLIs.
//! - Everything under `/_mock/` is the mock's own (ledger, webhooks, faults, balances, tasks,
//!   clock, reset, health); see the README.

mod admin;
mod caption;
pub mod cli;
mod clock;
mod config;
mod faults;
mod files;
mod gptimg;
mod hash;
mod images;
mod keys;
mod ledger;
mod provider;
mod ratelimit;
mod requests;
mod respond;
mod runbase;
mod runblob;
mod server;
mod state;
mod tasks;
mod webhooks;

pub use clock::MockClock;
pub use config::{Balance, Balances, ImageSize, MockConfig, Profile, RateLimit, parse_duration};
pub use faults::{Count, Fault, FaultInfo, FaultKind, InvalidFault};
pub use images::render_png;
pub use keys::key_label;
pub use ledger::{Amount, EntryKind, LedgerEntry};
pub use provider::{Operation, Provider, UnknownProvider};
pub use requests::{RequestRecord, RequestStats};
pub use server::{Error, MockServer};
pub use state::TaskInfo;
pub use webhooks::{DeliveryStatus, WebhookAttempt, WebhookDelivery};

/// The README's Rust examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
