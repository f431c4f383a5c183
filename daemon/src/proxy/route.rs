//! The decision for each request the child sends to the proxy itself:
//! authenticate, then intercept a CONNECT to a named host, tunnel or refuse
//! (strict) one to any other host, and refuse or forward plain HTTP.
//!
//! Invariants: nothing is done for a request without the run's proxy
//! credential; a named host is never tunnelled and never reached in plain
//! HTTP.

use std::sync::Arc;

use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use subtle::ConstantTimeEq;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use zeroize::Zeroizing;

use super::intercept;
use super::server::{CONNECT_TIMEOUT, Shared};
use super::wire::{Body, describe, empty, strip_hop_by_hop, text};

pub(super) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    if !authorized(req.headers(), &shared.auth) {
        let mut resp = text(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "secretctl proxy: proxy credentials missing or wrong; use the HTTPS_PROXY this run was given\n",
        );
        resp.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"secretctl\""),
        );
        return resp;
    }
    if req.method() == Method::CONNECT {
        return connect(req, shared, permit).await;
    }
    forward_plain(req, &shared).await
}

/// `CONNECT host:port`: intercepted when a substitution names `host`,
/// refused when strict, tunnelled byte for byte otherwise.
async fn connect(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "secretctl proxy: CONNECT needs host:port\n",
        );
    };
    let host = authority.host().to_string();
    let port = authority.port_u16().unwrap_or(443);
    if shared.named(&host) {
        let leaf = match shared.ca.leaf(&host) {
            Ok(leaf) => leaf,
            Err(e) => return text(StatusCode::BAD_GATEWAY, &format!("secretctl proxy: {e}\n")),
        };
        let upgrade = hyper::upgrade::on(&mut req);
        let exec = shared.exec.clone();
        exec.spawn(async move {
            match upgrade.await {
                Ok(up) => intercept::serve(up, authority, leaf, shared, permit).await,
                Err(e) => tracing::debug!(error = %e, "run proxy: CONNECT upgrade failed"),
            }
        });
        return empty(StatusCode::OK);
    }
    if shared.strict {
        return text(
            StatusCode::FORBIDDEN,
            &format!(
                "secretctl proxy: {host} is not named by any proxied secret and proxy.strict is on\n"
            ),
        );
    }
    let upstream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("secretctl proxy: could not connect to {host}:{port}: {e}\n"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("secretctl proxy: connecting to {host}:{port} timed out\n"),
            );
        }
    };
    let upgrade = hyper::upgrade::on(&mut req);
    shared.exec.spawn(async move {
        let _permit = permit;
        let mut upstream = upstream;
        if let Ok(up) = upgrade.await {
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(up), &mut upstream).await;
        }
    });
    empty(StatusCode::OK)
}

/// Plain HTTP (absolute-form): refused to a named host or when strict,
/// otherwise forwarded untouched (less hop-by-hop headers).
async fn forward_plain(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let Some(host) = req.uri().host().map(str::to_string) else {
        return text(
            StatusCode::BAD_REQUEST,
            "secretctl proxy: this is a forward proxy; send absolute-form requests or CONNECT\n",
        );
    };
    if shared.named(&host) {
        return text(
            StatusCode::FORBIDDEN,
            &format!(
                "secretctl proxy: plain HTTP to {host} is refused: use https:// (a proxied secret's placeholder is never sent in clear text)\n"
            ),
        );
    }
    if shared.strict {
        return text(
            StatusCode::FORBIDDEN,
            &format!(
                "secretctl proxy: {host} is not named by any proxied secret and proxy.strict is on\n"
            ),
        );
    }
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    match shared
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Either::Left(body))
        }
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            &format!("secretctl proxy: {host}: {}\n", describe(&e)),
        ),
    }
}

/// Whether the Basic `Proxy-Authorization` decodes to `expected`.
fn authorized(headers: &HeaderMap, expected: &[u8]) -> bool {
    let Some(value) = headers.get(header::PROXY_AUTHORIZATION) else {
        return false;
    };
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.trim().split_once(' ')) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    match base64::engine::general_purpose::STANDARD.decode(token.trim()) {
        Ok(decoded) => bool::from(Zeroizing::new(decoded).as_slice().ct_eq(expected)),
        Err(_) => false,
    }
}
