//! Command-line definitions: every command, flag and help text.
//!
//! New subcommands are a variant of [`Command`], an arm in
//! [`Command::name`] (for error lines) and one in `main`'s dispatch.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use crate::cli_transfer::*;
use crate::flags::{self, BindingArg, Expiry, FieldArg, Tags};
use crate::templates;

/// Local-first secret manager for developers and their AI agents.
///
/// Unlock once; `secretctld` holds the key and answers this CLI (and the MCP
/// shim) over a Unix socket only your uid may use.
#[derive(Debug, Parser)]
#[command(name = "secretctl", version = secretctl_proto::VERSION, after_help = ENV_HELP)]
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
  SECRETCTL_PASSWORD       master password for non-interactive init, unlock,
                           backup, restore and password change
  SECRETCTL_NEW_PASSWORD   the new one for non-interactive password change
  SECRETCTL_BACKUP_PASSWORD a separate backup password (backup/restore
                           --backup-password)
  SECRETCTL_NO_AUTOSTART=1 never start secretctld automatically

Exit codes: 0 ok, 1 error, 2 usage, 3 vault locked, 4 not found,
5 denied by policy, 6 daemon unreachable.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the vault (leaves it unlocked).
    Init(InitArgs),
    /// Unlock the vault for this session.
    Unlock(UnlockArgs),
    /// Lock the vault now (the key is zeroized). Never starts the daemon.
    #[command(after_help = "Examples:\n  secretctl lock")]
    Lock,
    /// Show the daemon and vault state (starts the daemon if needed).
    #[command(
        after_help = "Shows the daemon's pid, version and protocol, the vault state\n(uninitialized, locked, unlocked), the idle-lock deadline, the vault and\nsocket paths and the number of secrets.\n\nExamples:\n  secretctl status\n  secretctl status --json"
    )]
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
    /// Write secrets' values out as .env or JSON (a file is created 0600).
    Export(ExportArgs),
    /// Import secrets from .env, JSON, 1Password, Bitwarden or LastPass
    /// exports, all or nothing.
    Import(ImportArgs),
    /// Write an encrypted backup of the vault and the audit log.
    Backup(BackupArgs),
    /// Restore the vault (and audit log) from a backup.
    Restore(RestoreArgs),
    /// Change the master password.
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Generate a random password or passphrase.
    Generate(GenerateArgs),
    /// Weak, duplicated and expiring secrets, by name only.
    Security(SecurityArgs),
    /// Open the local web UI (served by the daemon on 127.0.0.1).
    #[command(
        after_help = "Prints a login link whose one-time token (in the URL's #fragment) the page trades\nfor a session cookie, and opens it in your browser. The UI is served to your uid\nonly and stops after ui.idle_timeout (config.yaml) without use, or with the\ndaemon. Refused to AI agents unless you type the master password on the terminal.\n\nExamples:\n  secretctl ui\n  secretctl ui --no-open"
    )]
    Ui(UiArgs),
    /// Read and check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The credential proxy's local CA (see 'set --proxy-host').
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Check the MCP command policy (mcp-policy.yaml).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Put config.yaml's agent settings in force.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run an AI agent (e.g. claude) so that everything it starts is
    /// treated as an agent's: no values, policy-checked runs.
    #[command(
        after_help = "Starts CMD as a registered agent host with SECRETCTL_AGENT=1 in its environment,\nand stays its parent as a child subreaper: even processes that double-fork or\nsetsid stay below it and are classified as the agent's. Exits with CMD's code.\n\nExamples:\n  secretctl agent -- claude\n  secretctl agent -- npx @google/gemini-cli"
    )]
    Agent(AgentArgs),
    /// Check the setup and say what to fix: daemon, versions, directory
    /// modes, vault, policy and config, service, MCP.
    #[command(
        after_help = "Exit 1 when a check fails; warnings (a locked vault, no policy yet) do not.\n\nExamples:\n  secretctl doctor\n  secretctl doctor --json"
    )]
    Doctor,
    /// Stop, restart or inspect the daemon process.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Install or inspect the secretctld user service (systemd / launchd).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into DIR.
    #[command(
        after_help = "Examples:\n  secretctl man --dir ~/.local/share/man/man1   # secretctl.1, secretctl-init.1, ...\n  secretctl man | man -l -"
    )]
    Man {
        /// Write secretctl.1 and a page for every subcommand here (the main
        /// page's SEE ALSO names them).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
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
    /// Accept the gaps the daemon found and recorded (records removed from
    /// the log while it was not looking), so verify passes again. Check
    /// what happened first: the gap records say what was expected and
    /// what was found.
    #[command(
        after_help = "Examples:\n  secretctl audit verify          # names the gap\n  secretctl audit list --action audit_gap\n  secretctl audit acknowledge"
    )]
    Acknowledge,
}

#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Records at or after DATE (2026-11-28, RFC 3339, or 7d ago).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Records before DATE.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only this action (get, set, run, unlock, audit_gap, ...; an unknown
    /// one is an error that lists them).
    #[arg(long)]
    pub action: Option<String>,
    /// Only records naming this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only records from this client.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(secretctl_proto::audit_actions::SOURCES))]
    pub source: Option<String>,
    /// Only records of this caller class (an agent's process, or yours).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(secretctl_proto::audit_actions::CALLERS))]
    pub caller: Option<String>,
    /// Only the newest N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Whether it runs, its pid, version, socket and who started it.
    Status,
    /// Stop it (SIGTERM: the vault is locked and the key zeroized first).
    Stop,
    /// Stop it and start a new one, which reads config.yaml again; the
    /// vault comes back locked.
    #[command(
        after_help = "Examples:\n  $EDITOR ~/.secretctl/config.yaml && secretctl daemon restart && secretctl unlock"
    )]
    Restart,
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

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's command and its arguments, after --.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// The local CA that signs the certificates the credential proxy shows
    /// a run's child for intercepted hosts.
    #[command(subcommand)]
    Ca(ProxyCaCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProxyCaCommand {
    /// Print the CA certificate (PEM) and its SHA-256 fingerprint; made on
    /// first use. Runs trust it through their CA bundle variables.
    Show,
    /// Replace the CA with a new one (its key never leaves the vault). Runs
    /// started afterwards use the new one; running ones keep theirs. An
    /// agent's process must be confirmed with the master password.
    #[command(
        after_help = "Examples:\n  secretctl proxy ca rotate\n  secretctl proxy ca show --json"
    )]
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate mcp-policy.yaml and print what it allows, with warnings, and
    /// whether it differs from the applied copy.
    Check,
    /// Put mcp-policy.yaml in force: the daemon validates it and keeps a
    /// sealed copy that agent runs are checked against. Edits to the file
    /// change nothing until it is applied again. Must be a regular 0600 file
    /// of yours. An agent's process must be confirmed with the master
    /// password on a terminal.
    #[command(
        after_help = "Examples:\n  $EDITOR ~/.secretctl/mcp-policy.yaml && secretctl policy apply"
    )]
    Apply,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Put config.yaml's agent settings (agent.*) in force: limits on agent
    /// runs and how callers are classified. Other settings are read when
    /// the daemon starts. An agent's process must be confirmed with the
    /// master password on a terminal.
    Apply,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The password comes from --password-stdin, else SECRETCTL_PASSWORD, else a
no-echo prompt asked twice. The vault is left unlocked (idle lock after 1h).

Examples:
  secretctl init
  printf '%s' \"$PW\" | secretctl init --password-stdin
  secretctl init --kdf-memory 256 --kdf-iterations 4")]
pub struct InitArgs {
    /// Argon2id memory in MiB (default 64, at most 1024).
    #[arg(long, value_name = "MiB", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub kdf_memory: Option<u32>,
    /// Argon2id iterations (default 3, at most 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes (default 4, at most 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub kdf_parallelism: Option<u32>,
    /// Read the master password from stdin (to EOF, one trailing newline
    /// stripped) instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The password comes from --password-stdin, else SECRETCTL_PASSWORD, else a
no-echo prompt. The vault locks again after the idle timeout without a
request that uses a secret, on 'secretctl lock', or when secretctld stops.

Examples:
  secretctl unlock
  secretctl unlock --timeout 8h
  secretctl unlock --json    # {\"state\":\"unlocked\",\"idle_lock_deadline\":...}")]
pub struct UnlockArgs {
    /// Idle timeout for this unlock (e.g. 30m, 8h; default 1h or the
    /// daemon's config.yaml); at least 1s.
    #[arg(long, value_name = "DUR", value_parser = flags::parse_timeout)]
    pub timeout: Option<Duration>,
    /// Read the master password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The value of the default field 'value' comes from stdin (to EOF, one trailing
newline stripped) or, on a terminal, a no-echo prompt; it never needs to be
on the command line. Upserts keep whatever is not given (fields, notes, tags).

Fields are sensitive by default; once any --sensitive NAME is given, exactly
the named fields are sensitive. Templates (* = sensitive):
  login     username, password*
  database  host, port, username, password*, database
  api       api_key*, api_secret*, endpoint
  ssh       host, port, username, private_key*
Template fields not given with --field are prompted for on a terminal.

Examples:
  printf '%s' \"$TOKEN\" | secretctl set github/token --tags ci --expires 90d
  secretctl set prod/db --template database --field host=db.internal \\
      --field port=5432 --field username=app --field database=main
  secretctl set svc --field user=app --field pass --sensitive pass \\
      --binding SVC_USER=user --binding SVC_PASS=pass < pass.txt
  secretctl set github/token --expires never --tags \"\"
  secretctl set github/token --proxy-host api.github.com < token.txt
  secretctl set stripe --field key --proxy-host api.stripe.com < key.txt
  secretctl set github/token --proxy-host \"\"      # no longer proxied

--proxy-host (contract §12) names the hosts the credential proxy may send the
value to: in agent runs and 'run --proxy' the variable holds a placeholder,
replaced on the wire only in HTTPS requests to these hosts. Without --field
it marks the secret (its sensitive fields); with --field, the fields given.")]
pub struct SetArgs {
    /// Key name: letters, digits and . _ / - (e.g. aws/access_key_id).
    pub key: String,
    /// Free-form notes, stored encrypted ("" clears).
    #[arg(long)]
    pub notes: Option<String>,
    /// An http(s) URL for the secret, stored encrypted ("" clears).
    #[arg(long)]
    pub url: Option<String>,
    /// Comma-separated tags; replaces the existing ones ("" clears).
    #[arg(long, value_name = "a,b", value_parser = flags::parse_tags)]
    pub tags: Option<Tags>,
    /// Expire this long from now (e.g. 30d), or "never" to clear.
    #[arg(long, value_name = "DUR|never", value_parser = flags::parse_expiry)]
    pub expires: Option<Expiry>,
    /// A field as NAME=VALUE, or NAME alone to read its value from
    /// stdin/prompt (at most one); repeatable.
    #[arg(long = "field", value_name = "NAME[=VALUE]", value_parser = flags::parse_field)]
    pub fields: Vec<FieldArg>,
    /// Make exactly the named fields sensitive (repeatable).
    #[arg(long = "sensitive", value_name = "NAME")]
    pub sensitive: Vec<String>,
    /// Inject field FIELD as variable ENV in 'secretctl run' (repeatable;
    /// replaces the existing bindings).
    #[arg(long = "binding", value_name = "ENV=FIELD", value_parser = flags::parse_binding)]
    pub bindings: Vec<BindingArg>,
    /// Create the fields of a template (listed below).
    #[arg(long, value_name = "T", value_parser = clap::builder::PossibleValuesParser::new(templates::NAMES))]
    pub template: Option<String>,
    /// Proxy the value to HOST only (api.github.com or *.example.com;
    /// repeatable; replaces the hosts; "" clears). See below.
    #[arg(long = "proxy-host", value_name = "HOST")]
    pub proxy_hosts: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The value goes to stdout as raw bytes, with a newline added only when stdout
is a terminal, so $(secretctl get KEY) and pipes get the exact bytes.
--show-metadata prints everything but sensitive values.

Examples:
  secretctl get github/token
  secretctl get prod/db --field password
  secretctl get prod/db --show-metadata --json")]
pub struct GetArgs {
    /// Key name.
    pub key: String,
    /// Field to print (default: 'value', or the only field).
    #[arg(long, conflicts_with = "show_metadata")]
    pub field: Option<String>,
    /// Print fields, tags, notes, URL, bindings and dates instead; never a
    /// sensitive value.
    #[arg(long)]
    pub show_metadata: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  secretctl list
  secretctl list --tag ci --expiring 7d
  secretctl list --prefix prod/ --json")]
pub struct ListArgs {
    /// Only secrets with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only secrets expiring within this long (expired ones included), e.g. 7d.
    #[arg(long, value_name = "DUR", value_parser = flags::parse_duration)]
    pub expiring: Option<Duration>,
    /// Only keys starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
On a terminal, asks for confirmation unless --force is given.

Examples:
  secretctl delete old/token
  secretctl delete old/token --force")]
pub struct DeleteArgs {
    /// Key name.
    pub key: String,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Env names: a key's name upper-cased with / - . turned into _ (aws/access_key_id ->
AWS_ACCESS_KEY_ID), after --env-prefix. A secret with bindings injects them (templates
bring default bindings); only sensitive values are redacted.
Exit code: the command's; 124 timeout, 126 not executable, 127 not found,
128+N killed by signal N.

Examples:
  secretctl run -k 'aws/*' -- aws s3 ls
  secretctl run -k dev/db -- psql
  secretctl run --env dev -k db -- npm test   # needs env_aliases in the applied policy
  secretctl run --proxy -k github/token -- gh api /user")]
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
    /// Secrets set with --proxy-host hold a placeholder; the run's credential
    /// proxy puts the value into HTTPS requests to their hosts (agent runs
    /// always do this).
    #[arg(long)]
    pub proxy: bool,
    /// The command and its arguments, after --.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl Command {
    /// Whether `--json` changes what the command prints.
    pub fn prints_json(&self) -> bool {
        !matches!(
            self,
            Command::Run(_)
                | Command::Agent(_)
                | Command::McpServer
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Service(_)
                | Command::Audit(AuditCommand::Export { .. })
                | Command::Export(_)
                | Command::Generate(_)
        )
    }

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
            Command::Export(_) => "export",
            Command::Import(_) => "import",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
            Command::Password(PasswordCommand::Change(_)) => "password change",
            Command::Generate(_) => "generate",
            Command::Security(_) => "security",
            Command::Ui(_) => "ui",
            Command::Audit(AuditCommand::List(_)) => "audit list",
            Command::Audit(AuditCommand::Verify) => "audit verify",
            Command::Audit(AuditCommand::Export { .. }) => "audit export",
            Command::Audit(AuditCommand::Prune { .. }) => "audit prune",
            Command::Audit(AuditCommand::Acknowledge) => "audit acknowledge",
            Command::Proxy(ProxyCommand::Ca(ProxyCaCommand::Show)) => "proxy ca show",
            Command::Proxy(ProxyCommand::Ca(ProxyCaCommand::Rotate)) => "proxy ca rotate",
            Command::Policy(PolicyCommand::Check) => "policy check",
            Command::Policy(PolicyCommand::Apply) => "policy apply",
            Command::Config(ConfigCommand::Apply) => "config apply",
            Command::Agent(_) => "agent",
            Command::Doctor => "doctor",
            Command::Daemon(DaemonCommand::Status) => "daemon status",
            Command::Daemon(DaemonCommand::Stop) => "daemon stop",
            Command::Daemon(DaemonCommand::Restart) => "daemon restart",
            Command::Service(ServiceCommand::Install { .. }) => "service install",
            Command::Service(ServiceCommand::Uninstall { .. }) => "service uninstall",
            Command::Service(ServiceCommand::Status { .. }) => "service status",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
            Command::McpServer => "mcp-server",
        }
    }
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Print the login link without opening a browser.
    #[arg(long)]
    pub no_open: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("secretctl").chain(argv.iter().copied()))
    }

    #[test]
    fn version_is_the_workspace_version() {
        assert_eq!(
            Cli::command().render_version(),
            format!("secretctl {}\n", secretctl_proto::VERSION)
        );
    }

    #[test]
    fn session_flags() {
        match parse(&["unlock", "--timeout", "8h", "--password-stdin"])
            .unwrap()
            .command
        {
            Command::Unlock(u) => {
                assert_eq!(u.timeout, Some(Duration::from_secs(8 * 3600)));
                assert!(u.password_stdin);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&["unlock", "--timeout", "8"])
                .unwrap_err()
                .exit_code(),
            2
        );
        match parse(&["init", "--kdf-memory", "128"]).unwrap().command {
            Command::Init(i) => assert_eq!((i.kdf_memory, i.kdf_iterations), (Some(128), None)),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["init", "--kdf-memory", "0"]).is_err());
        assert!(
            parse(&["init", "--kdf-memory", "4194304"]).is_err(),
            "KiB overflows u32"
        );
    }

    #[test]
    fn secret_flags() {
        match parse(&["list", "--expiring", "7d", "--tag", "ci", "--json"]).unwrap() {
            Cli {
                json: true,
                command: Command::List(l),
            } => {
                assert_eq!(l.expiring, Some(Duration::from_secs(7 * 86400)));
                assert_eq!(l.tag.as_deref(), Some("ci"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["get", "k", "--field", "f", "--show-metadata"]).is_err());
        match parse(&[
            "set",
            "k",
            "--field",
            "a=1",
            "--field",
            "b",
            "--binding",
            "A=a",
        ])
        .unwrap()
        .command
        {
            Command::Set(s) => {
                let names: Vec<_> = s.fields.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(names, ["a", "b"]);
                assert_eq!(s.bindings[0].env, "A");
                assert_eq!(s.tags, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["delete", "k", "-f"]).is_ok());
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
        // A missing command is explained by `run` itself (it names `--`).
        match Cli::try_parse_from(["secretctl", "run", "-k", "a", "true"])
            .unwrap()
            .command
        {
            Command::Run(r) => assert!(r.command.is_empty() && r.keys == ["a", "true"]),
            other => panic!("{other:?}"),
        }
    }
}
