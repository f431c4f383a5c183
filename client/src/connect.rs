//! Reaching the daemon, starting it when nothing answers (contract §3).
//!
//! The socket is dialed only through `secretctl_proto::client::Client`.
//! Autostart takes an `flock` on `<socket dir>/autostart.lock` and probes
//! again under it, so two CLIs started together start one daemon. The daemon
//! is found next to this executable, then on `PATH`, started detached (own
//! process group, stdin and stdout null) with its stderr appended to
//! `$SECRETCTL_HOME/secretctld.log` (opened without following symlinks, in
//! a data directory that must be private), and waited for with `Status`
//! probes. A daemon that answers wrongly (not ours, stopped, refusing) is
//! reported, never replaced.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use secretctl_proto::client::{Client, RpcError};
use secretctl_proto::paths;
use secretctl_proto::v1::StatusResponse;

use crate::error::{CliError, Result};

/// How long a started daemon may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// First and largest pause between readiness probes: a daemon is usually
/// up within a few milliseconds, so start small.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// The socket path (contract §2).
pub fn socket_path() -> Result<PathBuf> {
    Ok(paths::socket_path()?)
}

fn autostart_allowed() -> bool {
    std::env::var_os("SECRETCTL_NO_AUTOSTART").is_none_or(|v| v != "1")
}

/// What to do about the daemon that answered, given its version.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Same version and protocol.
    Current,
    /// A daemon this CLI started is stale: stop it (it finishes in-flight
    /// requests first) and start the one next to this CLI.
    RestartAutostarted,
    /// A service-managed daemon of another version but the same protocol:
    /// carry on, and say how to restart it.
    WarnService(String),
    /// A service-managed daemon that speaks another protocol: stop, and say
    /// how to restart it.
    RestartService(String),
}

/// Decides from the daemon's `Status` and this CLI's own version.
pub fn decide(
    st: &StatusResponse,
    version: &str,
    protocol: u32,
    restart_cmd: Option<&str>,
) -> Handshake {
    if st.version == version && st.protocol == protocol {
        return Handshake::Current;
    }
    if !st.service_managed {
        return Handshake::RestartAutostarted;
    }
    let cmd = restart_cmd
        .unwrap_or("restart the secretctld service")
        .to_string();
    if st.protocol == protocol {
        Handshake::WarnService(cmd)
    } else {
        Handshake::RestartService(cmd)
    }
}

/// A client whose daemon answered `Status`, starting the daemon if needed.
pub async fn connect() -> Result<(Client, StatusResponse)> {
    let path = socket_path()?;
    let client = Client::new(&path);
    let st = match client.status().await {
        Ok(st) => st,
        Err(RpcError::Unreachable { .. }) if autostart_allowed() => {
            if let Some(restart) = crate::service::installed_restart_command() {
                return Err(CliError::new(
                    crate::error::UNREACHABLE,
                    "the secretctld service is installed but not answering",
                )
                .hint(format!("start it: {restart}"))
                .into());
            }
            return start_daemon(&path).await.context("cannot start secretctld");
        }
        Err(e) => return Err(anyhow::Error::from(e).context("cannot reach secretctld")),
    };
    let restart = crate::service::installed_restart_command();
    match decide(
        &st,
        secretctl_proto::VERSION,
        secretctl_proto::PROTOCOL,
        restart.as_deref(),
    ) {
        Handshake::Current => Ok((client, st)),
        Handshake::WarnService(cmd) => {
            eprintln!(
                "warning: secretctld {} is running, this secretctl is {}: restart it with '{cmd}'",
                st.version,
                secretctl_proto::VERSION
            );
            Ok((client, st))
        }
        Handshake::RestartService(cmd) => Err(CliError::error(format!(
            "secretctld {} speaks protocol {}, this secretctl {} speaks {}",
            st.version,
            st.protocol,
            secretctl_proto::VERSION,
            secretctl_proto::PROTOCOL
        ))
        .hint(format!("restart it: {cmd}"))
        .into()),
        Handshake::RestartAutostarted => {
            if !autostart_allowed() {
                return Ok((client, check_protocol(st)?));
            }
            eprintln!(
                "secretctld {} is out of date (this is secretctl {}): restarting it; unlock again afterwards",
                st.version,
                secretctl_proto::VERSION
            );
            stop_daemon(&client, st.pid).await?;
            start_daemon(&path).await.context("cannot start secretctld")
        }
    }
}

/// Asks a daemon to stop (SIGTERM: it finishes in-flight requests, locks
/// and removes its socket) and waits until it no longer answers.
pub async fn stop_daemon(client: &Client, pid: u32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .with_context(|| format!("cannot stop secretctld (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.status().await.is_ok() || client.path().exists() {
        if Instant::now() > deadline {
            anyhow::bail!("secretctld (pid {pid}) did not stop within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A client only if a daemon already answers; `None` when nothing listens.
/// Never starts one: for `lock` and service management.
pub async fn existing() -> Result<Option<Client>> {
    let path = socket_path()?;
    let client = Client::new(&path);
    match client.status().await {
        Ok(_) => Ok(Some(client)),
        Err(RpcError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context("cannot reach secretctld")),
    }
}

fn check_protocol(st: StatusResponse) -> Result<StatusResponse> {
    if st.protocol != secretctl_proto::PROTOCOL {
        return Err(CliError::error(format!(
            "secretctld {} speaks protocol {}, this secretctl {} speaks {}",
            st.version,
            st.protocol,
            secretctl_proto::VERSION,
            secretctl_proto::PROTOCOL
        ))
        .hint(format!(
            "restart the daemon: kill {} (it locks the vault on SIGTERM)",
            st.pid
        ))
        .into());
    }
    Ok(st)
}

/// Creates `dir` and any missing parents with mode 0700 (the daemon
/// refuses a socket directory open to others). An existing directory is
/// left alone: judging it is the daemon's job, and it says how to fix it.
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// `secretctld` next to this executable, else on `PATH`.
fn daemon_executable() -> Result<PathBuf> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let candidate = dir.join("secretctld");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("secretctld");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(CliError::new(
        crate::error::UNREACHABLE,
        "cannot find secretctld next to secretctl or on PATH",
    )
    .hint("install secretctld beside secretctl, or start it yourself")
    .into())
}

/// Opens `path` for appending without following a symlink, and checks
/// through the descriptor that it is a regular file of ours: a planted
/// symlink or someone else's file is never appended to.
fn open_log(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                anyhow::Error::from(
                    CliError::error(format!("{} is a symlink", path.display()))
                        .hint(format!("remove it: rm {}", path.display())),
                )
            } else {
                anyhow::Error::from(e).context(format!("cannot open {}", path.display()))
            }
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != uid {
        return Err(CliError::error(format!(
            "{} is not a regular file of yours (owner uid {})",
            path.display(),
            meta.uid()
        ))
        .hint(format!("remove it: rm {}", path.display()))
        .into());
    }
    Ok(file)
}

/// Refuses a data directory that is not ours or is open to others, as the
/// daemon does (before anything is written into it).
pub fn check_home(home: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(home)
        .with_context(|| format!("cannot inspect {}", home.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    let d = home.display();
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(CliError::error(format!(
            "data directory {d} is a symlink or not a directory"
        ))
        .hint("set SECRETCTL_HOME to a private directory of yours")
        .into());
    }
    if meta.uid() != uid {
        return Err(CliError::error(format!(
            "data directory {d} is owned by uid {}, not by you (uid {uid})",
            meta.uid()
        ))
        .hint("set SECRETCTL_HOME to a private directory of yours")
        .into());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::error(format!(
            "data directory {d} has mode {mode:04o}, open to group or others"
        ))
        .hint(format!("run 'chmod 700 {d}'"))
        .into());
    }
    Ok(())
}

/// Waits (bounded) while another daemon still holds the instance lock of
/// `socket`: one that is shutting down releases it when it exits, and a
/// new daemon could not start before.
async fn wait_for_instance_lock(socket: &Path) {
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    let Ok(file) = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(PathBuf::from(lock))
    else {
        return;
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            // Free: released again when dropped here.
            Ok(_) => return,
            Err((f, _)) => file = f,
        }
        if Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `secretctld` under the autostart lock and waits until it answers.
async fn start_daemon(socket: &Path) -> Result<(Client, StatusResponse)> {
    let dir = socket
        .parent()
        .context("the socket path has no directory")?;
    create_private_dir(dir)?;
    let lock_path = dir.join("autostart.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    // Held until this function returns, i.e. until the daemon answers (or
    // we give up): a second CLI waits here, then finds it running.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;

    // Another CLI may have started it while we waited for the lock.
    let client = Client::new(socket);
    if let Ok(st) = client.status().await {
        return Ok((client, check_protocol(st)?));
    }

    let exe = daemon_executable()?;
    let home = paths::home_dir()?;
    create_private_dir(&home)?;
    check_home(&home)?;
    let log_path = home.join(paths::DAEMON_LOG_FILE);
    let log = open_log(&log_path)?;
    // Where this start's lines begin, to show its own error.
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    wait_for_instance_lock(socket).await;
    let mut child = Command::new(&exe)
        // Its own process group: a Ctrl-C meant for this CLI (or a later
        // one in the same shell job) must not stop the daemon.
        .process_group(0)
        // The daemon never reads the master password from its environment
        // (contract §2); do not leave a copy in its /proc/PID/environ.
        .env_remove("SECRETCTL_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;

    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pause = FIRST_PAUSE;
    loop {
        // A fresh client each time: a client that once connected reports
        // later failures as `Refused`, not `Unreachable`.
        let client = Client::new(socket);
        match client.status().await {
            Ok(st) => return Ok((client, check_protocol(st)?)),
            // Not yet listening, or the previous daemon still going away.
            Err(RpcError::Unreachable { .. } | RpcError::ShuttingDown { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why = start_error(&log_path, log_start)
                .map(|e| format!(": {e}"))
                .unwrap_or_else(|| format!(" ({status})"));
            return Err(CliError::new(
                crate::error::UNREACHABLE,
                format!("secretctld could not start{why}"),
            )
            .hint(format!("the full log is {}", log_path.display()))
            .into());
        }
        if Instant::now() > deadline {
            return Err(CliError::new(
                crate::error::UNREACHABLE,
                format!(
                    "{} did not answer within {} s",
                    exe.display(),
                    READY_TIMEOUT.as_secs()
                ),
            )
            .hint(format!("see {}", log_path.display()))
            .into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// The daemon's own reason for failing this start: the first error line
/// it logged after byte `from` of its log, without the log's prefix.
fn start_error(log: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(log).ok()?;
    f.seek(std::io::SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text).ok()?;
    first_error(&text)
}

/// The message of the first `ERROR` line of a tracing log.
fn first_error(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains(" ERROR "))?;
    let msg = line.split_once(" ERROR ").map(|(_, m)| m)?;
    // "secretctld: message" (the target) → "message".
    let msg = msg.split_once(": ").map_or(msg, |(_, m)| m);
    Some(secretctl_proto::text::one_line(msg.trim(), 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_line_of_a_start_is_shown() {
        let log = "2026-12-01T00:00:00.1Z  INFO secretctld: starting\n\
                   2026-12-01T00:00:00.2Z ERROR secretctld: invalid daemon settings: config file /h/config.yaml: line 2: unknown field `idle_timout`\n\
                   2026-12-01T00:00:00.3Z ERROR secretctld: later\n";
        assert_eq!(
            first_error(log).unwrap(),
            "invalid daemon settings: config file /h/config.yaml: line 2: unknown field `idle_timout`"
        );
        assert_eq!(first_error("nothing here\n"), None);
    }

    fn st(version: &str, protocol: u32, service_managed: bool) -> StatusResponse {
        StatusResponse {
            version: version.into(),
            protocol,
            service_managed,
            ..Default::default()
        }
    }

    #[test]
    fn handshake_decisions() {
        let cmd = Some("systemctl --user restart secretctld.service");
        assert_eq!(
            decide(&st("1.0.0", 1, false), "1.0.0", 1, None),
            Handshake::Current
        );
        assert_eq!(
            decide(&st("1.0.0", 1, true), "1.0.0", 1, cmd),
            Handshake::Current
        );
        assert_eq!(
            decide(&st("0.9.0", 1, false), "1.0.0", 1, None),
            Handshake::RestartAutostarted
        );
        assert_eq!(
            decide(&st("0.9.0", 0, false), "1.0.0", 1, None),
            Handshake::RestartAutostarted
        );
        assert_eq!(
            decide(&st("0.9.0", 1, true), "1.0.0", 1, cmd),
            Handshake::WarnService("systemctl --user restart secretctld.service".into())
        );
        assert_eq!(
            decide(&st("0.9.0", 0, true), "1.0.0", 1, cmd),
            Handshake::RestartService("systemctl --user restart secretctld.service".into())
        );
        assert_eq!(
            decide(&st("0.9.0", 0, true), "1.0.0", 1, None),
            Handshake::RestartService("restart the secretctld service".into())
        );
    }
}
