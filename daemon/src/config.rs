//! Daemon settings from the optional `$SECRETCTL_HOME/config.yaml`.
//!
//! Every key has a default, so a missing file is fine; a malformed file or an
//! unknown key stops the daemon with a message naming the line, because a
//! setting silently ignored (say, a shorter idle timeout) is a security bug.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

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

/// Effective daemon settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Limits on agent runs.
    pub agent: AgentLimits,
    /// Audit segment size before rotation.
    pub audit_segment_bytes: u64,
    /// Idle time after which an unlocked vault locks itself (`unlock` default).
    pub idle_timeout: Duration,
    /// Longest `unlock --timeout` accepted.
    pub max_idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent: AgentLimits::default(),
            audit_segment_bytes: crate::audit::DEFAULT_SEGMENT_BYTES,
            idle_timeout: Duration::from_secs(3600),
            max_idle_timeout: Duration::from_secs(30 * 86400),
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
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text).map_err(|message| ConfigError::Parse {
                path: path.display().to_string(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses the YAML text; the error names the line where it can.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
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
