//! The policy file, `$SECRETCTL_HOME/mcp-policy.yaml` (contract §7).
//!
//! Owns reading and validating the file. The daemon does not enforce the
//! file as it is: a user applies it (`secretctl policy apply`, see
//! `applied`), and the applied copy is what runs are checked against.
//!
//! Invariants: the file is read through `private_file` (`O_NOFOLLOW`, a
//! regular file of ours without group/other bits, at most 1 MiB); its
//! nesting is checked before parsing (`yaml_guard`), so a hostile file
//! cannot make parsing slow; unknown keys and any `version` but 1 are
//! refused with a message naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secretctl_proto::names;
use serde::Deserialize;

/// Largest policy file read.
const MAX_POLICY: u64 = 1024 * 1024;

/// What happens to a command no entry mentions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    #[default]
    Deny,
    Allow,
}

/// One env-alias rule: keys asked for by `pattern` are looked up under `target`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasRule {
    pub pattern: String,
    pub target: String,
}

/// The parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    #[serde(default)]
    pub default_action: DefaultAction,
    #[serde(default)]
    pub allowed_commands: Vec<String>,
    #[serde(default)]
    pub denied_commands: Vec<String>,
    #[serde(default)]
    pub env_aliases: BTreeMap<String, Vec<AliasRule>>,
    #[serde(default)]
    pub trusted_directories: Vec<PathBuf>,
}

/// Why the policy file cannot be used; each message names the fix.
pub type PolicyError = crate::private_file::FileError;

/// What the policy file is called in messages.
pub const WHAT: &str = "policy file";

/// Reads the policy file's text, checked (see `private_file`).
pub fn read(path: &Path) -> Result<String, PolicyError> {
    crate::private_file::read(path, WHAT, MAX_POLICY)
}

/// Reads and validates the policy file at `path`.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text = read(path)?;
    parse(&text).map_err(|message| PolicyError::Invalid {
        what: WHAT,
        path: path.to_path_buf(),
        message,
    })
}

/// Parses and validates policy text.
pub fn parse(text: &str) -> Result<Policy, String> {
    crate::yaml_guard::check_depth(text, crate::yaml_guard::MAX_DEPTH)?;
    let policy: Policy = yaml_serde::from_str(text).map_err(|e| match e.location() {
        Some(loc) => format!("line {}: {e}", loc.line()),
        None => e.to_string(),
    })?;
    if policy.version != 1 {
        return Err(format!(
            "version {} is not supported: use version: 1",
            policy.version
        ));
    }
    if let Some(d) = policy.trusted_directories.iter().find(|d| !d.is_absolute()) {
        return Err(format!(
            "trusted_directories: {} is not an absolute path (a relative one would depend on each run's directory)",
            d.display()
        ));
    }
    for (alias, rules) in &policy.env_aliases {
        if alias.is_empty()
            || !alias
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "env alias name {alias:?} must be letters, digits, '_' or '-'"
            ));
        }
        for rule in rules {
            split_rule(&rule.pattern, &rule.target)
                .map_err(|e| format!("env_aliases.{alias}: {e}"))?;
        }
    }
    Ok(policy)
}

/// Splits a rule into (pattern prefix, target prefix, glob suffix). The only
/// glob allowed is a trailing `*` or `**`, the same on both sides.
fn split_rule<'a>(
    pattern: &'a str,
    target: &'a str,
) -> Result<(&'a str, &'a str, &'a str), String> {
    for p in [pattern, target] {
        names::validate_pattern(p).map_err(|e| format!("{p:?}: {e}"))?;
    }
    let suffix = |p: &'a str| -> Result<(&'a str, &'a str), String> {
        let stem = p.trim_end_matches('*');
        let glob = &p[stem.len()..];
        if names::is_glob(stem) || glob.len() > 2 {
            return Err(format!(
                "{p:?}: only a trailing * or ** is allowed in an alias rule"
            ));
        }
        Ok((stem, glob))
    };
    let (ps, pg) = suffix(pattern)?;
    let (ts, tg) = suffix(target)?;
    if pg != tg {
        return Err(format!(
            "pattern {pattern:?} and target {target:?} must end in the same glob"
        ));
    }
    Ok((ps, ts, pg))
}

/// A key pattern after alias rewriting: what to look up, and how to turn a
/// found key back into the name the user wrote (for its env name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Pattern to look up in the vault.
    pub lookup: String,
    /// Prefix replaced: found keys start with `target_prefix`...
    pub target_prefix: String,
    /// ...and are named as if they started with `written_prefix`.
    pub written_prefix: String,
}

impl Rewritten {
    /// The name a found key had in the user's pattern.
    pub fn written_name(&self, key: &str) -> String {
        match key.strip_prefix(&self.target_prefix) {
            Some(rest) => format!("{}{rest}", self.written_prefix),
            None => key.to_string(),
        }
    }
}

impl Policy {
    /// Rewrites `pattern` under env alias `alias` (first matching rule wins).
    pub fn rewrite(&self, alias: &str, pattern: &str) -> Result<Rewritten, String> {
        let rules = self.env_aliases.get(alias).ok_or_else(|| {
            let known: Vec<&str> = self.env_aliases.keys().map(String::as_str).collect();
            format!(
                "no env alias '{alias}' in the policy file (known: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
        for rule in rules {
            let (ps, ts, glob) = split_rule(&rule.pattern, &rule.target)?;
            // `db/*` also covers the key `db` itself: a template secret
            // named `dev/db` is asked for as `-k db`.
            if !glob.is_empty()
                && let (Some(pk), Some(tk)) = (ps.strip_suffix('/'), ts.strip_suffix('/'))
                && pattern == pk
            {
                return Ok(Rewritten {
                    lookup: tk.to_string(),
                    target_prefix: tk.to_string(),
                    written_prefix: pk.to_string(),
                });
            }
            let applies = if glob.is_empty() {
                pattern == ps
            } else {
                pattern.starts_with(ps)
            };
            if applies {
                return Ok(Rewritten {
                    lookup: format!("{ts}{}", &pattern[ps.len()..]),
                    target_prefix: ts.to_string(),
                    written_prefix: ps.to_string(),
                });
            }
        }
        Ok(unchanged(pattern))
    }
}

/// A pattern no alias applies to.
pub fn unchanged(pattern: &str) -> Rewritten {
    Rewritten {
        lookup: pattern.to_string(),
        target_prefix: String::new(),
        written_prefix: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SAMPLE: &str = r#"
version: 1
default_action: deny
allowed_commands: [npm, "npm test", go, cargo, aws, ./test.sh]
denied_commands: [rm, sudo, chmod, chown]
env_aliases:
  dev:  [{pattern: "db/*", target: "dev/db/*"}]
  prod: [{pattern: "db/*", target: "prod/db/*"}, {pattern: "api_key", target: "prod/api_key"}]
trusted_directories: [/home/linuxbrew/.linuxbrew/bin]
"#;

    #[test]
    fn parses_the_contract_example() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(p.default_action, DefaultAction::Deny);
        assert_eq!(p.allowed_commands.len(), 6);
        assert_eq!(p.env_aliases["dev"][0].target, "dev/db/*");
    }

    #[test]
    fn rewrites_patterns_and_names() {
        let p = parse(SAMPLE).unwrap();
        let r = p.rewrite("dev", "db/*").unwrap();
        assert_eq!(r.lookup, "dev/db/*");
        assert_eq!(r.written_name("dev/db/host"), "db/host");
        let r = p.rewrite("prod", "db/password").unwrap();
        assert_eq!(r.lookup, "prod/db/password");
        let r = p.rewrite("dev", "db").unwrap();
        assert_eq!(
            (r.lookup.as_str(), r.written_name("dev/db").as_str()),
            ("dev/db", "db")
        );
        assert_eq!(p.rewrite("dev", "dbx").unwrap().lookup, "dbx");
        let r = p.rewrite("prod", "api_key").unwrap();
        assert_eq!(
            (r.lookup.as_str(), r.written_name("prod/api_key").as_str()),
            ("prod/api_key", "api_key")
        );
        assert_eq!(p.rewrite("dev", "other/x").unwrap().lookup, "other/x");
        assert!(
            p.rewrite("staging", "db/*")
                .unwrap_err()
                .contains("known: dev, prod")
        );
    }

    #[test]
    fn refuses_unknown_keys_and_versions() {
        let e = parse("version: 1\nallowed_comands: [npm]\n").unwrap_err();
        assert!(e.contains("allowed_comands") && e.contains("line 2"), "{e}");
        assert!(parse("version: 2\n").unwrap_err().contains("version 2"));
        assert!(
            parse("default_action: deny\n").is_err(),
            "version is required"
        );
        let e =
            parse("version: 1\nenv_aliases:\n  dev: [{pattern: \"a/*/b\", target: \"x/*/b\"}]\n")
                .unwrap_err();
        assert!(e.contains("trailing"), "{e}");
    }

    #[test]
    fn alias_names_are_letters_digits_underscore_and_dash() {
        let with = |name: &str| {
            parse(&format!(
                "version: 1\nenv_aliases:\n  {name:?}: [{{pattern: \"db/*\", target: \"x/db/*\"}}]\n"
            ))
        };
        for good in ["dev", "dev_1", "dev-2", "D3"] {
            assert!(with(good).is_ok(), "{good}: {:?}", with(good));
        }
        for bad in ["", "dev.x", "a b", "dev/x", "d\u{e9}v"] {
            let e = with(bad).unwrap_err();
            assert!(e.contains("must be letters, digits"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn alias_rules_take_one_trailing_glob_of_at_most_two_stars() {
        let rule = |pattern: &str, target: &str| {
            parse(&format!(
                "version: 1\nenv_aliases:\n  dev: [{{pattern: {pattern:?}, target: {target:?}}}]\n"
            ))
        };
        let p = rule("db/**", "dev/db/**").unwrap();
        assert_eq!(p.rewrite("dev", "db/a/b").unwrap().lookup, "dev/db/a/b");
        let e = rule("db/***", "dev/db/***").unwrap_err();
        assert!(e.contains("only a trailing * or **"), "{e}");
        let e = rule("db/*", "dev/db/**").unwrap_err();
        assert!(e.contains("must end in the same glob"), "{e}");
    }

    #[test]
    fn policy_files_up_to_a_mebibyte_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-policy.yaml");
        let mut text = SAMPLE.to_string();
        while text.len() < 64 * 1024 {
            text.push_str("# a long comment line that pads the policy file out\n");
        }
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load(&path).unwrap(), parse(SAMPLE).unwrap());
        text.push_str(&"#".repeat(1024 * 1024));
        std::fs::write(&path, &text).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("larger than 1048576 bytes"), "{e}");
    }

    #[test]
    fn file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-policy.yaml");
        assert!(matches!(load(&path), Err(PolicyError::Missing { .. })));
        std::fs::write(&path, SAMPLE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).is_ok());
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = load(&link).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
    }
}
