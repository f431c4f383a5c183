//! The policy and config files: `policy check` (the file as it is, and how
//! it compares with the applied copy) and `policy apply` / `config apply`
//! (user callers only: what they store is what agents are held to).

use secretctl_proto::v1::{ApplyResponse, PolicyCheckResponse};
use tonic::Status;

use super::{allow, audited, blocking, event};
use crate::caller::{Action, Conn};
use crate::config::Config;
use crate::policy;
use crate::session::{Session, Use};

fn policy_path(s: &Session) -> std::path::PathBuf {
    s.paths.home.join(secretctl_proto::paths::POLICY_FILE)
}

fn config_path(s: &Session) -> std::path::PathBuf {
    s.paths.home.join(secretctl_proto::paths::CONFIG_FILE)
}

/// The policy file against its applied copy, in words.
pub fn policy_state(s: &Session) -> String {
    s.applied.policy_state(&policy_path(s)).as_str().into()
}

/// The config file against its applied copy, in words.
pub fn config_state(s: &Session) -> String {
    s.applied.config_state(&config_path(s)).as_str().into()
}

/// `secretctl policy check`.
pub async fn policy_check(s: &Session, who: &Conn) -> Result<PolicyCheckResponse, Status> {
    let path = policy_path(s);
    let mut report = blocking(move || Ok(crate::agent::report::policy_report(&path))).await?;
    report.applied_state = policy_state(s);
    let mut rec = event("policy_check", "cli", who);
    if !report.error.is_empty() {
        rec.success = false;
        rec.error = Some(report.error.clone());
    }
    s.audit.record(rec).await?;
    Ok(report)
}

/// `secretctl policy apply`: validates the file and stores it, sealed, as
/// the policy agent runs are checked against.
pub async fn apply_policy(s: &Session, who: &Conn) -> Result<ApplyResponse, Status> {
    let r = match allow(who, Action::Change) {
        Ok(()) => do_apply_policy(s).await,
        Err(refused) => Err(refused),
    };
    audited(&s.audit, "policy_apply", "cli", who, Vec::new(), r).await
}

async fn do_apply_policy(s: &Session) -> Result<ApplyResponse, Status> {
    let (vault, dk) = s.key(Use::Look)?;
    let path = policy_path(s);
    let text = policy::read(&path).map_err(|e| Status::failed_precondition(e.to_string()))?;
    let parsed = policy::parse(&text)
        .map_err(|m| Status::failed_precondition(format!("policy file {}: {m}", path.display())))?;
    let summary = format!(
        "policy applied: {} allowed and {} denied command entries, default {}, {} env aliases",
        parsed.allowed_commands.len(),
        parsed.denied_commands.len(),
        match parsed.default_action {
            policy::DefaultAction::Deny => "deny",
            policy::DefaultAction::Allow => "allow",
        },
        parsed.env_aliases.len()
    );
    let applied = &s.applied;
    blocking({
        let vault = vault.clone();
        let dk = dk.clone();
        let parsed = parsed.clone();
        let text = text.clone();
        move || Ok((vault, dk, text, parsed))
    })
    .await
    .and_then(|(vault, dk, text, parsed)| {
        applied
            .set_policy(&vault, &dk, text, parsed)
            .map_err(Status::from)
    })?;
    tracing::info!("policy applied");
    Ok(ApplyResponse {
        path: path.display().to_string(),
        summary,
    })
}

/// `secretctl config apply`: validates config.yaml and stores it, sealed;
/// its `agent:` section is then in force (the rest is read at start).
pub async fn apply_config(s: &Session, who: &Conn) -> Result<ApplyResponse, Status> {
    let r = match allow(who, Action::Change) {
        Ok(()) => do_apply_config(s),
        Err(refused) => Err(refused),
    };
    audited(&s.audit, "config_apply", "cli", who, Vec::new(), r).await
}

fn do_apply_config(s: &Session) -> Result<ApplyResponse, Status> {
    let (vault, dk) = s.key(Use::Look)?;
    let path = config_path(s);
    let text = Config::read(&path)
        .map_err(|e| Status::failed_precondition(e.to_string()))?
        .unwrap_or_default();
    let parsed = Config::parse(&text)
        .map_err(|m| Status::failed_precondition(format!("config file {}: {m}", path.display())))?;
    let a = &parsed.agent;
    let r = &parsed.agent_rules;
    let summary = format!(
        "agent settings applied: classification {}, {} markers, host depth {}, headless callers are {}; runs: {} at once, {} per stream, timeout {} (max {})",
        if r.enabled { "on" } else { "OFF (unsafe)" },
        r.markers.len(),
        r.host_depth,
        if r.headless_agent { "agents" } else { "users" },
        a.max_concurrent_runs,
        a.output_cap_bytes,
        secretctl_proto::duration::format(a.default_timeout),
        secretctl_proto::duration::format(a.max_timeout),
    );
    s.applied
        .set_config(&vault, &dk, text, parsed)
        .map_err(Status::from)?;
    s.agent_settings_changed();
    tracing::info!("config applied");
    Ok(ApplyResponse {
        path: path.display().to_string(),
        summary,
    })
}
