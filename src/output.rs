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

/// Writes `text` to stdout, with colour codes kept or stripped.
pub fn out(text: &str) {
    write(std::io::stdout().lock(), text);
}

/// Writes `text` to stderr, with colour codes kept or stripped.
pub fn err(text: &str) {
    write(std::io::stderr().lock(), text);
}

/// Writes `text` to `stream`, ignoring errors (a closed pipe must not panic).
fn write(stream: impl RawStream + AsLockedWrite, text: &str) {
    let choice = color_choice(stream.is_terminal());
    let mut s = AutoStream::new(stream, choice);
    let _ = s.write_all(text.as_bytes());
    let _ = s.flush();
}
