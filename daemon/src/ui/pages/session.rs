//! The Session page: the vault's state and idle deadline, lock now, unlock
//! with the master password; the UI's own timeouts; sign out.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use secretctl_proto::v1::daemon_server::Daemon;
use secretctl_proto::v1::{LockRequest, StatusRequest, UnlockRequest};
use serde::Deserialize;

use super::{done, json, state_word};
use crate::service::daemon::DaemonService;
use crate::ui::call::{self, Signed};
use crate::ui::form::Fields;
use crate::ui::{UiState, layout};

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

/// `GET /`.
pub async fn page(State(st): State<Arc<UiState>>, s: Signed, Query(q): Query<Done>) -> Response {
    render(&st, &s, q.done.as_deref(), None).await
}

async fn render(st: &UiState, s: &Signed, done: Option<&str>, error: Option<&str>) -> Response {
    let svc = DaemonService::new(st.session.clone());
    let status = call::answer(
        svc.status(call::request(s, StatusRequest { detail: true }))
            .await,
    );
    let state = state_word(&st.session);
    let secs = |d: std::time::Duration| secretctl_proto::duration::format(d);
    let body = html! {
        h1 { "Session" }
        (layout::flash(done, false))
        (layout::flash(error, true))
        @match &status {
            Err(e) => { div.card.flash.error { (e) } }
            Ok(st_) => {
                div.grid {
                    div.card.stat { div.n #vault-state { (state) } div.l { "vault" } }
                    div.card.stat { div.n { (st_.secret_count) } div.l { "secrets" } }
                    div.card.stat {
                        div.n { @if st_.idle_lock_deadline_unix_ms > 0 { (layout::date_time(st_.idle_lock_deadline_unix_ms / 1000)) } @else { "—" } }
                        div.l { "locks when idle (UTC)" @if st_.idle_timeout_secs > 0 { ", after " (secs(std::time::Duration::from_secs(st_.idle_timeout_secs))) " without use" } }
                    }
                    div.card.stat { div.n { "v" (st_.version) } div.l { "daemon pid " (st_.pid) } }
                }
                div.card {
                    @if state == "unlocked" {
                        form.inline method="post" action="/lock" {
                            (layout::csrf_field(s))
                            button.primary #lock type="submit" { "Lock now" }
                        }
                        " " span.muted { "The key is zeroized at once; open pages keep working read-only until you unlock." }
                    } @else if state == "locked" {
                        form method="post" action="/unlock" {
                            (layout::csrf_field(s))
                            div.field {
                                label for="password" { "Master password" }
                                input #password type="password" name="password" autocomplete="current-password" required autofocus;
                            }
                            div.field {
                                label for="timeout" { "Lock after this long without use (empty: the default)" }
                                input #timeout type="text" name="timeout" placeholder="e.g. 8h" inputmode="text";
                            }
                            button.primary #unlock type="submit" { "Unlock" }
                        }
                    } @else {
                        p { "No vault yet: run " (layout::code("secretctl init")) " in a terminal." }
                    }
                }
                h2 { "Daemon" }
                table {
                    tr { th { "vault" } td.mono { (st_.vault_path) } }
                    tr { th { "socket" } td.mono { (st_.socket_path) } }
                    tr { th { "policy file" } td { (st_.policy_state) } }
                    tr { th { "config file" } td { (st_.config_state) } }
                }
            }
        }
        h2 { "This UI" }
        p.muted {
            "Served on " (layout::code(&st.base_url())) " to your uid only. It stops after "
            (secs(st.idle_timeout)) " without a request; a browser session ends after "
            (secs(st.auth.session_timeout())) " idle. Press " kbd { "/" } " to search on any page."
        }
        form.inline method="post" action="/logout" {
            (layout::csrf_field(s))
            button type="submit" { "Sign out" }
        }
    };
    layout::page(s, "/", "Session", state, body)
}

/// `POST /lock`.
pub async fn lock(State(st): State<Arc<UiState>>, s: Signed) -> Response {
    let svc = DaemonService::new(st.session.clone());
    match call::answer(svc.lock(call::request(&s, LockRequest {})).await) {
        Ok(_) => done("/", "locked"),
        Err(e) => render(&st, &s, None, Some(&e)).await,
    }
}

/// `GET /session/left`: how long this browser session has left if it
/// stays idle, in milliseconds. The guard looks the session up without
/// resetting its idle clock here, so asking does not keep it alive.
pub async fn left(State(st): State<Arc<UiState>>, s: Signed) -> Response {
    let left = s.idle_left(st.auth.session_timeout());
    json(
        StatusCode::OK,
        &serde_json::json!({ "idle_left_ms": left.as_millis() as u64 }),
    )
}

/// `POST /unlock`: the password goes from the wiped form buffer into the
/// request (which wipes itself), never through a plain `String`.
pub async fn unlock(State(st): State<Arc<UiState>>, s: Signed, f: Fields) -> Response {
    let timeout_secs = match f.text("timeout").trim() {
        "" => 0,
        t => match secretctl_proto::duration::parse(t) {
            Ok(d) => d.as_secs().max(1),
            Err(e) => return render(&st, &s, None, Some(&e.to_string())).await,
        },
    };
    let svc = DaemonService::new(st.session.clone());
    let req = UnlockRequest {
        password: f.text("password").as_bytes().to_vec(),
        timeout_secs,
    };
    drop(f);
    match call::answer(svc.unlock(call::request(&s, req)).await) {
        Ok(_) => done("/", "unlocked"),
        Err(e) => render(&st, &s, None, Some(&e)).await,
    }
}
