//! Untrusted text made safe to show a person.
//!
//! Anything a provider says — an error message, a failure code, a task id, a URL — is text a
//! stranger wrote. Printed raw to a terminal, `ESC[2J` clears the screen, an OSC sequence
//! retitles the window or plants a link, `\r` overwrites the line before it, and a
//! right-to-left override reverses what follows. [`Untrusted`] shows such text with every
//! control character made visible, so what a person reads is what the server sent.
//!
//! Machine-readable output (JSON) keeps the raw text: serde escapes it there.
//!
//! ```
//! use imggen_types::text::{Untrusted, for_terminal};
//!
//! let message = "moderation\u{1b}[2J\u{1b}]0;pwned\u{7}";
//! assert_eq!(for_terminal(message), r"moderation\u{1b}[2J\u{1b}]0;pwned\u{7}");
//! assert_eq!(format!("task {} failed", Untrusted("a\r\nb")), "task a  b failed");
//! ```

use std::borrow::Cow;
use std::fmt;

/// Shows a provider-supplied string safely: line breaks and tabs as spaces (a message stays
/// on its line), every other control character — C0, DEL, C1, and the bidirectional
/// overrides and isolates — as a visible `\u{..}` escape. Printable text, non-ASCII letters
/// included, is shown as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            f.write_str(&rest[..at])?;
            if matches!(c, '\n' | '\r' | '\t') {
                f.write_str(" ")?;
            } else {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// `text` as [`Untrusted`] shows it; borrowed when there is nothing to escape (the common
/// case).
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if text.chars().any(needs_escape) {
        Cow::Owned(Untrusted(text).to_string())
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether showing `c` raw could move the cursor, change the terminal or reorder the text.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional embeddings, overrides and isolates ("Trojan Source").
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_and_text_stays_as_it_is() {
        assert_eq!(
            for_terminal("plain text, ünïcödé ✓"),
            "plain text, ünïcödé ✓"
        );
        assert!(matches!(for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(
            for_terminal("\u{1b}[2J\u{1b}]0;title\u{7}"),
            r"\u{1b}[2J\u{1b}]0;title\u{7}"
        );
        // C1 controls (a one-byte CSI), DEL, NUL.
        assert_eq!(
            for_terminal("a\u{9b}31mb\u{7f}\0"),
            r"a\u{9b}31mb\u{7f}\u{0}"
        );
        // Right-to-left override.
        assert_eq!(for_terminal("abc\u{202e}fed"), r"abc\u{202e}fed");
        // Line breaks keep a message on one line.
        assert_eq!(for_terminal("one\r\ntwo\tthree"), "one  two three");
        assert!(!for_terminal("x\u{1b}y").chars().any(needs_escape));
    }
}
