//! Starting the child: argv exec'd directly (never a shell), in its own
//! process group, with the client's environment plus the secrets, on pipes
//! or on a pseudo-terminal.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use secretctl_proto::v1::{EnvVar, WindowSize};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::resolve::Injection;
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

/// A started child.
pub struct Spawned {
    pub child: Child,
    /// Process group to signal (the child's pid).
    pub pgid: i32,
    pub io: Io,
}

/// Why the child could not start, with the exit code to report.
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

/// Starts the plan's command with its environment plus the secrets.
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
    let mut std_cmd = std::process::Command::new(&program);
    std_cmd
        .arg0(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env_clear();
    for var in env {
        std_cmd.env(&var.name, std::ffi::OsStr::from_bytes(&var.value));
    }
    for s in secrets {
        std_cmd.env(&s.env, std::ffi::OsStr::from_bytes(&s.value));
    }
    let fail = |e: std::io::Error| {
        let (code, what) = match e.kind() {
            std::io::ErrorKind::NotFound => (127, "command not found"),
            std::io::ErrorKind::PermissionDenied => (126, "permission denied"),
            _ => (126, "cannot execute"),
        };
        SpawnError {
            code,
            message: format!("{what}: {}: {e}", argv[0]),
        }
    };
    match pty {
        None => {
            std_cmd.process_group(0);
            let mut cmd = Command::from(std_cmd);
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().map_err(fail)?;
            let pgid = child.id().unwrap_or(0) as i32;
            let io = Io::Pipes {
                stdin: child.stdin.take(),
                stdout: child.stdout.take().expect("stdout was piped"),
                stderr: child.stderr.take().expect("stderr was piped"),
            };
            Ok(Spawned { child, pgid, io })
        }
        Some(size) => {
            let winsize = nix::pty::Winsize {
                ws_row: size.rows.clamp(1, u16::MAX as u32) as u16,
                ws_col: size.cols.clamp(1, u16::MAX as u32) as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = nix::pty::openpty(&winsize, None).map_err(|e| SpawnError {
                code: 126,
                message: format!("cannot open a pseudo-terminal: {e}"),
            })?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(fail);
            std_cmd
                .stdin(Stdio::from(dup(&pty.slave)?))
                .stdout(Stdio::from(dup(&pty.slave)?))
                .stderr(Stdio::from(pty.slave));
            // setsid makes the child its own process group leader too.
            hardening::controlling_tty(&mut std_cmd);
            let mut cmd = Command::from(std_cmd);
            cmd.kill_on_drop(true);
            let child = cmd.spawn().map_err(fail)?;
            let pgid = child.id().unwrap_or(0) as i32;
            let reader = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
            let writer = tokio::fs::File::from_std(std::fs::File::from(dup(&pty.master)?));
            Ok(Spawned {
                child,
                pgid,
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
