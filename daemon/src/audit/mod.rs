//! The audit log (contract §8): every action, one JSON line per record,
//! chained with HMAC-SHA256 so edits, insertions, reordering and deletions
//! (including of the newest records) are detected by `audit verify`.
//!
//! One writer thread owns the files, so the chain never forks however many
//! requests run at once. Callers hand it records and wait until they are on
//! disk: records are written in small batches, each batch fsynced once
//! (group commit), and the chain's head is then stored in the vault as the
//! anchor. While the vault is locked there is no audit key: records go to a
//! pending file at once (fsynced) and are sealed into the chain at the next
//! unlock.
//!
//! Invariant: records carry key names and commands, never values; callers
//! build them from metadata only.

pub mod files;
pub mod record;
pub mod verify;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use secretctl_proto::v1::{AuditListRequest, AuditPruneResponse, AuditVerifyResponse};
use tokio::sync::oneshot;

use crate::keyring::DataKey;
use crate::store::AuditAnchor;
use crate::vault::Vault;
use files::{Checkpoint, Files};
use record::{AuditKey, Peer, Record, now_ts, ts_ms, unhex};

/// Segment size before rotation, unless config.yaml says otherwise.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const MAX_BATCH: usize = 256;

enum Job {
    Event(Box<Record>, Option<oneshot::Sender<()>>),
    Key(Option<AuditKey>),
    Vault(Arc<Vault>),
    List(AuditListRequest, oneshot::Sender<Vec<String>>),
    Verify(oneshot::Sender<Option<AuditVerifyResponse>>),
    Prune(
        i64,
        Box<Record>,
        oneshot::Sender<Option<Result<AuditPruneResponse, String>>>,
    ),
}

/// Handle to the audit writer; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    tx: Sender<Job>,
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
    }
}

impl Audit {
    /// Starts the writer over `dir`.
    pub fn start(dir: &Path, segment_bytes: u64) -> std::io::Result<Audit> {
        let files = Files::open(dir, segment_bytes)?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || Writer::new(files).run(rx))?;
        Ok(Audit { tx })
    }

    /// Records an event and waits until it is on disk.
    pub async fn record(&self, rec: Record) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Event(Box::new(rec), Some(tx))).is_ok() {
            let _ = rx.await;
        }
    }

    /// Records an event without waiting (from sync code).
    pub fn record_nowait(&self, rec: Record) {
        let _ = self.tx.send(Job::Event(Box::new(rec), None));
    }

    /// The vault is unlocked: seal with a key derived from `dk` from now on,
    /// starting with the records written while locked.
    pub fn unlocked(&self, dk: &DataKey) {
        let _ = self.tx.send(Job::Key(Some(AuditKey::derive(dk))));
    }

    /// The vault is locked: forget the audit key.
    pub fn locked(&self) {
        let _ = self.tx.send(Job::Key(None));
    }

    /// The vault file is open (at start or after init): anchors go there.
    pub fn set_vault(&self, v: Arc<Vault>) {
        let _ = self.tx.send(Job::Vault(v));
    }

    /// Records matching the filter, oldest first.
    pub async fn list(&self, q: AuditListRequest) -> Vec<String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::List(q, tx));
        rx.await.unwrap_or_default()
    }

    /// Verifies the chain; `None` while locked (no key).
    pub async fn verify(&self) -> Option<AuditVerifyResponse> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Verify(tx));
        rx.await.ok().flatten()
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
}

struct Writer {
    files: Files,
    key: Option<AuditKey>,
    vault: Option<Arc<Vault>>,
    seq: u64,
    prev: Vec<u8>,
}

impl Writer {
    fn new(files: Files) -> Writer {
        let (seq, prev) = match files.last_sealed() {
            Some(r) => (
                r.seq.unwrap_or(0),
                r.mac.as_deref().and_then(unhex).unwrap_or_default(),
            ),
            None => match files.checkpoint() {
                Some(cp) => (cp.seq, unhex(&cp.mac).unwrap_or_default()),
                None => (0, Vec::new()),
            },
        };
        Writer {
            files,
            key: None,
            vault: None,
            seq,
            prev,
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            match job {
                Job::Event(rec, ack) => {
                    let mut batch = vec![*rec];
                    let mut acks: Vec<oneshot::Sender<()>> = ack.into_iter().collect();
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Job::Event(r, a)) => {
                                batch.push(*r);
                                acks.extend(a);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write(batch);
                    for a in acks {
                        let _ = a.send(());
                    }
                }
                Job::Key(Some(k)) => {
                    self.key = Some(k);
                    let pending = self.files.pending();
                    if !pending.is_empty() {
                        self.write(pending);
                        if let Err(e) = self.files.clear_pending() {
                            tracing::error!(error = %e, "cannot clear the audit pending file");
                        }
                    }
                }
                Job::Key(None) => self.key = None,
                Job::Vault(v) => self.vault = Some(v),
                Job::List(q, tx) => {
                    let _ = tx.send(self.list(&q));
                }
                Job::Verify(tx) => {
                    let resp = self.key.as_ref().map(|k| {
                        let anchor = self.anchor();
                        match verify::verify(&self.files, k, anchor.as_ref()) {
                            Ok(v) => AuditVerifyResponse {
                                ok: true,
                                records: v.records,
                                error: String::new(),
                                last_seq: v.last_seq,
                            },
                            Err(e) => AuditVerifyResponse {
                                ok: false,
                                error: e,
                                ..Default::default()
                            },
                        }
                    });
                    let _ = tx.send(resp);
                }
                Job::Prune(before, rec, tx) => {
                    let r = self.key.is_some().then(|| self.prune(before, *rec));
                    let _ = tx.send(r);
                }
            }
        }
    }

    fn anchor(&self) -> Option<AuditAnchor> {
        self.vault
            .as_ref()
            .and_then(|v| v.store().audit_anchor().ok().flatten())
    }

    /// Seals and appends (or, while locked, parks) a batch; one fsync.
    fn write(&mut self, mut batch: Vec<Record>) {
        let Some(key) = &self.key else {
            for r in &mut batch {
                r.sealed = Some(false);
            }
            if let Err(e) = self.files.append_pending(&batch) {
                tracing::error!(error = %e, "cannot write the audit pending file");
            }
            return;
        };
        let (seq0, prev0) = (self.seq, self.prev.clone());
        for r in &mut batch {
            self.seq += 1;
            let mac = r.seal(key, self.seq, &self.prev);
            self.prev = mac.to_vec();
        }
        if let Err(e) = self.files.append_sealed(&batch) {
            tracing::error!(error = %e, "cannot write the audit log");
            (self.seq, self.prev) = (seq0, prev0);
            return;
        }
        if let Some(v) = &self.vault {
            let a = AuditAnchor {
                seq: self.seq,
                mac: self.prev.clone(),
            };
            if let Err(e) = v.store().set_audit_anchor(&a) {
                tracing::error!(error = %e, "cannot store the audit anchor");
            }
        }
    }

    fn list(&self, q: &AuditListRequest) -> Vec<String> {
        let sealed = self
            .files
            .sealed_lines()
            .into_iter()
            .filter_map(|l| l.parsed.ok());
        let all = sealed.chain(self.files.pending());
        let mut out: Vec<String> = all
            .filter(|r| {
                let ms = ts_ms(&r.ts).unwrap_or(0);
                (q.since_ms == 0 || ms >= q.since_ms)
                    && (q.until_ms == 0 || ms < q.until_ms)
                    && (q.action.is_empty() || r.action == q.action)
                    && (q.source.is_empty() || r.source == q.source)
                    && (q.key.is_empty() || r.keys.contains(&q.key))
            })
            .map(|r| String::from_utf8_lossy(&r.line()).trim_end().to_string())
            .collect();
        if q.limit > 0 && out.len() > q.limit as usize {
            out.drain(..out.len() - q.limit as usize);
        }
        out
    }

    /// Prunes records older than `before_ms`; `rec` is the prune's own
    /// record (its action, caller and peer), completed here.
    fn prune(&mut self, before_ms: i64, mut rec: Record) -> Result<AuditPruneResponse, String> {
        let key = self.key.as_ref().ok_or("vault is locked")?;
        verify::verify(&self.files, key, self.anchor().as_ref())
            .map_err(|e| format!("the log does not verify, so nothing was pruned: {e}"))?;
        let records: Vec<Record> = self
            .files
            .sealed_lines()
            .into_iter()
            .filter_map(|l| l.parsed.ok())
            .collect();
        let cut = records
            .iter()
            .position(|r| ts_ms(&r.ts).unwrap_or(0) >= before_ms)
            .unwrap_or(records.len());
        let detail = rec.detail.get_or_insert_with(|| serde_json::json!({}));
        detail["before_ms"] = serde_json::json!(before_ms);
        detail["pruned"] = serde_json::json!(cut);
        if cut > 0 {
            let last = &records[cut - 1];
            let mac = last.mac.clone().unwrap_or_default();
            let seq = last.seq.unwrap_or(0);
            let cp = Checkpoint {
                seq,
                check: verify::checkpoint_check(key, seq, &mac),
                mac,
            };
            self.files
                .rewrite(&records[cut..], &cp)
                .map_err(|e| format!("cannot rewrite the log: {e}"))?;
        }
        let remaining = (records.len() - cut) as u64;
        self.write(vec![rec]);
        Ok(AuditPruneResponse {
            pruned: cut as u64,
            remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(action: &str) -> Record {
        event(action, "cli", daemon_peer())
    }

    #[test]
    fn pending_records_are_sealed_at_unlock_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path(), 300).unwrap();
        let mut w = Writer::new(files);
        w.write(vec![rec("unlock_failed")]);
        assert_eq!(w.files.pending().len(), 1);
        let dk = DataKey::generate().unwrap();
        w.key = Some(AuditKey::derive(&dk));
        let pending = w.files.pending();
        w.write(pending);
        w.files.clear_pending().unwrap();
        for i in 0..10 {
            w.write(vec![rec(&format!("get{i}"))]);
        }
        assert!(w.files.segments().len() > 1, "small segments rotate");
        let v = verify::verify(&w.files, w.key.as_ref().unwrap(), None).unwrap();
        assert_eq!(
            v,
            verify::Verified {
                records: 11,
                last_seq: 11
            }
        );
    }
}
