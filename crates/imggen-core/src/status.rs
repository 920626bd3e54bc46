//! Where a task is, in one vocabulary for the three providers, with the provider's own object
//! kept next to it.

use imggen_types::{gptimg, runbase, runblob};
use serde::Serialize;

/// A task's state, whichever provider runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Accepted, not started (runblob and runbase `pending`).
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
        /// The provider's code (`OPENAI_DECLINED`, `MODERATION_FAILED`, …), when it gave one.
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

impl JobState {
    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobState::Succeeded { .. } | JobState::Failed { .. })
    }

    /// A one-word name: `queued`, `running`, `succeeded`, `failed`, or the unknown raw status.
    pub fn name(&self) -> &str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded { .. } => "succeeded",
            JobState::Failed { .. } => "failed",
            JobState::Unknown { raw_status } => raw_status,
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

/// The provider's own status object, exactly as it was parsed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "provider", content = "object", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProviderObject {
    /// A runblob generation.
    Runblob(runblob::Generation),
    /// A gptimg task.
    Gptimg(gptimg::Task),
    /// A runbase run.
    Runbase(runbase::Run),
}

/// A task's state and the object it was read from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobStatus {
    /// The common state.
    #[serde(flatten)]
    pub state: JobState,
    /// What the provider answered.
    pub raw: ProviderObject,
}

impl JobStatus {
    /// A status from its parts.
    pub fn new(state: JobState, raw: ProviderObject) -> Self {
        JobStatus { state, raw }
    }

    /// Reads a runblob generation.
    pub fn from_runblob(generation: runblob::Generation) -> Self {
        use runblob::GenerationStatus as S;
        let state = match &generation.status {
            S::Pending => JobState::Queued,
            S::Processing => JobState::Running,
            S::Completed => JobState::Succeeded {
                images: generation
                    .result_image_url
                    .iter()
                    .map(|url| ImageRef::new(url.clone(), None))
                    .collect(),
            },
            S::Failed => JobState::Failed {
                code: generation.failure_code().map(|code| code.to_string()),
                message: generation.message.clone(),
            },
            other => JobState::Unknown {
                raw_status: other.to_string(),
            },
        };
        JobStatus::new(state, ProviderObject::Runblob(generation))
    }

    /// Reads a gptimg task.
    pub fn from_gptimg(task: gptimg::Task) -> Self {
        use gptimg::TaskStatus as S;
        let state = match &task.status {
            S::Processing => JobState::Running,
            S::Completed => JobState::Succeeded {
                images: task
                    .images
                    .iter()
                    .flatten()
                    .map(|image| ImageRef::new(image.url.clone(), image.content_type.clone()))
                    .collect(),
            },
            S::Failed => JobState::Failed {
                code: json_code(task.error.as_ref()),
                message: task.error_message(),
            },
            other => JobState::Unknown {
                raw_status: other.to_string(),
            },
        };
        JobStatus::new(state, ProviderObject::Gptimg(task))
    }

    /// Reads a runbase run.
    pub fn from_runbase(run: runbase::Run) -> Self {
        use runbase::RunStatus as S;
        let state = match &run.status {
            S::Pending => JobState::Queued,
            S::Processing => JobState::Running,
            S::Succeeded => JobState::Succeeded {
                images: run
                    .output_urls()
                    .iter()
                    .map(|url| ImageRef::new(url.clone(), None))
                    .collect(),
            },
            S::Failed => JobState::Failed {
                code: json_code(run.error.as_ref()),
                message: run.error_message(),
            },
            other => JobState::Unknown {
                raw_status: other.to_string(),
            },
        };
        JobStatus::new(state, ProviderObject::Runbase(run))
    }

    /// The provider's status value as sent (`completed`, `succeeded`, …).
    pub fn raw_status(&self) -> &str {
        match &self.raw {
            ProviderObject::Runblob(generation) => generation.status.as_str(),
            ProviderObject::Gptimg(task) => task.status.as_str(),
            ProviderObject::Runbase(run) => run.status.as_str(),
        }
    }
}

/// The `code` of an undocumented error value, when it is an object that has one.
fn json_code(error: Option<&serde_json::Value>) -> Option<String> {
    error?
        .get("code")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_provider_maps_to_the_common_states() {
        let generation: runblob::Generation = serde_json::from_value(json!({
            "task_uuid": "t1", "status": "completed", "prompt": "p",
            "result_image_url": "https://cdn.example/a.png", "message": null
        }))
        .unwrap();
        let status = JobStatus::from_runblob(generation);
        assert_eq!(
            status.state,
            JobState::Succeeded {
                images: vec![ImageRef::new("https://cdn.example/a.png", None)]
            }
        );
        assert_eq!(status.raw_status(), "completed");

        let failed: runblob::Generation = serde_json::from_value(json!({
            "task_uuid": "t1", "status": "failed", "message": "OPENAI_DECLINED"
        }))
        .unwrap();
        assert_eq!(
            JobStatus::from_runblob(failed).state,
            JobState::Failed {
                code: Some("OPENAI_DECLINED".into()),
                message: Some("OPENAI_DECLINED".into())
            }
        );

        let task: gptimg::Task = serde_json::from_value(json!({
            "task_id": "gpt-image-2-abc", "status": "completed",
            "images": [{"url": "https://cdn.example/1.png", "content_type": "image/png"},
                       {"url": "https://cdn.example/2.png"}]
        }))
        .unwrap();
        let JobState::Succeeded { images } = JobStatus::from_gptimg(task).state else {
            panic!("not succeeded")
        };
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].media_type.as_deref(), Some("image/png"));

        let failed: gptimg::Task = serde_json::from_value(json!({
            "task_id": "gpt-image-2-abc", "status": "failed",
            "error": {"code": "MODERATION_FAILED", "message": "nope"}
        }))
        .unwrap();
        assert_eq!(
            JobStatus::from_gptimg(failed).state,
            JobState::Failed {
                code: Some("MODERATION_FAILED".into()),
                message: Some("MODERATION_FAILED: nope".into())
            }
        );

        let run: runbase::Run = serde_json::from_value(json!({
            "id": "run_1", "model": "openai/gpt-image-2", "status": "pending"
        }))
        .unwrap();
        assert_eq!(JobStatus::from_runbase(run).state, JobState::Queued);
    }

    #[test]
    fn a_status_a_provider_adds_later_is_unknown_and_not_terminal() {
        let run: runbase::Run = serde_json::from_value(json!({
            "id": "run_1", "model": "openai/gpt-image-2", "status": "cancelled"
        }))
        .unwrap();
        let status = JobStatus::from_runbase(run);
        assert_eq!(
            status.state,
            JobState::Unknown {
                raw_status: "cancelled".into()
            }
        );
        assert!(!status.state.is_terminal());
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["state"], "unknown");
        assert_eq!(json["raw"]["provider"], "runbase");
        assert_eq!(json["raw"]["object"]["status"], "cancelled");
    }
}
