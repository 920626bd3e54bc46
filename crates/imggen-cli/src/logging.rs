//! Logs on stderr only: `-v` levels or `RUST_LOG`. The clients hold API keys as secrets, so
//! no level shows one; and every field is written with its control characters escaped
//! ([`EscapedFields`]), since log lines quote what servers say (task ids, statuses, errors).
//!
//! Logs go through the progress display ([`Progress::log_writer`]): above a live bar, never
//! through it. A warning is one line, `imggen: warning: …` (an error `imggen: error: …`),
//! without a timestamp or a module path; `-v` levels keep tracing's full format, for
//! debugging. With `--progress jsonl` every log is a JSON event (`warning`, or `log` with its
//! `level` and `target`), so stderr stays JSON only.

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Instant;

use imggen_types::text::Untrusted;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::progress::{Progress, events};

/// The filter when `RUST_LOG` is not set: warnings by default, more with each `-v`, errors
/// only with `-q`. `extra` adds directives (the emulator's request log for `imggen mock`).
pub(crate) fn default_directives(verbose: u8, quiet: bool, extra: &str) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    if extra.is_empty() || verbose > 0 || quiet {
        level.to_owned()
    } else {
        format!("{level},{extra}")
    }
}

/// Installs the subscriber: logs on stderr, through the progress display.
pub(crate) fn init(verbose: u8, quiet: bool, extra: &str, progress: &Arc<Progress>) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| EnvFilter::try_new(value).ok());
    let filter = from_env.unwrap_or_else(|| {
        EnvFilter::try_new(default_directives(verbose, quiet, extra))
            .unwrap_or_else(|_| EnvFilter::new("warn"))
    });
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(EscapedFields)
        .event_format(LogFormat {
            json: progress.is_json(),
            started: progress.started(),
            full: Format::default(),
        })
        .with_writer(progress.log_writer())
        .with_ansi(std::io::stderr().is_terminal() && !progress.is_json())
        .with_filter(filter);
    // A second call (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(logs).try_init();
}

/// How a log event is written: `imggen: warning: …` and `imggen: error: …` as one line a
/// person reads, the other levels in tracing's full format, or every one as a JSON event.
pub(crate) struct LogFormat {
    json: bool,
    started: Instant,
    full: Format,
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        if self.json {
            let mut message = String::new();
            let mut visitor = EscapingVisitor {
                writer: Writer::new(&mut message),
                result: Ok(()),
                first: true,
                escape: false,
            };
            event.record(&mut visitor);
            let mut value = match level {
                Level::WARN => events::event("warning", json!({ "message": message })),
                _ => events::event(
                    "log",
                    json!({
                        "level": level.as_str().to_ascii_lowercase(),
                        "target": event.metadata().target(),
                        "message": message,
                    }),
                ),
            };
            let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            value["elapsed_ms"] = elapsed.into();
            return writeln!(writer, "{}", crate::stdout::escape_json(&value.to_string()));
        }
        let prefix = match level {
            Level::WARN => "imggen: warning: ",
            Level::ERROR => "imggen: error: ",
            _ => return self.full.format_event(ctx, writer, event),
        };
        writer.write_str(prefix)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Formats the fields of events and spans like tracing-subscriber's default (`message`
/// first and bare, then `name=value`, strings quoted), with every control character of every
/// value shown escaped: a provider's `ESC[2J` in a task id or an error cannot reach the
/// terminal through a log line.
pub(crate) struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            result: Ok(()),
            first: true,
            escape: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `message` bare, then `name=value`; `escape`: with control characters shown
/// escaped (for a terminal), or as they are (for JSON, which escapes them itself).
struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
    escape: bool,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let value: &dyn fmt::Display = if self.escape {
            &Untrusted(value)
        } else {
            &value
        };
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{value}")
        } else {
            write!(self.writer, "{separator}{}={value}", field.name())
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, value);
        } else {
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_messages_from_a_server_are_logged_escaped() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(EscapedFields)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let hostile = "id\u{1b}[2J\u{1b}]0;pwned\u{7}";
            let span = tracing::info_span!("imggen.poll", task_id = %hostile);
            let _entered = span.enter();
            tracing::warn!(task_id = %hostile, raw = hostile, "status {hostile} unknown");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(
            text.contains(r"status id\u{1b}[2J\u{1b}]0;pwned\u{7} unknown"),
            "{text}"
        );
        assert!(text.contains(r"task_id=id\u{1b}[2J"), "{text}");
        assert!(
            text.contains("imggen.poll{task_id="),
            "span fields escaped too: {text}"
        );
    }

    #[test]
    fn a_warning_is_one_imggen_line_or_one_json_event_without_module_path() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logged = |json: bool| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .fmt_fields(EscapedFields)
                .with_ansi(false)
                .with_max_level(Level::INFO)
                .event_format(LogFormat {
                    json,
                    started: Instant::now(),
                    full: Format::default(),
                })
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("imggen.poll", task_id = "t1");
                let _entered = span.enter();
                tracing::warn!(key = "runbase", observed = 3, "429: tightening\u{1b}[2J");
                tracing::info!("polled");
            });
            String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
        };

        let text = logged(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0], r#"imggen: warning: 429: tightening\u{1b}[2J key="runbase" observed=3"#,
            "no level, target, span or time: {text}"
        );
        assert!(
            lines[1].contains(" INFO ") && lines[1].contains("polled"),
            "other levels keep tracing's full format: {text}"
        );

        let text = logged(true);
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(events[0]["event"], "warning");
        assert_eq!(
            events[0]["message"], "429: tightening\u{1b}[2J key=\"runbase\" observed=3",
            "JSON keeps the text as it is"
        );
        assert_eq!(events[1]["event"], "log");
        assert_eq!(events[1]["level"], "info");
        assert!(
            events[1]["target"]
                .as_str()
                .unwrap()
                .starts_with("imggen_cli")
        );
        assert!(!text.contains('\u{1b}'), "JSON-escaped: {text}");
    }

    #[test]
    fn each_v_adds_a_level_and_q_keeps_errors_only() {
        assert_eq!(default_directives(0, false, ""), "warn");
        assert_eq!(default_directives(1, false, ""), "info");
        assert_eq!(default_directives(2, false, ""), "debug");
        assert_eq!(default_directives(5, false, ""), "trace");
        assert_eq!(default_directives(0, true, ""), "error");
        assert_eq!(
            default_directives(0, false, "imggen_mock=info"),
            "warn,imggen_mock=info"
        );
    }
}
