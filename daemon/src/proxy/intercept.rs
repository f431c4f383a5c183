//! The inside of an intercepted CONNECT: TLS towards the child with a leaf
//! for the CONNECT target, HTTP/1.1 or HTTP/2 on top, and for each request
//! the authority check, the substitution, the audit, and the forwarding.
//!
//! Invariants:
//! - The substitutions applied are those naming the CONNECT target, fixed
//!   when the tunnel opened; a request whose Host/`:authority` is another
//!   host (or port) is answered 421 and never forwarded.
//! - The upstream is the CONNECT target itself, over TLS verified against
//!   the proxy's roots; the request is sent only after every substituted
//!   key was audited.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version, header};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use super::server::{HEADER_TIMEOUT, Shared};
use super::wire::{Body, describe, strip_hop_by_hop, text};
use super::{Event, Substitution, substitute};

/// The TLS handshake with the child.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One intercepted tunnel.
struct Tunnel {
    /// The CONNECT target, `host:port` as the child sent it.
    authority: Authority,
    host: String,
    port: u16,
    /// Indices into `shared.subs` of those naming `host`.
    subs: Vec<usize>,
    shared: Arc<Shared>,
}

/// Serves the child's TLS inside the upgraded CONNECT until it closes.
pub(super) async fn serve<P: Send + Sync + 'static>(
    upgraded: Upgraded,
    authority: Authority,
    leaf: Arc<CertifiedKey>,
    shared: Arc<Shared>,
    permit: Arc<P>,
) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "run proxy: TLS server setup failed");
            return;
        }
    };
    let mut config = config
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(leaf)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(TokioIo::new(upgraded)))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // Typically the child does not trust the local CA: say so once
            // per connection, at debug (the child reports it too).
            tracing::debug!(host = authority.host(), error = %e, "run proxy: TLS with the child failed");
            return;
        }
        Err(_) => return,
    };
    let host = authority.host().to_ascii_lowercase();
    let tunnel = Arc::new(Tunnel {
        port: authority.port_u16().unwrap_or(443),
        subs: shared
            .subs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.hosts.iter().any(|h| h.matches(&host)))
            .map(|(i, _)| i)
            .collect(),
        host,
        authority,
        shared: shared.clone(),
    });
    let svc = service_fn(move |req| {
        let tunnel = tunnel.clone();
        let _permit = permit.clone();
        async move { Ok::<_, Infallible>(tunnel.handle(req).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(shared.exec.clone());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), svc).await {
        tracing::debug!(error = %e, "run proxy: intercepted connection ended");
    }
}

impl Tunnel {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if !self.same_authority(&req) {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "secretctl proxy: this connection is for {}; open a new one for another host\n",
                    self.authority
                ),
            );
        }
        if req.method() == http::Method::CONNECT {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "secretctl proxy: CONNECT inside an intercepted connection is not supported\n",
            );
        }
        let (mut parts, body) = req.into_parts();
        let method = parts.method.to_string();
        let path = parts.uri.path().to_string();
        strip_hop_by_hop(&mut parts.headers);
        // The upstream client sets Host/:authority from the URI below.
        parts.headers.remove(header::HOST);
        let subs: Vec<&Substitution> = self.subs.iter().map(|&i| &self.shared.subs[i]).collect();
        let used = match substitute::apply(&mut parts, &subs) {
            Ok(used) => used,
            Err(refusal) => return text(StatusCode::BAD_REQUEST, &refusal.message()),
        };
        if !used.is_empty() {
            let keys: Vec<String> = used.iter().map(|&i| subs[i].key.clone()).collect();
            if let Err(reason) = self.audit(keys, method, path).await {
                return text(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "secretctl proxy: the request was not sent: its audit record could not be written ({reason})\n"
                    ),
                );
            }
        }
        let mut uri = Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.authority.clone());
        if let Some(pq) = parts.uri.path_and_query() {
            uri = uri.path_and_query(pq.clone());
        }
        parts.uri = match uri.build() {
            Ok(uri) => uri,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "secretctl proxy: bad request URI\n",
                );
            }
        };
        // ALPN with the upstream decides HTTP/2 or HTTP/1.1.
        parts.version = Version::HTTP_11;
        match self
            .shared
            .client
            .request(Request::from_parts(parts, body))
            .await
        {
            Ok(resp) => {
                if !used.is_empty() {
                    self.shared
                        .count
                        .fetch_add(used.len() as u64, Ordering::Relaxed);
                }
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Either::Left(body))
            }
            Err(e) => {
                let sent = if e.is_connect() {
                    "; nothing was sent"
                } else {
                    ""
                };
                text(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "secretctl proxy: {}: {}{sent}\n",
                        self.authority,
                        describe(&e)
                    ),
                )
            }
        }
    }

    /// Host (HTTP/1.1) and the URI authority (HTTP/2 `:authority`, or an
    /// absolute-form target), whichever are present, must both name the
    /// CONNECT target (port optional); at least one must be present.
    fn same_authority(&self, req: &Request<Incoming>) -> bool {
        let ours = |a: &Authority| {
            a.host()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(self.host.trim_end_matches('.'))
                && a.port_u16().is_none_or(|p| p == self.port)
        };
        let from_uri = req.uri().authority();
        let from_host = match req.headers().get(header::HOST) {
            Some(v) => match v.to_str().ok().and_then(|s| s.parse::<Authority>().ok()) {
                Some(a) => Some(a),
                None => return false,
            },
            None => None,
        };
        (from_uri.is_some() || from_host.is_some())
            && from_uri.is_none_or(ours)
            && from_host.as_ref().is_none_or(ours)
    }

    /// One audit record per key, on a blocking thread (the auditor may wait
    /// for the record to be durable).
    async fn audit(&self, keys: Vec<String>, method: String, path: String) -> Result<(), String> {
        let auditor = self.shared.auditor.clone();
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || {
            for key in &keys {
                auditor.substituted(&Event {
                    key,
                    host: &host,
                    method: &method,
                    path: &path,
                })?;
            }
            Ok(())
        })
        .await
        .map_err(|_| "the auditor failed".to_string())?
    }
}
