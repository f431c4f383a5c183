//! `audit list | verify | export | prune`.

use anyhow::Context;
use secretctl_proto::v1::{AuditListRequest, AuditPruneRequest, AuditVerifyRequest};
use serde_json::{Value, json};

use crate::cli::{AuditCommand, AuditFilter};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::print_json;

/// Unix ms of a date: RFC 3339 (`2026-11-28T10:00:00Z`), a day
/// (`2026-11-28`, midnight UTC), or a duration ago (`30d`).
pub fn parse_date(s: &str) -> Result<i64> {
    let to_ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    if let Ok(d) = secretctl_proto::duration::parse(s) {
        return Ok(to_ms(std::time::SystemTime::now()) - d.as_millis() as i64);
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .map(to_ms)
        .map_err(|_| CliError::usage(format!("invalid date '{s}': use 2026-11-28, 2026-11-28T10:00:00Z or a duration ago like 30d")).into())
}

fn request(f: &AuditFilter) -> Result<AuditListRequest> {
    if let Some(a) = &f.action
        && !secretctl_proto::audit_actions::ACTIONS.contains(&a.as_str())
    {
        return Err(CliError::usage(format!(
            "unknown action '{}'",
            secretctl_proto::text::shown(a)
        ))
        .hint(format!(
            "actions: {}",
            secretctl_proto::audit_actions::ACTIONS.join(", ")
        ))
        .into());
    }
    Ok(AuditListRequest {
        caller: f.caller.clone().unwrap_or_default(),
        since_ms: f.since.as_deref().map(parse_date).transpose()?.unwrap_or(0),
        until_ms: f.until.as_deref().map(parse_date).transpose()?.unwrap_or(0),
        action: f.action.clone().unwrap_or_default(),
        key: f.key.clone().unwrap_or_default(),
        source: f.source.clone().unwrap_or_default(),
        limit: f.limit.unwrap_or(0),
    })
}

/// A CSV cell, quoted, with spreadsheet formulas neutralised.
pub fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

const CSV_COLUMNS: [&str; 14] = [
    "seq", "ts", "action", "source", "peer_pid", "peer_uid", "peer_exe", "keys", "command",
    "success", "error", "detail", "prev", "mac",
];

fn csv_row(r: &Value) -> String {
    CSV_COLUMNS
        .iter()
        .map(|c| {
            let v = match *c {
                "peer_pid" => r["peer"]["pid"].clone(),
                "peer_uid" => r["peer"]["uid"].clone(),
                "peer_exe" => r["peer"]["exe"].clone(),
                "detail" => match &r["detail"] {
                    Value::Null => Value::Null,
                    d => Value::String(d.to_string()),
                },
                c => r[c].clone(),
            };
            csv_cell(&text(&v))
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn run(cmd: AuditCommand, json_out: bool) -> Result<()> {
    let (client, st) = connect::connect().await?;
    match cmd {
        AuditCommand::List(f) => {
            let records = client
                .audit()
                .list(request(&f)?)
                .await
                .map_err(|s| client.classify(s))
                .context("cannot read the audit log")?
                .into_inner();
            warn_unverified(&records.problem);
            let records = records.records;
            if json_out {
                let parsed: Vec<Value> = records
                    .iter()
                    .filter_map(|r| serde_json::from_str(r).ok())
                    .collect();
                print_json(&json!(parsed))?;
            } else {
                for r in &records {
                    let v: Value = serde_json::from_str(r).unwrap_or_default();
                    let seq = match &v["seq"] {
                        Value::Null => "-".to_string(),
                        s => s.to_string(),
                    };
                    let status = if v["success"] == true { "ok" } else { "FAILED" };
                    outln!(
                        "{seq:>6} {} {:<5} {:<5} {:<18} {:<6} keys=[{}]{}{}",
                        text(&v["ts"]),
                        text(&v["source"]),
                        text(&v["caller"]),
                        text(&v["action"]),
                        status,
                        text(&v["keys"]),
                        v["command"]
                            .as_str()
                            .map(|c| format!(" cmd={c:?}"))
                            .unwrap_or_default(),
                        v["error"]
                            .as_str()
                            .map(|e| format!(" error={e:?}"))
                            .unwrap_or_default(),
                    );
                }
            }
        }
        AuditCommand::Verify => {
            let r = client
                .audit()
                .verify(AuditVerifyRequest {})
                .await
                .map_err(|s| client.classify(s))
                .context("cannot verify the audit log")?
                .into_inner();
            if json_out {
                print_json(
                    &json!({"ok": r.ok, "records": r.records, "last_seq": r.last_seq, "error": (!r.ok).then_some(&r.error)}),
                )?;
            } else if r.ok {
                outln!(
                    "audit log intact: {} records, last seq {}",
                    r.records,
                    r.last_seq
                );
            }
            if !r.ok {
                return Err(CliError::error(format!("audit log broken: {}", r.error)).into());
            }
        }
        AuditCommand::Export { format, filter } => {
            let records = client
                .audit()
                .list(request(&filter)?)
                .await
                .map_err(|s| client.classify(s))
                .context("cannot read the audit log")?
                .into_inner();
            warn_unverified(&records.problem);
            let records = records.records;
            match format.as_str() {
                "json" => {
                    for r in &records {
                        outln!("{r}");
                    }
                }
                "csv" => {
                    outln!("{}", CSV_COLUMNS.join(","));
                    for r in &records {
                        outln!("{}", csv_row(&serde_json::from_str(r).unwrap_or_default()));
                    }
                }
                other => {
                    return Err(CliError::usage(format!(
                        "unknown format '{other}': use json or csv"
                    ))
                    .into());
                }
            }
        }
        AuditCommand::Acknowledge => {
            crate::reauth::consent(&client, &st, "acknowledge gaps in the audit log").await?;
            let r = client
                .audit()
                .acknowledge(secretctl_proto::v1::AuditAcknowledgeRequest {})
                .await
                .map_err(|s| client.classify(s))
                .context("cannot acknowledge")?
                .into_inner();
            if json_out {
                print_json(&json!({"acknowledged": r.gaps}))?;
            } else if r.gaps.is_empty() {
                outln!("no unacknowledged gap in the audit log");
            } else {
                outln!(
                    "acknowledged the gap(s) recorded at seq {}",
                    r.gaps
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        AuditCommand::Prune { before } => {
            let before_ms = parse_date(&before)?;
            crate::reauth::consent(&client, &st, "prune the audit log").await?;
            let r = client
                .audit()
                .prune(AuditPruneRequest { before_ms })
                .await
                .map_err(|s| client.classify(s))
                .context("cannot prune the audit log")?
                .into_inner();
            if json_out {
                print_json(&json!({"pruned": r.pruned, "remaining": r.remaining}))?;
            } else {
                outln!(
                    "pruned {} records; {} remain (the chain still verifies from a checkpoint)",
                    r.pruned,
                    r.remaining
                );
            }
        }
    }
    Ok(())
}

/// Says on stderr that the records shown stop where the chain broke.
fn warn_unverified(problem: &str) {
    if !problem.is_empty() {
        eprintln!(
            "warning: only records that verify are shown; the chain breaks after them: {problem}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_neutralises_formulas() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("-x"), "\"'-x\"");
        assert_eq!(csv_cell("@sum"), "\"'@sum\"");
        assert_eq!(csv_cell("plain \"q\""), "\"plain \"\"q\"\"\"");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_date("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(parse_date("1d").unwrap() > 0);
        assert!(parse_date("yesterday").is_err());
    }
}
