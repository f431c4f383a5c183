//! Starting a run: its supervisor (see `supervisor`), which starts the
//! child with argv exec'd directly (never a shell), the client's
//! environment plus the secrets, on pipes or on a pseudo-terminal.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use secretctl_proto::v1::{EnvVar, WindowSize};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::resolve::Injection;
use super::supervisor::{self, Stdio3};
use crate::hardening;

/// The child's I/O, by mode.
pub enum Io {
    Pipes {
        stdin: Option<ChildStdin>,
        stdout: ChildStdout,
        stderr: ChildStderr,
    },
    /// The pty master, read and written through two handles.
    Pty {
        reader: tokio::fs::File,
        writer: tokio::fs::File,
        master: OwnedFd,
    },
}

/// A started run: its supervisor, the control socket to it, and the
/// child's I/O.
pub struct Spawned {
    pub supervisor: Child,
    pub control: tokio::net::UnixStream,
    pub io: Io,
}

/// Why the run could not start, with the exit code to report.
#[derive(Debug)]
pub struct SpawnError {
    pub code: i32,
    pub message: String,
}

/// What to start and how.
pub struct Plan<'a> {
    pub argv: &'a [String],
    /// Executable already resolved (agent runs, after the policy check);
    /// `None`: resolve `argv[0]` normally.
    pub program: Option<&'a Path>,
    pub cwd: &'a Path,
    pub env: &'a [EnvVar],
    pub secrets: &'a [Injection],
    pub pty: Option<WindowSize>,
}

/// The executable the supervisor is started from: this very daemon.
fn own_executable() -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        // Still this binary even if the file was replaced since we started.
        "/proc/self/exe".into()
    } else {
        std::env::current_exe().unwrap_or_else(|_| "secretctld".into())
    }
}

fn cannot(what: &str, e: impl std::fmt::Display) -> SpawnError {
    SpawnError {
        code: 126,
        message: format!("{what}: {e}"),
    }
}

/// Starts the plan's command under a supervisor.
pub fn spawn(plan: Plan<'_>) -> Result<Spawned, SpawnError> {
    let Plan {
        argv,
        program,
        cwd,
        env,
        secrets,
        pty,
    } = plan;
    let program = match program {
        Some(p) => p.to_path_buf(),
        None => program_path(&argv[0], cwd),
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| cannot("cannot create the run's control socket", e))?;
    let mode = if pty.is_some() {
        Stdio3::Pty
    } else {
        Stdio3::Pipes
    };
    let mut std_cmd = std::process::Command::new(own_executable());
    std_cmd
        .arg0("secretctld-supervisor")
        .arg(supervisor::FLAG)
        .arg(mode.as_arg())
        .arg(&program)
        .args(argv)
        .current_dir(cwd)
        .env_clear()
        // Its own group: a terminal's signals to the daemon's group must not
        // reach it (the child gets a group or session of its own).
        .process_group(0);
    for var in env {
        std_cmd.env(&var.name, std::ffi::OsStr::from_bytes(&var.value));
    }
    for s in secrets {
        std_cmd.env(&s.env, std::ffi::OsStr::from_bytes(&s.value));
    }
    let theirs = OwnedFd::from(theirs);
    supervisor::pass_control(&mut std_cmd, &theirs);
    let control = {
        ours.set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(ours))
            .map_err(|e| cannot("cannot use the run's control socket", e))?
    };
    let start = |e: std::io::Error| cannot("cannot start the run supervisor", e);
    match pty {
        None => {
            let mut cmd = Command::from(std_cmd);
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut supervisor = cmd.spawn().map_err(start)?;
            drop(theirs);
            let io = Io::Pipes {
                stdin: supervisor.stdin.take(),
                stdout: supervisor.stdout.take().expect("stdout was piped"),
                stderr: supervisor.stderr.take().expect("stderr was piped"),
            };
            Ok(Spawned {
                supervisor,
                control,
                io,
            })
        }
        Some(size) => {
            let winsize = nix::pty::Winsize {
                ws_row: size.rows.clamp(1, u16::MAX as u32) as u16,
                ws_col: size.cols.clamp(1, u16::MAX as u32) as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = nix::pty::openpty(&winsize, None)
                .map_err(|e| cannot("cannot open a pseudo-terminal", e))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(start);
            std_cmd
                .stdin(Stdio::from(dup(&pty.slave)?))
                .stdout(Stdio::from(dup(&pty.slave)?))
                .stderr(Stdio::from(pty.slave));
            let supervisor = Command::from(std_cmd).spawn().map_err(start)?;
            drop(theirs);
            let reader = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
            let writer = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
            Ok(Spawned {
                supervisor,
                control,
                io: Io::Pty {
                    reader,
                    writer,
                    master: pty.master,
                },
            })
        }
    }
}

/// Resizes a pty child's terminal.
pub fn resize(master: &OwnedFd, size: &WindowSize) {
    let rows = size.rows.clamp(1, u16::MAX as u32) as u16;
    let cols = size.cols.clamp(1, u16::MAX as u32) as u16;
    if let Err(e) = hardening::set_window_size(master.as_fd(), rows, cols) {
        tracing::debug!(error = %e, "cannot resize pty");
    }
}

/// Where exec will find `arg0`: a path resolved against `cwd`, or a bare
/// name searched on the child's `PATH` (for the audit log; symlinks resolved).
pub fn which(arg0: &str, cwd: &Path, path_var: Option<&[u8]>) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        return std::fs::canonicalize(program_path(arg0, cwd)).ok();
    }
    let path = std::ffi::OsStr::from_bytes(path_var?);
    std::env::split_paths(path)
        .map(|d| cwd.join(d).join(arg0))
        .find(|p| executable(p))
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// A relative path with a `/` is taken relative to the child's cwd; a bare
/// name is looked up on the child's PATH by exec.
fn program_path(arg0: &str, cwd: &Path) -> std::path::PathBuf {
    if arg0.contains('/') && !arg0.starts_with('/') {
        cwd.join(arg0)
    } else {
        std::path::PathBuf::from(arg0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_follows_path_and_cwd() {
        let sh = which("sh", Path::new("/"), Some(b"/nonexistent:/usr/bin:/bin")).unwrap();
        assert!(sh.is_absolute() && sh.exists());
        assert_eq!(which("sh", Path::new("/"), None), None);
        assert_eq!(which("./definitely-missing", Path::new("/tmp"), None), None);
    }
}
