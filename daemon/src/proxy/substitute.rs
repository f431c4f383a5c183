//! Putting values in place of placeholders in one request: in header values
//! and in the query string, never in the path or the body.
//!
//! Invariants:
//! - Only the substitutions handed in (those naming the CONNECT target) are
//!   applied; any other placeholder passes through unchanged.
//! - A header value that now holds a value is marked sensitive (HTTP/2
//!   never indexes it); a value that cannot stand in a header (a control
//!   character) refuses the request rather than being altered.
//! - In the query the value is percent-encoded (everything but RFC 3986
//!   unreserved characters), as a client encodes what it puts there; the
//!   placeholder itself is unreserved characters only.
//! - Scratch buffers holding a value are `Zeroizing` and sized up front, so
//!   no reallocation leaves a copy behind. (The final `HeaderValue` and
//!   `Uri` are hyper's `Bytes`, dropped once the request is written.)

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Uri};
use zeroize::Zeroizing;

use super::Substitution;

/// Why a request cannot be substituted; names the key, never the value.
#[derive(Debug)]
pub(crate) enum Refusal {
    NotHeaderSafe { key: String },
    BadUri,
}

impl Refusal {
    pub(crate) fn message(&self) -> String {
        match self {
            Refusal::NotHeaderSafe { key } => format!(
                "secretctl proxy: the value of {key} contains characters that cannot be sent in an HTTP header; nothing was sent\n"
            ),
            Refusal::BadUri => {
                "secretctl proxy: the request URI could not be rebuilt after substitution; nothing was sent\n".into()
            }
        }
    }
}

/// Replaces the placeholders of `subs` in `parts`' header values and query.
/// Returns the indices (into `subs`) of those that were substituted.
pub(crate) fn apply(parts: &mut Parts, subs: &[&Substitution]) -> Result<Vec<usize>, Refusal> {
    let mut used = vec![false; subs.len()];
    for (_, value) in parts.headers.iter_mut() {
        let mut current: Option<Zeroizing<Vec<u8>>> = None;
        for (i, sub) in subs.iter().enumerate() {
            let hay = current
                .as_deref()
                .map_or(value.as_bytes(), |v| v.as_slice());
            if let Some(replaced) = replace_all(hay, sub.placeholder.as_bytes(), &sub.value) {
                used[i] = true;
                current = Some(replaced);
            }
        }
        if let Some(bytes) = current {
            let mut new = HeaderValue::from_bytes(&bytes).map_err(|_| Refusal::NotHeaderSafe {
                key: last_key(subs, &used),
            })?;
            new.set_sensitive(true);
            *value = new;
        }
    }
    if let Some(pq) = parts.uri.path_and_query()
        && let Some(query) = pq.query()
    {
        let mut current: Option<Zeroizing<Vec<u8>>> = None;
        for (i, sub) in subs.iter().enumerate() {
            let hay = current
                .as_deref()
                .map_or(query.as_bytes(), |v| v.as_slice());
            let encoded = percent_encode(&sub.value);
            if let Some(replaced) = replace_all(hay, sub.placeholder.as_bytes(), &encoded) {
                used[i] = true;
                current = Some(replaced);
            }
        }
        if let Some(query) = current {
            let path = pq.path();
            let mut full = Zeroizing::new(Vec::with_capacity(path.len() + 1 + query.len()));
            full.extend_from_slice(path.as_bytes());
            full.push(b'?');
            full.extend_from_slice(&query);
            let pq = PathAndQuery::try_from(full.as_slice()).map_err(|_| Refusal::BadUri)?;
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(pq);
            parts.uri = Uri::from_parts(uri).map_err(|_| Refusal::BadUri)?;
        }
    }
    Ok(used
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.then_some(i))
        .collect())
}

/// The key named when a header cannot hold a value: the last one that was
/// substituted into it (good enough to point the user at a key to check).
fn last_key(subs: &[&Substitution], used: &[bool]) -> String {
    used.iter()
        .rposition(|u| *u)
        .map_or_else(String::new, |i| subs[i].key.clone())
}

/// `hay` with every `needle` replaced by `with`, or `None` if there is none.
fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let count = positions(hay, needle).count();
    if count == 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(
        hay.len() - count * needle.len() + count * with.len(),
    ));
    let mut from = 0;
    for at in positions(hay, needle) {
        out.extend_from_slice(&hay[from..at]);
        out.extend_from_slice(with);
        from = at + needle.len();
    }
    out.extend_from_slice(&hay[from..]);
    Some(out)
}

/// Start offsets of the non-overlapping occurrences of `needle` in `hay`.
fn positions<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() || from + needle.len() > hay.len() {
            return None;
        }
        let at = from
            + hay[from..]
                .windows(needle.len())
                .position(|w| w == needle)?;
        from = at + needle.len();
        Some(at)
    })
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn percent_encode(value: &[u8]) -> Zeroizing<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let wide = value.iter().filter(|b| !unreserved(**b)).count();
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() + 2 * wide));
    for &b in value {
        if unreserved(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::HostPattern;

    fn sub(key: &str, ph: &str, value: &[u8]) -> Substitution {
        Substitution {
            key: key.into(),
            placeholder: ph.into(),
            value: Zeroizing::new(value.to_vec()),
            hosts: vec![HostPattern::parse("example.com").unwrap()],
        }
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn headers_and_query_are_substituted_path_is_not() {
        let a = sub("a", "PH_A", b"tok en/+");
        let b = sub("b", "PH_B", b"bee");
        let mut p = parts(
            "https://example.com/PH_A/x?k=PH_A&j=PH_B&l=PH_A",
            &[("authorization", "Bearer PH_A"), ("x-other", "PH_C")],
        );
        let used = apply(&mut p, &[&a, &b]).unwrap();
        assert_eq!(used, vec![0, 1]);
        assert_eq!(p.uri.path(), "/PH_A/x");
        assert_eq!(
            p.uri.query(),
            Some("k=tok%20en%2F%2B&j=bee&l=tok%20en%2F%2B")
        );
        assert_eq!(p.headers["authorization"], "Bearer tok en/+");
        assert!(p.headers["authorization"].is_sensitive());
        assert_eq!(p.headers["x-other"], "PH_C");
    }

    #[test]
    fn nothing_to_substitute_leaves_the_request_alone() {
        let a = sub("a", "PH_A", b"v");
        let mut p = parts("https://example.com/?q=1", &[("x", "y")]);
        assert!(apply(&mut p, &[&a]).unwrap().is_empty());
        assert_eq!(p.uri, "https://example.com/?q=1");
        assert!(!p.headers["x"].is_sensitive());
    }

    #[test]
    fn a_value_unfit_for_a_header_refuses_without_the_value() {
        let a = sub("bad/key", "PH_A", b"line\r\nInjected: 1");
        let mut p = parts("https://example.com/", &[("authorization", "PH_A")]);
        let refusal = apply(&mut p, &[&a]).unwrap_err();
        let msg = refusal.message();
        assert!(msg.contains("bad/key") && !msg.contains("Injected"));
    }

    #[test]
    fn replace_all_counts_and_sizes() {
        assert_eq!(replace_all(b"xx", b"x", b"yz").unwrap().as_slice(), b"yzyz");
        assert_eq!(replace_all(b"aXXa", b"XX", b"").unwrap().as_slice(), b"aa");
        assert!(replace_all(b"abc", b"d", b"e").is_none());
    }
}
