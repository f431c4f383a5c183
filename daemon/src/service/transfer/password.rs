//! `ChangePassword` (contract §10). A change (§9): agents are refused
//! unless their connection re-authenticated.
//!
//! The old password is checked like an unlock (failures counted, backoff
//! enforced); the same data key is then wrapped under a key derived from
//! the new password with a fresh salt and the new (or kept) KDF
//! parameters, and the header is replaced in one redb transaction
//! (`Vault::change_password`). Values are not re-encrypted; record seals,
//! the audit chain and the pending chain, all keyed from the data key,
//! stay valid. Works locked or unlocked; an unlocked session stays
//! unlocked.

use std::sync::Arc;

use secretctl_proto::v1::{ChangePasswordRequest, ChangePasswordResponse, KdfParams, VaultState};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::caller::Action;
use crate::crypto;
use crate::service::daemon::check_password;
use crate::service::{blocking, event, gate, outcome};
use crate::session::Session;

/// Shortest new master password (as `init`).
const MIN_CHARS: usize = 8;

pub async fn change(
    session: &Arc<Session>,
    req: Request<ChangePasswordRequest>,
) -> Result<Response<ChangePasswordResponse>, Status> {
    let who = crate::service::conn_of(&req);
    let req = req.into_inner();
    let result = match gate(&session.audit, &who, Action::Change).await {
        Ok(()) => do_change(session, req).await,
        Err(refused) => Err(refused),
    };
    let mut rec = event("password_change", "cli", &who);
    if let Ok(resp) = &result
        && let Some(k) = &resp.kdf
    {
        rec.detail.get_or_insert_with(|| serde_json::json!({}))["kdf"] = serde_json::json!({
            "memory_kib": k.memory_kib,
            "iterations": k.iterations,
            "parallelism": k.parallelism,
        });
    }
    outcome(&mut rec, &result);
    session.audit.record(rec).await?;
    result.map(Response::new)
}

async fn do_change(
    session: &Arc<Session>,
    mut req: ChangePasswordRequest,
) -> Result<ChangePasswordResponse, Status> {
    let old = Zeroizing::new(std::mem::take(&mut req.old_password));
    let new = Zeroizing::new(std::mem::take(&mut req.new_password));
    check_password(&old)?;
    check_password(&new)?;
    if String::from_utf8_lossy(&new).chars().count() < MIN_CHARS {
        return Err(Status::invalid_argument(format!(
            "the new master password must be at least {MIN_CHARS} characters"
        )));
    }
    if *old == *new {
        return Err(Status::invalid_argument(
            "the new master password is the old one",
        ));
    }
    let asked = req.kdf.take();
    let vault = session.vault()?;
    let _gate = session.unlock_gate.lock().await;
    let kdf = asked.map(|k| {
        let now = vault.kdf();
        let pick = |v: u32, keep: u32| if v == 0 { keep } else { v };
        crypto::KdfParams {
            memory_kib: pick(k.memory_kib, now.memory_kib),
            iterations: pick(k.iterations, now.iterations),
            parallelism: pick(k.parallelism, now.parallelism),
        }
    });
    if let Some(k) = &kdf {
        k.validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    }
    let v = vault.clone();
    let kdf = blocking(move || {
        let dk = v.unlock(&old).map_err(Status::from)?;
        v.change_password(&dk, &new, kdf).map_err(Status::from)
    })
    .await?;
    tracing::info!(
        kdf_memory_kib = kdf.memory_kib,
        kdf_iterations = kdf.iterations,
        kdf_parallelism = kdf.parallelism,
        "master password changed"
    );
    Ok(ChangePasswordResponse {
        kdf: Some(KdfParams {
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
        }),
        unlocked: session.state() == VaultState::Unlocked,
    })
}
