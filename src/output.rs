//! Where text goes: stdout for the plan and results, stderr for progress
//! and errors. Colour only on a terminal, never with `NO_COLOR`
//! (<https://no-color.org>); `CLICOLOR_FORCE` forces it elsewhere.

use std::io::Write;

use anstream::stream::{AsLockedWrite, RawStream};
use anstream::{AutoStream, ColorChoice};

/// The colour choice for a stream, from the environment.
pub fn color_choice(is_terminal: bool) -> ColorChoice {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    if set("NO_COLOR") {
        ColorChoice::Never
    } else if set("CLICOLOR_FORCE") || is_terminal {
        ColorChoice::Always
    } else {
        ColorChoice::Never
    }
}

/// The first failed write to stdout other than a closed pipe, if any.
static STDOUT_FAILED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Writes `text` to stdout, with colour codes kept or stripped. A failed
/// write (a full disk, a closed file) is remembered for
/// [`stdout_failure`], so that the run ends with exit status 1 instead of
/// handing a pipeline an empty or cut plan with a success code; a closed
/// pipe (`| head`) is not a failure: the reader has what it wanted.
pub fn out(text: &str) {
    if let Err(e) = write(std::io::stdout().lock(), text)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert_with(|| e.to_string());
    }
}

/// Why a write to stdout failed during this run, if one did.
pub fn stdout_failure() -> Option<String> {
    STDOUT_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Writes `text` to stderr, with colour codes kept or stripped. Errors are
/// ignored: there is nowhere left to report them.
pub fn err(text: &str) {
    let _ = write(std::io::stderr().lock(), text);
}

/// Writes `text` to `stream` and flushes it.
fn write(stream: impl RawStream + AsLockedWrite, text: &str) -> std::io::Result<()> {
    let choice = color_choice(stream.is_terminal());
    let mut s = AutoStream::new(stream, choice);
    s.write_all(text.as_bytes())?;
    s.flush()
}
