//! Collecting a request's tasks: waiting, downloading into the output folder, and journaling
//! each outcome.

use std::path::Path;
use std::sync::Arc;

use super::{BatchEventKind, JournalError, JournalTask, RequestState, Run, Shortfall, TaskOutcome};
use crate::download::{DownloadOptions, ImageData, RequestNaming, conversion_warnings};
use crate::handle::TaskHandle;
use crate::status::{TaskState, TaskStatus};
use crate::wait::WaitOptions;
use crate::webhook::WebhookHub;

/// Deletes the temporary files of downloads a killed process left (`.<name>.<16 hex>.part`).
pub(super) fn remove_partial_files(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if imggen_http::fs::is_temporary_name(name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Run {
    /// Waits for every task of the request that has not ended, downloads the images of those
    /// that succeeded (again, where files went missing), and finishes the request when all
    /// have ended.
    pub(super) async fn collect(self: &Arc<Self>, id: &str) -> Result<(), JournalError> {
        let entry = self.entry(id)?;
        // `{n}` counts the request's images across its tasks, in the order they were made.
        let mut first_number = 1;
        let mut numbered = Vec::with_capacity(entry.tasks.len());
        for task in &entry.tasks {
            numbered.push((first_number, task));
            first_number += task.images.max(1) as usize;
        }
        let to_collect: Vec<(usize, JournalTask)> = numbered
            .into_iter()
            .filter(|(_, task)| match task.outcome {
                None => true,
                Some(TaskOutcome::Succeeded) => {
                    task.files.iter().any(|f| !self.out_dir.join(f).exists())
                }
                Some(TaskOutcome::Failed) => false,
            })
            .map(|(first, task)| (first, task.clone()))
            .collect();
        let results = futures_util::future::join_all(
            to_collect
                .iter()
                .map(|(first, task)| self.collect_task(id, task, *first)),
        )
        .await;
        let mut problems = Vec::new();
        for result in results {
            match result {
                Ok(()) => {}
                Err(Shortfall::Journal(error)) => return Err(error),
                Err(Shortfall::Wait(problem)) => problems.push(problem),
            }
        }
        let entry = self.entry(id)?;
        self.update_cost(&entry);
        match entry.state {
            RequestState::Submitted if problems.is_empty() => {
                self.journal.finish(id)?;
            }
            RequestState::Submitted | RequestState::Done if !problems.is_empty() => {
                self.journal.set_error(id, Some(&problems.join("; ")))?;
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) async fn collect_task(
        self: &Arc<Self>,
        id: &str,
        task: &JournalTask,
        first_number: usize,
    ) -> Result<(), Shortfall> {
        let handle = &task.handle;
        let run = Arc::clone(self);
        let owner = id.to_owned();
        let deadline = match (self.options.deadline, self.time_left()) {
            (Some(own), Some(left)) => Some(own.min(left)),
            (own, left) => own.or(left),
        };
        let wait = WaitOptions {
            deadline,
            cancel: Some(self.cancel.clone()),
            schedule: self.options.schedule,
            events: self.options.events.as_ref().map(WebhookHub::subscribe),
            on_status: Some(Arc::new(move |handle: &TaskHandle, status: &TaskStatus| {
                run.emit(
                    Some(&owner),
                    BatchEventKind::Status {
                        handle: handle.clone(),
                        state: status.state.clone(),
                    },
                );
            })),
        };
        let status = self
            .imggen
            .wait(handle, wait)
            .await
            .map_err(|error| Shortfall::Wait(error.to_string()))?;
        match &status.state {
            TaskState::Failed { code, message } => {
                let why = match (code, message) {
                    (Some(code), Some(message)) if code != message => {
                        format!("{code}: {message}")
                    }
                    (Some(code), _) => code.clone(),
                    (None, Some(message)) => message.clone(),
                    (None, None) => "the provider gave no reason".to_owned(),
                };
                self.journal
                    .task_failed(handle.provider, &handle.task_id, &why)?;
            }
            TaskState::Succeeded { .. } => {
                #[allow(unused_mut)]
                let mut download = DownloadOptions::to_dir(&self.out_dir)
                    .max_bytes(self.options.max_image_bytes)
                    .names(self.options.names.clone());
                #[cfg(feature = "convert")]
                if let Some(conversion) = self.options.conversion {
                    download = download.convert(conversion);
                }
                // Files of this task saved before (then lost) are written again under their
                // names; new ones get names no file has.
                let naming = RequestNaming {
                    id: id.to_owned(),
                    first_number,
                    kept: task.files.clone(),
                };
                let images = self
                    .imggen
                    .download_until(handle, &status, &download, self.until, Some(&naming))
                    .await
                    .map_err(|error| Shortfall::Wait(error.to_string()))?;
                // The files on disk: each converted file, then the provider's when kept. A
                // conversion that failed leaves a paid image as it came: a warning, not a
                // failure.
                for warning in conversion_warnings(&images) {
                    self.emit(Some(id), BatchEventKind::Warning { warning });
                }
                let files: Vec<String> = images
                    .iter()
                    .flat_map(|image| std::iter::once(&image.data).chain(&image.original))
                    .filter_map(|data| match data {
                        ImageData::File(path) => path
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned()),
                        ImageData::Bytes(_) => None,
                    })
                    .collect();
                self.journal.task_succeeded(
                    handle.provider,
                    &handle.task_id,
                    &files,
                    &self.saved,
                )?;
            }
            other => {
                return Err(Shortfall::Wait(format!(
                    "task {handle} ended in a state imggen does not know ({})",
                    other.name()
                )));
            }
        }
        Ok(())
    }
}

pub(super) fn log_unjournaled(id: &str, handles: &[TaskHandle]) {
    for handle in handles {
        tracing::error!(
            request = %id,
            handle = %handle.to_json(),
            "could not journal a paid task: keep this handle to resume it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_downloaders_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".t1-1.png.0123456789abcdef.part",
            "t1-1.png",
            ".hidden.part",
            "notes.part",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_partial_files(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden.part", "notes.part", "t1-1.png"]);
    }
}
