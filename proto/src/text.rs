//! Showing text that came from outside (a key name someone typed, a
//! command an agent asked for, a daemon's message) on a terminal or in a
//! one-line message: control characters are escaped, so they cannot move
//! the cursor, recolour or retitle the terminal or forge lines, and echoed
//! input is cut to a readable length.

/// How many characters of an echoed input are shown.
pub const SHOWN_CHARS: usize = 80;

/// Characters a terminal acts on rather than prints: C0 and C1 controls,
/// DEL, and the Unicode line separators and bidirectional overrides that
/// can make a line read differently from what it holds.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// `s` with every unsafe character written as an escape (`\n`, `\u{1b}`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// An echoed input: escaped, and cut to [`SHOWN_CHARS`] characters with
/// its full length said when it was longer.
pub fn shown(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_none() {
        escape(&head)
    } else {
        format!("{}… ({} bytes)", escape(&head), s.len())
    }
}

/// A whole message for one line: escaped, and at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let escaped = escape(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let head: String = escaped.chars().take(max).collect();
    format!("{head}… ({} bytes in all)", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape("a\x1b[31mb\nc\u{7f}"), "a\\u{1b}[31mb\\nc\\u{7f}");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("plain/key-1.txt é"), "plain/key-1.txt é");
    }

    #[test]
    fn long_inputs_are_cut() {
        let long = "k".repeat(10_000);
        let s = shown(&long);
        assert!(s.starts_with(&"k".repeat(SHOWN_CHARS)));
        assert!(s.ends_with("… (10000 bytes)"), "{s}");
        assert!(s.len() < 120);
        assert_eq!(shown("short"), "short");
        let line = one_line(&format!("\x1b]0;title\x07{}", "x".repeat(5000)), 100);
        assert!(!line.contains('\x1b') && !line.contains('\x07'));
        assert!(line.ends_with("bytes in all)"), "{line}");
    }
}
