//! The audit log (contract §8): every action, one JSON line per record,
//! chained with HMAC-SHA256 so edits, insertions, reordering and deletions
//! (including of the newest records) are detected by `audit verify`.
//!
//! One writer thread (`writer`) owns the files, so the chain never forks
//! however many requests run at once. Callers hand it records and wait
//! until they are on disk: records are written in small batches, each batch
//! fsynced once (group commit), and the chain's head is then stored in the
//! vault as the anchor. While the vault is locked records go to a pending
//! file, linked and anchored (`pending`), and are sealed at the next unlock.
//!
//! | module | owns |
//! |---|---|
//! | `record` | the record format, its MAC and size caps |
//! | `files` | segment, pending and checkpoint files; undoing failed appends; torn tails |
//! | `pending` | the chain of records written while locked |
//! | `writer` | the writer thread: sealing, anchors, gaps, health |
//! | `verify` | walking the chain |
//!
//! Invariants:
//! - Records carry key names and commands, never values; callers build them
//!   from metadata only.
//! - **Fail closed**: [`Audit::record`] says whether the record is durable;
//!   callers refuse what they cannot record. After a failed write the log is
//!   unhealthy until a write succeeds again ([`Audit::ensure_writable`]),
//!   and a dead writer never becomes healthy.
//! - The log never silently restarts: at startup and at each unlock the
//!   chain on disk must reach the vault's anchor; if it does not, an
//!   `audit_gap` record says what was expected and what was found, and
//!   verify fails until the user acknowledges it.

pub mod files;
pub mod pending;
pub mod record;
pub mod verify;
mod writer;

pub use writer::Paused;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use secretctl_proto::v1::{AuditListRequest, AuditPruneResponse, AuditVerifyResponse};
use tokio::sync::oneshot;

use crate::keyring::DataKey;
use crate::vault::Vault;
use files::Files;
use record::{Peer, Record, now_ts};

/// Segment size before rotation, unless config.yaml says otherwise.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Why a record could not be made durable; the action it belonged to must
/// not happen (or must not be answered as if it had been recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the audit log cannot be written ({0}): refusing the action; free disk space or fix the audit directory's permissions, then retry"
)]
pub struct AuditError(pub String);

type Ack<T> = oneshot::Sender<T>;

enum Job {
    Event(Box<Record>, Option<Ack<Result<(), String>>>),
    Unlocked(Box<(record::AuditKey, pending::PendingKey)>),
    Locked,
    Vault(Arc<Vault>),
    List(AuditListRequest, Ack<Result<(Vec<String>, String), String>>),
    Verify(Ack<Option<AuditVerifyResponse>>),
    Prune(
        i64,
        Box<Record>,
        Ack<Option<Result<AuditPruneResponse, String>>>,
    ),
    Acknowledge(Box<Record>, Ack<Result<Vec<u64>, String>>),
    Resume(Ack<Result<(), String>>),
    Paused(Box<dyn FnOnce(&mut writer::Writer) + Send>),
    Snapshot(Ack<Result<Arc<Snapshot>, String>>),
    ForgetSnapshot,
    Close(Ack<()>),
}

/// The verified records, for the web UI (which filters, pages and charts
/// them itself). Built by one full walk; from then on the writer appends
/// the records it seals itself, so a page does not re-verify 100k records
/// each time. Any other change (prune, acknowledge, lock, a write failure,
/// a chain that did not verify) drops it, and the next ask walks again.
/// Exists only once asked for, and is dropped when the UI stops.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Oldest first. Each behind its own `Arc`: when a page still holds
    /// the snapshot as the writer appends, the copy made is of pointers.
    pub records: Vec<Arc<Record>>,
    /// Why the walk stopped before the end (the first broken place).
    pub error: Option<String>,
    pub last_seq: u64,
    /// When the full walk ran (Unix ms).
    pub walked_at_ms: i64,
}

/// Handle to the audit writer; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    tx: Sender<Job>,
    healthy: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// The daemon's own identity, for events no client caused (idle lock).
pub fn daemon_peer() -> Peer {
    let pid = std::process::id() as i32;
    Peer {
        pid: Some(pid),
        uid: nix::unistd::geteuid().as_raw(),
        exe: std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string()),
    }
}

/// A peer from its credentials; the executable is read from /proc.
pub fn peer(pid: Option<i32>, uid: u32) -> Peer {
    Peer {
        pid,
        uid,
        exe: pid
            .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
            .map(|p| p.display().to_string()),
    }
}

/// A new record for `action` by `peer` from `source` ("cli" or "mcp").
pub fn event(action: &str, source: &str, peer: Peer) -> Record {
    Record {
        seq: None,
        ts: now_ts(),
        action: action.into(),
        source: source.into(),
        caller: None,
        peer,
        keys: Vec::new(),
        command: None,
        success: true,
        error: None,
        detail: None,
        prev: None,
        mac: None,
        sealed: None,
        pmac: None,
        pauth: None,
    }
}

const STOPPED: &str = "the audit writer has stopped";

impl Audit {
    /// Starts the writer over `dir` (repairing a torn tail, completing an
    /// interrupted prune).
    pub fn start(dir: &Path, segment_bytes: u64) -> std::io::Result<Audit> {
        let files = Files::open(dir, segment_bytes)?;
        let (tx, rx) = channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let syncs = Arc::new(AtomicU64::new(0));
        let w = writer::Writer::new(files, healthy.clone(), syncs.clone());
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || w.run(rx))?;
        Ok(Audit {
            tx,
            healthy,
            syncs,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Records an event and waits until it is on disk.
    pub async fn record(&self, rec: Record) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Event(Box::new(rec), Some(tx)))
            .map_err(|_| AuditError(STOPPED.into()))?;
        rx.await
            .map_err(|_| AuditError(STOPPED.into()))?
            .map_err(AuditError)
    }

    /// Records an event without waiting (from sync code, for events whose
    /// outcome nobody waits for: a lock, the end of a run).
    pub fn record_nowait(&self, rec: Record) {
        let _ = self.tx.send(Job::Event(Box::new(rec), None));
    }

    /// Batches made durable so far (one fsync each): with the records
    /// written, how well group commit works (the audit bench prints it).
    pub fn batches_written(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Whether the last write succeeded (and the writer lives).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Ok when records can be made durable. After a failure, tries to write
    /// an `audit_write_resumed` record: the log heals when that succeeds.
    pub async fn ensure_writable(&self) -> Result<(), AuditError> {
        if self.is_healthy() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Resume(tx))
            .map_err(|_| AuditError(STOPPED.into()))?;
        rx.await
            .map_err(|_| AuditError(STOPPED.into()))?
            .map_err(AuditError)
    }

    /// The vault is unlocked: seal with keys derived from `dk` from now on,
    /// starting with the records written while locked (checked first).
    pub fn unlocked(&self, dk: &DataKey) {
        let _ = self.tx.send(Job::Unlocked(Box::new(pending::keys(dk))));
    }

    /// The vault is locked: forget the audit key (the pending key stays).
    pub fn locked(&self) {
        let _ = self.tx.send(Job::Locked);
    }

    /// The vault file is open (at start or after init): anchors go there,
    /// and the log on disk is checked against its anchor.
    pub fn set_vault(&self, v: Arc<Vault>) {
        let _ = self.tx.send(Job::Vault(v));
    }

    /// Verified records matching the filter, oldest first, and why the walk
    /// stopped early ("" if it did not). Fails while locked (nothing can be
    /// verified without the key).
    pub async fn list(&self, q: AuditListRequest) -> Result<(Vec<String>, String), String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::List(q, tx));
        rx.await.unwrap_or_else(|_| Err(STOPPED.into()))
    }

    /// Verifies the chain; `None` while locked (no key).
    pub async fn verify(&self) -> Option<AuditVerifyResponse> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Verify(tx));
        rx.await.ok().flatten()
    }

    /// The verified records (see [`Snapshot`]); fails while locked.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Snapshot(tx));
        rx.await.unwrap_or_else(|_| Err(STOPPED.into()))
    }

    /// Drops the snapshot (the web UI stopped): its memory is freed.
    pub fn forget_snapshot(&self) {
        let _ = self.tx.send(Job::ForgetSnapshot);
    }

    /// Removes records older than `before_ms`; `None` while locked.
    pub async fn prune(
        &self,
        before_ms: i64,
        rec: Record,
    ) -> Option<Result<AuditPruneResponse, String>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Prune(before_ms, Box::new(rec), tx));
        rx.await.ok().flatten()
    }

    /// Acknowledges every recorded gap (`rec`: the acknowledgement's own
    /// record, repeated per gap); returns their seqs.
    pub async fn acknowledge(&self, rec: Record) -> Result<Vec<u64>, String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Acknowledge(Box::new(rec), tx));
        rx.await.unwrap_or_else(|_| Err(STOPPED.into()))
    }

    /// Runs `f` on the writer thread with the writer paused: no record is
    /// written, no anchor stored, while `f` runs (requests that record
    /// something wait). Backups take their snapshot this way, and restores
    /// swap the vault and the log. Records queued before are on disk when
    /// `f` starts.
    pub async fn paused<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Paused<'_>) -> T + Send + 'static,
    ) -> Result<T, AuditError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Paused(Box::new(move |w: &mut writer::Writer| {
            let _ = tx.send(f(&mut Paused::new(w)));
        }));
        self.tx.send(job).map_err(|_| AuditError(STOPPED.into()))?;
        rx.await.map_err(|_| AuditError(STOPPED.into()))
    }

    /// Writes everything queued, stops the writer and waits for its thread:
    /// after this returns, every record sent before is on disk.
    pub fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Close(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        let handle = self
            .thread
            .lock()
            .expect("no code panics holding the thread handle")
            .take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

#[cfg(test)]
mod tests;
