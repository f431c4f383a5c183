//! From key patterns to environment variables (contract §5).
//!
//! Globs are matched over key names (`*` within a segment, `**` across; a
//! plain name must exist). Env aliases from the policy file rewrite the
//! patterns before lookup, while env names come from the pattern as written,
//! so `run --env dev -k 'db/*'` injects `dev/db/host` as `DB_HOST`. A secret
//! with bindings injects them; otherwise its `value` field (or its only
//! field).
//!
//! Invariant: everything is checked before anything runs: invalid or denied
//! env names, two keys mapping to one name, expired secrets and missing keys
//! all refuse the whole run.

use std::collections::BTreeMap;

use secretctl_proto::names;
use secretctl_proto::text;
use zeroize::Zeroizing;

use crate::keyring::DataKey;
use crate::policy::{self, Policy, Rewritten};
use crate::secret;
use crate::vault::{Vault, VaultError};

/// Most patterns in one run.
pub const MAX_PATTERNS: usize = 256;

/// One variable to inject. No `Debug`: it holds a value.
pub struct Injection {
    pub env: String,
    pub key: String,
    pub value: Zeroizing<Vec<u8>>,
    /// Whether the field is sensitive: only sensitive values are redacted
    /// (a host or user name injected beside a password is not hidden).
    pub sensitive: bool,
    /// The field injected.
    pub field: String,
    /// Where the credential proxy may send it (contract §12); empty: not
    /// proxied.
    pub proxy_hosts: Vec<String>,
}

/// Why a run was refused before starting.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("secret '{key}' expired at {at}: renew it with 'secretctl set {key} --expires ...'")]
    Expired { key: String, at: String },
    #[error("{0}")]
    Policy(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Loads the policy file when an env alias needs it.
pub fn policy_for_alias(
    policy_path: &std::path::Path,
    alias: &str,
) -> Result<Option<Policy>, ResolveError> {
    if alias.is_empty() {
        return Ok(None);
    }
    policy::load(policy_path)
        .map(Some)
        .map_err(|e| ResolveError::Policy(e.to_string()))
}

/// Whether resolving decrypts the values, or only finds what would be
/// injected (a dry run: each [`Injection`] then holds an empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    Open,
    Skip,
}

/// Resolves `patterns` (under `alias`, with `prefix`) to injections.
/// `policy` is the policy file's content, needed only when `alias` is set.
pub fn resolve(
    vault: &Vault,
    dk: &DataKey,
    policy: Option<&Policy>,
    alias: &str,
    prefix: &str,
    patterns: &[String],
    now: i64,
) -> Result<Vec<Injection>, ResolveError> {
    resolve_as(
        vault,
        dk,
        policy,
        alias,
        prefix,
        patterns,
        now,
        Values::Open,
    )
}

/// [`resolve`], with or without decrypting the values: every check is the
/// same (a value that no longer decrypts is found only by opening it).
#[expect(
    clippy::too_many_arguments,
    reason = "resolve's own arguments plus whether to open the values"
)]
pub fn resolve_as(
    vault: &Vault,
    dk: &DataKey,
    policy: Option<&Policy>,
    alias: &str,
    prefix: &str,
    patterns: &[String],
    now: i64,
    values: Values,
) -> Result<Vec<Injection>, ResolveError> {
    if patterns.is_empty() {
        return Err(ResolveError::Invalid(
            "no key pattern given: name at least one secret to inject".into(),
        ));
    }
    if patterns.len() > MAX_PATTERNS {
        return Err(ResolveError::Invalid(format!(
            "at most {MAX_PATTERNS} key patterns per run"
        )));
    }
    if !prefix.is_empty() {
        names::validate_env_name(&format!("{prefix}X")).map_err(|_| {
            ResolveError::Invalid(format!(
                "env prefix '{prefix}' is not a valid start of an environment name"
            ))
        })?;
    }
    let policy = match (alias.is_empty(), policy) {
        (true, _) => None,
        (false, Some(p)) => Some(p),
        (false, None) => {
            return Err(ResolveError::Policy(format!(
                "env alias '{alias}' needs the policy file, which was not loaded"
            )));
        }
    };

    // env name → key it came from, to refuse collisions.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    let mut done_keys = std::collections::BTreeSet::new();
    for pattern in patterns {
        names::validate_pattern(pattern).map_err(|e| {
            ResolveError::Invalid(format!("key pattern '{}': {e}", text::shown(pattern)))
        })?;
        let rw: Rewritten = match &policy {
            Some(p) => p.rewrite(alias, pattern).map_err(ResolveError::Policy)?,
            None => policy::unchanged(pattern),
        };
        let found = vault.matching(dk, &rw.lookup)?;
        if found.is_empty() {
            let shown = if rw.lookup == *pattern {
                format!("'{pattern}'")
            } else {
                format!("'{pattern}' (as '{}')", rw.lookup)
            };
            return Err(ResolveError::NotFound(if names::is_glob(pattern) {
                format!("no secret matches {shown}")
            } else {
                format!("no secret named {shown}")
            }));
        }
        for (key, rec) in found {
            if !done_keys.insert(key.clone()) {
                continue;
            }
            if secret::is_expired(&rec, now) {
                return Err(ResolveError::Expired {
                    at: secretctl_proto::duration::rfc3339(rec.expires_at.unwrap_or(0)),
                    key,
                });
            }
            let vars: Vec<(String, String)> = if rec.bindings.is_empty() {
                let field = secret::default_field(&rec).ok_or_else(|| {
                    ResolveError::Invalid(format!(
                        "secret '{key}' has several fields and no bindings: add bindings with 'secretctl set {key} --binding ENV=field'"
                    ))
                })?;
                vec![(
                    names::env_name_for(&rw.written_name(&key), prefix),
                    field.name.clone(),
                )]
            } else {
                rec.bindings
                    .iter()
                    .map(|b| (format!("{prefix}{}", b.env), b.field.clone()))
                    .collect()
            };
            for (env, field) in vars {
                names::validate_env_name(&env)
                    .map_err(|e| ResolveError::Invalid(format!("secret '{key}': {e}")))?;
                if let Some(other) = seen.insert(env.clone(), key.clone()) {
                    return Err(ResolveError::Invalid(format!(
                        "secrets '{other}' and '{key}' both map to {env}: use --env-prefix or separate runs"
                    )));
                }
                let value = match values {
                    Values::Open => vault.field_value(dk, &key, &rec, &field)?,
                    Values::Skip => Zeroizing::new(Vec::new()),
                };
                let found = rec.fields.iter().find(|f| f.name == field);
                let sensitive = found.is_none_or(|f| f.sensitive);
                let proxy_hosts = found
                    .map(|f| secret::proxied_to(&rec.proxy_hosts, &f.proxy_hosts, f.sensitive))
                    .unwrap_or_default()
                    .to_vec();
                out.push(Injection {
                    env,
                    key: key.clone(),
                    value,
                    sensitive,
                    field,
                    proxy_hosts,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;
    use secretctl_proto::v1;
    use std::os::unix::fs::PermissionsExt;

    const TINY: KdfParams = KdfParams::TEST_TINY;

    fn field(name: &str, v: &str) -> v1::FieldInput {
        v1::FieldInput::new(name, v.as_bytes().to_vec())
    }

    fn setup() -> (tempfile::TempDir, Vault, DataKey, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) = Vault::init(&dir.path().join("v.redb"), b"pw", TINY).unwrap();
        for (k, v) in [
            ("dev/db/host", "dev-host"),
            ("dev/db/password", "dev-pw"),
            ("prod/db/host", "prod-host"),
            ("aws/access_key", "AKIA123"),
            ("aws/nested/x", "nx"),
            ("clash-a", "1"),
            ("clash.a", "2"),
        ] {
            let req = v1::SetRequest {
                key: k.into(),
                fields: vec![field("value", v)],
                ..Default::default()
            };
            vault.set(&key, &req).unwrap();
        }
        let bound = v1::SetRequest {
            key: "svc".into(),
            fields: vec![field("user", "u1"), field("pass", "p1")],
            bindings: Some(v1::BindingList {
                bindings: vec![v1::Binding {
                    env: "SVC_PASS".into(),
                    field: "pass".into(),
                }],
            }),
            ..Default::default()
        };
        vault.set(&key, &bound).unwrap();
        let expired = v1::SetRequest {
            key: "old".into(),
            fields: vec![field("value", "stale")],
            expires_at: Some(1),
            ..Default::default()
        };
        vault.set(&key, &expired).unwrap();
        let policy = dir.path().join("mcp-policy.yaml");
        std::fs::write(&policy, "version: 1\nenv_aliases:\n  dev: [{pattern: \"db/*\", target: \"dev/db/*\"}]\n  prod: [{pattern: \"db/*\", target: \"prod/db/*\"}]\n").unwrap();
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, vault, key, policy)
    }

    fn names(v: &[Injection]) -> Vec<(String, String)> {
        v.iter()
            .map(|i| (i.env.clone(), String::from_utf8(i.value.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn globs_aliases_and_bindings() {
        let (_d, vault, key, policy) = setup();
        let now = crate::vault::now_secs();
        let run = |alias: &str, prefix: &str, pats: &[&str]| {
            let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
            let loaded = policy_for_alias(&policy, alias)?;
            resolve(&vault, &key, loaded.as_ref(), alias, prefix, &pats, now)
        };
        assert_eq!(
            names(&run("", "", &["aws/*"]).unwrap()),
            [("AWS_ACCESS_KEY".into(), "AKIA123".into())]
        );
        assert_eq!(run("", "", &["aws/**"]).unwrap().len(), 2);
        let dev = names(&run("dev", "", &["db/*"]).unwrap());
        assert_eq!(
            dev,
            [
                ("DB_HOST".into(), "dev-host".into()),
                ("DB_PASSWORD".into(), "dev-pw".into())
            ]
        );
        let prod = names(&run("prod", "APP_", &["db/host"]).unwrap());
        assert_eq!(prod, [("APP_DB_HOST".into(), "prod-host".into())]);
        assert_eq!(
            names(&run("", "", &["svc"]).unwrap()),
            [("SVC_PASS".into(), "p1".into())]
        );
    }

    #[test]
    fn refusals() {
        let (_d, vault, key, policy) = setup();
        let now = crate::vault::now_secs();
        let run = |alias: &str, pats: &[&str]| {
            let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
            policy_for_alias(&policy, alias)
                .and_then(|loaded| resolve(&vault, &key, loaded.as_ref(), alias, "", &pats, now))
                .err()
                .unwrap()
        };
        assert!(matches!(run("", &["missing"]), ResolveError::NotFound(_)));
        assert!(matches!(run("", &["nothing/*"]), ResolveError::NotFound(_)));
        assert!(matches!(run("", &["old"]), ResolveError::Expired { .. }));
        let clash = run("", &["clash*"]).to_string();
        assert!(clash.contains("both map to CLASH_A"), "{clash}");
        assert!(matches!(run("staging", &["db/*"]), ResolveError::Policy(_)));
        assert!(matches!(
            run("", &["bad pattern"]),
            ResolveError::Invalid(_)
        ));
    }

    #[test]
    fn limits_prefixes_and_messages() {
        let (_d, vault, key, policy) = setup();
        let now = crate::vault::now_secs();
        let run = |alias: &str, prefix: &str, pats: Vec<String>| {
            policy_for_alias(&policy, alias).and_then(|loaded| {
                resolve(&vault, &key, loaded.as_ref(), alias, prefix, &pats, now)
            })
        };
        let many = |n: usize| vec!["aws/access_key".to_string(); n];
        assert_eq!(run("", "", many(MAX_PATTERNS)).unwrap().len(), 1);
        let e = run("", "", many(MAX_PATTERNS + 1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("at most 256 key patterns"), "{e}");

        let e = run("", "9x", many(1)).err().unwrap().to_string();
        assert!(
            e.contains("env prefix '9x' is not a valid start of an environment name"),
            "{e}"
        );

        let e = run("", "", vec!["missing".into()])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "no secret named 'missing'");
        let e = run("dev", "", vec!["db/missing".into()])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "no secret named 'db/missing' (as 'dev/db/missing')");
        let e = run("dev", "", vec!["db/nothing*".into()])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "no secret matches 'db/nothing*' (as 'dev/db/nothing*')");
    }
}
