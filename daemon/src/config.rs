//! Daemon settings from the optional `$SECRETCTL_HOME/config.yaml`.
//!
//! Every key has a default, so a missing file is fine; a malformed file or an
//! unknown key stops the daemon with a message naming the line, because a
//! setting silently ignored (say, a shorter idle timeout) is a security bug.
//! The file is read like the policy file (`private_file`: no symlink, ours,
//! mode 0600).
//!
//! The `agent:` section is parsed here but enforced only from the copy a
//! user applied (`secretctl config apply`, see `applied`): an agent that
//! edits the file cannot widen what agents may do.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::caller::classify::Rules;
use crate::private_file::FileError;

/// Limits on agent (MCP) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLimits {
    /// Agent runs at once; more wait in a queue until their own timeout.
    pub max_concurrent_runs: usize,
    /// Bytes kept per stream (after redaction); the rest is dropped.
    pub output_cap_bytes: usize,
    /// Timeout of a run that names none.
    pub default_timeout: Duration,
    /// Longest timeout a run may ask for.
    pub max_timeout: Duration,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_concurrent_runs: 4,
            output_cap_bytes: 1024 * 1024,
            default_timeout: Duration::from_secs(300),
            max_timeout: Duration::from_secs(3600),
        }
    }
}

/// The web UI (contract §11): `ui.port`, `ui.idle_timeout`,
/// `ui.session_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSettings {
    /// Port on 127.0.0.1; 0 picks a free one each time the UI starts.
    pub port: u16,
    /// The UI server stops after this long without a request.
    pub idle_timeout: Duration,
    /// A browser session ends after this long without a request.
    pub session_timeout: Duration,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            port: 0,
            idle_timeout: Duration::from_secs(30 * 60),
            session_timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// Effective daemon settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Limits on agent runs.
    pub agent: AgentLimits,
    /// How callers are classified (contract §9).
    pub agent_rules: Rules,
    /// Audit segment size before rotation.
    pub audit_segment_bytes: u64,
    /// Idle time after which an unlocked vault locks itself (`unlock` default).
    pub idle_timeout: Duration,
    /// Longest `unlock --timeout` accepted.
    pub max_idle_timeout: Duration,
    /// The web UI.
    pub ui: UiSettings,
    /// The credential proxy (contract §12): `proxy.strict`,
    /// `proxy.extra_roots`. Like `agent:`, in force only from the copy a
    /// user applied: an agent that edits the file could otherwise switch
    /// strict off or trust a root of its own.
    pub proxy: crate::proxy::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent: AgentLimits::default(),
            agent_rules: Rules::default(),
            audit_segment_bytes: crate::audit::DEFAULT_SEGMENT_BYTES,
            idle_timeout: Duration::from_secs(3600),
            max_idle_timeout: Duration::from_secs(30 * 86400),
            ui: UiSettings::default(),
            proxy: crate::proxy::Settings::default(),
        }
    }
}

/// The file as written; durations are strings like `1h`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    idle_timeout: Option<String>,
    max_idle_timeout: Option<String>,
    agent: Option<RawAgent>,
    audit: Option<RawAudit>,
    ui: Option<RawUi>,
    proxy: Option<RawProxy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    strict: Option<bool>,
    extra_roots: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    port: Option<u16>,
    idle_timeout: Option<String>,
    session_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    segment_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    max_concurrent_runs: Option<usize>,
    output_cap_bytes: Option<usize>,
    default_timeout: Option<String>,
    max_timeout: Option<String>,
    classify: Option<bool>,
    headless: Option<String>,
    host_depth: Option<usize>,
    markers: Option<Vec<String>>,
}

/// A config file that could not be used.
pub type ConfigError = FileError;

/// What the config file is called in messages.
pub const WHAT: &str = "config file";
/// Largest config file read.
const MAX_CONFIG: u64 = 64 * 1024;

impl Config {
    /// Reads the file's text, checked; `None` when there is no file.
    pub fn read(path: &Path) -> Result<Option<String>, ConfigError> {
        match crate::private_file::read(path, WHAT, MAX_CONFIG) {
            Ok(text) => Ok(Some(text)),
            Err(FileError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match Config::read(path)? {
            None => Ok(Config::default()),
            Some(text) => Config::parse(&text).map_err(|message| FileError::Invalid {
                what: WHAT,
                path: path.to_path_buf(),
                message,
            }),
        }
    }

    /// Parses the YAML text; the error names the line where it can.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        crate::yaml_guard::check_depth(text, crate::yaml_guard::MAX_DEPTH)?;
        let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| match e.location() {
            Some(loc) => format!("line {}: {e}", loc.line()),
            None => e.to_string(),
        })?;
        let mut cfg = Config::default();
        let dur = |key: &str, v: &str| {
            secretctl_proto::duration::parse(v).map_err(|e| format!("{key}: {e}"))
        };
        if let Some(v) = raw.max_idle_timeout {
            cfg.max_idle_timeout = dur("max_idle_timeout", &v)?;
        }
        if let Some(v) = raw.idle_timeout {
            cfg.idle_timeout = dur("idle_timeout", &v)?;
        }
        if let Some(n) = raw.audit.and_then(|a| a.segment_bytes) {
            if !(512..=1 << 30).contains(&n) {
                return Err("audit.segment_bytes must be between 512 and 1 GiB".into());
            }
            cfg.audit_segment_bytes = n;
        }
        if let Some(u) = raw.ui {
            if let Some(p) = u.port {
                if p != 0 && p < 1024 {
                    return Err("ui.port must be 0 (any free port) or 1024..=65535".into());
                }
                cfg.ui.port = p;
            }
            let day = Duration::from_secs(86400);
            if let Some(v) = u.idle_timeout {
                cfg.ui.idle_timeout = dur("ui.idle_timeout", &v)?;
            }
            if let Some(v) = u.session_timeout {
                cfg.ui.session_timeout = dur("ui.session_timeout", &v)?;
            }
            for (key, d) in [
                ("ui.idle_timeout", cfg.ui.idle_timeout),
                ("ui.session_timeout", cfg.ui.session_timeout),
            ] {
                if d.is_zero() || d > day {
                    return Err(format!("{key} must be positive and at most 1d"));
                }
            }
        }
        if let Some(p) = raw.proxy {
            cfg.proxy.strict = p.strict.unwrap_or(false);
            let roots = p.extra_roots.unwrap_or_default();
            if roots.len() > 32 {
                return Err("proxy.extra_roots holds at most 32 files".into());
            }
            for r in roots {
                let path = std::path::PathBuf::from(&r);
                if !path.is_absolute() || r.contains('\0') {
                    return Err(format!(
                        "proxy.extra_roots: {r:?} is not an absolute path to a PEM file"
                    ));
                }
                cfg.proxy.extra_roots.push(path);
            }
        }
        if let Some(a) = raw.agent {
            let lim = &mut cfg.agent;
            if let Some(n) = a.max_concurrent_runs {
                if !(1..=256).contains(&n) {
                    return Err("agent.max_concurrent_runs must be 1..=256".into());
                }
                lim.max_concurrent_runs = n;
            }
            if let Some(n) = a.output_cap_bytes {
                if !(1024..=64 * 1024 * 1024).contains(&n) {
                    return Err("agent.output_cap_bytes must be between 1024 and 64 MiB".into());
                }
                lim.output_cap_bytes = n;
            }
            if let Some(v) = a.max_timeout {
                lim.max_timeout = dur("agent.max_timeout", &v)?;
            }
            if let Some(v) = a.default_timeout {
                lim.default_timeout = dur("agent.default_timeout", &v)?;
            }
            if lim.default_timeout.is_zero() || lim.default_timeout > lim.max_timeout {
                return Err(
                    "agent.default_timeout must be positive and at most agent.max_timeout".into(),
                );
            }
            let rules = &mut cfg.agent_rules;
            if let Some(on) = a.classify {
                rules.enabled = on;
            }
            match a.headless.as_deref() {
                None | Some("user") => {}
                Some("agent") => rules.headless_agent = true,
                Some(other) => {
                    return Err(format!(
                        "agent.headless must be 'agent' or 'user', not {other:?}"
                    ));
                }
            }
            if let Some(d) = a.host_depth {
                if !(1..=8).contains(&d) {
                    return Err("agent.host_depth must be 1..=8".into());
                }
                rules.host_depth = d;
            }
            if let Some(extra) = a.markers {
                if extra.len() > 64 {
                    return Err("agent.markers holds at most 64 names".into());
                }
                for m in extra {
                    let ok = !m.is_empty()
                        && m.len() <= 128
                        && !m.starts_with(|c: char| c.is_ascii_digit())
                        && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !ok {
                        return Err(format!(
                            "agent.markers: {m:?} is not an environment variable name"
                        ));
                    }
                    if !rules.markers.contains(&m) {
                        rules.markers.push(m);
                    }
                }
            }
        }
        if cfg.idle_timeout.is_zero() || cfg.idle_timeout > cfg.max_idle_timeout {
            return Err("idle_timeout must be positive and at most max_idle_timeout".into());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_missing_give_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&dir.path().join("none.yaml")).unwrap(),
            Config::default()
        );
        let open = dir.path().join("open.yaml");
        std::fs::write(&open, "idle_timeout: 1h\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            Config::load(&open)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
    }

    #[test]
    fn reads_proxy_settings() {
        let cfg = Config::parse("proxy:\n  strict: true\n  extra_roots: [/etc/ca.pem]\n").unwrap();
        assert!(cfg.proxy.strict);
        assert_eq!(
            cfg.proxy.extra_roots,
            [std::path::PathBuf::from("/etc/ca.pem")]
        );
        assert!(Config::parse("proxy:\n  extra_roots: [ca.pem]\n").is_err());
        assert!(Config::parse("proxy:\n  bogus: 1\n").is_err());
        assert_eq!(
            Config::parse("proxy: {}\n").unwrap().proxy,
            crate::proxy::Settings::default()
        );
    }

    #[test]
    fn reads_durations() {
        let cfg = Config::parse("idle_timeout: 15m\nmax_idle_timeout: 8h\n").unwrap();
        assert_eq!(cfg.idle_timeout, Duration::from_secs(900));
        assert_eq!(cfg.max_idle_timeout, Duration::from_secs(8 * 3600));
    }

    #[test]
    fn reads_agent_limits() {
        let cfg = Config::parse(
            "agent:\n  max_concurrent_runs: 2\n  output_cap_bytes: 4096\n  default_timeout: 30s\n",
        )
        .unwrap();
        assert_eq!(cfg.agent.max_concurrent_runs, 2);
        assert_eq!(cfg.agent.output_cap_bytes, 4096);
        assert_eq!(cfg.agent.default_timeout, Duration::from_secs(30));
        assert!(Config::parse("agent:\n  max_concurrent_runs: 0\n").is_err());
        assert!(
            Config::parse("agent:\n  bogus: 1\n")
                .unwrap_err()
                .contains("bogus")
        );
    }

    #[test]
    fn reads_classification_rules() {
        let cfg = Config::parse(
            "agent:\n  classify: false\n  headless: agent\n  host_depth: 2\n  markers: [MY_AGENT]\n",
        )
        .unwrap();
        let r = &cfg.agent_rules;
        assert!(!r.enabled && r.headless_agent);
        assert_eq!(r.host_depth, 2);
        assert!(r.markers.contains(&"MY_AGENT".to_string()));
        assert!(
            r.markers.contains(&"CLAUDECODE".to_string()),
            "defaults stay"
        );
        assert!(Config::parse("agent:\n  headless: maybe\n").is_err());
        assert!(Config::parse("agent:\n  markers: [\"A=B\"]\n").is_err());
    }

    #[test]
    fn reads_ui_settings() {
        let cfg = Config::parse("ui:\n  port: 8765\n  idle_timeout: 5m\n  session_timeout: 2m\n")
            .unwrap();
        assert_eq!(cfg.ui.port, 8765);
        assert_eq!(cfg.ui.idle_timeout, Duration::from_secs(300));
        assert_eq!(cfg.ui.session_timeout, Duration::from_secs(120));
        assert_eq!(Config::default().ui.port, 0);
        assert!(Config::parse("ui:\n  port: 80\n").is_err());
        assert!(Config::parse("ui:\n  idle_timeout: 0s\n").is_err());
        assert!(Config::parse("ui:\n  session_timeout: 2d\n").is_err());
        assert!(Config::parse("ui:\n  host: 0.0.0.0\n").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let err = Config::parse("idle_timeout: 1h\nbogus_key: 1\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("bogus_key"), "{err}");
        let err = Config::parse("idle_timeout: [1h\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
        let err = Config::parse("idle_timeout: soon\n").unwrap_err();
        assert!(err.contains("idle_timeout"), "{err}");
    }
}
