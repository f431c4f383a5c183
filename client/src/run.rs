//! `run`: the client half of a run. Sends the start message, then stdin,
//! signals and window sizes; writes the daemon's (already redacted) output
//! to our stdout/stderr and exits with the child's code.
//!
//! Nothing is decided here: key resolution, spawning and redaction all
//! happen in the daemon. Writing output before reading the next message is
//! what gives end-to-end backpressure.

use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;

use nix::sys::termios;
use secretctl_proto::v1::{
    EnvVar, RunInput, RunSignal, RunStart, WindowSize, run_input, run_output,
};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cli::RunArgs;
use crate::connect;
use crate::error::{CliError, Result};

fn window_size() -> Option<WindowSize> {
    terminal_size::terminal_size_of(std::io::stdout())
        .or_else(|| terminal_size::terminal_size_of(std::io::stdin()))
        .map(|(w, h)| WindowSize {
            rows: u32::from(h.0),
            cols: u32::from(w.0),
        })
}

/// Our environment as sent to the daemon: everything but `SECRETCTL_*`.
pub fn client_env() -> Vec<EnvVar> {
    env_for_daemon(std::env::vars_os())
}

/// `vars` without `SECRETCTL_*` (and without names that are not UTF-8).
fn env_for_daemon(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<EnvVar> {
    vars.filter(|(k, _)| !k.as_bytes().starts_with(b"SECRETCTL_"))
        .filter_map(|(k, v)| {
            Some(EnvVar {
                name: k.into_string().ok()?,
                value: v.as_bytes().to_vec(),
            })
        })
        .collect()
}

/// Puts the terminal in raw mode for `--pty` and restores it on drop.
struct RawMode(Option<termios::Termios>);

impl RawMode {
    fn enter(enable: bool) -> RawMode {
        if !enable || !std::io::stdin().is_terminal() {
            return RawMode(None);
        }
        let Ok(saved) = termios::tcgetattr(std::io::stdin()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, saved);
        }
    }
}

fn input(kind: run_input::Kind) -> RunInput {
    RunInput { kind: Some(kind) }
}

/// Runs the command; returns the exit code to use.
pub async fn run(a: RunArgs) -> Result<i32> {
    if a.command.is_empty() {
        return Err(CliError::usage("no command to run")
            .hint(format!(
                "put the command after --, e.g. secretctl run -k {} -- CMD ARGS ({} was taken as a key pattern)",
                a.keys.first().map(String::as_str).unwrap_or("KEY"),
                a.keys.last().map(|k| format!("'{k}'")).unwrap_or_else(|| "everything".into())
            ))
            .into());
    }
    let timeout_ms = match &a.timeout {
        Some(t) => secretctl_proto::duration::parse_timeout(t)
            .map_err(|e| CliError::usage(format!("--timeout: {e}")))?
            .as_millis() as u64,
        None => 0,
    };
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::error(format!("cannot read the working directory: {e}")))?;
    let start = RunStart {
        key_patterns: a.keys.clone(),
        env_alias: a.env.clone().unwrap_or_default(),
        env_prefix: a.env_prefix.clone().unwrap_or_default(),
        argv: a.command.clone(),
        cwd: cwd.to_string_lossy().into_owned(),
        env: client_env(),
        timeout_ms,
        pty: a.pty,
        size: window_size(),
        no_redact: a.no_redact,
        proxy: a.proxy,
    };
    let signals = Signals::install()?;
    let (client, _) = connect::connect().await?;
    let (tx, rx) = mpsc::channel::<RunInput>(8);
    tx.send(input(run_input::Kind::Start(start)))
        .await
        .map_err(|_| CliError::error("internal: request stream closed"))?;
    let mut output = client
        .runner()
        .run(ReceiverStream::new(rx))
        .await
        .map_err(|s| client.classify(s))
        .context("cannot start the run")?
        .into_inner();

    let _raw = RawMode::enter(a.pty);
    let forwarder = tokio::spawn(forward_input(tx, a.pty, signals));
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let code = loop {
        let msg = match output.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                break Err(
                    CliError::error("the daemon ended the run without an exit status").into(),
                );
            }
            Err(s) => {
                break Err(anyhow::Error::from(client.classify(s)).context("the run failed"));
            }
        };
        match msg.kind {
            Some(run_output::Kind::Stdout(b)) => {
                stdout.write_all(&b)?;
                stdout.flush()?;
            }
            Some(run_output::Kind::Stderr(b)) => {
                stderr.write_all(&b)?;
                stderr.flush()?;
            }
            Some(run_output::Kind::Exit(e)) => {
                if !e.error.is_empty() {
                    drop(_raw);
                    eprintln!(
                        "secretctl run: {}",
                        secretctl_proto::text::one_line(&e.error, 2000)
                    );
                } else if e.timed_out {
                    drop(_raw);
                    eprintln!(
                        "secretctl run: the command ran longer than --timeout {} and was stopped (exit 124)",
                        a.timeout.as_deref().unwrap_or("?")
                    );
                }
                break Ok(e.code);
            }
            None => {}
        }
    };
    forwarder.abort();
    code
}

/// Sends stdin, signals and window-size changes until the run ends.
/// The signals a run forwards. Installed before the run starts, so a signal
/// that arrives early is forwarded instead of killing the CLI.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    winch: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        let s = |k: SignalKind| {
            signal(k).map_err(|e| CliError::error(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            int: s(SignalKind::interrupt())?,
            term: s(SignalKind::terminate())?,
            hup: s(SignalKind::hangup())?,
            quit: s(SignalKind::quit())?,
            winch: s(SignalKind::window_change())?,
        })
    }
}

async fn forward_input(tx: mpsc::Sender<RunInput>, pty: bool, signals: Signals) {
    let Signals {
        mut int,
        mut term,
        mut hup,
        mut quit,
        mut winch,
    } = signals;
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        let msg = tokio::select! {
            r = stdin.read(&mut buf), if stdin_open => match r {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    input(run_input::Kind::StdinEof(true))
                }
                Ok(n) => input(run_input::Kind::Stdin(buf[..n].to_vec())),
            },
            _ = int.recv() => input(run_input::Kind::Signal(RunSignal::Int as i32)),
            _ = term.recv() => input(run_input::Kind::Signal(RunSignal::Term as i32)),
            _ = hup.recv() => input(run_input::Kind::Signal(RunSignal::Hup as i32)),
            _ = quit.recv() => input(run_input::Kind::Signal(RunSignal::Quit as i32)),
            _ = winch.recv() => match (pty, window_size()) {
                (true, Some(size)) => input(run_input::Kind::Resize(size)),
                _ => continue,
            },
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secretctl_variables_are_not_sent() {
        let vars = [
            ("PATH", "/bin"),
            ("SECRETCTL_PASSWORD", "pw"),
            ("SECRETCTL_HOME", "/h"),
            ("MY_SECRETCTL_NOTE", "kept"),
        ]
        .map(|(k, v)| (k.into(), v.into()));
        let names: Vec<String> = env_for_daemon(vars.into_iter())
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["PATH", "MY_SECRETCTL_NOTE"]);
    }
}
