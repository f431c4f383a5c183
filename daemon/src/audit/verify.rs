//! Checking the chain: every record's seq follows the last, its `prev` is
//! the last MAC, its own MAC is right, the chain starts at seq 1 or at a
//! genuine prune checkpoint, and it reaches the anchor kept in the vault.
//! The first broken place is named with its file, line and sequence number.
//!
//! Nothing is skipped: a line that does not verify stops the walk, and only
//! the records before it count as verified (`audit list` shows those only).
//!
//! A discontinuity the daemon itself found and recorded (an `audit_gap`
//! record: the log on disk did not reach the vault's anchor) breaks the
//! chain like any other, until the user acknowledges it
//! (`secretctl audit acknowledge`, an `audit_gap_acknowledged` record); from
//! then on the walk accepts that one gap and goes on.

use std::collections::BTreeSet;

use super::files::{Checkpoint, Files};
use super::record::{AuditKey, Record, hex, unhex};
use crate::store::AuditAnchor;

/// The action of the record the daemon seals when the log lost records.
pub const GAP: &str = "audit_gap";
/// The action of the record that acknowledges a gap.
pub const GAP_ACKNOWLEDGED: &str = "audit_gap_acknowledged";

/// The result of a walk: the records that verified, and why the walk
/// stopped early (if it did).
#[derive(Debug)]
pub struct Walk {
    pub records: Vec<Record>,
    pub last_seq: u64,
    pub error: Option<String>,
    /// Gap records not yet acknowledged, by seq.
    pub open_gaps: Vec<u64>,
}

/// The MAC that seals a checkpoint.
pub fn checkpoint_check(key: &AuditKey, seq: u64, mac: &str) -> String {
    let mut body = b"secretctl audit checkpoint v1".to_vec();
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(mac.as_bytes());
    hex(&key.mac(&[], &body))
}

/// The gap seqs that an acknowledgement names (read before verifying; a
/// forged acknowledgement fails its own MAC when the walk reaches it).
fn acknowledged(files: &Files) -> BTreeSet<u64> {
    files
        .sealed_lines()
        .into_iter()
        .filter_map(|l| l.parsed.ok())
        .filter(|r| r.action == GAP_ACKNOWLEDGED)
        .filter_map(|r| r.detail?.get("gap_seq")?.as_u64())
        .collect()
}

/// Walks the log in `files` against `anchor`.
pub fn walk(files: &Files, key: &AuditKey, anchor: Option<&AuditAnchor>) -> Walk {
    let mut w = Walk {
        records: Vec::new(),
        last_seq: 0,
        error: None,
        open_gaps: Vec::new(),
    };
    let (mut seq, mut prev): (u64, Vec<u8>) = match files.checkpoint() {
        Some(Checkpoint { seq, mac, check }) => {
            if checkpoint_check(key, seq, &mac) != check {
                w.error = Some("checkpoint.json was altered: its seal does not match".into());
                return w;
            }
            let Some(prev) = unhex(&mac) else {
                w.error = Some("checkpoint.json holds a malformed MAC".into());
                return w;
            };
            (seq, prev)
        }
        None if files.has_checkpoint() => {
            w.error = Some("checkpoint.json is unreadable".into());
            return w;
        }
        None => (0, Vec::new()),
    };
    let acks = acknowledged(files);
    let mut anchor_seen = false;
    for l in files.sealed_lines() {
        let place = format!("{} line {}", l.file, l.line);
        let stop = |w: &mut Walk, why: String| {
            w.error = Some(why);
        };
        let rec = match l.parsed {
            Ok(r) => r,
            Err(e) => {
                stop(
                    &mut w,
                    format!("{place}: not a valid record ({e}): the line was edited"),
                );
                break;
            }
        };
        let Some(rseq) = rec.seq.filter(|s| *s > 0) else {
            stop(
                &mut w,
                format!(
                    "{place}: a sealed segment holds a record without a valid seq: it was inserted"
                ),
            );
            break;
        };
        let want = seq + 1;
        // A discontinuity the daemon recorded: a gap record that names the
        // head the walk has reached as what it found.
        let recorded_gap = rec.action == GAP
            && rseq >= want
            && rec
                .detail
                .as_ref()
                .and_then(|d| d.get("found_seq")?.as_u64())
                == Some(seq)
            && (rseq > want || rec.prev.as_deref() != Some(hex(&prev).as_str()));
        if recorded_gap {
            if !acks.contains(&rseq) {
                w.open_gaps.push(rseq);
                stop(
                    &mut w,
                    format!(
                        "{place} (seq {rseq}): the log lost records after seq {seq} (the daemon found it and recorded it); check what happened, then run 'secretctl audit acknowledge' to accept the gap"
                    ),
                );
                break;
            }
            // Acknowledged: the gap record chains from the anchor it names.
            match rec.prev.as_deref().and_then(unhex) {
                Some(p) => prev = p,
                None => {
                    stop(&mut w, format!("{place} (seq {rseq}): malformed prev"));
                    break;
                }
            }
        } else if rseq > want {
            stop(
                &mut w,
                format!(
                    "{place}: record seq {rseq} follows seq {seq}: records {want}..{} are missing (deleted lines or a deleted segment)",
                    rseq - 1
                ),
            );
            break;
        } else if rseq < want {
            stop(
                &mut w,
                format!(
                    "{place}: record seq {rseq} appears after seq {seq}: records were inserted or reordered"
                ),
            );
            break;
        } else if rec.prev.as_deref() != Some(hex(&prev).as_str()) {
            stop(
                &mut w,
                format!(
                    "{place} (seq {rseq}): its prev does not match the MAC of seq {seq}: records were inserted, reordered or edited"
                ),
            );
            break;
        }
        let mac = key.mac(&prev, &rec.canonical());
        if rec.mac.as_deref() != Some(hex(&mac).as_str()) {
            stop(
                &mut w,
                format!("{place} (seq {rseq}): MAC mismatch: the record was edited"),
            );
            break;
        }
        if let Some(a) = anchor
            && a.seq == rseq
        {
            if a.mac != mac {
                stop(
                    &mut w,
                    format!("{place} (seq {rseq}): differs from the anchor kept in the vault"),
                );
                break;
            }
            anchor_seen = true;
        }
        seq = rseq;
        prev = mac.to_vec();
        w.records.push(rec);
    }
    w.last_seq = seq;
    if w.error.is_none()
        && let Some(a) = anchor
        && !anchor_seen
        && a.seq > files.checkpoint().map_or(0, |c| c.seq)
    {
        w.error = Some(format!(
            "the log ends at seq {seq} but the vault's anchor is seq {}: the newest records were removed",
            a.seq
        ));
    }
    w
}

/// An intact chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub last_seq: u64,
}

/// Verifies the log in `files` against `anchor`.
pub fn verify(
    files: &Files,
    key: &AuditKey,
    anchor: Option<&AuditAnchor>,
) -> Result<Verified, String> {
    let w = walk(files, key, anchor);
    match w.error {
        Some(e) => Err(e),
        None => Ok(Verified {
            records: w.records.len() as u64,
            last_seq: w.last_seq,
        }),
    }
}
