//! Text from outside trailkey (AWS answers, policies written by others,
//! Lambda events) made safe to print on a terminal.
//!
//! Such text may hold control characters: an escape sequence that recolours
//! or clears the screen, a line break that forges a `Plan:` or `hint:` line
//! (U+2028 and U+2029 are line breaks too, to some terminals, editors and log
//! viewers), a bidi control that shows text in another order than it is. [`escape`]
//! shows each of them as a visible escape, in Rust's own notation (`\n`,
//! `\r`, `\t`, otherwise `\u{1b}` with the code point in hex), and leaves
//! everything else as it is: printable text, backslashes included, is
//! unchanged, so escaping escaped text changes nothing.
//!
//! Only for outside text: trailkey's own text holds the renderer's line
//! breaks and colour codes.

use std::borrow::Cow;

/// Whether `c` is shown as an escape: the C0 controls (below U+0020), DEL,
/// the C1 controls (U+0080 to U+009F), the line and paragraph separators
/// (U+2028, U+2029), and Unicode's bidi controls: the marks (U+061C, U+200E,
/// U+200F), embeddings, overrides and isolates (U+202A to U+202E, U+2066 to
/// U+2069).
pub fn is_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control character shown as a visible escape (`\n`,
/// `\r`, `\t`, `\u{1b}`); borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_escaped(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A path given on the command line, in a message: escaped as outside text
/// is (a file name may hold a line break or an escape sequence), and shown
/// lossily where it is not UTF-8.
pub fn escape_path(path: &std::path::Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

/// At most `max` characters of `text`, `…` marking a cut.
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_as_escapes() {
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(
            escape("\0\u{7}\u{8}\u{c}\u{7f}"),
            "\\u{0}\\u{7}\\u{8}\\u{c}\\u{7f}"
        );
        assert_eq!(escape("\u{85}\u{9b}2J"), "\\u{85}\\u{9b}2J");
        assert_eq!(
            escape("\u{202e}gnp.exe\u{2066}x\u{2069}"),
            "\\u{202e}gnp.exe\\u{2066}x\\u{2069}"
        );
        assert_eq!(
            escape("a\u{2028}b\u{2029}c\u{200f}d\u{61c}"),
            "a\\u{2028}b\\u{2029}c\\u{200f}d\\u{61c}"
        );
    }

    #[test]
    fn other_text_is_unchanged_and_borrowed() {
        for s in [
            "",
            "arn:aws:kms:us-east-1:111111111111:key/abc",
            "back\\slash \\n \\u{1b} already escaped",
            "é ü 日本 🔑 \u{a0} \u{200b} \u{2027} \u{202f}",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn escaping_twice_is_escaping_once() {
        let s = "x\u{1b}\n\u{9f}\u{202d}\\";
        assert_eq!(escape(&escape(s)), escape(s));
    }
}
