//! The UI's routes: one module per page, each a handful of handlers that
//! call the daemon's services (`ui::call`) and render with maud.
//!
//! GET handlers only read; everything that changes state is a POST, which
//! the guard has checked (Origin, session, CSRF) before it gets here.

pub mod agents;
pub mod audit;
pub mod login;
pub mod policy;
pub mod secret_form;
pub mod secrets;
pub mod security;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::UiState;

/// Every route of the UI.
pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .route("/login", get(login::page).post(login::redeem))
        .route("/logout", post(login::logout))
        .route("/assets/{name}", get(super::assets::asset))
        .route("/", get(session::page))
        .route("/lock", post(session::lock))
        .route("/unlock", post(session::unlock))
        .route(super::guard::SESSION_LEFT, get(session::left))
        .route("/secrets", get(secrets::list))
        .route("/secrets/view", get(secrets::view))
        .route("/secrets/new", get(secrets::new))
        .route("/secrets/edit", get(secrets::edit))
        .route("/secrets/save", post(secrets::save))
        .route("/secrets/delete", post(secrets::delete))
        .route("/secrets/reveal", post(secrets::reveal))
        .route("/generate", post(secrets::generate))
        .route("/audit", get(audit::page))
        .route("/audit/export", get(audit::export))
        .route("/audit/verify", post(audit::verify))
        .route("/agents", get(agents::page))
        .route("/policy", get(policy::page))
        .route("/security", get(security::page))
}

/// After an action: back to `path` with a message (key names only).
pub fn done(path: &str, message: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={}", encode(message))).into_response()
}

/// A JSON answer that no cache keeps.
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A JSON answer from text already serialised (a revealed or generated
/// value: the caller wipes its copy).
pub fn json_text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The vault state in words, for the header.
pub fn state_word(session: &crate::session::Session) -> &'static str {
    match session.state() {
        secretctl_proto::v1::VaultState::Unlocked => "unlocked",
        secretctl_proto::v1::VaultState::Locked => "locked",
        _ => "uninitialized",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            super::encode("saved 'a/b'&x=1"),
            "saved%20%27a/b%27%26x%3D1"
        );
    }
}
