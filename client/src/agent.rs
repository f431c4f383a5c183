//! `secretctl agent -- CMD ARGS...`: runs an AI agent as a registered agent
//! host (contract §9). From before CMD's first instruction, everything it
//! starts is classified as the agent's:
//! - this process registers itself with the daemon as an agent host;
//! - CMD gets `SECRETCTL_AGENT=1` (a marker, also when no daemon answers);
//! - this process is a child subreaper and stays CMD's parent, so
//!   descendants that double-fork or `setsid` are re-parented here, not to
//!   init, and remain below the host.

use anyhow::Context;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use secretctl_proto::v1::{RegisterRequest, register_request};

use crate::cli::AgentArgs;
use crate::connect;
use crate::error::{CliError, Result};

pub async fn run(a: AgentArgs) -> Result<i32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    nix::sys::prctl::set_child_subreaper(true)
        .context("cannot become a child subreaper, so the agent's processes could escape")?;
    match register().await {
        Ok(hosts) => eprintln!(
            "secretctl agent: registered {} as an agent host",
            hosts.join(", ")
        ),
        Err(e) => eprintln!(
            "secretctl agent: warning: not registered with secretctld ({e:#}); the agent is still marked by SECRETCTL_AGENT=1"
        ),
    }
    let program = &a.command[0];
    let child = std::process::Command::new(program)
        .args(&a.command[1..])
        .env("SECRETCTL_AGENT", "1")
        .spawn()
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            CliError::new(
                code,
                format!("cannot start {}: {e}", program.to_string_lossy()),
            )
        })?;
    let pid = Pid::from_raw(child.id() as i32);
    // The terminal's Ctrl-C and Ctrl-\ reach the agent (same process group);
    // we only outlive it. TERM and HUP sent to us are passed on.
    for (kind, forward) in [
        (tokio::signal::unix::SignalKind::interrupt(), None),
        (tokio::signal::unix::SignalKind::quit(), None),
        (
            tokio::signal::unix::SignalKind::terminate(),
            Some(nix::sys::signal::Signal::SIGTERM),
        ),
        (
            tokio::signal::unix::SignalKind::hangup(),
            Some(nix::sys::signal::Signal::SIGHUP),
        ),
    ] {
        let mut s = tokio::signal::unix::signal(kind).context("cannot handle signals")?;
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if let Some(sig) = forward {
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
        });
    }
    let status = tokio::task::spawn_blocking(move || wait_for(pid))
        .await
        .context("the wait for the agent failed")?;
    drop(child);
    Ok(status)
}

/// Reaps children (the agent and orphans re-parented to us) until the agent
/// itself exits; returns its exit code (128+N for signal N).
fn wait_for(agent: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::empty())) {
            Ok(WaitStatus::Exited(p, code)) if p == agent => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == agent => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            // ECHILD: nothing left to wait for (cannot happen while the
            // agent lives).
            Err(_) => return 1,
        }
    }
}

/// Registers this process as an agent host; returns what the daemon
/// recorded.
async fn register() -> Result<Vec<String>> {
    let (client, _) = connect::connect().await?;
    let r = client
        .daemon()
        .register(RegisterRequest {
            kind: register_request::Kind::Host as i32,
        })
        .await
        .map_err(|s| client.classify(s))
        .context("cannot register")?
        .into_inner();
    Ok(r.hosts)
}
