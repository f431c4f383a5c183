//! The redactor, differential: fuzz-chosen values embedded (raw and
//! encoded, at any alignment) in fuzz-chosen output, streamed in random
//! chunks with deadline flushes, must give exactly what a brute-force
//! reference gives (every pattern tried at every position, the same merge
//! rule; as in `daemon/src/redact/tests.rs`), hold back less than the
//! longest pattern, and leave no value in any encoding outside a marker.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use secretctld::redact::{Redactor, encodings};

#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<Vec<u8>>,
    filler: Vec<u8>,
    /// (where, which value, which encoding)
    spots: Vec<(u16, u8, u8)>,
    /// Chunk sizes; the rest goes in one last chunk.
    cuts: Vec<u8>,
    /// After which chunks a deadline flush happens.
    flush_at: Vec<u8>,
    one_shot_first: bool,
}

/// Brute force: every pattern at every position, longest first at one
/// position (the first value given among equals), overlapping matches
/// merged into the first one's marker.
fn reference(values: &[(String, Vec<u8>)], input: &[u8]) -> Vec<u8> {
    let mut pats: Vec<(Vec<u8>, String)> = Vec::new();
    for (name, v) in values {
        for e in encodings(v) {
            pats.push((e.to_vec(), format!("[REDACTED:{name}]")));
        }
    }
    let mut hits: Vec<(usize, usize, &str)> = Vec::new();
    for s in 0..input.len() {
        let mut at: Vec<(usize, usize, &str)> = pats
            .iter()
            .filter(|(p, _)| input[s..].starts_with(p))
            .map(|(p, n)| (s, s + p.len(), n.as_str()))
            .collect();
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

fn marker_ranges(out: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while let Some(off) = out[i..].windows(11).position(|w| w == b"[REDACTED:V") {
        let s = i + off;
        let Some(len) = out[s..].iter().position(|&b| b == b']') else {
            break;
        };
        let e = s + len + 1;
        ranges.push((s, e));
        i = e;
    }
    ranges
}

fuzz_target!(|input: Input| {
    let named: Vec<(String, Vec<u8>)> = input
        .values
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, v)| (format!("V{i}"), v.iter().take(64).copied().collect()))
        .collect();
    let live: Vec<&Vec<u8>> = named
        .iter()
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .collect();
    let mut text: Vec<u8> = input.filler.iter().take(2048).copied().collect();
    for (at, which, enc) in input.spots.iter().take(8) {
        let Some(v) = (!live.is_empty()).then(|| live[*which as usize % live.len()]) else {
            break;
        };
        let piece = match enc % 6 {
            0 => v.to_vec(),
            1 => STANDARD.encode(v).into_bytes(),
            2 => v
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
                .into_bytes(),
            3 => URL_SAFE_NO_PAD.encode(v).into_bytes(),
            4 => {
                // Encoded inside a longer stream, at another alignment.
                let mut s = vec![b'x'; (*enc as usize / 6) % 3];
                s.extend_from_slice(v);
                s.push(b'\n');
                STANDARD.encode(s).into_bytes()
            }
            _ => {
                let all = encodings(v);
                all[(*enc as usize / 6) % all.len()].to_vec()
            }
        };
        let at = *at as usize % (text.len() + 1);
        text.splice(at..at, piece);
    }

    let r = Redactor::new(named.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let expected = reference(&named, &text);
    if input.one_shot_first {
        let (one_shot, _) = r.redact_all(&text);
        assert_eq!(one_shot, expected, "one-shot differs from the reference");
    }

    let mut s = r.stream();
    let mut got = Vec::new();
    let mut pos = 0;
    for (i, &c) in input.cuts.iter().enumerate() {
        let end = (pos + c as usize).min(text.len());
        s.push(&text[pos..end], &mut got);
        assert!(s.held() < r.max_pattern_len().max(1), "holdback bound");
        if input.flush_at.contains(&(i as u8)) {
            s.flush(&mut got);
            assert!(
                s.held() < r.max_pattern_len().max(1),
                "holdback bound after flush"
            );
        }
        pos = end;
    }
    s.push(&text[pos..], &mut got);
    s.finish(&mut got);
    assert_eq!(s.held(), 0, "finish releases everything");
    assert!(
        got == expected,
        "streamed output differs from the reference"
    );

    // No value survives in any encoding outside a marker.
    let markers = marker_ranges(&got);
    for v in &live {
        for e in encodings(v) {
            for start in 0..got.len() {
                if got[start..].starts_with(&e) {
                    let (a, b) = (start, start + e.len());
                    assert!(
                        markers.iter().any(|&(ms, me)| a < me && ms < b),
                        "a value survived at {start}"
                    );
                }
            }
        }
    }
});
