//! `Backup` (contract §10). A reveal (§9): agents are refused unless their
//! connection re-authenticated.
//!
//! 1. The master password is checked like an unlock (failures counted,
//!    backoff enforced), whether the vault is locked or not.
//! 2. One consistent snapshot with the audit writer paused: the audit
//!    files are copied and a redb read transaction is begun, so the
//!    vault's audit anchor and the copied log's last record are the same
//!    record (no audit write, and so no anchor update, can come between).
//!    The read transaction is then copied into a fresh vault file outside
//!    the pause (see `Snapshot::write_to`: a committed state, never a
//!    file copied while redb writes it).
//! 3. The copy is packed (`archive`) in a private directory inside
//!    `SECRETCTL_HOME`, encrypted with age to the master password or the
//!    separate backup password, and streamed to the client in 1 MiB
//!    pieces; the directory is removed after.
//! 4. The backup's own record is written after the snapshot (it is not in
//!    the backup). The last piece of the file is sent only once that
//!    record is on disk: without it the file does not decrypt (fail
//!    closed), and the CLI keeps nothing.

use std::io::Write;
use std::sync::Arc;

use secretctl_proto::v1::{BackupChunk, BackupRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::Outbound;
use crate::archive::{self, ArchiveError, Manifest, Protection};
use crate::caller::{Action, Conn};
use crate::service::{blocking, event, gate, outcome};
use crate::session::Session;

/// Size of the pieces streamed to the client.
const CHUNK: usize = 1 << 20;

/// A file name from the client, for the audit record: its last component
/// only, escaped and cut.
pub fn file_label(name: &str) -> String {
    let base = std::path::Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    secretctl_proto::text::shown(&base)
}

/// A password as the text age needs (its passphrases are strings).
pub fn passphrase(pw: Zeroizing<Vec<u8>>, what: &str) -> Result<Zeroizing<String>, Status> {
    let mut pw = pw;
    match String::from_utf8(std::mem::take(&mut *pw)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Err(Status::invalid_argument(format!(
                "the {what} is not UTF-8 text, which a backup's password must be (it is an age passphrase): use --backup-password with a text password"
            )))
        }
    }
}

pub(super) fn archive_status(e: ArchiveError) -> Status {
    let msg = e.to_string();
    match e {
        ArchiveError::WrongPassword => Status::unauthenticated(msg),
        ArchiveError::Damaged(_) => Status::data_loss(msg),
        // Not a usage error: the file is at fault (exit 1).
        ArchiveError::NotABackup(_) | ArchiveError::TooLarge(_) => Status::failed_precondition(msg),
        ArchiveError::Io { .. } => {
            tracing::error!(error = %msg, "backup file I/O failed");
            Status::internal(msg)
        }
    }
}

/// Everything the stream needs once the snapshot is taken.
struct Prepared {
    dir: tempfile::TempDir,
    manifest: Manifest,
    passphrase: Zeroizing<String>,
}

pub async fn backup(
    session: &Arc<Session>,
    req: Request<BackupRequest>,
) -> Result<Response<Outbound<BackupChunk>>, Status> {
    let who = crate::service::conn_of(&req);
    let mut req = req.into_inner();
    let file = file_label(&req.file_name);
    let password = Zeroizing::new(std::mem::take(&mut req.password));
    let backup_password = Zeroizing::new(std::mem::take(&mut req.backup_password));
    let prepared = match gate(&session.audit, &who, Action::Reveal).await {
        Ok(()) => prepare(session, password, backup_password).await,
        Err(refused) => Err(refused),
    };
    let p = match prepared {
        Ok(p) => p,
        Err(status) => {
            let mut rec = record(&who, &file, None, 0);
            outcome(&mut rec, &Err::<(), _>(status.clone()));
            session.audit.record(rec).await?;
            return Err(status);
        }
    };
    let (tx, rx) = mpsc::channel::<Result<BackupChunk, Status>>(4);
    let first = BackupChunk {
        data: Vec::new(),
        secret_count: p.manifest.secret_count,
        audit_records: p.manifest.audit_records,
        created_at: p.manifest.created_at,
        protection: protection_name(p.manifest.protection).into(),
    };
    let session = session.clone();
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        let manifest = p.manifest.clone();
        let sender = tx.clone();
        let packed = tokio::task::spawn_blocking(move || {
            let Prepared {
                dir,
                manifest,
                passphrase,
            } = p;
            let out = ChunkWriter::new(sender);
            let mut timer = crate::restore::Timer::new();
            let result = archive::pack(out, &passphrase, &manifest, dir.path());
            timer.lap("encrypted and sent (scrypt included)");
            drop(dir); // the snapshot's files go as soon as they are packed
            result.map(ChunkWriter::into_tail)
        })
        .await;
        let result = match packed {
            Ok(Ok(tail)) => Ok(tail),
            Ok(Err(e)) => Err(archive_status(e)),
            Err(e) => Err(Status::internal(format!("backup worker failed: {e}"))),
        };
        let bytes = result.as_ref().map_or(0, |(_, n)| *n);
        let mut rec = record(&who, &file, Some(&manifest), bytes);
        outcome(&mut rec, &result);
        if let Err(e) = session.audit.record(rec).await {
            let _ = tx.send(Err(e.into())).await;
            return;
        }
        let _ = match result {
            Ok((tail, n)) => {
                tracing::info!(bytes = n, secrets = manifest.secret_count, "backup written");
                tx.send(Ok(BackupChunk {
                    data: tail,
                    ..Default::default()
                }))
                .await
            }
            Err(s) => tx.send(Err(s)).await,
        };
    });
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

fn protection_name(p: Protection) -> &'static str {
    match p {
        Protection::MasterPassword => "master-password",
        Protection::BackupPassword => "backup-password",
    }
}

/// The backup's audit record: the file's name and what it holds, never a
/// password.
fn record(
    who: &Conn,
    file: &str,
    m: Option<&Manifest>,
    bytes: u64,
) -> crate::audit::record::Record {
    let mut rec = event("backup", "cli", who);
    let detail = rec.detail.get_or_insert_with(|| serde_json::json!({}));
    detail["file"] = serde_json::json!(file);
    if let Some(m) = m {
        detail["protection"] = serde_json::json!(protection_name(m.protection));
        detail["secrets"] = serde_json::json!(m.secret_count);
        detail["audit_records"] = serde_json::json!(m.audit_records);
        detail["bytes"] = serde_json::json!(bytes);
    }
    rec
}

/// Checks the password and takes the snapshot.
async fn prepare(
    session: &Arc<Session>,
    password: Zeroizing<Vec<u8>>,
    backup_password: Zeroizing<Vec<u8>>,
) -> Result<Prepared, Status> {
    crate::service::daemon::check_password(&password)?;
    let protection = if backup_password.is_empty() {
        Protection::MasterPassword
    } else {
        crate::service::daemon::check_password(&backup_password)?;
        Protection::BackupPassword
    };
    let vault = session.vault()?;
    let passphrase = match protection {
        Protection::MasterPassword => {
            passphrase(Zeroizing::new(password.to_vec()), "master password")?
        }
        Protection::BackupPassword => passphrase(backup_password, "backup password")?,
    };
    let mut timer = crate::restore::Timer::new();
    {
        let _gate = session.unlock_gate.lock().await;
        let v = vault.clone();
        blocking(move || v.unlock(&password).map(drop).map_err(Status::from)).await?;
    }
    timer.lap("master password checked");
    let dir = crate::restore::work_dir(&session.paths.home, "backup")
        .map_err(|e| Status::internal(e.to_string()))?;
    let audit_dest = dir.path().join(archive::AUDIT);
    let (s, v) = (session.clone(), vault.clone());
    let (snapshot, audit_names, audit_records, created_at) = session
        .audit
        .paused(move |p| {
            // The vault checked above must still be the one in place (a
            // restore could have replaced it meanwhile).
            if !s.vault().is_ok_and(|now| Arc::ptr_eq(&now, &v)) {
                return Err(Status::failed_precondition(
                    "the vault was replaced while the backup started: run it again",
                ));
            }
            let created_at = crate::vault::now_secs();
            let snapshot = v
                .store()
                .snapshot()
                .map_err(|e| Status::internal(e.to_string()))?;
            let (names, records) = p
                .copy_to(&audit_dest)
                .map_err(|e| Status::internal(format!("cannot copy the audit log: {e}")))?;
            Ok((snapshot, names, records, created_at))
        })
        .await??;
    timer.lap("snapshot taken (audit files copied)");
    let vault_dest = dir.path().join(archive::VAULT);
    let secret_count = blocking(move || {
        snapshot
            .write_to(&vault_dest)
            .map_err(|e| Status::internal(e.to_string()))
    })
    .await?;
    timer.lap("vault copied out of the snapshot");
    let manifest = Manifest {
        format: archive::FORMAT.into(),
        version: archive::VERSION,
        created_at,
        created: secretctl_proto::duration::rfc3339(created_at),
        secretctl_version: secretctl_proto::VERSION.into(),
        vault_id: archive::hex(vault.vault_id()),
        secret_count,
        protection,
        audit_files: audit_names
            .into_iter()
            .map(|n| format!("{}/{n}", archive::AUDIT))
            .collect(),
        audit_records,
    };
    Ok(Prepared {
        dir,
        manifest,
        passphrase,
    })
}

/// Streams what is written to it in [`CHUNK`] pieces, keeping the last
/// bytes back ([`ChunkWriter::into_tail`]) so the caller decides whether
/// the file is completed.
struct ChunkWriter {
    tx: mpsc::Sender<Result<BackupChunk, Status>>,
    buf: Vec<u8>,
    total: u64,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Result<BackupChunk, Status>>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(2 * CHUNK),
            total: 0,
        }
    }

    /// The bytes not sent yet (never empty once anything was written), and
    /// the total length of the file.
    fn into_tail(self) -> (Vec<u8>, u64) {
        (self.buf, self.total)
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
        // Strictly more than a chunk: something always stays back.
        while self.buf.len() > CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let piece = std::mem::replace(&mut self.buf, rest);
            self.tx
                .blocking_send(Ok(BackupChunk {
                    data: piece,
                    ..Default::default()
                }))
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the client stopped reading the backup",
                    )
                })?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
