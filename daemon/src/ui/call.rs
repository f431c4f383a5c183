//! Calling the daemon's own services as the signed-in user. The UI has no
//! vault code of its own: every page and action is one of the services the
//! CLI calls, with the session's connection in the request, so the caller
//! rule, the validation and the audit record (`source: "ui"`) are theirs.

use std::sync::Arc;

use tonic::Status;

use super::auth::UiSession;
use crate::caller::conn::ConnInfo;

/// A request on behalf of the session's user.
pub fn request<T>(s: &UiSession, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.extensions_mut().insert(ConnInfo(s.conn.clone(), None));
    r
}

/// A service answer, unwrapped; the error is the status message (which
/// names keys and rules, never values).
pub fn answer<T>(r: Result<tonic::Response<T>, Status>) -> Result<T, String> {
    r.map(tonic::Response::into_inner)
        .map_err(|s| s.message().to_string())
}

/// The session (inserted by the guard) in a handler's extractor list.
pub type Signed = axum::Extension<Arc<UiSession>>;
