//! [`RunProxy`]: one run's forward proxy. Owns the 127.0.0.1 listener, the
//! per-run credential, the decision for each proxy request (intercept,
//! tunnel, forward or refuse), the upstream client, and the stop that ends
//! every connection.
//!
//! Invariants:
//! - No request is served without `Proxy-Authorization: Basic` of
//!   `secretctl:<credential>` (compared in constant time): 407 otherwise.
//! - A CONNECT to a host a substitution names is intercepted (never
//!   tunnelled); plain HTTP to such a host is refused (403), so the value
//!   never travels in clear text.
//! - Every task of the proxy (accept loop, connections, tunnels, hyper's
//!   HTTP/2 streams, pooled upstream connections) is spawned through
//!   [`Exec`] and ends when the stop signal is sent; at most
//!   [`MAX_CONNECTIONS`] client connections are open at once.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use zeroize::Zeroizing;

use super::{Auditor, LocalCa, ProxyError, Settings, Substitution, roots};

/// Client connections open at once, per proxy; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 256;
/// Connecting to an upstream (TCP), for tunnels and forwarded requests.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Reading a request's headers from the child.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RunProxy::stop`] waits for every task to have ended.
pub const STOP_WITHIN: Duration = Duration::from_secs(2);

/// The one pooled upstream client of a proxy (HTTPS, and HTTP for plain
/// forwarding to unnamed hosts), ALPN h2 and http/1.1.
pub(super) type Upstream = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Spawns tasks that end when the proxy stops.
#[derive(Clone)]
pub(super) struct Exec {
    stop: watch::Receiver<bool>,
}

impl Exec {
    pub(super) fn spawn<F>(&self, fut: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = fut => {}
                // Err (the sender is gone) also means stop.
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.spawn(fut);
    }
}

/// What the connection tasks of one proxy share.
pub(super) struct Shared {
    pub ca: Arc<LocalCa>,
    pub subs: Vec<Substitution>,
    pub auditor: Arc<dyn Auditor>,
    pub strict: bool,
    /// `secretctl:<credential>`, as a Basic credential decodes to.
    pub auth: Zeroizing<Vec<u8>>,
    pub client: Upstream,
    pub count: Arc<AtomicU64>,
    pub exec: Exec,
}

impl Shared {
    /// Whether any substitution names `host`.
    pub fn named(&self, host: &str) -> bool {
        self.subs
            .iter()
            .any(|s| s.hosts.iter().any(|h| h.matches(host)))
    }
}

/// A run's proxy; serves until [`RunProxy::stop`] or drop. No `Debug`: it
/// holds the proxy credential.
pub struct RunProxy {
    shared: Option<Arc<Shared>>,
    stop: watch::Sender<bool>,
    accept: Option<tokio::task::JoinHandle<()>>,
    count: Arc<AtomicU64>,
    port: u16,
    bundle: PathBuf,
    credential: Zeroizing<String>,
}

impl RunProxy {
    /// Binds 127.0.0.1:0, writes the CA bundle (system roots, extra roots,
    /// the local CA) as a new 0600 file in `bundle_dir` (a daemon-owned 0700
    /// directory), and serves until [`RunProxy::stop`] or drop.
    pub async fn start(
        ca: Arc<LocalCa>,
        settings: &Settings,
        subs: Vec<Substitution>,
        auditor: Arc<dyn Auditor>,
        bundle_dir: &std::path::Path,
    ) -> Result<RunProxy, ProxyError> {
        let roots = roots::load(settings)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Tls(e.to_string()))?
            .with_root_certificates(roots.store)
            .with_no_client_auth();
        let (stop, stop_rx) = watch::channel(false);
        let exec = Exec { stop: stop_rx };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(exec.clone())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ProxyError::Bind)?;
        let port = listener.local_addr().map_err(ProxyError::Bind)?.port();
        let bundle = roots::write_bundle(bundle_dir, &roots.certs, ca.cert_der())?;

        let credential = Zeroizing::new(super::random_alnum(32));
        let mut auth = Zeroizing::new(Vec::with_capacity(10 + credential.len()));
        auth.extend_from_slice(b"secretctl:");
        auth.extend_from_slice(credential.as_bytes());
        let count = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            ca,
            subs,
            auditor,
            strict: settings.strict,
            auth,
            client,
            count: count.clone(),
            exec,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(port, "run proxy started");
        Ok(RunProxy {
            shared: Some(shared),
            stop,
            accept: Some(accept),
            count,
            port,
            bundle,
            credential,
        })
    }

    /// Variables for the child: the proxy (with its credential), no
    /// exceptions to it, and the CA bundle under each name clients read.
    pub fn env(&self) -> Vec<(String, String)> {
        let url = format!(
            "http://secretctl:{}@127.0.0.1:{}",
            self.credential.as_str(),
            self.port
        );
        let bundle = self.bundle.to_string_lossy().into_owned();
        let mut env: Vec<(String, String)> =
            ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]
                .into_iter()
                .map(|k| (k.to_string(), url.clone()))
                .collect();
        env.push(("NO_PROXY".into(), String::new()));
        env.push(("no_proxy".into(), String::new()));
        for k in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "GIT_SSL_CAINFO",
        ] {
            env.push((k.to_string(), bundle.clone()));
        }
        env
    }

    /// Substitutions sent upstream so far (one per request and key).
    pub fn substitutions(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA bundle file handed to the child.
    pub fn bundle_path(&self) -> &std::path::Path {
        &self.bundle
    }

    /// Stops accepting, closes every connection (tunnels too), removes the
    /// bundle file; returns the substitution count.
    pub async fn stop(mut self) -> u64 {
        self.stop.send_replace(true);
        if let Some(accept) = self.accept.take() {
            // The task ends at the signal; its listener is closed with it.
            let _ = accept.await;
        }
        // Our handle holds the client, whose pool holds an Exec: let it go,
        // then wait until every task (each holds an Exec) has ended.
        self.shared.take();
        if tokio::time::timeout(STOP_WITHIN, self.stop.closed())
            .await
            .is_err()
        {
            tracing::warn!("run proxy: some connections had not ended {STOP_WITHIN:?} after stop");
        }
        self.substitutions()
        // Drop removes the bundle.
    }
}

impl Drop for RunProxy {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Err(e) = std::fs::remove_file(&self.bundle)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.bundle.display(), error = %e, "run proxy: CA bundle not removed");
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stop = shared.exec.stop.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors, most likely: back off instead of
                // spinning on the same error.
                tracing::warn!(error = %e, "run proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!("run proxy: {MAX_CONNECTIONS} connections open; closing a new one");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        shared
            .exec
            .spawn(serve_client(tcp, shared.clone(), Arc::new(permit)));
    }
}

/// One connection from the child, speaking HTTP/1.1 to the proxy.
async fn serve_client(tcp: TcpStream, shared: Arc<Shared>, permit: Arc<OwnedSemaphorePermit>) {
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        let permit = permit.clone();
        async move { Ok::<_, Infallible>(super::route::handle(req, shared, permit).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), svc)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "run proxy: client connection ended");
    }
}
