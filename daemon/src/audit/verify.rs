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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Peer;
    use crate::keyring::DataKey;

    /// An audit directory written record by record, without the writer.
    struct Log {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        files: Files,
        key: AuditKey,
    }

    fn log() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        let files = Files::open(&path, 1 << 20).unwrap();
        Log {
            _dir: dir,
            path,
            files,
            key: AuditKey::derive(&DataKey::from_bytes(&[9; 32])),
        }
    }

    fn rec(action: &str) -> Record {
        crate::audit::event(
            action,
            "cli",
            Peer {
                pid: Some(1),
                uid: 0,
                exe: None,
            },
        )
    }

    fn mac_of(r: &Record) -> Vec<u8> {
        unhex(r.mac.as_deref().unwrap()).unwrap()
    }

    fn anchor(r: &Record) -> AuditAnchor {
        AuditAnchor {
            seq: r.seq.unwrap(),
            mac: mac_of(r),
        }
    }

    impl Log {
        /// Records 1..=n, sealed in a chain (not written).
        fn chain(&self, n: u64) -> Vec<Record> {
            let mut prev = Vec::new();
            (1..=n)
                .map(|seq| {
                    let mut r = rec(&format!("get{seq}"));
                    prev = r.seal(&self.key, seq, &prev).to_vec();
                    r
                })
                .collect()
        }

        /// A gap record as the writer seals it: `found_seq` is the head it
        /// found on disk.
        fn gap(&self, seq: u64, prev: &[u8], found_seq: u64) -> Record {
            let mut r = rec(GAP);
            r.detail = Some(serde_json::json!({"found_seq": found_seq}));
            r.seal(&self.key, seq, prev);
            r
        }

        fn write(&self, records: &[&Record]) {
            let owned: Vec<Record> = records.iter().map(|r| (*r).clone()).collect();
            self.files.append_sealed(&owned).unwrap();
        }

        fn write_checkpoint(&self, text: &str) {
            std::fs::write(self.path.join("checkpoint.json"), text).unwrap();
        }

        fn checkpoint(&self, seq: u64, mac: &str, check: &str) {
            let cp = Checkpoint {
                seq,
                mac: mac.into(),
                check: check.into(),
            };
            self.write_checkpoint(&serde_json::to_string(&cp).unwrap());
        }

        fn error(&self, anchor: Option<&AuditAnchor>) -> String {
            verify(&self.files, &self.key, anchor).unwrap_err()
        }
    }

    #[test]
    fn checkpoint_check_seals_seq_and_mac_with_the_key() {
        let l = log();
        let mac = "ab".repeat(32);
        let c = checkpoint_check(&l.key, 2, &mac);
        assert_eq!(unhex(&c).map(|v| v.len()), Some(32), "{c}");
        assert_eq!(c, checkpoint_check(&l.key, 2, &mac));
        assert_ne!(c, checkpoint_check(&l.key, 3, &mac));
        assert_ne!(c, checkpoint_check(&l.key, 2, &"cd".repeat(32)));
        let other = AuditKey::derive(&DataKey::from_bytes(&[8; 32]));
        assert_ne!(c, checkpoint_check(&other, 2, &mac));
    }

    #[test]
    fn a_genuine_checkpoint_starts_the_chain_and_nothing_else_does() {
        let l = log();
        let all = l.chain(5);
        l.write(&[&all[2], &all[3], &all[4]]);
        let mac2 = all[1].mac.clone().unwrap();
        let head = anchor(&all[4]);
        // Without the checkpoint the pruned head is missing.
        assert!(l.error(Some(&head)).contains("records 1..2 are missing"));
        l.checkpoint(2, &mac2, &checkpoint_check(&l.key, 2, &mac2));
        assert_eq!(
            verify(&l.files, &l.key, Some(&head)),
            Ok(Verified {
                records: 3,
                last_seq: 5
            })
        );
        for (seq, check) in [
            (2, String::new()),
            (2, "xyzzy".into()),
            (1, checkpoint_check(&l.key, 2, &mac2)),
        ] {
            l.checkpoint(seq, &mac2, &check);
            let e = l.error(Some(&head));
            assert!(
                e.contains("checkpoint.json was altered"),
                "{seq} {check}: {e}"
            );
        }
        l.checkpoint(2, "zz", &checkpoint_check(&l.key, 2, "zz"));
        assert!(l.error(Some(&head)).contains("malformed MAC"));
        l.write_checkpoint("{not json");
        let e = l.error(Some(&head));
        assert!(e.contains("checkpoint.json is unreadable"), "{e}");
    }

    #[test]
    fn an_anchor_at_the_checkpoint_needs_no_record_after_it() {
        let l = log();
        let all = l.chain(5);
        let mac5 = all[4].mac.clone().unwrap();
        l.checkpoint(5, &mac5, &checkpoint_check(&l.key, 5, &mac5));
        assert_eq!(
            verify(&l.files, &l.key, Some(&anchor(&all[4]))),
            Ok(Verified {
                records: 0,
                last_seq: 5
            })
        );
    }

    #[test]
    fn a_log_that_stops_before_the_anchor_fails() {
        let l = log();
        let all = l.chain(5);
        l.write(&[&all[0], &all[1], &all[2]]);
        assert_eq!(
            verify(&l.files, &l.key, Some(&anchor(&all[2]))),
            Ok(Verified {
                records: 3,
                last_seq: 3
            })
        );
        let e = l.error(Some(&anchor(&all[4])));
        assert!(
            e.contains("the log ends at seq 3 but the vault's anchor is seq 5"),
            "{e}"
        );
    }

    #[test]
    fn each_break_is_named_for_what_happened() {
        let missing = log();
        let all = missing.chain(4);
        missing.write(&[&all[0], &all[1], &all[3]]);
        let w = walk(&missing.files, &missing.key, None);
        let e = w.error.unwrap();
        assert!(
            e.contains("record seq 4 follows seq 2: records 3..3 are missing"),
            "{e}"
        );
        assert_eq!((w.records.len(), w.last_seq), (2, 2));
        assert!(w.open_gaps.is_empty());

        let repeated = log();
        let all = repeated.chain(3);
        repeated.write(&[&all[0], &all[1], &all[2], &all[1]]);
        let w = walk(&repeated.files, &repeated.key, None);
        let e = w.error.unwrap();
        assert!(
            e.contains("record seq 2 appears after seq 3: records were inserted or reordered"),
            "{e}"
        );
        assert_eq!((w.records.len(), w.open_gaps.len()), (3, 0));

        let relinked = log();
        let all = relinked.chain(2);
        let mut third = rec("get3");
        third.seal(&relinked.key, 3, &[0; 32]);
        relinked.write(&[&all[0], &all[1], &third]);
        let w = walk(&relinked.files, &relinked.key, None);
        let e = w.error.unwrap();
        assert!(
            e.contains("its prev does not match the MAC of seq 2"),
            "{e}"
        );
        assert_eq!((w.records.len(), w.open_gaps.len()), (2, 0));
    }

    #[test]
    fn recorded_gaps_stop_the_walk_until_acknowledged() {
        // The newest records (4, 5) were cut; the gap chains from 5.
        let l = log();
        let all = l.chain(5);
        let gap = l.gap(6, &mac_of(&all[4]), 3);
        l.write(&[&all[0], &all[1], &all[2], &gap]);
        let w = walk(&l.files, &l.key, Some(&anchor(&gap)));
        assert_eq!(w.open_gaps, vec![6]);
        assert!(w.error.unwrap().contains("audit acknowledge"));
        let mut ack = rec(GAP_ACKNOWLEDGED);
        ack.detail = Some(serde_json::json!({"gap_seq": 6}));
        ack.seal(&l.key, 7, &mac_of(&gap));
        l.write(&[&ack]);
        assert_eq!(
            verify(&l.files, &l.key, Some(&anchor(&ack))),
            Ok(Verified {
                records: 5,
                last_seq: 7
            })
        );
    }

    #[test]
    fn a_gap_is_a_jump_in_seq_or_a_prev_that_is_not_the_head() {
        // Record 3 on disk was replaced: the gap follows in seq but chains
        // from the record the vault vouched for.
        let l = log();
        let all = l.chain(3);
        let gap = l.gap(4, &[7; 32], 3);
        l.write(&[&all[0], &all[1], &all[2], &gap]);
        let w = walk(&l.files, &l.key, None);
        assert_eq!(w.open_gaps, vec![4], "{:?}", w.error);

        // A gap that skips seqs is one even if it names the head as prev.
        let l = log();
        let all = l.chain(3);
        let gap = l.gap(6, &mac_of(&all[2]), 3);
        l.write(&[&all[0], &all[1], &all[2], &gap]);
        let w = walk(&l.files, &l.key, None);
        assert_eq!(w.open_gaps, vec![6], "{:?}", w.error);

        // A gap record that continues the chain found no discontinuity.
        let l = log();
        let all = l.chain(3);
        let gap = l.gap(4, &mac_of(&all[2]), 3);
        l.write(&[&all[0], &all[1], &all[2], &gap]);
        let w = walk(&l.files, &l.key, Some(&anchor(&gap)));
        assert_eq!((w.error, w.open_gaps, w.last_seq), (None, vec![], 4));
    }
}
