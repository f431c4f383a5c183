//! gRPC services. gRPC status codes are the error contract with clients:
//!
//! | code | meaning | CLI exit |
//! |---|---|---|
//! | `FAILED_PRECONDITION` | vault locked (`LOCKED_MESSAGE`) or not initialized | 3 / 1 |
//! | `NOT_FOUND` | no such secret or field | 4 |
//! | `PERMISSION_DENIED` | the command policy refused an agent's run | 5 |
//! | `INVALID_ARGUMENT` | a request broke a rule; nothing changed | 2 |
//! | `ALREADY_EXISTS` | `init` on an initialized vault | 1 |
//! | `UNAUTHENTICATED` | wrong password | 1 |
//! | `RESOURCE_EXHAUSTED` | unlock backoff in force; agent run queue full | 1 |
//! | `DATA_LOSS` | a ciphertext failed its integrity check | 1 |
//! | `INTERNAL` | storage or system failure | 1 |
//!
//! The daemon never answers `UNAVAILABLE`: clients read that code as "the
//! connection failed". Status messages name keys and fields, never values.
//!
//! Every domain error becomes a status here and nowhere else.

mod agents;
pub mod audit;
pub mod daemon;
mod settings;
pub mod transfer;
pub mod vault;

use std::sync::Arc;

use tonic::Status;

use crate::caller::conn::ConnInfo;
use crate::caller::{Action, Caller, Conn, Refusal};
use crate::runner::RunError;
use crate::runner::resolve::ResolveError;
use crate::session::Gate;
use crate::vault::VaultError;

impl From<Gate> for Status {
    fn from(g: Gate) -> Status {
        match g {
            Gate::Locked => Status::failed_precondition(secretctl_proto::LOCKED_MESSAGE),
            Gate::NotInitialized => {
                Status::failed_precondition("vault is not initialized: run 'secretctl init'")
            }
        }
    }
}

impl From<VaultError> for Status {
    fn from(e: VaultError) -> Status {
        let msg = e.to_string();
        match e {
            VaultError::AlreadyInitialized(_) => Status::already_exists(msg),
            VaultError::NotFound(_) | VaultError::NoField { .. } => Status::not_found(msg),
            VaultError::AmbiguousField { .. } | VaultError::Invalid(_) => {
                Status::invalid_argument(msg)
            }
            VaultError::WrongPassword => Status::unauthenticated(msg),
            VaultError::Backoff(_) => Status::resource_exhausted(msg),
            VaultError::Integrity { .. } | VaultError::Damaged { .. } => Status::data_loss(msg),
            // A restore replaced the vault while the request waited.
            VaultError::Store(crate::store::StoreError::Replaced) => {
                Status::failed_precondition(msg)
            }
            VaultError::Crypto(_) | VaultError::Store(_) => {
                tracing::error!(error = %msg, "vault operation failed");
                Status::internal(msg)
            }
        }
    }
}

impl From<ResolveError> for Status {
    fn from(e: ResolveError) -> Status {
        match e {
            ResolveError::Invalid(m) => Status::invalid_argument(m),
            ResolveError::NotFound(m) => Status::not_found(m),
            e @ ResolveError::Expired { .. } => Status::failed_precondition(e.to_string()),
            ResolveError::Policy(m) => Status::failed_precondition(m),
            ResolveError::Vault(v) => v.into(),
        }
    }
}

impl From<RunError> for Status {
    fn from(e: RunError) -> Status {
        match e {
            RunError::Invalid(m) => Status::invalid_argument(m),
            RunError::Refused(m) | RunError::PolicyUnusable(m) => Status::permission_denied(m),
            RunError::Resolve(r) => r.into(),
            RunError::Gate(g) => g.into(),
            RunError::Busy(m) => Status::resource_exhausted(m),
            RunError::Proxy(m) => Status::failed_precondition(m),
            RunError::Internal(m) => Status::internal(m),
        }
    }
}

/// Runs blocking vault work (disk, Argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        let mut s = Status::permission_denied(r.to_string());
        s.metadata_mut().insert(
            secretctl_proto::REAUTH_METADATA,
            "1".parse().expect("ASCII"),
        );
        s
    }
}

/// The connection a request came on (classified at accept). A request
/// without one (never from the socket) is treated as an agent's.
pub fn conn_of<T>(req: &tonic::Request<T>) -> Arc<Conn> {
    req.extensions()
        .get::<ConnInfo>()
        .map(|c| c.0.clone())
        .unwrap_or_else(|| {
            Arc::new(Conn::new(
                crate::audit::record::Peer {
                    pid: None,
                    uid: nix::unistd::geteuid().as_raw(),
                    exe: None,
                },
                Caller::agent("the request carries no peer information".into()),
            ))
        })
}

/// A new audit record for `action` by the caller of `conn`.
pub fn event(action: &str, source: &str, conn: &Conn) -> crate::audit::record::Record {
    conn.event(action, source)
}

/// Asks the caller rule whether `conn` may do `action`.
pub fn allow(conn: &Conn, action: Action) -> Result<(), Status> {
    crate::caller::may(conn, action).map_err(Status::from)
}

impl From<crate::audit::AuditError> for Status {
    fn from(e: crate::audit::AuditError) -> Status {
        Status::internal(e.to_string())
    }
}

/// Before an action with effects: the caller rule, and an audit log that
/// can record it (fail closed).
pub async fn gate(audit: &crate::audit::Audit, conn: &Conn, action: Action) -> Result<(), Status> {
    allow(conn, action)?;
    audit.ensure_writable().await?;
    Ok(())
}

/// Marks an audit record with a call's outcome (the status message names
/// keys and rules, never values).
pub fn outcome<T>(rec: &mut crate::audit::record::Record, result: &Result<T, Status>) {
    rec.success = result.is_ok();
    if let Err(s) = result {
        rec.error = Some(s.message().to_string());
    }
}

/// Records a call's outcome in the audit log (waiting until it is on disk)
/// and passes the result through — unless the record could not be made
/// durable: then the answer is that error, and whatever the call produced
/// (a value, say) is dropped unsent (fail closed).
pub async fn audited<T>(
    audit: &crate::audit::Audit,
    action: &str,
    source: &str,
    who: &Conn,
    keys: Vec<String>,
    result: Result<T, Status>,
) -> Result<T, Status> {
    let mut rec = event(action, source, who);
    rec.keys = keys;
    outcome(&mut rec, &result);
    audit.record(rec).await?;
    result
}
