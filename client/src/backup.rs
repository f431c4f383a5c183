//! `secretctl backup` (contract §10). The daemon does the work (the
//! snapshot, age encryption); this side reads the passwords, receives the
//! encrypted file and writes it safely (`backup_file`).

use anyhow::Context;
use secretctl_proto::v1::{BackupRequest, StatusResponse, VaultState};
use serde_json::json;
use zeroize::Zeroizing;

use crate::backup_file::Target;
use crate::cli::BackupArgs;
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;
use crate::password;

/// Shortest separate backup password.
const MIN_BACKUP_PASSWORD: usize = 8;

fn is_agent(st: &StatusResponse) -> bool {
    crate::reauth::is_agent(st)
}

fn require_vault(st: &StatusResponse) -> Result<()> {
    if st.state == VaultState::Uninitialized as i32 {
        return Err(CliError::error("the vault is not initialized")
            .hint("run 'secretctl init'")
            .into());
    }
    Ok(())
}

/// A new password asked twice on the terminal (for an agent's process
/// only the terminal counts).
fn prompt_twice(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let first = password::prompt_hidden(&format!("{label}: "))?;
    if first.is_empty() {
        return Err(CliError::usage("the password is empty").into());
    }
    let again = password::prompt_hidden(&format!("Repeat {}: ", label.to_lowercase()))?;
    if *first != *again {
        return Err(CliError::usage("the passwords do not match").into());
    }
    Ok(first)
}

/// The separate password of a new backup: `SECRETCTL_BACKUP_PASSWORD`, or
/// a prompt asked twice; at least 8 characters, a warning when weak.
fn new_backup_password(agent: bool) -> Result<Zeroizing<Vec<u8>>> {
    let env = std::env::var_os("SECRETCTL_BACKUP_PASSWORD").filter(|v| !v.is_empty());
    let pw = match env {
        Some(v) if !agent => Zeroizing::new(v.into_encoded_bytes()),
        _ if agent || password::interactive() => prompt_twice("Backup password")?,
        _ => {
            return Err(CliError::usage("no backup password given")
                .hint("run in a terminal, or set SECRETCTL_BACKUP_PASSWORD")
                .into());
        }
    };
    let text = String::from_utf8_lossy(&pw);
    let chars = text.chars().count();
    if chars < MIN_BACKUP_PASSWORD {
        return Err(CliError::usage(format!(
            "the backup password has {chars} characters: use at least {MIN_BACKUP_PASSWORD}"
        ))
        .hint("a passphrase of four or more random words is strong and easy to type")
        .into());
    }
    let estimate = zxcvbn::zxcvbn(&text, &["secretctl"]);
    if (estimate.score() as u8) < password::WARN_BELOW_SCORE {
        eprintln!(
            "warning: this backup password is weak (strength {} of 4): anyone with the backup file can try to guess it offline",
            estimate.score() as u8
        );
    }
    Ok(pw)
}

pub async fn backup(a: BackupArgs, json_out: bool) -> Result<()> {
    // Refused before any password is asked.
    let target = Target::check(&a.output, a.force)?;
    let (client, st) = connect::connect().await?;
    require_vault(&st)?;
    let agent = is_agent(&st);
    let consent =
        crate::reauth::consent_password(&client, &st, "write a backup of the whole vault").await?;
    let (mut pw, mut backup_pw) = match (consent, agent) {
        (Some(pw), _) => {
            let b = if a.backup_password {
                new_backup_password(true)?
            } else {
                Zeroizing::default()
            };
            (pw, b)
        }
        // An agent's process without a terminal: the daemon refuses (exit
        // 5) and records the refusal.
        (None, true) => (Zeroizing::default(), Zeroizing::default()),
        (None, false) => {
            let pw = password::master_password(a.password_stdin, false, None)?;
            let b = if a.backup_password {
                new_backup_password(false)?
            } else {
                Zeroizing::default()
            };
            (pw, b)
        }
    };
    let req = BackupRequest {
        password: std::mem::take(&mut *pw),
        backup_password: std::mem::take(&mut *backup_pw),
        file_name: target.name.to_string_lossy().into_owned(),
    };
    drop((pw, backup_pw));
    let mut stream = client
        .transfer()
        .backup(req)
        .await
        .map_err(|s| client.classify(s))
        .context("cannot back up the vault")?
        .into_inner();
    let mut tmp = target.temp()?;
    let mut summary = None;
    let mut bytes = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                if summary.is_none() {
                    summary = Some((
                        chunk.secret_count,
                        chunk.audit_records,
                        chunk.created_at,
                        chunk.protection.clone(),
                    ));
                }
                bytes += chunk.data.len() as u64;
                tmp.write(&chunk.data)?;
            }
            Ok(None) => break,
            Err(s) => {
                return Err(client.classify(s)).context("cannot back up the vault");
            }
        }
    }
    let (secrets, records, created_at, protection) = summary
        .ok_or_else(|| CliError::error("the daemon sent an empty backup"))
        .context("cannot back up the vault")?;
    tmp.place(&target, a.force)?;
    let shown = target.path.display();
    if json_out {
        print_json(&json!({
            "file": shown.to_string(),
            "bytes": bytes,
            "secret_count": secrets,
            "audit_records": records,
            "created_at": secretctl_proto::duration::rfc3339(created_at),
            "protection": protection,
        }))?;
    } else {
        outln!(
            "backup written to {shown}: {secrets} secrets, {records} audit records, {bytes} bytes, protected by {}",
            if protection == "backup-password" {
                "the separate backup password"
            } else {
                "the master password"
            }
        );
        eprintln!(
            "keep that password: without it the backup cannot be opened (restore with 'secretctl restore {shown}')"
        );
    }
    Ok(())
}
