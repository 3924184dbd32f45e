//! The one error type of trailkey. Every variant carries what the user needs
//! to act: where (file and field, or AWS operation), what, and a hint. It is
//! rendered in one place ([`Error::render`]) and mapped to exit status 1 in
//! `main.rs`.
//!
//! How trailkey handles each AWS error code of each operation it calls, and
//! the hint it shows, is one table ([`handling()`], [`hint()`]; `docs/errors.md`),
//! checked against the AWS service models by `tests/aws_models.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};

use crate::aws::AwsError;
use crate::escape::escape;

mod handling;
mod operations;
mod rules;

use handling::Rule;
pub use handling::{GENERIC_HINT, Handling, is_lockout};
pub use operations::{OPERATIONS, SENT_ONCE};
use rules::RULES;
pub use rules::TRAIL_NOT_FOUND_HINT;

/// The rule for `code` from `operation` with `message`.
fn rule_for(operation: &str, code: &str, message: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.matches(operation, code, message))
}

/// How trailkey handles `code` from `operation` (with `message`, which tells
/// KMS's policy lockout from other `MalformedPolicyDocumentException`s).
/// `None`: not in the table; at run time it is handled as
/// [`Handling::Generic`], and `tests/aws_models.rs` fails on a code the
/// service models list.
pub fn handling(operation: &str, code: &str, message: &str) -> Option<Handling> {
    rule_for(operation, code, message).map(|r| r.treat.handling())
}

/// The hint for `code` from `operation` (with `message`): the table's, or
/// [`GENERIC_HINT`] for a [`Handling::Generic`] code and one not in the
/// table.
pub fn hint(operation: &str, code: &str, message: &str) -> &'static str {
    rule_for(operation, code, message)
        .and_then(|r| r.treat.hint())
        .unwrap_or(GENERIC_HINT)
}

/// Plain-language cause and fix for an AWS error ([`hint`]).
pub fn aws_hint(e: &AwsError) -> String {
    hint(e.operation, &e.code, &e.message).to_owned()
}

const RED_BOLD: Style = AnsiColor::Red.on_default().bold();
const CYAN_BOLD: Style = AnsiColor::Cyan.on_default().bold();
/// `error:` in bold red (stripped where colour is off).
const ERROR: Painted = Painted(RED_BOLD, "error:");
const HINT: Painted = Painted(CYAN_BOLD, "hint:");

/// A label in a style, for messages (`error:`, `hint:`, init's `warning:`).
pub(crate) struct Painted(pub(crate) Style, pub(crate) &'static str);

impl std::fmt::Display for Painted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:#}", self.0, self.1, self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is unreadable or invalid. No AWS call has been made.
    #[error("{}: {}", crate::escape::escape_path(file), escape_lines(message))]
    Config {
        file: PathBuf,
        field: Option<String>,
        message: String,
        hint: String,
    },
    /// An AWS call failed.
    #[error("{context}: {source}")]
    Aws {
        context: String,
        source: AwsError,
        hint: String,
    },
    /// What AWS reports contradicts the config or makes the change unsafe
    /// (wrong account, trail in another Region, unusable key, a key
    /// `--delete-key` must not delete, ...). Found before any write, except
    /// by the verification after apply or destroy and by the deletion check
    /// made again right before `ScheduleKeyDeletion`.
    #[error("{message}{}", detail.as_deref().map(|d| format!("\n{d}")).unwrap_or_default())]
    Check {
        message: String,
        /// Text trailkey rendered itself, shown as it is under the message
        /// (the plan after an apply that did not converge): its renderer
        /// escaped the outside values in it.
        detail: Option<String>,
        hint: String,
    },
    /// The command cannot run as asked (e.g. apply without a terminal).
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// A concurrent trailkey run won a race; this run stopped safely.
    #[error("{message}")]
    Conflict { message: String, hint: String },
}

impl Error {
    pub fn config(file: &Path, field: Option<String>, message: String, hint: String) -> Self {
        Error::Config {
            file: file.to_owned(),
            field,
            message,
            hint,
        }
    }

    pub fn check(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Check {
            message: message.into(),
            detail: None,
            hint: hint.into(),
        }
    }

    /// A check error with `detail`, text trailkey rendered itself (line
    /// breaks and colour codes kept), shown under the message.
    pub fn check_with(
        message: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Check {
            message: message.into(),
            detail: Some(detail.into()),
            hint: hint.into(),
        }
    }

    pub fn conflict(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// An AWS failure while doing `context`, with a plain-language hint chosen
    /// from the error code.
    pub fn aws(context: impl Into<String>, source: AwsError) -> Self {
        let hint = aws_hint(&source);
        Error::Aws {
            context: context.into(),
            source,
            hint,
        }
    }

    /// The same error, with `note` added to what it says (e.g. what an
    /// apply had done when it stopped).
    pub fn noting(mut self, note: &str) -> Self {
        match &mut self {
            Error::Aws { context: said, .. }
            | Error::Check { message: said, .. }
            | Error::Usage { message: said, .. }
            | Error::Conflict { message: said, .. } => *said = format!("{said}; {note}"),
            Error::Config { .. } => {}
        }
        self
    }

    /// The AWS error code, for an [`Error::Aws`].
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { source, .. } => Some(&source.code),
            _ => None,
        }
    }

    pub fn hint(&self) -> &str {
        match self {
            Error::Config { hint, .. }
            | Error::Aws { hint, .. }
            | Error::Check { hint, .. }
            | Error::Usage { hint, .. }
            | Error::Conflict { hint, .. } => hint,
        }
    }

    /// The message as plain text: an `error:` line, where it applies, and a `hint:` line.
    pub fn render(&self) -> String {
        anstream::adapter::strip_str(&self.render_styled()).to_string()
    }

    /// The same with ANSI colours, for `output::err` (which strips them where colour is off).
    ///
    /// What an error says holds outside text (AWS codes and messages, ARNs,
    /// Sids, delivery errors), escaped here ([`escape`]): no outside text
    /// starts a line or writes a colour code. A check error's `detail` is
    /// trailkey's own rendering, shown as it is.
    pub fn render_styled(&self) -> String {
        let mut out = String::new();
        match self {
            Error::Config {
                file,
                field,
                message,
                ..
            } => {
                // The file's name, its keys and values, and the TOML
                // parser's excerpt of it are the file's text, which someone
                // else may have written: escaped, the excerpt's line breaks
                // and tabs kept.
                let file = crate::escape::escape_path(file);
                let _ = writeln!(out, "{ERROR} invalid config {file}");
                if let Some(field) = field {
                    let _ = writeln!(out, "  field: {}", escape(field));
                }
                let _ = writeln!(out, "  {}", escape_lines(message));
            }
            Error::Aws {
                context, source, ..
            } => {
                let _ = writeln!(out, "{ERROR} {}", escape(context));
                let _ = writeln!(
                    out,
                    "  AWS {} returned {}: {}",
                    escape(source.operation),
                    escape(&source.code),
                    escape(&source.message)
                );
            }
            Error::Check {
                message, detail, ..
            } => {
                let _ = writeln!(out, "{ERROR} {}", escape(message));
                if let Some(detail) = detail {
                    let _ = writeln!(out, "{}", detail.trim_end_matches('\n'));
                }
            }
            Error::Usage { message, .. } | Error::Conflict { message, .. } => {
                let _ = writeln!(out, "{ERROR} {}", escape(message));
            }
        }
        let _ = writeln!(out, "{HINT} {}", escape(self.hint()));
        out
    }
}

/// `text` escaped ([`escape`]) line by line, its line breaks and tabs kept.
fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.strip_suffix('\r')
                .unwrap_or(line)
                .split('\t')
                .map(|part| escape(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
