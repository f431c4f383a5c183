//! Proxy host patterns (contract §12): which hosts the credential proxy
//! may send a proxied secret to. One definition, used by the CLI to check
//! `--proxy-host` early, by the daemon at the boundary, and by the proxy
//! when it decides whether a CONNECT is intercepted.
//!
//! A pattern is an exact host (`api.github.com`, `localhost`, an IPv4
//! address) or `*.` plus a name of at least two labels (`*.example.com`),
//! which matches strict subdomains only: never `example.com` itself, and
//! never a bare top-level domain like `*.com`. No ports, no IPv6; a
//! trailing dot and case are dropped, so a pattern means one thing.

/// Most proxy hosts on one secret or field.
pub const MAX_HOSTS: usize = 16;

/// Longest host name (RFC 1035).
const MAX_LEN: usize = 253;

/// Checks a pattern and returns its canonical form (lower case, no
/// trailing dot); the error says what is wrong and what is allowed.
pub fn parse(pattern: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "proxy host '{}': {why}",
            crate::text::shown(pattern)
        ))
    };
    let lower = pattern.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower).to_string();
    if lower.is_empty() {
        return bad("empty; give a host name such as api.github.com");
    }
    if lower.len() > MAX_LEN {
        return bad("longer than 253 bytes");
    }
    if lower.contains(':') {
        return bad(
            "a port or IPv6 address is not allowed; give the host name alone (any port matches)",
        );
    }
    if lower.contains('/') {
        return bad("give a host name, not a URL");
    }
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    if name.contains('*') {
        return bad("only one leading \"*.\" is allowed, as in *.example.com");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("only letters, digits, '-' and '_' are allowed in a host name");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with '-'");
        }
    }
    let numeric = labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    let ipv4 = name.parse::<std::net::Ipv4Addr>().is_ok();
    if wild {
        if ipv4 || numeric {
            return bad("a wildcard cannot cover an IP address");
        }
        if labels.len() < 2 {
            // "*.com" would send the value to every host of a TLD.
            return bad("a wildcard needs at least two labels after \"*.\"");
        }
    } else if numeric && !ipv4 {
        return bad("not a valid IPv4 address");
    }
    Ok(lower)
}

/// Checks a list of patterns (at most [`MAX_HOSTS`]); returns them
/// canonical, without duplicates, in the order given.
pub fn parse_all<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<String>, String> {
    if patterns.len() > MAX_HOSTS {
        return Err(format!("at most {MAX_HOSTS} proxy hosts"));
    }
    let mut out: Vec<String> = Vec::new();
    for p in patterns {
        let p = parse(p.as_ref())?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Whether `host` (a CONNECT target's host, without port) matches the
/// canonical `pattern`. Case-insensitive; one trailing dot is ignored.
pub fn matches(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            // host = <one or more labels> "." suffix
            let Some(dot) = host.len().checked_sub(suffix.len() + 1) else {
                return false;
            };
            dot > 0
                && host.as_bytes()[dot] == b'.'
                && host
                    .get(dot + 1..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked_and_canonical() {
        assert_eq!(parse("API.GitHub.com.").unwrap(), "api.github.com");
        for ok in ["localhost", "127.0.0.1", "*.example.com", "a-b.c"] {
            assert_eq!(parse(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "**.a.b",
            "https://x.com",
            "x.com:443",
            "x.com/",
            "[::1]",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3.999",
            "a b.com",
            "*.1.2.3",
            "é.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse(&"a.".repeat(130)).is_err());
        let many: Vec<String> = (0..=MAX_HOSTS).map(|i| format!("h{i}.com")).collect();
        assert!(parse_all(&many).is_err());
        assert_eq!(parse_all(&["A.com", "a.com"]).unwrap(), ["a.com"]);
    }

    #[test]
    fn wildcards_match_strict_subdomains_only() {
        assert!(matches("*.example.com", "api.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(matches("*.example.com", "API.Example.com."));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "badexample.com"));
        assert!(!matches("*.example.com", "example.com.evil.net"));
        assert!(matches("api.github.com", "api.github.com"));
        assert!(!matches("api.github.com", "api.github.com.evil.net"));
        assert!(!matches("api.github.com", "github.com"));
    }
}
