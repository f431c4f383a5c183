//! The Policy page: the policy agents are held to (the applied copy), the
//! file as it is now (`policy check`: entries, what they resolve to,
//! warnings, whether it differs from the applied copy), and a "would this
//! command run?" box answered by the checks every agent run passes, in
//! their order and with their reasons (`runner::prepare::check_agent_run`:
//! the request, the command policy, the working directory, the keys and
//! their env names), without running anything or decrypting a value.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use secretctl_proto::v1::PolicyCheckRequest;
use secretctl_proto::v1::daemon_server::Daemon;
use serde::Deserialize;

use super::state_word;
use crate::runner::prepare::{RunSpec, check_agent_run};
use crate::service::daemon::DaemonService;
use crate::ui::call::{self, Signed};
use crate::ui::{UiState, layout};

#[derive(Deserialize, Default)]
pub struct Ask {
    #[serde(default)]
    cmd: String,
    #[serde(default)]
    cwd: String,
    /// Key patterns, separated by spaces or commas (as `secret_run`'s keys).
    #[serde(default)]
    keys: String,
    /// An env alias of the policy (`secret_run`'s `env`).
    #[serde(default)]
    env: String,
}

/// `GET /policy[?cmd=...&cwd=...]`.
pub async fn page(State(st): State<Arc<UiState>>, s: Signed, Query(a): Query<Ask>) -> Response {
    let state = state_word(&st.session);
    let svc = DaemonService::new(st.session.clone());
    let report = call::answer(
        svc.policy_check(call::request(&s, PolicyCheckRequest {}))
            .await,
    );
    let applied = crate::agent::report::applied_policy(st.session.applied_policy());
    let default_cwd = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/".into());
    let cwd = if a.cwd.trim().is_empty() {
        default_cwd
    } else {
        PathBuf::from(a.cwd.trim())
    };
    let answer = if a.cmd.trim().is_empty() {
        None
    } else {
        Some(would_run(&st, &s, &a, &cwd).await)
    };
    let body = html! {
        h1 { "Policy" }
        div.card #would-run {
            h2 { "Would this command run?" }
            form.filters method="get" action="/policy" {
                div { label for="cmd" { "Command line, as an agent would ask " kbd { "/" } } input #cmd data-search type="text" name="cmd" value=(a.cmd) size="40" placeholder="npm run test"; }
                div { label for="cwd" { "Working directory" } input #cwd type="text" name="cwd" value=(cwd.display()) size="30"; }
                div { label for="keys" { "Keys (optional)" } input #keys type="text" name="keys" value=(a.keys) size="20" placeholder="db/* api/key"; }
                div { label for="env" { "Env alias" } input #env type="text" name="env" value=(a.env) size="6"; }
                button.primary type="submit" { "Check" }
            }
            @if let Some(ans) = &answer { (ans) }
            p.muted { "Answered by the same checks as MCP secret_run and an agent's secretctl run, against the applied policy: the command, the working directory and, when you name keys, that they exist, are not expired and give valid variable names. Nothing is run and no value is read." }
        }
        h2 { "In force (applied copy)" }
        div.card #applied {
            @if !applied.error.is_empty() { p.bad { (applied.error) } }
            @else {
                p { "default_action: " strong { (applied.default_action) } }
                table {
                    tr { th { "allowed" } td.mono { (list(&applied.allowed_commands)) } }
                    tr { th { "denied" } td.mono { (list(&applied.denied_commands)) } }
                    tr { th { "always denied" } td.mono { (list(&applied.always_denied)) } }
                    tr { th { "trusted directories" } td.mono { (list(&applied.trusted_directories)) } }
                    tr { th { "env aliases" } td.mono {
                        @for al in &applied.env_aliases { strong { (al.name) } ": " @for r in &al.rules { (r.pattern) " → " (r.target) "; " } br; }
                    } }
                }
            }
        }
        h2 { "The file now (policy check)" }
        @match &report {
            Err(e) => { div.card.flash.error { (e) } }
            Ok(r) => {
                div.card #policy-file {
                    p.mono { (r.path) }
                    p { "against the applied copy: " strong #applied-state { (r.applied_state) }
                        @if r.applied_state != "applied" { " — run " (layout::code("secretctl policy apply")) " to put the file in force" } }
                    @if !r.error.is_empty() { p.bad { (r.error) } }
                    @else {
                        p { "default_action: " strong { (r.default_action) } }
                        table {
                            thead { tr { th { "list" } th { "entry" } th { "resolves to" } } }
                            tbody { @for e in &r.entries { tr { td { (e.list) } td.mono { (e.entry) } td.mono { (e.resolves_to) } } } }
                        }
                    }
                    @if !r.warnings.is_empty() {
                        h2 { "Warnings" }
                        ul #warnings { @for w in &r.warnings { li.warn { (w) } } }
                    }
                }
            }
        }
    };
    layout::page(&s, "/policy", "Policy", state, body)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

/// The answer for one command line, audited (`policy_would_run`).
async fn would_run(st: &UiState, s: &Signed, a: &Ask, cwd: &std::path::Path) -> Markup {
    let argv = match secretctl_proto::split::split(&a.cmd) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return html! { p.bad { "no command given" } },
        Err(e) => return html! { p.bad { (e.to_string()) } },
    };
    let patterns: Vec<String> = a
        .keys
        .split([' ', ','])
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    let spec = RunSpec {
        patterns: patterns.clone(),
        alias: a.env.trim().to_string(),
        argv: argv.clone(),
        cwd: cwd.display().to_string(),
        entry: "secret_run",
        ..Default::default()
    };
    let result = check_agent_run(&st.session, spec)
        .await
        .map_err(|e| tonic::Status::from(e).message().to_string());
    let mut rec = s.conn.event("policy_would_run", "ui");
    rec.command = Some(argv.join(" "));
    rec.keys = patterns;
    rec.success = result.is_ok();
    rec.error = result.as_ref().err().cloned();
    st.session.audit.record_nowait(rec);
    html! {
        @match result {
            Ok(w) => p.ok #verdict {
                "✓ would run: " code { (w.program.display()) }
                @if w.injects.is_empty() {
                    " (name the keys to check them too; then every argument naming an injected variable is still refused for non-shells)"
                } @else {
                    " with " @for (i, (env, key)) in w.injects.iter().enumerate() { @if i > 0 { ", " } code { (env) } " from " span.mono { (key) } }
                }
            },
            Err(e) => p.bad #verdict { "✗ refused: " (e) },
        }
    }
}
