//! Redactor tests: fixed cases for every encoding, and property tests that
//! streamed output equals a naive one-shot reference for random values,
//! chunkings and embeddings, and contains no value in any encoding.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::*;

/// Reference: brute-force search of every pattern at every position, then
/// the same merge rule, in one pass over the whole input.
fn reference(values: &[(&str, &[u8])], input: &[u8]) -> Vec<u8> {
    let mut pats: Vec<(Vec<u8>, String)> = Vec::new();
    for (name, v) in values {
        for e in encodings(v) {
            pats.push((e.to_vec(), format!("[REDACTED:{name}]")));
        }
    }
    let mut hits: Vec<(usize, usize, String)> = Vec::new();
    for s in 0..input.len() {
        let mut at: Vec<(usize, usize, String)> = pats
            .iter()
            .filter(|(p, _)| input[s..].starts_with(p))
            .map(|(p, n)| (s, s + p.len(), n.clone()))
            .collect();
        // Longest first; among equal lengths the first value given wins.
        at.sort_by_key(|h| std::cmp::Reverse(h.1));
        hits.extend(at);
    }
    let mut out = Vec::new();
    let mut emitted = 0;
    for (s, e, name) in hits {
        if s < emitted {
            emitted = emitted.max(e);
        } else {
            out.extend_from_slice(&input[emitted..s]);
            out.extend_from_slice(name.as_bytes());
            emitted = e;
        }
    }
    out.extend_from_slice(&input[emitted.min(input.len())..]);
    out
}

fn streamed(r: &Redactor, input: &[u8], cuts: &[usize], flush_at: &[usize]) -> Vec<u8> {
    let mut s = r.stream();
    let mut out = Vec::new();
    let mut pos = 0;
    for (i, &c) in cuts.iter().enumerate() {
        let end = (pos + c).min(input.len());
        s.push(&input[pos..end], &mut out);
        assert!(s.held() < r.max_pattern_len().max(1), "holdback bound");
        if flush_at.contains(&i) {
            s.flush(&mut out);
        }
        pos = end;
    }
    s.push(&input[pos..], &mut out);
    s.finish(&mut out);
    out
}

fn marker_ranges(out: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while let Some(off) = out[i..].windows(11).position(|w| w == b"[REDACTED:V") {
        let s = i + off;
        let e = s + out[s..].iter().position(|&b| b == b']').unwrap() + 1;
        ranges.push((s, e));
        i = e;
    }
    ranges
}

#[test]
fn raw_and_each_encoding_is_redacted() {
    let v = b"s3cr3t/V@lue with space";
    let r = Redactor::new([("API_KEY", &v[..])]);
    let hexed: String = v.iter().map(|b| format!("{b:02x}")).collect();
    let json = "s3cr3t\\/V@lue with space";
    let cases = [
        String::from_utf8(v.to_vec()).unwrap(),
        hexed.clone(),
        hexed.to_uppercase(),
        STANDARD.encode(v),
        URL_SAFE_NO_PAD.encode(v),
        "s3cr3t%2FV%40lue%20with%20space".into(),
        "s3cr3t%2fV%40lue+with+space".into(),
        json.into(),
    ];
    for c in cases {
        let input = format!("before {c} after");
        let (out, n) = r.redact_all(input.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "before [REDACTED:API_KEY] after",
            "{c}"
        );
        assert_eq!(n, 1);
    }
}

#[test]
fn base64_at_every_offset_keeps_no_stable_part() {
    let v = b"sk_live_0123456789abcdef";
    let r = Redactor::new([("K", &v[..])]);
    for prefix in ["", "x", "xy", "xyz"] {
        let mut stream = prefix.as_bytes().to_vec();
        stream.extend_from_slice(v);
        stream.extend_from_slice(b"\n");
        for enc in [STANDARD.encode(&stream), URL_SAFE_NO_PAD.encode(&stream)] {
            let (out, n) = r.redact_all(enc.as_bytes());
            assert!(n >= 1, "offset {}: {enc}", prefix.len());
            let out = String::from_utf8(out).unwrap();
            // At most the partial groups at either end survive: a few chars.
            let visible = out.replace("[REDACTED:K]", "");
            assert!(visible.len() <= 8, "offset {}: {out}", prefix.len());
        }
    }
}

#[test]
fn prefix_value_does_not_leak_longer_tail() {
    let r = Redactor::new([("SHORT", &b"abcdef"[..]), ("LONG", &b"abcdefghijkl"[..])]);
    let (out, _) = r.redact_all(b"[abcdefghijkl]");
    assert_eq!(out, b"[[REDACTED:LONG]]");
    let (out, _) = r.redact_all(b"[abcdef]");
    assert_eq!(out, b"[[REDACTED:SHORT]]");
}

#[test]
fn overlapping_values_are_one_range() {
    let r = Redactor::new([("A", &b"1234abcd"[..]), ("B", &b"abcd5678"[..])]);
    let (out, n) = r.redact_all(b"x1234abcd5678y");
    assert_eq!(out, b"x[REDACTED:A]y");
    assert_eq!(n, 1);
}

#[test]
fn straddling_chunks_and_deadline_flush() {
    let r = Redactor::new([("T", &b"topsecret"[..])]);
    let mut s = r.stream();
    let mut out = Vec::new();
    s.push(b"hello tops", &mut out);
    s.flush(&mut out);
    assert_eq!(out, b"hello ", "a possible secret prefix is held back");
    s.push(b"ecret!", &mut out);
    s.finish(&mut out);
    assert_eq!(out, b"hello [REDACTED:T]!");

    let mut s = r.stream();
    let mut out = Vec::new();
    s.push(b"prompt> ", &mut out);
    s.flush(&mut out);
    assert_eq!(out, b"prompt> ", "interactive output is released by flush");
}

#[test]
fn short_and_binary_values_are_redacted() {
    let r = Redactor::new([("PIN", &b"42"[..]), ("BIN", &[0xff, 0x00, 0x10, 0x80][..])]);
    let (out, n) = r.redact_all(b"a42b\xff\x00\x10\x80c");
    assert_eq!(out, b"a[REDACTED:PIN]b[REDACTED:BIN]c");
    assert_eq!(n, 2);
}

#[test]
fn no_values_passes_through() {
    let r = Redactor::none();
    let (out, n) = r.redact_all(b"anything at all");
    assert_eq!(out, b"anything at all");
    assert_eq!(n, 0);
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..40),
        "[a-zA-Z0-9 /+=_\\-\"\\\\]{1,40}".prop_map(String::into_bytes),
        "[ab]{1,6}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn streaming_equals_reference_and_leaks_nothing(
        values in proptest::collection::vec(value_strategy(), 1..4),
        filler in proptest::collection::vec(any::<u8>(), 0..200),
        spots in proptest::collection::vec((0usize..200, 0usize..4, 0usize..4), 0..6),
        cuts in proptest::collection::vec(0usize..50, 0..30),
        flush_at in proptest::collection::vec(0usize..30, 0..5),
    ) {
        let named: Vec<(String, Vec<u8>)> =
            values.iter().enumerate().map(|(i, v)| (format!("V{i}"), v.clone())).collect();
        let pairs: Vec<(&str, &[u8])> = named.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        // Embed values, some encoded, into the filler.
        let mut input = filler.clone();
        for (at, which, enc) in spots {
            let v = &values[which % values.len()];
            let piece = match enc {
                0 => v.clone(),
                1 => STANDARD.encode(v).into_bytes(),
                2 => v.iter().map(|b| format!("{b:02X}")).collect::<String>().into_bytes(),
                _ => URL_SAFE_NO_PAD.encode(v).into_bytes(),
            };
            let at = at.min(input.len());
            input.splice(at..at, piece);
        }
        let r = Redactor::new(pairs.iter().copied());
        let expected = reference(&pairs, &input);
        let (one_shot, _) = r.redact_all(&input);
        prop_assert_eq!(&one_shot, &expected);
        let got = streamed(&r, &input, &cuts, &flush_at);
        prop_assert_eq!(&got, &expected);
        // No value survives in any listed encoding: every occurrence of a
        // pattern left in the output overlaps a marker.
        let markers = marker_ranges(&got);
        for v in &values {
            for e in encodings(v) {
                for s in 0..got.len() {
                    if got[s..].starts_with(&e) {
                        let (a, b) = (s, s + e.len());
                        prop_assert!(
                            markers.iter().any(|&(ms, me)| a < me && ms < b),
                            "pattern survived at {}", s
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn adjacent_values_get_a_marker_each() {
    let r = Redactor::new([("A", &b"abc1"[..])]);
    let (out, n) = r.redact_all(b"xabc1abc1y");
    assert_eq!(out, b"x[REDACTED:A][REDACTED:A]y");
    assert_eq!(n, 2);
}

#[test]
fn held_bytes_are_counted() {
    let r = Redactor::new([("T", &b"topsecret"[..])]);
    let hold = r.max_pattern_len() - 1;
    let mut s = r.stream();
    let mut out = Vec::new();
    let input = [&[b'x'; 40][..], b"tops"].concat();
    s.push(&input, &mut out);
    // At most the longest pattern minus one byte is held back.
    assert_eq!((out.len(), s.held()), (input.len() - hold, hold));
    s.flush(&mut out);
    assert_eq!((out.as_slice(), s.held()), (&input[..40], 4));
    s.finish(&mut out);
    assert_eq!((out, s.held()), (input, 0));
}
