//! Reading a backup: decryption, the tar entries a backup may hold, and the
//! manifest checked against what was unpacked (see the parent module's
//! invariants).

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use age::secrecy::SecretString;

use super::{
    AGE_MAGIC, AUDIT, ArchiveError, FORMAT, MANIFEST, MAX_AUDIT_FILE_BYTES, MAX_BACKUP_BYTES,
    MAX_ENTRIES, MAX_MANIFEST_BYTES, Manifest, VAULT, VERSION, io,
};
use crate::audit::files::Files;

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
