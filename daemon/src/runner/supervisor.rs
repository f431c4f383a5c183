//! The run supervisor: a small process between the daemon and every run's
//! child, so that a run's whole process tree ends with the run.
//!
//! The daemon starts `secretctld --supervise MODE PROGRAM ARGV0 ARGS...`
//! (itself, re-executed) with the child's environment, working directory and
//! stdio, plus a control socket on fd 3. The supervisor:
//! - becomes a child subreaper, so descendants that double-fork or `setsid`
//!   are re-parented to it instead of escaping to init;
//! - starts the child in its own process group (pipes) or session (pty);
//! - waits for `go` (sent once the daemon has registered it), then
//! - reports `pid P`, then `exit code C` / `exit signal S` when the child
//!   exits, then kills whatever is left of the tree and reports `done`;
//! - obeys `sig N` (forward N to the child's group) and `kill` (kill the
//!   whole tree now) from the daemon;
//! - treats the end of the control socket (the daemon died or dropped the
//!   run) and SIGTERM/SIGINT/SIGHUP/SIGQUIT as `kill`.
//!
//! Why a control socket rather than `PR_SET_PDEATHSIG`: the death signal is
//! tied to the *thread* that forked, and the daemon spawns from tokio worker
//! threads that come and go; the socket's end is tied to the daemon process.
//!
//! Invariant: after `done` (or once this process is gone) no process of the
//! run remains, except one that left the tree by a way no subreaper sees
//! (a `PR_SET_CHILD_SUBREAPER` of its own, another uid, ptrace).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::hardening;

/// The first argument that turns `secretctld` into a supervisor.
pub const FLAG: &str = "--supervise";
/// The fd the control socket arrives on.
pub const CONTROL_FD: i32 = 3;

/// How the child's stdio is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio3 {
    /// Three pipes; the child gets its own process group.
    Pipes,
    /// A pty slave on 0-2; the child gets its own session with it as the
    /// controlling terminal.
    Pty,
}

impl Stdio3 {
    pub fn as_arg(self) -> &'static str {
        match self {
            Stdio3::Pipes => "pipes",
            Stdio3::Pty => "pty",
        }
    }
}

/// A line from the supervisor, as the daemon reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Started(i32),
    Exited {
        code: i32,
        signal: i32,
    },
    /// The child could not be started: exit code (126/127) and why.
    Failed {
        code: i32,
        message: String,
    },
    Done,
}

impl Report {
    /// Parses one line; `None` for anything else.
    pub fn parse(line: &str) -> Option<Report> {
        let mut words = line.trim_end().splitn(3, ' ');
        match (words.next()?, words.next(), words.next()) {
            ("pid", Some(p), None) => p.parse().ok().map(Report::Started),
            ("exit", Some("code"), Some(c)) => c
                .parse()
                .ok()
                .map(|code| Report::Exited { code, signal: 0 }),
            ("exit", Some("signal"), Some(s)) => s.parse().ok().map(|signal: i32| Report::Exited {
                code: 128 + signal,
                signal,
            }),
            ("error", Some(c), rest) => Some(Report::Failed {
                code: c.parse().ok()?,
                message: rest.unwrap_or("").to_string(),
            }),
            ("done", None, None) => Some(Report::Done),
            _ => None,
        }
    }
}

/// Runs the supervisor if `args` (without argv\[0\]) start with [`FLAG`];
/// never returns then. Called first thing in `main`.
pub fn run_if_asked(args: &[OsString]) {
    if args.first().is_none_or(|a| a != FLAG) {
        return;
    }
    let code = match supervise(&args[1..]) {
        Ok(()) => 0,
        Err(e) => {
            // Nobody may be listening any more; stderr is the child's.
            let _ = e;
            1
        }
    };
    std::process::exit(code);
}

fn supervise(args: &[OsString]) -> std::io::Result<()> {
    let [mode, program, argv0, rest @ ..] = args else {
        return Err(std::io::Error::other(
            "usage: --supervise MODE PROGRAM ARGV0 ARGS...",
        ));
    };
    let mode = if mode == "pty" {
        Stdio3::Pty
    } else {
        Stdio3::Pipes
    };
    let control = UnixStream::from(hardening::take_inherited_fd(CONTROL_FD)?);
    nix::fcntl::fcntl(
        &control,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // Signals that would end us (and orphan the tree) are taken by a thread
    // instead; the child starts with an empty mask (std resets it).
    let mut stop = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        stop.add(s);
    }
    stop.thread_block()?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    nix::sys::prctl::set_child_subreaper(true)?;

    let [stdin, stdout, stderr] = hardening::take_stdio()?;
    let mut cmd = std::process::Command::new(program);
    cmd.arg0(argv0)
        .args(rest)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    match mode {
        Stdio3::Pipes => {
            cmd.process_group(0);
        }
        Stdio3::Pty => hardening::controlling_tty(&mut cmd),
    }
    // Wait for the daemon's go: it registers this supervisor first, so what
    // the child starts is classified by whose run it is from its first step.
    let mut commands = BufReader::new(control.try_clone()?);
    let mut go = String::new();
    commands.read_line(&mut go)?;
    if go != "go\n" {
        return Ok(());
    }
    let writer = Arc::new(Mutex::new(control.try_clone()?));
    let say = |line: String| {
        let mut w = writer
            .lock()
            .expect("no code panics holding the control writer");
        let _ = w.write_all(line.as_bytes()).and_then(|()| w.flush());
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            let what = match e.kind() {
                std::io::ErrorKind::NotFound => "command not found",
                std::io::ErrorKind::PermissionDenied => "permission denied",
                _ => "cannot execute",
            };
            say(format!(
                "error {code} {what}: {}: {e}\n",
                argv0.to_string_lossy()
            ));
            return Ok(());
        }
    };
    drop(cmd); // closes our copies of the child's stdio
    let pid = Pid::from_raw(child.id() as i32);
    say(format!("pid {pid}\n"));

    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || obey(commands, pid))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if stop.wait().is_ok() {
                kill_tree(pid);
            }
        })?;

    reap(pid, &say);
    say("done\n".into());
    Ok(())
}

/// Follows the daemon's commands until the control socket ends, then kills
/// the tree (the daemon is gone or dropped the run).
fn obey(control: BufReader<UnixStream>, child: Pid) {
    let mut lines = control.lines();
    while let Some(Ok(line)) = lines.next() {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("sig"), Some(n)) => {
                if let Some(sig) = n.parse::<i32>().ok().and_then(|n| Signal::try_from(n).ok()) {
                    let _ = killpg(child, sig);
                }
            }
            (Some("kill"), None) => kill_tree(child),
            _ => {}
        }
    }
    kill_tree(child);
}

/// Waits for every process of the tree: reports the child's exit, then
/// kills and reaps what is left until nothing is.
fn reap(child: Pid, say: &impl Fn(String)) {
    let mut child_done = false;
    loop {
        if child_done {
            kill_tree(child);
        }
        match waitpid(None::<Pid>, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(p, code)) if p == child => {
                child_done = true;
                say(format!("exit code {code}\n"));
            }
            Ok(WaitStatus::Signaled(p, sig, _)) if p == child => {
                child_done = true;
                say(format!("exit signal {}\n", sig as i32));
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            // ECHILD: nothing of the tree is left.
            Err(_) => return,
        }
    }
}

/// SIGKILL to the child's group and to every process re-parented to us.
fn kill_tree(child: Pid) {
    let _ = killpg(child, Signal::SIGKILL);
    for pid in crate::caller::procfs::children_of(nix::unistd::getpid().as_raw()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Makes `fd` the control socket (fd 3) of the supervisor `cmd` starts.
pub fn pass_control(cmd: &mut std::process::Command, fd: &OwnedFd) {
    hardening::inherit_fd_as(cmd, fd.as_raw_fd(), CONTROL_FD);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(Report::parse("pid 42\n"), Some(Report::Started(42)));
        assert_eq!(
            Report::parse("exit code 3\n"),
            Some(Report::Exited { code: 3, signal: 0 })
        );
        assert_eq!(
            Report::parse("exit signal 9\n"),
            Some(Report::Exited {
                code: 137,
                signal: 9
            })
        );
        assert_eq!(
            Report::parse("error 127 command not found: x: No such file\n"),
            Some(Report::Failed {
                code: 127,
                message: "command not found: x: No such file".into()
            })
        );
        assert_eq!(Report::parse("done\n"), Some(Report::Done));
        assert_eq!(Report::parse("bogus"), None);
        assert_eq!(Report::parse("pid x"), None);
    }
}
