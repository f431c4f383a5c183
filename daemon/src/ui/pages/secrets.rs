//! The Secrets page: search and filter the list, one secret's metadata and
//! fields (sensitive values masked), reveal one value on request, delete.
//! Adding and editing are in `secret_form`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use secretctl_proto::v1::vault_server::Vault as VaultRpc;
use secretctl_proto::v1::{DeleteRequest, GetRequest, ListRequest, MetadataRequest, SecretMeta};
use serde::Deserialize;
use zeroize::Zeroizing;

pub use super::secret_form::{edit, generate, new, save};
use super::{done, encode, json, state_word};
use crate::service::vault::VaultService;
use crate::ui::call::{self, Signed};
use crate::ui::form::Fields;
use crate::ui::{UiState, layout};

/// Rows per page of the list.
const PER_PAGE: usize = 100;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    prefix: String,
    /// Days: only secrets expiring within (expired included).
    #[serde(default)]
    expiring: String,
    #[serde(default)]
    page: usize,
    done: Option<String>,
}

/// `GET /secrets`.
pub async fn list(State(st): State<Arc<UiState>>, s: Signed, Query(f): Query<Filter>) -> Response {
    let state = state_word(&st.session);
    let expiring_within_secs = match f.expiring.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(days) => Some(i64::from(days) * 86400),
            Err(_) => return bad(&s, state, "expiring: give a number of days"),
        },
    };
    let svc = VaultService::new(st.session.clone());
    let req = ListRequest {
        tag: f.tag.trim().to_string(),
        prefix: f.prefix.trim().to_string(),
        expiring_within_secs,
    };
    let listed = call::answer(svc.list(call::request(&s, req)).await);
    let needle = f.q.trim().to_lowercase();
    let now = crate::vault::now_secs();
    let body = html! {
        h1 { "Secrets" }
        (layout::flash(f.done.as_deref(), false))
        form.filters method="get" action="/secrets" role="search" {
            div { label for="q" { "Search keys and tags " kbd { "/" } } input #q data-search type="search" name="q" value=(f.q) placeholder="aws/"; }
            div { label for="tag" { "Tag" } input #tag type="text" name="tag" value=(f.tag) size="10"; }
            div { label for="prefix" { "Prefix" } input #prefix type="text" name="prefix" value=(f.prefix) size="10"; }
            div { label for="expiring" { "Expiring within (days)" } input #expiring type="text" name="expiring" value=(f.expiring) size="4" inputmode="numeric"; }
            button type="submit" { "Filter" }
            a.button.primary href="/secrets/new" { "Add secret" }
        }
        @match &listed {
            Err(e) => { div.card.flash.error { (e) } }
            Ok(r) => {
                @let shown: Vec<&SecretMeta> = r.secrets.iter().filter(|m| needle.is_empty() || m.key.to_lowercase().contains(&needle) || m.tags.iter().any(|t| t.to_lowercase().contains(&needle))).collect();
                @let start = f.page.saturating_mul(PER_PAGE).min(shown.len());
                @let end = (start + PER_PAGE).min(shown.len());
                p.muted #count { (shown.len()) " of " (r.secrets.len()) " secrets" }
                table #secrets {
                    thead { tr { th { "key" } th { "fields" } th { "tags" } th { "expires" } th { "updated (UTC)" } } }
                    tbody {
                        @for m in &shown[start..end] {
                            tr {
                                td.key { a href={"/secrets/view?key=" (encode(&m.key))} { (m.key) } }
                                td { (m.fields.len()) }
                                td { @for t in &m.tags { span.tag { (t) } } }
                                td { (expiry(m.expires_at, now)) }
                                td.muted { (layout::date_time(m.updated_at)) }
                            }
                        }
                    }
                }
                @if shown.len() > PER_PAGE {
                    div.pager {
                        @if f.page > 0 { a href={"/secrets?" (query(&f, f.page - 1))} { "← newer page" } }
                        span.muted { "rows " (start + 1) "–" (end) }
                        @if end < shown.len() { a href={"/secrets?" (query(&f, f.page + 1))} { "next page →" } }
                    }
                }
            }
        }
    };
    layout::page(&s, "/secrets", "Secrets", state, body)
}

fn query(f: &Filter, page: usize) -> String {
    format!(
        "q={}&tag={}&prefix={}&expiring={}&page={page}",
        encode(&f.q),
        encode(&f.tag),
        encode(&f.prefix),
        encode(&f.expiring)
    )
}

/// An expiry in words: a date, "expired", or "—".
pub fn expiry(at: Option<i64>, now: i64) -> maud::Markup {
    html! {
        @match at {
            None => span.muted { "—" },
            Some(t) if t <= now => span.bad { "expired " (layout::date_time(t)) },
            Some(t) if t - now < 7 * 86400 => span.warn { (layout::date_time(t)) },
            Some(t) => span { (layout::date_time(t)) },
        }
    }
}

fn bad(s: &Signed, state: &str, e: &str) -> Response {
    layout::page(
        s,
        "/secrets",
        "Secrets",
        state,
        html! { h1 { "Secrets" } (layout::flash(Some(e), true)) p { a href="/secrets" { "Back to the list" } } },
    )
}

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
    done: Option<String>,
}

/// `GET /secrets/view?key=K`.
pub async fn view(
    State(st): State<Arc<UiState>>,
    s: Signed,
    Query(k): Query<KeyQuery>,
) -> Response {
    let state = state_word(&st.session);
    let svc = VaultService::new(st.session.clone());
    let meta = match call::answer(
        svc.get_metadata(call::request(&s, MetadataRequest { key: k.key.clone() }))
            .await,
    ) {
        Ok(m) => m,
        Err(e) => return bad(&s, state, &e),
    };
    let m = meta.meta.clone().unwrap_or_default();
    let now = crate::vault::now_secs();
    let body = html! {
        p { a href="/secrets" { "← Secrets" } }
        h1.mono { (m.key) }
        (layout::flash(k.done.as_deref(), false))
        @if !m.damaged.is_empty() { div.card.flash.error { (m.damaged) } }
        div.card {
            table {
                tr { th { "tags" } td { @for t in &m.tags { span.tag { (t) } } } }
                tr { th { "expires" } td { (expiry(m.expires_at, now)) } }
                tr { th { "url" } td.mono { (meta.url.as_deref().unwrap_or("—")) } }
                tr { th { "notes" } td { (meta.notes.as_deref().unwrap_or("—")) } }
                tr { th { "created / updated" } td.muted { (layout::date_time(m.created_at)) " / " (layout::date_time(m.updated_at)) } }
                @if !m.bindings.is_empty() {
                    tr { th { "bindings" } td.mono { @for b in &m.bindings { (b.env) "=" (b.field) br; } } }
                }
            }
        }
        h2 { "Fields" }
        table #fields {
            thead { tr { th { "field" } th { "value" } th { "kind" } th {} } }
            tbody {
                @for (i, f) in m.fields.iter().enumerate() {
                    tr {
                        td.mono { (f.name) @if f.sensitive { " " span.tag { "sensitive" } } }
                        @if f.sensitive {
                            td { output.value.masked #{"v" (i)} { "••••••••" } }
                            td.muted { (f.kind) }
                            td {
                                form.reveal.inline method="post" action="/secrets/reveal" data-target={"v" (i)} {
                                    (layout::csrf_field(&s))
                                    input type="hidden" name="key" value=(m.key);
                                    input type="hidden" name="field" value=(f.name);
                                    button type="submit" aria-label={"Reveal " (f.name)} { "Reveal" }
                                }
                            }
                        } @else {
                            @let v = meta.public_fields.iter().find(|p| p.name == f.name).map(|p| String::from_utf8_lossy(&p.value).into_owned()).unwrap_or_default();
                            td.value { (v) }
                            td.muted { (f.kind) }
                            td {}
                        }
                    }
                }
            }
        }
        p.muted { "A revealed value is hidden again after 30 seconds; every reveal is in the audit log." }
        div.row {
            a.button href={"/secrets/edit?key=" (encode(&m.key))} { "Edit" }
            form.inline method="post" action="/secrets/delete" data-confirm={"Delete '" (m.key) "'? This cannot be undone."} {
                (layout::csrf_field(&s))
                input type="hidden" name="key" value=(m.key);
                button.danger type="submit" { "Delete" }
            }
        }
    };
    layout::page(&s, "/secrets", &m.key, state, body)
}

/// `POST /secrets/reveal`: the one answer that carries a value (JSON,
/// `no-store`), audited as a `get` from the UI.
pub async fn reveal(State(st): State<Arc<UiState>>, s: Signed, f: Fields) -> Response {
    let svc = VaultService::new(st.session.clone());
    let req = GetRequest {
        key: f.text("key").to_string(),
        field: f.text("field").to_string(),
    };
    match svc.get(call::request(&s, req)).await {
        Ok(r) => {
            // GetResponse wipes its value when dropped.
            let resp = r.into_inner();
            let text = Zeroizing::new(String::from_utf8_lossy(&resp.value).into_owned());
            let body = Zeroizing::new(serde_json::json!({ "value": text.as_str() }).to_string());
            super::json_text(StatusCode::OK, &body)
        }
        Err(e) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": e.message() }),
        ),
    }
}

/// `POST /secrets/delete`.
pub async fn delete(State(st): State<Arc<UiState>>, s: Signed, f: Fields) -> Response {
    let svc = VaultService::new(st.session.clone());
    let key = f.text("key").to_string();
    match call::answer(
        svc.delete(call::request(&s, DeleteRequest { key: key.clone() }))
            .await,
    ) {
        Ok(_) => done("/secrets", &format!("deleted '{key}'")),
        Err(e) => bad(&s, state_word(&st.session), &e),
    }
}
