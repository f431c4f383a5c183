//! The socket: where it lives, who may connect, and the serve loop.
//!
//! Invariants (contract §2–3):
//! - The socket directory (and the data directory, `main.rs`) is 0700 and
//!   ours; we refuse to start on a symlinked, foreign-owned or
//!   group/other-accessible directory rather than "fix" it, since someone
//!   else may already be watching it.
//! - One daemon per socket: a lock file (opened `O_NOFOLLOW`) held for the
//!   daemon's lifetime.
//! - A stale socket is removed only when connecting to it is refused.
//! - Every accepted connection's peer uid must equal ours; others are closed
//!   before a byte is read, and logged with their pid and uid.
//! - Connections are capped and idle ones closed (`conns`); HTTP/2 allows
//!   [`conns::MAX_STREAMS`] streams per connection; every service accepts
//!   and sends messages up to `MAX_MESSAGE`, like the clients.
//! - Stopping (SIGTERM, SIGINT, or the socket file deleted or replaced):
//!   the vault is locked **first**, the socket removed (if it is still
//!   ours) so no new client comes, runs are ended (SIGTERM to their group,
//!   killed after the grace), and whatever is still open after
//!   [`STOP_WITHIN`] is dropped: the daemon exits within that bound.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use secretctl_proto::client::{MAX_AUDIT_MESSAGE, MAX_MESSAGE};
use secretctl_proto::v1::agent_server::AgentServer;
use secretctl_proto::v1::audit_server::AuditServer;
use secretctl_proto::v1::daemon_server::DaemonServer;
use secretctl_proto::v1::runner_server::RunnerServer;
use secretctl_proto::v1::transfer_server::TransferServer;
use secretctl_proto::v1::vault_server::VaultServer;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::AgentService;
use crate::caller::Conn;
use crate::caller::conn::PeerStream;
use crate::conns;
use crate::error::{IoContext, StartError};
use crate::runner::RunnerService;
use crate::service::daemon::DaemonService;
use crate::service::vault::VaultService;
use crate::session::{LockReason, Session};

/// Creates the socket directory (mode 0700) if missing and checks it.
pub fn prepare_socket_dir(dir: &Path) -> Result<(), StartError> {
    if let Err(e) = std::fs::symlink_metadata(dir) {
        if e.kind() != ErrorKind::NotFound {
            return Err(e)
                .context_of(|| format!("cannot inspect socket directory {}", dir.display()));
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .context_of(|| format!("cannot create {}", parent.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .context_of(|| format!("cannot create socket directory {}", dir.display()));
            }
        }
    }
    check_private_dir(dir, nix::unistd::geteuid().as_raw())
}

/// Refuses a socket directory that is a symlink, not ours, or open to others.
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<(), StartError> {
    check_private(dir, uid, PrivateDir::Socket)
}

/// Which private directory is checked, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateDir {
    /// The socket's directory (`SECRETCTL_SOCKET`).
    Socket,
    /// The data directory (`SECRETCTL_HOME`).
    Home,
}

/// Refuses a directory that is a symlink, not a directory, not ours, or
/// open to group or others; each message names the fix.
pub fn check_private(dir: &Path, uid: u32, which: PrivateDir) -> Result<(), StartError> {
    let (what, var) = match which {
        PrivateDir::Socket => ("socket directory", "SECRETCTL_SOCKET to a path in"),
        PrivateDir::Home => ("data directory", "SECRETCTL_HOME to"),
    };
    let meta = std::fs::symlink_metadata(dir)
        .context_of(|| format!("cannot inspect {what} {}", dir.display()))?;
    let d = dir.display();
    if meta.file_type().is_symlink() {
        return Err(StartError::Refused(format!(
            "{what} {d} is a symlink: refusing to use it (replace it with the directory itself, or set {var} a private directory)"
        )));
    }
    if !meta.is_dir() {
        return Err(StartError::Refused(format!(
            "{what} {d} is not a directory"
        )));
    }
    if meta.uid() != uid {
        return Err(StartError::Refused(format!(
            "{what} {d} is owned by uid {}, not by you (uid {uid}): refusing to use it (set {var} a private directory of yours)",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StartError::Refused(format!(
            "{what} {d} has mode {mode:04o}, open to group or others: run 'chmod 700 {d}'"
        )));
    }
    Ok(())
}

/// Takes the one-daemon-per-socket lock at `<socket>.lock`.
pub fn take_instance_lock(socket: &Path) -> Result<Flock<std::fs::File>, StartError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = lock_path(socket);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .context_of(|| {
            format!(
                "cannot open lock file {} (a symlink is refused)",
                path.display()
            )
        })?;
    let meta = file
        .metadata()
        .context_of(|| format!("cannot inspect lock file {}", path.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != uid {
        return Err(StartError::Refused(format!(
            "lock file {} is not a regular file of yours (owner uid {}): remove it",
            path.display(),
            meta.uid()
        )));
    }
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        StartError::Refused(format!(
            "another secretctld already serves {} (lock {} is held: {e})",
            socket.display(),
            path.display()
        ))
    })
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Binds the socket, removing a stale one only if nothing answers on it.
pub async fn bind(socket: &Path) -> Result<UnixListener, StartError> {
    if std::fs::symlink_metadata(socket).is_ok() {
        match UnixStream::connect(socket).await {
            Ok(_) => {
                return Err(StartError::Refused(format!(
                    "a daemon already answers on {}",
                    socket.display()
                )));
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %socket.display(), "removing stale socket");
                std::fs::remove_file(socket)
                    .context_of(|| format!("cannot remove stale socket {}", socket.display()))?;
            }
            Err(e) => {
                return Err(e).context_of(|| {
                    format!(
                        "{} exists and is not a socket we can replace",
                        socket.display()
                    )
                });
            }
        }
    }
    let listener = UnixListener::bind(socket)
        .context_of(|| format!("cannot bind socket {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .context_of(|| format!("cannot set mode 0600 on {}", socket.display()))?;
    Ok(listener)
}

/// Accepts connections, passing on only those from our own uid, each
/// with its place in the connection table and its caller classified
/// (contract §9).
fn peer_checked(
    listener: UnixListener,
    session: Arc<Session>,
    table: Arc<conns::Table>,
) -> (
    ReceiverStream<std::io::Result<PeerStream>>,
    tokio::task::JoinHandle<()>,
) {
    let audit = session.audit.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let uid = nix::unistd::geteuid().as_raw();
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == uid => {
                    // At the cap with every connection busy: close it
                    // unread (logged by the table, rate-limited).
                    let Some(admission) = table.admit(&stream) else {
                        continue;
                    };
                    let caller = session.caller.classify(cred.pid());
                    tracing::debug!(pid = ?cred.pid(), class = caller.class.as_str(), reason = %caller.reason, "connection");
                    let conn = Conn::new(crate::audit::peer(cred.pid(), cred.uid()), caller);
                    if tx
                        .send(Ok(PeerStream::new(stream, conn, Some(admission))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(cred) => {
                    tracing::warn!(peer_pid = ?cred.pid(), peer_uid = cred.uid(), "refused connection from another uid");
                    drop(stream);
                    let mut rec = crate::audit::event(
                        "connection_refused",
                        "cli",
                        crate::audit::peer(cred.pid(), cred.uid()),
                    );
                    rec.success = false;
                    rec.error = Some(format!(
                        "peer uid {} is not the daemon's uid {uid}",
                        cred.uid()
                    ));
                    audit.record_nowait(rec);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "refused connection: cannot read peer credentials")
                }
            }
        }
    });
    (ReceiverStream::new(rx), task)
}

/// How long stopping may take from the signal to exit: runs get SIGTERM at
/// once and are killed after their grace (`KILL_GRACE`, 5 s); what is still
/// open after this is dropped.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How often the socket file is checked (a deleted or replaced socket is
/// noticed within this).
pub const SOCKET_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The socket file as it was when we started serving: (device, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFile(u64, u64);

impl SocketFile {
    /// The file at `path` now, if any.
    pub fn at(path: &Path) -> Option<SocketFile> {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| SocketFile(m.dev(), m.ino()))
    }
}

/// Why the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Signal(&'static str),
    /// The socket file was deleted: no client can reach us any more.
    SocketDeleted,
    /// Another file (another daemon's socket) took the socket's path.
    SocketReplaced,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Signal(s) => write!(f, "{s}"),
            Stop::SocketDeleted => f.write_str("the socket file was deleted"),
            Stop::SocketReplaced => f.write_str("the socket file was replaced"),
        }
    }
}

/// Serves the daemon's services on `listener` until SIGTERM or SIGINT, or
/// until the socket file (`bound`: as it was when serving started) is
/// deleted or replaced. Then it locks the vault at once (zeroizing the
/// key), removes the socket if it is still ours, ends the runs and returns
/// within [`STOP_WITHIN`].
pub async fn serve(
    session: Arc<Session>,
    listener: UnixListener,
    bound: Option<SocketFile>,
) -> Result<(), StartError> {
    let table = conns::Table::new(conns::Limits::for_this_process());
    let (incoming, accept_task) = peer_checked(listener, session.clone(), table.clone());
    let stop_accepting = accept_task.abort_handle();
    let idle = tokio::spawn(session.clone().run_idle_timer());
    let orphans = tokio::spawn(crate::runner::orphans::watch(session.clone()));
    let sweeper = tokio::spawn(table.clone().sweep_forever());
    tracing::info!(
        socket = %session.paths.socket.display(),
        pid = std::process::id(),
        service_managed = session.service_managed,
        max_connections = table.limits().max_connections,
        "secretctld ready"
    );
    crate::activation::notify_ready();

    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<Stop>();
    let stopping = {
        let session = session.clone();
        async move {
            let why = stop_requested(&session.paths.socket, bound).await;
            tracing::info!(reason = %why, "stopping: locking the vault first");
            session.lock(LockReason::Shutdown, None);
            session.ui.stop();
            stop_accepting.abort();
            remove_socket_if_ours(&session, bound);
            session.begin_shutdown();
            let _ = stopped_tx.send(why);
        }
    };
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(conns::MAX_STREAMS)
        // No HTTP/2 keepalive: a client suspended with Ctrl-Z (its run
        // still going) would miss the pings and lose its run. A peer that
        // dies closes its socket; idle ones are closed by `conns`.
        .http2_keepalive_interval(None)
        .layer(conns::TrackLayer)
        .add_service(
            DaemonServer::new(DaemonService::new(session.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            VaultServer::new(VaultService::new(session.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            RunnerServer::new(RunnerService::new(session.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            AgentServer::new(AgentService::new(session.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            AuditServer::new(crate::service::audit::AuditService::new(session.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_AUDIT_MESSAGE),
        )
        .add_service(
            TransferServer::new(crate::service::transfer::TransferService::new(
                session.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(incoming, stopping);
    let bounded = async {
        match stopped_rx.await {
            Ok(why) => {
                tokio::time::sleep(STOP_WITHIN).await;
                tracing::warn!(
                    reason = %why,
                    connections = table.len(),
                    "still serving {} s after the stop: closing what is left",
                    STOP_WITHIN.as_secs()
                );
            }
            // The server ended by itself (an error): nothing to bound.
            Err(_) => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = server => r,
        () = bounded => Ok(()),
    };
    accept_task.abort();
    idle.abort();
    orphans.abort();
    sweeper.abort();
    // Locked already when a stop was asked for; not if serving failed.
    session.lock(LockReason::Shutdown, None);
    session.ui.stop();
    // The audit writer is drained and joined in main, once the runtime is
    // down (Audit::close blocks).
    remove_socket_if_ours(&session, bound);
    tracing::info!("secretctld stopped");
    Ok(result?)
}

/// Removes the socket file, unless a service manager owns it or it is no
/// longer the one we bound (a new daemon's).
fn remove_socket_if_ours(session: &Session, bound: Option<SocketFile>) {
    if session.service_managed {
        // An inherited socket belongs to the service manager, which reuses it.
        return;
    }
    let path = &session.paths.socket;
    if bound.is_some() && SocketFile::at(path) == bound {
        let _ = std::fs::remove_file(path);
    }
}

/// Resolves when the daemon should stop: SIGTERM, SIGINT, or the socket
/// file no longer being `bound` (checked every [`SOCKET_CHECK_EVERY`]).
/// Service-managed sockets are watched too: a daemon nobody can reach
/// should not keep the key, and the service manager starts a new one on
/// the next connection to a recreated socket.
async fn stop_requested(socket: &Path, bound: Option<SocketFile>) -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = async {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers; stop secretctld with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => Stop::Signal("SIGTERM"),
            _ = int.recv() => Stop::Signal("SIGINT"),
        }
    };
    let watch = async {
        let Some(bound) = bound else {
            tracing::warn!(socket = %socket.display(), "the socket file cannot be inspected: a deleted socket will not be noticed");
            return std::future::pending().await;
        };
        let mut tick = tokio::time::interval(SOCKET_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match SocketFile::at(socket) {
                Some(now) if now == bound => {}
                Some(_) => {
                    tracing::warn!(socket = %socket.display(), "the socket file was replaced by another one");
                    return Stop::SocketReplaced;
                }
                None => {
                    tracing::warn!(socket = %socket.display(), "the socket file was deleted: no client can reach this daemon");
                    return Stop::SocketDeleted;
                }
            }
        }
    };
    tokio::select! {
        why = signals => why,
        why = watch => why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn creates_private_dir() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/run");
        prepare_socket_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn refuses_open_modes() {
        for mode in [0o750, 0o705, 0o777, 0o711] {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path().join("run");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = prepare_socket_dir(&dir).unwrap_err().to_string();
            assert!(err.contains("chmod 700"), "{mode:o}: {err}");
        }
    }

    #[test]
    fn refuses_symlink() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&real)
            .unwrap();
        let link = t.path().join("link");
        symlink(&real, &link).unwrap();
        let err = prepare_socket_dir(&link).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn refuses_foreign_owner() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let err = check_private_dir(&dir, uid() + 1).unwrap_err().to_string();
        assert!(err.contains("owned by uid"), "{err}");
    }

    #[test]
    fn instance_lock_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("s.sock");
        let held = take_instance_lock(&sock).unwrap();
        assert!(take_instance_lock(&sock).is_err());
        drop(held);
        assert!(take_instance_lock(&sock).is_ok());
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_live_one_is_not() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("s.sock");
        let live = bind(&sock).await.unwrap();
        assert!(bind(&sock).await.is_err(), "must not steal a live socket");
        drop(live); // the file stays, nobody listens: stale
        assert!(sock.exists());
        bind(&sock).await.unwrap();
    }

    /// A directory that cannot be created is reported as such (not
    /// mistaken for one that appeared meanwhile).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_socket_dir_that_cannot_be_created_is_refused_as_such() {
        let err = prepare_socket_dir(Path::new("/proc/secretctl-no-such-dir"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot create socket directory"), "{err}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_stale_socket_is_never_removed() {
        let t = tempfile::tempdir().unwrap();
        // Longer than a socket address can be: connecting fails with an
        // error other than "refused".
        let long = t.path().join("s".repeat(120));
        std::fs::write(&long, "user data").unwrap();
        let err = bind(&long).await.unwrap_err().to_string();
        assert!(err.contains("is not a socket we can replace"), "{err}");
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "user data");
    }

    /// Run by `another_uid_is_dropped_before_a_byte_is_read` as another uid:
    /// connects and expects the daemon to hang up.
    #[test]
    #[ignore = "a helper, run as another uid by another test"]
    fn connect_and_expect_a_hang_up() {
        use std::io::Read;
        let Some(path) = std::env::var_os("SECRETCTL_TEST_CONNECT") else {
            return;
        };
        let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0, "the daemon hangs up");
    }

    #[tokio::test]
    async fn another_uid_is_dropped_before_a_byte_is_read() {
        use std::os::unix::fs::PermissionsExt;
        use std::time::Duration;
        use tokio_stream::StreamExt;
        use tonic::transport::server::Connected;
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "needs root (another uid); CI runs as root, so this is a failure"
            );
            eprintln!("SKIP another_uid_is_dropped_before_a_byte_is_read: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = t.path().join("s.sock");
        let listener = bind(&sock).await.unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let audit_dir = tempfile::tempdir().unwrap();
        let audit = crate::audit::Audit::start(&audit_dir.path().join("audit"), 1 << 20).unwrap();
        let session = Session::new(
            crate::session::Paths {
                home: t.path().into(),
                vault: t.path().join("v.redb"),
                socket: sock.clone(),
            },
            crate::config::Config::default(),
            None,
            false,
            audit,
        );
        let table = conns::Table::new(conns::Limits::for_this_process());
        let (mut incoming, task) = peer_checked(listener, session, table);

        // This test binary, copied where `nobody` can run it, connects as
        // `nobody` and must see the connection closed.
        let exe = t.path().join("unit-tests");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = None;
        for _ in 0..100 {
            let spawned = tokio::process::Command::new(&exe)
                .args([
                    "--exact",
                    "server::tests::connect_and_expect_a_hang_up",
                    "--ignored",
                ])
                .env("SECRETCTL_TEST_CONNECT", &sock)
                .uid(65534)
                .gid(65534)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                Ok(c) => {
                    child = Some(c);
                    break;
                }
                // Another test thread forked while the copy was open for
                // writing: exec fails until that child execs.
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("spawn the helper as nobody: {e}"),
            }
        }
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            child.expect("spawned").wait_with_output(),
        )
        .await
        .expect("the helper ends")
        .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // Our own connection is the first one passed on.
        let _ours = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), incoming.next())
            .await
            .expect("our connection is passed on")
            .expect("the stream goes on")
            .unwrap();
        let peer = &first.connect_info().0.peer;
        assert_eq!(peer.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(peer.pid, Some(std::process::id() as i32));
        task.abort();
    }
}
