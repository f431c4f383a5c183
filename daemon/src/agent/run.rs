//! The agent's `secret_run`: the shared run pipeline in agent mode, plus
//! what only buffered agent runs need — a queue of limited width and a cap
//! on the output kept.
//!
//! Invariant: a queued run waits no longer than its own timeout, and the
//! time it waited counts against that timeout.

use std::sync::Arc;
use std::time::Duration;

use secretctl_proto::v1::{AgentRunRequest, AgentRunResponse, RunExit, run_output};
use tokio::sync::{Semaphore, mpsc};

use crate::audit::record::Record;
use crate::runner::{self, Mode, RunError, RunSpec};
use crate::session::Session;

/// Keeps `cap` bytes of a stream and notes whether more came.
pub(super) struct Capped {
    pub(super) buf: Vec<u8>,
    pub(super) cap: usize,
    pub(super) truncated: bool,
}

impl Capped {
    pub(super) fn new(cap: usize) -> Capped {
        Capped {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl From<AgentRunRequest> for RunSpec {
    fn from(r: AgentRunRequest) -> RunSpec {
        RunSpec {
            patterns: r.keys,
            alias: r.env_alias,
            prefix: r.env_prefix,
            argv: r.argv,
            cwd: r.cwd,
            env: r.env,
            timeout_ms: r.timeout_ms,
            bindings_only: r.bindings_only,
            no_redact: false,
            pty: None,
        }
    }
}

/// Runs an agent's request to completion; fills in `rec` (recorded by the
/// caller).
pub(super) async fn run(
    session: &Session,
    runs: &Arc<Semaphore>,
    req: AgentRunRequest,
    rec: &mut Record,
) -> Result<AgentRunResponse, RunError> {
    let mut prepared = runner::prepare(session, req.into(), Mode::Agent, rec).await?;
    let timeout = prepared
        .timeout
        .expect("agent runs always have a timeout (prepare sets the default)");

    // Wait for a slot, but no longer than the run itself may take.
    let queued = tokio::time::Instant::now();
    let permit = tokio::time::timeout(timeout, runs.clone().acquire_owned())
        .await
        .map_err(|_| {
            RunError::Busy(format!(
                "{} agent runs were in progress for the whole timeout ({}): try again later",
                session.config.agent.max_concurrent_runs,
                secretctl_proto::duration::format(timeout)
            ))
        })?
        .map_err(|_| RunError::Internal("run queue closed".into()))?;
    prepared.timeout = Some(
        timeout
            .saturating_sub(queued.elapsed())
            .max(Duration::from_millis(1)),
    );

    let (tx, mut rx) = mpsc::channel(4);
    runner::launch(prepared, None, tx, None);
    let cap = session.config.agent.output_cap_bytes;
    let (mut out, mut err) = (Capped::new(cap), Capped::new(cap));
    let mut exit = RunExit {
        code: 1,
        error: "the run ended without reporting its exit".into(),
        ..Default::default()
    };
    while let Some(msg) = rx.recv().await {
        match msg.ok().and_then(|m| m.kind) {
            Some(run_output::Kind::Stdout(b)) => out.push(&b),
            Some(run_output::Kind::Stderr(b)) => err.push(&b),
            Some(run_output::Kind::Exit(e)) => exit = e,
            None => {}
        }
    }
    drop(permit);
    runner::record_exit(rec, &exit);
    if !exit.error.is_empty() && err.buf.is_empty() {
        // It never started: say why where the agent looks.
        err.push(exit.error.as_bytes());
    }
    Ok(AgentRunResponse {
        exit_code: exit.code,
        stdout: String::from_utf8_lossy(&out.buf).into_owned(),
        stderr: String::from_utf8_lossy(&err.buf).into_owned(),
        duration_ms: exit.duration_ms,
        timed_out: exit.timed_out,
        truncated: out.truncated || err.truncated,
        redacted_count: exit.redacted_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_output_notes_truncation() {
        let mut c = Capped::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        assert_eq!(c.buf, b"abcde");
        assert!(c.truncated);
    }
}
