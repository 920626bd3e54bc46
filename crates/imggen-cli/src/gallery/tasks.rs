//! The cards of `generate` and `wait`: a card per task, from what the command prints.

use std::path::Path;

use imggen_core::batch::ResultStatus;

use super::Card;
use crate::exit::Category;
use crate::money;
use crate::output::GenerateOutput;

/// A card per task of `output` (one for a request whose create failed or was lost before a
/// task existed), its images by their names in the output folder.
pub(crate) fn from_tasks(output: &GenerateOutput) -> Vec<Card> {
    let error = output.error.as_ref();
    let mut cards: Vec<Card> = output
        .tasks
        .iter()
        .map(|task| {
            let files: Vec<String> = output
                .images
                .iter()
                .filter(|image| image.task_id == task.task_id)
                .filter_map(|image| image.path.as_deref())
                .filter_map(|path| Path::new(path).file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            let status = match task.status.as_str() {
                "succeeded" if !files.is_empty() => ResultStatus::Done,
                "failed" => ResultStatus::Failed,
                _ => ResultStatus::Pending,
            };
            let text = |field: &str| {
                task.handle
                    .pointer(field)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            Card {
                id: task.task_id.clone(),
                prompt: text("/summary/prompt").unwrap_or_default(),
                provider: Some(task.provider.clone()),
                model: text("/model"),
                status,
                cost: task.cost.as_ref().map(money::cost_of).unwrap_or_default(),
                error: (status != ResultStatus::Done)
                    .then(|| error.map(|error| error.message.clone()))
                    .flatten(),
                files,
            }
        })
        .collect();
    if cards.is_empty()
        && let Some(error) = error
    {
        cards.push(Card {
            id: "request".into(),
            prompt: String::new(),
            provider: error.provider.clone().or_else(|| output.provider.clone()),
            model: None,
            status: if error.category == Category::OutcomeUnknown {
                ResultStatus::Unknown
            } else {
                ResultStatus::Failed
            },
            cost: imggen_core::Cost::ZERO,
            error: Some(error.message.clone()),
            files: Vec::new(),
        });
    }
    cards
}

/// `--gallery` on `generate` and `wait`: writes `dir/index.html` for the tasks of `output`
/// once something was attempted, and names it in `output`; a page that cannot be written is
/// a warning (the images are saved either way).
pub(crate) fn write_for_tasks(
    dir: &Path,
    title: &str,
    output: &mut GenerateOutput,
    progress: &crate::progress::Progress,
) {
    let attempted = !output.tasks.is_empty()
        || output
            .error
            .as_ref()
            .is_some_and(|error| error.category == Category::OutcomeUnknown);
    if !attempted {
        return;
    }
    let heading = super::Heading {
        title: title.to_owned(),
        live: false,
    };
    match super::write(dir, &heading, from_tasks(output).into_iter().map(Ok)) {
        Ok(page) => {
            progress.notice(&format!("see them: open {}", page.display()));
            output.gallery = Some(page.display().to_string());
        }
        Err(error) => progress.warning(&format!("the gallery page could not be written: {error}")),
    }
}
