//! Key names and key patterns (contract §4).
//!
//! A key name is 1–256 bytes of `[A-Za-z0-9._/-]`, not starting with `.`,
//! `-` or `/`, with no `..` and no trailing `/`. A pattern may also hold the
//! globs `*` (any run of bytes within one `/`-separated segment), `**` (any
//! run, crossing `/`) and `?` (one byte other than `/`). A pattern with no
//! glob character names exactly one key.

/// Longest key name, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Why a key name or pattern was refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("key name is empty")]
    Empty,
    #[error("key name is {0} bytes long: the limit is 256")]
    TooLong(usize),
    #[error("key name contains {0:?}: allowed are letters, digits and . _ / -")]
    BadChar(char),
    #[error("key name may not start with '{0}'")]
    BadStart(char),
    #[error("key name may not contain '..'")]
    DotDot,
    #[error("key name may not end with '/'")]
    TrailingSlash,
}

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-')
}

fn check(name: &str, extra: fn(u8) -> bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_KEY_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii() || !(key_byte(*c as u8) || extra(*c as u8))) {
        return Err(NameError::BadChar(c));
    }
    let first = name.as_bytes()[0];
    if matches!(first, b'.' | b'-' | b'/') {
        return Err(NameError::BadStart(first as char));
    }
    if name.contains("..") {
        return Err(NameError::DotDot);
    }
    if name.ends_with('/') {
        return Err(NameError::TrailingSlash);
    }
    Ok(())
}

/// Checks a key name against the contract's rules.
pub fn validate_key(name: &str) -> Result<(), NameError> {
    check(name, |_| false)
}

/// Checks a key pattern: a key name that may also contain `*` and `?`.
pub fn validate_pattern(pattern: &str) -> Result<(), NameError> {
    check(pattern, |b| b == b'*' || b == b'?')
}

/// True when the pattern holds a glob character.
pub fn is_glob(pattern: &str) -> bool {
    pattern.bytes().any(|b| b == b'*' || b == b'?')
}

/// Matches `key` against `pattern`: `*` stays within a segment, `**`
/// crosses `/`, `?` is one byte other than `/`.
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let (p, k) = (pattern.as_bytes(), key.as_bytes());
    // reach[j]: the pattern prefix consumed so far matches key[..j].
    let mut reach = vec![false; k.len() + 1];
    reach[0] = true;
    let mut i = 0;
    while i < p.len() {
        let mut next = vec![false; k.len() + 1];
        match p[i] {
            b'*' => {
                let crosses = p.get(i + 1) == Some(&b'*');
                let mut live = false;
                for j in 0..=k.len() {
                    if reach[j] {
                        live = true;
                    } else if j > 0 && k[j - 1] == b'/' && !crosses {
                        live = false;
                    }
                    next[j] = live;
                }
                if crosses {
                    i += 1;
                }
            }
            b'?' => {
                for j in 0..k.len() {
                    next[j + 1] = reach[j] && k[j] != b'/';
                }
            }
            c => {
                for j in 0..k.len() {
                    next[j + 1] = reach[j] && k[j] == c;
                }
            }
        }
        reach = next;
        i += 1;
    }
    reach[k.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_contract_examples() {
        for ok in ["a", "aws/access_key", "db.prod-1/PASS_WORD", "x/y/z", &"k".repeat(256)] {
            assert_eq!(validate_key(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(validate_key(""), Err(NameError::Empty));
        assert_eq!(validate_key(&"k".repeat(257)), Err(NameError::TooLong(257)));
        assert_eq!(validate_key(".hidden"), Err(NameError::BadStart('.')));
        assert_eq!(validate_key("-flag"), Err(NameError::BadStart('-')));
        assert_eq!(validate_key("/abs"), Err(NameError::BadStart('/')));
        assert_eq!(validate_key("a/../b"), Err(NameError::DotDot));
        assert_eq!(validate_key("dir/"), Err(NameError::TrailingSlash));
        assert_eq!(validate_key("sp ace"), Err(NameError::BadChar(' ')));
        assert_eq!(validate_key("nul\0"), Err(NameError::BadChar('\0')));
        assert_eq!(validate_key("é"), Err(NameError::BadChar('é')));
        assert_eq!(validate_key("glob*"), Err(NameError::BadChar('*')));
        assert_eq!(validate_pattern("glob*/?x"), Ok(()));
    }

    #[test]
    fn star_stays_in_segment() {
        assert!(glob_match("db/*", "db/host"));
        assert!(!glob_match("db/*", "db/prod/host"));
        assert!(glob_match("db/*/host", "db/prod/host"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("k*", "k"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
    }

    #[test]
    fn double_star_crosses_slash() {
        assert!(glob_match("db/**", "db/prod/host"));
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("**/host", "x/y/host"));
        assert!(!glob_match("**/host", "x/y/hostname"));
    }

    #[test]
    fn question_mark_is_one_non_slash_byte() {
        assert!(glob_match("k?", "k1"));
        assert!(!glob_match("k?", "k"));
        assert!(!glob_match("a?b", "a/b"));
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(glob_match("aws/key", "aws/key"));
        assert!(!glob_match("aws/key", "aws/key2"));
        assert!(!is_glob("aws/key"));
        assert!(is_glob("aws/*"));
    }
}
