//! The local web UI (contract §11): served by the daemon on 127.0.0.1 only
//! when a user caller runs `secretctl ui`, stopped after `ui.idle_timeout`
//! without a request and when the daemon stops.
//!
//! | module | role |
//! |---|---|
//! | `server` | the listener (peer uid checked at accept), the router, the idle stop |
//! | `peer` | who owns a TCP connection (`/proc/net/tcp{,6}`) |
//! | `auth` | one-time login tokens, sessions, CSRF tokens |
//! | `guard` | every request: Host, Origin, session, CSRF; security headers |
//! | `call` | calling the daemon's own services as the signed-in user |
//! | `form` | request bodies in wiped buffers, parsed without plain copies |
//! | `pages/*` | one module per page; `layout` frames them |
//! | `assets`, `chart` | embedded CSS/JS; SVG bar charts drawn on the server |
//!
//! Invariants:
//! - Nothing of the UI exists until it is asked for: no task, no socket,
//!   no memory beyond an empty slot in the session.
//! - Every action goes through the same services as the CLI (same caller
//!   rule, same validation, same audit records, marked `source: "ui"`).
//! - No secret value is ever written into a page; the one value a user
//!   asks to reveal goes out in a `no-store` answer to that request only.

pub mod assets;
pub mod auth;
pub mod call;
pub mod chart;
pub mod form;
pub mod guard;
pub mod layout;
pub mod pages;
pub mod peer;
pub mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::session::Session;

/// What one running UI server shares with its handlers.
pub struct UiState {
    pub session: Arc<Session>,
    pub auth: auth::Auth,
    /// The listening address (127.0.0.1:PORT).
    pub addr: SocketAddr,
    /// The two Host values we answer to: `127.0.0.1:PORT`, `localhost:PORT`.
    pub hosts: [String; 2],
    /// The session cookie's name (per port: cookies ignore ports).
    pub cookie: String,
    /// The last request that passed the Host check.
    last_request: Mutex<Instant>,
    pub idle_timeout: Duration,
}

impl UiState {
    pub fn touch(&self) {
        *self.last_request.lock().expect("never poisoned") = Instant::now();
    }

    /// When the server stops unless a request comes first.
    pub fn idle_deadline(&self) -> Instant {
        *self.last_request.lock().expect("never poisoned") + self.idle_timeout
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.hosts[0])
    }
}

struct Running {
    state: Arc<UiState>,
    stop: Arc<tokio::sync::Notify>,
    generation: u64,
}

/// The UI slot in the daemon's session: empty until `secretctl ui`.
#[derive(Default)]
pub struct Ui {
    running: Mutex<Option<Running>>,
    generations: std::sync::atomic::AtomicU64,
}

/// Why the UI could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source} (set ui.port in config.yaml to a free port, or 0 for any)"
    )]
    Bind { port: u16, source: std::io::Error },
    #[error("the OS random source failed: {0}")]
    Random(String),
}

/// What `secretctl ui` is told.
pub struct Opened {
    pub base_url: String,
    pub token: Zeroizing<String>,
    pub started: bool,
}

impl Ui {
    /// Starts the server unless it runs, and mints a login token for it.
    pub fn open(&self, session: &Arc<Session>) -> Result<Opened, UiError> {
        let mut slot = self.running.lock().expect("never poisoned");
        let started = slot.is_none();
        if slot.is_none() {
            let generation = self
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (state, stop) = server::start(session, generation)?;
            *slot = Some(Running {
                state,
                stop,
                generation,
            });
        }
        let running = slot.as_ref().expect("just filled");
        running.state.touch();
        let token = running
            .state
            .auth
            .mint()
            .map_err(|e| UiError::Random(e.to_string()))?;
        Ok(Opened {
            base_url: running.state.base_url(),
            token,
            started,
        })
    }

    /// Stops the server (if any); its sessions end with it.
    pub fn stop(&self) {
        if let Some(r) = self.running.lock().expect("never poisoned").take() {
            r.stop.notify_one();
            r.state.session.audit.forget_snapshot();
        }
    }

    /// The server of `generation` ended by itself (idle): frees its slot,
    /// unless a newer server took it.
    fn ended(&self, generation: u64) {
        let mut slot = self.running.lock().expect("never poisoned");
        if slot.as_ref().is_some_and(|r| r.generation == generation) {
            *slot = None;
        }
    }

    /// The running server's address, if any.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.running
            .lock()
            .expect("never poisoned")
            .as_ref()
            .map(|r| r.state.addr)
    }
}
