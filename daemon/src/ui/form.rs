//! Request bodies of state-changing requests, kept in buffers that are
//! wiped when dropped: a typed master password or a new secret value is
//! never parsed into a plain `String` on its way to the service.
//!
//! The guard reads the body once (it needs the CSRF field), moves it into a
//! [`RawBody`] and hands the handler an empty HTTP body; handlers parse the
//! [`RawBody`] with [`Fields`]. What the HTTP stack itself buffered before
//! (hyper's read buffer, a body that arrived in several chunks) is out of
//! reach, as are the socket's buffers for gRPC requests (docs/ui.md).
//!
//! Invariant: form values exist only in [`Zeroizing`] buffers here, from
//! the bytes read off the connection to the service request (whose value
//! fields wipe themselves, see `secretctl_proto::wipe`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use zeroize::{Zeroize, Zeroizing};

/// The body of a state-changing request, wiped when dropped.
#[derive(Clone)]
pub struct RawBody(pub Arc<Zeroizing<Vec<u8>>>);

impl RawBody {
    /// Takes the body the guard read: copied into a wiped buffer, and the
    /// read buffer itself wiped when nothing else shares it.
    pub fn take(bytes: axum::body::Bytes) -> RawBody {
        let copy = Zeroizing::new(bytes.to_vec());
        if let Ok(mut own) = bytes.try_into_mut() {
            own.as_mut().zeroize();
        }
        RawBody(Arc::new(copy))
    }
}

/// A urlencoded form: names as sent, values decoded into wiped buffers.
pub struct Fields(Vec<(String, Zeroizing<String>)>);

impl Fields {
    /// Parses `a=1&b=x%20y`; a value that is not UTF-8 is an error (browsers
    /// send UTF-8), as is a malformed escape.
    pub fn parse(body: &[u8]) -> Result<Fields, &'static str> {
        let mut out = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = text(decode(name)?)?;
            let value = text(decode(value)?)?;
            out.push((String::clone(&name), value));
        }
        Ok(Fields(out))
    }

    /// The first value named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value named `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every (name, value), in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Percent-decoding (`+` is a space) into a wiped buffer that never grows.
fn decode(s: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len()));
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex);
                let lo = s.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err("the form has a malformed %-escape"),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// The bytes as text, moved (not copied) into a wiped `String`.
fn text(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, &'static str> {
    let v = std::mem::take(&mut *bytes);
    match String::from_utf8(v) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err("the form is not UTF-8 text")
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Fields {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Fields, Self::Rejection> {
        let raw = parts
            .extensions
            .get::<RawBody>()
            .ok_or((StatusCode::BAD_REQUEST, "no form body"))?;
        Fields::parse(&raw.0).map_err(|e| (StatusCode::BAD_REQUEST, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_like_browsers_send_them() {
        let f = Fields::parse(b"csrf=00&password=a+b%26c%3D%25&f.x=&flag&t=%C3%A9").unwrap();
        assert_eq!(f.get("password"), Some("a b&c=%"));
        assert_eq!(f.get("f.x"), Some(""));
        assert_eq!(f.get("flag"), Some(""));
        assert_eq!(f.text("t"), "é");
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.iter().count(), 5);
        assert!(Fields::parse(b"a=%zz").is_err());
        assert!(Fields::parse(b"a=%4").is_err());
        assert!(Fields::parse(b"a=%FF").is_err(), "not UTF-8");
    }

    #[test]
    fn the_body_is_kept_whole_in_its_wiped_copy() {
        let bytes = axum::body::Bytes::from(b"password=hunter2-long".to_vec());
        let raw = RawBody::take(bytes);
        assert_eq!(raw.0.as_slice(), b"password=hunter2-long");
    }
}
