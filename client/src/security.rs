//! `secretctl security`: the vault's score and findings (weak, duplicated,
//! expired, expiring), by key and field name. The daemon judges; values
//! never reach this process.

use anyhow::Context;
use secretctl_proto::v1::{SecurityIssue, SecurityRequest};
use serde_json::json;

use crate::cli::{SecurityArgs, SecurityView};
use crate::connect;
use crate::error::Result;
use crate::output::print_json;

/// The issue kinds a view shows.
fn kinds(view: Option<SecurityView>) -> &'static [&'static str] {
    match view {
        None => &["weak", "duplicate", "expired", "expiring"],
        Some(SecurityView::Weak) => &["weak"],
        Some(SecurityView::Duplicates) => &["duplicate"],
        Some(SecurityView::Expiring) => &["expired", "expiring"],
    }
}

fn field_list(i: &SecurityIssue) -> Vec<String> {
    i.fields
        .iter()
        .map(|f| format!("{} ({})", f.key, f.field))
        .collect()
}

pub async fn run(a: SecurityArgs, json_out: bool) -> Result<()> {
    let (client, _) = connect::connect().await?;
    let resp = client
        .transfer()
        .security(SecurityRequest { days: a.days })
        .await
        .map_err(|s| client.classify(s))
        .context("cannot judge the vault")?
        .into_inner();
    let shown = kinds(a.view);
    let issues: Vec<&SecurityIssue> = resp
        .issues
        .iter()
        .filter(|i| shown.contains(&i.kind.as_str()))
        .collect();
    if json_out {
        let list: Vec<_> = issues
            .iter()
            .map(|i| {
                json!({
                    "kind": i.kind,
                    "keys": i.keys,
                    "fields": i.fields.iter().map(|f| json!({"key": f.key, "field": f.field})).collect::<Vec<_>>(),
                    "message": i.message,
                })
            })
            .collect();
        return print_json(&json!({
            "score": resp.score,
            "secret_count": resp.secret_count,
            "expiring_days": resp.expiring_days,
            "issues": list,
        }));
    }
    if a.view.is_none() {
        outln!(
            "score: {}/100 ({} secret{})",
            resp.score,
            resp.secret_count,
            if resp.secret_count == 1 { "" } else { "s" }
        );
    }
    if issues.is_empty() {
        outln!(
            "no findings{}",
            match a.view {
                None => String::new(),
                Some(SecurityView::Weak) => ": no weak values".into(),
                Some(SecurityView::Duplicates) => ": no shared values".into(),
                Some(SecurityView::Expiring) => format!(
                    ": nothing expired or expiring within {} days",
                    resp.expiring_days
                ),
            }
        );
        return Ok(());
    }
    for i in issues {
        outln!("{}: {}", i.kind, i.message);
        let names = if i.fields.is_empty() {
            i.keys.clone()
        } else {
            field_list(i)
        };
        for n in names {
            outln!("  {}", secretctl_proto::text::shown(&n));
        }
    }
    Ok(())
}
