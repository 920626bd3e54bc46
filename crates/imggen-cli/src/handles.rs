//! HANDLE arguments: `provider:task_id`, a JSON handle, or `@FILE`.

use imggen_core::TaskHandle;

use crate::exit::Failure;
use crate::output::GenerateOutput;

const HANDLE_HINT: &str = "a handle is provider:task_id (e.g. gptimg:gpt-image-2-…), the JSON line `imggen submit` prints, or @FILE holding either";

/// Every handle the arguments name, in order, each once.
pub(crate) fn parse_handles(args: &[String]) -> Result<Vec<TaskHandle>, Failure> {
    let mut handles: Vec<TaskHandle> = Vec::new();
    for arg in args {
        let found = match arg.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    Failure::usage(format!("cannot read the handle file {path}: {error}"))
                })?;
                let found = handles_in_text(&text).map_err(|problem| {
                    Failure::usage(format!("handle file {path}: {problem}")).hint(HANDLE_HINT)
                })?;
                if found.is_empty() {
                    return Err(
                        Failure::usage(format!("handle file {path} holds no handle"))
                            .hint(HANDLE_HINT),
                    );
                }
                found
            }
            None => vec![
                arg.parse::<TaskHandle>()
                    .map_err(|error| Failure::usage(error.to_string()).hint(HANDLE_HINT))?,
            ],
        };
        for handle in found {
            // The same task named twice (say, short and JSON forms) is waited for once; the
            // first form, which may carry more facts, is kept.
            let known = handles
                .iter()
                .any(|h| h.provider == handle.provider && h.task_id == handle.task_id);
            if !known {
                handles.push(handle);
            }
        }
    }
    Ok(handles)
}

/// The handles in a file: one JSON handle (even pretty-printed), the `--json` output of
/// `imggen submit` or `generate`, or one handle per line (`#` starts a comment line).
fn handles_in_text(text: &str) -> Result<Vec<TaskHandle>, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        if let Ok(handle) = TaskHandle::from_json(trimmed) {
            return Ok(vec![handle]);
        }
        if let Ok(output) = serde_json::from_str::<GenerateOutput>(trimmed) {
            return output
                .tasks
                .iter()
                .map(|task| {
                    serde_json::from_value::<TaskHandle>(task.handle.clone())
                        .map_err(|error| format!("task {}: {error}", task.task_id))
                })
                .collect();
        }
    }
    let mut handles = Vec::new();
    for (number, line) in trimmed.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let handle = line
            .parse::<TaskHandle>()
            .map_err(|error| format!("line {}: {error}", number + 1))?;
        handles.push(handle);
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"version":1,"provider":"runbase","task_id":"run_01JABC","model":"openai/gpt-image-2","created_at":"2026-04-22T00:12:03Z","cost":{"usd":"0.05","credits":0},"images_expected":1,"summary":{"prompt":"a lamp","aspect_ratio":null,"n":1}}"#;

    #[test]
    fn short_json_and_files_of_either_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("handles.txt");
        std::fs::write(
            &lines,
            format!("# submitted today\n{JSON}\n\ngptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3\n"),
        )
        .unwrap();
        let handles = parse_handles(&[
            format!("@{}", lines.display()),
            "runbase:run_01JABC".to_owned(),
        ])
        .unwrap();
        let names: Vec<String> = handles.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "runbase:run_01JABC",
                "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3"
            ],
            "the short form of a handle already read is the same task"
        );
        assert!(handles[0].cost.is_some(), "the JSON handle keeps its cost");

        let pretty = dir.path().join("handle.json");
        let value: serde_json::Value = serde_json::from_str(JSON).unwrap();
        std::fs::write(&pretty, serde_json::to_string_pretty(&value).unwrap()).unwrap();
        let handles = parse_handles(&[format!("@{}", pretty.display())]).unwrap();
        assert_eq!(handles[0].task_id, "run_01JABC");
    }

    #[test]
    fn bad_handles_say_what_a_handle_is() {
        let err = parse_handles(&["run_1".to_owned()]).unwrap_err();
        assert!(err.message.contains("provider:task_id"), "{}", err.message);
        assert!(err.hint.unwrap().contains("@FILE"));
        let err = parse_handles(&["@/nonexistent/handles".to_owned()]).unwrap_err();
        assert!(
            err.message.contains("cannot read the handle file"),
            "{}",
            err.message
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "gptimg:gpt-image-2-kUtpnus8fXpDKkuEjayG3\nnonsense\n").unwrap();
        let err = parse_handles(&[format!("@{}", bad.display())]).unwrap_err();
        assert!(err.message.contains("line 2"), "{}", err.message);
    }
}
