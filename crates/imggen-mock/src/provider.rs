//! The three emulated providers and the kinds of call a fault can target.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the emulated APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// runblob (`platform.runblob.io`): `/v1/chatgpt-images/…`
    Runblob,
    /// gptimg.co: `/api/v1/images/…`
    Gptimg,
    /// runbase (`runbase.net`): `/api/v1/runs…`
    Runbase,
}

impl Provider {
    /// All three, in the order the project lists them.
    pub const ALL: [Provider; 3] = [Provider::Runblob, Provider::Gptimg, Provider::Runbase];

    /// `runblob`, `gptimg` or `runbase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Runblob => "runblob",
            Provider::Gptimg => "gptimg",
            Provider::Runbase => "runbase",
        }
    }

    /// The environment variable the provider's client reads its base URL from.
    pub fn base_url_env(self) -> &'static str {
        match self {
            Provider::Runblob => "RUNBLOB_BASE_URL",
            Provider::Gptimg => "GPTIMG_BASE_URL",
            Provider::Runbase => "RUNBASE_BASE_URL",
        }
    }

    /// The environment variable the provider's client reads its API key from.
    pub fn api_key_env(self) -> &'static str {
        match self {
            Provider::Runblob => "RUNBLOB_API_KEY",
            Provider::Gptimg => "GPTIMG_API_KEY",
            Provider::Runbase => "RUNBASE_API_KEY",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not `runblob`, `gptimg` or `runbase`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a provider; known: runblob, gptimg, runbase")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "runblob" => Ok(Provider::Runblob),
            "gptimg" => Ok(Provider::Gptimg),
            "runbase" => Ok(Provider::Runbase),
            _ => Err(UnknownProvider(value.to_owned())),
        }
    }
}

/// The kind of call a request is, for faults and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A create (`POST …/generate`, `POST /api/v1/runs`): the call that is charged.
    Create,
    /// A status read (and runblob's list).
    Status,
    /// A result file under `/files/…`.
    Download,
    /// Any of the above.
    Any,
}

impl Operation {
    /// Whether a fault aimed at `self` applies to a request of kind `actual`.
    pub(crate) fn covers(self, actual: Operation) -> bool {
        self == Operation::Any || self == actual
    }

    /// `create`, `status`, `download` or `any`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Status => "status",
            Operation::Download => "download",
            Operation::Any => "any",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "create" => Ok(Operation::Create),
            "status" => Ok(Operation::Status),
            "download" => Ok(Operation::Download),
            "any" | "*" => Ok(Operation::Any),
            other => Err(format!(
                "{other:?} is not an operation; known: create, status, download, any"
            )),
        }
    }
}

/// Which provider and operation a request addresses, from its method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub provider: Provider,
    pub operation: Operation,
}

impl Route {
    /// Classifies a request. `None` for `/_mock/…` and paths no provider has.
    pub(crate) fn classify(method: &axum::http::Method, path: &str) -> Option<Route> {
        use axum::http::Method;
        let route = |provider, operation| {
            Some(Route {
                provider,
                operation,
            })
        };
        let is_get = method == Method::GET;
        let is_post = method == Method::POST;
        if is_post && path == "/v1/chatgpt-images/generate" {
            route(Provider::Runblob, Operation::Create)
        } else if is_get
            && (path == "/v1/chatgpt-images/generations"
                || path.starts_with("/v1/chatgpt-images/generations/"))
        {
            route(Provider::Runblob, Operation::Status)
        } else if is_post && path == "/api/v1/images/generate" {
            route(Provider::Gptimg, Operation::Create)
        } else if is_get && path.starts_with("/api/v1/images/task/") {
            route(Provider::Gptimg, Operation::Status)
        } else if is_post && path == "/api/v1/runs" {
            route(Provider::Runbase, Operation::Create)
        } else if is_get && path.starts_with("/api/v1/runs/") {
            route(Provider::Runbase, Operation::Status)
        } else if is_get && let Some(rest) = path.strip_prefix("/files/") {
            let provider = rest.split('/').next()?.parse().ok()?;
            route(provider, Operation::Download)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn routes_are_classified_by_method_and_path() {
        let classify = |method, path| Route::classify(&method, path);
        assert_eq!(
            classify(Method::POST, "/v1/chatgpt-images/generate"),
            Some(Route {
                provider: Provider::Runblob,
                operation: Operation::Create
            })
        );
        assert_eq!(
            classify(Method::GET, "/api/v1/runs/run_1"),
            Some(Route {
                provider: Provider::Runbase,
                operation: Operation::Status
            })
        );
        assert_eq!(
            classify(Method::GET, "/files/gptimg/gpt-image-2-x/0.png"),
            Some(Route {
                provider: Provider::Gptimg,
                operation: Operation::Download
            })
        );
        assert_eq!(classify(Method::GET, "/_mock/ledger"), None);
        assert_eq!(classify(Method::GET, "/files/nobody/x/0.png"), None);
        assert_eq!(classify(Method::GET, "/v1/chatgpt-images/generate"), None);
    }
}
