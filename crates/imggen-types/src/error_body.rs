//! What an error answer means for money: the knowledge the transport and the retry policy need
//! about each provider's error bodies, kept here with the bodies themselves.

use std::fmt::{Debug, Display};

use serde::de::DeserializeOwned;

use crate::{gptimg, runbase, runblob};

/// What a non-2xx answer to a **create** says about the charge.
///
/// Every provider charges when a task is created, so a create is retried only when the answer
/// proves nothing was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectedCreate {
    /// The provider refused before charging. `retryable`: the same request may succeed later
    /// (rate limited, maintenance, a refunded internal error).
    NotCharged {
        /// Whether sending the same request again may succeed.
        retryable: bool,
    },
    /// The answer does not prove that nothing was charged (a gateway error, an undocumented
    /// 5xx). Never resubmit blindly: check first.
    MayHaveBeenCharged,
}

/// A provider's error body, as the transport and the retry policy read it.
pub trait ProviderErrorBody: DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// The provider's typed error code.
    type Code: Clone + Debug + Display + PartialEq + Send + Sync + 'static;

    /// The provider's name, as imggen writes it in messages: `runblob`, `gptimg`, `runbase`.
    const PROVIDER: &'static str;

    /// The error code, when the body carries one.
    fn code(&self) -> Option<Self::Code>;

    /// What a person should read: the provider's message, made specific where the body allows
    /// (gptimg's 402 becomes `4 credits required, 1 available`).
    fn message(&self) -> Option<String>;

    /// The request id the body carries, if any.
    fn request_id(&self) -> Option<&str> {
        None
    }

    /// What a person should do about this answer, when the provider's docs say.
    fn advice(&self) -> Option<&'static str> {
        None
    }

    /// What a non-2xx answer to a create means for the charge. `body` is `None` when the body
    /// did not parse.
    fn rejected_create(status: u16, body: Option<&Self>) -> RejectedCreate {
        let _ = body;
        match status {
            429 => RejectedCreate::NotCharged { retryable: true },
            400..=499 => RejectedCreate::NotCharged { retryable: false },
            _ => RejectedCreate::MayHaveBeenCharged,
        }
    }

    /// Whether a failed **read** (a status call) is worth repeating: rate limits and gateway
    /// errors pass; anything else would fail again.
    fn retryable_read(status: u16, body: Option<&Self>) -> bool {
        let _ = body;
        matches!(status, 429 | 502 | 503 | 504)
    }
}

impl ProviderErrorBody for runblob::ErrorBody {
    type Code = runblob::ErrorCode;
    const PROVIDER: &'static str = "runblob";

    fn code(&self) -> Option<Self::Code> {
        runblob::ErrorBody::code(self)
    }

    fn message(&self) -> Option<String> {
        runblob::ErrorBody::message(self)
    }

    fn advice(&self) -> Option<&'static str> {
        runblob::ErrorBody::code(self)?.advice()
    }

    fn rejected_create(status: u16, body: Option<&Self>) -> RejectedCreate {
        let code = body.and_then(runblob::ErrorBody::code);
        match (status, code) {
            // Documented: the service is down and took nothing.
            (503, Some(runblob::ErrorCode::Maintenance)) => {
                RejectedCreate::NotCharged { retryable: true }
            }
            (429, _) => RejectedCreate::NotCharged { retryable: true },
            (400..=499, _) => RejectedCreate::NotCharged { retryable: false },
            // Including 500 OPENAI_DECLINED: "refund attempted" is not a refund proven, and
            // the same prompt would be declined again anyway.
            _ => RejectedCreate::MayHaveBeenCharged,
        }
    }
}

impl ProviderErrorBody for gptimg::ErrorBody {
    type Code = gptimg::ErrorCode;
    const PROVIDER: &'static str = "gptimg";

    fn code(&self) -> Option<Self::Code> {
        Some(self.error.code.clone())
    }

    fn message(&self) -> Option<String> {
        Some(self.describe()).filter(|message| !message.is_empty())
    }

    fn request_id(&self) -> Option<&str> {
        self.error.request_id.as_deref()
    }

    fn advice(&self) -> Option<&'static str> {
        self.error.code.advice()
    }

    fn rejected_create(status: u16, body: Option<&Self>) -> RejectedCreate {
        let code = body.map(|body| &body.error.code);
        match (status, code) {
            // Documented: "The credit charge is refunded automatically."
            (500, Some(gptimg::ErrorCode::InternalError)) => {
                RejectedCreate::NotCharged { retryable: true }
            }
            (429, _) => RejectedCreate::NotCharged { retryable: true },
            (400..=499, _) => RejectedCreate::NotCharged { retryable: false },
            _ => RejectedCreate::MayHaveBeenCharged,
        }
    }

    fn retryable_read(status: u16, body: Option<&Self>) -> bool {
        let internal = body.is_some_and(|body| body.error.code == gptimg::ErrorCode::InternalError);
        matches!(status, 429 | 502 | 503 | 504) || (status == 500 && internal)
    }
}

impl ProviderErrorBody for runbase::ErrorBody {
    type Code = runbase::ErrorCode;
    const PROVIDER: &'static str = "runbase";

    fn code(&self) -> Option<Self::Code> {
        self.error.code.clone()
    }

    fn message(&self) -> Option<String> {
        Some(self.error.message.clone()).filter(|message| !message.is_empty())
    }

    fn advice(&self) -> Option<&'static str> {
        self.error.code.as_ref()?.advice()
    }

    fn rejected_create(status: u16, body: Option<&Self>) -> RejectedCreate {
        match status {
            // USAGE_EXCEEDED is also a 429, but a quota does not come back in seconds.
            429 => RejectedCreate::NotCharged {
                retryable: !usage_exceeded(body),
            },
            400..=499 => RejectedCreate::NotCharged { retryable: false },
            _ => RejectedCreate::MayHaveBeenCharged,
        }
    }

    fn retryable_read(status: u16, body: Option<&Self>) -> bool {
        match status {
            429 => !usage_exceeded(body),
            502..=504 => true,
            _ => false,
        }
    }
}

fn usage_exceeded(body: Option<&runbase::ErrorBody>) -> bool {
    body.and_then(|body| body.error.code.as_ref()) == Some(&runbase::ErrorCode::UsageExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<B: ProviderErrorBody>(json: &str) -> B {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_documented_answers_prove_nothing_was_charged() {
        let maintenance: runblob::ErrorBody = parse(r#"{"detail":"Maintenance"}"#);
        assert_eq!(
            runblob::ErrorBody::rejected_create(503, Some(&maintenance)),
            RejectedCreate::NotCharged { retryable: true }
        );
        assert_eq!(
            runblob::ErrorBody::rejected_create(503, None),
            RejectedCreate::MayHaveBeenCharged
        );
        let declined: runblob::ErrorBody = parse(r#"{"detail":"OPENAI_DECLINED"}"#);
        assert_eq!(
            runblob::ErrorBody::rejected_create(500, Some(&declined)),
            RejectedCreate::MayHaveBeenCharged
        );

        let internal: gptimg::ErrorBody =
            parse(r#"{"error":{"code":"INTERNAL_ERROR","message":"boom","request_id":"r"}}"#);
        assert_eq!(
            gptimg::ErrorBody::rejected_create(500, Some(&internal)),
            RejectedCreate::NotCharged { retryable: true }
        );
        assert_eq!(
            gptimg::ErrorBody::rejected_create(502, None),
            RejectedCreate::MayHaveBeenCharged
        );
        let credits: gptimg::ErrorBody = parse(
            r#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"x","required":4,"available":1}}"#,
        );
        assert_eq!(
            gptimg::ErrorBody::rejected_create(402, Some(&credits)),
            RejectedCreate::NotCharged { retryable: false }
        );
    }

    #[test]
    fn a_rate_limit_is_worth_waiting_for_but_an_exhausted_quota_is_not() {
        let limited: runbase::ErrorBody =
            parse(r#"{"error":{"message":"Rate limit exceeded","code":"RATE_LIMITED"}}"#);
        let quota: runbase::ErrorBody =
            parse(r#"{"error":{"message":"Usage exceeded","code":"USAGE_EXCEEDED"}}"#);
        assert!(runbase::ErrorBody::retryable_read(429, Some(&limited)));
        assert!(!runbase::ErrorBody::retryable_read(429, Some(&quota)));
        assert_eq!(
            runbase::ErrorBody::rejected_create(429, Some(&quota)),
            RejectedCreate::NotCharged { retryable: false }
        );
        assert!(!runbase::ErrorBody::retryable_read(404, None));
    }
}
