//! `secretctl.v1.Runner`: runs a command with secrets in its environment and
//! streams its redacted output back.
//!
//! One run = one bidirectional stream. The client sends the start message,
//! then stdin, signals, window sizes and EOF; the daemon answers with
//! redacted stdout/stderr chunks and one exit message.
//!
//! Invariants:
//! - No output byte leaves the daemon before passing the run's redactor
//!   (unless the CLI asked for `--no-redact` for the user's own terminal).
//! - Backpressure end to end: output goes through a small bounded channel;
//!   when the client reads slowly we stop reading the child's pipes, so the
//!   child blocks and daemon memory stays flat.
//! - Timeout: SIGTERM to the whole process group, SIGKILL 5 s later.
//! - A client that disconnects gets its child's group killed.

pub mod resolve;
pub mod spawn;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use secretctl_proto::v1::runner_server::Runner;
use secretctl_proto::v1::{
    RunExit, RunInput, RunOutput, RunSignal, RunStart, run_input, run_output,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::redact::{Redactor, Stream};
use crate::service::blocking;
use crate::session::{Session, Use};
use resolve::ResolveError;
use spawn::{Io, Spawned};

/// Held output is released this long after the last read, so prompts and
/// progress lines are not delayed.
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);
/// Grace between SIGTERM and SIGKILL on timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;
const MAX_ARGS: usize = 4096;
const MAX_ENV_BYTES: usize = 1024 * 1024;

/// The run service for the CLI.
pub struct RunnerService {
    session: Arc<Session>,
}

impl RunnerService {
    pub fn new(session: Arc<Session>) -> Self {
        RunnerService { session }
    }
}

impl From<ResolveError> for Status {
    fn from(e: ResolveError) -> Status {
        match e {
            ResolveError::Invalid(m) => Status::invalid_argument(m),
            ResolveError::NotFound(m) => Status::not_found(m),
            e @ ResolveError::Expired { .. } => Status::failed_precondition(e.to_string()),
            ResolveError::Policy(m) => Status::failed_precondition(m),
            ResolveError::Vault(v) => v.into(),
        }
    }
}

/// Checks a start message at the daemon boundary.
pub fn validate_start(start: &mut RunStart) -> Result<PathBuf, Status> {
    let bad = |m: &str| Err(Status::invalid_argument(m.to_string()));
    if start.argv.is_empty() || start.argv[0].is_empty() {
        return bad("no command given: put it after --");
    }
    if start.argv.len() > MAX_ARGS {
        return bad("too many arguments");
    }
    if start.argv.iter().any(|a| a.contains('\0')) {
        return bad("an argument contains a NUL byte");
    }
    let cwd = PathBuf::from(&start.cwd);
    if !cwd.is_absolute() || !cwd.is_dir() {
        return Err(Status::invalid_argument(format!(
            "working directory '{}' is not an existing absolute directory",
            start.cwd
        )));
    }
    // The daemon's own variables never reach the child.
    start.env.retain(|v| !v.name.starts_with("SECRETCTL_"));
    let mut total = 0;
    for v in &start.env {
        total += v.name.len() + v.value.len();
        if v.name.is_empty() || v.name.contains(['=', '\0']) || v.value.contains(&0) {
            return Err(Status::invalid_argument(format!(
                "environment variable {:?} has an invalid name or a NUL byte",
                v.name
            )));
        }
    }
    if total > MAX_ENV_BYTES {
        return bad("the environment is larger than 1 MiB");
    }
    if start.env_alias.len() > 64 || start.env_prefix.len() > 64 {
        return bad("env alias and env prefix are at most 64 bytes");
    }
    Ok(cwd)
}

#[tonic::async_trait]
impl Runner for RunnerService {
    type RunStream = ReceiverStream<Result<RunOutput, Status>>;

    async fn run(
        &self,
        req: Request<Streaming<RunInput>>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let who = crate::service::peer_of(&req);
        let mut rec = crate::audit::event("run", "cli", who);
        let r = self.start_run(req.into_inner(), &mut rec).await;
        if r.is_err() {
            crate::service::outcome(&mut rec, &r);
            self.session.audit.record(rec).await;
        }
        r.map(Response::new)
    }
}

impl RunnerService {
    /// Starts a run; `rec` is filled in and recorded when the run ends (or
    /// by the caller if it never starts).
    async fn start_run(
        &self,
        mut input: Streaming<RunInput>,
        rec: &mut crate::audit::record::Record,
    ) -> Result<ReceiverStream<Result<RunOutput, Status>>, Status> {
        let mut start = match input.message().await? {
            Some(RunInput {
                kind: Some(run_input::Kind::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "a run must begin with its start message",
                ));
            }
        };
        rec.command = Some(start.argv.join(" "));
        rec.keys = start.key_patterns.clone();
        let cwd = validate_start(&mut start)?;
        let (vault, dk) = self.session.key(Use::Secret)?;
        let policy_path = self
            .session
            .paths
            .home
            .join(secretctl_proto::paths::POLICY_FILE);
        let (alias, prefix, patterns) = (
            start.env_alias.clone(),
            start.env_prefix.clone(),
            start.key_patterns.clone(),
        );
        let now = crate::vault::now_secs();
        let injections = blocking(move || {
            resolve::policy_for_alias(&policy_path, &alias)
                .and_then(|policy| {
                    resolve::resolve(
                        &vault,
                        &dk,
                        policy.as_ref(),
                        &alias,
                        &prefix,
                        &patterns,
                        now,
                    )
                })
                .map_err(Status::from)
        })
        .await?;
        let keys: Vec<String> = injections.iter().map(|i| i.key.clone()).collect();
        tracing::info!(?keys, command = %start.argv[0], pty = start.pty, "run");
        rec.keys = keys;
        let path_var = start
            .env
            .iter()
            .find(|v| v.name == "PATH")
            .map(|v| v.value.as_slice());
        let resolved =
            spawn::which(&start.argv[0], &cwd, path_var).map(|p| p.display().to_string());
        rec.detail = Some(serde_json::json!({
            "resolved": resolved,
            "cwd": start.cwd,
            "env_alias": start.env_alias,
            "pty": start.pty,
        }));
        let redactor = if start.no_redact {
            Redactor::none()
        } else {
            Redactor::new(
                injections
                    .iter()
                    .map(|i| (i.env.as_str(), i.value.as_slice())),
            )
        };
        let size = start
            .size
            .unwrap_or(secretctl_proto::v1::WindowSize { rows: 24, cols: 80 });
        let spawned = spawn::spawn(spawn::Plan {
            argv: &start.argv,
            program: None,
            cwd: &cwd,
            env: &start.env,
            secrets: &injections,
            pty: start.pty.then_some(size),
        });
        drop(injections);
        let timeout = (start.timeout_ms > 0).then(|| Duration::from_millis(start.timeout_ms));
        let (tx, rx) = mpsc::channel(4);
        match spawned {
            Err(e) => {
                tracing::info!(code = e.code, "run failed to start");
                let exit = RunExit {
                    code: e.code,
                    error: e.message,
                    ..Default::default()
                };
                let mut done = rec.clone();
                record_exit(&mut done, &exit);
                self.session.audit.record(done).await;
                let _ = tx.send(Ok(exit_msg(exit))).await;
            }
            Ok(sp) => {
                let audit = self.session.audit.clone();
                let mut done = rec.clone();
                let on_exit: OnExit = Box::new(move |exit: &RunExit| {
                    record_exit(&mut done, exit);
                    audit.record_nowait(done);
                });
                tokio::spawn(drive(sp, Some(input), tx, redactor, timeout, Some(on_exit)));
            }
        }
        Ok(ReceiverStream::new(rx))
    }
}

/// Called with a run's exit, once.
pub type OnExit = Box<dyn FnOnce(&RunExit) + Send>;

/// Fills an audit record with how a run ended.
pub fn record_exit(rec: &mut crate::audit::record::Record, exit: &RunExit) {
    rec.success = exit.error.is_empty() && exit.code == 0;
    if !exit.error.is_empty() {
        rec.error = Some(exit.error.clone());
    }
    let detail = rec.detail.get_or_insert_with(|| serde_json::json!({}));
    detail["exit_code"] = serde_json::json!(exit.code);
    detail["signal"] = serde_json::json!(exit.signal);
    detail["timed_out"] = serde_json::json!(exit.timed_out);
    detail["duration_ms"] = serde_json::json!(exit.duration_ms);
    detail["redacted_count"] = serde_json::json!(exit.redacted_count);
}

/// The exit message of a run.
pub fn exit_msg(e: RunExit) -> RunOutput {
    RunOutput {
        kind: Some(run_output::Kind::Exit(e)),
    }
}

fn killpg(pgid: i32, sig: Signal) {
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// One output stream of the child and its redactor.
struct Pipe {
    reader: Option<Reader>,
    stream: Stream,
    stderr: bool,
}

impl Pipe {
    fn msg(&self, bytes: Vec<u8>) -> RunOutput {
        RunOutput {
            kind: Some(if self.stderr {
                run_output::Kind::Stderr(bytes)
            } else {
                run_output::Kind::Stdout(bytes)
            }),
        }
    }
}

async fn read_opt(r: &mut Option<Reader>, buf: &mut [u8]) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Moves bytes between the client and the child until the child has exited
/// and its output is drained, then sends the exit message. Without `input`
/// (agent runs) the child's stdin is closed at once.
pub async fn drive(
    sp: Spawned,
    input: Option<Streaming<RunInput>>,
    tx: mpsc::Sender<Result<RunOutput, Status>>,
    redactor: Redactor,
    timeout: Option<Duration>,
    mut on_exit: Option<OnExit>,
) {
    let started = Instant::now();
    let Spawned {
        mut child,
        pgid,
        io,
    } = sp;
    let (stdin, out_r, err_r, master): (Option<Writer>, Reader, Option<Reader>, _) = match io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => (
            stdin.map(|w| Box::new(w) as Writer),
            Box::new(stdout),
            Some(Box::new(stderr) as Reader),
            None,
        ),
        Io::Pty {
            reader,
            writer,
            master,
        } => (
            Some(Box::new(writer) as Writer),
            Box::new(reader),
            None,
            Some(master),
        ),
    };
    let pty = master.is_some();
    let input_task = match input {
        Some(input) => tokio::spawn(pump_input(input, stdin, pgid, master, pty)),
        None => {
            drop(stdin);
            tokio::spawn(async {})
        }
    };

    let mut out = Pipe {
        reader: Some(out_r),
        stream: redactor.stream(),
        stderr: false,
    };
    let mut err = Pipe {
        reader: err_r,
        stream: redactor.stream(),
        stderr: true,
    };
    let (mut out_buf, mut err_buf) = (vec![0u8; READ_CHUNK], vec![0u8; READ_CHUNK]);
    let mut status = None;
    let mut timed_out = false;
    let deadline = timeout.map(|t| started + t);
    let mut kill_at: Option<Instant> = None;
    let mut flush_at: Option<Instant> = None;

    loop {
        if out.reader.is_none() && err.reader.is_none() && status.is_some() {
            break;
        }
        let mut sends: Vec<RunOutput> = Vec::new();
        tokio::select! {
            r = read_opt(&mut out.reader, &mut out_buf) => handle_read(&mut out, r, &out_buf, &mut sends),
            r = read_opt(&mut err.reader, &mut err_buf) => handle_read(&mut err, r, &err_buf, &mut sends),
            st = child.wait(), if status.is_none() => {
                status = Some(st);
            }
            _ = sleep_opt(deadline), if !timed_out && deadline.is_some() => {
                timed_out = true;
                tracing::info!(pgid, "run timed out: SIGTERM to its process group");
                killpg(pgid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + KILL_GRACE);
            }
            _ = sleep_opt(kill_at), if kill_at.is_some() => {
                killpg(pgid, Signal::SIGKILL);
                kill_at = None;
            }
            _ = sleep_opt(flush_at), if flush_at.is_some() => {
                flush_at = None;
                for p in [&mut out, &mut err] {
                    let mut o = Vec::new();
                    p.stream.flush(&mut o);
                    if !o.is_empty() {
                        sends.push(p.msg(o));
                    }
                }
            }
        }
        for msg in sends {
            if tx.send(Ok(msg)).await.is_err() {
                // The client is gone: nobody will read this run's output.
                killpg(pgid, Signal::SIGKILL);
                input_task.abort();
                if let Some(f) = on_exit.take() {
                    f(&RunExit {
                        code: 128 + 9,
                        signal: 9,
                        error: "the client disconnected; the run was killed".into(),
                        duration_ms: started.elapsed().as_millis() as u64,
                        ..Default::default()
                    });
                }
                return;
            }
        }
        if out.stream.held() + err.stream.held() > 0 {
            flush_at.get_or_insert_with(|| Instant::now() + FLUSH_AFTER);
        }
    }
    input_task.abort();
    let (code, signal) = match &status {
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
    let exit = RunExit {
        code: if timed_out { 124 } else { code },
        signal,
        timed_out,
        error: String::new(),
        redacted_count: out.stream.count() + err.stream.count(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    tracing::info!(
        code = exit.code,
        timed_out,
        redacted = exit.redacted_count,
        "run finished"
    );
    if let Some(f) = on_exit {
        f(&exit);
    }
    let _ = tx.send(Ok(exit_msg(exit))).await;
}

fn handle_read(p: &mut Pipe, r: std::io::Result<usize>, buf: &[u8], sends: &mut Vec<RunOutput>) {
    let mut o = Vec::new();
    match r {
        // EOF, or EIO from a pty whose last slave closed.
        Ok(0) | Err(_) => {
            p.reader = None;
            p.stream.finish(&mut o);
        }
        Ok(n) => p.stream.push(&buf[..n], &mut o),
    }
    if !o.is_empty() {
        sends.push(p.msg(o));
    }
}

/// Forwards the client's stdin, signals and window sizes to the child.
async fn pump_input(
    mut input: Streaming<RunInput>,
    mut stdin: Option<Writer>,
    pgid: i32,
    master: Option<std::os::fd::OwnedFd>,
    pty: bool,
) {
    loop {
        let msg = match input.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => {
                // The client vanished mid-run.
                killpg(pgid, Signal::SIGHUP);
                return;
            }
        };
        match msg.kind {
            Some(run_input::Kind::Stdin(bytes)) => {
                if let Some(w) = stdin.as_mut()
                    && (w.write_all(&bytes).await.is_err() || w.flush().await.is_err())
                {
                    stdin = None;
                }
            }
            Some(run_input::Kind::StdinEof(_)) => {
                if pty {
                    // A pty has no half-close: send the terminal's EOF character.
                    if let Some(w) = stdin.as_mut() {
                        let _ = w.write_all(b"\x04").await;
                        let _ = w.flush().await;
                    }
                } else {
                    stdin = None;
                }
            }
            Some(run_input::Kind::Signal(s)) => {
                let sig = match RunSignal::try_from(s) {
                    Ok(RunSignal::Int) => Signal::SIGINT,
                    Ok(RunSignal::Term) => Signal::SIGTERM,
                    Ok(RunSignal::Hup) => Signal::SIGHUP,
                    Ok(RunSignal::Quit) => Signal::SIGQUIT,
                    _ => continue,
                };
                killpg(pgid, sig);
            }
            Some(run_input::Kind::Resize(size)) => {
                if let Some(m) = &master {
                    spawn::resize(m, &size);
                }
            }
            Some(run_input::Kind::Start(_)) | None => {}
        }
    }
}
