//! The agent's `secret_run`: the shared run pipeline in agent mode (which
//! queues agent runs), plus what only buffered runs need: a cap on the
//! output kept.

use std::sync::Arc;

use secretctl_proto::v1::{AgentRunRequest, AgentRunResponse, RunExit, run_output};
use tokio::sync::mpsc;

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
            entry: "secret_run",
            proxy: true,
        }
    }
}

/// Runs an agent's request to completion; fills in `rec` (recorded by the
/// caller).
pub(super) async fn run(
    session: &Arc<Session>,
    req: AgentRunRequest,
    rec: &mut Record,
) -> Result<AgentRunResponse, RunError> {
    let entry = if req.bindings_only {
        "secret_run_with_bindings"
    } else {
        "secret_run"
    };
    let mut spec = RunSpec::from(req);
    spec.entry = entry;
    let prepared = runner::prepare(session, spec, Mode::Agent, rec).await?;
    let (tx, mut rx) = mpsc::channel(4);
    runner::launch(session, prepared, None, tx, None);
    let cap = session.agent_limits().output_cap_bytes;
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
        proxy_substitutions: exit.proxy_substitutions,
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
