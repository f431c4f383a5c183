//! The one typed client that dials `secretctld` over its Unix socket.
//!
//! Every process that talks to the daemon (CLI, MCP shim, tests) connects
//! here, so socket dialing and the classification of connection failures
//! live in exactly one place:
//! - the socket cannot be connected to → [`RpcError::Unreachable`] (exit 6);
//! - the socket accepted but the daemon closed the connection before
//!   answering → [`RpcError::Refused`] (its peer-uid check said no);
//! - anything the daemon answered → [`RpcError::Status`], whose gRPC code is
//!   the error contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::v1::agent_client::AgentClient;
use crate::v1::audit_client::AuditClient;
use crate::v1::daemon_client::DaemonClient;
use crate::v1::runner_client::RunnerClient;
use crate::v1::vault_client::VaultClient;

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Nothing accepted a connection on the socket.
    #[error("daemon unreachable at {}: {reason}", path.display())]
    Unreachable { path: PathBuf, reason: String },
    /// The daemon accepted the connection, then closed it unread.
    #[error("connection refused by secretctld at {} (peer uid mismatch?)", path.display())]
    Refused { path: PathBuf },
    /// The daemon answered with an error status.
    #[error("{}", .0.message())]
    Status(tonic::Status),
}

impl RpcError {
    /// The gRPC code when the daemon answered, else `None`.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            RpcError::Status(s) => Some(s.code()),
            _ => None,
        }
    }

    /// True for the contract's "vault is locked" refusal.
    pub fn is_locked(&self) -> bool {
        matches!(self, RpcError::Status(s)
            if s.code() == tonic::Code::FailedPrecondition
                && s.message().starts_with(crate::LOCKED_MESSAGE))
    }
}

/// A lazily connected channel to the daemon plus the knowledge needed to
/// explain its failures. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    path: PathBuf,
    /// Set once the connector has a connected socket: a later transport
    /// failure means the daemon hung up on us rather than being absent.
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("path", &self.path).finish()
    }
}

impl Client {
    /// Prepares a channel to the socket at `path`. Nothing is dialed until the
    /// first call, so this never fails for a missing daemon; calls do.
    /// Must be called inside a tokio runtime (the channel spawns its worker).
    pub fn new(path: &Path) -> Self {
        let connected = Arc::new(AtomicBool::new(false));
        let socket = path.to_path_buf();
        let flag = connected.clone();
        // The URI is a placeholder: the connector below ignores it.
        let channel = Endpoint::from_static("http://secretctld.invalid")
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                let flag = flag.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(&socket).await?;
                    flag.store(true, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Client {
            channel,
            path: path.to_path_buf(),
            connected,
        }
    }

    /// The socket this client dials.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Session control: status, init, unlock, lock.
    pub fn daemon(&self) -> DaemonClient<Channel> {
        DaemonClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    /// Secret CRUD.
    pub fn vault(&self) -> VaultClient<Channel> {
        VaultClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Running commands with secrets.
    pub fn runner(&self) -> RunnerClient<Channel> {
        RunnerClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The agent service (what the MCP shim may ask).
    pub fn agent(&self) -> AgentClient<Channel> {
        AgentClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Reading and checking the audit log.
    pub fn audit(&self) -> AuditClient<Channel> {
        AuditClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE * 4)
    }

    /// The raw channel, for services added by later protocol versions.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Turns a failed call's status into an [`RpcError`] that tells an absent
    /// daemon, a refusing daemon and a daemon-side error apart.
    pub fn classify(&self, status: tonic::Status) -> RpcError {
        // A status the daemon sent has no local source; one made from a
        // transport failure does (or is Unavailable, a code the daemon
        // never answers with): then the connection itself failed.
        let transport = std::error::Error::source(&status).is_some();
        if !transport && status.code() != tonic::Code::Unavailable {
            return RpcError::Status(status);
        }
        if self.connected.load(Ordering::SeqCst) {
            RpcError::Refused {
                path: self.path.clone(),
            }
        } else {
            RpcError::Unreachable {
                path: self.path.clone(),
                reason: root_cause(&status),
            }
        }
    }

    /// Asks the daemon for its status; the readiness probe every launcher uses.
    pub async fn status(&self) -> Result<crate::v1::StatusResponse, RpcError> {
        self.daemon()
            .status(crate::v1::StatusRequest::default())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.classify(s))
    }
}

/// Largest message either side accepts: a 1 MiB value plus 100 fields of
/// overhead fit well within it.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn root_cause(status: &tonic::Status) -> String {
    let mut err: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut last = status.message().to_string();
    while let Some(e) = err {
        last = e.to_string();
        err = e.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_socket_is_unreachable() {
        let dir = std::env::temp_dir().join(format!("sc-proto-{}", std::process::id()));
        let c = Client::new(&dir.join("none.sock"));
        assert!(matches!(
            c.status().await,
            Err(RpcError::Unreachable { .. })
        ));
    }

    #[tokio::test]
    async fn closed_at_accept_is_refused() {
        let dir = std::env::temp_dir().join(format!("sc-proto-r-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("r.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        // Accept and hang up at once, as the daemon does for a foreign uid.
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let c = Client::new(&sock);
        let err = c.status().await.unwrap_err();
        assert!(matches!(err, RpcError::Refused { .. }), "{err:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
