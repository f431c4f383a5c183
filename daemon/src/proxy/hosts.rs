//! [`HostPattern`]: a host a proxied secret may be sent to, `api.github.com`
//! or `*.example.com`, and how a CONNECT target is matched against it.
//!
//! Invariants: a pattern is lowercase DNS-name characters (or an IPv4
//! literal), at most 253 bytes, with no port; a wildcard is one leading
//! `*.` over at least two labels, never over an IP literal, and matches
//! strict subdomains only (`*.example.com` does not match `example.com`).

use std::fmt;
use std::net::Ipv4Addr;

use super::ProxyError;

/// A validated, lowercase host or `*.`-wildcard.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern(String);

impl HostPattern {
    pub fn parse(s: &str) -> Result<HostPattern, ProxyError> {
        let bad = |reason: &str| ProxyError::HostPattern {
            pattern: s.to_string(),
            reason: reason.to_string(),
        };
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower).to_string();
        if lower.is_empty() {
            return Err(bad("empty; give a host name such as api.github.com"));
        }
        if lower.len() > 253 {
            return Err(bad("longer than 253 bytes"));
        }
        if lower.contains(':') {
            return Err(bad(
                "a port or IPv6 address is not allowed; give the host name alone (any port matches)",
            ));
        }
        if lower.contains('/') {
            return Err(bad("give a host name, not a URL"));
        }
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if name.contains('*') {
            return Err(bad(
                "only one leading \"*.\" is allowed, as in *.example.com",
            ));
        }
        let labels: Vec<&str> = name.split('.').collect();
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each dot-separated label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "only letters, digits, '-' and '_' are allowed in a host name",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label cannot start or end with '-'"));
            }
        }
        if wild {
            if name.parse::<Ipv4Addr>().is_ok()
                || labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(bad("a wildcard cannot cover an IP address"));
            }
            if labels.len() < 2 {
                // "*.com" would send the value to every host of a TLD.
                return Err(bad("a wildcard needs at least two labels after \"*.\""));
            }
        } else if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()))
            && name.parse::<Ipv4Addr>().is_err()
        {
            return Err(bad("not a valid IPv4 address"));
        }
        Ok(HostPattern(lower))
    }

    /// Whether `host` (a CONNECT target's host, without port) is covered.
    /// Case-insensitive; one trailing dot is ignored.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self.0.strip_prefix("*.") {
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
            None => host.eq_ignore_ascii_case(&self.0),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostPattern({})", self.0)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::HostPattern;

    #[test]
    fn valid_patterns_are_lowercased() {
        assert_eq!(
            HostPattern::parse("API.GitHub.com").unwrap().as_str(),
            "api.github.com"
        );
        assert_eq!(
            HostPattern::parse("*.Example.com").unwrap().as_str(),
            "*.example.com"
        );
        assert_eq!(
            HostPattern::parse("localhost").unwrap().as_str(),
            "localhost"
        );
        assert_eq!(
            HostPattern::parse("127.0.0.1").unwrap().as_str(),
            "127.0.0.1"
        );
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "",
            "api.github.com:443",
            "https://api.github.com",
            "*",
            "*.com",
            "a.*.com",
            "**.example.com",
            "*.10.0.0.1",
            "*.1.2",
            "ex ample.com",
            "-a.com",
            "a..com",
            "::1",
            "[::1]",
            "1.2.3.999",
            "a/b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(HostPattern::parse(&("a.".repeat(127) + "a")).is_err());
        assert!(HostPattern::parse(&("a.".repeat(126) + "a")).is_ok());
    }

    #[test]
    fn exact_and_wildcard_matching() {
        let exact = HostPattern::parse("api.github.com").unwrap();
        assert!(exact.matches("api.github.com"));
        assert!(exact.matches("API.GITHUB.COM"));
        assert!(exact.matches("api.github.com."));
        assert!(!exact.matches("xapi.github.com"));
        assert!(!exact.matches("api.github.com.evil.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.Example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches(".example.com"));
        assert!(!wild.matches("aexample.com"));
        assert!(!wild.matches("example.com.evil"));
    }
}
