//! `secretctl import FILE` (contract §10): reads a `.env` file, a JSON
//! export (secretctl's own or a flat object), or a 1Password, Bitwarden or
//! LastPass export; plans one secret per entry; and sends them all to the
//! daemon, which stores them in one vault transaction — all or nothing.
//!
//! | module | role |
//! |---|---|
//! | `detect` | which format, when `--format` is not given |
//! | `plan` | key naming, collisions, items → multi-field secrets |
//! | `env`, `json`, `onepassword`, `bitwarden`, `lastpass` | one format each |
//! | `table` | CSV rows with their line numbers |
//!
//! The file is parsed here, in full, before the daemon is asked anything:
//! a bad entry is refused naming its line or item and nothing is sent.
//! The daemon checks everything again and applies the conflict rule.
//! Messages and output name keys, origins and counts, never values.

mod bitwarden;
mod detect;
mod env;
mod json;
mod lastpass;
mod onepassword;
mod plan;
mod table;

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use prost::Message;
use secretctl_proto::rules::{MAX_IMPORT_BYTES, MAX_IMPORT_ENTRIES, TRANSFER_PART_BYTES};
use secretctl_proto::v1::{Conflict, ImportChunk, ImportEntry, ImportResponse, SetRequest};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{ConflictMode, ImportArgs, ImportFormat};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;
use plan::{Plan, What};

/// Largest value of one field (the daemon's limit), checked before sending
/// so an oversized one is named instead of breaking the stream.
const MAX_VALUE: usize = 1024 * 1024;
/// From this many entries on, a terminal shows a progress bar.
const PROGRESS_FROM: usize = 2000;

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

fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    if path.as_os_str() == "-" {
        return read_all(std::io::stdin().lock(), 0).context("cannot read stdin");
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    read_all(f, size).with_context(|| format!("cannot read {}", path.display()))
}

/// The plan of `text` in `format`.
fn plan_of(
    format: ImportFormat,
    text: &[u8],
    prefix: &str,
    tags: &[String],
) -> std::result::Result<Plan, String> {
    match format {
        ImportFormat::Env => env::plan(text, prefix, tags),
        ImportFormat::Json => {
            let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            let ours = serde_json::from_slice::<serde_json::Value>(body)
                .map(|mut doc| {
                    let yes = json::is_ours(&doc);
                    bitwarden::wipe(&mut doc);
                    yes
                })
                .unwrap_or(false);
            if ours {
                json::plan_ours(body, prefix, tags)
            } else {
                json::plan_flat(body, prefix, tags)
            }
        }
        ImportFormat::OnePasswordCsv => onepassword::plan(text, prefix, tags),
        ImportFormat::BitwardenJson => bitwarden::plan(
            text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text),
            prefix,
            tags,
        ),
        ImportFormat::LastpassCsv => lastpass::plan(text, prefix, tags),
    }
}

/// Splits the requests into stream messages of about
/// [`TRANSFER_PART_BYTES`]; a secret larger than that goes in parts
/// (`continued`), at least one field each.
fn chunks(sends: Vec<(String, SetRequest)>, conflict: Conflict, dry_run: bool) -> Vec<ImportChunk> {
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

pub async fn run(a: ImportArgs, json_out: bool) -> Result<()> {
    let prefix = a.prefix.clone().unwrap_or_default();
    if !prefix.is_empty() {
        plan::check_prefix(&prefix).map_err(CliError::usage)?;
    }
    for t in &a.tags {
        plan::check_tag(t).map_err(CliError::usage)?;
    }
    let shown = a.file.display().to_string();
    let text = read_input(&a.file)?;
    let (format, why) = match a.format {
        Some(f) => (f, "given with --format"),
        None => detect::detect(&a.file, &text)
            .map_err(|m| CliError::usage(format!("cannot tell the format of {shown}: {m}")))?,
    };
    let mut plan = plan_of(format, &text, &prefix, &a.tags)
        .map_err(|m| CliError::error(format!("{shown}: {m}")))?;
    drop(text);
    if plan.entries.len() > MAX_IMPORT_ENTRIES {
        return Err(CliError::error(format!(
            "{shown} holds {} entries: an import holds at most {MAX_IMPORT_ENTRIES}",
            plan.entries.len()
        ))
        .hint("split the file")
        .into());
    }
    // Requests leave the plan, which keeps origins, keys and notes.
    let mut sends = Vec::with_capacity(plan.sending());
    for e in &mut plan.entries {
        if let What::Send(req) = &mut e.what {
            if let Some(f) = req.fields.iter().find(|f| f.value.len() > MAX_VALUE) {
                return Err(CliError::error(format!(
                    "{shown}: {} ('{}'): the value of field '{}' is {} bytes: the limit is 1 MiB",
                    e.origin,
                    e.key,
                    f.name,
                    f.value.len()
                ))
                .into());
            }
            sends.push((e.origin.clone(), std::mem::take(req)));
        }
    }
    let sent = sends.len();

    let (client, st) = connect::connect().await?;
    crate::reauth::consent(
        &client,
        &st,
        &format!(
            "import {sent} secret{} from {shown}",
            if sent == 1 { "" } else { "s" }
        ),
    )
    .await?;
    let conflict = match a.conflict {
        ConflictMode::Skip => Conflict::Skip,
        ConflictMode::Overwrite => Conflict::Overwrite,
        ConflictMode::Error => Conflict::Error,
    };
    let messages = chunks(sends, conflict, a.dry_run);
    let bar = (std::io::stderr().is_terminal() && sent >= PROGRESS_FROM).then(|| {
        let bar = indicatif::ProgressBar::new(sent as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} secrets sent {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let ticker = bar.clone();
    let stream = tokio_stream::StreamExt::map(tokio_stream::iter(messages), move |c| {
        if let Some(b) = &ticker {
            b.inc(c.entries.iter().filter(|e| !e.continued).count() as u64);
        }
        c
    });
    let answer = client
        .transfer()
        .import(stream)
        .await
        .map_err(|s| client.classify(s))
        .with_context(|| format!("cannot import {shown}"));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let resp = answer?.into_inner();
    if resp.outcomes.len() != sent {
        return Err(CliError::error(format!(
            "the daemon answered for {} entries, {sent} were sent",
            resp.outcomes.len()
        ))
        .into());
    }
    report(&plan, &resp, format, why, a.dry_run, json_out)
}

/// Prints what happened (or would), entry by entry for a dry run or
/// `--json`, counts always. Names and counts only.
fn report(
    plan: &Plan,
    resp: &ImportResponse,
    format: ImportFormat,
    why: &str,
    dry_run: bool,
    json_out: bool,
) -> Result<()> {
    // Each planned entry with its action and reason.
    let mut answers = resp.outcomes.iter();
    let rows: Vec<(&plan::Planned, String, String)> = plan
        .entries
        .iter()
        .map(|e| match &e.what {
            What::Skip(why) => (e, "skip".to_string(), why.clone()),
            What::Send(_) => {
                let o = answers.next().expect("counted above");
                (e, o.action.clone(), o.reason.clone())
            }
        })
        .collect();
    let count = |a: &str| rows.iter().filter(|(_, x, _)| x == a).count();
    let (created, overwritten, skipped, conflicts) = (
        count("create"),
        count("overwrite"),
        count("skip"),
        count("conflict"),
    );
    let fname = detect::name(format);
    if json_out {
        print_json(&json!({
            "format": fname,
            "dry_run": dry_run,
            "imported": created,
            "overwritten": overwritten,
            "skipped": skipped,
            "conflicts": conflicts,
            "notes": plan.notes,
            "entries": rows.iter().map(|(e, action, reason)| {
                let mut o = json!({"key": e.key, "origin": e.origin, "action": action});
                if !reason.is_empty() { o["reason"] = json!(reason); }
                if let Some(n) = &e.note { o["note"] = json!(n); }
                o
            }).collect::<Vec<_>>(),
        }))?;
    } else if dry_run {
        outln!("format: {fname} ({why})");
        for n in &plan.notes {
            outln!("note: {n}");
        }
        let width = rows
            .iter()
            .map(|(e, _, _)| e.key.len())
            .max()
            .unwrap_or(0)
            .min(48);
        for (e, action, reason) in &rows {
            let mut about = Vec::new();
            if !reason.is_empty() {
                about.push(reason.clone());
            }
            if let Some(n) = &e.note {
                about.push(n.clone());
            }
            let about = if about.is_empty() {
                String::new()
            } else {
                format!("  ({})", about.join("; "))
            };
            outln!(
                "{action:<9} {:<width$}  {}{about}",
                e.key,
                secretctl_proto::text::escape(&e.origin)
            );
        }
        outln!(
            "would import {created}, overwrite {overwritten}, skip {skipped} (dry run: nothing was changed)"
        );
    } else {
        for n in &plan.notes {
            eprintln!("note: {n}");
        }
        for (e, _, _) in &rows {
            if let Some(n) = &e.note {
                eprintln!(
                    "note: {} ('{}'): {n}",
                    secretctl_proto::text::escape(&e.origin),
                    e.key
                );
            }
        }
        outln!("imported {created}, overwritten {overwritten}, skipped {skipped}");
    }
    if conflicts > 0 {
        return Err(CliError::error(format!(
            "the import would be refused: {conflicts} key{} already exist{} and --conflict is error",
            if conflicts == 1 { "" } else { "s" },
            if conflicts == 1 { "s" } else { "" },
        ))
        .hint("use --conflict skip or overwrite, or another --prefix")
        .into());
    }
    Ok(())
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
