//! The second half of a run: moving bytes while the child lives.
//!
//! [`RunLoop`] waits for the next event (output on either stream, a report
//! from the run's supervisor, the timeout, the SIGKILL grace, the flush
//! deadline) and handles it with one method per event. Output passes the
//! run's redactor and goes to a small bounded channel: when the receiver is
//! slow we stop reading the child's pipes, so the child blocks and daemon
//! memory stays flat.
//!
//! Invariants:
//! - No output byte is sent before passing the redactor.
//! - Timeout: SIGTERM to the child's process group, then the whole tree is
//!   killed after [`KILL_GRACE`]. The daemon stopping ends a run the same
//!   way, and its exit says so ([`STOPPED`]).
//! - A receiver that goes away gets the whole tree killed.
//! - The loop ends only when the supervisor is gone, that is when no
//!   process of the run is left.
//! - The exit is reported exactly once: to `on_exit`, then on the channel.

use std::time::Duration;

use secretctl_proto::v1::{RunExit, RunOutput, run_output};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::supervisor::Report;
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

/// The error of a run ended because the daemon is stopping.
pub const STOPPED: &str = "secretctld is shutting down: the run was ended";

/// Longest wait for the supervisor to report the tree gone after `kill`.
const TREE_GONE_WITHIN: Duration = Duration::from_secs(10);

/// Commands to a run's supervisor, from the loop and the input pump.
#[derive(Clone)]
pub struct Control(mpsc::UnboundedSender<String>);

impl Control {
    /// Starts the task that writes commands to the supervisor's socket.
    pub(super) fn start(mut w: OwnedWriteHalf) -> Control {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if w.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        Control(tx)
    }

    /// Sends `sig` to the child's process group.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = self.0.send(format!("sig {}\n", sig as i32));
    }

    /// Lets the supervisor start the child (after its registration).
    pub fn go(&self) {
        let _ = self.0.send("go\n".into());
    }

    /// Kills the whole tree of the run now.
    pub fn kill(&self) {
        let _ = self.0.send("kill\n".into());
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
    /// A line from the supervisor; `None` when it is gone.
    Report(Option<Report>),
    Deadline,
    KillGrace,
    Flush,
    /// The daemon is stopping.
    Stopping,
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
    supervisor: Child,
    reports: Option<Lines<BufReader<OwnedReadHalf>>>,
    control: Control,
    out: Pipe,
    err: Pipe,
    tx: Sink,
    /// (code, signal) once the child exited.
    exited: Option<(i32, i32)>,
    /// Why the child never started.
    failed: Option<(i32, String)>,
    timed_out: bool,
    deadline: Option<Instant>,
    kill_at: Option<Instant>,
    flush_at: Option<Instant>,
    /// Becomes true when the daemon stops; `None` once acted upon.
    stopping: Option<tokio::sync::watch::Receiver<bool>>,
    stopped: bool,
    /// The run's credential proxy: stopped once the tree is gone, and its
    /// substitutions counted in the exit.
    proxy: Option<crate::proxy::RunProxy>,
}

impl RunLoop {
    /// A loop over a run reading `stdout` (and `stderr`, absent on a pty).
    pub(super) fn new(
        supervisor: Child,
        (reports, control): (OwnedReadHalf, Control),
        (stdout, stderr): (Reader, Option<Reader>),
        (out, err): (Stream, Stream),
        timeout: Option<Duration>,
        tx: Sink,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> RunLoop {
        let started = Instant::now();
        RunLoop {
            started,
            supervisor,
            reports: Some(BufReader::new(reports).lines()),
            control,
            out: Pipe::new(Some(stdout), out, false),
            err: Pipe::new(stderr, err, true),
            tx,
            exited: None,
            failed: None,
            timed_out: false,
            deadline: timeout.map(|t| started + t),
            kill_at: None,
            flush_at: None,
            stopping: Some(stopping),
            stopped: false,
            proxy: None,
        }
    }

    /// Gives the run its credential proxy (see [`RunLoop::proxy`]).
    pub(super) fn with_proxy(mut self, proxy: Option<crate::proxy::RunProxy>) -> RunLoop {
        self.proxy = proxy;
        self
    }

    /// Stops the run's proxy, if any, and counts its substitutions in `exit`.
    async fn stop_proxy(&mut self, exit: &mut RunExit) {
        if let Some(p) = self.proxy.take() {
            exit.proxy_substitutions = p.stop().await;
        }
    }

    /// Runs until the run's tree is gone and its output drained; reports
    /// the exit to `on_exit` and the channel. Returns the exit.
    pub async fn run(mut self, on_exit: Option<OnExit>) -> RunExit {
        while !self.done() {
            let mut sends = Vec::new();
            match self.next_event().await {
                Event::Out(r) => self.out.on_read(r, &mut sends),
                Event::Err(r) => self.err.on_read(r, &mut sends),
                Event::Report(r) => self.on_report(r),
                Event::Deadline => self.on_deadline(),
                Event::KillGrace => self.on_kill_grace(),
                Event::Flush => self.on_flush(&mut sends),
                Event::Stopping => self.on_stopping(),
            }
            for msg in sends {
                if self.tx.send(Ok(msg)).await.is_err() {
                    return self.on_receiver_gone(on_exit).await;
                }
            }
            if self.out.stream.held() + self.err.stream.held() > 0 {
                self.flush_at
                    .get_or_insert_with(|| Instant::now() + FLUSH_AFTER);
            }
        }
        let _ = self.supervisor.wait().await;
        let mut exit = self.exit();
        self.stop_proxy(&mut exit).await;
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
        self.out.reader.is_none() && self.err.reader.is_none() && self.reports.is_none()
    }

    async fn next_event(&mut self) -> Event {
        let timing = !self.timed_out && self.deadline.is_some();
        tokio::select! {
            r = self.out.read() => Event::Out(r),
            r = self.err.read() => Event::Err(r),
            line = next_report(&mut self.reports) => Event::Report(line),
            _ = sleep_opt(self.deadline), if timing => Event::Deadline,
            _ = sleep_opt(self.kill_at), if self.kill_at.is_some() => Event::KillGrace,
            _ = sleep_opt(self.flush_at), if self.flush_at.is_some() => Event::Flush,
            () = stopping(&mut self.stopping) => Event::Stopping,
        }
    }

    fn on_report(&mut self, r: Option<Report>) {
        match r {
            Some(Report::Started(pid)) => tracing::debug!(pid, "run child started"),
            Some(Report::Exited { code, signal }) => self.exited = Some((code, signal)),
            Some(Report::Failed { code, message }) => self.failed = Some((code, message)),
            // The tree is gone; the supervisor exits next.
            Some(Report::Done) | None => self.reports = None,
        }
    }

    fn on_deadline(&mut self) {
        self.timed_out = true;
        tracing::info!("run timed out: SIGTERM to its process group");
        self.control.signal(nix::sys::signal::Signal::SIGTERM);
        self.kill_at = Some(Instant::now() + KILL_GRACE);
    }

    fn on_stopping(&mut self) {
        self.stopping = None;
        if self.exited.is_some() || self.failed.is_some() {
            return;
        }
        self.stopped = true;
        tracing::info!("daemon stopping: SIGTERM to the run's process group");
        self.control.signal(nix::sys::signal::Signal::SIGTERM);
        self.kill_at = Some(Instant::now() + KILL_GRACE);
    }

    fn on_kill_grace(&mut self) {
        self.control.kill();
        self.kill_at = None;
    }

    fn on_flush(&mut self, sends: &mut Vec<RunOutput>) {
        self.flush_at = None;
        self.out.flush(sends);
        self.err.flush(sends);
    }

    /// Nobody reads this run's output any more: kill the tree, and return
    /// only once it is gone.
    async fn on_receiver_gone(mut self, on_exit: Option<OnExit>) -> RunExit {
        self.control.kill();
        let wait = async {
            while self.reports.is_some() {
                let r = next_report(&mut self.reports).await;
                self.on_report(r);
            }
            let _ = self.supervisor.wait().await;
        };
        if tokio::time::timeout(TREE_GONE_WITHIN, wait).await.is_err() {
            tracing::warn!("a run's supervisor did not finish after kill");
        }
        let mut exit = RunExit {
            code: 128 + 9,
            signal: 9,
            error: "the client disconnected; the run was killed".into(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            ..Default::default()
        };
        self.stop_proxy(&mut exit).await;
        if let Some(f) = on_exit {
            f(&exit);
        }
        exit
    }

    fn exit(&self) -> RunExit {
        let duration_ms = self.started.elapsed().as_millis() as u64;
        if let Some((code, message)) = &self.failed {
            return RunExit {
                code: *code,
                error: message.clone(),
                duration_ms,
                ..Default::default()
            };
        }
        let (code, signal) = self.exited.unwrap_or((1, 0));
        RunExit {
            code: if self.timed_out { 124 } else { code },
            signal,
            timed_out: self.timed_out,
            error: if self.exited.is_none() {
                "the run's supervisor ended without reporting the exit".into()
            } else if self.stopped {
                STOPPED.into()
            } else {
                String::new()
            },
            redacted_count: self.out.stream.count() + self.err.stream.count(),
            duration_ms,
            proxy_substitutions: 0,
        }
    }
}

/// Resolves when the daemon starts stopping (at once if it already is);
/// never when `rx` is `None` or its sender is gone.
async fn stopping(rx: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(rx) = rx
        && rx.wait_for(|s| *s).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// The supervisor's next report; `None` at its end. Lines it never writes
/// are skipped.
async fn next_report(r: &mut Option<Lines<BufReader<OwnedReadHalf>>>) -> Option<Report> {
    let Some(lines) = r else {
        return std::future::pending().await;
    };
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(report) = Report::parse(&line) {
                    return Some(report);
                }
            }
            _ => return None,
        }
    }
}
