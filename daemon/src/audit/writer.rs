//! The writer thread: the only code that writes the audit directory.
//!
//! It seals records into the chain (or, while locked, links them into the
//! pending chain), stores the anchors in the vault, finds gaps between the
//! log on disk and the vault's anchor, and keeps the log's health: a failed
//! write is undone, reported to every caller of its batch, and leaves the
//! log unhealthy until a later write succeeds. Its own findings (a torn
//! tail cut at start, a gap, altered pending records, the end of an outage)
//! are records too, written before the next batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use secretctl_proto::v1::{AuditListRequest, AuditPruneResponse, AuditVerifyResponse};

use super::files::{Checkpoint, Files};
use super::pending::{self, Chain, PendingKey};
use super::record::{AuditKey, Record, hex, ts_ms, unhex};
use super::verify::{self, GAP, GAP_ACKNOWLEDGED};
use super::{Job, Snapshot, daemon_peer, event};
use crate::store::{AuditAnchor, PendingAnchor};
use crate::vault::Vault;

const MAX_BATCH: usize = 256;
/// Longest a batch waits for the callers of the last one to come back.
/// Well under one fsync (0.3–4 ms on the disks measured), so waiting
/// costs less than the fsync it saves; see [`gather`].
const LINGER: Duration = Duration::from_micros(150);

pub(super) struct Writer {
    files: Files,
    key: Option<AuditKey>,
    /// Kept after a lock: links records written while locked.
    pending_key: Option<PendingKey>,
    vault: Option<Arc<Vault>>,
    /// Head of the sealed chain.
    seq: u64,
    prev: Vec<u8>,
    /// Head of the pending chain, as on disk.
    chain: Chain,
    /// Pending records were written with no vault to anchor them in.
    unanchored: bool,
    healthy: Arc<AtomicBool>,
    /// Batches written (see [`super::Audit::batches_written`]).
    syncs: Arc<AtomicU64>,
    /// Why the last write failed.
    failure: Option<String>,
    /// The writer's own records, written ahead of the next batch.
    notes: Vec<Record>,
    /// The verified records, while the web UI wants them.
    snapshot: Option<Arc<Snapshot>>,
    /// Callers that waited on the last batch (see [`gather`]).
    last_waiters: usize,
    /// Which of the vault's anchors lags the log: it is stored after the
    /// batch's callers were answered (see [`Writer::commit_anchor`]).
    anchor_due: Option<Due>,
}

/// The anchor a write moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// The sealed chain's head ([`AuditAnchor`]).
    Sealed,
    /// The pending chain's head ([`PendingAnchor`]).
    Pending,
}

fn note(action: &str, error: String, detail: serde_json::Value) -> Record {
    let mut r = event(action, "cli", daemon_peer());
    r.success = false;
    r.error = Some(error);
    r.detail = Some(detail);
    r
}

impl Writer {
    pub(super) fn new(files: Files, healthy: Arc<AtomicBool>, syncs: Arc<AtomicU64>) -> Writer {
        let notes = files
            .repair_torn_tails()
            .into_iter()
            .map(|t| {
                note(
                    "audit_write_failed",
                    format!(
                        "{} ended in an incomplete line ({} bytes), left by a crash or a full disk; it was removed",
                        t.file, t.bytes
                    ),
                    serde_json::json!({"file": t.file, "bytes_cut": t.bytes}),
                )
            })
            .collect();
        let (seq, prev) = head_on_disk(&files);
        let chain = pending::check(files.pending_lines(), None, None).chain;
        Writer {
            files,
            key: None,
            pending_key: None,
            vault: None,
            seq,
            prev,
            chain,
            unanchored: false,
            healthy,
            syncs,
            failure: None,
            notes,
            snapshot: None,
            last_waiters: 0,
            anchor_due: None,
        }
    }

    pub(super) fn run(mut self, rx: Receiver<Job>) {
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
                    let (batch, acks) = gather(&rx, *rec, ack, self.last_waiters, &mut next);
                    self.last_waiters = acks.len();
                    let result = self.write(batch);
                    for a in acks {
                        let _ = a.send(result.clone());
                    }
                }
                Job::Unlocked(keys) => {
                    self.snapshot = None;
                    self.unlocked(*keys)
                }
                Job::Locked => {
                    self.snapshot = None;
                    self.key = None
                }
                Job::Snapshot(tx) => {
                    let _ = tx.send(self.snapshot());
                }
                Job::ForgetSnapshot => self.snapshot = None,
                Job::Vault(v) => {
                    self.snapshot = None;
                    self.vault = Some(v);
                    if let Some(a) = self.anchor() {
                        self.check_reaches(a.seq, &a.mac, "the vault's anchor");
                    }
                    self.flush_notes();
                }
                Job::List(q, tx) => {
                    let _ = tx.send(self.list(&q));
                }
                Job::Verify(tx) => {
                    let _ = tx.send(self.verify());
                }
                Job::Prune(before, rec, tx) => {
                    self.snapshot = None;
                    let r = self.key.is_some().then(|| self.prune(before, *rec));
                    let _ = tx.send(r);
                }
                Job::Acknowledge(rec, tx) => {
                    self.snapshot = None;
                    let _ = tx.send(self.acknowledge(*rec));
                }
                Job::Resume(tx) => {
                    let after = self.failure.clone().unwrap_or_default();
                    let mut r = note(
                        "audit_write_resumed",
                        format!(
                            "the audit log could not be written ({after}); records of refused actions may be missing from that time"
                        ),
                        serde_json::json!({"after": after}),
                    );
                    r.success = true;
                    // Healthy again only with the vault's anchor stored too:
                    // while it cannot be, actions stay refused.
                    let healed = self.write(vec![r]).and_then(|()| {
                        self.commit_anchor();
                        if self.anchor_due.is_some() {
                            return Err(self.failure.clone().unwrap_or_default());
                        }
                        Ok(())
                    });
                    let _ = tx.send(healed);
                }
                Job::Paused(f) => {
                    // A paused job may replace the log (restore): the UI's
                    // snapshot of it is rebuilt from the files next time.
                    self.snapshot = None;
                    f(&mut self)
                }
                Job::Close(tx) => {
                    self.flush_notes();
                    self.commit_anchor();
                    let _ = tx.send(());
                    return;
                }
            }
            self.commit_anchor();
        }
    }

    /// Stores the head of the chain in the vault, once the callers of the
    /// batch that moved it were answered: their records are durable in the
    /// log already (what failing closed promises), and an anchor that lags
    /// is one the startup check accepts (the anchored record is still
    /// there). Answering first saves each caller the vault's commit, a
    /// second fsync. A failure leaves the log unhealthy (later actions are
    /// refused until a write succeeds) and the anchor due.
    fn commit_anchor(&mut self) {
        let Some(due) = self.anchor_due.take() else {
            return;
        };
        let Some(v) = self.vault.clone() else {
            return;
        };
        let stored = match due {
            Due::Sealed => v
                .store()
                .set_audit_anchor(&AuditAnchor {
                    seq: self.seq,
                    mac: self.prev.clone(),
                })
                .map_err(|e| ("cannot store the audit anchor in the vault", e)),
            Due::Pending => v
                .store()
                .set_audit_pending(&self.chain.anchor())
                .map_err(|e| ("cannot store the pending head in the vault", e)),
        };
        if let Err((what, e)) = stored {
            self.fail(what, e);
            self.anchor_due = Some(due);
        }
    }

    fn anchor(&self) -> Option<AuditAnchor> {
        self.vault
            .as_ref()
            .and_then(|v| v.store().audit_anchor().ok().flatten())
    }

    fn pending_anchor(&self) -> Option<PendingAnchor> {
        self.vault
            .as_ref()
            .and_then(|v| v.store().audit_pending().ok().flatten())
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) -> String {
        let msg = format!("{what}: {e}");
        tracing::error!(error = %msg, "audit write failed");
        self.healthy.store(false, Ordering::SeqCst);
        self.failure = Some(msg.clone());
        msg
    }

    /// Writes the writer's own notes, if any (at start, after a check).
    fn flush_notes(&mut self) {
        if !self.notes.is_empty() {
            let _ = self.write(Vec::new());
        }
    }

    /// Seals and appends (or, while locked, links and parks) the notes and
    /// `batch`; one fsync. On failure nothing is written and the notes are
    /// kept for the next try.
    fn write(&mut self, batch: Vec<Record>) -> Result<(), String> {
        let notes = std::mem::take(&mut self.notes);
        let mut all: Vec<Record> = notes.iter().cloned().chain(batch).collect();
        for r in &mut all {
            r.bound();
        }
        let result = match &self.key {
            Some(_) => self.append_sealed(&mut all),
            None => self.append_pending(&mut all),
        };
        match result {
            Ok(()) => {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.healthy.store(true, Ordering::SeqCst);
                self.failure = None;
                Ok(())
            }
            Err(e) => {
                self.notes = notes;
                Err(e)
            }
        }
    }

    fn append_sealed(&mut self, all: &mut [Record]) -> Result<(), String> {
        let key = self.key.as_ref().expect("sealing needs the key");
        let (seq0, prev0) = (self.seq, self.prev.clone());
        for r in all.iter_mut() {
            r.sealed = None;
            r.pmac = None;
            r.pauth = None;
            self.seq += 1;
            let mac = r.seal(key, self.seq, &self.prev);
            self.prev = mac.to_vec();
        }
        if let Err(e) = self.files.append_sealed(all) {
            (self.seq, self.prev) = (seq0, prev0);
            self.snapshot = None;
            return Err(self.fail("cannot write the audit log", e));
        }
        // Sealed here, right after the snapshot's last record: they join
        // it without a new walk.
        match &mut self.snapshot {
            Some(snap) if snap.error.is_none() && snap.last_seq == seq0 => {
                let snap = Arc::make_mut(snap);
                snap.records.extend(all.iter().cloned().map(Arc::new));
                snap.last_seq = self.seq;
            }
            _ => self.snapshot = None,
        }
        self.anchor_due = Some(Due::Sealed);
        Ok(())
    }

    fn append_pending(&mut self, all: &mut [Record]) -> Result<(), String> {
        let before = self.chain.clone();
        for r in all.iter_mut() {
            self.chain.append(self.pending_key.as_ref(), r);
        }
        if let Err(e) = self.files.append_pending(all) {
            self.chain = before;
            return Err(self.fail("cannot write the audit pending file", e));
        }
        match self.vault {
            Some(_) => self.anchor_due = Some(Due::Pending),
            None => self.unanchored = true,
        }
        Ok(())
    }

    /// The log on disk must reach `(seq, mac)` (the vault's anchor at start,
    /// the writer's own head at unlock). If not, the chain continues after
    /// the expected head and a gap record says what was found.
    fn check_reaches(&mut self, seq: u64, mac: &[u8], what: &str) {
        let (disk_seq, disk_mac) = head_on_disk(&self.files);
        let found = mac_at(&self.files, seq);
        if seq == 0 || found.as_deref() == Some(mac) {
            if disk_seq >= self.seq {
                (self.seq, self.prev) = (disk_seq, disk_mac);
            }
            return;
        }
        tracing::error!(
            expected_seq = seq,
            found_seq = disk_seq,
            "the audit log does not reach {what}: recording the gap"
        );
        self.notes.push(note(
            GAP,
            format!(
                "the audit log on disk ends at seq {disk_seq}{} but {what} is seq {seq}: records were removed or replaced while the daemon was not looking",
                if found.is_some() { " and holds another record at that seq" } else { "" }
            ),
            serde_json::json!({
                "expected_seq": seq,
                "expected_mac": hex(mac),
                "found_seq": disk_seq,
                "found_mac": hex(&disk_mac),
            }),
        ));
        // Never reuse a seq, and chain from what the vault vouches for.
        self.seq = seq.max(disk_seq);
        self.prev = mac.to_vec();
    }

    fn unlocked(&mut self, (key, pending_key): (AuditKey, PendingKey)) {
        self.key = Some(key);
        self.pending_key = Some(pending_key);
        // Cut while we were running?
        let (seq, prev) = (self.seq, self.prev.clone());
        self.check_reaches(seq, &prev, "the daemon's last record");
        let anchor = if self.unanchored {
            None
        } else {
            Some(self.pending_anchor().unwrap_or_default())
        };
        let checked = pending::check(
            self.files.pending_lines(),
            self.pending_key.as_ref(),
            anchor.as_ref(),
        );
        let mut batch = checked.good;
        if let Some(problem) = checked.problem {
            tracing::error!(%problem, "records written while locked were tampered with");
            batch.push(note(
                "audit_pending_tampered",
                problem,
                serde_json::json!({"sealed": batch.len()}),
            ));
        }
        if batch.is_empty() && self.notes.is_empty() && checked.chain.count == 0 {
            return;
        }
        if self.write(batch).is_err() {
            return; // kept pending; the log is unhealthy and says why
        }
        if let Err(e) = self.files.clear_pending() {
            self.fail("cannot clear the audit pending file", e);
            return;
        }
        self.chain = Chain::default();
        self.unanchored = false;
        if let Some(v) = self.vault.clone()
            && let Err(e) = v.store().set_audit_pending(&PendingAnchor::default())
        {
            self.fail("cannot reset the pending head in the vault", e);
        }
    }

    fn walk(&self) -> Option<verify::Walk> {
        let key = self.key.as_ref()?;
        Some(verify::walk(&self.files, key, self.anchor().as_ref()))
    }

    fn verify(&self) -> Option<AuditVerifyResponse> {
        let w = self.walk()?;
        Some(match w.error {
            None => AuditVerifyResponse {
                ok: true,
                records: w.records.len() as u64,
                error: String::new(),
                last_seq: w.last_seq,
            },
            Some(e) => AuditVerifyResponse {
                ok: false,
                records: w.records.len() as u64,
                error: e,
                last_seq: w.last_seq,
            },
        })
    }

    fn snapshot(&mut self) -> Result<Arc<Snapshot>, String> {
        if let Some(s) = &self.snapshot {
            return Ok(s.clone());
        }
        let w = self
            .walk()
            .ok_or_else(|| secretctl_proto::LOCKED_MESSAGE.to_string())?;
        let snap = Arc::new(Snapshot {
            records: w.records.into_iter().map(Arc::new).collect(),
            last_seq: w.last_seq,
            walked_at_ms: crate::vault::now_ms(),
            error: w.error,
        });
        // A broken chain is walked again each time (its records after the
        // break are not verified, so nothing may be appended to it).
        if snap.error.is_none() {
            self.snapshot = Some(snap.clone());
        }
        Ok(snap)
    }

    fn list(&self, q: &AuditListRequest) -> Result<(Vec<String>, String), String> {
        let w = self
            .walk()
            .ok_or_else(|| secretctl_proto::LOCKED_MESSAGE.to_string())?;
        let mut out: Vec<String> = w
            .records
            .iter()
            .filter(|r| {
                let ms = ts_ms(&r.ts).unwrap_or(0);
                (q.since_ms == 0 || ms >= q.since_ms)
                    && (q.until_ms == 0 || ms < q.until_ms)
                    && (q.action.is_empty() || r.action == q.action)
                    && (q.source.is_empty() || r.source == q.source)
                    && (q.key.is_empty() || r.keys.contains(&q.key))
                    && (q.caller.is_empty() || r.caller.as_deref() == Some(q.caller.as_str()))
            })
            .map(|r| String::from_utf8_lossy(&r.line()).trim_end().to_string())
            .collect();
        if q.limit > 0 && out.len() > q.limit as usize {
            out.drain(..out.len() - q.limit as usize);
        }
        Ok((out, w.error.unwrap_or_default()))
    }

    /// Seals one acknowledgement per open gap, until none is left.
    fn acknowledge(&mut self, template: Record) -> Result<Vec<u64>, String> {
        let mut done = Vec::new();
        loop {
            let w = self
                .walk()
                .ok_or_else(|| secretctl_proto::LOCKED_MESSAGE.to_string())?;
            let fresh: Vec<u64> = w
                .open_gaps
                .into_iter()
                .filter(|g| !done.contains(g))
                .collect();
            if fresh.is_empty() {
                return Ok(done);
            }
            let batch: Vec<Record> = fresh
                .iter()
                .map(|g| {
                    let mut r = template.clone();
                    r.action = GAP_ACKNOWLEDGED.into();
                    r.detail.get_or_insert_with(|| serde_json::json!({}))["gap_seq"] =
                        serde_json::json!(g);
                    r
                })
                .collect();
            self.write(batch)?;
            done.extend(fresh);
        }
    }

    /// Prunes records older than `before_ms`; `rec` is the prune's own
    /// record (its action, caller and peer), completed here.
    fn prune(&mut self, before_ms: i64, mut rec: Record) -> Result<AuditPruneResponse, String> {
        let key = self.key.as_ref().ok_or("vault is locked")?;
        let w = verify::walk(&self.files, key, self.anchor().as_ref());
        if let Some(e) = w.error {
            return Err(format!(
                "the log does not verify, so nothing was pruned: {e}"
            ));
        }
        let records = w.records;
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
        self.write(vec![rec])?;
        Ok(AuditPruneResponse {
            pruned: cut as u64,
            remaining,
        })
    }
}

/// The audit log with its writer paused (see [`super::Audit::paused`]):
/// nothing is written while a holder of this runs.
pub struct Paused<'a> {
    w: &'a mut Writer,
}

impl<'a> Paused<'a> {
    pub(super) fn new(w: &'a mut Writer) -> Paused<'a> {
        Paused { w }
    }

    /// The audit directory.
    pub fn dir(&self) -> &std::path::Path {
        self.w.files.dir()
    }

    /// Copies the log's files into `dest` (see [`Files::copy_to`]).
    pub fn copy_to(&self, dest: &std::path::Path) -> std::io::Result<(Vec<String>, u64)> {
        self.w.files.copy_to(dest)
    }

    /// Whether this log holds the sealed record `(seq, mac)`: the record
    /// is on disk with that MAC, or a prune's checkpoint is at or past it
    /// (pruned away after it was sealed here). Seq 0 (no record yet) is
    /// held by every log.
    pub fn holds(&self, seq: u64, mac: &[u8]) -> bool {
        if seq == 0 {
            return true;
        }
        if mac_at(&self.w.files, seq).as_deref() == Some(mac) {
            return true;
        }
        self.w.files.checkpoint().is_some_and(|cp| cp.seq > seq)
    }

    /// A restore replaced the vault with `vault`. `same_key`: it is the
    /// same vault (same data key), the log on disk was kept and the
    /// restored vault carries its anchors; otherwise another log was
    /// installed in the directory: the writer starts over from it, and
    /// forgets the pending key of the old data key (records written until
    /// the next unlock are hash-linked, which any key checks).
    pub fn restored(&mut self, vault: Arc<Vault>, same_key: bool) {
        let w = &mut *self.w;
        w.vault = Some(vault);
        w.key = None;
        if !same_key {
            w.pending_key = None;
            (w.seq, w.prev) = head_on_disk(&w.files);
            w.chain = pending::check(w.files.pending_lines(), None, None).chain;
            w.unanchored = false;
        }
        if let Some(a) = w.anchor() {
            w.check_reaches(a.seq, &a.mac, "the vault's anchor");
        }
    }
}

type EventAck = super::Ack<Result<(), String>>;

/// Group commit: the first record and whatever else is queued, one fsync
/// for all. Callers that waited on the last batch were all answered at
/// once and send their next records a few microseconds apart; taking only
/// what is queued at that instant splits them into alternating half
/// batches (half the records per fsync). So while fewer callers are in
/// hand than waited last time, wait up to [`LINGER`] for them. A lone
/// caller (last batch: one waiter) never waits. A job that is not a
/// record ends the batch and is kept in `next`.
fn gather(
    rx: &Receiver<Job>,
    first: Record,
    ack: Option<EventAck>,
    expect: usize,
    next: &mut Option<Job>,
) -> (Vec<Record>, Vec<EventAck>) {
    let mut batch = vec![first];
    let mut acks: Vec<_> = ack.into_iter().collect();
    let deadline = Instant::now() + LINGER;
    while batch.len() < MAX_BATCH {
        let job = match rx.try_recv() {
            Ok(j) => j,
            Err(_) if acks.len() >= expect || expect <= 1 => break,
            Err(_) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            },
        };
        match job {
            Job::Event(r, a) => {
                batch.push(*r);
                acks.extend(a);
            }
            other => {
                *next = Some(other);
                break;
            }
        }
    }
    (batch, acks)
}

/// The newest sealed record's seq and MAC on disk (or the checkpoint's).
fn head_on_disk(files: &Files) -> (u64, Vec<u8>) {
    match files.last_sealed() {
        Some(r) => (
            r.seq.unwrap_or(0),
            r.mac.as_deref().and_then(unhex).unwrap_or_default(),
        ),
        None => match files.checkpoint() {
            Some(cp) => (cp.seq, unhex(&cp.mac).unwrap_or_default()),
            None => (0, Vec::new()),
        },
    }
}

/// The MAC of the record with `seq` on disk (or of the checkpoint).
fn mac_at(files: &Files, seq: u64) -> Option<Vec<u8>> {
    if let Some(cp) = files.checkpoint()
        && cp.seq == seq
    {
        return unhex(&cp.mac);
    }
    files
        .sealed_lines()
        .into_iter()
        .rev()
        .filter_map(|l| l.parsed.ok())
        .find(|r| r.seq == Some(seq))
        .and_then(|r| r.mac.as_deref().and_then(unhex))
}

#[cfg(test)]
mod gather_tests {
    use std::sync::mpsc::channel;

    use super::*;

    fn rec(key: &str) -> Record {
        let mut r = event("get", "cli", daemon_peer());
        r.keys = vec![key.into()];
        r
    }

    #[test]
    fn a_batch_takes_every_queued_record_and_stops_at_another_job() {
        let (tx, rx) = channel();
        for k in ["b", "c"] {
            tx.send(Job::Event(Box::new(rec(k)), None)).unwrap();
        }
        tx.send(Job::Locked).unwrap();
        tx.send(Job::Event(Box::new(rec("d")), None)).unwrap();
        let mut next = None;
        let (batch, acks) = gather(&rx, rec("a"), None, 8, &mut next);
        let keys: Vec<_> = batch.iter().map(|r| r.keys[0].as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(acks.is_empty());
        assert!(matches!(next, Some(Job::Locked)));
    }

    #[test]
    fn a_batch_waits_for_the_last_batchs_callers_and_no_longer() {
        let (tx, rx) = channel();
        let (ack, _answer) = oneshot_pair();
        tx.send(Job::Event(Box::new(rec("b")), Some(ack))).unwrap();
        let mut next = None;
        // Three waited last time; only two come: the batch closes after
        // the linger with the two, instead of waiting forever.
        let (first_ack, _a) = oneshot_pair();
        let (batch, acks) = gather(&rx, rec("a"), Some(first_ack), 3, &mut next);
        assert_eq!(batch.len(), 2);
        assert_eq!(acks.len(), 2);
        assert!(next.is_none());
        drop(tx);
    }

    fn oneshot_pair() -> (EventAck, tokio::sync::oneshot::Receiver<Result<(), String>>) {
        tokio::sync::oneshot::channel()
    }
}
