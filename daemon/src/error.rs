//! Errors of starting and stopping the daemon (the socket, its directory,
//! the instance lock, an inherited listener). Request errors are gRPC
//! statuses instead; see `service`.

/// Why the daemon cannot start or keep serving. Each message says what
/// happened and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A system call failed on `what` (the cause is part of the message,
    /// not a separate error source, so a report prints it once).
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    /// A check refused to go on (unsafe directory, a live daemon, ...).
    #[error("{0}")]
    Refused(String),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Attaches what was being done to an I/O error.
pub trait IoContext<T> {
    fn context_of(self, what: impl FnOnce() -> String) -> Result<T, StartError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context_of(self, what: impl FnOnce() -> String) -> Result<T, StartError> {
        self.map_err(|cause| StartError::Io {
            what: what(),
            cause,
        })
    }
}
