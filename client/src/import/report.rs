//! What `import` prints: entry by entry for a dry run or `--json`, counts
//! always; names, origins, actions and counts, never a value.

use secretctl_proto::v1::ImportResponse;
use serde_json::json;

use super::detect;
use super::plan::{self, Plan, What};
use crate::cli::ImportFormat;
use crate::error::{CliError, Result};
use crate::output::print_json;

/// Prints what happened (or would), entry by entry for a dry run or
/// `--json`, counts always. Names and counts only.
pub fn report(
    plan: &Plan,
    resp: &ImportResponse,
    format: ImportFormat,
    why: &str,
    dry_run: bool,
    json_out: bool,
) -> Result<()> {
    // Each planned entry with its action and reason.
    let mut answers = resp.outcomes.iter();
    let rows: Vec<(&plan::Planned, String, String)> = plan
        .entries
        .iter()
        .map(|e| match &e.what {
            What::Skip(why) => (e, "skip".to_string(), why.clone()),
            What::Send(_) => {
                let o = answers.next().expect("counted above");
                (e, o.action.clone(), o.reason.clone())
            }
        })
        .collect();
    let count = |a: &str| rows.iter().filter(|(_, x, _)| x == a).count();
    let (created, overwritten, skipped, conflicts) = (
        count("create"),
        count("overwrite"),
        count("skip"),
        count("conflict"),
    );
    let fname = detect::name(format);
    if json_out {
        print_json(&json!({
            "format": fname,
            "dry_run": dry_run,
            "imported": created,
            "overwritten": overwritten,
            "skipped": skipped,
            "conflicts": conflicts,
            "notes": plan.notes,
            "entries": rows.iter().map(|(e, action, reason)| {
                let mut o = json!({"key": e.key, "origin": e.origin, "action": action});
                if !reason.is_empty() { o["reason"] = json!(reason); }
                if let Some(n) = &e.note { o["note"] = json!(n); }
                o
            }).collect::<Vec<_>>(),
        }))?;
    } else if dry_run {
        outln!("format: {fname} ({why})");
        for n in &plan.notes {
            outln!("note: {n}");
        }
        let width = rows
            .iter()
            .map(|(e, _, _)| e.key.len())
            .max()
            .unwrap_or(0)
            .min(48);
        for (e, action, reason) in &rows {
            let mut about = Vec::new();
            if !reason.is_empty() {
                about.push(reason.clone());
            }
            if let Some(n) = &e.note {
                about.push(n.clone());
            }
            let about = if about.is_empty() {
                String::new()
            } else {
                format!("  ({})", about.join("; "))
            };
            outln!(
                "{action:<9} {:<width$}  {}{about}",
                e.key,
                secretctl_proto::text::escape(&e.origin)
            );
        }
        outln!(
            "would import {created}, overwrite {overwritten}, skip {skipped} (dry run: nothing was changed)"
        );
    } else {
        for n in &plan.notes {
            eprintln!("note: {n}");
        }
        for (e, _, _) in &rows {
            if let Some(n) = &e.note {
                eprintln!(
                    "note: {} ('{}'): {n}",
                    secretctl_proto::text::escape(&e.origin),
                    e.key
                );
            }
        }
        outln!("imported {created}, overwritten {overwritten}, skipped {skipped}");
    }
    if conflicts > 0 {
        return Err(CliError::error(format!(
            "the import would be refused: {conflicts} key{} already exist{} and --conflict is error",
            if conflicts == 1 { "" } else { "s" },
            if conflicts == 1 { "s" } else { "" },
        ))
        .hint("use --conflict skip or overwrite, or another --prefix")
        .into());
    }
    Ok(())
}
