//! `security_score`: weak, duplicated, expired and expiring secrets, by key
//! name only. Values are compared through a randomly keyed hash inside the
//! daemon and never leave it.

use std::collections::HashMap;
use std::hash::BuildHasher;

use secretctl_proto::v1::{SecurityIssue, SecurityScoreResponse};
use zeroize::Zeroizing;

/// Sensitive values shorter than this are reported as weak.
pub const WEAK_BELOW: usize = 12;
/// Secrets expiring within this many seconds are reported.
pub const EXPIRING_WITHIN: i64 = 30 * 86400;

/// One secret's inputs to the score.
pub struct Scored {
    pub key: String,
    pub expires_at: Option<i64>,
    /// Sensitive field values (never returned).
    pub values: Vec<Zeroizing<Vec<u8>>>,
}

/// Scores the vault: 100 minus a penalty per issue, floored at 0.
pub fn score(secrets: &[Scored], now: i64) -> SecurityScoreResponse {
    let hasher = std::collections::hash_map::RandomState::new();
    let mut by_hash: HashMap<u64, Vec<&str>> = HashMap::new();
    let (mut weak, mut expired, mut expiring) = (Vec::new(), Vec::new(), Vec::new());
    for s in secrets {
        if s.values.iter().any(|v| v.len() < WEAK_BELOW) {
            weak.push(s.key.clone());
        }
        for v in &s.values {
            let keys = by_hash.entry(hasher.hash_one(v.as_slice())).or_default();
            if !keys.contains(&s.key.as_str()) {
                keys.push(&s.key);
            }
        }
        match s.expires_at {
            Some(e) if e <= now => expired.push(s.key.clone()),
            Some(e) if e <= now + EXPIRING_WITHIN => expiring.push(s.key.clone()),
            _ => {}
        }
    }
    let mut issues = Vec::new();
    let mut penalty = 0u32;
    if !weak.is_empty() {
        penalty += 10 * weak.len() as u32;
        issues.push(SecurityIssue {
            kind: "weak".into(),
            message: format!(
                "{} secret(s) have sensitive values shorter than {WEAK_BELOW} characters",
                weak.len()
            ),
            keys: weak,
        });
    }
    let mut dups: Vec<Vec<&str>> = by_hash.into_values().filter(|k| k.len() > 1).collect();
    dups.sort();
    for group in dups {
        penalty += 15;
        issues.push(SecurityIssue {
            kind: "duplicate".into(),
            message: format!("{} secrets share a value: rotate all but one", group.len()),
            keys: group.into_iter().map(str::to_string).collect(),
        });
    }
    if !expired.is_empty() {
        penalty += 20 * expired.len() as u32;
        issues.push(SecurityIssue {
            kind: "expired".into(),
            message: format!(
                "{} secret(s) have expired and cannot be used in runs",
                expired.len()
            ),
            keys: expired,
        });
    }
    if !expiring.is_empty() {
        penalty += 5 * expiring.len() as u32;
        issues.push(SecurityIssue {
            kind: "expiring".into(),
            message: format!("{} secret(s) expire within 30 days", expiring.len()),
            keys: expiring,
        });
    }
    SecurityScoreResponse {
        score: 100u32.saturating_sub(penalty),
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str, v: &str, exp: Option<i64>) -> Scored {
        Scored {
            key: key.into(),
            expires_at: exp,
            values: vec![Zeroizing::new(v.as_bytes().to_vec())],
        }
    }

    #[test]
    fn finds_each_kind_without_values() {
        let r = score(
            &[
                s("a", "short", None),
                s("b", "same-long-value-123", None),
                s("c", "same-long-value-123", None),
                s("d", "unique-long-value-456", Some(10)),
                s("e", "unique-long-value-789", Some(1000 + 86400)),
            ],
            1000,
        );
        let kinds: Vec<_> = r
            .issues
            .iter()
            .map(|i| (i.kind.as_str(), i.keys.clone()))
            .collect();
        assert!(kinds.contains(&("weak", vec!["a".into()])));
        assert!(kinds.contains(&("duplicate", vec!["b".into(), "c".into()])));
        assert!(kinds.contains(&("expired", vec!["d".into()])));
        assert!(kinds.contains(&("expiring", vec!["e".into()])));
        assert_eq!(r.score, 100 - 10 - 15 - 20 - 5);
        let text = format!("{r:?}");
        assert!(!text.contains("same-long-value"), "{text}");
        assert_eq!(
            score(&[s("x", "a-perfectly-fine-value", None)], 0).score,
            100
        );
    }
}
