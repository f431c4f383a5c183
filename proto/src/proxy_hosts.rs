//! Proxy host patterns (contract §12): which hosts the credential proxy
//! may send a proxied secret to. One definition, used by the CLI to check
//! `--proxy-host` early, by the daemon at the boundary, and by the proxy
//! when it decides whether a CONNECT is intercepted.
//!
//! A pattern is an exact host (`api.github.com`, `localhost`, an IPv4
//! address) or `*.` plus a name of at least two labels (`*.example.com`),
//! which matches strict subdomains only: never `example.com` itself, and
//! never a bare top-level domain like `*.com`. No ports, no IPv6, no
//! trailing dot: a pattern means one thing.

/// Most proxy hosts on one secret or field.
pub const MAX_HOSTS: usize = 16;

/// Longest host name (RFC 1035).
const MAX_LEN: usize = 253;

fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks a pattern and returns its canonical (lower-case) form; the error
/// says what is wrong and what is allowed.
pub fn parse(pattern: &str) -> Result<String, String> {
    let p = pattern.to_ascii_lowercase();
    let bad = |why: &str| {
        Err(format!(
            "proxy host '{}': {why} (use a host like api.github.com or *.example.com)",
            crate::text::shown(pattern)
        ))
    };
    if p.is_empty() {
        return bad("empty");
    }
    if p.len() > MAX_LEN {
        return bad("longer than 253 bytes");
    }
    if p.contains(':') || p.contains('/') {
        return bad("no scheme, port, path or IPv6 address");
    }
    let (wild, name) = match p.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, p.as_str()),
    };
    if name.contains('*') {
        return bad("'*' only as the whole first label");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if !labels.iter().all(|l| label_ok(l)) {
        return bad("not a host name");
    }
    if wild && labels.len() < 2 {
        return bad("a wildcard needs a domain of at least two labels");
    }
    if wild && labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return bad("a wildcard cannot cover IP addresses");
    }
    Ok(p)
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

/// Whether `host` (as a client named it in a CONNECT) matches the
/// canonical `pattern`. Case-insensitive; one trailing dot is ignored.
pub fn matches(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked_and_canonical() {
        assert_eq!(parse("API.GitHub.com").unwrap(), "api.github.com");
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
            "a.com.",
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
