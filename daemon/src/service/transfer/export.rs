//! `Export` (contract §10): the values of the selected secrets, streamed
//! in batches of a few MiB, sorted by key.
//!
//! A reveal (§9): an agent's caller is refused unless re-authenticated.
//! The selection is resolved and audited (its key names, never values)
//! before the first value leaves; a value that then fails its integrity
//! check ends the stream with that error, recorded too.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use secretctl_proto::names;
use secretctl_proto::rules::TRANSFER_PART_BYTES;
use secretctl_proto::text;
use secretctl_proto::v1::{ExportRequest, ExportResponse, ExportedSecret};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Outbound;
use crate::caller::Action;
use crate::keyring::DataKey;
use crate::service::{self, blocking};
use crate::session::{Session, Use};
use crate::store::SecretRecord;
use crate::vault::Vault;

/// Most patterns in one export (as in a run).
const MAX_PATTERNS: usize = crate::runner::resolve::MAX_PATTERNS;
/// Secrets decrypted per blocking step.
const STEP: usize = 256;

pub async fn export(
    session: &Arc<Session>,
    req: Request<ExportRequest>,
) -> Result<Response<Outbound<ExportResponse>>, Status> {
    let who = service::conn_of(&req);
    let patterns = req.into_inner().patterns;
    let selected = match service::gate(&session.audit, &who, Action::Reveal).await {
        Ok(()) => select(session, patterns.clone()).await,
        Err(refused) => Err(refused),
    };
    let keys = match &selected {
        Ok((_, _, recs)) => recs.iter().map(|(k, _)| k.clone()).collect(),
        Err(_) => patterns,
    };
    let (vault, dk, records) =
        service::audited(&session.audit, "export", "cli", &who, keys, selected).await?;
    tracing::info!(secrets = records.len(), "export started");

    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let session = session.clone();
    tokio::spawn(async move {
        if let Err(status) = send_all(vault, dk, records, &tx).await {
            tracing::error!(error = %status.message(), "export failed");
            let _ = service::audited::<()>(
                &session.audit,
                "export",
                "cli",
                &who,
                Vec::new(),
                Err(status.clone()),
            )
            .await;
            let _ = tx.send(Err(status)).await;
        }
    });
    Ok(Response::new(
        Box::pin(ReceiverStream::new(rx)) as Outbound<ExportResponse>
    ))
}

type Selected = (Arc<Vault>, Arc<DataKey>, Vec<(String, SecretRecord)>);

/// The secrets `patterns` select (every one when empty), sorted, each
/// once; a name that does not exist or a glob that matches nothing is
/// NOT_FOUND, as in `run -k`.
async fn select(session: &Arc<Session>, patterns: Vec<String>) -> Result<Selected, Status> {
    let (vault, dk) = session.key(Use::Secret)?;
    if patterns.len() > MAX_PATTERNS {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_PATTERNS} key patterns per export"
        )));
    }
    for p in &patterns {
        names::validate_pattern(p).map_err(|e| {
            Status::invalid_argument(format!("key pattern '{}': {e}", text::shown(p)))
        })?;
    }
    let (v, k) = (vault.clone(), dk.clone());
    let records = blocking(move || {
        if patterns.is_empty() {
            return v.matching(&k, "**").map_err(Status::from);
        }
        let mut all = BTreeMap::new();
        for p in &patterns {
            let found = v.matching(&k, p).map_err(Status::from)?;
            if found.is_empty() {
                return Err(Status::not_found(if names::is_glob(p) {
                    format!("no secret matches '{p}'")
                } else {
                    format!("no secret named '{p}'")
                }));
            }
            all.extend(found);
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    Ok((vault, dk, records))
}

/// Decrypts the records a step at a time and sends them in batches of at
/// most about [`TRANSFER_PART_BYTES`]; stops quietly when the client went
/// away.
async fn send_all(
    vault: Arc<Vault>,
    dk: Arc<DataKey>,
    records: Vec<(String, SecretRecord)>,
    tx: &tokio::sync::mpsc::Sender<Result<ExportResponse, Status>>,
) -> Result<(), Status> {
    let mut rest = records.into_iter();
    let mut batch = ExportResponse::default();
    let mut size = 0;
    loop {
        let step: Vec<_> = rest.by_ref().take(STEP).collect();
        if step.is_empty() {
            break;
        }
        let (v, k) = (vault.clone(), dk.clone());
        let parts: Vec<ExportedSecret> = blocking(move || {
            let mut out = Vec::with_capacity(step.len());
            for (key, rec) in &step {
                out.extend(
                    v.exported(&k, key, rec, TRANSFER_PART_BYTES)
                        .map_err(Status::from)?,
                );
            }
            Ok(out)
        })
        .await?;
        for part in parts {
            let n = part.encoded_len() + 8;
            if size + n > TRANSFER_PART_BYTES && !batch.secrets.is_empty() {
                if tx.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                    return Ok(());
                }
                size = 0;
            }
            size += n;
            batch.secrets.push(part);
        }
    }
    if !batch.secrets.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}
