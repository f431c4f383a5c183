//! One audit line: parsing never panics; a record that parses survives
//! `canonical()`, `line()` (which parses back to the same record) and
//! `bound()` (after which every client-controlled part is within its cap);
//! `unhex` accepts exactly even-length hex and inverts `hex`; `ts_ms`
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretctld::audit::record::{self, Record};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_unhex(text);
        let _ = record::ts_ms(text);
    }
    let Ok(mut rec) = serde_json::from_slice::<Record>(data) else {
        return;
    };
    let _ = record::ts_ms(&rec.ts);
    let canonical = rec.canonical();
    let back: Record = serde_json::from_slice(&canonical).expect("canonical bytes parse");
    assert_eq!(
        (back.mac.as_ref(), back.sealed, back.pmac.as_ref()),
        (None, None, None)
    );
    let line = rec.line();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "a record is one line"
    );
    let again: Record = serde_json::from_slice(&line).expect("a written line parses");
    assert_eq!(again.canonical(), canonical, "line() round-trips");
    assert_eq!(again.mac, rec.mac);

    rec.bound();
    let more = 40; // "… (N more bytes)"
    if let Some(c) = &rec.command {
        assert!(c.len() <= record::MAX_COMMAND + more, "{}", c.len());
    }
    if let Some(e) = &rec.error {
        assert!(e.len() <= record::MAX_ERROR + more, "{}", e.len());
    }
    assert!(rec.keys.len() <= record::MAX_KEYS + 1);
    for k in &rec.keys {
        assert!(k.len() <= record::MAX_KEY + more, "{}", k.len());
    }
    if let Some(d) = &rec.detail {
        assert!(serde_json::to_vec(d).unwrap().len() <= record::MAX_DETAIL);
    }
    if let Some(exe) = &rec.peer.exe {
        assert!(exe.len() <= record::MAX_KEY * 4 + more);
    }
    let _ = rec.line();
});

fn check_unhex(s: &str) {
    let is_hex = s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match record::unhex(s) {
        Some(bytes) => {
            assert!(is_hex, "unhex accepted {s:?}");
            assert_eq!(record::hex(&bytes), s.to_ascii_lowercase());
        }
        None => assert!(!is_hex, "unhex refused {s:?}"),
    }
}
