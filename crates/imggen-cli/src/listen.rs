//! `--listen ADDR`: imggen-core's webhook receiver served on ADDR for as long as the command
//! waits, so a provider's callback (runblob's) ends a wait at once instead of at the next
//! poll. A callback is only a hint: the wait confirms it with one status call of its own,
//! and polls on the slower fallback schedule meanwhile, so a lost callback costs only time.

use std::net::SocketAddr;
use std::sync::Arc;

use imggen_core::webhook::server;
use imggen_core::{CancellationToken, Imggen, Provider, WebhookHub};
use tokio::task::JoinHandle;

use crate::context::Ctx;
use crate::exit::Failure;

/// The callback URL to send with each create: `--public-url`, which `--listen` needs on a
/// command that creates (`generate`, `batch`); `None` without `--listen`.
pub(crate) fn callback_url(
    listen: Option<SocketAddr>,
    public_url: Option<&str>,
) -> Result<Option<String>, Failure> {
    match (listen, public_url) {
        (Some(_), Some(url)) => Ok(Some(url.to_owned())),
        (Some(addr), None) => Err(Failure::usage(format!(
            "--listen {addr} needs --public-url: the URL the provider calls, which reaches {addr}"
        ))),
        (None, _) => Ok(None),
    }
}

/// Starts listening when `--listen` asks, and says so; `None` without it.
pub(crate) async fn start(
    listen: Option<SocketAddr>,
    public_url: Option<&str>,
    imggen: &Imggen,
    ctx: &Ctx,
) -> Result<Option<Listening>, Failure> {
    let Some(addr) = listen else {
        return Ok(None);
    };
    let listening = Listening::start(addr, imggen).await?;
    ctx.progress.notice(&notice(addr, public_url));
    Ok(Some(listening))
}

/// Stops listening, if it was.
pub(crate) async fn stop(listening: Option<Listening>) {
    if let Some(listening) = listening {
        listening.stop().await;
    }
}

/// The receiver, listening.
pub(crate) struct Listening {
    hub: WebhookHub,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl Listening {
    /// Binds `addr` and serves the callbacks of every provider of `imggen` that calls back;
    /// refused (nothing sent yet) when none does or the address cannot be bound.
    async fn start(addr: SocketAddr, imggen: &Imggen) -> Result<Listening, Failure> {
        let providers: Vec<Arc<dyn Provider>> = imggen
            .providers()
            .into_iter()
            .filter_map(|id| imggen.provider_named(id).cloned())
            .filter(|provider| provider.capabilities().webhooks)
            .collect();
        if providers.is_empty() {
            let names: Vec<String> = imggen.providers().iter().map(ToString::to_string).collect();
            return Err(Failure::usage(format!(
                "--listen: {} does not call webhooks, so nothing would call back; nothing was sent",
                names.join(", ")
            ))
            .hint("runblob calls back: add --provider runblob, or leave --listen out"));
        }
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
            Failure::usage(format!(
                "--listen {addr}: could not listen there: {error}; nothing was sent"
            ))
        })?;
        let hub = WebhookHub::new();
        let stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(
            listener,
            hub.clone(),
            providers,
            stop.clone().cancelled_owned(),
        ));
        Ok(Listening { hub, stop, server })
    }

    /// The events the waits subscribe to.
    pub(crate) fn hub(&self) -> WebhookHub {
        self.hub.clone()
    }

    /// Stops listening, once the waits are over.
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

/// What `--listen` says when it starts: where, and what must reach it.
fn notice(addr: SocketAddr, public_url: Option<&str>) -> String {
    match public_url {
        Some(url) => format!(
            "listening on {addr} for callbacks to {url} (the provider must reach that URL: runblob needs https, through a tunnel or a reverse proxy to {addr}); polling goes on slower meanwhile"
        ),
        None => format!(
            "listening on {addr} for the callbacks of tasks created with a callback URL that reaches it; polling goes on slower meanwhile"
        ),
    }
}
