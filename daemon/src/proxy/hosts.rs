//! [`HostPattern`]: a host a proxied secret may be sent to, `api.github.com`
//! or `*.example.com`, and how a CONNECT target is matched against it.
//!
//! Invariants: a pattern is lowercase DNS-name characters (or an IPv4
//! literal), at most 253 bytes, with no port; a wildcard is one leading
//! `*.` over at least two labels, never over an IP literal, and matches
//! strict subdomains only (`*.example.com` does not match `example.com`).

use std::fmt;

use super::ProxyError;

/// A validated, lowercase host or `*.`-wildcard.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern(String);

impl HostPattern {
    /// Checks `s` by the one definition every piece uses
    /// ([`secretctl_proto::proxy_hosts`]).
    pub fn parse(s: &str) -> Result<HostPattern, ProxyError> {
        secretctl_proto::proxy_hosts::parse(s)
            .map(HostPattern)
            .map_err(|reason| ProxyError::HostPattern {
                pattern: s.to_string(),
                reason,
            })
    }

    /// Whether `host` (a CONNECT target's host, without port) is covered.
    pub fn matches(&self, host: &str) -> bool {
        secretctl_proto::proxy_hosts::matches(&self.0, host)
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
