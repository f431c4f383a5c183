//! The security findings (contract §10): weak, duplicated, expired and
//! expiring secrets, by key and field name only. One engine for the CLI's
//! `secretctl security` and MCP's `security_score`.
//!
//! Values are judged inside the daemon and never leave it: duplicates are
//! found through a hash keyed with a per-process random key, and strength
//! verdicts are cached under that hash so a repeated score of a large
//! vault does not run the estimator again.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock};

use secretctl_proto::v1::{SecretField, SecurityIssue, SecurityScoreResponse};
use zeroize::Zeroizing;

/// Sensitive values shorter than this are weak whatever they hold.
pub const WEAK_BELOW: usize = 12;
/// Values up to this long are also checked for guessable patterns (words,
/// keyboard walks, dates) with zxcvbn; longer ones are machine-made in
/// practice, and the estimator's cost grows with the length.
pub const ESTIMATE_UP_TO: usize = 32;
/// zxcvbn scores below this (of 0-4) are weak: fewer than about 10^10
/// guesses.
pub const MIN_SCORE: u8 = 3;
/// The default expiry window.
pub const DEFAULT_EXPIRING_DAYS: u32 = 30;
/// Verdicts kept in the cache before it is emptied.
const CACHE_LIMIT: usize = 1 << 20;

/// One secret's inputs.
pub struct Scored {
    pub key: String,
    pub expires_at: Option<i64>,
    /// (field name, value) of each sensitive field (never returned).
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
}

/// Why a value is weak, if it is.
fn weakness(value: &[u8]) -> Option<&'static str> {
    if value.len() < WEAK_BELOW {
        return Some("short");
    }
    if value.len() > ESTIMATE_UP_TO {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let key = hasher().hash_one(value);
    if let Some(&weak) = cache().lock().expect("cache lock").get(&key) {
        return weak.then_some("guessable");
    }
    let weak = u8::from(zxcvbn::zxcvbn(text, &[]).score()) < MIN_SCORE;
    let mut c = cache().lock().expect("cache lock");
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert(key, weak);
    weak.then_some("guessable")
}

fn hasher() -> &'static std::collections::hash_map::RandomState {
    static H: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    H.get_or_init(Default::default)
}

fn cache() -> &'static Mutex<HashMap<u64, bool>> {
    static C: OnceLock<Mutex<HashMap<u64, bool>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Judges the vault. `now` in unix seconds; `days` the expiry window.
pub fn score(secrets: &[Scored], now: i64, days: u32) -> SecurityScoreResponse {
    let days = if days == 0 {
        DEFAULT_EXPIRING_DAYS
    } else {
        days
    };
    let horizon = now.saturating_add(i64::from(days) * 86400);
    // Verdicts on both cores: the estimator is most of the cost.
    let verdicts: Vec<Vec<Option<&'static str>>> = {
        let judge = |part: &[Scored]| -> Vec<Vec<Option<&'static str>>> {
            part.iter()
                .map(|s| s.values.iter().map(|(_, v)| weakness(v)).collect())
                .collect()
        };
        let (a, b) = secrets.split_at(secrets.len() / 2);
        std::thread::scope(|sc| {
            let later = sc.spawn(|| judge(b));
            let mut out = judge(a);
            out.extend(later.join().expect("judging does not panic"));
            out
        })
    };
    let mut weak = Findings::default();
    let mut short = 0usize;
    let mut by_value: HashMap<u64, Findings> = HashMap::new();
    let (mut expired, mut expiring) = (Vec::new(), Vec::new());
    // Per secret: the share of a finding it counts for (at most 1).
    let mut penalty: HashMap<String, f64> = HashMap::new();
    for (s, verdict) in secrets.iter().zip(&verdicts) {
        for ((field, value), why) in s.values.iter().zip(verdict) {
            if let Some(why) = why {
                short += usize::from(*why == "short");
                weak.add(&s.key, field);
                penalty.insert(s.key.clone(), 1.0);
            }
            by_value
                .entry(hasher().hash_one(value.as_slice()))
                .or_default()
                .add(&s.key, field);
        }
        match s.expires_at {
            Some(e) if e <= now => {
                expired.push(s.key.clone());
                penalty.insert(s.key.clone(), 1.0);
            }
            Some(e) if e <= horizon => {
                expiring.push(s.key.clone());
                let p = penalty.entry(s.key.clone()).or_insert(0.0);
                *p = p.max(0.25);
            }
            _ => {}
        }
    }
    let mut issues = Vec::new();
    if !weak.keys.is_empty() {
        let message = format!(
            "{} field(s) of {} secret(s) have weak values ({short} shorter than {WEAK_BELOW} characters, {} guessable): replace them, e.g. with 'secretctl generate --set KEY'",
            weak.fields.len(),
            weak.keys.len(),
            weak.fields.len() - short
        );
        issues.push(weak.issue("weak", message));
    }
    let mut dups: Vec<Findings> = by_value
        .into_values()
        .filter(|f| f.fields.len() > 1)
        .collect();
    dups.sort_by(|a, b| a.fields.cmp(&b.fields));
    for group in dups {
        for k in &group.keys {
            penalty.insert(k.clone(), 1.0);
        }
        let n = group.fields.len();
        issues.push(group.issue(
            "duplicate",
            format!("{n} fields share one value: give each its own"),
        ));
    }
    if !expired.is_empty() {
        issues.push(issue(
            "expired",
            format!(
                "{} secret(s) have expired and cannot be used in runs: rotate them and set a new --expires",
                expired.len()
            ),
            expired,
        ));
    }
    if !expiring.is_empty() {
        issues.push(issue(
            "expiring",
            format!("{} secret(s) expire within {days} days", expiring.len()),
            expiring,
        ));
    }
    let total: f64 = penalty.values().sum();
    let score = if secrets.is_empty() {
        100
    } else {
        (100.0 * (1.0 - total / secrets.len() as f64)).round() as u32
    };
    SecurityScoreResponse {
        score,
        issues,
        secret_count: secrets.len() as u64,
        expiring_days: days,
    }
}

/// Judges every secret of an unlocked vault (sensitive fields only; a
/// damaged record's every field).
pub fn judge(
    vault: &crate::vault::Vault,
    dk: &crate::keyring::DataKey,
    now: i64,
    days: u32,
) -> Result<SecurityScoreResponse, crate::vault::VaultError> {
    let scored: Vec<Scored> = vault
        .sensitive_secrets(dk)?
        .into_iter()
        .map(|s| Scored {
            expires_at: s.record.expires_at,
            key: s.key,
            values: s.values,
        })
        .collect();
    Ok(score(&scored, now, days))
}

fn issue(kind: &str, message: String, mut keys: Vec<String>) -> SecurityIssue {
    keys.sort();
    keys.dedup();
    SecurityIssue {
        kind: kind.into(),
        keys,
        message,
        fields: Vec::new(),
    }
}

/// Fields with one finding, and their secrets.
#[derive(Default)]
struct Findings {
    keys: Vec<String>,
    fields: Vec<(String, String)>,
}

impl Findings {
    fn add(&mut self, key: &str, field: &str) {
        if self.keys.last().is_none_or(|k| k != key) {
            self.keys.push(key.to_string());
        }
        self.fields.push((key.to_string(), field.to_string()));
    }

    fn issue(self, kind: &str, message: String) -> SecurityIssue {
        let mut i = issue(kind, message, self.keys);
        i.fields = self
            .fields
            .into_iter()
            .map(|(key, field)| SecretField { key, field })
            .collect();
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str, v: &str, exp: Option<i64>) -> Scored {
        Scored {
            key: key.into(),
            expires_at: exp,
            values: vec![("value".into(), Zeroizing::new(v.as_bytes().to_vec()))],
        }
    }

    fn kinds(r: &SecurityScoreResponse) -> Vec<(&str, Vec<String>)> {
        r.issues
            .iter()
            .map(|i| (i.kind.as_str(), i.keys.clone()))
            .collect()
    }

    #[test]
    fn finds_each_kind_without_values() {
        let r = score(
            &[
                s("a", "short", None),
                s("b", "same-long-value-8c1f2e", None),
                s("c", "same-long-value-8c1f2e", None),
                s("d", "unique-long-value-9d7a3b", Some(10)),
                s("e", "unique-long-value-4f0c6e", Some(1000 + 86400)),
                s("f", "password123456", None),
            ],
            1000,
            30,
        );
        let k = kinds(&r);
        assert!(k.contains(&("weak", vec!["a".into(), "f".into()])), "{k:?}");
        assert!(k.contains(&("duplicate", vec!["b".into(), "c".into()])));
        assert!(k.contains(&("expired", vec!["d".into()])));
        assert!(k.contains(&("expiring", vec!["e".into()])));
        // a, b, c, d, f count whole; e a quarter: 100 * (1 - 5.25/6).
        assert_eq!(r.score, 13);
        let text = format!("{r:?}");
        assert!(!text.contains("same-long-value"), "{text}");
        assert!(!text.contains("password123"), "{text}");
        assert_eq!(
            score(&[s("x", "a-perfectly-fine-value-7Qz", None)], 0, 30).score,
            100
        );
        assert_eq!(score(&[], 0, 30).score, 100);
    }

    #[test]
    fn fields_are_named_and_nothing_is_capped() {
        let many: Vec<Scored> = (0..500)
            .map(|i| s(&format!("k{i:03}"), "dup", None))
            .collect();
        let r = score(&many, 0, 30);
        let weak = r.issues.iter().find(|i| i.kind == "weak").unwrap();
        assert_eq!(weak.keys.len(), 500, "no cap on findings");
        assert_eq!(weak.fields[0].field, "value");
        let dup = r.issues.iter().find(|i| i.kind == "duplicate").unwrap();
        assert_eq!(dup.fields.len(), 500);
        assert_eq!(r.score, 0);
        // Two fields of one secret sharing a value are a duplicate too.
        let mut two = s("db", "same-long-value-8c1f2e", None);
        two.values.push((
            "backup".into(),
            Zeroizing::new(b"same-long-value-8c1f2e".to_vec()),
        ));
        let r = score(&[two], 0, 30);
        assert_eq!(kinds(&r), [("duplicate", vec!["db".to_string()])]);
    }

    #[test]
    fn the_window_is_the_callers() {
        let one = [s("e", "unique-long-value-4f0c6e", Some(10 * 86400))];
        assert!(kinds(&score(&one, 0, 7)).is_empty());
        assert_eq!(kinds(&score(&one, 0, 30))[0].0, "expiring");
        assert_eq!(score(&one, 0, 0).expiring_days, DEFAULT_EXPIRING_DAYS);
    }
}
