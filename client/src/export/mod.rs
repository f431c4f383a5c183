//! `secretctl export` (contract §10): the values of the selected secrets,
//! as a .env file or as JSON, to stdout or to a private file.
//!
//! | module | role |
//! |---|---|
//! | `env` | `NAME='value'` lines that `import` and `set -a; . FILE` read back exactly |
//! | `json` | the lossless JSON shape `import --format json` reads |
//! | `file` | creating the output file: 0600, `O_EXCL`, never through a symlink |
//!
//! The whole export is received and checked (names, collisions, text)
//! before a byte is written, so a refusal leaves no partial file. Values
//! live in messages that wipe themselves on drop and in one output buffer
//! allocated once and wiped after writing; nothing but key names goes to
//! stderr.

mod env;
pub mod file;
pub mod json;

use std::io::{IsTerminal, Write};

use anyhow::Context;
use secretctl_proto::names;
use secretctl_proto::v1::{ExportRequest, ExportedSecret};
use zeroize::Zeroizing;

use crate::cli::{ExportArgs, ExportFormat};
use crate::connect;
use crate::error::{CliError, Result};

/// Joins the parts of secrets too large for one message (`continued`).
fn join(into: &mut Vec<ExportedSecret>, mut part: ExportedSecret) -> Result<()> {
    if !part.continued {
        into.push(part);
        return Ok(());
    }
    let key = part.meta.as_ref().map(|m| m.key.as_str()).unwrap_or("");
    match into.last_mut() {
        Some(last) if last.meta.as_ref().is_some_and(|m| m.key == key) => {
            last.fields.append(&mut part.fields);
            Ok(())
        }
        _ => Err(CliError::error("the daemon sent a part of a secret out of order").into()),
    }
}

pub async fn run(a: ExportArgs) -> Result<()> {
    for p in &a.keys {
        names::validate_pattern(p).map_err(|e| {
            CliError::usage(format!(
                "invalid key pattern '{}': {e}",
                secretctl_proto::text::shown(p)
            ))
        })?;
    }
    if let Some(path) = &a.output {
        // Early, so nothing is revealed for a file that cannot be written;
        // the write checks again.
        file::check_target(path, a.force)?;
    }
    let (client, st) = connect::connect().await?;
    let what = if a.keys.is_empty() {
        "export the values of every secret".to_string()
    } else {
        format!("export the values of {}", a.keys.join(", "))
    };
    crate::reauth::consent(&client, &st, &what).await?;
    let mut stream = client
        .transfer()
        .export(ExportRequest {
            patterns: a.keys.clone(),
        })
        .await
        .map_err(|s| client.classify(s))
        .context("cannot export")?
        .into_inner();
    let mut secrets: Vec<ExportedSecret> = Vec::new();
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| client.classify(s))
        .context("cannot export")?
    {
        for part in batch.secrets {
            join(&mut secrets, part)?;
        }
    }

    let mut out = Zeroizing::new(Vec::new());
    let count = match a.format {
        ExportFormat::Env => {
            let vars = env::variables(&secrets).map_err(CliError::error)?;
            env::render(&vars, &mut out);
            vars.len()
        }
        ExportFormat::Json => {
            json::render(&secrets, &mut out).map_err(CliError::error)?;
            secrets.len()
        }
    };
    drop(secrets);
    let noun = match a.format {
        ExportFormat::Env => "variable",
        ExportFormat::Json => "secret",
    };
    let plural = if count == 1 { "" } else { "s" };
    match &a.output {
        Some(path) => {
            file::write_private(path, &out, a.force)?;
            eprintln!("exported {count} {noun}{plural} to {}", path.display());
        }
        None => {
            if std::io::stdout().is_terminal() && count > 0 {
                eprintln!(
                    "note: printing {count} secret value{plural} to the terminal (-o FILE writes a private file)"
                );
            }
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(())
}
