//! Where a task is, in one vocabulary for every provider, with the provider's own object kept
//! next to it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A task's state, whichever provider runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    /// Accepted, not started (a provider's `pending`).
    Queued,
    /// Being generated.
    Running,
    /// Done.
    Succeeded {
        /// The results, in order.
        images: Vec<ImageRef>,
    },
    /// Failed; the providers refund failed tasks.
    Failed {
        /// The provider's failure code (`OPENAI_DECLINED`, `MODERATION_FAILED`, …), when it
        /// gave one.
        code: Option<String>,
        /// The provider's words.
        message: Option<String>,
    },
    /// A status this version of imggen does not know; waiting goes on (bounded by the
    /// deadline), since it may be a new name for "still working".
    Unknown {
        /// The status exactly as the provider sent it.
        raw_status: String,
    },
}

impl TaskState {
    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskState::Succeeded { .. } | TaskState::Failed { .. })
    }

    /// A one-word name: `queued`, `running`, `succeeded`, `failed`, or the unknown raw status.
    pub fn name(&self) -> &str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded { .. } => "succeeded",
            TaskState::Failed { .. } => "failed",
            TaskState::Unknown { raw_status } => raw_status,
        }
    }
}

/// A result image, as the provider announced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageRef {
    /// Where to download it.
    pub url: String,
    /// The media type the provider claims (downloads sniff the bytes instead of trusting it).
    pub media_type: Option<String>,
}

impl ImageRef {
    /// An image at `url`.
    pub fn new(url: impl Into<String>, media_type: Option<String>) -> Self {
        ImageRef {
            url: url.into(),
            media_type,
        }
    }
}

/// The provider's own status object, exactly as it was parsed: read it back with
/// [`downcast_ref`](Self::downcast_ref) and the provider crate's type, or as JSON. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct RawObject(Arc<dyn Object>);

/// What [`RawObject`] holds: any status type a provider parses.
trait Object: Any + fmt::Debug + Send + Sync {
    fn to_json(&self) -> serde_json::Value;
    fn as_any(&self) -> &dyn Any;
}

impl<T: Serialize + fmt::Debug + Send + Sync + 'static> Object for T {
    fn to_json(&self) -> serde_json::Value {
        // A wire type serialises to JSON by construction; nothing to report otherwise.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl RawObject {
    /// Keeps a provider's status object.
    pub fn new<T: Serialize + fmt::Debug + Send + Sync + 'static>(object: T) -> Self {
        RawObject(Arc::new(object))
    }

    /// The object, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// The object as JSON, with the provider's own field names.
    pub fn to_json(&self) -> serde_json::Value {
        self.0.to_json()
    }
}

impl fmt::Debug for RawObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for RawObject {
    /// The same object, or objects with the same JSON.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_json() == other.to_json()
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A task's state and the object it was read from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskStatus {
    /// The common state.
    #[serde(flatten)]
    pub state: TaskState,
    /// What the provider answered.
    pub raw: RawObject,
}

impl TaskStatus {
    /// A status from its parts.
    pub fn new(state: TaskState, raw: RawObject) -> Self {
        TaskStatus { state, raw }
    }
}

/// The `code` of an undocumented error value, when it is an object that has one: how a
/// provider that says nothing of its failure shape may report a code.
pub fn json_code(error: Option<&serde_json::Value>) -> Option<String> {
    error?
        .get("code")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_object_is_kept_as_parsed_and_shown_as_json() {
        #[derive(Debug, PartialEq, Serialize)]
        struct Wire {
            status: &'static str,
        }
        let status = TaskStatus::new(TaskState::Running, RawObject::new(Wire { status: "busy" }));
        assert_eq!(
            status.raw.downcast_ref::<Wire>(),
            Some(&Wire { status: "busy" })
        );
        assert_eq!(status.raw.downcast_ref::<String>(), None);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"state": "running", "raw": {"status": "busy"}})
        );
        assert!(
            TaskState::Failed {
                code: None,
                message: None
            }
            .is_terminal()
        );
        assert_eq!(
            TaskState::Unknown {
                raw_status: "queued".into()
            }
            .name(),
            "queued"
        );
    }
}
