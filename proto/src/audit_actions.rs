//! The actions audit records carry (contract §8), in one list: the CLI
//! validates `audit list --action` against it, so a typo is an error, not
//! an empty answer.

/// Every action the daemon records.
pub const ACTIONS: &[&str] = &[
    // session
    "init",
    "unlock",
    "lock",
    "reauth",
    "register",
    // the vault
    "set",
    "get",
    "get_metadata",
    "list",
    "delete",
    // moving secrets in and out (contract §10)
    "export",
    "import",
    "backup",
    "restore",
    "password_change",
    "security",
    // runs
    "run_start",
    "run",
    "policy_refused",
    // the credential proxy (contract §12)
    "proxy_substitution",
    "proxy_ca",
    "proxy_ca_rotate",
    "policy_error",
    // MCP only
    "exists",
    "get_masked",
    "list_fields",
    "get_field",
    "security_score",
    "policy",
    // settings
    "policy_check",
    "policy_apply",
    "config_apply",
    // the log itself
    "audit_list",
    "audit_verify",
    "audit_prune",
    "audit_gap",
    "audit_gap_acknowledged",
    "audit_pending_tampered",
    "audit_write_failed",
    "audit_write_resumed",
    // the socket
    "connection_refused",
    // the web UI (contract §11); its pages record the actions above
    "ui",
    "ui_login",
    "ui_logout",
    "ui_stop",
    "ui_connection_refused",
    "policy_would_run",
];

/// Record sources.
pub const SOURCES: &[&str] = &["cli", "mcp", "ui"];

/// Caller classes (contract §9).
pub const CALLERS: &[&str] = &["user", "agent"];
