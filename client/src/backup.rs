//! `secretctl backup` and `restore` (contract §10). The daemon does the
//! work (the snapshot, age encryption, every check, the swap); this side
//! reads the passwords, streams the file, and writes a backup file safely:
//!
//! - refused before anything is asked if FILE is a symlink, a directory,
//!   or exists without `--force`;
//! - written to a new temp file in FILE's directory (`O_EXCL`,
//!   `O_NOFOLLOW`, mode 0600), fsynced, then put in place by a hard link
//!   (which fails if FILE appeared meanwhile: `O_EXCL` semantics) or, with
//!   `--force`, a rename (which replaces a symlink itself, never its
//!   target); the directory is fsynced. A failed or interrupted backup
//!   leaves no FILE and no temp file.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secretctl_proto::v1::{BackupRequest, RestoreChunk, StatusResponse, VaultState};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use zeroize::Zeroizing;

use crate::cli::{BackupArgs, RestoreArgs};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::password;

/// Pieces of the backup file sent to the daemon.
const CHUNK: usize = 1 << 20;
/// Largest backup file `restore` sends (the daemon's limit too).
const MAX_BACKUP_BYTES: u64 = 4 << 30;
/// Shortest separate backup password.
const MIN_BACKUP_PASSWORD: usize = 8;

/// Where a backup goes, checked before anything is asked.
struct Target {
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
}

impl Target {
    fn check(path: &Path, force: bool) -> Result<Target> {
        let name = path
            .file_name()
            .ok_or_else(|| CliError::usage(format!("'{}' does not name a file", path.display())))?
            .to_os_string();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(CliError::error(format!(
                    "{} is a symlink: refusing to write a backup through it",
                    path.display()
                ))
                .hint("remove the link or choose another file name")
                .into());
            }
            Ok(m) if m.is_dir() => {
                return Err(
                    CliError::usage(format!("{} is a directory", path.display()))
                        .hint("give the backup file's name, e.g. -o DIR/secretctl-backup.age")
                        .into(),
                );
            }
            Ok(_) if !force => {
                return Err(
                    CliError::error(format!("{} already exists", path.display()))
                        .hint("choose another name, or add --force to replace it")
                        .into(),
                );
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", path.display()));
            }
        }
        if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(
                CliError::error(format!("directory {} does not exist", dir.display())).into(),
            );
        }
        Ok(Target {
            path: path.to_path_buf(),
            dir,
            name,
        })
    }

    /// A new private temp file next to the target.
    fn temp(&self) -> Result<TempFile> {
        for _ in 0..16 {
            let mut rnd = [0u8; 6];
            getrandom::fill(&mut rnd)
                .map_err(|e| CliError::error(format!("cannot get random bytes: {e}")))?;
            let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
            let mut name = OsString::from(".");
            name.push(&self.name);
            name.push(format!(".tmp-{suffix}"));
            let path = self.dir.join(name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary file in {}", self.dir.display())
                    });
                }
            }
        }
        Err(CliError::error("cannot find a free temporary file name").into())
    }
}

/// The backup being written; removed when dropped unless put in place.
struct TempFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl TempFile {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .as_mut()
            .expect("open until placed")
            .write_all(data)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Syncs the file and puts it at `t`; see the module's rules.
    fn place(mut self, t: &Target, force: bool) -> Result<()> {
        let file = self.file.take().expect("open until placed");
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        drop(file);
        if force {
            std::fs::rename(&self.path, &t.path)
                .with_context(|| format!("cannot put the backup at {}", t.path.display()))?;
        } else {
            match std::fs::hard_link(&self.path, &t.path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(CliError::error(format!(
                        "{} appeared while the backup was written",
                        t.path.display()
                    ))
                    .hint("choose another name, or add --force to replace it")
                    .into());
                }
                // File systems without hard links (FAT): a rename after a
                // fresh check.
                Err(_) if std::fs::symlink_metadata(&t.path).is_err() => {
                    std::fs::rename(&self.path, &t.path).with_context(|| {
                        format!("cannot put the backup at {}", t.path.display())
                    })?;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot put the backup at {}", t.path.display()));
                }
            }
        }
        // Placed: nothing left to remove.
        self.path = PathBuf::new();
        if let Ok(d) = std::fs::File::open(&t.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_agent(st: &StatusResponse) -> bool {
    crate::reauth::is_agent(st)
}

fn require_vault(st: &StatusResponse) -> Result<()> {
    if st.state == VaultState::Uninitialized as i32 {
        return Err(CliError::error("the vault is not initialized")
            .hint("run 'secretctl init'")
            .into());
    }
    Ok(())
}

/// A new password asked twice on the terminal (for an agent's process
/// only the terminal counts).
fn prompt_twice(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let first = password::prompt_hidden(&format!("{label}: "))?;
    if first.is_empty() {
        return Err(CliError::usage("the password is empty").into());
    }
    let again = password::prompt_hidden(&format!("Repeat {}: ", label.to_lowercase()))?;
    if *first != *again {
        return Err(CliError::usage("the passwords do not match").into());
    }
    Ok(first)
}

/// The separate password of a new backup: `SECRETCTL_BACKUP_PASSWORD`, or
/// a prompt asked twice; at least 8 characters, a warning when weak.
fn new_backup_password(agent: bool) -> Result<Zeroizing<Vec<u8>>> {
    let env = std::env::var_os("SECRETCTL_BACKUP_PASSWORD").filter(|v| !v.is_empty());
    let pw = match env {
        Some(v) if !agent => Zeroizing::new(v.into_encoded_bytes()),
        _ if agent || password::interactive() => prompt_twice("Backup password")?,
        _ => {
            return Err(CliError::usage("no backup password given")
                .hint("run in a terminal, or set SECRETCTL_BACKUP_PASSWORD")
                .into());
        }
    };
    let text = String::from_utf8_lossy(&pw);
    let chars = text.chars().count();
    if chars < MIN_BACKUP_PASSWORD {
        return Err(CliError::usage(format!(
            "the backup password has {chars} characters: use at least {MIN_BACKUP_PASSWORD}"
        ))
        .hint("a passphrase of four or more random words is strong and easy to type")
        .into());
    }
    let estimate = zxcvbn::zxcvbn(&text, &["secretctl"]);
    if (estimate.score() as u8) < password::WARN_BELOW_SCORE {
        eprintln!(
            "warning: this backup password is weak (strength {} of 4): anyone with the backup file can try to guess it offline",
            estimate.score() as u8
        );
    }
    Ok(pw)
}

pub async fn backup(a: BackupArgs, json_out: bool) -> Result<()> {
    // Refused before any password is asked.
    let target = Target::check(&a.output, a.force)?;
    let (client, st) = connect::connect().await?;
    require_vault(&st)?;
    let agent = is_agent(&st);
    let consent =
        crate::reauth::consent_password(&client, &st, "write a backup of the whole vault").await?;
    let (mut pw, mut backup_pw) = match (consent, agent) {
        (Some(pw), _) => {
            let b = if a.backup_password {
                new_backup_password(true)?
            } else {
                Zeroizing::default()
            };
            (pw, b)
        }
        // An agent's process without a terminal: the daemon refuses (exit
        // 5) and records the refusal.
        (None, true) => (Zeroizing::default(), Zeroizing::default()),
        (None, false) => {
            let pw = password::master_password(a.password_stdin, false, None)?;
            let b = if a.backup_password {
                new_backup_password(false)?
            } else {
                Zeroizing::default()
            };
            (pw, b)
        }
    };
    let req = BackupRequest {
        password: std::mem::take(&mut *pw),
        backup_password: std::mem::take(&mut *backup_pw),
        file_name: target.name.to_string_lossy().into_owned(),
    };
    drop((pw, backup_pw));
    let mut stream = client
        .transfer()
        .backup(req)
        .await
        .map_err(|s| client.classify(s))
        .context("cannot back up the vault")?
        .into_inner();
    let mut tmp = target.temp()?;
    let mut summary = None;
    let mut bytes = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                if summary.is_none() {
                    summary = Some((
                        chunk.secret_count,
                        chunk.audit_records,
                        chunk.created_at,
                        chunk.protection.clone(),
                    ));
                }
                bytes += chunk.data.len() as u64;
                tmp.write(&chunk.data)?;
            }
            Ok(None) => break,
            Err(s) => {
                return Err(client.classify(s)).context("cannot back up the vault");
            }
        }
    }
    let (secrets, records, created_at, protection) = summary
        .ok_or_else(|| CliError::error("the daemon sent an empty backup"))
        .context("cannot back up the vault")?;
    tmp.place(&target, a.force)?;
    let shown = target.path.display();
    if json_out {
        print_json(&json!({
            "file": shown.to_string(),
            "bytes": bytes,
            "secret_count": secrets,
            "audit_records": records,
            "created_at": secretctl_proto::duration::rfc3339(created_at),
            "protection": protection,
        }))?;
    } else {
        outln!(
            "backup written to {shown}: {secrets} secrets, {records} audit records, {bytes} bytes, protected by {}",
            if protection == "backup-password" {
                "the separate backup password"
            } else {
                "the master password"
            }
        );
        eprintln!(
            "keep that password: without it the backup cannot be opened (restore with 'secretctl restore {shown}')"
        );
    }
    Ok(())
}

/// The password of a backup to restore: with `--backup-password`,
/// `--password-stdin`, `SECRETCTL_BACKUP_PASSWORD` or a prompt; otherwise
/// the master password the vault had when the backup was taken, from
/// `--password-stdin`, `SECRETCTL_PASSWORD` or a prompt.
fn restore_password(separate: bool, from_stdin: bool) -> Result<Zeroizing<Vec<u8>>> {
    if !separate {
        return password::master_password(from_stdin, false, None);
    }
    let pw = if from_stdin {
        password::read_stdin_value().context("cannot read the password")?
    } else if let Some(v) = std::env::var_os("SECRETCTL_BACKUP_PASSWORD").filter(|v| !v.is_empty())
    {
        Zeroizing::new(v.into_encoded_bytes())
    } else if password::interactive() {
        password::prompt_hidden("Backup password: ")?
    } else {
        return Err(CliError::usage("no backup password given")
            .hint("run in a terminal, pipe it with --password-stdin, or set SECRETCTL_BACKUP_PASSWORD")
            .into());
    };
    if pw.is_empty() {
        return Err(CliError::usage("the password is empty").into());
    }
    Ok(pw)
}

pub async fn restore(a: RestoreArgs, json_out: bool) -> Result<()> {
    let shown = a.file.display().to_string();
    let mut file = tokio::fs::File::open(&a.file)
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    let meta = file
        .metadata()
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!("{shown} is not a file")).into());
    }
    if meta.len() > MAX_BACKUP_BYTES {
        return Err(CliError::usage(format!(
            "{shown} is larger than {} GiB: not a secretctl backup",
            MAX_BACKUP_BYTES >> 30
        ))
        .into());
    }
    let (client, st) = connect::connect().await?;
    let agent = is_agent(&st);
    let consent =
        crate::reauth::consent_password(&client, &st, "restore the vault from a backup").await?;
    let mut pw = match (consent, agent) {
        (Some(_), _) => password::prompt_hidden("Password of the backup: ")?,
        (None, true) => Zeroizing::default(),
        (None, false) => restore_password(a.backup_password, a.password_stdin)?,
    };
    let mut first_data = vec![0u8; CHUNK];
    let n = read_full(&mut file, &mut first_data)
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    first_data.truncate(n);
    let (tx, rx) = mpsc::channel::<RestoreChunk>(4);
    let first = RestoreChunk {
        password: std::mem::take(&mut *pw),
        verify_only: a.verify_only,
        dry_run: a.dry_run,
        data: first_data,
        file_name: a
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    drop(pw);
    tx.send(first).await.expect("the receiver is still here");
    let reader = tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut file, &mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(n);
            let mut chunk = RestoreChunk::default();
            chunk.data = buf;
            if tx.send(chunk).await.is_err() {
                return Ok(()); // the daemon answered early (a refusal)
            }
        }
    });
    let what = if a.verify_only {
        "cannot verify the backup"
    } else if a.dry_run {
        "cannot check the backup"
    } else {
        "cannot restore the backup"
    };
    let answer = client.transfer().restore(ReceiverStream::new(rx)).await;
    let read = reader.await;
    let resp = answer
        .map_err(|s| client.classify(s))
        .context(what)?
        .into_inner();
    match read {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e).with_context(|| format!("cannot read {shown}")),
        Err(e) => {
            return Err(anyhow::anyhow!("{e}")).with_context(|| format!("cannot read {shown}"));
        }
    }
    let taken = secretctl_proto::duration::rfc3339(resp.created_at);
    if json_out {
        return print_json(&json!({
            "file": shown,
            "verify_only": a.verify_only,
            "dry_run": a.dry_run,
            "changed": resp.changed,
            "secret_count": resp.secret_count,
            "audit_records": resp.audit_records,
            "created_at": taken,
            "previous_vault": (!resp.previous_vault.is_empty()).then_some(&resp.previous_vault),
            "deep_checked": resp.deep_checked,
            "damaged": resp.damaged,
            "notes": resp.notes,
        }));
    }
    let head = if a.verify_only {
        format!(
            "backup OK: {shown}, taken {taken}: {} secrets, {} audit records",
            resp.secret_count, resp.audit_records
        )
    } else if a.dry_run {
        format!(
            "dry run: {shown} (taken {taken}) checks out; nothing was changed. A restore would do this:"
        )
    } else {
        format!(
            "restored {shown} (taken {taken}): {} secrets",
            resp.secret_count
        )
    };
    outln!("{head}");
    for note in &resp.notes {
        outln!("  - {}", secretctl_proto::text::escape(note));
    }
    for d in &resp.damaged {
        eprintln!(
            "warning: damaged in the backup: {}",
            secretctl_proto::text::escape(d)
        );
    }
    if resp.changed {
        eprintln!("next: secretctl unlock (with the master password the vault had on {taken})");
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = file.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}
