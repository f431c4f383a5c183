//! Typed values of command-line flags and their parsers: `--field`,
//! `--binding`, `--tags`, `--expires` and durations.
//!
//! clap calls these while parsing, so a malformed flag is a usage error
//! (exit 2) before anything is read, prompted for or sent. What a value
//! *means* (is this field name allowed, is this tag too long) stays the
//! daemon's decision: it validates every request whoever sends it.

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

/// `--field NAME=VALUE`, or `--field NAME`, whose value is then read from
/// stdin or a prompt.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldArg {
    pub name: String,
    /// The value as typed; `Zeroizing` because it may be a secret the user
    /// chose to put on the command line.
    pub value: Option<Zeroizing<String>>,
}

// Hand-written so that `{:?}` of the parsed command line never shows a value.
impl fmt::Debug for FieldArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldArg")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Parses `NAME=VALUE` (split at the first `=`, so values may hold `=`) or
/// a bare `NAME`.
pub fn parse_field(s: &str) -> Result<FieldArg, String> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    if name.is_empty() {
        return Err(
            "the field name is empty: use NAME=VALUE, or NAME to read the value from stdin".into(),
        );
    }
    Ok(FieldArg {
        name: name.to_string(),
        value: value.map(|v| Zeroizing::new(v.to_string())),
    })
}

/// `--binding ENV=FIELD`: inject field FIELD as variable ENV when running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingArg {
    pub env: String,
    pub field: String,
}

pub fn parse_binding(s: &str) -> Result<BindingArg, String> {
    match s.split_once('=') {
        Some((env, field)) if !env.is_empty() && !field.is_empty() => Ok(BindingArg {
            env: env.to_string(),
            field: field.to_string(),
        }),
        _ => Err("use ENV=FIELD, e.g. DB_PASSWORD=password".into()),
    }
}

/// `--tags a,b`: the complete new tag list; `--tags ""` clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(pub Vec<String>);

/// Splits at commas, trims, drops empty items and repeats (first one wins).
pub fn parse_tags(s: &str) -> Result<Tags, String> {
    let mut tags: Vec<String> = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    Ok(Tags(tags))
}

/// `--expires`: a duration from now, or `never` to clear the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    After(Duration),
}

impl Expiry {
    /// The wire value: unix seconds, or 0 to clear.
    pub fn to_unix(self, now: i64) -> i64 {
        match self {
            Expiry::Never => 0,
            Expiry::After(d) => now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        }
    }
}

pub fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s.trim().eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    let d = parse_duration(s)?;
    if d.as_secs() == 0 {
        return Err("the expiry must be at least one second away (or 'never')".into());
    }
    Ok(Expiry::After(d))
}

/// A duration as the contract writes them (`30s`, `8h`, `30d`, `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    secretctl_proto::duration::parse(s).map_err(|e| e.to_string())
}

/// A timeout flag: a duration of at least one second (0 is refused, not
/// read as "none").
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    secretctl_proto::duration::parse_timeout(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let f = parse_field("user=alice").unwrap();
        assert_eq!(f.name, "user");
        assert_eq!(f.value.as_deref().map(String::as_str), Some("alice"));
        // Only the first '=' splits: values may contain '='.
        let f = parse_field("dsn=a=b=c").unwrap();
        assert_eq!(f.value.as_deref().map(String::as_str), Some("a=b=c"));
        // A bare name reads its value later; an empty value is kept here
        // and refused when the request is built.
        assert_eq!(parse_field("password").unwrap().value, None);
        assert_eq!(
            parse_field("x=")
                .unwrap()
                .value
                .as_deref()
                .map(String::as_str),
            Some("")
        );
        assert!(parse_field("").is_err());
        assert!(parse_field("=v").is_err());
    }

    #[test]
    fn field_debug_hides_the_value() {
        let dbg = format!("{:?}", parse_field("pw=hunter2-secret").unwrap());
        assert!(dbg.contains("pw") && !dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn bindings() {
        assert_eq!(
            parse_binding("DB_PASS=password").unwrap(),
            BindingArg {
                env: "DB_PASS".into(),
                field: "password".into()
            }
        );
        for bad in ["", "NOEQUALS", "=password", "DB_PASS=", "="] {
            assert!(parse_binding(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tags("a,b").unwrap(),
            Tags(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_tags(" a , ,b,a,").unwrap(),
            Tags(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_tags("").unwrap(), Tags(vec![]), "\"\" clears");
    }

    #[test]
    fn expiry() {
        assert_eq!(parse_expiry("never").unwrap(), Expiry::Never);
        assert_eq!(parse_expiry("never").unwrap().to_unix(100), 0);
        let e = parse_expiry("30d").unwrap();
        assert_eq!(e, Expiry::After(Duration::from_secs(30 * 86400)));
        assert_eq!(e.to_unix(100), 100 + 30 * 86400);
        assert!(parse_expiry("30").is_err(), "a unit is required");
        assert!(parse_expiry("soon").is_err());
        assert!(parse_expiry("0s").is_err());
        assert_eq!(
            Expiry::After(Duration::from_secs(u64::MAX)).to_unix(1),
            i64::MAX
        );
    }
}
