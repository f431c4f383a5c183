//! `secretctl policy check`: validates the policy file and explains what
//! each entry resolves to, with warnings about risky entries.

use std::path::Path;

use secretctl_proto::v1::{
    AgentAlias, AgentAliasRule, AgentPolicyResponse, PolicyCheckResponse, PolicyEntry,
};

use super::command;
use crate::policy::{self, DefaultAction};

/// Builds the report for the policy file at `path`.
pub fn policy_report(path: &Path) -> PolicyCheckResponse {
    let mut resp = PolicyCheckResponse {
        path: path.display().to_string(),
        ..Default::default()
    };
    let policy = match policy::load(path) {
        Ok(p) => p,
        Err(e) => {
            resp.error = e.to_string();
            return resp;
        }
    };
    resp.default_action = match policy.default_action {
        DefaultAction::Deny => "deny".into(),
        DefaultAction::Allow => "allow".into(),
    };
    if policy.default_action == DefaultAction::Allow {
        resp.warnings.push(
            "default_action: allow lets an agent run any command not denied: prefer deny and list what it needs".into(),
        );
    }
    let trusted = command::trusted_dirs(&policy);
    for (list, entries) in [
        ("allowed", &policy.allowed_commands),
        ("denied", &policy.denied_commands),
    ] {
        for e in entries {
            let cmd = e.split_whitespace().next().unwrap_or("");
            if list == "allowed" && command::ALWAYS_DENIED.contains(&command::base_name(cmd)) {
                resp.warnings.push(format!(
                    "allowed entry '{e}' has no effect: {} is always denied (it can print or reach every secret)",
                    command::base_name(cmd)
                ));
                resp.entries.push(PolicyEntry {
                    list: "always denied".into(),
                    entry: e.clone(),
                    resolves_to: "refused whatever the policy says".into(),
                });
                continue;
            }
            let resolves_to = if cmd.contains('/') && !cmd.starts_with('/') {
                "a path relative to each run's cwd".to_string()
            } else {
                match command::resolve(cmd, Path::new("/"), &trusted) {
                    Ok(p) => p.display().to_string(),
                    Err(err) => {
                        if list == "allowed" {
                            resp.warnings.push(err.clone());
                        }
                        format!("unresolved: {err}")
                    }
                }
            };
            if list == "allowed" && command::is_interpreter(cmd) {
                resp.warnings.push(format!(
                    "allowed entry '{e}' is a shell or interpreter: it can print any injected secret in a form no redactor recognises"
                ));
            }
            resp.entries.push(PolicyEntry {
                list: list.into(),
                entry: e.clone(),
                resolves_to,
            });
        }
    }
    resp.env_aliases = policy.env_aliases.keys().cloned().collect();
    resp
}

/// What the applied policy allows, for the agent (`secret_policy`).
pub fn applied_policy(applied: Result<policy::Policy, String>) -> AgentPolicyResponse {
    let always_denied = command::ALWAYS_DENIED
        .iter()
        .map(|s| s.to_string())
        .collect();
    let policy = match applied {
        Ok(p) => p,
        Err(e) => {
            return AgentPolicyResponse {
                error: e,
                always_denied,
                ..Default::default()
            };
        }
    };
    AgentPolicyResponse {
        error: String::new(),
        default_action: match policy.default_action {
            DefaultAction::Deny => "deny".into(),
            DefaultAction::Allow => "allow".into(),
        },
        allowed_commands: policy.allowed_commands.clone(),
        denied_commands: policy.denied_commands.clone(),
        always_denied,
        env_aliases: policy
            .env_aliases
            .iter()
            .map(|(name, rules)| AgentAlias {
                name: name.clone(),
                rules: rules
                    .iter()
                    .map(|r| AgentAliasRule {
                        pattern: r.pattern.clone(),
                        target: r.target.clone(),
                    })
                    .collect(),
            })
            .collect(),
        trusted_directories: command::trusted_dirs(&policy)
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn warns_on_interpreters_and_allow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-policy.yaml");
        std::fs::write(
            &path,
            "version: 1\ndefault_action: allow\nallowed_commands: [ls, python3, bash, ./t.sh]\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = policy_report(&path);
        assert!(r.error.is_empty(), "{}", r.error);
        assert_eq!(r.default_action, "allow");
        let w = r.warnings.join("\n");
        assert!(w.contains("default_action: allow"), "{w}");
        assert!(w.contains("'bash' is a shell or interpreter"), "{w}");
        assert!(w.contains("'python3' is a shell or interpreter"), "{w}");
        assert!(!w.contains("'ls' is a shell"), "{w}");
        assert_eq!(r.entries.len(), 4);
        assert!(r.entries[0].resolves_to.starts_with('/'));
    }

    #[test]
    fn always_denied_entries_are_shown_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-policy.yaml");
        std::fs::write(&path, "version: 1\nallowed_commands: [env, printenv, ls]\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = policy_report(&path);
        let lists: Vec<&str> = r.entries.iter().map(|e| e.list.as_str()).collect();
        assert_eq!(lists, ["always denied", "always denied", "allowed"]);
        assert!(r.warnings.iter().any(|w| w.contains("'env' has no effect")));
        std::fs::write(&path, "version: 1\ntrusted_directories: [bin]\n").unwrap();
        assert!(policy_report(&path).error.contains("not an absolute path"));
    }

    #[test]
    fn reports_file_problems() {
        let dir = tempfile::tempdir().unwrap();
        let r = policy_report(&dir.path().join("none.yaml"));
        assert!(r.error.contains("no policy file"), "{}", r.error);
    }
}
