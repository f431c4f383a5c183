//! Reading the import file and cutting the planned requests into stream
//! messages: the file is read into a buffer wiped on drop (capped at
//! `MAX_IMPORT_BYTES`); a secret larger than one message goes in parts.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use prost::Message;
use secretctl_proto::rules::{MAX_IMPORT_BYTES, TRANSFER_PART_BYTES};
use secretctl_proto::v1::{Conflict, ImportChunk, ImportEntry, SetRequest};
use zeroize::Zeroizing;

use crate::error::Result;

/// Reads all of `r` (at most `MAX_IMPORT_BYTES`) into a buffer that is
/// wiped when dropped, and whose earlier, smaller copies are wiped too.
fn read_all(mut r: impl Read, hint: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(hint.min(MAX_IMPORT_BYTES) + 1));
    let mut chunk = Zeroizing::new([0u8; 64 * 1024]);
    loop {
        let n = r.read(&mut chunk[..])?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > MAX_IMPORT_BYTES {
            return Err(std::io::Error::other(format!(
                "it is larger than {} MiB: split it",
                MAX_IMPORT_BYTES >> 20
            )));
        }
        if buf.len() + n > buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity((buf.len() + n) * 2));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    if path.as_os_str() == "-" {
        return read_all(std::io::stdin().lock(), 0).context("cannot read stdin");
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    read_all(f, size).with_context(|| format!("cannot read {}", path.display()))
}

/// Splits the requests into stream messages of about
/// [`TRANSFER_PART_BYTES`]; a secret larger than that goes in parts
/// (`continued`), at least one field each.
pub fn chunks(
    sends: Vec<(String, SetRequest)>,
    conflict: Conflict,
    dry_run: bool,
) -> Vec<ImportChunk> {
    let mut out = vec![ImportChunk {
        conflict: conflict as i32,
        dry_run,
        entries: Vec::new(),
    }];
    let mut size = 0;
    let mut push = |out: &mut Vec<ImportChunk>, e: ImportEntry| {
        let n = e.encoded_len() + 8;
        if size + n > TRANSFER_PART_BYTES && !out.last().is_some_and(|c| c.entries.is_empty()) {
            out.push(ImportChunk {
                conflict: conflict as i32,
                dry_run,
                entries: Vec::new(),
            });
            size = 0;
        }
        size += n;
        out.last_mut().expect("never empty").entries.push(e);
    };
    for (origin, mut req) in sends {
        if req.encoded_len() <= TRANSFER_PART_BYTES {
            push(
                &mut out,
                ImportEntry {
                    secret: Some(req),
                    origin,
                    continued: false,
                },
            );
            continue;
        }
        // Split: the first part keeps the metadata and as many fields as
        // fit, the rest follow as continued parts.
        let mut rest = std::mem::take(&mut req.fields).into_iter().peekable();
        let mut first = true;
        while first || rest.peek().is_some() {
            let mut part = if first {
                std::mem::take(&mut req)
            } else {
                SetRequest {
                    key: req.key.clone(),
                    ..Default::default()
                }
            };
            if first {
                req.key = part.key.clone();
            }
            let mut bytes = part.encoded_len();
            while let Some(f) = rest.peek() {
                let n = f.encoded_len() + 8;
                if bytes + n > TRANSFER_PART_BYTES && !part.fields.is_empty() {
                    break;
                }
                bytes += n;
                part.fields.push(rest.next().expect("peeked"));
            }
            push(
                &mut out,
                ImportEntry {
                    secret: Some(part),
                    origin: origin.clone(),
                    continued: !first,
                },
            );
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secretctl_proto::v1::FieldInput;

    #[test]
    fn large_secrets_are_sent_in_parts_and_batches_stay_small() {
        let big = |key: &str, n: usize| SetRequest {
            key: key.into(),
            fields: (0..n)
                .map(|i| FieldInput::new(format!("f{i}"), vec![b'x'; 1024 * 1024]))
                .collect(),
            notes: Some("n".into()),
            ..Default::default()
        };
        let sends = vec![
            ("line 1".to_string(), big("a", 10)),
            ("line 2".to_string(), big("b", 1)),
        ];
        let msgs = chunks(sends, Conflict::Overwrite, true);
        assert!(
            msgs.iter()
                .all(|m| m.encoded_len() < 2 * TRANSFER_PART_BYTES)
        );
        assert!(
            msgs.iter()
                .all(|m| m.conflict == Conflict::Overwrite as i32 && m.dry_run)
        );
        let entries: Vec<&ImportEntry> = msgs.iter().flat_map(|m| &m.entries).collect();
        let a: Vec<&&ImportEntry> = entries
            .iter()
            .filter(|e| e.secret.as_ref().unwrap().key == "a")
            .collect();
        assert!(a.len() >= 3);
        assert!(!a[0].continued && a[1..].iter().all(|e| e.continued));
        assert_eq!(a[0].secret.as_ref().unwrap().notes.as_deref(), Some("n"));
        let fields: usize = a
            .iter()
            .map(|e| e.secret.as_ref().unwrap().fields.len())
            .sum();
        assert_eq!(fields, 10);
        assert_eq!(entries.last().unwrap().secret.as_ref().unwrap().key, "b");
    }

    #[test]
    fn reading_is_capped() {
        let data = vec![b'a'; 200_000];
        assert_eq!(read_all(data.as_slice(), 0).unwrap().len(), 200_000);
    }
}
