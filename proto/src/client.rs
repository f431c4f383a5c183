//! The one typed client that dials `secretctld` over its Unix socket.
//!
//! Every process that talks to the daemon (CLI, MCP shim, tests) connects
//! here, so socket dialing, the checks made before anything is sent, the
//! time limits and the classification of connection failures live in
//! exactly one place.
//!
//! **Before a byte is sent** ([`check_socket`], then the peer check): the
//! socket's directory must belong to us (or root) and be writable by nobody
//! else, the socket must be a socket (not a symlink) owned by us, and the
//! process that accepted the connection must run as our uid
//! (`SO_PEERCRED` / `getpeereid`). Otherwise the connection is dropped
//! unused and the call fails with [`RpcError::NotYours`]: pointed at a socket
//! in a shared directory, the CLI never hands the master password to
//! whoever listens there.
//!
//! **Time limits**: connecting (including the checks) must finish within
//! [`CONNECT_TIMEOUT`]; a call must be answered within [`REQUEST_TIMEOUT`],
//! except those that legitimately take long ([`deadline_for`]): unlock,
//! init and re-authentication run Argon2 and audit reads walk the whole log
//! ([`SLOW_REQUEST_TIMEOUT`]); runs (`Runner/Run`, `Agent/Run`) have none,
//! they last as long as the command.
//!
//! **Failures** ([`RpcError`]), each saying what happened:
//! - nothing accepted the connection → `Unreachable` (no daemon);
//! - the socket or its listener is not ours → `NotYours`;
//! - no answer in time → `Timeout` (naming a stopped daemon as stopped);
//! - the connection broke and the daemon's process is gone → `Exited`;
//! - it broke, the daemon lives but its socket is gone → `ShuttingDown`;
//! - it broke otherwise → `Refused` (the daemon closed it unanswered, e.g.
//!   at its connection limit);
//! - anything the daemon answered → `Status`, whose gRPC code is the error
//!   contract.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::v1::agent_client::AgentClient;
use crate::v1::audit_client::AuditClient;
use crate::v1::daemon_client::DaemonClient;
use crate::v1::runner_client::RunnerClient;
use crate::v1::transfer_client::TransferClient;
use crate::v1::vault_client::VaultClient;

/// Largest gRPC message either side accepts, in both directions and for
/// every service (the audit service's answers may be [`MAX_AUDIT_MESSAGE`]).
/// A 1 MiB value plus 100 fields of overhead fit well within it; the MCP
/// shim's line limit ([`MAX_MCP_LINE`]) is below it, so whatever the shim
/// accepts fits into one request.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest answer of the audit service (a page of the log).
pub const MAX_AUDIT_MESSAGE: usize = 4 * MAX_MESSAGE;
/// Longest JSON-RPC line the MCP shim reads; a longer one is answered with
/// a JSON-RPC error. Larger than any command line the system can execute
/// (Linux `ARG_MAX` is 2 MiB), and a quarter of [`MAX_MESSAGE`]: the
/// protobuf request built from a line is never larger than the line's JSON.
pub const MAX_MCP_LINE: usize = MAX_MESSAGE / 4;

/// Longest wait for a connection (dial, checks, a full backlog).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the answer to an ordinary call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for calls that run the KDF or read the whole audit log.
pub const SLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a call to `path` (`/package.Service/Method`) may take to be
/// answered; `None` for runs, which last as long as their command.
pub fn deadline_for(path: &str) -> Option<Duration> {
    match path {
        "/secretctl.v1.Runner/Run" | "/secretctl.v1.Agent/Run" => None,
        "/secretctl.v1.Daemon/Unlock"
        | "/secretctl.v1.Daemon/Init"
        | "/secretctl.v1.Daemon/Reauthenticate"
        | "/secretctl.v1.Audit/List"
        | "/secretctl.v1.Audit/Verify"
        | "/secretctl.v1.Audit/Prune"
        | "/secretctl.v1.Transfer/Export"
        | "/secretctl.v1.Transfer/Import"
        | "/secretctl.v1.Transfer/Backup"
        | "/secretctl.v1.Transfer/Restore"
        | "/secretctl.v1.Transfer/ChangePassword"
        | "/secretctl.v1.Transfer/Security" => Some(SLOW_REQUEST_TIMEOUT),
        _ => Some(REQUEST_TIMEOUT),
    }
}

/// What went wrong talking to the daemon. Every variant but `Status` means
/// the daemon did not answer the call.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Nothing accepted a connection on the socket.
    #[error("daemon unreachable at {}: {reason}", path.display())]
    Unreachable { path: PathBuf, reason: String },
    /// The socket, its directory or the process listening on it is not
    /// ours: the connection was dropped before anything was sent.
    #[error("refusing to talk to {}: {problem}", path.display())]
    NotYours { path: PathBuf, problem: String },
    /// No answer within the time limit.
    #[error("{}", timeout_message(path, *after, *pid, *stopped))]
    Timeout {
        path: PathBuf,
        after: Duration,
        /// The daemon's pid, when a connection was made.
        pid: Option<u32>,
        /// Whether that process is stopped (SIGSTOP, a debugger).
        stopped: bool,
    },
    /// The connection broke and the daemon's process no longer exists.
    #[error("secretctld{} exited before answering (it was stopped, or it crashed)", pid_part(*pid))]
    Exited { path: PathBuf, pid: Option<u32> },
    /// The connection broke while the daemon was stopping (its socket is
    /// gone or replaced, its process still alive).
    #[error("secretctld{} is shutting down", pid_part(*pid))]
    ShuttingDown { path: PathBuf, pid: Option<u32> },
    /// The daemon accepted the connection, then closed it unanswered.
    #[error("secretctld{} at {} closed the connection without answering (it may be at its connection limit)", pid_part(*pid), path.display())]
    Refused { path: PathBuf, pid: Option<u32> },
    /// The daemon answered with an error status.
    #[error("{}", .0.message())]
    Status(tonic::Status),
}

fn pid_part(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

fn timeout_message(path: &Path, after: Duration, pid: Option<u32>, stopped: bool) -> String {
    let secs = after.as_secs();
    match (pid, stopped) {
        (Some(p), true) => format!(
            "secretctld (pid {p}) did not answer within {secs} s: the process is stopped (SIGSTOP or a debugger)"
        ),
        (Some(p), false) => {
            format!("secretctld (pid {p}) did not answer within {secs} s: it is busy or hung")
        }
        (None, _) => format!(
            "secretctld at {} did not accept the connection within {secs} s: it is stopped or overloaded",
            path.display()
        ),
    }
}

impl RpcError {
    /// The gRPC code when the daemon answered, else `None`.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            RpcError::Status(s) => Some(s.code()),
            _ => None,
        }
    }

    /// True when the daemon did not answer the call (any variant but
    /// `Status`).
    pub fn is_connection(&self) -> bool {
        !matches!(self, RpcError::Status(_))
    }

    /// True for the contract's "vault is locked" refusal.
    pub fn is_locked(&self) -> bool {
        matches!(self, RpcError::Status(s)
            if s.code() == tonic::Code::FailedPrecondition
                && s.message().starts_with(crate::LOCKED_MESSAGE))
    }
}

/// Why dialing failed; carried inside the transport error to `classify`.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    NotYours(String),
    #[error("connect timed out")]
    Timeout,
}

/// A call that got no answer within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {} s", .0.as_secs())]
struct DeadlineExceeded(Duration);

/// What the connector learnt about the daemon it reached.
#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    /// A connection was made and passed the checks.
    connected: bool,
    pid: Option<u32>,
    /// The socket file's (device, inode) when we connected.
    socket_id: Option<(u64, u64)>,
}

/// The channel to the daemon with per-call deadlines ([`deadline_for`]).
/// Every typed client of [`Client`] sends through it.
#[derive(Clone)]
pub struct Transport {
    channel: Channel,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl tower::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.channel, cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let deadline = deadline_for(req.uri().path());
        let call = tower::Service::call(&mut self.channel, req);
        Box::pin(async move {
            match deadline {
                None => call.await.map_err(Into::into),
                Some(d) => match tokio::time::timeout(d, call).await {
                    Ok(r) => r.map_err(Into::into),
                    Err(_) => Err(Box::new(DeadlineExceeded(d)) as tonic::codegen::StdError),
                },
            }
        })
    }
}

/// A lazily connected channel to the daemon plus the knowledge needed to
/// explain its failures. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    path: PathBuf,
    peer: Arc<Mutex<Peer>>,
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
        Client::for_uid(path, nix::unistd::geteuid().as_raw())
    }

    /// Like [`Client::new`], expecting the socket and its listener to
    /// belong to `uid`.
    fn for_uid(path: &Path, uid: u32) -> Self {
        let peer = Arc::new(Mutex::new(Peer::default()));
        let socket = path.to_path_buf();
        let state = peer.clone();
        // The URI is a placeholder: the connector below ignores it.
        let channel = Endpoint::from_static("http://secretctld.invalid")
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                let state = state.clone();
                async move {
                    // The state describes the latest attempt only.
                    *state.lock().expect("peer lock is never poisoned") = Peer::default();
                    let (stream, found) =
                        match tokio::time::timeout(CONNECT_TIMEOUT, dial(&socket, uid)).await {
                            Ok(r) => r?,
                            Err(_) => return Err(std::io::Error::other(DialError::Timeout)),
                        };
                    *state.lock().expect("peer lock is never poisoned") = found;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Client {
            transport: Transport { channel },
            path: path.to_path_buf(),
            peer,
        }
    }

    /// The socket this client dials.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of the daemon this client reached, once it connected.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.peer().pid
    }

    fn peer(&self) -> Peer {
        *self.peer.lock().expect("peer lock is never poisoned")
    }

    /// Session control: status, init, unlock, lock.
    pub fn daemon(&self) -> DaemonClient<Transport> {
        DaemonClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Secret CRUD.
    pub fn vault(&self) -> VaultClient<Transport> {
        VaultClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Running commands with secrets.
    pub fn runner(&self) -> RunnerClient<Transport> {
        RunnerClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The agent service (what the MCP shim may ask).
    pub fn agent(&self) -> AgentClient<Transport> {
        AgentClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Reading and checking the audit log.
    pub fn audit(&self) -> AuditClient<Transport> {
        AuditClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_AUDIT_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Export, import, backup, restore, password change, security.
    pub fn transfer(&self) -> TransferClient<Transport> {
        TransferClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The raw transport, for services added by later protocol versions.
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// Turns a failed call's status into an [`RpcError`] that says what
    /// happened: the daemon's own answer, or why there was none.
    pub fn classify(&self, status: tonic::Status) -> RpcError {
        // A status the daemon sent has no local source; one made from a
        // transport failure does (or is Unavailable, a code the daemon
        // never answers with): then the connection itself failed.
        let transport = std::error::Error::source(&status).is_some();
        if !transport && status.code() != tonic::Code::Unavailable {
            return RpcError::Status(status);
        }
        let path = self.path.clone();
        let peer = self.peer();
        if let Some(d) = find::<DeadlineExceeded>(&status) {
            return RpcError::Timeout {
                path,
                after: d.0,
                pid: peer.pid,
                stopped: peer.pid.is_some_and(is_stopped),
            };
        }
        match find::<DialError>(&status) {
            Some(DialError::NotYours(problem)) => {
                return RpcError::NotYours {
                    path,
                    problem: problem.clone(),
                };
            }
            Some(DialError::Timeout) => {
                return RpcError::Timeout {
                    path,
                    after: CONNECT_TIMEOUT,
                    pid: None,
                    stopped: false,
                };
            }
            None => {}
        }
        if !peer.connected {
            return RpcError::Unreachable {
                path,
                reason: root_cause(&status),
            };
        }
        let pid = peer.pid;
        if pid.is_some_and(gone_soon) {
            return RpcError::Exited { path, pid };
        }
        // A daemon that stops removes its socket first (and one whose socket
        // was removed stops): a missing or replaced socket file means it is
        // on its way out.
        if peer.socket_id.is_some() && socket_id(&path) != peer.socket_id {
            return RpcError::ShuttingDown { path, pid };
        }
        RpcError::Refused { path, pid }
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

/// Connects to `path` once the checks pass; retries while the daemon's
/// backlog is full (the caller bounds the wait).
async fn dial(path: &Path, uid: u32) -> std::io::Result<(tokio::net::UnixStream, Peer)> {
    check_socket(path, uid).map_err(|p| std::io::Error::other(DialError::NotYours(p)))?;
    let mut pause = Duration::from_millis(5);
    let stream = loop {
        match tokio::net::UnixStream::connect(path).await {
            Ok(s) => break s,
            // EAGAIN: the listen backlog is full (a stopped or flooded
            // daemon). Try again until the connect deadline.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    };
    let cred = stream.peer_cred()?;
    if cred.uid() != uid {
        return Err(std::io::Error::other(DialError::NotYours(format!(
            "the process listening there{} runs as uid {}, not as you (uid {uid}); nothing was sent to it",
            cred.pid()
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default(),
            cred.uid()
        ))));
    }
    let peer = Peer {
        connected: true,
        pid: cred.pid().and_then(|p| u32::try_from(p).ok()),
        socket_id: socket_id(path),
    };
    Ok((stream, peer))
}

/// Checks, before dialing, that the socket at `path` can only be the
/// daemon of `uid`: its directory belongs to `uid` or root and nobody else
/// may write to it, and the socket itself is a socket owned by `uid`.
/// A missing socket is not refused here (dialing it reports it missing).
/// Returns what is wrong, with the fix.
pub fn check_socket(path: &Path, uid: u32) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) => {
            if meta.uid() != uid && meta.uid() != 0 {
                return Err(format!(
                    "its directory {} is owned by uid {}, not by you (uid {uid}): use a socket in a directory of your own (SECRETCTL_SOCKET)",
                    dir.display(),
                    meta.uid()
                ));
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(format!(
                    "its directory {} has mode {mode:04o}: others could replace the socket; run 'chmod 700 {}'",
                    dir.display(),
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot inspect its directory {}: {e}",
                dir.display()
            ));
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect it: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Err(
            "it is a symlink: set SECRETCTL_SOCKET to the socket itself, in a directory of your own"
                .into(),
        );
    }
    if !meta.file_type().is_socket() {
        return Err("it is not a socket".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "the socket is owned by uid {}, not by you (uid {uid}): someone else's process listens there",
            meta.uid()
        ));
    }
    Ok(())
}

/// The socket file's (device, inode), if it exists.
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Whether process `pid` exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None)
        .is_err_and(|e| e == nix::errno::Errno::ESRCH)
    {
        return false;
    }
    proc_state(pid) != Some('Z')
}

/// Whether process `pid` is gone or goes within 100 ms: a dying process
/// closes its sockets a moment before it becomes a zombie.
fn gone_soon(pid: u32) -> bool {
    for _ in 0..20 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Whether process `pid` is stopped (SIGSTOP, job control, a tracer).
fn is_stopped(pid: u32) -> bool {
    matches!(proc_state(pid), Some('T' | 't'))
}

/// The state letter of `/proc/PID/stat` (Linux); `None` elsewhere.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) S ...: comm may hold spaces and parentheses.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// The first error of type `T` in `status`'s source chain, also inside an
/// `io::Error` (whose `source()` skips the error it wraps).
fn find<T: std::error::Error + 'static>(status: &tonic::Status) -> Option<&T> {
    let mut err: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = err {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(t) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<T>())
        {
            return Some(t);
        }
        err = e.source();
    }
    None
}

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
    use std::os::unix::fs::PermissionsExt;

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    fn uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[tokio::test]
    async fn missing_socket_is_unreachable() {
        let dir = private_dir();
        let c = Client::new(&dir.path().join("none.sock"));
        assert!(matches!(
            c.status().await,
            Err(RpcError::Unreachable { .. })
        ));
    }

    #[tokio::test]
    async fn closed_at_accept_is_refused() {
        let dir = private_dir();
        let sock = dir.path().join("r.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        // Accept and hang up at once, as the daemon does at its connection limit.
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let c = Client::new(&sock);
        let err = c.status().await.unwrap_err();
        assert!(matches!(err, RpcError::Refused { .. }), "{err:?}");
        assert_eq!(c.daemon_pid(), Some(std::process::id()));
    }

    #[tokio::test]
    async fn a_listener_of_another_uid_gets_nothing() {
        let dir = private_dir();
        let sock = dir.path().join("u.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let got = Arc::new(Mutex::new(0usize));
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        *seen.lock().unwrap() += n;
                    }
                });
            }
        });
        // The socket is ours; pretend we are someone else: both the file
        // check and the peer check must refuse, before anything is sent.
        let c = Client::for_uid(&sock, uid() + 1);
        let err = c.status().await.unwrap_err();
        assert!(matches!(err, RpcError::NotYours { .. }), "{err:?}");
        assert!(err.to_string().contains("owned by uid"), "{err}");
        let e = dial(&sock, uid()).await;
        assert!(e.is_ok(), "our own socket passes: {e:?}");
        tokio::task::yield_now().await;
        assert_eq!(*got.lock().unwrap(), 0, "nothing was sent");
    }

    #[test]
    fn socket_checks_name_the_problem() {
        let dir = private_dir();
        let sock = dir.path().join("s.sock");
        assert_eq!(
            check_socket(&sock, uid()),
            Ok(()),
            "missing: dialing says so"
        );
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(check_socket(&sock, uid()), Ok(()));
        let e = check_socket(&sock, uid() + 1).unwrap_err();
        assert!(e.contains("owned by uid"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_socket(&sock, uid()).unwrap_err();
        assert!(e.contains("chmod 700") && e.contains("0777"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_socket(&sock, uid()), Ok(()), "readable is fine");
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        assert!(check_socket(&link, uid()).unwrap_err().contains("symlink"));
        let file = dir.path().join("file.sock");
        std::fs::write(&file, "").unwrap();
        assert!(
            check_socket(&file, uid())
                .unwrap_err()
                .contains("not a socket")
        );
    }

    #[test]
    fn deadlines() {
        assert_eq!(deadline_for("/secretctl.v1.Runner/Run"), None);
        assert_eq!(deadline_for("/secretctl.v1.Agent/Run"), None);
        assert_eq!(
            deadline_for("/secretctl.v1.Daemon/Unlock"),
            Some(SLOW_REQUEST_TIMEOUT)
        );
        assert_eq!(
            deadline_for("/secretctl.v1.Daemon/Status"),
            Some(REQUEST_TIMEOUT)
        );
        const { assert!(MAX_MCP_LINE < MAX_MESSAGE) };
    }

    #[test]
    fn our_own_process_is_alive_and_running() {
        assert!(alive(std::process::id()));
        assert!(!is_stopped(std::process::id()));
    }
}
