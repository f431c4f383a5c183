//! `policy check` and `mcp-server`.

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
        }))?;
    } else if r.error.is_empty() {
        println!("policy: {} (valid)", r.path);
        println!("default_action: {}", r.default_action);
        for e in &r.entries {
            println!("{:<8} {:<24} -> {}", e.list, e.entry, e.resolves_to);
        }
        if !r.env_aliases.is_empty() {
            println!("env aliases: {}", r.env_aliases.join(", "));
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
    }
    if r.error.is_empty() {
        Ok(())
    } else {
        Err(CliError::error(r.error).into())
    }
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
