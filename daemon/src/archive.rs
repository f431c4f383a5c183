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

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::audit::files::Files;

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

/// What a name in the archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Manifest,
    Vault,
    Audit(String),
}

fn entry_of(name: &str) -> Option<Entry> {
    match name {
        MANIFEST => Some(Entry::Manifest),
        VAULT => Some(Entry::Vault),
        _ => {
            let file = name.strip_prefix("audit/")?;
            Files::is_log_file(file).then(|| Entry::Audit(file.to_string()))
        }
    }
}

/// Decrypts the backup read from `input` with `passphrase` and unpacks it
/// into `dest` (a new, private directory: `manifest.json`, `vault.redb`,
/// `audit/`). Returns the manifest, checked against what was unpacked.
/// Every error leaves only files inside `dest`.
pub fn unpack<R: Read>(input: R, passphrase: &str, dest: &Path) -> Result<Manifest, ArchiveError> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let looks_like_age = input
        .fill_buf()
        .map(|b| b.starts_with(AGE_MAGIC))
        .map_err(io("cannot read the backup"))?;
    if !looks_like_age {
        return Err(ArchiveError::NotABackup(
            "it is not an age-encrypted file".into(),
        ));
    }
    let decryptor = age::Decryptor::new_buffered(input)
        .map_err(|e| ArchiveError::Damaged(format!("its age header does not parse ({e})")))?;
    if !decryptor.is_scrypt() {
        return Err(ArchiveError::NotABackup(
            "its age header names no passphrase recipient: it is encrypted to age keys, or its header was altered".into(),
        ));
    }
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase));
    let reader = match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(r) => r,
        Err(
            age::DecryptError::DecryptionFailed
            | age::DecryptError::KeyDecryptionFailed
            | age::DecryptError::NoMatchingKeys,
        ) => return Err(ArchiveError::WrongPassword),
        Err(age::DecryptError::InvalidMac) => {
            return Err(ArchiveError::Damaged(
                "its header does not match its MAC".into(),
            ));
        }
        Err(age::DecryptError::ExcessiveWork { required, target }) => {
            return Err(ArchiveError::TooLarge(format!(
                "its password needs scrypt work 2^{required}, far above this machine's 2^{target}"
            )));
        }
        Err(e) => return Err(ArchiveError::Damaged(e.to_string())),
    };
    let damaged = |e: std::io::Error| ArchiveError::Damaged(e.to_string());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dest)
        .map_err(io(format!("cannot create {}", dest.display())))?;
    let mut archive = tar::Archive::new(reader);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut audit: Vec<String> = Vec::new();
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        if seen.len() >= MAX_ENTRIES {
            return Err(ArchiveError::TooLarge(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let shown = secretctl_proto::text::shown(&name);
        let kind = entry_of(&name)
            .ok_or_else(|| ArchiveError::NotABackup(format!("unexpected entry '{shown}'")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(ArchiveError::NotABackup(format!(
                "entry '{shown}' is not a regular file"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(ArchiveError::NotABackup(format!(
                "entry '{shown}' appears twice"
            )));
        }
        let cap = match &kind {
            Entry::Manifest => MAX_MANIFEST_BYTES,
            Entry::Vault => MAX_BACKUP_BYTES,
            Entry::Audit(_) => MAX_AUDIT_FILE_BYTES,
        };
        if entry.size() > cap {
            return Err(ArchiveError::TooLarge(format!(
                "entry '{shown}' is {} bytes (at most {cap})",
                entry.size()
            )));
        }
        let path = match &kind {
            Entry::Manifest => {
                let mut buf = Vec::new();
                (&mut entry)
                    .take(cap)
                    .read_to_end(&mut buf)
                    .map_err(damaged)?;
                manifest_bytes = Some(buf);
                continue;
            }
            Entry::Vault => dest.join(VAULT),
            Entry::Audit(file) => {
                let dir = dest.join(AUDIT);
                if audit.is_empty() {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&dir)
                        .map_err(io(format!("cannot create {}", dir.display())))?;
                }
                audit.push(name.clone());
                dir.join(file)
            }
        };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(format!("cannot create {}", path.display())))?;
        copy_entry(&mut entry, &mut out, cap, &path)?;
        out.sync_all()
            .map_err(io(format!("cannot write {}", path.display())))?;
    }
    // The rest of the file (the archive's padding, age's last chunk) is
    // read and authenticated too: a file cut after the last entry fails.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(damaged)?;

    let bytes =
        manifest_bytes.ok_or_else(|| ArchiveError::NotABackup(format!("it has no {MANIFEST}")))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::NotABackup(format!("its {MANIFEST} does not parse ({e})")))?;
    if manifest.format != FORMAT {
        return Err(ArchiveError::NotABackup(format!(
            "its format is '{}', not '{FORMAT}'",
            secretctl_proto::text::shown(&manifest.format)
        )));
    }
    if manifest.version > VERSION {
        return Err(ArchiveError::NotABackup(format!(
            "it was written by a newer secretctl (format version {}; this one reads {VERSION}): upgrade secretctl to restore it",
            manifest.version
        )));
    }
    if !seen.contains(VAULT) {
        return Err(ArchiveError::NotABackup(format!("it has no {VAULT}")));
    }
    let listed: BTreeSet<&String> = manifest.audit_files.iter().collect();
    let found: BTreeSet<&String> = audit.iter().collect();
    if listed != found {
        return Err(ArchiveError::Damaged(format!(
            "its audit files do not match its manifest ({} listed, {} found)",
            listed.len(),
            found.len()
        )));
    }
    Ok(manifest)
}

/// Copies one entry: read errors are the backup's (damaged), write errors
/// ours (I/O); at most `cap` bytes.
fn copy_entry(
    entry: &mut impl Read,
    out: &mut std::fs::File,
    cap: u64,
    path: &Path,
) -> Result<(), ArchiveError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::Damaged(e.to_string())),
        };
        total += n as u64;
        if total > cap {
            return Err(ArchiveError::TooLarge(format!(
                "an entry is larger than {cap} bytes"
            )));
        }
        out.write_all(&buf[..n])
            .map_err(io(format!("cannot write {}", path.display())))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "backup test passphrase";

    fn manifest(audit_files: Vec<String>) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            created_at: 1_700_000_000,
            created: "2023-11-14T22:13:20Z".into(),
            secretctl_version: "test".into(),
            vault_id: "00ff".into(),
            secret_count: 0,
            protection: Protection::MasterPassword,
            audit_files,
            audit_records: 2,
        }
    }

    /// A source dir with a fake vault file and two audit files.
    fn source() -> (tempfile::TempDir, Manifest) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(VAULT), vec![7u8; 100_000]).unwrap();
        std::fs::create_dir(d.path().join(AUDIT)).unwrap();
        std::fs::write(
            d.path().join("audit/segment-000000000001.jsonl"),
            b"{\"seq\":1}\n",
        )
        .unwrap();
        std::fs::write(d.path().join("audit/pending.jsonl"), b"{\"p\":1}\n").unwrap();
        let m = manifest(vec![
            "audit/segment-000000000001.jsonl".into(),
            "audit/pending.jsonl".into(),
        ]);
        (d, m)
    }

    fn packed() -> (Vec<u8>, Manifest) {
        let (d, m) = source();
        let out = pack(Vec::new(), PW, &m, d.path()).unwrap();
        (out, m)
    }

    #[test]
    fn round_trip_restores_every_file() {
        let (bytes, m) = packed();
        assert!(bytes.starts_with(AGE_MAGIC));
        assert!(
            !bytes.windows(7).any(|w| w == b"{\"seq\":"),
            "the payload is encrypted"
        );
        let dest = tempfile::tempdir().unwrap();
        let to = dest.path().join("x");
        let got = unpack(bytes.as_slice(), PW, &to).unwrap();
        assert_eq!(got, m);
        assert_eq!(std::fs::read(to.join(VAULT)).unwrap(), vec![7u8; 100_000]);
        assert_eq!(
            std::fs::read(to.join("audit/pending.jsonl")).unwrap(),
            b"{\"p\":1}\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(to.join(VAULT))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn wrong_password_is_refused() {
        let (bytes, _) = packed();
        let dest = tempfile::tempdir().unwrap();
        let e = unpack(bytes.as_slice(), "not it", &dest.path().join("x")).unwrap_err();
        assert!(matches!(e, ArchiveError::WrongPassword), "{e}");
        assert!(!dest.path().join("x").exists(), "nothing unpacked");
    }

    #[test]
    fn altered_or_cut_files_are_refused() {
        let (bytes, _) = packed();
        let dest = tempfile::tempdir().unwrap();
        // A flipped byte in the payload, in the header, and at the end.
        for (i, at) in [bytes.len() / 2, 40, bytes.len() - 1]
            .into_iter()
            .enumerate()
        {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            let e = unpack(bad.as_slice(), PW, &dest.path().join(format!("f{i}"))).unwrap_err();
            assert!(
                matches!(e, ArchiveError::Damaged(_) | ArchiveError::WrongPassword),
                "flip at {at}: {e}"
            );
        }
        // Cut: in the middle, and just before the end (after the tar's last
        // entry: found only because the rest is read to the end).
        for (i, len) in [bytes.len() / 2, bytes.len() - 20].into_iter().enumerate() {
            let e = unpack(&bytes[..len], PW, &dest.path().join(format!("c{i}"))).unwrap_err();
            assert!(matches!(e, ArchiveError::Damaged(_)), "cut at {len}: {e}");
        }
        let e = unpack(&b"hello world, not age"[..], PW, &dest.path().join("n")).unwrap_err();
        assert!(matches!(e, ArchiveError::NotABackup(_)), "{e}");
    }

    /// Packs arbitrary tar entries (name, type, bytes) with age.
    fn raw_archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let stream = encryptor(PW).wrap_output(Vec::new()).unwrap();
        let mut tar = tar::Builder::new(stream);
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            // set_path refuses '..'; write the raw name as an attacker would.
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unexpected_entries_are_refused_and_nothing_escapes() {
        let m = serde_json::to_vec(&manifest(vec![])).unwrap();
        let dest = tempfile::tempdir().unwrap();
        for (i, (name, kind)) in [
            ("../escape", tar::EntryType::Regular),
            ("audit/../../escape", tar::EntryType::Regular),
            ("/etc/passwd", tar::EntryType::Regular),
            ("audit/notes.txt", tar::EntryType::Regular),
            ("vault.redb", tar::EntryType::Symlink),
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = raw_archive(&[(MANIFEST, tar::EntryType::Regular, &m), (name, kind, b"x")]);
            let to = dest.path().join(format!("d{i}"));
            let e = unpack(bytes.as_slice(), PW, &to).unwrap_err();
            assert!(matches!(e, ArchiveError::NotABackup(_)), "{name}: {e}");
        }
        assert!(!dest.path().join("escape").exists());
        // Twice the same entry.
        let bytes = raw_archive(&[
            (MANIFEST, tar::EntryType::Regular, &m),
            (VAULT, tar::EntryType::Regular, b"a"),
            (VAULT, tar::EntryType::Regular, b"b"),
        ]);
        let e = unpack(bytes.as_slice(), PW, &dest.path().join("twice")).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        // A manifest from the future, or listing files that are not there.
        let mut future = manifest(vec![]);
        future.version = VERSION + 1;
        let fj = serde_json::to_vec(&future).unwrap();
        let bytes = raw_archive(&[
            (MANIFEST, tar::EntryType::Regular, &fj),
            (VAULT, tar::EntryType::Regular, b"a"),
        ]);
        let e = unpack(bytes.as_slice(), PW, &dest.path().join("future")).unwrap_err();
        assert!(e.to_string().contains("newer secretctl"), "{e}");
        let lying = serde_json::to_vec(&manifest(vec!["audit/pending.jsonl".into()])).unwrap();
        let bytes = raw_archive(&[
            (MANIFEST, tar::EntryType::Regular, &lying),
            (VAULT, tar::EntryType::Regular, b"a"),
        ]);
        let e = unpack(bytes.as_slice(), PW, &dest.path().join("lying")).unwrap_err();
        assert!(matches!(e, ArchiveError::Damaged(_)), "{e}");
    }
}
