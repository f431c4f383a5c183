//! The audit chain verifier (`audit::verify::walk`) over a fuzz-built audit
//! directory: a genuine chain sealed with a fixed key (normal records, gap
//! records, acknowledgements, after a checkpoint or not), cut into
//! segments, then edited at the byte, line and JSON level; plus a
//! checkpoint and a vault anchor, genuine or not.
//!
//! Properties: no panic; every record the walk accepts is one the key
//! sealed (same canonical bytes and MAC); the accepted records form a chain
//! (consecutive seqs, each `prev` the MAC before it, starting at seq 1 or at
//! a genuine checkpoint) except at a gap record that an acknowledgement in
//! the log names; a walk without error accepted every line and reached the
//! anchor; open gaps come only with an error; `verify` agrees with `walk`.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use secretctld::audit::files::Files;
use secretctld::audit::record::{AuditKey, Peer, Record, hex, unhex};
use secretctld::audit::verify::{self, GAP, GAP_ACKNOWLEDGED, checkpoint_check};
use secretctld::keyring::DataKey;
use secretctld::store::AuditAnchor;
use serde_json::json;

fn key() -> &'static AuditKey {
    static KEY: OnceLock<AuditKey> = OnceLock::new();
    KEY.get_or_init(|| AuditKey::derive(&DataKey::from_bytes(&[7; 32])))
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// An ordinary record.
    Event {
        action: u8,
        keys: Vec<String>,
        success: bool,
        command: Option<String>,
        detail: Option<u16>,
    },
    /// A gap record as the daemon writes one: the chain goes on at
    /// `head + skip` from a MAC the vault vouched for.
    Gap {
        skip: u8,
        found_back: u8,
        expected_mac: Option<[u8; 4]>,
    },
    /// An acknowledgement naming an earlier gap (or any seq).
    Ack { which: u8, any: Option<u16> },
}

#[derive(Arbitrary, Debug)]
enum Start {
    Fresh,
    Checkpoint {
        seq: u16,
        mac: [u8; 4],
        genuine: bool,
    },
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Field {
    Seq,
    Prev,
    Mac,
    Action,
    Detail,
    Sealed,
    Keys,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Xor {
        line: u16,
        pos: u16,
        bits: u8,
    },
    Delete {
        line: u16,
    },
    Duplicate {
        line: u16,
    },
    Swap {
        a: u16,
        b: u16,
    },
    Insert {
        at: u16,
        bytes: Vec<u8>,
    },
    /// The last line loses its newline and its end (a torn write).
    Tear {
        len: u16,
    },
    /// Sets a JSON field of a line to a value taken from another line, or
    /// to a small number.
    Set {
        line: u16,
        field: Field,
        from: u16,
        number: Option<u16>,
    },
    /// Removes a JSON field.
    Remove {
        line: u16,
        field: Field,
    },
}

#[derive(Arbitrary, Debug)]
enum Anchor {
    None,
    Genuine { index: u16 },
    Forged { seq: u16, mac: [u8; 4] },
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: Start,
    steps: Vec<Step>,
    edits: Vec<Edit>,
    /// Lines per segment file, cycled.
    segment_lines: Vec<u8>,
    anchor: Anchor,
    /// A `.jsonl.new` file as an interrupted prune leaves it.
    prune_leftover: Option<Vec<u8>>,
}

fn field_name(f: &Field) -> &'static str {
    match f {
        Field::Seq => "seq",
        Field::Prev => "prev",
        Field::Mac => "mac",
        Field::Action => "action",
        Field::Detail => "detail",
        Field::Sealed => "sealed",
        Field::Keys => "keys",
    }
}

fn mac32(short: [u8; 4]) -> Vec<u8> {
    short.iter().cycle().take(32).copied().collect()
}

const ACTIONS: [&str; 6] = ["get", "set", "run", "unlock", GAP, GAP_ACKNOWLEDGED];

fn base(action: &str) -> Record {
    Record {
        seq: None,
        ts: "2026-01-01T00:00:00.000Z".into(),
        action: action.into(),
        source: "cli".into(),
        caller: None,
        peer: Peer {
            pid: Some(1),
            uid: 0,
            exe: None,
        },
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

fn pick<T>(v: &[T], i: u16) -> Option<&T> {
    (!v.is_empty()).then(|| &v[i as usize % v.len()])
}

fuzz_target!(|input: Input| {
    let key = key();
    if input.steps.len() > 64 || input.edits.len() > 32 {
        return;
    }
    // The genuine chain.
    let (mut seq, mut prev): (u64, Vec<u8>) = (0, Vec::new());
    let mut checkpoint_text: Option<Vec<u8>> = None;
    let mut genuine_checkpoint: Option<(u64, Vec<u8>)> = None;
    match &input.start {
        Start::Fresh => {}
        Start::Checkpoint {
            seq: s,
            mac,
            genuine,
        } => {
            let (s, mac) = (u64::from(*s), mac32(*mac));
            let check = if *genuine {
                checkpoint_check(key, s, &hex(&mac))
            } else {
                hex(&mac32([1, 2, 3, 4]))
            };
            checkpoint_text = Some(
                serde_json::to_vec(&json!({"seq": s, "mac": hex(&mac), "check": check})).unwrap(),
            );
            if *genuine {
                genuine_checkpoint = Some((s, mac.clone()));
            }
            (seq, prev) = (s, mac);
        }
        Start::Garbage(bytes) => checkpoint_text = Some(bytes.clone()),
    }
    let mut sealed: Vec<Record> = Vec::new();
    let mut gaps: Vec<u64> = Vec::new();
    for step in &input.steps {
        let mut r;
        match step {
            Step::Event {
                action,
                keys,
                success,
                command,
                detail,
            } => {
                r = base(ACTIONS[*action as usize % 4]);
                r.keys = keys.iter().take(4).cloned().collect();
                r.success = *success;
                r.command = command.clone();
                r.detail = detail.map(|d| json!({ "n": d }));
                r.bound();
            }
            Step::Gap {
                skip,
                found_back,
                expected_mac,
            } => {
                r = base(GAP);
                let found = seq.saturating_sub(u64::from(*found_back % 4));
                r.detail = Some(json!({"expected_seq": seq, "found_seq": found}));
                if let Some(m) = expected_mac {
                    prev = mac32(*m);
                }
                seq += u64::from(*skip % 4);
            }
            Step::Ack { which, any } => {
                r = base(GAP_ACKNOWLEDGED);
                let g = match any {
                    Some(n) => u64::from(*n),
                    None => pick(&gaps, u16::from(*which)).copied().unwrap_or(0),
                };
                r.detail = Some(json!({ "gap_seq": g }));
            }
        }
        seq += 1;
        let mac = r.seal(key, seq, &prev);
        if r.action == GAP {
            gaps.push(seq);
        }
        prev = mac.to_vec();
        sealed.push(r);
    }
    let genuine: BTreeSet<(Vec<u8>, String)> = sealed
        .iter()
        .map(|r| (r.canonical(), r.mac.clone().unwrap()))
        .collect();
    let mut lines: Vec<Vec<u8>> = sealed
        .iter()
        .map(|r| {
            let mut l = r.line();
            l.pop();
            l
        })
        .collect();

    // Edits.
    let mut torn: Option<Vec<u8>> = None;
    for e in &input.edits {
        let n = lines.len();
        let at = |i: u16| i as usize % n.max(1);
        match e {
            Edit::Xor { line, pos, bits } if n > 0 => {
                let l = &mut lines[at(*line)];
                if !l.is_empty() {
                    let p = *pos as usize % l.len();
                    l[p] ^= bits;
                }
            }
            Edit::Delete { line } if n > 0 => {
                lines.remove(at(*line));
            }
            Edit::Duplicate { line } if n > 0 => {
                let l = lines[at(*line)].clone();
                lines.insert(at(*line), l);
            }
            Edit::Swap { a, b } if n > 0 => lines.swap(at(*a), at(*b)),
            Edit::Insert { at: i, bytes } => {
                let i = *i as usize % (n + 1);
                let mut b = bytes.clone();
                b.retain(|c| *c != b'\n');
                lines.insert(i, b);
            }
            Edit::Tear { len } if n > 0 => {
                let mut l = lines.pop().unwrap();
                l.truncate(*len as usize % (l.len() + 1));
                torn = Some(l);
            }
            Edit::Set {
                line,
                field,
                from,
                number,
            } if n > 0 => {
                let src: Option<serde_json::Value> = serde_json::from_slice(&lines[at(*from)]).ok();
                let dst = &mut lines[at(*line)];
                if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(dst)
                    && let Some(obj) = v.as_object_mut()
                {
                    let name = field_name(field);
                    let value = match number {
                        Some(n) => json!(n),
                        None => src
                            .as_ref()
                            .and_then(|s| s.get(name).cloned())
                            .unwrap_or(serde_json::Value::Null),
                    };
                    obj.insert(name.into(), value);
                    *dst = serde_json::to_vec(&v).unwrap();
                }
            }
            Edit::Remove { line, field } if n > 0 => {
                let dst = &mut lines[at(*line)];
                if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(dst)
                    && let Some(obj) = v.as_object_mut()
                {
                    obj.remove(field_name(field));
                    *dst = serde_json::to_vec(&v).unwrap();
                }
            }
            _ => {}
        }
    }

    // The directory.
    let tmp = tempfile::Builder::new()
        .prefix("fuzz-audit")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        })
        .unwrap();
    let dir = tmp.path().join("audit");
    let files = Files::open(&dir, 1 << 20).unwrap();
    let mut i = 0;
    let mut part = 0;
    let mut segment_count = 0;
    while i < lines.len() || (torn.is_some() && segment_count == 0) {
        let take = match pick(&input.segment_lines, part) {
            Some(k) => (*k as usize).max(1),
            None => lines.len().max(1),
        };
        part += 1;
        let end = (i + take).min(lines.len());
        let mut text = Vec::new();
        for l in &lines[i..end] {
            text.extend_from_slice(l);
            text.push(b'\n');
        }
        if end == lines.len()
            && let Some(t) = &torn
        {
            text.extend_from_slice(t);
        }
        std::fs::write(dir.join(format!("segment-{:012}.jsonl", i + 1)), text).unwrap();
        segment_count += 1;
        i = end;
    }
    if let Some(cp) = &checkpoint_text {
        std::fs::write(dir.join("checkpoint.json"), cp).unwrap();
    }
    if let Some(b) = &input.prune_leftover {
        std::fs::write(dir.join("segment-000000000001.jsonl.new"), b).unwrap();
    }
    // Reopened, as at start (completes an interrupted prune).
    let files = match &input.prune_leftover {
        Some(_) => {
            drop(files);
            match Files::open(&dir, 1 << 20) {
                Ok(f) => f,
                Err(_) => return,
            }
        }
        None => files,
    };
    let anchor = match &input.anchor {
        Anchor::None => None,
        Anchor::Genuine { index } => pick(&sealed, *index).map(|r| AuditAnchor {
            seq: r.seq.unwrap(),
            mac: unhex(r.mac.as_deref().unwrap()).unwrap(),
        }),
        Anchor::Forged { seq, mac } => Some(AuditAnchor {
            seq: u64::from(*seq),
            mac: mac32(*mac),
        }),
    };

    let w = verify::walk(&files, key, anchor.as_ref());

    // Every accepted record was sealed by the key.
    for r in &w.records {
        let id = (r.canonical(), r.mac.clone().unwrap_or_default());
        assert!(
            genuine.contains(&id),
            "accepted a record the key never sealed: {r:?}"
        );
    }
    // ...and they form a chain.
    let lines_now = files.sealed_lines();
    let acked: BTreeSet<u64> = lines_now
        .iter()
        .filter_map(|l| l.parsed.as_ref().ok())
        .filter(|r| r.action == GAP_ACKNOWLEDGED)
        .filter_map(|r| r.detail.as_ref()?.get("gap_seq")?.as_u64())
        .collect();
    let cp_now = files.checkpoint();
    let cp_ok = match &cp_now {
        Some(c) => checkpoint_check(key, c.seq, &c.mac) == c.check && unhex(&c.mac).is_some(),
        None => !files.has_checkpoint(),
    };
    if !cp_ok {
        // A forged, malformed or unreadable checkpoint stops the walk at once.
        assert!(w.records.is_empty() && w.error.is_some() && w.last_seq == 0);
        assert!(verify::verify(&files, key, anchor.as_ref()).is_err());
        return;
    }
    let mut head: (u64, String) = match &cp_now {
        Some(c) => (c.seq, hex(&unhex(&c.mac).unwrap())),
        None => (0, String::new()),
    };
    if let Some(c) = &cp_now {
        // The only checkpoint the key sealed is the generated one.
        let (s, m) = genuine_checkpoint
            .as_ref()
            .expect("accepted a checkpoint the key never sealed");
        assert_eq!((c.seq, c.mac.as_str()), (*s, hex(m).as_str()));
    }
    for r in &w.records {
        let s = r.seq.unwrap();
        let acked_gap = r.action == GAP && acked.contains(&s);
        if !acked_gap {
            assert_eq!(s, head.0 + 1, "seq does not follow: {r:?}");
            assert_eq!(
                r.prev.as_deref(),
                Some(head.1.as_str()),
                "prev does not link: {r:?}"
            );
        } else {
            assert!(s > head.0, "a gap went backwards");
        }
        head = (s, r.mac.clone().unwrap());
    }
    assert_eq!(w.last_seq, head.0);
    if w.error.is_none() {
        assert_eq!(w.records.len(), lines_now.len(), "a line was skipped");
        assert!(w.open_gaps.is_empty());
        if let Some(a) = &anchor
            && a.seq > cp_now.as_ref().map_or(0, |c| c.seq)
        {
            assert!(
                w.records
                    .iter()
                    .any(|r| r.seq == Some(a.seq) && r.mac.as_deref() == Some(hex(&a.mac).as_str())),
                "the anchor was not reached"
            );
        }
    }
    // An untouched log of ordinary records verifies whole (no false alarm).
    let untouched = input.edits.is_empty()
        && input.prune_leftover.is_none()
        && !matches!(input.anchor, Anchor::Forged { .. })
        && matches!(
            input.start,
            Start::Fresh | Start::Checkpoint { genuine: true, .. }
        )
        && input.steps.iter().all(|s| matches!(s, Step::Event { .. }));
    if untouched {
        assert_eq!(w.error, None);
        assert_eq!(w.records, sealed);
    }
    let v = verify::verify(&files, key, anchor.as_ref());
    assert_eq!(v.is_ok(), w.error.is_none());
});
