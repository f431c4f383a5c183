//! The Security page: the score and findings of `secretctl security` /
//! MCP `security_score` (the same engine, `crate::security`): weak,
//! duplicated, expired and expiring secrets, by key and field name only.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use secretctl_proto::v1::SecurityRequest;
use secretctl_proto::v1::transfer_server::Transfer;
use serde::Deserialize;

use super::{encode, state_word};
use crate::service::transfer::TransferService;
use crate::ui::call::{self, Signed};
use crate::ui::{UiState, layout};

#[derive(Deserialize)]
pub struct Days {
    #[serde(default = "thirty")]
    days: u32,
}

fn thirty() -> u32 {
    30
}

/// `GET /security[?days=N]`.
pub async fn page(State(st): State<Arc<UiState>>, s: Signed, Query(d): Query<Days>) -> Response {
    let state = state_word(&st.session);
    let svc = TransferService::new(st.session.clone());
    let r = call::answer(
        svc.security(call::request(&s, SecurityRequest { days: d.days }))
            .await,
    );
    let body = html! {
        h1 { "Security" }
        form.filters method="get" action="/security" {
            div { label for="days" { "Expiring within (days)" } input #days type="number" name="days" value=(d.days) min="0" max="36500"; }
            button type="submit" { "Update" }
        }
        @match &r {
            Err(e) => { div.card.flash.error { (e) } }
            Ok(r) => {
                div.grid {
                    div.card.stat { div.score #score { (r.score) } div.l { "score out of 100" } }
                    div.card.stat { div.n { (r.secret_count) } div.l { "secrets judged" } }
                    div.card.stat { div.n { (r.issues.len()) } div.l { "findings" } }
                }
                @for kind in ["weak", "duplicate", "expired", "expiring"] {
                    @let found: Vec<_> = r.issues.iter().filter(|i| i.kind == kind).collect();
                    h2 { (kind) " (" (found.len()) ")" }
                    @if found.is_empty() { p.muted { "none" } }
                    @for i in found {
                        div.card {
                            p { (i.message) }
                            p { @for k in &i.keys { a.tag.mono href={"/secrets/view?key=" (encode(k))} { (k) } " " } }
                            @if !i.fields.is_empty() {
                                p.muted.mono { @for f in &i.fields { (f.key) " (" (f.field) ") " } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&s, "/security", "Security", state, body)
}
