//! Which provider, and the one trait every provider adapter implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cost::Cost;
use crate::error::{CallError, CallErrorKind, CallOperation};
use crate::plan::PlannedTask;
use crate::request::Reference;
use crate::status::JobStatus;

pub use imggen_http::Downloaded;

/// One of the three image APIs imggen speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// runblob (`platform.runblob.io`): one image per task, USD prices, webhooks.
    Runblob,
    /// gptimg.co: up to 4 images per task, credits.
    Gptimg,
    /// runbase (`runbase.net`): several OpenAI models, one image per run, 20 requests per 10 s.
    Runbase,
}

impl ProviderId {
    /// All three, in a stable order.
    pub const ALL: [ProviderId; 3] = [ProviderId::Runblob, ProviderId::Gptimg, ProviderId::Runbase];

    /// `runblob`, `gptimg` or `runbase`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Runblob => "runblob",
            ProviderId::Gptimg => "gptimg",
            ProviderId::Runbase => "runbase",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is not `runblob`, `gptimg` or `runbase`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a provider; known providers: runblob, gptimg, runbase")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "runblob" => Ok(ProviderId::Runblob),
            "gptimg" | "gptimg.co" => Ok(ProviderId::Gptimg),
            "runbase" => Ok(ProviderId::Runbase),
            _ => Err(UnknownProvider(value.to_owned())),
        }
    }
}

/// A boxed, sendable future: what [`Provider`]'s methods return, so the trait can be used as
/// `dyn Provider` without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a create answered: the task id and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The id to poll.
    pub task_id: String,
    /// What the create charged, as the answer (or the provider's documented price) says.
    pub cost: Option<Cost>,
    /// The model that serves the task, when known.
    pub model: Option<String>,
}

impl Created {
    /// A created task.
    pub fn new(task_id: impl Into<String>, cost: Option<Cost>, model: Option<String>) -> Self {
        Created {
            task_id: task_id.into(),
            cost,
            model,
        }
    }
}

/// One entry of a provider's own list of the key's recent tasks (runblob's
/// `GET /v1/chatgpt-images/generations`): what [`Provider::recent_tasks`] returns, newest first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecentTask {
    /// The provider's task id.
    pub task_id: String,
    /// The prompt the task was created with, when the list says.
    pub prompt: Option<String>,
    /// Where the task is.
    pub status: JobStatus,
}

impl RecentTask {
    /// An entry of the list.
    pub fn new(task_id: impl Into<String>, prompt: Option<String>, status: JobStatus) -> Self {
        RecentTask {
            task_id: task_id.into(),
            prompt,
            status,
        }
    }
}

/// Limits for one download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadLimits {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// An attempt that receives no byte for this long ends.
    pub stall_timeout: std::time::Duration,
}

/// One provider behind the unified model: an adapter over one client crate (the client crates
/// know nothing of this trait), or a fake in tests.
///
/// An adapter only maps: the unified [`PlannedTask`] to the provider's wire request, and the
/// provider's answers and errors back. It never retries, sleeps or schedules — imggen-core's
/// single retry loop and request budget do — so its client must not retry either.
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// Which provider this is.
    fn id(&self) -> ProviderId;

    /// A short label of the API key, never the key: work on one key shares one request budget.
    fn key_label(&self) -> String;

    /// Whether result URLs may be `http://`: only when the API itself is reached over http (a
    /// local emulator or proxy).
    fn allows_http_downloads(&self) -> bool;

    /// Turns reference images into what the provider sends, once per submission and before
    /// its first create (reading files, encoding bytes), so a missing file fails the whole
    /// submission before anything is sent. The default passes them through.
    fn prepare<'a>(
        &'a self,
        references: &'a [Reference],
    ) -> BoxFuture<'a, Result<Vec<Reference>, CallError>> {
        Box::pin(std::future::ready(Ok(references.to_vec())))
    }

    /// Creates (and pays for) one task. Sent once: the caller decides whether an error may be
    /// retried.
    fn create<'a>(&'a self, task: &'a PlannedTask) -> BoxFuture<'a, Result<Created, CallError>>;

    /// Reads a task's status.
    fn status<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<JobStatus, CallError>>;

    /// Downloads a result file without sending the API key.
    fn download<'a>(
        &'a self,
        url: &'a str,
        limits: DownloadLimits,
    ) -> BoxFuture<'a, Result<Downloaded, CallError>>;

    /// Whether the provider keeps a list of the key's recent tasks that
    /// [`recent_tasks`](Self::recent_tasks) reads: what lets a create whose answer was lost be
    /// found, or proved never to have arrived. runblob has one; gptimg and runbase do not (the
    /// default).
    fn lists_recent_tasks(&self) -> bool {
        false
    }

    /// One page of the key's recent tasks, **newest first**: `limit` entries after skipping
    /// `offset`. A provider may return fewer than `limit` (its own cap); an empty page is the
    /// end of the list. Only called when [`lists_recent_tasks`](Self::lists_recent_tasks) is
    /// true; the default answers that the provider keeps no such list.
    fn recent_tasks(
        &self,
        offset: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<RecentTask>, CallError>> {
        let _ = (offset, limit);
        Box::pin(std::future::ready(Err(CallError::new(
            self.id(),
            CallOperation::Status,
            CallErrorKind::Config,
        )
        .with_message(format!(
            "{} keeps no list of recent tasks imggen can read",
            self.id()
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for id in ProviderId::ALL {
            assert_eq!(id.to_string().parse::<ProviderId>(), Ok(id));
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                format!("\"{}\"", id.as_str())
            );
        }
        assert_eq!(" RunBase ".parse::<ProviderId>(), Ok(ProviderId::Runbase));
        let err = "openai".parse::<ProviderId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"openai\" is not a provider; known providers: runblob, gptimg, runbase"
        );
    }
}
