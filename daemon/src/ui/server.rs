//! Starting and stopping the UI server: a 127.0.0.1 listener that serves
//! only connections owned by our uid, the router behind [`guard`], and the
//! stop (asked for, idle, or the daemon stopping).
//!
//! Invariants: the listener binds 127.0.0.1 only; a connection whose owner
//! cannot be established is closed before a byte is read (Linux: fail
//! closed); the server ends within [`STOP_WITHIN`] of being told to stop.
//!
//! [`guard`]: super::guard

use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::{UiError, UiState, auth, guard, pages, peer};
use crate::session::Session;

/// Open connections get this long to finish after a stop.
pub const STOP_WITHIN: Duration = Duration::from_secs(2);

/// Binds 127.0.0.1 (`ui.port`, or any free port) and serves on a task.
pub fn start(
    session: &Arc<Session>,
    generation: u64,
) -> Result<(Arc<UiState>, Arc<Notify>), UiError> {
    let cfg = &session.config.ui;
    let bind_err = |source| UiError::Bind {
        port: cfg.port,
        source,
    };
    let std_listener =
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, cfg.port)).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let uid = nix::unistd::geteuid().as_raw();
    let state = Arc::new(UiState {
        session: session.clone(),
        auth: auth::Auth::new(cfg.session_timeout, uid),
        addr,
        hosts: [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ],
        cookie: format!("secretctl_ui_{}", addr.port()),
        last_request: Mutex::new(Instant::now()),
        idle_timeout: cfg.idle_timeout,
    });
    let stop = Arc::new(Notify::new());
    let router = Router::new()
        .merge(pages::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state.clone());
    let checked = Checked {
        inner: listener,
        state: state.clone(),
        uid,
    };
    tokio::spawn(serve(
        state.clone(),
        checked,
        router,
        stop.clone(),
        generation,
    ));
    tracing::info!(%addr, "web UI started");
    Ok((state, stop))
}

async fn serve(
    state: Arc<UiState>,
    listener: Checked,
    router: Router,
    stop: Arc<Notify>,
    generation: u64,
) {
    let (why_tx, why_rx) = tokio::sync::oneshot::channel::<&'static str>();
    let signal = {
        let state = state.clone();
        async move {
            let why = tokio::select! {
                () = stop.notified() => "stopped",
                () = idle(&state) => "idle",
            };
            let _ = why_tx.send(why);
        }
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<&'static str>();
    let bounded = async move {
        match why_rx.await {
            Ok(why) => {
                let _ = done_tx.send(why);
                tokio::time::sleep(STOP_WITHIN).await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        r = server.into_future() => if let Err(e) = r {
            tracing::error!(error = %e, "the web UI server failed");
        },
        () = bounded => {}
    }
    let why = done_rx.await.unwrap_or("failed");
    state.session.ui.ended(generation);
    if why == "idle" {
        state.session.audit.forget_snapshot();
    }
    tracing::info!(reason = why, "web UI stopped");
    let mut rec = crate::audit::event("ui_stop", "ui", crate::audit::daemon_peer());
    rec.detail = Some(serde_json::json!({ "reason": why }));
    state.session.audit.record_nowait(rec);
}

/// Resolves once `idle_timeout` passed without a request.
async fn idle(state: &UiState) {
    loop {
        let deadline = state.idle_deadline();
        tokio::time::sleep_until(deadline.into()).await;
        if Instant::now() >= state.idle_deadline() {
            return;
        }
    }
}

/// The listener that passes on only connections owned by our uid.
struct Checked {
    inner: TcpListener,
    state: Arc<UiState>,
    uid: u32,
}

impl Checked {
    /// Logs and audits a refused connection (`uid`: its owner, if known;
    /// the record says 4294967295 otherwise).
    fn refuse(&self, peer: SocketAddr, uid: Option<u32>, why: String) {
        tracing::warn!(%peer, reason = %why, "web UI: refused a connection");
        let mut rec = crate::audit::event(
            "ui_connection_refused",
            "ui",
            crate::audit::record::Peer {
                pid: None,
                uid: uid.unwrap_or(u32::MAX),
                exe: None,
            },
        );
        rec.success = false;
        rec.error = Some(why);
        self.state.session.audit.record_nowait(rec);
    }
}

impl axum::serve::Listener for Checked {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "web UI: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match peer::owner(peer, self.state.addr) {
                Ok(uid) if uid == self.uid => return (stream, peer),
                Ok(uid) => self.refuse(
                    peer,
                    Some(uid),
                    format!(
                        "the connecting socket belongs to uid {uid}, not to the daemon's uid {}",
                        self.uid
                    ),
                ),
                Err(e) if cfg!(not(target_os = "linux")) => {
                    // No socket table to look in (docs/ui.md): the login
                    // token and the session cookie are the only defence.
                    tracing::debug!(error = %e, "web UI: peer owner unknown on this system");
                    return (stream, peer);
                }
                Err(e) => self.refuse(
                    peer,
                    None,
                    format!("the owner of the connecting socket is unknown ({e})"),
                ),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
