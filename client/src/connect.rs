//! Reaching the daemon, starting it when nothing answers (contract §3).
//!
//! Autostart takes an `flock` on `<socket dir>/autostart.lock` and probes
//! again under it, so two CLIs started together start one daemon. The daemon
//! is found next to this executable, then on `PATH`, started detached with
//! its stderr appended to `$SECRETCTL_HOME/secretctld.log`, and waited for
//! with `Status` probes.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use secretctl_proto::client::{Client, RpcError};
use secretctl_proto::paths;
use secretctl_proto::v1::StatusResponse;

use crate::error::{CliError, Result};

/// How long a started daemon may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket path, or an error explaining how to set one.
pub fn socket_path() -> Result<PathBuf> {
    paths::socket_path().map_err(|e| CliError::error(e.to_string()))
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
                .hint(format!("start it: {restart}")));
            }
            return start_daemon(&path).await;
        }
        Err(e) => return Err(e.into()),
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
        .hint(format!("restart it: {cmd}"))),
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
            start_daemon(&path).await
        }
    }
}

/// Asks a daemon to stop (SIGTERM: it finishes in-flight requests, locks
/// and removes its socket) and waits until it no longer answers.
async fn stop_daemon(client: &Client, pid: u32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| CliError::error(format!("cannot stop secretctld (pid {pid}): {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.status().await.is_ok() || std::path::Path::new(client.path()).exists() {
        if Instant::now() > deadline {
            return Err(CliError::error(format!(
                "secretctld (pid {pid}) did not stop within 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A client only if a daemon already answers (no autostart).
pub async fn existing() -> Result<Option<Client>> {
    let path = socket_path()?;
    let client = Client::new(&path);
    match client.status().await {
        Ok(_) => Ok(Some(client)),
        Err(RpcError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(e.into()),
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
        )));
    }
    Ok(st)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::error(format!("cannot create {}: {e}", parent.display())))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CliError::error(format!(
            "cannot create {}: {e}",
            dir.display()
        ))),
    }
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
    .hint("install secretctld beside secretctl, or start it yourself"))
}

async fn start_daemon(socket: &Path) -> Result<(Client, StatusResponse)> {
    let dir = socket
        .parent()
        .ok_or_else(|| CliError::error("the socket path has no directory"))?;
    create_private_dir(dir)?;
    let lock_path = dir.join("autostart.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| CliError::error(format!("cannot open {}: {e}", lock_path.display())))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| CliError::error(format!("cannot lock {}: {e}", lock_path.display())))?;

    // Another CLI may have started it while we waited for the lock.
    let client = Client::new(socket);
    if let Ok(st) = client.status().await {
        return Ok((client, check_protocol(st)?));
    }

    let exe = daemon_executable()?;
    let home = paths::home_dir().map_err(|e| CliError::error(e.to_string()))?;
    create_private_dir(&home)?;
    let log_path = home.join(paths::DAEMON_LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| CliError::error(format!("cannot open {}: {e}", log_path.display())))?;
    let mut child = Command::new(&exe)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| CliError::error(format!("cannot start {}: {e}", exe.display())))?;

    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        let client = Client::new(socket);
        match client.status().await {
            Ok(st) => return Ok((client, check_protocol(st)?)),
            Err(RpcError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::new(
                crate::error::UNREACHABLE,
                format!("secretctld exited at start ({status})"),
            )
            .hint(format!("see {}", log_path.display())));
        }
        if Instant::now() > deadline {
            return Err(CliError::new(
                crate::error::UNREACHABLE,
                "secretctld did not become ready within 10 s",
            )
            .hint(format!("see {}", log_path.display())));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
