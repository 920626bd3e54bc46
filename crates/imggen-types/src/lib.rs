//! The wire types of the three image APIs imggen speaks — runblob, gptimg.co and runbase —
//! with exact money, open enums and pure validation. No I/O: no HTTP client, no runtime.
//!
//! - [`runblob`], [`gptimg`], [`runbase`]: every request, response, status object, webhook
//!   body and error body, named as the provider names them on the wire.
//! - [`money`]: [`Usd`] (exact decimal), [`MicroUsd`] (runbase's integers), [`Credits`]
//!   (gptimg). Never a float.
//! - [`AspectRatio`] and the other open enums: known values are variants, a value a provider
//!   adds later parses as `Other`, and user input parses strictly (see [`open_enum`]).
//! - [`ValidationError`]: every documented limit, checked before anything is sent.
//! - [`media`]: image formats read from bytes, data URIs.
//! - [`text`]: untrusted text (what a server says) made safe to print.
//! - [`ProviderErrorBody`]: what each provider's error answers mean for money (was a failed
//!   create charged? is a retry safe?).
//!
//! ```
//! use imggen_types::{AspectRatio, gptimg};
//!
//! let request = gptimg::GenerateRequest::new("A lighthouse on a cliff at dusk")
//!     .aspect_ratio(AspectRatio::Landscape16x9)
//!     .n(2);
//! request.validate()?;
//! assert_eq!(
//!     serde_json::to_string(&request)?,
//!     r#"{"prompt":"A lighthouse on a cliff at dusk","aspect_ratio":"16:9","n":2}"#
//! );
//!
//! // A status the provider adds next year still parses.
//! let status: gptimg::TaskStatus = serde_json::from_str(r#""queued""#)?;
//! assert_eq!(status, gptimg::TaskStatus::Other("queued".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod common;
pub mod error_body;
mod id;
pub mod media;
pub mod money;
pub mod open_enum;
#[cfg(feature = "json-schema")]
mod schema;
pub mod text;
pub mod validation;

pub mod gptimg;
pub mod runbase;
pub mod runblob;

pub use common::AspectRatio;
pub use error_body::{ProviderErrorBody, RejectedCreate};
pub use money::{Credits, MicroUsd, Usd};
pub use open_enum::UnknownValue;
pub use validation::ValidationError;
