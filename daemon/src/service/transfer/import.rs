//! `Import` (contract §10): a client stream of entries, stored in one vault
//! transaction once the stream ends — all of them, or none.
//!
//! A change (§9): an agent's caller is refused unless re-authenticated,
//! before a byte of the stream is read. Everything the client sends is
//! checked here again (sizes, key and field names, UTF-8, NUL bytes, the
//! caps below); a refusal names the entry's origin and key, never a value.
//! Audited as `import` with the keys it changed (or would change: a dry
//! run says so in `command` and `detail`).

use std::sync::Arc;

use prost::Message;
use secretctl_proto::rules::{MAX_IMPORT_BYTES, MAX_IMPORT_ENTRIES};
use secretctl_proto::v1::{Conflict, ImportChunk, ImportOutcome, ImportResponse};
use tonic::{Request, Response, Status, Streaming};

use crate::caller::Action;
use crate::service::{self, blocking};
use crate::session::{Session, Use};
use crate::vault::{self, Done, ImportEntry, ImportError};

/// Longest origin ("line 12", "item 3 'GitHub'") an entry may carry.
const MAX_ORIGIN: usize = 1024;

impl From<ImportError> for Status {
    fn from(e: ImportError) -> Status {
        match e {
            ImportError::Conflict(m) => Status::already_exists(m),
            ImportError::Vault(v) => v.into(),
        }
    }
}

pub async fn import(
    session: &Arc<Session>,
    req: Request<Streaming<ImportChunk>>,
) -> Result<Response<ImportResponse>, Status> {
    let who = service::conn_of(&req);
    let mut stream = req.into_inner();
    let mut rec = service::event("import", "cli", &who);
    let result = match service::gate(&session.audit, &who, Action::Change).await {
        Ok(()) => run(session, &mut stream, &mut rec).await,
        Err(refused) => Err(refused),
    };
    service::outcome(&mut rec, &result);
    session.audit.record(rec).await?;
    result.map(Response::new)
}

/// The options of the first message.
struct Options {
    conflict: vault::Conflict,
    wire: Conflict,
    dry_run: bool,
}

fn options(chunk: &ImportChunk) -> Result<Options, Status> {
    let wire = Conflict::try_from(chunk.conflict)
        .map_err(|_| Status::invalid_argument("unknown conflict mode"))?;
    let conflict = match wire {
        Conflict::Unspecified | Conflict::Skip => vault::Conflict::Skip,
        Conflict::Overwrite => vault::Conflict::Overwrite,
        Conflict::Error => vault::Conflict::Error,
    };
    Ok(Options {
        conflict,
        wire,
        dry_run: chunk.dry_run,
    })
}

/// Reads the whole stream, checking its caps as it goes.
async fn receive(
    stream: &mut Streaming<ImportChunk>,
) -> Result<(Options, Vec<ImportEntry>), Status> {
    let mut opts: Option<Options> = None;
    let mut entries: Vec<ImportEntry> = Vec::new();
    let mut bytes = 0usize;
    while let Some(chunk) = stream.message().await? {
        bytes = bytes.saturating_add(chunk.encoded_len());
        if bytes > MAX_IMPORT_BYTES {
            return Err(Status::invalid_argument(format!(
                "the import is larger than {} MiB: split it into several files",
                MAX_IMPORT_BYTES >> 20
            )));
        }
        match &opts {
            None => opts = Some(options(&chunk)?),
            Some(o) => {
                let differs = (chunk.conflict != 0 && chunk.conflict != o.wire as i32)
                    || (chunk.dry_run && !o.dry_run);
                if differs {
                    return Err(Status::invalid_argument(
                        "only the first message of an import may carry its options",
                    ));
                }
            }
        }
        for e in chunk.entries {
            if e.origin.len() > MAX_ORIGIN {
                return Err(Status::invalid_argument(format!(
                    "an entry's origin is longer than {MAX_ORIGIN} bytes"
                )));
            }
            let Some(req) = e.secret else {
                return Err(Status::invalid_argument(format!(
                    "{}: the entry carries no secret",
                    secretctl_proto::text::shown(&e.origin)
                )));
            };
            if e.continued {
                let Some(last) = entries.last_mut().filter(|l| l.req.key == req.key) else {
                    return Err(Status::invalid_argument(format!(
                        "{}: a continued entry must follow an entry with the same key",
                        secretctl_proto::text::shown(&e.origin)
                    )));
                };
                if last.req.fields.len() + req.fields.len() > crate::secret::MAX_FIELDS {
                    return Err(Status::invalid_argument(format!(
                        "{} ('{}'): a secret has at most {} fields",
                        secretctl_proto::text::shown(&last.origin),
                        secretctl_proto::text::shown(&last.req.key),
                        crate::secret::MAX_FIELDS
                    )));
                }
                let mut req = req;
                last.req.fields.append(&mut req.fields);
                continue;
            }
            if entries.len() >= MAX_IMPORT_ENTRIES {
                return Err(Status::invalid_argument(format!(
                    "an import holds at most {MAX_IMPORT_ENTRIES} entries: split the file"
                )));
            }
            entries.push(ImportEntry {
                req,
                origin: e.origin,
            });
        }
    }
    let opts = opts.unwrap_or(Options {
        conflict: vault::Conflict::Skip,
        wire: Conflict::Skip,
        dry_run: false,
    });
    Ok((opts, entries))
}

async fn run(
    session: &Arc<Session>,
    stream: &mut Streaming<ImportChunk>,
    rec: &mut crate::audit::record::Record,
) -> Result<ImportResponse, Status> {
    // Locked or uninitialized: say so before the client sends everything.
    session.key(Use::Look)?;
    let (opts, entries) = receive(stream).await?;
    let mode = match opts.conflict {
        vault::Conflict::Skip => "skip",
        vault::Conflict::Overwrite => "overwrite",
        vault::Conflict::Error => "error",
    };
    rec.command = Some(format!(
        "import --conflict {mode}{}",
        if opts.dry_run { " --dry-run" } else { "" }
    ));
    rec.keys = entries.iter().map(|e| e.req.key.clone()).collect();
    let (vault, dk) = session.key(Use::Secret)?;
    let (conflict, dry_run) = (opts.conflict, opts.dry_run);
    let (entries, done) = blocking(move || {
        let done = vault
            .import(&dk, &entries, conflict, dry_run)
            .map_err(Status::from)?;
        Ok((entries, done))
    })
    .await?;

    let count = |d: Done| done.iter().filter(|x| **x == d).count() as u64;
    let (created, overwritten, skipped) = (
        count(Done::Create),
        count(Done::Overwrite),
        count(Done::Skip),
    );
    rec.keys = entries
        .iter()
        .zip(&done)
        .filter(|(_, d)| matches!(d, Done::Create | Done::Overwrite))
        .map(|(e, _)| e.req.key.clone())
        .collect();
    // Beside what the caller's classification put there.
    let detail = rec.detail.get_or_insert_with(|| serde_json::json!({}));
    detail["dry_run"] = dry_run.into();
    detail["conflict"] = mode.into();
    detail["entries"] = entries.len().into();
    detail["created"] = created.into();
    detail["overwritten"] = overwritten.into();
    detail["skipped"] = skipped.into();
    tracing::info!(
        entries = entries.len(),
        created,
        overwritten,
        skipped,
        dry_run,
        "import"
    );
    // Key and origin stay empty: the client has them, and 200,000 of them
    // could outgrow one message.
    let outcomes = done
        .iter()
        .map(|d| ImportOutcome {
            key: String::new(),
            origin: String::new(),
            action: d.as_str().into(),
            reason: match d {
                Done::Skip | Done::Conflict => "exists".into(),
                _ => String::new(),
            },
        })
        .collect();
    Ok(ImportResponse {
        imported: created,
        overwritten,
        skipped,
        dry_run,
        outcomes,
    })
}
