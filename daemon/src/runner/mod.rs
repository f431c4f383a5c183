//! Runs: a command with secrets in its environment, its output redacted.
//!
//! One pipeline serves the CLI's `run` and the agent's `secret_run`:
//! [`prepare`] (validation, agent rules and policy, key resolution, the
//! redactor) then [`launch`] (spawn, then [`drive::RunLoop`] until the child
//! is gone). The CLI entry streams the output back and forwards stdin and
//! signals; the agent entry (`agent::run`) adds its queue and output cap.
//!
//! | module | role |
//! |---|---|
//! | `prepare` | request → checked plan; every refusal happens here |
//! | `resolve` | key patterns → environment variables |
//! | `spawn` | starting the run's supervisor on pipes or a pty |
//! | `supervisor` | the process that keeps a run's tree together and ends it |
//! | `drive` | the event loop while the child runs |
//! | `input` | the CLI client's stdin, signals and resizes |

pub mod drive;
mod input;
pub mod orphans;
pub mod prepare;
pub mod proxied;
pub mod resolve;
pub mod spawn;
pub mod supervisor;

use std::sync::Arc;

use secretctl_proto::v1::runner_server::Runner;
use secretctl_proto::v1::{RunExit, RunInput, RunOutput, run_input};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::audit::record::Record;
use crate::caller::classify::Classifier;
use crate::caller::registry::{RunInfo, RunKind};
use crate::session::Session;
pub use drive::{OnExit, Sink, exit_msg};
pub use prepare::{Mode, Prepared, RunError, RunSpec, prepare};
use spawn::{Io, Spawned};

/// How long a run's start message may take to arrive.
const START_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The run service for the CLI.
pub struct RunnerService {
    session: Arc<Session>,
}

impl RunnerService {
    pub fn new(session: Arc<Session>) -> Self {
        RunnerService { session }
    }
}

#[tonic::async_trait]
impl Runner for RunnerService {
    type RunStream = ReceiverStream<Result<RunOutput, Status>>;

    async fn run(
        &self,
        req: Request<Streaming<RunInput>>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let who = crate::service::conn_of(&req);
        let mut rec = crate::service::event("run", "cli", &who);
        // An agent's `secretctl run` follows the agent rules (contract §9).
        let mode = if who.caller.is_agent() {
            Mode::Agent
        } else {
            Mode::User
        };
        let mut input = req.into_inner();
        let first = tokio::time::timeout(START_WITHIN, input.message())
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "a run must send its start message within {} s",
                    START_WITHIN.as_secs()
                ))
            })?;
        let start = match first? {
            Some(RunInput {
                kind: Some(run_input::Kind::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "a run must begin with its start message",
                ));
            }
        };
        let prepared = match prepare(&self.session, start.into(), mode, &mut rec).await {
            Ok(p) => p,
            Err(e) => return Err(refused(&self.session, rec, e).await),
        };
        let audit = self.session.audit.clone();
        let on_exit: OnExit = Box::new(move |exit: &RunExit| {
            record_exit(&mut rec, exit);
            audit.record_nowait(rec);
        });
        let (tx, rx) = mpsc::channel(4);
        launch(&self.session, prepared, Some(input), tx, Some(on_exit));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Records a run refused before it started and turns the refusal into the
/// client's status.
pub async fn refused(session: &Session, mut rec: Record, e: RunError) -> Status {
    if let Some(action) = e.audit_action() {
        rec.action = action.into();
    }
    let status = Status::from(e);
    rec.success = false;
    rec.error = Some(status.message().to_string());
    if let Err(e) = session.audit.record(rec).await {
        tracing::error!(error = %e, "a refused run could not be recorded");
    }
    status
}

/// Starts a prepared run and drives it on a task until its whole process
/// tree is gone. Output goes to `tx`, then the exit. `input` (CLI runs)
/// feeds stdin, signals and resizes; without it the child's stdin is closed
/// at once. While it runs, the run's supervisor is registered, so processes
/// it starts are classified by whose run it is; its queue slot (agent runs)
/// is released only when the tree is gone.
pub fn launch(
    session: &Arc<Session>,
    p: Prepared,
    input: Option<Streaming<RunInput>>,
    tx: Sink,
    on_exit: Option<OnExit>,
) -> tokio::task::JoinHandle<RunExit> {
    // Held from spawn to registration, so the orphan sweep never takes a
    // new supervisor for an orphan.
    let spawning = session.caller.registry.spawning();
    let spawned = spawn::spawn(spawn::Plan {
        argv: &p.argv,
        program: p.program.as_deref(),
        cwd: &p.cwd,
        env: &p.env,
        secrets: &p.injections,
        pty: p.pty,
    });
    drop(p.injections);
    let registered = spawned.as_ref().ok().and_then(|sp| {
        let id = Classifier::identity(sp.supervisor.id()? as i32)?;
        let kind = match p.mode {
            Mode::User => RunKind::User,
            Mode::Agent => RunKind::Agent,
        };
        let what = format!("{} '{}'", p.entry, p.argv.join(" "));
        session
            .caller
            .registry
            .run_started(id, RunInfo { kind, what });
        Some(id)
    });
    drop(spawning);
    let (redactor, timeout, slot, proxy) = (p.redactor, p.timeout, p.slot, p.proxy);
    let session = session.clone();
    tokio::spawn(async move {
        let Spawned {
            supervisor,
            control,
            io,
        } = match spawned {
            Ok(sp) => sp,
            Err(e) => {
                tracing::info!(code = e.code, "run failed to start");
                let exit = RunExit {
                    code: e.code,
                    error: e.message,
                    ..Default::default()
                };
                if let Some(f) = on_exit {
                    f(&exit);
                }
                let _ = tx.send(Ok(exit_msg(exit.clone()))).await;
                return exit;
            }
        };
        let (reports, commands) = control.into_split();
        let control = drive::Control::start(commands);
        if registered.is_some() {
            control.go();
        } else {
            // Unregistered, its child could not be classified: never start it.
            control.kill();
        }
        let (stdin, readers, master): (Option<input::Writer>, _, _) = match io {
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => (
                stdin.map(|w| Box::new(w) as input::Writer),
                (
                    Box::new(stdout) as drive::Reader,
                    Some(Box::new(stderr) as drive::Reader),
                ),
                None,
            ),
            Io::Pty {
                reader,
                writer,
                master,
            } => (
                Some(Box::new(writer) as input::Writer),
                (Box::new(reader) as drive::Reader, None),
                Some(master),
            ),
        };
        let pump = match input {
            Some(i) => Some(tokio::spawn(input::pump(i, stdin, control.clone(), master))),
            None => {
                drop(stdin); // no client input: the child sees EOF at once
                None
            }
        };
        let streams = (redactor.stream(), redactor.stream());
        let exit = drive::RunLoop::new(
            supervisor,
            (reports, control),
            readers,
            streams,
            timeout,
            tx,
            session.stopping(),
        )
        .with_proxy(proxy)
        .run(on_exit)
        .await;
        if let Some(p) = pump {
            p.abort();
        }
        if let Some(id) = registered {
            session.caller.registry.run_ended(id);
        }
        if exit.error.contains("supervisor") {
            // It died without finishing its tree: whatever it left came to us.
            orphans::sweep(&session.caller.registry);
        }
        drop(slot);
        exit
    })
}

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
    if exit.proxy_substitutions > 0 || detail.get("run_id").is_some() {
        detail["proxy_substitutions"] = serde_json::json!(exit.proxy_substitutions);
    }
}
