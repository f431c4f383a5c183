//! Checking the chain: every record's seq follows the last, its `prev` is
//! the last MAC, its own MAC is right, the chain starts at seq 1 or at a
//! genuine prune checkpoint, and it reaches the anchor kept in the vault.
//! The first broken place is named with its file, line and sequence number.

use super::files::{Checkpoint, Files};
use super::record::{AuditKey, hex, unhex};
use crate::store::AuditAnchor;

/// An intact chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub last_seq: u64,
}

/// The MAC that seals a checkpoint.
pub fn checkpoint_check(key: &AuditKey, seq: u64, mac: &str) -> String {
    let mut body = b"secretctl audit checkpoint v1".to_vec();
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(mac.as_bytes());
    hex(&key.mac(&[], &body))
}

/// Verifies the log in `files` against `anchor`.
pub fn verify(
    files: &Files,
    key: &AuditKey,
    anchor: Option<&AuditAnchor>,
) -> Result<Verified, String> {
    let (mut seq, mut prev): (u64, Vec<u8>) = match files.checkpoint() {
        Some(Checkpoint { seq, mac, check }) => {
            if checkpoint_check(key, seq, &mac) != check {
                return Err("checkpoint.json was altered: its seal does not match".into());
            }
            let prev = unhex(&mac).ok_or("checkpoint.json holds a malformed MAC")?;
            (seq, prev)
        }
        None if files.has_checkpoint() => return Err("checkpoint.json is unreadable".into()),
        None => (0, Vec::new()),
    };
    let pruned_through = seq;
    let mut count = 0u64;
    let mut anchor_seen = false;
    for l in files.sealed_lines() {
        let place = format!("{} line {}", l.file, l.line);
        let rec = l
            .parsed
            .map_err(|e| format!("{place}: not a valid record ({e}): the line was edited"))?;
        let Some(rseq) = rec.seq else {
            return Err(format!(
                "{place}: a sealed segment holds a record without seq: it was inserted"
            ));
        };
        if rseq <= pruned_through {
            // Left behind by a prune interrupted before it removed old segments.
            continue;
        }
        let want = seq + 1;
        if rseq > want {
            return Err(format!(
                "{place}: record seq {rseq} follows seq {seq}: records {want}..{} are missing (deleted lines or a deleted segment)",
                rseq - 1
            ));
        }
        if rseq < want {
            return Err(format!(
                "{place}: record seq {rseq} appears after seq {seq}: records were inserted or reordered"
            ));
        }
        if rec.prev.as_deref() != Some(hex(&prev).as_str()) {
            return Err(format!(
                "{place} (seq {rseq}): its prev does not match the MAC of seq {seq}: records were inserted, reordered or edited"
            ));
        }
        let mac = key.mac(&prev, &rec.canonical());
        if rec.mac.as_deref() != Some(hex(&mac).as_str()) {
            return Err(format!(
                "{place} (seq {rseq}): MAC mismatch: the record was edited"
            ));
        }
        if let Some(a) = anchor
            && a.seq == rseq
        {
            if a.mac != mac {
                return Err(format!(
                    "{place} (seq {rseq}): differs from the anchor kept in the vault"
                ));
            }
            anchor_seen = true;
        }
        seq = rseq;
        prev = mac.to_vec();
        count += 1;
    }
    if let Some(a) = anchor
        && !anchor_seen
        && a.seq > pruned_through
    {
        return Err(format!(
            "the log ends at seq {seq} but the vault's anchor is seq {}: the newest records were removed",
            a.seq
        ));
    }
    Ok(Verified {
        records: count,
        last_seq: seq,
    })
}
