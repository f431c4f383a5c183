//! The checks every request to the UI passes, in one place, before any
//! handler runs; and the security headers every answer carries.
//!
//! 1. **Host** must be exactly `127.0.0.1:PORT` or `localhost:PORT`: a page
//!    on another site that rebinds its DNS name to 127.0.0.1 still sends
//!    its own name, and is refused (DNS rebinding).
//! 2. A request that can change anything (any method but GET and HEAD)
//!    needs an **Origin** equal to `http://` + its Host: a form or script
//!    on another site is refused before anything else is looked at.
//! 3. Everything but the login page and the assets needs a live
//!    **session** (the cookie).
//! 4. A state-changing request must carry the session's **CSRF token**
//!    (`X-CSRF-Token` header or a `csrf` form field).
//!
//! GET handlers never change anything, so 2 and 4 cover every change.
//! Refusals are logged (not audited: a hostile page could send them by the
//! thousand); they never reach a handler.
//!
//! The body of a change is read here once (for the CSRF field) and handed
//! on as a [`RawBody`], wiped when dropped; the HTTP body left is empty.
//! [`SESSION_LEFT`] looks at the session without resetting its idle clock
//! (every other request resets it), so a page or a test can watch it end.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::UiState;
use super::auth::UiSession;
use super::form::RawBody;

/// `GET` here answers how long the session has left, and does not count
/// as activity (the one request that does not).
pub const SESSION_LEFT: &str = "/session/left";

/// Largest request body (forms: a secret's fields, a password).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The Content-Security-Policy of every answer: only this server's own
/// scripts, styles and images; no inline script, no frames, forms only to
/// us, nothing fetched from anywhere else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether a path is served without a session.
fn public(method: &Method, path: &str) -> bool {
    path == "/login"
        || (method == Method::GET && (path.starts_with("/assets/") || path == "/favicon.ico"))
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The `csrf` field of a form body (hex, so never percent-encoded).
fn form_csrf(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("csrf="))
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    tracing::warn!(
        status = status.as_u16(),
        reason = why,
        "web UI: refused a request"
    );
    (status, format!("refused: {why}\n")).into_response()
}

/// Not signed in: a page explains how to get a login link.
fn signed_out(changes: bool) -> Response {
    if changes {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "not signed in (or the session expired)",
        );
    }
    let page = super::layout::bare(
        "Signed out",
        maud::html! {
            h1 { "Signed out" }
            p { "This browser has no session (or it expired). Run " code { "secretctl ui" } " for a new login link." }
        },
    );
    (StatusCode::UNAUTHORIZED, page).into_response()
}

/// The middleware: checks, then the handler, then the headers.
pub async fn guard(State(st): State<Arc<UiState>>, req: Request, next: Next) -> Response {
    let mut resp = check(&st, req, next).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

async fn check(st: &UiState, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !st.hosts.contains(&host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "the Host header is not this UI's (127.0.0.1:PORT or localhost:PORT)",
        );
    }
    if req.uri().authority().is_some_and(|a| a.as_str() != host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "the request names another host",
        );
    }
    st.touch();
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changes {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if origin != Some(format!("http://{host}").as_str()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "a change must come from this UI's own pages (foreign or missing Origin)",
            );
        }
    }
    if public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let peek = req.method() == Method::GET && req.uri().path() == SESSION_LEFT;
    let found = cookie(req.headers(), &st.cookie).and_then(|id| {
        if peek {
            st.auth.peek(id)
        } else {
            st.auth.session(id)
        }
    });
    let Some(session) = found else {
        return signed_out(changes);
    };
    let mut req = if changes {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            );
        };
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| form_csrf(&bytes))
            .unwrap_or("");
        if !session.csrf_ok(given) {
            return refuse(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
        let mut req = Request::from_parts(parts, Body::empty());
        req.extensions_mut().insert(RawBody::take(bytes));
        req
    } else {
        req
    };
    req.extensions_mut().insert::<Arc<UiSession>>(session);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_form_fields_are_found_exactly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; secretctl_ui_9=abc; b=2"),
        );
        assert_eq!(cookie(&h, "secretctl_ui_9"), Some("abc"));
        assert_eq!(cookie(&h, "secretctl_ui"), None);
        assert_eq!(form_csrf(b"key=a&csrf=00ff&x=1"), Some("00ff"));
        assert_eq!(form_csrf(b"xcsrf=1"), None);
    }

    #[test]
    fn only_login_and_assets_are_public() {
        assert!(public(&Method::GET, "/login"));
        assert!(public(&Method::POST, "/login"));
        assert!(public(&Method::GET, "/assets/app.css"));
        assert!(!public(&Method::POST, "/assets/app.css"));
        assert!(!public(&Method::GET, "/"));
        assert!(!public(&Method::GET, "/secrets"));
    }
}
