//! Command-line definitions: every command, flag and help text.

use clap::{Args, Parser, Subcommand};

/// Local-first secret manager for developers and their AI agents.
///
/// Unlock once; `secretctld` holds the key and answers this CLI (and the MCP
/// shim) over a Unix socket only your uid may use.
#[derive(Debug, Parser)]
#[command(name = "secretctl", version, propagate_version = true, after_help = ENV_HELP)]
pub struct Cli {
    /// Print machine-readable JSON where a command prints data.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

const ENV_HELP: &str = "\
Environment:
  SECRETCTL_HOME           data directory (default ~/.secretctl)
  SECRETCTL_SOCKET         daemon socket path
  SECRETCTL_PASSWORD       master password for non-interactive init/unlock
  SECRETCTL_NO_AUTOSTART=1 never start secretctld automatically

Exit codes: 0 ok, 1 error, 2 usage, 3 vault locked, 4 not found,
5 denied by policy, 6 daemon unreachable.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the vault (leaves it unlocked).
    Init(InitArgs),
    /// Unlock the vault for this session.
    Unlock(UnlockArgs),
    /// Lock the vault now (the key is zeroized).
    Lock,
    /// Show the daemon and vault state.
    Status,
    /// Create or update a secret (value from stdin or a no-echo prompt).
    Set(SetArgs),
    /// Print a secret's value (or its metadata).
    Get(GetArgs),
    /// List secret names.
    List(ListArgs),
    /// Delete a secret.
    Delete(DeleteArgs),
    /// Run a command with secrets in its environment; output is redacted.
    Run(RunArgs),
    /// Read and check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the MCP command policy (mcp-policy.yaml).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Install or inspect the secretctld user service (systemd / launchd).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Serve MCP on stdio for an AI agent (runs secretctl-mcp).
    #[command(
        after_help = "Claude Code:\n  claude mcp add secretctl -- secretctl mcp-server\n\nNo password is needed: unlock the vault yourself with 'secretctl unlock'."
    )]
    McpServer,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show records, oldest first.
    List(AuditFilter),
    /// Check the MAC chain; exit 1 naming the first broken record.
    Verify,
    /// Print records as JSON lines or CSV.
    Export {
        /// json or csv
        #[arg(long, default_value = "json")]
        format: String,
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Remove records older than DATE (the rest still verifies).
    Prune {
        /// 2026-11-28, 2026-11-28T10:00:00Z, or a duration ago (90d).
        #[arg(long, value_name = "DATE")]
        before: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Records at or after DATE (2026-11-28, RFC 3339, or 7d ago).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Records before DATE.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only this action (get, set, run, unlock, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Only records naming this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only cli or mcp.
    #[arg(long)]
    pub source: Option<String>,
    /// Only the newest N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the user units (or LaunchAgent) and start the socket.
    Install {
        /// Show what would be written and run instead.
        #[arg(long)]
        print: bool,
    },
    /// Stop and remove the service.
    Uninstall {
        /// Show what would be removed and run instead.
        #[arg(long)]
        print: bool,
    },
    /// Show whether the service is installed and who started the daemon.
    Status {
        /// Show the unit files that install would write.
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate mcp-policy.yaml and print what it allows, with warnings.
    Check,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  secretctl init\n  printf '%s' \"$PW\" | secretctl init --password-stdin"
)]
pub struct InitArgs {
    /// Argon2id memory in MiB (default 64).
    #[arg(long, value_name = "MiB")]
    pub kdf_memory: Option<u32>,
    /// Argon2id iterations (default 3).
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes (default 4).
    #[arg(long, value_name = "N")]
    pub kdf_parallelism: Option<u32>,
    /// Read the master password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  secretctl unlock\n  secretctl unlock --timeout 8h")]
pub struct UnlockArgs {
    /// Lock again after this long without a request that uses a secret
    /// (e.g. 30m, 8h; default 1h).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Read the master password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The value comes from stdin (to EOF, one trailing newline stripped) or a
no-echo prompt. Fields are sensitive unless --sensitive names others.

Examples:
  printf '%s' \"$TOKEN\" | secretctl set github/token --tags ci --expires 90d
  secretctl set prod/db --template database --field host=db --field port=5432
  secretctl set svc --field user=app --field pass --sensitive pass --binding SVC_PASS=pass")]
pub struct SetArgs {
    /// Key name: letters, digits and . _ / - (e.g. aws/access_key).
    pub key: String,
    /// Free-form notes (stored encrypted).
    #[arg(long)]
    pub notes: Option<String>,
    /// An http(s) URL for the secret (stored encrypted).
    #[arg(long)]
    pub url: Option<String>,
    /// Comma-separated tags (replaces existing tags; "" clears).
    #[arg(long, value_name = "a,b")]
    pub tags: Option<String>,
    /// Expire after this long (e.g. 30d), or "never" to clear.
    #[arg(long, value_name = "DUR")]
    pub expires: Option<String>,
    /// A field as NAME=VALUE, or NAME alone to read its value from stdin/prompt.
    #[arg(long = "field", value_name = "NAME[=VALUE]")]
    pub fields: Vec<String>,
    /// Mark exactly these fields sensitive (others become non-sensitive).
    #[arg(long = "sensitive", value_name = "NAME")]
    pub sensitive: Vec<String>,
    /// Inject field FIELD as ENV when running (ENV=FIELD; replaces bindings).
    #[arg(long = "binding", value_name = "ENV=FIELD")]
    pub bindings: Vec<String>,
    /// Start from a template: login, database, api, ssh.
    #[arg(long, value_name = "T")]
    pub template: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Key name.
    pub key: String,
    /// Field to print (default: `value`, or the only field).
    #[arg(long)]
    pub field: Option<String>,
    /// Print fields, tags, notes and dates instead; never a sensitive value.
    #[arg(long)]
    pub show_metadata: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only secrets with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only secrets expiring within this long (expired ones included), e.g. 7d.
    #[arg(long, value_name = "DUR")]
    pub expiring: Option<String>,
    /// Only keys starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Key name.
    pub key: String,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Env names: a key's name upper-cased with / - . turned into _ (aws/access_key ->
AWS_ACCESS_KEY), after --env-prefix. A secret with bindings injects them.
Exit code: the command's; 124 timeout, 126 not executable, 127 not found,
128+N killed by signal N.

Examples:
  secretctl run -k 'aws/*' -- aws s3 ls
  secretctl run --env dev -k 'db/*' -- npm test")]
pub struct RunArgs {
    /// Key names or globs to inject (* stays within a /-segment, ** crosses).
    #[arg(short = 'k', long = "key", value_name = "PATTERN", num_args = 1.., required = true)]
    pub keys: Vec<String>,
    /// Env alias from mcp-policy.yaml (rewrites key patterns, e.g. db/* -> dev/db/*).
    #[arg(long, value_name = "ALIAS")]
    pub env: Option<String>,
    /// Prefix for every injected variable name.
    #[arg(long, value_name = "P")]
    pub env_prefix: Option<String>,
    /// Kill the command's process group after this long (e.g. 10m).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Do not redact the output (your own terminal only).
    #[arg(long)]
    pub no_redact: bool,
    /// Give the command a pseudo-terminal (colours, progress bars).
    #[arg(long)]
    pub pty: bool,
    /// The command and its arguments, after --.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl Command {
    /// The subcommand's name, for error lines.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Unlock(_) => "unlock",
            Command::Lock => "lock",
            Command::Status => "status",
            Command::Set(_) => "set",
            Command::Get(_) => "get",
            Command::List(_) => "list",
            Command::Delete(_) => "delete",
            Command::Run(_) => "run",
            Command::Audit(AuditCommand::List(_)) => "audit list",
            Command::Audit(AuditCommand::Verify) => "audit verify",
            Command::Audit(AuditCommand::Export { .. }) => "audit export",
            Command::Audit(AuditCommand::Prune { .. }) => "audit prune",
            Command::Policy(_) => "policy check",
            Command::Service(ServiceCommand::Install { .. }) => "service install",
            Command::Service(ServiceCommand::Uninstall { .. }) => "service uninstall",
            Command::Service(ServiceCommand::Status { .. }) => "service status",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
            Command::McpServer => "mcp-server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_run_and_global_json() {
        let cli = Cli::try_parse_from([
            "secretctl",
            "run",
            "-k",
            "a/*",
            "b",
            "--env",
            "dev",
            "--",
            "npm",
            "test",
        ])
        .unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.keys, ["a/*", "b"]);
                assert_eq!(r.command, ["npm", "test"]);
                assert_eq!(r.env.as_deref(), Some("dev"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["secretctl", "list", "--json"])
                .unwrap()
                .json
        );
        assert!(
            Cli::try_parse_from(["secretctl", "run", "-k", "a"]).is_err(),
            "command required"
        );
    }
}
