//! The audit directory: size-rotated segment files of sealed records, a
//! pending file for records written while locked, and the checkpoint a
//! prune leaves behind.
//!
//! Segment files are named by the sequence number of their first record
//! (`segment-000000000001.jsonl`), so lexical order is chain order.
//!
//! Invariants:
//! - Every file is opened with `O_NOFOLLOW` in a directory that must be ours
//!   and private: a planted symlink is refused, never written through.
//! - A failed append is undone (the file is cut back to its size before the
//!   batch), so a full disk never leaves half a line behind; a torn tail
//!   found at start (a crash mid-write) is cut and reported as such, never
//!   mistaken for an edit.
//! - An interrupted prune is completed at start, so verification never has
//!   to skip lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::Record;

const PENDING: &str = "pending.jsonl";
const CHECKPOINT: &str = "checkpoint.json";
/// Longest line read back; anything longer cannot be a record we wrote.
const MAX_LINE: usize = 1024 * 1024;

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
}

/// Bytes cut from the end of a file because its last line was incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    pub bytes: u64,
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

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

fn open_read(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// Cuts `f` back to `len` bytes after a failed append.
fn undo_append(f: &File, len: u64) {
    if let Err(e) = f.set_len(len).and_then(|()| f.sync_data()) {
        tracing::error!(error = %e, "cannot undo a failed audit append");
    }
}

impl Files {
    /// Opens (creating, mode 0700) the audit directory, refusing one that is
    /// a symlink, not ours, or open to others; completes an interrupted
    /// prune.
    pub fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<Files> {
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().mode(0o700).create(dir)?;
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let meta = std::fs::symlink_metadata(dir)?;
        let uid = nix::unistd::geteuid().as_raw();
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory (a symlink?): remove it",
                dir.display()
            )));
        }
        if meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "audit directory {} must be yours with mode 0700: run 'chmod 700 {0}'",
                dir.display()
            )));
        }
        let files = Files {
            dir: dir.to_path_buf(),
            segment_bytes,
        };
        files.finish_prune()?;
        Ok(files)
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies the log as it is into `dest` (created, mode 0700): every
    /// segment, the pending file and the checkpoint, each opened
    /// `O_NOFOLLOW`, written new (0600) and fsynced. Other files in the
    /// directory (a prune's leftovers) are not part of the log and are
    /// left out. Returns the names copied and how many records (lines)
    /// the segments and the pending file hold.
    pub fn copy_to(&self, dest: &Path) -> std::io::Result<(Vec<String>, u64)> {
        std::fs::DirBuilder::new().mode(0o700).create(dest)?;
        let mut names = Vec::new();
        let mut records = 0u64;
        let sources = self
            .segments()
            .into_iter()
            .chain([self.dir.join(PENDING), self.dir.join(CHECKPOINT)]);
        for src in sources {
            let mut from = match open_read(&src) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let name = Self::name(&src);
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(dest.join(&name))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if name != CHECKPOINT {
                    records += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                }
                to.write_all(&buf[..n])?;
            }
            to.sync_all()?;
            names.push(name);
        }
        sync_dir(dest);
        Ok((names, records))
    }

    /// Whether `name` is a file of the log (a segment, the pending file or
    /// the checkpoint): what a backup may carry.
    pub fn is_log_file(name: &str) -> bool {
        name == PENDING
            || name == CHECKPOINT
            || name
                .strip_prefix("segment-")
                .and_then(|n| n.strip_suffix(".jsonl"))
                .is_some_and(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
    }

    fn name(path: &Path) -> String {
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string()
    }

    /// Segment files in chain order.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let n = Self::name(p);
                        n.starts_with("segment-") && n.ends_with(".jsonl")
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every complete line of a file (a torn last line without `\n` is not
    /// a line: see [`Files::repair_torn_tails`]).
    pub fn read(&self, path: &Path) -> Vec<Line> {
        let Ok(f) = open_read(path) else {
            return Vec::new();
        };
        let name = Self::name(path);
        let mut out = Vec::new();
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            match Read::by_ref(&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            n += 1;
            if !buf.ends_with(b"\n") {
                if buf.len() > MAX_LINE {
                    out.push(Line {
                        file: name.clone(),
                        line: n,
                        parsed: Err("the line is longer than any record".into()),
                    });
                }
                break;
            }
            let parsed = std::str::from_utf8(&buf[..buf.len() - 1])
                .map_err(|e| e.to_string())
                .and_then(|raw| serde_json::from_str::<Record>(raw).map_err(|e| e.to_string()));
            out.push(Line {
                file: name.clone(),
                line: n,
                parsed,
            });
        }
        out
    }

    /// All sealed lines, in order.
    pub fn sealed_lines(&self) -> Vec<Line> {
        self.segments().iter().flat_map(|p| self.read(p)).collect()
    }

    /// The newest sealed record, if any (the last line that parses).
    pub fn last_sealed(&self) -> Option<Record> {
        self.segments()
            .iter()
            .rev()
            .find_map(|p| self.read(p).into_iter().rev().find_map(|l| l.parsed.ok()))
    }

    /// Cuts an incomplete last line off the newest segment and the pending
    /// file (a crash or a full disk mid-write); returns what was cut.
    pub fn repair_torn_tails(&self) -> Vec<TornTail> {
        let mut cut = Vec::new();
        let candidates = self
            .segments()
            .last()
            .cloned()
            .into_iter()
            .chain(std::iter::once(self.dir.join(PENDING)));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if bytes.is_empty() || bytes.ends_with(b"\n") {
                continue;
            }
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let torn = (bytes.len() - keep) as u64;
            let done = OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .and_then(|f| f.set_len(keep as u64).and_then(|()| f.sync_all()));
            match done {
                Ok(()) => cut.push(TornTail {
                    file: Self::name(&path),
                    bytes: torn,
                }),
                Err(e) => {
                    tracing::error!(error = %e, file = %path.display(), "cannot cut a torn audit line")
                }
            }
        }
        cut
    }

    /// Appends sealed records (rotating by size) and fsyncs. On failure
    /// every file touched is cut back to where it was.
    pub fn append_sealed(&self, records: &[Record]) -> std::io::Result<()> {
        let mut current: Option<(File, u64)> = None;
        // (file, length before this batch) of every file touched.
        let mut touched: Vec<(File, u64)> = Vec::new();
        let result = (|| {
            for r in records {
                let need_new = match &current {
                    Some((_, size)) => *size >= self.segment_bytes,
                    None => match self.segments().last() {
                        Some(p) => {
                            let f = open_append(p)?;
                            let size = f.metadata()?.len();
                            if size < self.segment_bytes {
                                touched.push((f.try_clone()?, size));
                                current = Some((f, size));
                                false
                            } else {
                                true
                            }
                        }
                        None => true,
                    },
                };
                if need_new {
                    let p = self
                        .dir
                        .join(format!("segment-{:012}.jsonl", r.seq.unwrap_or(0)));
                    let f = open_append(&p)?;
                    let size = f.metadata()?.len();
                    touched.push((f.try_clone()?, size));
                    current = Some((f, size));
                    sync_dir(&self.dir);
                }
                let (f, size) = current.as_mut().expect("a segment is open");
                let line = r.line();
                f.write_all(&line)?;
                *size += line.len() as u64;
            }
            for (f, _) in &touched {
                f.sync_data()?;
            }
            Ok(())
        })();
        if result.is_err() {
            for (f, len) in &touched {
                undo_append(f, *len);
            }
        }
        result
    }

    /// Appends unsealed records to the pending file and fsyncs; undone on
    /// failure.
    pub fn append_pending(&self, records: &[Record]) -> std::io::Result<()> {
        let mut f = open_append(&self.dir.join(PENDING))?;
        let before = f.metadata()?.len();
        let result = (|| {
            for r in records {
                f.write_all(&r.line())?;
            }
            f.sync_data()
        })();
        if result.is_err() {
            undo_append(&f, before);
        }
        result
    }

    /// The lines of the pending file.
    pub fn pending_lines(&self) -> Vec<Line> {
        self.read(&self.dir.join(PENDING))
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
        let f = open_read(&self.dir.join(CHECKPOINT)).ok()?;
        let mut text = String::new();
        f.take(4096).read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether a checkpoint file exists (even an unreadable one).
    pub fn has_checkpoint(&self) -> bool {
        std::fs::symlink_metadata(self.dir.join(CHECKPOINT)).is_ok()
    }

    /// Replaces the log with `keep` (records after the cut) and writes the
    /// checkpoint, in an order that survives a crash at any point (and is
    /// completed at the next start): new segment, checkpoint, old segments
    /// removed, new segment renamed.
    pub fn rewrite(&self, keep: &[Record], cp: &Checkpoint) -> std::io::Result<()> {
        let old = self.segments();
        let first = keep.first().and_then(|r| r.seq).unwrap_or(cp.seq + 1);
        let tmp = self.dir.join(format!("segment-{first:012}.jsonl.new"));
        {
            let mut f = create_new(&tmp)?;
            for r in keep {
                f.write_all(&r.line())?;
            }
            f.sync_all()?;
        }
        let cp_tmp = self.dir.join("checkpoint.json.new");
        {
            let mut f = create_new(&cp_tmp)?;
            f.write_all(&serde_json::to_vec(cp).expect("a checkpoint serialises"))?;
            f.sync_all()?;
        }
        std::fs::rename(&cp_tmp, self.dir.join(CHECKPOINT))?;
        for p in old {
            std::fs::remove_file(p)?;
        }
        self.finish_prune()
    }

    /// Completes a prune: a checkpoint in place means every segment left
    /// from before it goes, and the new segment takes its name.
    fn finish_prune(&self) -> std::io::Result<()> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        let renames: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = Self::name(p);
                n.starts_with("segment-") && n.ends_with(".jsonl.new")
            })
            .collect();
        if renames.is_empty() {
            return Ok(());
        }
        if self.checkpoint().is_none() {
            // The prune stopped before its checkpoint: nothing changed yet.
            for p in renames {
                std::fs::remove_file(p)?;
            }
            sync_dir(&self.dir);
            return Ok(());
        }
        for p in self.segments() {
            std::fs::remove_file(p)?;
        }
        for p in renames {
            let name = Self::name(&p);
            let to = self.dir.join(name.trim_end_matches(".new"));
            std::fs::rename(&p, to)?;
        }
        sync_dir(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Files {
        Files::open(&dir.join("audit"), 1 << 20).unwrap()
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let target = d.path().join("foreign");
        std::fs::write(&target, "theirs\n").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("audit").join(PENDING)).unwrap();
        let r = crate::audit::event("x", "cli", crate::audit::daemon_peer());
        assert!(f.append_pending(&[r]).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n");
    }

    #[test]
    fn an_open_or_symlinked_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Files::open(&open, 100).is_err());
        let link = d.path().join("link");
        std::os::unix::fs::symlink(d.path(), &link).unwrap();
        assert!(Files::open(&link, 100).is_err());
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let mut r = crate::audit::event("x", "cli", crate::audit::daemon_peer());
        r.seq = Some(1);
        f.append_sealed(std::slice::from_ref(&r)).unwrap();
        let seg = f.segments()[0].clone();
        let mut h = OpenOptions::new().append(true).open(&seg).unwrap();
        h.write_all(b"{\"seq\":2,\"ts\":").unwrap();
        assert_eq!(
            f.repair_torn_tails(),
            [TornTail {
                file: "segment-000000000001.jsonl".into(),
                bytes: 14
            }]
        );
        assert_eq!(f.sealed_lines().len(), 1);
        assert!(f.repair_torn_tails().is_empty());
    }
}
