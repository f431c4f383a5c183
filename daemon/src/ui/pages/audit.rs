//! The Audit page: the verified records (newest first) with filters, pages
//! that follow a seq cursor (so page 2,000 of 100k records costs what page
//! 1 costs), actions per day as a chart, the chain's status with the first
//! broken place named, a full verify on request, and an export of what the
//! filters select.
//!
//! Records come from the audit writer's snapshot (`Audit::snapshot`): one
//! full verifying walk, then the records the writer seals itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use secretctl_proto::v1::AuditVerifyRequest;
use secretctl_proto::v1::audit_server::Audit as AuditRpc;
use serde::Deserialize;

use super::{done, encode, state_word};
use crate::audit::Snapshot;
use crate::audit::record::Record;
use crate::service::audit::AuditService;
use crate::ui::call::{self, Signed};
use crate::ui::chart::{self, Bar};
use crate::ui::{UiState, layout};

/// Records per page.
pub const PER_PAGE: usize = 50;
/// Days the chart shows when no date range is given.
const CHART_DAYS: i64 = 30;

#[derive(Deserialize, Default, Clone)]
pub struct Filter {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub caller: String,
    #[serde(default)]
    pub key: String,
    /// "yes", "no" or empty.
    #[serde(default)]
    pub success: String,
    /// YYYY-MM-DD (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// Show records with a seq below this (the next page).
    pub before: Option<u64>,
    pub done: Option<String>,
}

fn day_ok(d: &str) -> bool {
    d.is_empty()
        || (d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            }))
}

impl Filter {
    pub fn check(&self) -> Result<(), String> {
        if !day_ok(self.from.trim()) || !day_ok(self.to.trim()) {
            return Err("dates are YYYY-MM-DD".into());
        }
        Ok(())
    }

    pub fn matches(&self, r: &Record) -> bool {
        let day = r.ts.get(..10).unwrap_or("");
        (self.action.is_empty() || r.action == self.action)
            && (self.source.is_empty() || r.source == self.source)
            && (self.caller.is_empty() || r.caller.as_deref() == Some(self.caller.as_str()))
            && (self.key.is_empty() || r.keys.iter().any(|k| k == &self.key))
            && match self.success.as_str() {
                "yes" => r.success,
                "no" => !r.success,
                _ => true,
            }
            && (self.from.is_empty() || day >= self.from.trim())
            && (self.to.is_empty() || day <= self.to.trim())
    }

    fn query(&self, before: Option<u64>) -> String {
        let mut q = format!(
            "action={}&source={}&caller={}&key={}&success={}&from={}&to={}",
            encode(&self.action),
            encode(&self.source),
            encode(&self.caller),
            encode(&self.key),
            encode(&self.success),
            encode(&self.from),
            encode(&self.to)
        );
        if let Some(b) = before {
            q.push_str(&format!("&before={b}"));
        }
        q
    }
}

/// The snapshot, and an `audit_list` record for this look at it.
pub async fn records(
    st: &UiState,
    s: &Signed,
    detail: serde_json::Value,
) -> Result<Arc<Snapshot>, String> {
    // The record is written before the snapshot is taken for the page: the
    // writer then appends it to a snapshot nobody else holds, in place.
    let mut rec = s.conn.event("audit_list", "ui");
    rec.detail = Some(detail);
    let unlocked = st.session.state() == secretctl_proto::v1::VaultState::Unlocked;
    if !unlocked {
        rec.success = false;
        rec.error = Some(secretctl_proto::LOCKED_MESSAGE.into());
    }
    st.session
        .audit
        .record(rec)
        .await
        .map_err(|e| e.to_string())?;
    if !unlocked {
        return Err(secretctl_proto::LOCKED_MESSAGE.into());
    }
    st.session.audit.snapshot().await
}

/// Per-day counts `[ok, failed]` of the records `pick` selects, over
/// `days` days ending with the newest record's day (or `to`).
pub fn per_day(
    records: &[Arc<Record>],
    pick: impl Fn(&Record) -> Option<bool>,
    from: &str,
    to: &str,
) -> Vec<Bar> {
    let mut counts: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    let end = if to.is_empty() {
        crate::vault::now_secs()
    } else {
        day_secs(to).unwrap_or_else(crate::vault::now_secs)
    };
    let start = if from.is_empty() {
        end - (CHART_DAYS - 1) * 86400
    } else {
        day_secs(from).unwrap_or(end).max(end - 365 * 86400)
    };
    let first = secretctl_proto::duration::rfc3339(start)[..10].to_string();
    let last = secretctl_proto::duration::rfc3339(end)[..10].to_string();
    let mut t = start;
    while t <= end {
        counts.insert(
            secretctl_proto::duration::rfc3339(t)[..10].to_string(),
            [0, 0],
        );
        t += 86400;
    }
    // Newest first, stopping at the first record before the range.
    for r in records.iter().rev() {
        let day = r.ts.get(..10).unwrap_or("");
        if day < first.as_str() {
            break;
        }
        if day > last.as_str() {
            continue;
        }
        if let Some(ok) = pick(r.as_ref())
            && let Some(c) = counts.get_mut(day)
        {
            c[usize::from(!ok)] += 1;
        }
    }
    counts
        .into_iter()
        .map(|(label, parts)| Bar { label, parts })
        .collect()
}

fn day_secs(d: &str) -> Option<i64> {
    crate::audit::record::ts_ms(&format!("{d}T00:00:00Z")).map(|ms| ms / 1000)
}

/// One record as a table row.
pub fn row(r: &Record) -> Markup {
    html! {
        tr {
            td.mono { (r.seq.unwrap_or(0)) }
            td.muted { (r.ts.get(..19).unwrap_or(&r.ts).replace('T', " ")) }
            td { (r.action) }
            td { (r.source) }
            td { (r.caller.as_deref().unwrap_or("—")) }
            td.mono { (r.keys.join(", ")) }
            td.mono { (r.command.as_deref().unwrap_or("")) }
            td { @if r.success { span.ok { "ok" } } @else { span.bad title=(r.error.as_deref().unwrap_or("")) { "failed" } br; span.muted { (r.error.as_deref().unwrap_or("")) } } }
        }
    }
}

/// `GET /audit`.
pub async fn page(State(st): State<Arc<UiState>>, s: Signed, Query(f): Query<Filter>) -> Response {
    let state = state_word(&st.session);
    let body = match render(&st, &s, &f).await {
        Ok(b) => b,
        Err(e) => html! { h1 { "Audit" } (layout::flash(Some(&e), true)) },
    };
    layout::page(&s, "/audit", "Audit", state, body)
}

async fn render(st: &UiState, s: &Signed, f: &Filter) -> Result<Markup, String> {
    f.check()?;
    let snap = records(st, s, serde_json::json!({"page": "audit"})).await?;
    let all = &snap.records;
    let mut total = 0usize;
    let mut shown: Vec<&Record> = Vec::with_capacity(PER_PAGE);
    for r in all.iter().rev() {
        if !f.matches(r) {
            continue;
        }
        total += 1;
        if shown.len() < PER_PAGE && f.before.is_none_or(|b| r.seq.unwrap_or(0) < b) {
            shown.push(r);
        }
    }
    let bars = per_day(all, |r| f.matches(r).then_some(r.success), &f.from, &f.to);
    let next = (shown.len() == PER_PAGE)
        .then(|| shown.last().and_then(|r| r.seq))
        .flatten();
    Ok(html! {
        h1 { "Audit" }
        (layout::flash(f.done.as_deref(), false))
        div.card #chain {
            @match &snap.error {
                None => { span.ok { "✓ chain verified" } " — " (all.len()) " records up to seq " (snap.last_seq) span.muted { " (full walk " (layout::date_time(snap.walked_at_ms / 1000)) " UTC; later records sealed by this daemon)" } }
                Some(e) => { span.bad { "✗ chain broken" } " — " (e) }
            }
            " "
            form.inline method="post" action="/audit/verify" { (layout::csrf_field(s)) button type="submit" { "Verify now" } }
        }
        form.filters method="get" action="/audit" role="search" {
            div { label for="action" { "Action" } input #action type="text" name="action" value=(f.action) size="10"; }
            div { label for="source" { "Source" } select #source name="source" { @for v in ["", "cli", "mcp", "ui"] { option value=(v) selected[f.source == v] { (if v.is_empty() { "any" } else { v }) } } } }
            div { label for="caller" { "Caller" } select #caller name="caller" { @for v in ["", "user", "agent"] { option value=(v) selected[f.caller == v] { (if v.is_empty() { "any" } else { v }) } } } }
            div { label for="key" { "Key " kbd { "/" } } input #key data-search type="search" name="key" value=(f.key) size="14"; }
            div { label for="success" { "Outcome" } select #success name="success" { @for (v, l) in [("", "any"), ("yes", "ok"), ("no", "failed")] { option value=(v) selected[f.success == v] { (l) } } } }
            div { label for="from" { "From" } input #from type="date" name="from" value=(f.from); }
            div { label for="to" { "To" } input #to type="date" name="to" value=(f.to); }
            button type="submit" { "Filter" }
            a.button href={"/audit/export?" (f.query(None))} download="secretctl-audit.jsonl" { "Export" }
        }
        h2 { "Actions per day" }
        (chart::bars("Audit records per day", ["ok", "failed"], &bars))
        h2 { (total) " matching records" }
        table #audit {
            thead { tr { th { "seq" } th { "time (UTC)" } th { "action" } th { "source" } th { "caller" } th { "keys" } th { "command" } th { "outcome" } } }
            tbody { @for r in &shown { (row(r)) } }
        }
        div.pager {
            @if f.before.is_some() { a href={"/audit?" (f.query(None))} { "← newest" } }
            @if let Some(n) = next { a #older href={"/audit?" (f.query(Some(n)))} { "older →" } }
        }
    })
}

/// `GET /audit/export`: the records the filters select, as JSON lines
/// (as stored), oldest first.
pub async fn export(
    State(st): State<Arc<UiState>>,
    s: Signed,
    Query(f): Query<Filter>,
) -> Response {
    if let Err(e) = f.check() {
        return (axum::http::StatusCode::BAD_REQUEST, e).into_response();
    }
    match records(&st, &s, serde_json::json!({"export": true})).await {
        Ok(snap) => {
            let mut out = Vec::new();
            for r in snap.records.iter().filter(|r| f.matches(r)) {
                out.extend_from_slice(&r.line());
            }
            (
                [
                    (header::CONTENT_TYPE, "application/x-ndjson"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"secretctl-audit.jsonl\"",
                    ),
                ],
                out,
            )
                .into_response()
        }
        Err(e) => (axum::http::StatusCode::CONFLICT, e).into_response(),
    }
}

/// `POST /audit/verify`: a full verify (the same as `secretctl audit verify`).
pub async fn verify(State(st): State<Arc<UiState>>, s: Signed) -> Response {
    let svc = AuditService::new(st.session.clone());
    match call::answer(svc.verify(call::request(&s, AuditVerifyRequest {})).await) {
        Ok(v) if v.ok => done(
            "/audit",
            &format!(
                "verified: {} records, the chain is intact up to seq {}",
                v.records, v.last_seq
            ),
        ),
        Ok(v) => done(
            "/audit",
            &format!(
                "the chain is broken: {} ({} records verified before it)",
                v.error, v.records
            ),
        ),
        Err(e) => done("/audit", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, ts: &str, action: &str, ok: bool) -> Record {
        let mut r = crate::audit::event(action, "ui", crate::audit::daemon_peer());
        r.seq = Some(seq);
        r.ts = ts.into();
        r.success = ok;
        r
    }

    #[test]
    fn filters_and_day_counts() {
        let rs = [
            rec(1, "2024-05-01T10:00:00.000Z", "get", true),
            rec(2, "2024-05-01T11:00:00.000Z", "get", false),
            rec(3, "2024-05-03T09:00:00.000Z", "set", true),
        ];
        let f = Filter {
            action: "get".into(),
            ..Filter::default()
        };
        assert_eq!(rs.iter().filter(|r| f.matches(r)).count(), 2);
        let f = Filter {
            from: "2024-05-02".into(),
            ..Filter::default()
        };
        assert_eq!(rs.iter().filter(|r| f.matches(r)).count(), 1);
        assert!(
            Filter {
                from: "05/02/2024".into(),
                ..Filter::default()
            }
            .check()
            .is_err()
        );
        let rs: Vec<Arc<Record>> = rs.into_iter().map(Arc::new).collect();
        let bars = per_day(&rs, |r| Some(r.success), "2024-05-01", "2024-05-03");
        let got: Vec<(&str, [u64; 2])> = bars.iter().map(|b| (b.label.as_str(), b.parts)).collect();
        assert_eq!(
            got,
            [
                ("2024-05-01", [1, 1]),
                ("2024-05-02", [0, 0]),
                ("2024-05-03", [1, 0])
            ]
        );
    }
}
