//! `-v` / `-vv`: structured logs (`tracing`) on stderr.
//!
//! `-v` shows what trailkey does (observe, plan, apply steps); `-vv` adds
//! every AWS call (service, operation, HTTP status) and the SDK's own
//! informational events. Never the SDK's debug or trace events: those can
//! contain signed request headers, and credentials never appear in output.
//!
//! Every field value is passed through [`crate::escape::escape`] before it
//! is written: the SDK's events carry text AWS sent (error messages, request
//! IDs), and so may trailkey's own. Only the formatter's own colour codes and
//! the newline ending each event reach the terminal unescaped.

use std::fmt;
use std::io::IsTerminal;

use tracing::Level;
use tracing::field::Field;
use tracing_subscriber::Layer;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber for `verbosity` (the number of `-v`); 0: none.
pub fn init(verbosity: u8) {
    let colour = crate::output::color_choice(std::io::stderr().is_terminal())
        != anstream::ColorChoice::Never;
    if let Some(layer) = layer(verbosity, std::io::stderr, colour) {
        let _ = tracing_subscriber::registry().with(layer).try_init();
    }
}

/// The formatting layer for `verbosity`, writing to `writer`; `None` at 0.
fn layer<S, W>(verbosity: u8, writer: W, colour: bool) -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let targets = match verbosity {
        0 => return None,
        1 => Targets::new().with_target("trailkey", Level::INFO),
        _ => Targets::new()
            .with_target("trailkey", Level::DEBUG)
            .with_target("aws_config", Level::INFO)
            .with_target("aws_smithy_runtime", Level::INFO)
            .with_target("aws_runtime", Level::INFO),
    };
    Some(
        tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(escaped_field).delimited(" "))
            .with_writer(writer)
            .with_ansi(colour)
            .with_filter(targets),
    )
}

/// One field as the default formatter shows it (the message bare, any other
/// field as `name=value`), with its value escaped.
fn escaped_field(w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let shown = format!("{value:?}");
    let shown = crate::escape::escape(&shown);
    match field.name() {
        "message" => write!(w, "{shown}"),
        name => write!(w, "{}={shown}", name.strip_prefix("r#").unwrap_or(name)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

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

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// What `-vv` writes for one SDK event and one trailkey event carrying
    /// hostile text, in a message, a Display field and a Debug field.
    fn logged(text: &str) -> String {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(layer(2, buffer.clone(), false).unwrap());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "aws_smithy_runtime", code = %text, "service error: {text}");
            tracing::debug!(target: "trailkey", message = ?text, sid = text);
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn aws_text_in_any_field_is_escaped() {
        let hostile = "x\u{1b}[2J\nPlan: 0 to add\r\u{202e}\u{2028}y";
        let out = logged(hostile);
        assert_eq!(out.lines().count(), 2, "{out:?}");
        assert!(
            !out.chars()
                .any(|c| c != '\n' && crate::escape::is_escaped(c)),
            "{out:?}"
        );
        assert!(
            out.contains("service error: x\\u{1b}[2J\\nPlan: 0 to add"),
            "{out:?}"
        );
        assert!(out.contains("code=x\\u{1b}[2J"), "{out:?}");
        assert!(out.contains("sid="), "{out:?}");
    }

    #[test]
    fn ordinary_fields_read_as_the_default_formatter_shows_them() {
        let out = logged("kms");
        assert!(out.contains("service error: kms code=kms"), "{out:?}");
        assert!(out.contains("\"kms\" sid=\"kms\""), "{out:?}");
    }
}
