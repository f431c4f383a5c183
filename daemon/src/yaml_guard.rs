//! A cheap look at a settings file's shape before the YAML parser sees it.
//!
//! The parser's cost grows with nesting much faster than with size: a
//! policy file of deeply nested flow sequences (`[[[[…`) took 48 s to
//! parse. Settings files are shallow, so anything nested deeper than
//! [`MAX_DEPTH`] is refused here, in one linear pass, before parsing. The
//! pass over-approximates depth (it counts block indentation levels,
//! compact `- - ` sequences and open flow brackets outside quoted strings
//! and comments); it never under-counts, so the parser never sees a deeper
//! file.

/// Deepest nesting accepted in `config.yaml` and `mcp-policy.yaml` (the
/// real files need 3 or 4 levels).
pub const MAX_DEPTH: usize = 32;

/// Refuses `text` when it nests deeper than `max` levels; the message
/// names the line.
pub fn check_depth(text: &str, max: usize) -> Result<(), String> {
    let mut s = Scan::default();
    for (i, line) in text.lines().enumerate() {
        let depth = s.line(line);
        if depth > max {
            return Err(format!(
                "line {}: nested deeper than {max} levels: settings files are flat lists and maps",
                i + 1
            ));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Scan {
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Inside a quoted scalar that continues on the next line.
    quote: Option<u8>,
    /// Indentations of the open block levels.
    indents: Vec<usize>,
}

impl Scan {
    /// Scans one line; returns the deepest nesting seen on it.
    fn line(&mut self, line: &str) -> usize {
        let b = line.as_bytes();
        let mut i = 0;
        let mut block = self.indents.len();
        if self.quote.is_none() && self.flow == 0 {
            let indent = b.iter().take_while(|c| **c == b' ').count();
            let rest = &b[indent..];
            if rest.is_empty() || rest[0] == b'#' {
                return block;
            }
            while self.indents.last().is_some_and(|top| *top > indent) {
                self.indents.pop();
            }
            if self.indents.last() != Some(&indent) {
                self.indents.push(indent);
            }
            block = self.indents.len();
            i = indent;
            // Compact nested sequences: `- - - x` opens a level per dash.
            while i < b.len() && b[i] == b'-' && b.get(i + 1).is_none_or(|c| *c == b' ') {
                block += 1;
                i += 1;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
            }
        }
        let mut deepest = block + self.flow;
        // At a node start a `[`, `{` or quote opens something; elsewhere
        // (inside a plain scalar) it is just a character.
        let mut node_start = true;
        while i < b.len() {
            let c = b[i];
            if let Some(q) = self.quote {
                match c {
                    b'\\' if q == b'"' => i += 1,
                    _ if c == q => {
                        // '' inside a single-quoted scalar is a quote.
                        if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            self.quote = None;
                            node_start = false;
                        }
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            match c {
                b'#' if i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t' => break,
                b'"' | b'\'' if node_start => self.quote = Some(c),
                b'[' | b'{' if node_start => {
                    self.flow += 1;
                    deepest = deepest.max(block + self.flow);
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    node_start = false;
                }
                b',' if self.flow > 0 => node_start = true,
                b':' if b.get(i + 1).is_none_or(|n| *n == b' ' || *n == b'\t') => {
                    node_start = true;
                }
                b'-' | b'?' if node_start && b.get(i + 1).is_none_or(|n| *n == b' ') => {}
                b' ' | b'\t' => {}
                _ => node_start = false,
            }
            i += 1;
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str, max: usize) -> bool {
        check_depth(text, max).is_ok()
    }

    #[test]
    fn real_files_pass() {
        let policy = "version: 1\ndefault_action: deny  # comment [[[\nallowed_commands: [npm, \"npm test\", 'it''s [', ./test.sh]\ndenied_commands:\n  - rm\n  - sudo\nenv_aliases:\n  dev:  [{pattern: \"db/*\", target: \"dev/db/*\"}]\n  prod:\n    - pattern: db/*\n      target: prod/db/[x\ntrusted_directories: [/opt/bin]\n";
        assert!(depth_ok(policy, 5), "{:?}", check_depth(policy, 5));
        assert!(depth_ok("", 1));
    }

    #[test]
    fn deep_nesting_is_refused_whatever_its_style() {
        let flow = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            check_depth(&flow, MAX_DEPTH)
                .unwrap_err()
                .contains("line 1")
        );
        let mixed = format!("a: {}1{}", "[{x: ".repeat(20), "}]".repeat(20));
        assert!(!depth_ok(&mixed, MAX_DEPTH));
        let dashes = format!("{}x\n", "- ".repeat(40));
        assert!(!depth_ok(&dashes, MAX_DEPTH));
        let indented: String = (0..40)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(
            check_depth(&indented, MAX_DEPTH)
                .unwrap_err()
                .contains("line 33")
        );
        // Brackets in quotes, comments and plain scalars are no nesting.
        let quoted = format!(
            "a: \"{}\"\nb: x{} # {}\n",
            "[".repeat(100),
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(depth_ok(&quoted, 3), "{:?}", check_depth(&quoted, 3));
    }
}
