//! The second half of a run: moving bytes while the child lives.
//!
//! [`RunLoop`] waits for the next event (output on either stream, the
//! child's exit, the timeout, the SIGKILL grace, the flush deadline) and
//! handles it with one method per event. Output passes the run's redactor
//! and goes to a small bounded channel: when the receiver is slow we stop
//! reading the child's pipes, so the child blocks and daemon memory stays
//! flat.
//!
//! Invariants:
//! - No output byte is sent before passing the redactor.
//! - Timeout: SIGTERM to the whole process group, SIGKILL after
//!   [`KILL_GRACE`].
//! - A receiver that goes away gets the child's group killed.
//! - The exit is reported exactly once: to `on_exit`, then on the channel.

use std::time::Duration;

use nix::sys::signal::Signal;
use secretctl_proto::v1::{RunExit, RunOutput, run_output};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use crate::redact::Stream;

/// Held output is released this long after the last read, so prompts and
/// progress lines are not delayed.
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);
/// Grace between SIGTERM and SIGKILL on timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

/// Where a run's output goes.
pub type Sink = mpsc::Sender<Result<RunOutput, Status>>;
/// Called with a run's exit, once.
pub type OnExit = Box<dyn FnOnce(&RunExit) + Send>;
pub(super) type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// Sends `sig` to process group `pgid` (ignored for a group that is gone).
pub fn killpg(pgid: i32, sig: Signal) {
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
    }
}

/// The exit message of a run.
pub fn exit_msg(e: RunExit) -> RunOutput {
    RunOutput {
        kind: Some(run_output::Kind::Exit(e)),
    }
}

/// One output stream of the child and its redactor.
struct Pipe {
    reader: Option<Reader>,
    stream: Stream,
    buf: Vec<u8>,
    stderr: bool,
}

impl Pipe {
    fn new(reader: Option<Reader>, stream: Stream, stderr: bool) -> Pipe {
        Pipe {
            reader,
            stream,
            buf: vec![0; READ_CHUNK],
            stderr,
        }
    }

    fn msg(&self, bytes: Vec<u8>) -> RunOutput {
        RunOutput {
            kind: Some(if self.stderr {
                run_output::Kind::Stderr(bytes)
            } else {
                run_output::Kind::Stdout(bytes)
            }),
        }
    }

    async fn read(&mut self) -> std::io::Result<usize> {
        match &mut self.reader {
            Some(r) => r.read(&mut self.buf).await,
            None => std::future::pending().await,
        }
    }

    /// Redacts what was read (or finishes the stream at EOF).
    fn on_read(&mut self, r: std::io::Result<usize>, sends: &mut Vec<RunOutput>) {
        let mut o = Vec::new();
        match r {
            // EOF, or EIO from a pty whose last slave closed.
            Ok(0) | Err(_) => {
                self.reader = None;
                self.stream.finish(&mut o);
            }
            Ok(n) => self.stream.push(&self.buf[..n], &mut o),
        }
        if !o.is_empty() {
            sends.push(self.msg(o));
        }
    }

    fn flush(&mut self, sends: &mut Vec<RunOutput>) {
        let mut o = Vec::new();
        self.stream.flush(&mut o);
        if !o.is_empty() {
            sends.push(self.msg(o));
        }
    }
}

enum Event {
    Out(std::io::Result<usize>),
    Err(std::io::Result<usize>),
    Exited(std::io::Result<std::process::ExitStatus>),
    Deadline,
    KillGrace,
    Flush,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One running child and the state of its streams and timers.
pub struct RunLoop {
    started: Instant,
    child: Child,
    pgid: i32,
    out: Pipe,
    err: Pipe,
    tx: Sink,
    status: Option<std::io::Result<std::process::ExitStatus>>,
    timed_out: bool,
    deadline: Option<Instant>,
    kill_at: Option<Instant>,
    flush_at: Option<Instant>,
}

impl RunLoop {
    /// A loop over `child` reading `stdout` (and `stderr`, absent on a pty).
    pub(super) fn new(
        child: Child,
        pgid: i32,
        (stdout, stderr): (Reader, Option<Reader>),
        (out, err): (Stream, Stream),
        timeout: Option<Duration>,
        tx: Sink,
    ) -> RunLoop {
        let started = Instant::now();
        RunLoop {
            started,
            child,
            pgid,
            out: Pipe::new(Some(stdout), out, false),
            err: Pipe::new(stderr, err, true),
            tx,
            status: None,
            timed_out: false,
            deadline: timeout.map(|t| started + t),
            kill_at: None,
            flush_at: None,
        }
    }

    /// Runs until the child has exited and its output is drained; reports
    /// the exit to `on_exit` and the channel. Returns the exit.
    pub async fn run(mut self, on_exit: Option<OnExit>) -> RunExit {
        while !self.done() {
            let mut sends = Vec::new();
            match self.next_event().await {
                Event::Out(r) => self.out.on_read(r, &mut sends),
                Event::Err(r) => self.err.on_read(r, &mut sends),
                Event::Exited(st) => self.status = Some(st),
                Event::Deadline => self.on_deadline(),
                Event::KillGrace => self.on_kill_grace(),
                Event::Flush => self.on_flush(&mut sends),
            }
            for msg in sends {
                if self.tx.send(Ok(msg)).await.is_err() {
                    return self.on_receiver_gone(on_exit);
                }
            }
            if self.out.stream.held() + self.err.stream.held() > 0 {
                self.flush_at
                    .get_or_insert_with(|| Instant::now() + FLUSH_AFTER);
            }
        }
        let exit = self.exit();
        tracing::info!(
            code = exit.code,
            timed_out = exit.timed_out,
            redacted = exit.redacted_count,
            "run finished"
        );
        if let Some(f) = on_exit {
            f(&exit);
        }
        let _ = self.tx.send(Ok(exit_msg(exit.clone()))).await;
        exit
    }

    fn done(&self) -> bool {
        self.out.reader.is_none() && self.err.reader.is_none() && self.status.is_some()
    }

    async fn next_event(&mut self) -> Event {
        let waiting = self.status.is_none();
        let timing = !self.timed_out && self.deadline.is_some();
        tokio::select! {
            r = self.out.read() => Event::Out(r),
            r = self.err.read() => Event::Err(r),
            st = self.child.wait(), if waiting => Event::Exited(st),
            _ = sleep_opt(self.deadline), if timing => Event::Deadline,
            _ = sleep_opt(self.kill_at), if self.kill_at.is_some() => Event::KillGrace,
            _ = sleep_opt(self.flush_at), if self.flush_at.is_some() => Event::Flush,
        }
    }

    fn on_deadline(&mut self) {
        self.timed_out = true;
        tracing::info!(
            pgid = self.pgid,
            "run timed out: SIGTERM to its process group"
        );
        killpg(self.pgid, Signal::SIGTERM);
        self.kill_at = Some(Instant::now() + KILL_GRACE);
    }

    fn on_kill_grace(&mut self) {
        killpg(self.pgid, Signal::SIGKILL);
        self.kill_at = None;
    }

    fn on_flush(&mut self, sends: &mut Vec<RunOutput>) {
        self.flush_at = None;
        self.out.flush(sends);
        self.err.flush(sends);
    }

    /// Nobody reads this run's output any more: kill it.
    fn on_receiver_gone(self, on_exit: Option<OnExit>) -> RunExit {
        killpg(self.pgid, Signal::SIGKILL);
        let exit = RunExit {
            code: 128 + 9,
            signal: 9,
            error: "the client disconnected; the run was killed".into(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            ..Default::default()
        };
        if let Some(f) = on_exit {
            f(&exit);
        }
        exit
    }

    fn exit(&self) -> RunExit {
        let (code, signal) = match &self.status {
            Some(Ok(st)) => {
                use std::os::unix::process::ExitStatusExt;
                match (st.code(), st.signal()) {
                    (Some(c), _) => (c, 0),
                    (None, Some(s)) => (128 + s, s),
                    _ => (1, 0),
                }
            }
            _ => (1, 0),
        };
        RunExit {
            code: if self.timed_out { 124 } else { code },
            signal,
            timed_out: self.timed_out,
            error: String::new(),
            redacted_count: self.out.stream.count() + self.err.stream.count(),
            duration_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}
