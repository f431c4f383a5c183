//! Command-line definitions of the commands that move secrets in and out
//! (contract §10): export, import, backup, restore, password change,
//! generate, security.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// KEY='value' lines that `import` and `set -a; . FILE` read back exactly.
    Env,
    /// Every field, flag, tag, note and binding (the lossless format).
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Prints the values of the selected secrets (all by default) to stdout, or
writes them to FILE: created 0600, refused if it exists (unless --force,
which writes a new file and renames it over the old one) and never written
through a symbolic link. Nothing is written unless the whole export can be.
Audited as 'export' with the key names, never the values. A process the
daemon classifies as an AI agent's is refused (exit 5) unless the master
password is typed on the terminal when asked.

env: one NAME='value' line per variable, NAME as 'run' would inject it (a
secret's bindings, else its value); the quoting survives 'import' and
'set -a; . FILE' in sh byte for byte. A secret with several fields and no
bindings, or a value that is not UTF-8 text, needs --format json.
json: every field, flag, tag, note, URL, expiry and binding, for
'import --format json' (see docs/transfer.md for the shape).

Examples:
  secretctl export -k 'dev/**' -o dev.env
  secretctl export --format json -o vault.json
  secretctl export -k github/token --format env")]
pub struct ExportArgs {
    /// Key names or globs (repeatable; * stays within a /-segment, ** crosses).
    #[arg(short = 'k', long = "key", value_name = "PATTERN", num_args = 1..)]
    pub keys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "env")]
    pub format: ExportFormat,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it exists (still never through a symlink).
    #[arg(long, requires = "output")]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// .env: KEY=value lines (export prefix, quotes, escapes, comments).
    Env,
    /// secretctl's own JSON export, or a flat {"KEY": "value"} object.
    Json,
    /// 1Password CSV export.
    #[value(name = "1password-csv")]
    OnePasswordCsv,
    /// Bitwarden unencrypted JSON export.
    BitwardenJson,
    /// LastPass CSV export.
    LastpassCsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictMode {
    /// Keep the stored secret (counted as skipped).
    Skip,
    /// Replace the stored secret with the imported one.
    Overwrite,
    /// Import nothing if any key exists.
    Error,
}

#[derive(Debug, Args)]
#[command(after_help = "\
All or nothing: the whole file is parsed first and a bad entry stops the
import naming its line or item (never its content); then the daemon checks
every entry with the rules of 'set' and stores them in one vault
transaction. Prints how many were imported, overwritten and skipped; with
--dry-run, what would happen to each entry, conflicts included, and changes
nothing. The format is detected from the content and the file name when
--format is not given.

Keys: .env and flat JSON: --prefix + the name as written (DB_URL ->
dev/DB_URL), the value in a sensitive 'value' field. Password managers: one
secret per item, --prefix + folder/title as slugs ('My Bank: Savings' in
'Personal' -> personal/my-bank-savings); a key already taken in the same
file gets -2, -3, ... Fields: username, password (sensitive), totp
(sensitive), further fields by label; notes and the first http(s) URL as
the secret's notes and URL. An entry with nothing to store is skipped.

--conflict for keys already stored: skip (keep the stored secret), overwrite
(replace it entirely, nothing merged), error (import nothing). A process the
daemon classifies as an AI agent's is refused (exit 5) unless the master
password is typed on the terminal when asked. Audited as 'import' with key
names and counts, never values. Details: docs/transfer.md.

Examples:
  secretctl import .env --prefix dev/ --tag dev
  secretctl import export.csv --format 1password-csv --dry-run
  secretctl import vault.json --conflict overwrite
  cat .env | secretctl import - --format env")]
pub struct ImportArgs {
    /// The file to import ('-' for stdin).
    pub file: PathBuf,
    /// The file's format (default: detected).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// What to do when a key already exists.
    #[arg(long, value_enum, default_value = "skip")]
    pub conflict: ConflictMode,
    /// Put this before every imported key (e.g. dev/).
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// Add this tag to every imported secret (repeatable).
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Show exactly what would happen, conflicts included; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Writes one encrypted, authenticated file (the age format, passphrase
recipient) holding a consistent snapshot of the vault and the audit log.
It is protected by the master password (asked again, or SECRETCTL_PASSWORD),
or with --backup-password by a separate one (asked twice, or
SECRETCTL_BACKUP_PASSWORD). FILE is created 0600 and never overwritten
unless --force (and never written through a symlink).

Inside is a tar archive: manifest.json, vault.redb (values still sealed
with the vault's key) and audit/. Open it without secretctl:
  age -d vault.age | tar -tv

Examples:
  secretctl backup -o ~/backups/secretctl-$(date +%F).age
  secretctl backup -o vault.age --backup-password")]
pub struct BackupArgs {
    /// The backup file to create.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it exists (never through a symlink).
    #[arg(long)]
    pub force: bool,
    /// Protect the file with a separate password instead of the master password.
    #[arg(long)]
    pub backup_password: bool,
    /// Read the master password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Checks the whole backup before touching anything, then replaces the vault
atomically; the previous vault is kept as vault.redb.before-restore-<time>
and no other file in SECRETCTL_HOME is deleted. The restore is recorded in
the audit log, which still verifies: a backup of the same vault keeps the
current log; another vault's backup moves it to audit.before-restore-<time>
and installs the backup's. The vault is locked afterwards: unlock it with
the master password it had when the backup was taken.

The password is the master password of the backup's time (prompt,
--password-stdin or SECRETCTL_PASSWORD), or with --backup-password the
separate one (prompt, --password-stdin or SECRETCTL_BACKUP_PASSWORD).

Examples:
  secretctl restore backup.age --verify-only
  secretctl restore backup.age --dry-run
  secretctl restore backup.age")]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Check the backup completely, change nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify_only: bool,
    /// Check it and say what a restore would do, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The backup has a separate password (asked, or SECRETCTL_BACKUP_PASSWORD).
    #[arg(long)]
    pub backup_password: bool,
    /// Read the password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Change the master password (the data key is re-wrapped; values are
    /// not re-encrypted).
    Change(PasswordChangeArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
The old password comes from --password-stdin, SECRETCTL_PASSWORD or a prompt;
the new one from SECRETCTL_NEW_PASSWORD or a prompt asked twice. The data key
is wrapped again (values are not re-encrypted) in one vault transaction: a
crash leaves the old or the new password working. KDF flags left out keep
the vault's current parameters. Backups taken before keep the old password.

Examples:
  secretctl password change
  secretctl password change --kdf-memory 256")]
pub struct PasswordChangeArgs {
    /// New Argon2id memory in MiB (default: keep; at most 1024).
    #[arg(long, value_name = "MiB", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub kdf_memory: Option<u32>,
    /// New Argon2id iterations (default: keep; at most 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub kdf_iterations: Option<u32>,
    /// New Argon2id lanes (default: keep; at most 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub kdf_parallelism: Option<u32>,
    /// Read the old password from stdin instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Characters are drawn from the OS random source, uniformly (rejection
sampling), with at least one of every enabled class. --words N gives a
passphrase of N words from the EFF long wordlist instead.

Examples:
  secretctl generate
  secretctl generate -l 32 --no-symbols -n 5
  secretctl generate --words 6
  secretctl generate --set db/password      # stored, never printed
  secretctl generate --set prod/db --field password")]
pub struct GenerateArgs {
    /// Length in characters.
    #[arg(short = 'l', long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub length: u32,
    /// How many to print.
    #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub count: u32,
    /// No symbols.
    #[arg(long)]
    pub no_symbols: bool,
    /// No digits.
    #[arg(long)]
    pub no_digits: bool,
    /// No upper-case letters.
    #[arg(long)]
    pub no_upper: bool,
    /// No lower-case letters.
    #[arg(long)]
    pub no_lower: bool,
    /// Characters never to use (e.g. "0O1lI").
    #[arg(long, value_name = "CHARS")]
    pub exclude: Option<String>,
    /// A passphrase of N words (separated by '-') instead.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64),
          conflicts_with_all = ["length", "no_symbols", "no_digits", "no_upper", "no_lower", "exclude"])]
    pub words: Option<u32>,
    /// Store the result as KEY's value instead of printing it (an upsert:
    /// the secret's other fields and metadata are kept).
    #[arg(long, value_name = "KEY")]
    pub set: Option<String>,
    /// With --set: the field to store it in (e.g. password).
    #[arg(long, value_name = "NAME", default_value = "value", requires = "set")]
    pub field: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum SecurityView {
    /// Secrets that share a value.
    Duplicates,
    /// Secrets with weak values.
    Weak,
    /// Secrets expired or expiring within --days.
    Expiring,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The same score and findings as the MCP tool security_score, by key and field
name; values never leave the daemon.

Examples:
  secretctl security
  secretctl security weak
  secretctl security expiring --days 7 --json")]
pub struct SecurityArgs {
    #[command(subcommand)]
    pub view: Option<SecurityView>,
    /// Report secrets expiring within this many days.
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}
