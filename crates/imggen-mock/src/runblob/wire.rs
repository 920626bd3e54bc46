//! A runblob task as the API shows it — in a status answer, a page of the task list and a
//! webhook body alike. Apart from the routes, so the webhook sender needs nothing else of
//! runblob's.

use std::time::Instant;

use imggen_types::runblob::{Generation, GenerationStatus, TaskUuid};

use crate::tasks::{Phase, Task};

/// The status object (and webhook body) of a task at `now`.
pub(crate) fn generation(task: &Task, now: Instant, base_url: &str) -> Generation {
    let phase = task.phase(now);
    Generation {
        task_uuid: TaskUuid::new(task.id.clone()),
        status: match phase {
            Phase::Pending => GenerationStatus::Pending,
            Phase::Processing => GenerationStatus::Processing,
            Phase::Completed => GenerationStatus::Completed,
            Phase::Failed => GenerationStatus::Failed,
        },
        prompt: Some(task.prompt.clone()),
        result_image_url: (phase == Phase::Completed)
            .then(|| task.file_urls(base_url).into_iter().next())
            .flatten(),
        message: (phase == Phase::Failed)
            .then(|| task.failure.clone())
            .flatten(),
    }
}
