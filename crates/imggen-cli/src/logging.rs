//! Logs on stderr only: `-v` levels or `RUST_LOG`. The clients hold API keys as secrets, so
//! no level shows one; and every field is written with its control characters escaped
//! ([`EscapedFields`]), since log lines quote what servers say (task ids, statuses, errors).

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::Arc;

use imggen_types::text::Untrusted;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::progress::Progress;

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

/// Installs the subscriber: formatted logs on stderr, drawn above the live task lines.
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
        .with_writer(progress.log_writer())
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    // A second call (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(logs).try_init();
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
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let value = Untrusted(value);
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
