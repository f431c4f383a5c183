//! Key names and key patterns (contract §4).
//!
//! A key name is 1–256 bytes of `[A-Za-z0-9._/-]`, not starting with `.`,
//! `-` or `/`, with no `..`, no empty segment (`//`) and no trailing `/`. A pattern may also hold the
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
    #[error("key name may not contain '//' (an empty segment)")]
    EmptySegment,
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
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii() || !(key_byte(*c as u8) || extra(*c as u8)))
    {
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
    if name.contains("//") {
        return Err(NameError::EmptySegment);
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

/// Environment names a secret may never be injected as: they change how the
/// child or its interpreter loads code, or they belong to secretctl.
pub const ENV_DENY_EXACT: [&str; 10] = [
    "BASH_ENV",
    "ENV",
    "NODE_OPTIONS",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PERL5OPT",
    "RUBYOPT",
    "IFS",
    "PATH",
    "HOME",
];
/// Prefixes of denied environment names.
pub const ENV_DENY_PREFIX: [&str; 3] = ["LD_", "DYLD_", "SECRETCTL_"];

/// Why an environment name cannot carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvNameError {
    #[error("'{0}' is not a valid environment name: it must match ^[A-Z_][A-Z0-9_]*$")]
    Invalid(String),
    #[error("'{0}' is on the deny list: it would change how the command loads code")]
    Denied(String),
}

/// Checks an environment name against contract §5 (shape and deny list).
pub fn validate_env_name(name: &str) -> Result<(), EnvNameError> {
    let b = name.as_bytes();
    let shape = !b.is_empty()
        && name.len() <= 256
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
    if !shape {
        return Err(EnvNameError::Invalid(name.to_string()));
    }
    if ENV_DENY_EXACT.contains(&name) || ENV_DENY_PREFIX.iter().any(|p| name.starts_with(p)) {
        return Err(EnvNameError::Denied(name.to_string()));
    }
    Ok(())
}

/// The environment name of a key (or of the pattern it was asked by):
/// uppercase, with `/`, `-` and `.` turned into `_`, after `prefix`.
pub fn env_name_for(key: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + key.len());
    out.push_str(prefix);
    out.extend(key.chars().map(|c| match c {
        '/' | '-' | '.' => '_',
        c => c.to_ascii_uppercase(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_contract_examples() {
        for ok in [
            "a",
            "aws/access_key",
            "db.prod-1/PASS_WORD",
            "x/y/z",
            &"k".repeat(256),
        ] {
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
        assert_eq!(validate_key("a//b"), Err(NameError::EmptySegment));
        assert_eq!(validate_pattern("a//*"), Err(NameError::EmptySegment));
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

    #[test]
    fn env_names() {
        assert_eq!(env_name_for("aws/access_key", ""), "AWS_ACCESS_KEY");
        assert_eq!(env_name_for("db.prod-1/x", "APP_"), "APP_DB_PROD_1_X");
        assert_eq!(validate_env_name("AWS_ACCESS_KEY"), Ok(()));
        assert_eq!(validate_env_name("_X1"), Ok(()));
        for bad in ["", "1ABC", "lower", "A-B", "A B"] {
            assert!(
                matches!(validate_env_name(bad), Err(EnvNameError::Invalid(_))),
                "{bad}"
            );
        }
        for denied in [
            "PATH",
            "HOME",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "SECRETCTL_X",
            "ENV",
            "IFS",
        ] {
            assert!(
                matches!(validate_env_name(denied), Err(EnvNameError::Denied(_))),
                "{denied}"
            );
        }
        assert_eq!(validate_env_name("ENVIRONMENT"), Ok(()));
    }
}
