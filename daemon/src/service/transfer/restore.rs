//! `Restore` (contract §10). A change (§9): agents are refused unless their
//! connection re-authenticated, before a byte of the file is read.
//!
//! The first message carries the password and the options, every message
//! a piece of the file; the daemon writes the pieces to a private
//! directory inside `SECRETCTL_HOME` (each at most [`MAX_CHUNK`], all
//! together at most `archive::MAX_BACKUP_BYTES`), then checks the whole
//! backup before touching anything (`restore::stage`). `verify_only` stops
//! there; `dry_run` also says what a restore would do; a restore locks the
//! session, swaps the files with the audit writer paused
//! (`restore::install`) and records itself. The vault stays locked.

use std::sync::Arc;

use secretctl_proto::v1::{RestoreChunk, RestoreResponse};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};
use zeroize::Zeroizing;

use super::backup::{archive_status, file_label, passphrase};
use crate::archive;
use crate::caller::{Action, Conn};
use crate::restore::{self, AuditPlan, Plan, RestoreError, Staged};
use crate::service::{blocking, event, gate, outcome};
use crate::session::{LockReason, Session, Use};
use crate::store::StoreError;

/// Largest piece of the file in one message (the CLI sends 1 MiB).
pub const MAX_CHUNK: usize = 4 << 20;

fn restore_status(e: RestoreError) -> Status {
    let msg = e.to_string();
    match e {
        RestoreError::Archive(a) => archive_status(a),
        RestoreError::BadVault(_) | RestoreError::BadAudit(_) => Status::data_loss(msg),
        RestoreError::Invalid(_) => Status::invalid_argument(msg),
        RestoreError::Store(StoreError::Replaced) => Status::failed_precondition(msg),
        RestoreError::Io { .. } | RestoreError::Store(_) => {
            tracing::error!(error = %msg, "restore failed");
            Status::internal(msg)
        }
    }
}

/// What the record of a restore says.
#[derive(Default)]
struct Facts {
    file: String,
    mode: &'static str,
    detail: serde_json::Map<String, serde_json::Value>,
}

pub async fn restore(
    session: &Arc<Session>,
    req: Request<Streaming<RestoreChunk>>,
) -> Result<Response<RestoreResponse>, Status> {
    let who = crate::service::conn_of(&req);
    let mut stream = req.into_inner();
    let mut facts = Facts::default();
    let result = match gate(&session.audit, &who, Action::Change).await {
        Ok(()) => run(session, &who, &mut stream, &mut facts).await,
        Err(refused) => Err(refused),
    };
    let mut rec = event("restore", "cli", &who);
    let mut detail = facts.detail;
    detail.insert("file".into(), serde_json::json!(facts.file));
    if !facts.mode.is_empty() {
        detail.insert("mode".into(), serde_json::json!(facts.mode));
    }
    let d = rec.detail.get_or_insert_with(|| serde_json::json!({}));
    for (k, v) in detail {
        d[k] = v;
    }
    outcome(&mut rec, &result);
    session.audit.record(rec).await?;
    result.map(Response::new)
}

async fn run(
    session: &Arc<Session>,
    who: &Conn,
    stream: &mut Streaming<RestoreChunk>,
    facts: &mut Facts,
) -> Result<RestoreResponse, Status> {
    let mut first = stream
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the restore request carries no backup"))?;
    facts.file = file_label(&first.file_name);
    let (verify_only, dry_run) = (first.verify_only, first.dry_run);
    facts.mode = match (verify_only, dry_run) {
        (true, _) => "verify-only",
        (false, true) => "dry-run",
        (false, false) => "restore",
    };
    let password = Zeroizing::new(std::mem::take(&mut first.password));
    crate::service::daemon::check_password(&password)?;
    let passphrase = passphrase(password, "password")?;

    // The file, into a private directory.
    let mut received = restore::Timer::new();
    let dir = restore::work_dir(&session.paths.home, "restore").map_err(restore_status)?;
    let age_path = dir.path().join("backup.age");
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&age_path)
            .map_err(|e| Status::internal(format!("cannot store the received backup: {e}")))?;
        tokio::fs::File::from_std(f)
    };
    let mut total: u64 = 0;
    let mut data = std::mem::take(&mut first.data);
    drop(first);
    loop {
        if data.len() > MAX_CHUNK {
            return Err(Status::invalid_argument(format!(
                "a piece of the backup is larger than {MAX_CHUNK} bytes"
            )));
        }
        total += data.len() as u64;
        if total > archive::MAX_BACKUP_BYTES {
            return Err(Status::invalid_argument(format!(
                "the backup is larger than {} GiB, more than a restore accepts",
                archive::MAX_BACKUP_BYTES >> 30
            )));
        }
        file.write_all(&data)
            .await
            .map_err(|e| Status::internal(format!("cannot store the received backup: {e}")))?;
        match stream.message().await? {
            None => break,
            Some(mut next) => {
                if !next.password.is_empty() || next.verify_only || next.dry_run {
                    return Err(Status::invalid_argument(
                        "only the first message of a restore carries the password and options",
                    ));
                }
                data = std::mem::take(&mut next.data);
            }
        }
    }
    file.flush()
        .await
        .map_err(|e| Status::internal(format!("cannot store the received backup: {e}")))?;
    drop(file);
    if total == 0 {
        return Err(Status::invalid_argument("the backup file is empty"));
    }
    facts
        .detail
        .insert("bytes".into(), serde_json::json!(total));
    received.lap("received");

    // Everything checked before anything is touched; with the live key
    // when unlocked (looking: the idle timer is left alone).
    let live_key = session
        .key(Use::Look)
        .ok()
        .map(|(v, k)| (v.vault_id().to_vec(), k));
    let staged = blocking(move || {
        restore::stage(dir, &age_path, &passphrase, live_key).map_err(restore_status)
    })
    .await?;
    let report = staged.report.clone();
    facts
        .detail
        .insert("secrets".into(), serde_json::json!(report.secret_count));
    facts.detail.insert(
        "backup_created".into(),
        serde_json::json!(secretctl_proto::duration::rfc3339(report.created_at)),
    );
    facts
        .detail
        .insert("deep_checked".into(), serde_json::json!(report.deep));
    let mut resp = RestoreResponse {
        secret_count: report.secret_count,
        audit_records: report.audit_records,
        created_at: report.created_at,
        previous_vault: String::new(),
        notes: check_notes(&staged),
        changed: false,
        deep_checked: report.deep,
        damaged: report
            .damaged
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect(),
    };
    if verify_only {
        return Ok(resp);
    }
    let stamp = restore::stamp(&session.paths.home);
    if dry_run {
        let s = session.clone();
        let (staged, plan) = session
            .audit
            .paused(move |p| {
                let live = s.vault().ok();
                let plan = restore::plan(p, live.as_deref(), &staged, &stamp);
                (staged, plan)
            })
            .await?;
        resp.notes.extend(plan.notes(&staged, false));
        resp.notes
            .push("the vault would be locked; nothing was changed".into());
        return Ok(resp);
    }

    // The restore itself: no unlock, password change or other restore
    // meanwhile; the key goes first.
    let _gate = session.unlock_gate.lock().await;
    session.lock(LockReason::Restore, Some(who));
    let s = session.clone();
    let mut timer = restore::Timer::new();
    let (staged, plan, installed): (Staged, Plan, Result<(), RestoreError>) = session
        .audit
        .paused(move |p| {
            let live = s.vault().ok();
            let plan = restore::plan(p, live.as_deref(), &staged, &stamp);
            drop(live);
            let r = restore::install(p, &s, &staged, &plan);
            (staged, plan, r)
        })
        .await?;
    installed.map_err(restore_status)?;
    timer.lap("installed");
    tracing::info!(
        secrets = report.secret_count,
        audit = ?plan.audit,
        "vault restored from a backup"
    );
    facts.detail.insert(
        "previous_vault".into(),
        serde_json::json!(plan.previous_vault),
    );
    facts.detail.insert(
        "audit".into(),
        serde_json::json!(match plan.audit {
            AuditPlan::Keep => "kept",
            AuditPlan::Replace => "replaced",
        }),
    );
    facts
        .detail
        .insert("audit_aside".into(), serde_json::json!(plan.previous_audit));
    resp.notes.extend(plan.notes(&staged, true));
    resp.notes.push(
        "the vault is locked: unlock it with the master password it had when the backup was taken"
            .into(),
    );
    resp.previous_vault = plan.previous_vault.clone().unwrap_or_default();
    resp.changed = true;
    Ok(resp)
}

/// What the check covered.
fn check_notes(staged: &Staged) -> Vec<String> {
    let r = &staged.report;
    let mut out = vec![format!(
        "age authenticated every byte of the file; the vault file passed redb's integrity check ({} secrets)",
        r.secret_count
    )];
    if r.deep {
        out.push(format!(
            "checked with the data key ({}): every record's seal and value ({} damaged), and the audit chain ({} records) up to the vault's anchor",
            match staged.manifest.protection {
                crate::archive::Protection::MasterPassword => "from the master password that protects the backup",
                crate::archive::Protection::BackupPassword => "of the unlocked vault, the same vault",
            },
            r.damaged.len(),
            r.audit_records
        ));
    } else {
        out.push(
            "protected by a separate backup password, and no unlocked vault of the same id holds its data key: record seals and the audit chain are checked when the restored vault is unlocked ('secretctl list' shows damaged records, 'secretctl audit verify' checks the chain)".into(),
        );
    }
    out
}
