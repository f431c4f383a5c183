//! The audit directory: size-rotated segment files of sealed records, a
//! pending file for records written while locked, and the checkpoint a
//! prune leaves behind.
//!
//! Segment files are named by the sequence number of their first record
//! (`segment-000000000001.jsonl`), so lexical order is chain order.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::Record;

const PENDING: &str = "pending.jsonl";
const CHECKPOINT: &str = "checkpoint.json";

/// What a prune cut off: the last removed record's seq and MAC, sealed with
/// the audit key (`check`) so it cannot be forged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub mac: String,
    pub check: String,
}

/// A parsed line, with where it came from.
pub struct Line {
    pub file: String,
    pub line: usize,
    pub parsed: Result<Record, String>,
    pub raw: String,
}

/// The audit directory.
pub struct Files {
    dir: PathBuf,
    segment_bytes: u64,
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Files {
    /// Opens (creating, mode 0700 by umask) the audit directory.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<Files> {
        std::fs::create_dir_all(dir)?;
        Ok(Files {
            dir: dir.to_path_buf(),
            segment_bytes,
        })
    }

    /// Segment files in chain order.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("segment-") && n.ends_with(".jsonl"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every complete line of a file (a torn last line without `\n` is skipped).
    pub fn read(&self, path: &Path) -> Vec<Line> {
        let Ok(f) = File::open(path) else {
            return Vec::new();
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let mut out = Vec::new();
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            n += 1;
            if !buf.ends_with(b"\n") {
                break;
            }
            let raw = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
            let parsed = serde_json::from_str::<Record>(&raw).map_err(|e| e.to_string());
            out.push(Line {
                file: name.clone(),
                line: n,
                parsed,
                raw,
            });
        }
        out
    }

    /// All sealed lines, in order.
    pub fn sealed_lines(&self) -> Vec<Line> {
        self.segments().iter().flat_map(|p| self.read(p)).collect()
    }

    /// The newest sealed record, if any.
    pub fn last_sealed(&self) -> Option<Record> {
        let segs = self.segments();
        let last = segs.last()?;
        self.read(last)
            .into_iter()
            .rev()
            .find_map(|l| l.parsed.ok())
    }

    /// Appends sealed records (rotating by size) and fsyncs.
    pub fn append_sealed(&self, records: &[Record]) -> std::io::Result<()> {
        let mut current: Option<(PathBuf, File, u64)> = None;
        let mut touched: Vec<File> = Vec::new();
        for r in records {
            let need_new = match &current {
                Some((_, _, size)) => *size >= self.segment_bytes,
                None => match self.segments().last() {
                    Some(p) => {
                        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                        if size < self.segment_bytes {
                            let f = OpenOptions::new().append(true).open(p)?;
                            current = Some((p.clone(), f, size));
                            false
                        } else {
                            true
                        }
                    }
                    None => true,
                },
            };
            if need_new {
                if let Some((_, f, _)) = current.take() {
                    touched.push(f);
                }
                let p = self
                    .dir
                    .join(format!("segment-{:012}.jsonl", r.seq.unwrap_or(0)));
                let f = OpenOptions::new().create(true).append(true).open(&p)?;
                current = Some((p, f, 0));
                sync_dir(&self.dir);
            }
            let (_, f, size) = current.as_mut().expect("a segment is open");
            let line = r.line();
            f.write_all(&line)?;
            *size += line.len() as u64;
        }
        if let Some((_, f, _)) = current {
            touched.push(f);
        }
        for f in touched {
            f.sync_data()?;
        }
        Ok(())
    }

    /// Appends unsealed records to the pending file and fsyncs.
    pub fn append_pending(&self, records: &[Record]) -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(PENDING))?;
        for r in records {
            f.write_all(&r.line())?;
        }
        f.sync_data()
    }

    /// Records waiting to be sealed.
    pub fn pending(&self) -> Vec<Record> {
        self.read(&self.dir.join(PENDING))
            .into_iter()
            .filter_map(|l| l.parsed.ok())
            .collect()
    }

    /// Forgets the pending records (after sealing them).
    pub fn clear_pending(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(PENDING)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => {
                sync_dir(&self.dir);
                Ok(())
            }
        }
    }

    /// The checkpoint of the last prune, if any.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let text = std::fs::read_to_string(self.dir.join(CHECKPOINT)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether a checkpoint file exists (even an unreadable one).
    pub fn has_checkpoint(&self) -> bool {
        self.dir.join(CHECKPOINT).exists()
    }

    /// Replaces the log with `keep` (records after the cut) and writes the
    /// checkpoint, in an order that survives a crash at any point: new
    /// segment, checkpoint, old segments removed, new segment renamed.
    pub fn rewrite(&self, keep: &[Record], cp: &Checkpoint) -> std::io::Result<()> {
        let old = self.segments();
        let first = keep.first().and_then(|r| r.seq).unwrap_or(cp.seq + 1);
        let final_path = self.dir.join(format!("segment-{first:012}.jsonl"));
        let tmp = self.dir.join(format!("segment-{first:012}.jsonl.new"));
        {
            let mut f = File::create(&tmp)?;
            for r in keep {
                f.write_all(&r.line())?;
            }
            f.sync_all()?;
        }
        let cp_tmp = self.dir.join("checkpoint.json.new");
        {
            let mut f = File::create(&cp_tmp)?;
            f.write_all(&serde_json::to_vec(cp).expect("a checkpoint serialises"))?;
            f.sync_all()?;
        }
        std::fs::rename(&cp_tmp, self.dir.join(CHECKPOINT))?;
        for p in old {
            std::fs::remove_file(p)?;
        }
        std::fs::rename(&tmp, &final_path)?;
        sync_dir(&self.dir);
        Ok(())
    }
}
