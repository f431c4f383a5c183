//! Helpers both HTTP sides of the proxy share: the response body type,
//! hop-by-hop header removal, plain-text answers, and upstream errors in
//! words.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// What every response of the proxy carries as a body: the upstream's,
/// streamed, or a short text of the proxy's own.
pub(super) type Body = Either<Incoming, Full<Bytes>>;

/// Removes hop-by-hop headers (RFC 9110 §7.6.1, and those `Connection`
/// names) and the proxy credential; `TE: trailers` is end-to-end in HTTP/2
/// (gRPC needs it) and kept.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let te_trailers = headers
        .get(header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// An upstream failure in words, without anything of the request.
pub(super) fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut chain = Vec::new();
    while let Some(s) = source {
        if let Some(tls) = find_tls(s) {
            return format!("TLS with the upstream failed ({tls})");
        }
        chain.push(s.to_string());
        source = s.source();
    }
    if chain.is_empty() {
        e.to_string()
    } else {
        chain.join(": ")
    }
}

/// The rustls error behind `e`: tokio-rustls hands a handshake failure over
/// as an io::Error wrapping it, and hyper-rustls may wrap that once more.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    find_tls(inner)
}

pub(super) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(super) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
    *resp.status_mut() = status;
    resp
}
