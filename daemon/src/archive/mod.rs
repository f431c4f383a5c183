//! The backup file (contract §10): an [age](https://age-encryption.org)
//! file encrypted to a passphrase (the scrypt recipient), whose plaintext
//! is a tar archive:
//!
//! | entry | what |
//! |---|---|
//! | `manifest.json` | format and version, when, the vault's id, counts, which password protects it, the audit files |
//! | `vault.redb` | a consistent copy of the vault file (values still sealed under the data key) |
//! | `audit/<file>` | the audit log: segments, the pending file, the prune checkpoint |
//!
//! A standard container: anyone with the password opens it with the `age`
//! tool (`age -d backup.age | tar t`).
//!
//! Invariants:
//! - age authenticates every byte: the header has a MAC keyed from the file
//!   key, the payload is sealed in 64 KiB chunks and the last chunk is
//!   marked as last. A wrong password, an altered byte or a cut file is
//!   an error before anything unpacked is used.
//! - [`unpack`] accepts only the names above, as regular files, each within
//!   its size cap, written new (`O_EXCL`, `O_NOFOLLOW`, 0600) into a fresh
//!   directory; and it reads the file to its very end, so a cut or
//!   altered tail after the archive's last entry is found too.
//! - Passwords are copied only into age's zeroize-on-drop `SecretString`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `manifest.json`'s `format`.
pub const FORMAT: &str = "secretctl-backup";
/// `manifest.json`'s `version`; a newer one is refused.
pub const VERSION: u32 = 1;
/// Name of the manifest entry.
pub const MANIFEST: &str = "manifest.json";
/// Name of the vault entry.
pub const VAULT: &str = "vault.redb";
/// Folder of the audit entries.
pub const AUDIT: &str = "audit";

/// Largest backup file a restore accepts (the encrypted file).
pub const MAX_BACKUP_BYTES: u64 = 4 << 30;
/// Largest manifest.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest audit file (segments rotate at a few MiB).
const MAX_AUDIT_FILE_BYTES: u64 = 1 << 30;
/// Most entries in one archive.
const MAX_ENTRIES: usize = 100_000;
/// The magic line every age file starts with.
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// Which password protects a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// The vault's master password at the time of the backup.
    MasterPassword,
    /// A separate password given to `backup --backup-password`.
    BackupPassword,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Unix seconds at which the snapshot was taken.
    pub created_at: i64,
    /// The same, RFC 3339 (for people reading the file).
    pub created: String,
    /// The secretctld that wrote it.
    pub secretctl_version: String,
    /// The vault's id, hex.
    pub vault_id: String,
    pub secret_count: u64,
    pub protection: Protection,
    /// The audit entries, in chain order (`audit/segment-….jsonl`, …).
    pub audit_files: Vec<String>,
    /// Lines in the audit files (sealed and pending records).
    pub audit_records: u64,
}

/// Why a backup file cannot be written or used. None carries a password.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("wrong password for this backup (or the file's header was altered)")]
    WrongPassword,
    #[error("this is not a secretctl backup: {0}")]
    NotABackup(String),
    #[error("the backup file was altered, damaged or cut short: {0}")]
    Damaged(String),
    #[error("the backup is too large: {0}")]
    TooLarge(String),
    /// A local file could not be read or written (not the backup's fault).
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let what = what.into();
    move |cause| ArchiveError::Io { what, cause }
}

/// Hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// age's passphrase encryptor. Its scrypt work factor is calibrated to
/// about a second on this machine (deliberately slow for guessing); unit
/// tests use a small one.
fn encryptor(passphrase: &str) -> age::Encryptor {
    #[allow(unused_mut)]
    let mut r = age::scrypt::Recipient::new(SecretString::from(passphrase));
    #[cfg(test)]
    r.set_work_factor(10);
    age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .expect("one passphrase recipient is a valid recipient set")
}

fn header(size: u64, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(mtime.max(0) as u64);
    h
}

/// Writes the backup of `dir` (holding `vault.redb` and `audit/` with the
/// files `manifest` lists) to `out`, encrypted to `passphrase`. Returns
/// `out` once the age stream is finished (its last chunk written).
pub fn pack<W: Write>(
    out: W,
    passphrase: &str,
    manifest: &Manifest,
    dir: &Path,
) -> Result<W, ArchiveError> {
    let write_err = io("cannot write the backup");
    let stream = match encryptor(passphrase).wrap_output(out) {
        Ok(s) => s,
        Err(e) => return Err(write_err(e)),
    };
    let mut tar = tar::Builder::new(stream);
    let manifest_json =
        serde_json::to_vec_pretty(manifest).expect("a manifest always serialises to JSON");
    let mut h = header(manifest_json.len() as u64, manifest.created_at);
    tar.append_data(&mut h, MANIFEST, manifest_json.as_slice())
        .map_err(io("cannot write the backup"))?;
    let mut entries = vec![VAULT.to_string()];
    entries.extend(manifest.audit_files.iter().cloned());
    for name in entries {
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(format!("cannot read {}", path.display())))?;
        let len = file
            .metadata()
            .map_err(io(format!("cannot read {}", path.display())))?
            .len();
        let mut h = header(len, manifest.created_at);
        // A reader capped at the length in the header: a file that grew
        // meanwhile cannot break the archive.
        tar.append_data(&mut h, &name, file.take(len))
            .map_err(io("cannot write the backup"))?;
    }
    let stream = tar.into_inner().map_err(io("cannot write the backup"))?;
    stream.finish().map_err(io("cannot write the backup"))
}

mod unpack;
pub use unpack::unpack;

#[cfg(test)]
mod tests;
