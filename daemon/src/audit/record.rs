//! The audit record format (contract §8) and its MAC chain.
//!
//! `mac = HMAC-SHA256(audit_key, prev_mac ‖ canonical record)`, where the
//! canonical record is the record's JSON without `mac`, fields in a fixed
//! order, and `audit_key = HKDF-SHA256(data key, "secretctl audit v1")`.

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keyring::DataKey;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The key that seals the chain; derived from the data key, held only while
/// unlocked.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// Derives the audit key from the vault's data key.
    pub fn derive(dk: &DataKey) -> AuditKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"secretctl-audit"), dk.expose_secret());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(b"secretctl audit v1", out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        AuditKey(out)
    }

    /// HMAC of `prev ‖ body`.
    pub fn mac(&self, prev: &[u8], body: &[u8]) -> [u8; 32] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes any key length");
        m.update(prev);
        m.update(body);
        m.finalize().into_bytes().into()
    }
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: u32,
    pub exe: Option<String>,
}

/// One line of the log. Field order here is the canonical order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain; absent while unsealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub ts: String,
    pub action: String,
    pub source: String,
    /// How the daemon classified the caller (`user` / `agent`, contract
    /// §9); absent for the daemon's own events and on older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub peer: Peer,
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Action-specific facts (resolved command, cwd, exit code, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// Hex MAC of the previous record ("" for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// Hex MAC of this record; absent while unsealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Present (false) only on records written while locked, not yet sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    /// While locked: the record's link in the pending chain (hex), keyed
    /// with the pending key when the daemon has it (`pauth: "key"`), else a
    /// plain SHA-256 link (`pauth: "hash"`). Removed when sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pauth: Option<String>,
}

/// Longest command kept in a record; the rest is cut (and said so).
pub const MAX_COMMAND: usize = 4096;
/// Longest error message kept.
pub const MAX_ERROR: usize = 2048;
/// Most keys listed in one record.
pub const MAX_KEYS: usize = 256;
/// Longest key name kept.
pub const MAX_KEY: usize = 256;
/// Largest serialised `detail`.
pub const MAX_DETAIL: usize = 8192;

/// `text` cut to at most `max` bytes (on a character boundary), saying how
/// much was cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

impl Record {
    /// The bytes a MAC covers: everything but `mac`, `sealed` and the
    /// pending chain's fields.
    pub fn canonical(&self) -> Vec<u8> {
        let mut r = self.clone();
        r.mac = None;
        r.sealed = None;
        r.pmac = None;
        r.pauth = None;
        serde_json::to_vec(&r).expect("a record always serialises")
    }

    /// Caps what a client could make arbitrarily large (a command line, a
    /// key list, an error, the detail), so one request cannot write a huge
    /// line.
    pub fn bound(&mut self) {
        if let Some(c) = &mut self.command {
            *c = cut(c, MAX_COMMAND);
        }
        if let Some(e) = &mut self.error {
            *e = cut(e, MAX_ERROR);
        }
        if self.keys.len() > MAX_KEYS {
            let more = self.keys.len() - MAX_KEYS;
            self.keys.truncate(MAX_KEYS);
            self.keys.push(format!("… ({more} more)"));
        }
        for k in &mut self.keys {
            *k = cut(k, MAX_KEY);
        }
        if let Some(d) = &self.detail {
            let size = serde_json::to_vec(d).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_DETAIL {
                self.detail = Some(serde_json::json!({"truncated_detail_bytes": size}));
            }
        }
        if let Some(exe) = &mut self.peer.exe {
            *exe = cut(exe, MAX_KEY * 4);
        }
    }

    /// Seals the record as `seq` after `prev_mac`.
    pub fn seal(&mut self, key: &AuditKey, seq: u64, prev_mac: &[u8]) -> [u8; 32] {
        self.seq = Some(seq);
        self.prev = Some(hex(prev_mac));
        self.sealed = None;
        self.mac = None;
        let mac = key.mac(prev_mac, &self.canonical());
        self.mac = Some(hex(&mac));
        mac
    }

    /// One JSON line (with the trailing newline).
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("a record always serialises");
        v.push(b'\n');
        v
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex; `None` for anything else (odd length, non-hex, non-ASCII).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Now as RFC 3339 with milliseconds.
pub fn now_ts() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Unix milliseconds of an RFC 3339 timestamp.
pub fn ts_ms(ts: &str) -> Option<i64> {
    humantime::parse_rfc3339(ts)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        let mut r = crate::audit::event(
            "get",
            "cli",
            Peer {
                pid: Some(1),
                uid: 0,
                exe: None,
            },
        );
        r.keys = vec!["a".into()];
        r
    }

    #[test]
    fn chain_round_trip_and_tamper() {
        let key = AuditKey::derive(&DataKey::generate().unwrap());
        let mut a = rec();
        let mac_a = a.seal(&key, 1, &[]);
        let line = a.line();
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, a);
        assert_eq!(key.mac(&[], &back.canonical()), mac_a);
        let mut edited = back.clone();
        edited.keys = vec!["b".into()];
        assert_ne!(key.mac(&[], &edited.canonical()), mac_a);
        assert_eq!(unhex(&hex(&mac_a)).unwrap(), mac_a);
        assert!(serde_json::from_str::<Record>(r#"{"ts":"x","action":"a","source":"cli","peer":{"pid":1,"uid":0,"exe":null},"keys":[],"success":true,"extra":1}"#).is_err());
        assert!(ts_ms(&a.ts).is_some());
    }

    #[test]
    fn floats_in_detail_survive_the_round_trip() {
        // Found by fuzzing (fuzz/audit_record): without serde_json's exact
        // float parsing, a float read back from a line could differ from
        // the one sealed by one ulp, and the unedited record failed its MAC.
        let key = AuditKey::derive(&DataKey::from_bytes(&[7; 32]));
        let mut r = rec();
        r.detail =
            Some(serde_json::json!({"x": 1.8446747777000144e29_f64, "y": 0.1, "z": -2.5e-300}));
        let mac = r.seal(&key, 1, &[]);
        let back: Record = serde_json::from_slice(&r.line()).unwrap();
        assert_eq!(back.canonical(), r.canonical());
        assert_eq!(key.mac(&[], &back.canonical()), mac);
        let line = br#"{"ts":"x","action":"a","source":"cli","peer":{"pid":1,"uid":0,"exe":null},"keys":[],"success":true,"detail":184467477770001440703709551615}"#;
        let parsed: Record = serde_json::from_slice(line).unwrap();
        let again: Record = serde_json::from_slice(&parsed.line()).unwrap();
        assert_eq!(again.canonical(), parsed.canonical());
    }

    #[test]
    fn bound_caps_what_clients_control() {
        let mut r = rec();
        r.command = Some("é".repeat(10_000));
        r.error = Some("x".repeat(10_000));
        r.keys = (0..1000).map(|i| format!("k{i}")).collect();
        r.detail = Some(serde_json::json!({"big": "y".repeat(20_000)}));
        r.bound();
        let c = r.command.as_deref().unwrap();
        assert!(
            c.len() < MAX_COMMAND + 40 && c.contains("more bytes"),
            "{}",
            c.len()
        );
        assert!(r.error.as_deref().unwrap().len() < MAX_ERROR + 40);
        assert_eq!(r.keys.len(), MAX_KEYS + 1);
        assert_eq!(
            r.detail,
            Some(serde_json::json!({"truncated_detail_bytes": 20_010}))
        );
        assert!(r.line().len() < 20_000, "{}", r.line().len());
        let mut small = rec();
        small.command = Some("ls -l".into());
        let before = small.clone();
        small.bound();
        assert_eq!(small, before, "small records are untouched");
    }

    #[test]
    fn cut_backs_off_to_a_character_boundary() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abc", 2), "ab… (1 more bytes)");
        // `é` is bytes 1..3, `€` bytes 1..4: the cut moves back to byte 1.
        assert_eq!(cut("aé", 2), "a… (2 more bytes)");
        assert_eq!(cut("a€", 3), "a… (3 more bytes)");
    }

    #[test]
    fn bound_limits_are_inclusive_and_say_what_was_cut() {
        let mut r = rec();
        r.keys = (0..MAX_KEYS).map(|i| format!("k{i}")).collect();
        let big = |n: usize| serde_json::json!({"a": "d".repeat(n - br#"{"a":""}"#.len())});
        r.detail = Some(big(MAX_DETAIL));
        r.peer.exe = Some("e".repeat(MAX_KEY * 4));
        let before = r.clone();
        r.bound();
        assert_eq!(r, before, "a record at every limit is untouched");

        r.keys = (0..1000).map(|i| format!("k{i}")).collect();
        r.detail = Some(big(MAX_DETAIL + 1));
        r.peer.exe = Some("e".repeat(MAX_KEY * 4 + 1));
        r.bound();
        assert_eq!(r.keys.len(), MAX_KEYS + 1);
        assert_eq!(r.keys[MAX_KEYS - 1], format!("k{}", MAX_KEYS - 1));
        assert_eq!(r.keys[MAX_KEYS], "… (744 more)");
        assert_eq!(
            r.detail,
            Some(serde_json::json!({"truncated_detail_bytes": MAX_DETAIL + 1}))
        );
        assert_eq!(
            r.peer.exe,
            Some(format!("{}… (1 more bytes)", "e".repeat(MAX_KEY * 4)))
        );
    }

    #[test]
    fn ts_ms_is_unix_milliseconds() {
        assert_eq!(ts_ms("2024-01-02T03:04:05.678Z"), Some(1_704_164_645_678));
        assert_eq!(ts_ms("1970-01-01T00:00:00.002Z"), Some(2));
        assert_eq!(ts_ms("not a time"), None);
        let now = now_ts();
        let ms = ts_ms(&now).unwrap();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (wall - 60_000..=wall).contains(&ms),
            "{now}: {ms} vs {wall}"
        );
    }

    #[test]
    fn unhex_refuses_what_is_not_hex() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        for bad in ["aéa", "é", "0", "zz", "0g", "+1"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }
}
