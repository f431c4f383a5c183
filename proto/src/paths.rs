//! Where secretctl keeps its files (contract §2). Daemon, CLI and shim all
//! resolve paths here, so they can never disagree.

use std::path::PathBuf;

/// Name of the vault file inside the home directory.
pub const VAULT_FILE: &str = "vault.redb";
/// Name of the MCP policy file inside the home directory.
pub const POLICY_FILE: &str = "mcp-policy.yaml";
/// Name of the optional daemon settings file inside the home directory.
pub const CONFIG_FILE: &str = "config.yaml";
/// Name of the audit directory inside the home directory.
pub const AUDIT_DIR: &str = "audit";
/// Log file of a daemon the CLI started itself.
pub const DAEMON_LOG_FILE: &str = "secretctld.log";

/// No home directory could be determined.
#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory: set SECRETCTL_HOME")]
pub struct NoHome;

/// `$SECRETCTL_HOME`, else `~/.secretctl`.
pub fn home_dir() -> Result<PathBuf, NoHome> {
    if let Some(h) = non_empty_env("SECRETCTL_HOME") {
        return Ok(PathBuf::from(h));
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().join(".secretctl"))
        .ok_or(NoHome)
}

/// `$SECRETCTL_SOCKET`, else `$XDG_RUNTIME_DIR/secretctl/secretctld.sock`,
/// else `$SECRETCTL_HOME/run/secretctld.sock`.
pub fn socket_path() -> Result<PathBuf, NoHome> {
    match socket_from_env() {
        Some(p) => Ok(p),
        None => Ok(home_dir()?.join("run").join("secretctld.sock")),
    }
}

/// Like [`socket_path`], with `home` standing in for `$SECRETCTL_HOME`.
pub fn socket_path_in(home: &std::path::Path) -> PathBuf {
    socket_from_env().unwrap_or_else(|| home.join("run").join("secretctld.sock"))
}

fn socket_from_env() -> Option<PathBuf> {
    if let Some(s) = non_empty_env("SECRETCTL_SOCKET") {
        return Some(PathBuf::from(s));
    }
    non_empty_env("XDG_RUNTIME_DIR")
        .map(|rt| PathBuf::from(rt).join("secretctl").join("secretctld.sock"))
}

fn non_empty_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}
