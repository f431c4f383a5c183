//! Every byte string a value can turn into on its way to a terminal: raw,
//! hex, base64 at each byte alignment, percent-encoding and JSON escaping.
//!
//! Base64 of a value embedded in a longer stream depends on the bytes around
//! it, so for each of the three alignments we match the *stable inner part*:
//! the encoding of the value's bytes that fill whole 3-byte groups. The
//! complete padded and unpadded encodings are added too, so a value encoded
//! on its own is covered to the last character.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// All distinct encodings of `value` (the raw bytes first).
pub fn encodings(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut add = |v: Vec<u8>| {
        let v = Zeroizing::new(v);
        if !v.is_empty() && !out.iter().any(|o| o.as_slice() == v.as_slice()) {
            out.push(v);
        }
    };
    add(value.to_vec());
    add(hex(value, b"0123456789abcdef"));
    add(hex(value, b"0123456789ABCDEF"));
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        add(engine.encode(value).into_bytes());
    }
    for skip in 0..3 {
        let Some(part) = value.get(skip..) else {
            continue;
        };
        let whole = part.len() / 3 * 3;
        if whole >= 3 {
            add(STANDARD_NO_PAD.encode(&part[..whole]).into_bytes());
            add(URL_SAFE_NO_PAD.encode(&part[..whole]).into_bytes());
        }
    }
    for upper in [true, false] {
        for plus in [true, false] {
            add(percent(value, upper, plus));
        }
    }
    for slash in [false, true] {
        add(json(value, slash, false));
        add(json(value, slash, true));
    }
    out
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 2);
    for b in value {
        out.push(digits[(b >> 4) as usize]);
        out.push(digits[(b & 15) as usize]);
    }
    out
}

/// RFC 3986 percent-encoding (unreserved bytes kept), with upper or lower
/// hex digits and space as `+` (forms) or `%20`.
fn percent(value: &[u8], upper: bool, plus_for_space: bool) -> Vec<u8> {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if b == b' ' && plus_for_space {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', digits[(b >> 4) as usize], digits[(b & 15) as usize]]);
        }
    }
    out
}

/// A JSON string body: `"` `\` and control characters escaped; optionally
/// `/` as `\/`; optionally non-ASCII as `\uXXXX` (as Python's json.dumps does).
fn json(value: &[u8], escape_slash: bool, ascii_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let text = std::str::from_utf8(value).ok();
    let mut push_u = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
    };
    match (ascii_only, text) {
        (true, Some(text)) => {
            for c in text.chars() {
                if c.is_ascii() {
                    json_byte(&mut out, c as u8, escape_slash, &mut push_u);
                } else {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        push_u(&mut out, *unit);
                    }
                }
            }
        }
        _ => {
            for &b in value {
                json_byte(&mut out, b, escape_slash, &mut push_u);
            }
        }
    }
    out
}

fn json_byte(
    out: &mut Vec<u8>,
    b: u8,
    escape_slash: bool,
    push_u: &mut impl FnMut(&mut Vec<u8>, u16),
) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'/' if escape_slash => out.extend_from_slice(b"\\/"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0..=0x1f | 0x7f => push_u(out, u16::from(b)),
        _ => out.push(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(list: &[Zeroizing<Vec<u8>>], s: &str) -> bool {
        list.iter().any(|v| v.as_slice() == s.as_bytes())
    }

    #[test]
    fn covers_each_encoding() {
        let e = encodings(b"a b/\"c\xc3\xa9");
        assert!(e.iter().any(|v| v.starts_with(b"6120622f")));
        assert!(e.iter().any(|v| v.starts_with(b"6120622F")));
        assert!(has(&e, "a+b%2F%22c%C3%A9"));
        assert!(has(&e, "a%20b%2f%22c%c3%a9"));
        assert!(has(&e, "a b/\\\"c\u{e9}"));
        assert!(has(&e, "a b\\/\\\"c\u{e9}"));
        assert!(has(&e, "a b/\\\"c\\u00e9"));
    }

    #[test]
    fn base64_inner_parts_for_each_alignment() {
        let v = b"0123456789";
        let e = encodings(v);
        for prefix in [&b""[..], b"x", b"xy"] {
            let mut stream = prefix.to_vec();
            stream.extend_from_slice(v);
            stream.extend_from_slice(b"tail");
            let enc = STANDARD.encode(&stream);
            assert!(
                e.iter()
                    .any(|p| p.len() >= 8 && enc.contains(std::str::from_utf8(p).unwrap())),
                "no stable part for prefix {prefix:?} in {enc}"
            );
        }
        assert!(has(&e, &STANDARD.encode(v)));
        assert!(has(&e, &STANDARD_NO_PAD.encode(v)));
    }

    #[test]
    fn no_duplicates_or_empties() {
        let e = encodings(b"plainvalue");
        for (i, a) in e.iter().enumerate() {
            assert!(!a.is_empty());
            assert!(e[i + 1..].iter().all(|b| b.as_slice() != a.as_slice()));
        }
    }

    #[test]
    fn json_escapes_of_control_characters() {
        let v = "a\\b\nc\rd\te\u{8}f\u{c}g\u{1}h";
        let e = encodings(v.as_bytes());
        assert!(has(&e, r"a\\b\nc\rd\te\bf\fg\u0001h"));
        // What a JSON encoder prints for it is covered.
        let printed = serde_json::to_string(v).unwrap();
        assert!(has(&e, &printed[1..printed.len() - 1]), "{printed}");
        assert!(has(&encodings(b"del\x7f"), r"del\u007f"));
    }
}
