//! The security findings (contract §10): weak, duplicated, expired and
//! expiring secrets, by key and field name only. One engine for the CLI's
//! `secretctl security` and MCP's `security_score`.
//!
//! Values are judged inside the daemon and never leave it: duplicates are
//! found through a hash keyed with a per-process random key, and strength
//! verdicts are cached under that hash so a repeated score of a large
//! vault does not run the estimator again. What the values were found to
//! be ([`Judged`], names only) is kept for the vault's current generation,
//! so looking again before anything changed decrypts nothing; expiry is
//! decided at each look, against the clock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock};

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

/// What the findings need of one state of the vault, judged once: the
/// verdicts on its values (weak, shared) and each secret's expiry. Key and
/// field names only, never a value. Whether a secret has expired depends on
/// the clock, so that is decided when the findings are asked for
/// ([`assess`]), from the expiry times kept here.
pub struct Judged {
    secret_count: usize,
    /// Weak fields and their secrets; how many of them are short.
    weak: Findings,
    short: usize,
    /// Groups of fields sharing one value, sorted.
    duplicates: Vec<Findings>,
    /// Secrets that count whole for a weak or shared value.
    penalised: std::collections::HashSet<String>,
    /// (key, expires_at) of every secret with an expiry.
    expiries: Vec<(String, i64)>,
}

/// Judges the values of `secrets` (the costly part: zxcvbn, hashing).
pub fn prepare(secrets: &[Scored]) -> Judged {
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
    let mut penalised = std::collections::HashSet::new();
    let mut expiries = Vec::new();
    for (s, verdict) in secrets.iter().zip(&verdicts) {
        for ((field, value), why) in s.values.iter().zip(verdict) {
            if let Some(why) = why {
                short += usize::from(*why == "short");
                weak.add(&s.key, field);
                penalised.insert(s.key.clone());
            }
            by_value
                .entry(hasher().hash_one(value.as_slice()))
                .or_default()
                .add(&s.key, field);
        }
        if let Some(e) = s.expires_at {
            expiries.push((s.key.clone(), e));
        }
    }
    let mut duplicates: Vec<Findings> = by_value
        .into_values()
        .filter(|f| f.fields.len() > 1)
        .collect();
    duplicates.sort_by(|a, b| a.fields.cmp(&b.fields));
    for group in &duplicates {
        penalised.extend(group.keys.iter().cloned());
    }
    Judged {
        secret_count: secrets.len(),
        weak,
        short,
        duplicates,
        penalised,
        expiries,
    }
}

/// The findings and score of a judged vault at `now` (unix seconds), with
/// an expiry window of `days`. Cheap: no value is looked at.
pub fn assess(j: &Judged, now: i64, days: u32) -> SecurityScoreResponse {
    let days = if days == 0 {
        DEFAULT_EXPIRING_DAYS
    } else {
        days
    };
    let horizon = now.saturating_add(i64::from(days) * 86400);
    let (mut expired, mut expiring) = (Vec::new(), Vec::new());
    // Each secret counts for its worst finding: weak, shared or expired
    // whole, expiring a quarter.
    let mut total = j.penalised.len() as f64;
    for (key, e) in &j.expiries {
        let counted = j.penalised.contains(key);
        if *e <= now {
            expired.push(key.clone());
            total += if counted { 0.0 } else { 1.0 };
        } else if *e <= horizon {
            expiring.push(key.clone());
            total += if counted { 0.0 } else { 0.25 };
        }
    }
    let mut issues = Vec::new();
    if !j.weak.keys.is_empty() {
        let message = format!(
            "{} field(s) of {} secret(s) have weak values ({} shorter than {WEAK_BELOW} characters, {} guessable): replace them, e.g. with 'secretctl generate --set KEY'",
            j.weak.fields.len(),
            j.weak.keys.len(),
            j.short,
            j.weak.fields.len() - j.short
        );
        issues.push(j.weak.issue("weak", message));
    }
    for group in &j.duplicates {
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
    let score = if j.secret_count == 0 {
        100
    } else {
        (100.0 * (1.0 - total / j.secret_count as f64)).round() as u32
    };
    SecurityScoreResponse {
        score,
        issues,
        secret_count: j.secret_count as u64,
        expiring_days: days,
    }
}

/// Judges the vault. `now` in unix seconds; `days` the expiry window.
pub fn score(secrets: &[Scored], now: i64, days: u32) -> SecurityScoreResponse {
    assess(&prepare(secrets), now, days)
}

/// The last vault state judged: its generation ([`Vault::generation`]) and
/// what was found. Names only.
///
/// [`Vault::generation`]: crate::vault::Vault::generation
#[derive(Default)]
pub struct JudgeCache {
    kept: Mutex<Option<(u64, Arc<Judged>)>>,
    /// Held while judging, so a look that comes meanwhile (the UI's first
    /// page during its warm-up) waits for that result instead of judging
    /// the same values again on the other core.
    judging: Mutex<()>,
}

impl JudgeCache {
    /// What was judged of `generation`, if that is the state kept.
    fn get(&self, generation: u64) -> Option<Arc<Judged>> {
        self.kept
            .lock()
            .expect("judge cache lock")
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, j)| j.clone())
    }

    fn put(&self, generation: u64, j: Arc<Judged>) {
        *self.kept.lock().expect("judge cache lock") = Some((generation, j));
    }

    fn clear(&self) {
        *self.kept.lock().expect("judge cache lock") = None;
    }
}

/// The daemon's one cache (one vault per daemon; generations are unique
/// across vault files, so a restored vault never meets the old verdicts).
fn judged() -> &'static JudgeCache {
    static J: OnceLock<JudgeCache> = OnceLock::new();
    J.get_or_init(Default::default)
}

/// Drops the judged state (the vault locked: what its values are like is
/// not kept while nobody may look).
pub fn forget() {
    judged().clear();
}

/// Judges every secret of an unlocked vault (sensitive fields only; a
/// damaged record's every field). The values are judged once per state of
/// the vault (its generation): until a secret changes, a look costs only
/// [`assess`], with expiry decided against `now`.
pub fn judge(
    vault: &crate::vault::Vault,
    dk: &crate::keyring::DataKey,
    now: i64,
    days: u32,
) -> Result<SecurityScoreResponse, crate::vault::VaultError> {
    judge_with(judged(), vault, dk, now, days)
}

fn judge_with(
    cache: &JudgeCache,
    vault: &crate::vault::Vault,
    dk: &crate::keyring::DataKey,
    now: i64,
    days: u32,
) -> Result<SecurityScoreResponse, crate::vault::VaultError> {
    // Read before the values: a change committed meanwhile gets a newer
    // generation, so what is kept here is never older than its key says.
    let generation = vault.generation();
    let j = match cache.get(generation) {
        Some(j) => j,
        None => {
            let _one_at_a_time = cache.judging.lock().expect("judging lock");
            if let Some(j) = cache.get(generation) {
                return Ok(assess(&j, now, days));
            }
            let scored: Vec<Scored> = vault
                .sensitive_secrets(dk)?
                .into_iter()
                .map(|s| Scored {
                    expires_at: s.record.expires_at,
                    key: s.key,
                    values: s.values,
                })
                .collect();
            let j = Arc::new(prepare(&scored));
            cache.put(generation, j.clone());
            j
        }
    };
    Ok(assess(&j, now, days))
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

    fn issue(&self, kind: &str, message: String) -> SecurityIssue {
        let mut i = issue(kind, message, self.keys.clone());
        i.fields = self
            .fields
            .iter()
            .map(|(key, field)| SecretField {
                key: key.clone(),
                field: field.clone(),
            })
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
    fn a_vault_is_judged_once_per_generation_and_expiry_at_each_look() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, dk) = crate::vault::Vault::init(
            &dir.path().join("v.redb"),
            b"pw",
            crate::crypto::KdfParams::TEST_TINY,
        )
        .unwrap();
        let mut req = secretctl_proto::v1::SetRequest {
            key: "a".into(),
            fields: vec![secretctl_proto::v1::FieldInput::new(
                "value",
                b"unique-long-value-4f0c6e".to_vec(),
            )],
            expires_at: Some(1000),
            ..Default::default()
        };
        vault.set(&dk, &req).unwrap();
        let g = vault.generation();
        let cache = JudgeCache::default();
        let before = judge_with(&cache, &vault, &dk, 0, 30).unwrap();
        assert_eq!(kinds(&before), [("expiring", vec!["a".to_string()])]);
        let kept = cache.get(g).expect("kept for this generation");
        // Same vault state, later clock: expired now, without judging again.
        let after = judge_with(&cache, &vault, &dk, 2000, 30).unwrap();
        assert!(
            Arc::ptr_eq(&kept, &cache.get(g).unwrap()),
            "not judged again"
        );
        assert_eq!(kinds(&after), [("expired", vec!["a".to_string()])]);
        assert_eq!(vault.generation(), g);
        // A change is a new generation, judged again.
        req.key = "b".into();
        req.fields = vec![secretctl_proto::v1::FieldInput::new(
            "value",
            b"short".to_vec(),
        )];
        req.expires_at = None;
        vault.set(&dk, &req).unwrap();
        assert_ne!(vault.generation(), g);
        assert!(cache.get(vault.generation()).is_none());
        let changed = judge_with(&cache, &vault, &dk, 0, 30).unwrap();
        assert!(kinds(&changed).contains(&("weak", vec!["b".to_string()])));
        assert!(cache.get(vault.generation()).is_some());
        cache.clear();
        assert!(cache.get(vault.generation()).is_none());
    }

    #[test]
    fn the_window_is_the_callers() {
        let one = [s("e", "unique-long-value-4f0c6e", Some(10 * 86400))];
        assert!(kinds(&score(&one, 0, 7)).is_empty());
        assert_eq!(kinds(&score(&one, 0, 30))[0].0, "expiring");
        assert_eq!(score(&one, 0, 0).expiring_days, DEFAULT_EXPIRING_DAYS);
    }
}
