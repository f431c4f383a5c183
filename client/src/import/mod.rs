//! `secretctl import FILE` (contract §10): reads a `.env` file, a JSON
//! export (secretctl's own or a flat object), or a 1Password, Bitwarden or
//! LastPass export; plans one secret per entry; and sends them all to the
//! daemon, which stores them in one vault transaction — all or nothing.
//!
//! | module | role |
//! |---|---|
//! | `detect` | which format, when `--format` is not given |
//! | `plan` | key naming, collisions, what each entry becomes |
//! | `items` | a password manager's item → a multi-field secret |
//! | `env`, `json`, `onepassword`, `bitwarden`, `lastpass` | one format each |
//! | `table` | CSV rows with their line numbers |
//! | `send` | reading the file; stream messages of a few MiB |
//! | `report` | what is printed: per entry (dry run, `--json`) and counts |
//!
//! The file is parsed here, in full, before the daemon is asked anything:
//! a bad entry is refused naming its line or item and nothing is sent.
//! The daemon checks everything again and applies the conflict rule.
//! Messages and output name keys, origins and counts, never values.

mod bitwarden;
mod detect;
mod env;
mod items;
mod json;
mod lastpass;
mod onepassword;
mod plan;
mod report;
mod send;
mod table;

use std::io::IsTerminal;

use anyhow::Context;
use secretctl_proto::rules::MAX_IMPORT_ENTRIES;
use secretctl_proto::v1::Conflict;

use crate::cli::{ConflictMode, ImportArgs, ImportFormat};
use crate::connect;
use crate::error::{CliError, Result};
use plan::{Plan, What};

/// Largest value of one field (the daemon's limit), checked before sending
/// so an oversized one is named instead of breaking the stream.
const MAX_VALUE: usize = 1024 * 1024;
/// From this many entries on, a terminal shows a progress bar.
const PROGRESS_FROM: usize = 2000;

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

pub async fn run(a: ImportArgs, json_out: bool) -> Result<()> {
    let prefix = a.prefix.clone().unwrap_or_default();
    if !prefix.is_empty() {
        plan::check_prefix(&prefix).map_err(CliError::usage)?;
    }
    for t in &a.tags {
        plan::check_tag(t).map_err(CliError::usage)?;
    }
    let shown = a.file.display().to_string();
    let text = send::read_input(&a.file)?;
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
    let messages = send::chunks(sends, conflict, a.dry_run);
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
    report::report(&plan, &resp, format, why, a.dry_run, json_out)
}
