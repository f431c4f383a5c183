//! Restoring a backup (contract §10) in two steps, so that nothing is
//! touched until everything was checked:
//!
//! 1. [`stage`]: the backup is decrypted and unpacked into a private
//!    directory inside `SECRETCTL_HOME` (`.restore-*`, 0700, removed
//!    afterwards) and checked completely: the manifest, the vault file
//!    (redb's integrity check, the header, the counts), and — when the
//!    backup is protected by the master password, which then opens the
//!    backed-up vault — every record's seal and value, and the audit chain
//!    up to the backed-up vault's anchors. A backup with a separate
//!    password is checked the same way with the live data key when the
//!    session is unlocked and the backup is of the same vault; otherwise
//!    the data key is not known here: age has authenticated every byte,
//!    and seals and chain are checked at the next unlock.
//! 2. [`install`], on the audit writer's thread with the writer paused
//!    (`Audit::paused`), after the session was locked: the live vault is
//!    retired (no write can land in it any more), the staged vault takes
//!    over the live one's bookkeeping, and the files are swapped by
//!    renames within `SECRETCTL_HOME`. Nothing is deleted.
//!
//! The audit-log rule (the chain's MAC is keyed from the data key):
//! - **Same vault** — the backup has the live vault's id (so its data key:
//!   a password change keeps the key) and the live log holds the backup's
//!   anchor record: the live log is kept as it is (it is the longer one
//!   and tells what happened since the backup), and the restored vault
//!   takes over the live vault's audit anchor and pending head, so the
//!   log verifies against it with no false gap.
//! - **Another vault** (or a live log that does not contain the backup's
//!   history): the live `audit/` is renamed to
//!   `audit.before-restore-<time>/` and the backup's log is installed;
//!   the restored vault's own anchors match it.
//!
//! Either way the restore's own record is appended after the swap (to the
//! pending chain, since the vault is locked), and `audit verify` passes
//! after the next unlock. The live vault is kept as
//! `vault.redb.before-restore-<time>` (a hard link made before the new
//! file is renamed over `vault.redb`, so `vault.redb` always exists).
//!
//! Carried over from the live vault in either case: the unlock-failure
//! counter (the larger of the two, so a restore never resets the backoff)
//! and the registered agent hosts (a restore must not turn an agent host
//! into a user).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::{self, ArchiveError, Manifest, Protection};
use crate::audit::files::Files;
use crate::audit::pending::{self, PendingKey};
use crate::audit::record::AuditKey;
use crate::audit::verify;
use crate::keyring::DataKey;
use crate::store::{AuditAnchor, Failures, Store, StoreError};
use crate::vault::{Vault, VaultError};

/// Why a restore stops. Messages name files and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The backup decrypted, but what it holds is not a usable vault.
    #[error("the backup's vault {0}")]
    BadVault(String),
    /// The backup's audit log does not verify.
    #[error("the backup's audit log does not verify: {0}")]
    BadAudit(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |cause| RestoreError::Io { what, cause }
}

/// What the check found, for the answer.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub secret_count: u64,
    pub audit_records: u64,
    pub created_at: i64,
    /// Seals and the chain were checked (the master password opened the
    /// backed-up vault).
    pub deep: bool,
    /// Records whose seal or value failed, as (key, why).
    pub damaged: Vec<(String, String)>,
}

/// A backup unpacked and checked, waiting in its private directory.
pub struct Staged {
    dir: tempfile::TempDir,
    pub manifest: Manifest,
    pub report: Report,
    vault_id: Vec<u8>,
    anchor: Option<AuditAnchor>,
    failures: Failures,
}

impl Staged {
    fn vault_path(&self) -> PathBuf {
        self.dir.path().join("unpacked").join(archive::VAULT)
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("unpacked").join(archive::AUDIT)
    }
}

/// A private directory for a backup or restore inside `home` (same file
/// system as the vault, so the final renames are atomic); removed when
/// dropped.
pub fn work_dir(home: &Path, what: &str) -> Result<tempfile::TempDir, RestoreError> {
    tempfile::Builder::new()
        .prefix(&format!(".{what}-"))
        .tempdir_in(home)
        .map_err(io(format!(
            "cannot create a private directory in {}",
            home.display()
        )))
}

/// Unpacks the backup at `file` (inside `dir`, from [`work_dir`]) with
/// `password` and checks it completely. `live_key`: the live vault's id and
/// data key, when the session is unlocked (checks a backup protected by a
/// separate password of this vault completely too). Nothing outside `dir`
/// is touched.
pub fn stage(
    dir: tempfile::TempDir,
    file: &Path,
    password: &str,
    live_key: Option<(Vec<u8>, Arc<DataKey>)>,
) -> Result<Staged, RestoreError> {
    let input = File::open(file).map_err(io("cannot read the received backup"))?;
    let unpacked = dir.path().join("unpacked");
    let mut timer = Timer::new();
    let manifest = archive::unpack(input, password, &unpacked)?;
    timer.lap("decrypted and unpacked");
    let vault_path = unpacked.join(archive::VAULT);
    // An audit directory, even if the backup had no audit files.
    let audit_dir = unpacked.join(archive::AUDIT);
    if !audit_dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&audit_dir)
            .map_err(io(format!("cannot create {}", audit_dir.display())))?;
    }
    Store::check_file(&vault_path)
        .map_err(|e| RestoreError::BadVault(format!("is damaged: {e}")))?;
    let vault = Vault::open(&vault_path)
        .map_err(|e| RestoreError::BadVault(format!("does not open: {e}")))?
        .ok_or_else(|| RestoreError::BadVault("has no header: it was never initialized".into()))?;
    let header = vault.header();
    if header.format_version != crate::store::FORMAT_VERSION {
        return Err(RestoreError::BadVault(format!(
            "has format version {} and this secretctl reads {}",
            header.format_version,
            crate::store::FORMAT_VERSION
        )));
    }
    if archive::hex(vault.vault_id()) != manifest.vault_id {
        return Err(RestoreError::BadVault(
            "is not the vault its manifest names (another vault id)".into(),
        ));
    }
    if vault.count() != manifest.secret_count {
        return Err(RestoreError::BadVault(format!(
            "holds {} secrets, its manifest says {}",
            vault.count(),
            manifest.secret_count
        )));
    }
    vault
        .kdf()
        .validate()
        .map_err(|e| RestoreError::BadVault(format!("has an unusable header: {e}")))?;
    let store = vault.store();
    let anchor = store.audit_anchor()?;
    let pending_anchor = store.audit_pending()?;
    let failures = store.failures()?;
    let mut report = Report {
        secret_count: vault.count(),
        audit_records: manifest.audit_records,
        created_at: manifest.created_at,
        deep: false,
        damaged: Vec::new(),
    };
    // The data key, to check seals and the chain: the password that
    // encrypted the file was the vault's master password then, so it opens
    // the backed-up vault; a backup with a separate password of the live
    // vault is checked with the live key (an unlocked session; the same
    // vault id means the same data key, which a password change keeps).
    timer.lap("vault file checked and opened");
    let dk = match manifest.protection {
        Protection::MasterPassword => Some(Arc::new(
            vault
                .unwrap_with(password.as_bytes())
                .map_err(|e| RestoreError::BadVault(format!("cannot be opened: {e}")))?
                .ok_or_else(|| {
                    RestoreError::BadVault(
                        "does not open with the password that encrypted the backup".into(),
                    )
                })?,
        )),
        Protection::BackupPassword => live_key
            .filter(|(id, _)| id.as_slice() == vault.vault_id())
            .map(|(_, k)| k),
    };
    timer.lap("data key");
    if let Some(dk) = dk {
        report.damaged = vault.check_all(&dk).map_err(|e| match e {
            VaultError::Store(s) => RestoreError::Store(s),
            e => RestoreError::BadVault(e.to_string()),
        })?;
        timer.lap("every record checked");
        let files = Files::open(&audit_dir, crate::audit::DEFAULT_SEGMENT_BYTES)
            .map_err(io(format!("cannot open {}", audit_dir.display())))?;
        let walk = verify::walk(&files, &AuditKey::derive(&dk), anchor.as_ref());
        if let Some(e) = walk.error {
            return Err(RestoreError::BadAudit(e));
        }
        let checked = pending::check(
            files.pending_lines(),
            Some(&PendingKey::derive(&dk)),
            Some(&pending_anchor.clone().unwrap_or_default()),
        );
        if let Some(problem) = checked.problem {
            return Err(RestoreError::BadAudit(problem));
        }
        report.audit_records = walk.records.len() as u64 + checked.good.len() as u64;
        report.deep = true;
        timer.lap("audit chain checked");
    }
    let vault_id = vault.vault_id().to_vec();
    drop(vault); // closes the staged file: it is opened again to install it
    Ok(Staged {
        dir,
        manifest,
        report,
        vault_id,
        anchor,
        failures,
    })
}

mod install;
mod plan;

pub use install::install;
pub use plan::{AuditPlan, Plan, plan, stamp};

/// Debug-level timings of a backup's or restore's steps (no values).
pub struct Timer {
    start: std::time::Instant,
    last: std::time::Instant,
}

impl Timer {
    pub fn new() -> Timer {
        let now = std::time::Instant::now();
        Timer {
            start: now,
            last: now,
        }
    }

    /// Logs the time since the last lap.
    pub fn lap(&mut self, step: &str) {
        let now = std::time::Instant::now();
        tracing::debug!(
            step,
            ms = (now - self.last).as_millis() as u64,
            total_ms = (now - self.start).as_millis() as u64,
            "transfer timing"
        );
        self.last = now;
    }
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::new()
    }
}
