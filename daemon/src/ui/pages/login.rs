//! Signing in (the login link's token traded for a session cookie) and
//! signing out.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ui::{UiState, guard, layout};

/// `GET /login`: the page whose script reads the token from the fragment.
pub async fn page() -> Response {
    layout::bare_with(
        "Sign in",
        "/assets/login.js",
        html! {
            h1 { "secretctl" }
            p #login-status role="status" { "Signing in…" }
            noscript { p { "Signing in needs JavaScript (it keeps the login token out of every request line)." } }
        },
    )
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /login`: one-time token in, session cookie out.
pub async fn redeem(State(st): State<Arc<UiState>>, Form(f): Form<Login>) -> Response {
    let token = Zeroizing::new(f.token);
    let uid = nix::unistd::geteuid().as_raw();
    let peer = crate::audit::record::Peer {
        pid: None,
        uid,
        exe: None,
    };
    match st.auth.redeem(&token) {
        Ok(Some((id, s))) => {
            let rec = s.conn.event("ui_login", "ui");
            if let Err(e) = st.session.audit.record(rec).await {
                // Unrecorded, no session (fail closed).
                st.auth.end(&id);
                return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
            }
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                st.cookie,
                id.as_str()
            );
            (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
        }
        Ok(None) => {
            let mut rec = crate::audit::event("ui_login", "ui", peer);
            rec.success = false;
            rec.error = Some("the login token is unknown, used or expired".into());
            st.session.audit.record_nowait(rec);
            (
                StatusCode::UNAUTHORIZED,
                "refused: the login token is unknown, used or expired\n",
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `POST /logout`: ends the session, clears the cookie.
pub async fn logout(State(st): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    if let Some(id) = guard::cookie(&headers, &st.cookie) {
        if let Some(s) = st.auth.session(id) {
            st.session
                .audit
                .record_nowait(s.conn.event("ui_logout", "ui"));
        }
        st.auth.end(id);
    }
    let clear = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        st.cookie
    );
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}
