//! The tools' arguments as an MCP client sends them (JSON), and the pure
//! steps that turn them into request fields: argv, timeouts, durations.
//! No I/O, so they can be tested and fuzzed without a daemon.

use schemars::JsonSchema;
use secretctl_proto::duration;
use serde::Deserialize;

use crate::split;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// Only secrets carrying this tag.
    pub tag: Option<String>,
    /// Only secrets expiring within this duration (e.g. "7d", "12h"); expired ones included.
    pub expiring_within: Option<String>,
    /// Only keys starting with this prefix (e.g. "aws/").
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KeyArgs {
    /// The secret's key name, e.g. "aws/access_key".
    pub key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FieldArgs {
    /// The secret's key name.
    pub key: String,
    /// A non-sensitive field name (see secret_list_fields), e.g. "username" or "host".
    pub field: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunArgs {
    /// Key names or globs whose values are injected as environment variables
    /// ("aws/*" stays within one path segment, "aws/**" crosses). The env name is the
    /// key upper-cased with / - . turned into _ (aws/access_key -> AWS_ACCESS_KEY).
    pub keys: Vec<String>,
    /// The program to run, or a whole command line ("npm run test") when args is absent.
    /// It is split into words without any shell expansion, and must be allowed by the
    /// user's policy.
    pub command: String,
    /// Arguments, each passed as-is. Never put $SECRET references here for a non-shell
    /// program: secrets are only in the environment.
    pub args: Option<Vec<String>>,
    /// Environment alias from the user's policy (e.g. "dev", "prod"): rewrites key
    /// patterns such as "db/*" to "dev/db/*" while keeping env names like DB_HOST.
    pub env: Option<String>,
    /// Prefix added to every injected variable name.
    pub env_prefix: Option<String>,
    /// Timeout such as "30s" or "10m" (default 5m, at most 1h).
    pub timeout: Option<String>,
    /// Working directory (default: the directory the MCP server was started in).
    pub cwd: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BindingsRunArgs {
    /// A secret with bindings (ENV name -> field); every binding is injected.
    pub key: String,
    /// The program to run, or a whole command line when args is absent.
    pub command: String,
    /// Arguments, each passed as-is.
    pub args: Option<Vec<String>>,
    /// Timeout such as "30s" or "10m" (default 5m, at most 1h).
    pub timeout: Option<String>,
    /// Working directory (default: the directory the MCP server was started in).
    pub cwd: Option<String>,
}

/// A run's `timeout` in milliseconds; 0 (absent) means the daemon's default.
pub fn timeout_ms(t: &Option<String>) -> Result<u64, String> {
    match t {
        Some(t) => duration::parse(t)
            .map(|d| d.as_millis() as u64)
            .map_err(|e| e.to_string()),
        None => Ok(0),
    }
}

/// argv from `command` plus `args`, or from splitting `command`.
pub fn argv(command: &str, args: &Option<Vec<String>>) -> Result<Vec<String>, String> {
    match args {
        Some(args) => {
            if command.trim().is_empty() {
                return Err("command is empty".into());
            }
            let mut v = vec![command.to_string()];
            v.extend(args.iter().cloned());
            Ok(v)
        }
        None => split::split(command).map_err(|e| e.to_string()),
    }
}

/// `expiring_within` in seconds.
pub fn expiring_within_secs(d: &Option<String>) -> Result<Option<i64>, String> {
    match d {
        Some(d) => Ok(Some(
            duration::parse(d).map_err(|e| e.to_string())?.as_secs() as i64,
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_from_command_or_args() {
        assert_eq!(argv("npm run test", &None).unwrap(), ["npm", "run", "test"]);
        assert_eq!(
            argv("npm", &Some(vec!["run test".into()])).unwrap(),
            ["npm", "run test"]
        );
        assert!(argv("echo 'x", &None).is_err());
        assert!(argv(" ", &Some(vec![])).is_err());
    }
}
