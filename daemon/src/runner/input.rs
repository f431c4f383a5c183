//! The client's side of a CLI run: stdin, signals and window sizes,
//! forwarded to the child while it runs.

use nix::sys::signal::Signal;
use secretctl_proto::v1::{RunInput, RunSignal, run_input};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tonic::Streaming;

use super::drive::Control;
use super::spawn;

pub(super) type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Forwards the client's stdin, signals and window sizes to the child.
pub(super) async fn pump(
    mut input: Streaming<RunInput>,
    mut stdin: Option<Writer>,
    control: Control,
    master: Option<std::os::fd::OwnedFd>,
) {
    let pty = master.is_some();
    loop {
        let msg = match input.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => {
                // The client vanished mid-run.
                control.signal(Signal::SIGHUP);
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
                control.signal(sig);
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
