//! Daemon settings from the optional `$SECRETCTL_HOME/config.yaml`.
//!
//! Every key has a default, so a missing file is fine; a malformed file or an
//! unknown key stops the daemon with a message naming the line, because a
//! setting silently ignored (say, a shorter idle timeout) is a security bug.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Effective daemon settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Idle time after which an unlocked vault locks itself (`unlock` default).
    pub idle_timeout: Duration,
    /// Longest `unlock --timeout` accepted.
    pub max_idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
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
