//! The Agents page: what AI agents ran (command, keys, exit code, duration,
//! redactions) and what was refused to them and why, newest first, with
//! runs per day as a chart. Read from the verified audit records.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::audit::{per_day, records};
use super::state_word;
use crate::audit::record::Record;
use crate::ui::call::Signed;
use crate::ui::chart;
use crate::ui::{UiState, layout};

/// Most runs listed.
const SHOWN: usize = 100;

/// Whether a record is an agent's run or a refusal of one of its requests.
fn is_agent_activity(r: &Record) -> bool {
    r.caller.as_deref() == Some("agent")
        && (matches!(r.action.as_str(), "run" | "policy_refused" | "policy_error") || !r.success)
}

fn detail<'a>(r: &'a Record, name: &str) -> Option<&'a serde_json::Value> {
    r.detail.as_ref()?.get(name)
}

/// `GET /agents`.
pub async fn page(State(st): State<Arc<UiState>>, s: Signed) -> Response {
    let state = state_word(&st.session);
    let snap = match records(&st, &s, serde_json::json!({"page": "agents"})).await {
        Ok(r) => r,
        Err(e) => {
            return layout::page(
                &s,
                "/agents",
                "Agents",
                state,
                html! { h1 { "Agents" } (layout::flash(Some(&e), true)) },
            );
        }
    };
    let runs: Vec<&Record> = snap
        .records
        .iter()
        .map(|r| &**r)
        .rev()
        .filter(|r| is_agent_activity(r))
        .take(SHOWN)
        .collect();
    let bars = per_day(
        &snap.records,
        |r| is_agent_activity(r).then_some(r.success),
        "",
        "",
    );
    let body = html! {
        h1 { "Agents" }
        p.muted { "Runs started by AI agents (MCP secret_run, or secretctl run from an agent's shell) and every request refused to an agent, newest first. Output is never stored; only what the audit log records." }
        h2 { "Agent activity per day" }
        (chart::bars("Agent runs and refusals per day", ["ok", "failed or refused"], &bars))
        h2 { "Recent" }
        @if runs.is_empty() { p.muted { "No agent activity recorded." } }
        @else {
            table #agent-runs {
                thead { tr { th { "time (UTC)" } th { "action" } th { "command" } th { "keys" } th { "exit" } th { "duration" } th { "redactions" } th { "outcome" } } }
                tbody {
                    @for r in &runs {
                        tr {
                            td.muted { (r.ts.get(..19).unwrap_or(&r.ts).replace('T', " ")) }
                            td { (r.action) " " span.muted { "(" (r.source) ")" } }
                            td.mono { (r.command.as_deref().unwrap_or("")) }
                            td.mono { (r.keys.join(", ")) }
                            td { @if let Some(c) = detail(r, "exit_code") { (c) } }
                            td { @if let Some(d) = detail(r, "duration_ms").and_then(|d| d.as_u64()) { (d) " ms" } }
                            td { @if let Some(n) = detail(r, "redacted_count") { (n) } }
                            td {
                                @if r.success { span.ok { "ok" } }
                                @else { span.bad { (if r.action == "run" { "failed" } else { "refused" }) } br; span.muted { (r.error.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&s, "/agents", "Agents", state, body)
}
