//! `policy check`, `policy apply`, `config apply` and `mcp-server`.

use anyhow::Context;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use secretctl_proto::v1::PolicyCheckRequest;
use serde_json::json;

use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;

/// Asks the daemon to validate the policy file and prints its report.
/// Exits 1 when the file cannot be used.
pub async fn policy_check(json_out: bool) -> Result<()> {
    let (client, _) = connect::connect().await?;
    let r = client
        .daemon()
        .policy_check(PolicyCheckRequest {})
        .await
        .map_err(|s| client.classify(s))
        .context("cannot check the policy")?
        .into_inner();
    if json_out {
        print_json(&json!({
            "path": r.path,
            "ok": r.error.is_empty(),
            "error": (!r.error.is_empty()).then_some(&r.error),
            "default_action": r.default_action,
            "entries": r.entries.iter().map(|e| json!({"list": e.list, "entry": e.entry, "resolves_to": e.resolves_to})).collect::<Vec<_>>(),
            "env_aliases": r.env_aliases,
            "warnings": r.warnings,
            "applied": r.applied_state,
        }))?;
    } else if r.error.is_empty() {
        outln!("policy: {} (valid; {})", r.path, r.applied_state);
        outln!("default_action: {}", r.default_action);
        for e in &r.entries {
            outln!("{:<8} {:<24} -> {}", e.list, e.entry, e.resolves_to);
        }
        if !r.env_aliases.is_empty() {
            outln!("env aliases: {}", r.env_aliases.join(", "));
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        if r.applied_state != "applied" {
            eprintln!(
                "note: agents are held to the applied copy, not to this file: run 'secretctl policy apply' to put it in force"
            );
        }
    }
    if r.error.is_empty() {
        Ok(())
    } else {
        Err(CliError::error(r.error).into())
    }
}

/// Which settings file `apply` puts in force.
#[derive(Debug, Clone, Copy)]
pub enum Apply {
    Policy,
    Config,
}

/// `policy apply` / `config apply`: the daemon reads and validates the file
/// and stores it as the copy agents are held to.
pub async fn apply(which: Apply, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    let (what, call) = match which {
        Apply::Policy => ("apply mcp-policy.yaml (what agents may run)", "policy"),
        Apply::Config => ("apply config.yaml (the agent settings)", "config"),
    };
    crate::reauth::consent(&client, &st, what).await?;
    let req = secretctl_proto::v1::ApplyRequest {};
    let r = match which {
        Apply::Policy => client.daemon().policy_apply(req).await,
        Apply::Config => client.daemon().config_apply(req).await,
    }
    .map_err(|s| client.classify(s))
    .with_context(|| format!("cannot apply the {call} file"))?
    .into_inner();
    if json_out {
        print_json(&json!({"path": r.path, "applied": true, "summary": r.summary}))?;
    } else {
        outln!("{}: {}", r.path, r.summary);
    }
    Ok(())
}

/// Replaces this process with `secretctl-mcp` (next to this executable,
/// else on PATH), so `{"command": "secretctl", "args": ["mcp-server"]}` works.
pub fn exec_shim() -> Result<i32> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("secretctl-mcp")))
        .filter(|p| p.is_file());
    let exe = beside.unwrap_or_else(|| PathBuf::from("secretctl-mcp"));
    let err = std::process::Command::new(&exe).exec();
    Err(
        CliError::error(format!("cannot start {}: {err}", exe.display()))
            .hint("install secretctl-mcp next to secretctl or on PATH")
            .into(),
    )
}
