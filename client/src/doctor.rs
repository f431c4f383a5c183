//! `secretctl doctor`: one command that checks what a working setup needs
//! and says what to fix — the daemon, versions, directory and socket
//! modes, the vault, the policy and config against their applied copies,
//! the service, how this process is classified, and the MCP setup line for
//! Claude Code. Exit 1 when any check fails.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::json;

use secretctl_proto::client::Client;
use secretctl_proto::v1::{StatusRequest, VaultState};

use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    level: Level,
    message: String,
    fix: Option<String>,
}

fn check(name: &'static str, level: Level, message: String, fix: Option<String>) -> Check {
    Check {
        name,
        level,
        message,
        fix,
    }
}

/// A private directory: ours, 0700, not a symlink.
fn dir_check(name: &'static str, dir: &Path) -> Check {
    match std::fs::symlink_metadata(dir) {
        Err(_) => check(
            name,
            Level::Ok,
            format!(
                "{} does not exist yet (created 0700 when needed)",
                dir.display()
            ),
            None,
        ),
        Ok(m) if m.file_type().is_symlink() => check(
            name,
            Level::Fail,
            format!("{} is a symlink", dir.display()),
            Some(format!(
                "replace it with a directory of your own: rm {0} && mkdir -m 700 {0}",
                dir.display()
            )),
        ),
        Ok(m) if m.uid() != nix::unistd::geteuid().as_raw() => check(
            name,
            Level::Fail,
            format!("{} belongs to uid {}", dir.display(), m.uid()),
            Some("use a directory of your own".into()),
        ),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => check(
            name,
            Level::Fail,
            format!(
                "{} has mode {:04o}",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            Some(format!("chmod 700 {}", dir.display())),
        ),
        Ok(_) => check(
            name,
            Level::Ok,
            format!("{} is private (0700)", dir.display()),
            None,
        ),
    }
}

pub async fn run(json_out: bool) -> Result<()> {
    let mut checks = Vec::new();
    let home = secretctl_proto::paths::home_dir().map_err(|e| CliError::error(e.to_string()))?;
    let socket = connect::socket_path()?;
    checks.push(dir_check("data directory", &home));
    if let Some(dir) = socket.parent() {
        checks.push(dir_check("socket directory", dir));
    }
    let client = Client::new(&socket);
    let st = client
        .daemon()
        .status(StatusRequest { detail: true })
        .await
        .map(tonic::Response::into_inner);
    match &st {
        Err(_) => checks.push(check(
            "daemon",
            Level::Warn,
            format!("no daemon answers on {}", socket.display()),
            Some(
                "any secretctl command that needs it starts it (or: secretctl daemon status)"
                    .into(),
            ),
        )),
        Ok(st) => {
            checks.push(check(
                "daemon",
                Level::Ok,
                format!(
                    "secretctld {} (pid {}{})",
                    st.version,
                    st.pid,
                    if st.service_managed {
                        ", service"
                    } else {
                        ", started by secretctl"
                    }
                ),
                None,
            ));
            let same =
                st.version == secretctl_proto::VERSION && st.protocol == secretctl_proto::PROTOCOL;
            checks.push(check(
                "versions",
                if same { Level::Ok } else { Level::Fail },
                format!(
                    "secretctl {} / secretctld {} (protocol {} / {})",
                    secretctl_proto::VERSION,
                    st.version,
                    secretctl_proto::PROTOCOL,
                    st.protocol
                ),
                (!same).then(|| "restart the daemon: secretctl daemon restart".into()),
            ));
            let (level, msg, fix) = match VaultState::try_from(st.state) {
                Ok(VaultState::Uninitialized) => (
                    Level::Warn,
                    "no vault yet".to_string(),
                    Some("secretctl init".to_string()),
                ),
                Ok(VaultState::Locked) => (
                    Level::Warn,
                    "the vault is locked".into(),
                    Some("secretctl unlock".into()),
                ),
                Ok(VaultState::Unlocked) => (
                    Level::Ok,
                    format!("unlocked, {} secrets", st.secret_count),
                    None,
                ),
                _ => (Level::Fail, "unknown vault state".into(), None),
            };
            checks.push(check("vault", level, msg, fix));
            checks.push(match st.policy_state.as_str() {
                "applied" => check(
                    "policy",
                    Level::Ok,
                    "mcp-policy.yaml is applied".into(),
                    None,
                ),
                "missing" => check(
                    "policy",
                    Level::Warn,
                    "no mcp-policy.yaml: agents cannot run anything".into(),
                    Some(
                        "write it (docs/policy.md), chmod 600, then: secretctl policy apply".into(),
                    ),
                ),
                other => check(
                    "policy",
                    Level::Warn,
                    format!("mcp-policy.yaml {other}"),
                    Some("secretctl policy check && secretctl policy apply".into()),
                ),
            });
            checks.push(match st.config_state.as_str() {
                "applied" | "missing" => check(
                    "config",
                    Level::Ok,
                    format!("config.yaml {}", st.config_state),
                    None,
                ),
                other => check(
                    "config",
                    Level::Warn,
                    format!("config.yaml {other} (its agent: settings count once applied)"),
                    Some("secretctl config apply".into()),
                ),
            });
            checks.push(check(
                "caller",
                Level::Ok,
                format!(
                    "this process is classified {}: {}",
                    st.caller_class, st.caller_reason
                ),
                None,
            ));
        }
    }
    checks.push(match crate::service::installed_restart_command() {
        Some(cmd) => check(
            "service",
            Level::Ok,
            format!("installed (restart: {cmd})"),
            None,
        ),
        None => check(
            "service",
            Level::Ok,
            "not installed: secretctl starts the daemon on demand".into(),
            Some("optional: secretctl service install".into()),
        ),
    });
    let shim = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("secretctl-mcp")))
        .filter(|p| p.exists());
    checks.push(check(
        "mcp",
        if shim.is_some() { Level::Ok } else { Level::Warn },
        "Claude Code: claude mcp add secretctl -- secretctl mcp-server   (then run the agent as: secretctl agent -- claude)".into(),
        shim.is_none().then(|| "install secretctl-mcp next to secretctl".into()),
    ));

    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    if json_out {
        print_json(&json!({
            "ok": failed == 0,
            "checks": checks.iter().map(|c| json!({
                "name": c.name,
                "level": match c.level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" },
                "message": c.message,
                "fix": c.fix,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            outln!("{tag} {:<17} {}", c.name, c.message);
            if let Some(f) = &c.fix {
                outln!("     {:<17} fix: {f}", "");
            }
        }
    }
    if failed > 0 {
        return Err(CliError::error(format!("{failed} check(s) failed")).into());
    }
    Ok(())
}
