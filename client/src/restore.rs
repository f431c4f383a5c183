//! `secretctl restore` (contract §10): reads the password, streams the
//! backup file to the daemon (which checks everything before it touches
//! anything, and does the swap) and prints what was, or would be, done.

use anyhow::Context;
use secretctl_proto::v1::RestoreChunk;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use zeroize::Zeroizing;

use crate::cli::RestoreArgs;
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::password;

/// Pieces of the backup file sent to the daemon.
const CHUNK: usize = 1 << 20;
/// Largest backup file `restore` sends (the daemon's limit too).
const MAX_BACKUP_BYTES: u64 = 4 << 30;

/// The password of a backup to restore: with `--backup-password`,
/// `--password-stdin`, `SECRETCTL_BACKUP_PASSWORD` or a prompt; otherwise
/// the master password the vault had when the backup was taken, from
/// `--password-stdin`, `SECRETCTL_PASSWORD` or a prompt.
fn restore_password(separate: bool, from_stdin: bool) -> Result<Zeroizing<Vec<u8>>> {
    if !separate {
        return password::master_password(from_stdin, false, None);
    }
    let pw = if from_stdin {
        password::read_stdin_value().context("cannot read the password")?
    } else if let Some(v) = std::env::var_os("SECRETCTL_BACKUP_PASSWORD").filter(|v| !v.is_empty())
    {
        Zeroizing::new(v.into_encoded_bytes())
    } else if password::interactive() {
        password::prompt_hidden("Backup password: ")?
    } else {
        return Err(CliError::usage("no backup password given")
            .hint("run in a terminal, pipe it with --password-stdin, or set SECRETCTL_BACKUP_PASSWORD")
            .into());
    };
    if pw.is_empty() {
        return Err(CliError::usage("the password is empty").into());
    }
    Ok(pw)
}

pub async fn restore(a: RestoreArgs, json_out: bool) -> Result<()> {
    let shown = a.file.display().to_string();
    let mut file = tokio::fs::File::open(&a.file)
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    let meta = file
        .metadata()
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!("{shown} is not a file")).into());
    }
    if meta.len() > MAX_BACKUP_BYTES {
        return Err(CliError::usage(format!(
            "{shown} is larger than {} GiB: not a secretctl backup",
            MAX_BACKUP_BYTES >> 30
        ))
        .into());
    }
    let (client, st) = connect::connect().await?;
    let agent = crate::reauth::is_agent(&st);
    let consent =
        crate::reauth::consent_password(&client, &st, "restore the vault from a backup").await?;
    let mut pw = match (consent, agent) {
        (Some(_), _) => password::prompt_hidden("Password of the backup: ")?,
        (None, true) => Zeroizing::default(),
        (None, false) => restore_password(a.backup_password, a.password_stdin)?,
    };
    let mut first_data = vec![0u8; CHUNK];
    let n = read_full(&mut file, &mut first_data)
        .await
        .with_context(|| format!("cannot read {shown}"))?;
    first_data.truncate(n);
    let (tx, rx) = mpsc::channel::<RestoreChunk>(4);
    let first = RestoreChunk {
        password: std::mem::take(&mut *pw),
        verify_only: a.verify_only,
        dry_run: a.dry_run,
        data: first_data,
        file_name: a
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    drop(pw);
    tx.send(first).await.expect("the receiver is still here");
    let reader = tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut file, &mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(n);
            let mut chunk = RestoreChunk::default();
            chunk.data = buf;
            if tx.send(chunk).await.is_err() {
                return Ok(()); // the daemon answered early (a refusal)
            }
        }
    });
    let what = if a.verify_only {
        "cannot verify the backup"
    } else if a.dry_run {
        "cannot check the backup"
    } else {
        "cannot restore the backup"
    };
    let answer = client.transfer().restore(ReceiverStream::new(rx)).await;
    let read = reader.await;
    let resp = answer
        .map_err(|s| client.classify(s))
        .context(what)?
        .into_inner();
    match read {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e).with_context(|| format!("cannot read {shown}")),
        Err(e) => {
            return Err(anyhow::anyhow!("{e}")).with_context(|| format!("cannot read {shown}"));
        }
    }
    let taken = secretctl_proto::duration::rfc3339(resp.created_at);
    if json_out {
        return print_json(&json!({
            "file": shown,
            "verify_only": a.verify_only,
            "dry_run": a.dry_run,
            "changed": resp.changed,
            "secret_count": resp.secret_count,
            "audit_records": resp.audit_records,
            "created_at": taken,
            "previous_vault": (!resp.previous_vault.is_empty()).then_some(&resp.previous_vault),
            "deep_checked": resp.deep_checked,
            "damaged": resp.damaged,
            "notes": resp.notes,
        }));
    }
    let head = if a.verify_only {
        format!(
            "backup OK: {shown}, taken {taken}: {} secrets, {} audit records",
            resp.secret_count, resp.audit_records
        )
    } else if a.dry_run {
        format!(
            "dry run: {shown} (taken {taken}) checks out; nothing was changed. A restore would do this:"
        )
    } else {
        format!(
            "restored {shown} (taken {taken}): {} secrets",
            resp.secret_count
        )
    };
    outln!("{head}");
    for note in &resp.notes {
        outln!("  - {}", secretctl_proto::text::escape(note));
    }
    for d in &resp.damaged {
        eprintln!(
            "warning: damaged in the backup: {}",
            secretctl_proto::text::escape(d)
        );
    }
    if resp.changed {
        eprintln!("next: secretctl unlock (with the master password the vault had on {taken})");
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = file.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}
