//! `set`, `get`, `list`, `delete`: secret CRUD against the daemon's vault
//! service. What a request holds is decided in `set_request`; this module
//! does the I/O: reading values, talking to the daemon, printing.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use secretctl_proto::names;
use secretctl_proto::v1::{
    DeleteRequest, GetRequest, ListRequest, MetadataRequest, MetadataResponse, VaultState,
};
use serde_json::json;
use zeroize::{Zeroize, Zeroizing};

use crate::cli::{DeleteArgs, GetArgs, ListArgs, SetArgs};
use crate::connect;
use crate::error::{CliError, LOCKED, Result};
use crate::output::{meta_json, print_json, time_s};
use crate::{password, set_request};

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn check_key(key: &str) -> Result<()> {
    names::validate_key(key).map_err(|e| {
        CliError::usage(format!(
            "invalid key name '{}': {e}",
            secretctl_proto::text::shown(key)
        ))
        .into()
    })
}

pub async fn set(a: SetArgs, json_out: bool) -> Result<()> {
    let interactive = password::interactive();
    let plan = set_request::plan(&a, interactive)?;
    let (client, st) = connect::connect().await?;
    crate::reauth::consent(&client, &st, &format!("store secret '{}'", a.key)).await?;
    // Someone about to type secrets at a prompt learns now, not after,
    // that the daemon would refuse them. Scripts just get its answer.
    if interactive && !plan.asks().is_empty() {
        match VaultState::try_from(st.state) {
            Ok(VaultState::Locked) => {
                return Err(CliError::new(LOCKED, secretctl_proto::LOCKED_MESSAGE).into());
            }
            Ok(VaultState::Uninitialized) => {
                return Err(CliError::error("the vault is not initialized")
                    .hint("run 'secretctl init'")
                    .into());
            }
            _ => {}
        }
    }
    let req = plan.build(now_secs(), |ask| password::value(&ask.label, ask.echo))?;
    // Lengths only, taken now: the request is moved into the call.
    let short = plan.short_values(&req);
    let resp = client
        .vault()
        .set(req)
        .await
        .map_err(|s| client.classify(s))
        .with_context(|| format!("cannot store '{}'", a.key))?
        .into_inner();
    let verb = if resp.created { "created" } else { "updated" };
    if json_out {
        let meta = resp.meta.as_ref().map(meta_json);
        print_json(&json!({"key": a.key, "created": resp.created, "secret": meta}))?;
    } else {
        eprintln!("{verb} {}", a.key);
    }
    for (name, len) in short {
        eprintln!(
            "warning: the {} of '{}' is only {len} byte{}: runs redact every occurrence of a sensitive value, so a short one hides ordinary text too",
            if name == crate::set_request::DEFAULT_FIELD {
                "value".to_string()
            } else {
                format!("field '{name}'")
            },
            a.key,
            if len == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `get --json`: borrowed so the value is serialized straight from its
/// zeroizing buffer, without an extra copy.
#[derive(serde::Serialize)]
struct GetJson<'a> {
    key: &'a str,
    field: &'a str,
    value: &'a str,
}

pub async fn get(a: GetArgs, json_out: bool) -> Result<()> {
    check_key(&a.key)?;
    let (client, st) = connect::connect().await?;
    if a.show_metadata {
        let resp = client
            .vault()
            .get_metadata(MetadataRequest { key: a.key.clone() })
            .await
            .map_err(|s| client.classify(s))
            .with_context(|| format!("cannot read the metadata of '{}'", a.key))?
            .into_inner();
        return print_metadata(resp, json_out);
    }
    crate::reauth::consent(&client, &st, &format!("read the value of '{}'", a.key)).await?;
    let mut resp = client
        .vault()
        .get(GetRequest {
            key: a.key.clone(),
            field: a.field.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| client.classify(s))
        .with_context(|| format!("cannot read '{}'", a.key))?
        .into_inner();
    let value = Zeroizing::new(std::mem::take(&mut resp.value));
    let mut out = std::io::stdout().lock();
    if json_out {
        let text = std::str::from_utf8(&value).map_err(|_| {
            CliError::error(format!("the value of '{}' is not UTF-8 text", a.key))
                .hint("run without --json to get the raw bytes")
        })?;
        let mut line = Zeroizing::new(serde_json::to_vec(&GetJson {
            key: &resp.key,
            field: &resp.field,
            value: text,
        })?);
        line.push(b'\n');
        out.write_all(&line).context("cannot write to stdout")?;
        line.zeroize();
    } else {
        out.write_all(&value).context("cannot write to stdout")?;
        // People get a newline; scripts and $(...) get the exact bytes.
        if std::io::stdout().is_terminal() {
            out.write_all(b"\n")?;
        }
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// Metadata of one secret, with the values of non-sensitive fields only
/// (the daemon never sends sensitive ones here).
fn print_metadata(mut resp: MetadataResponse, json_out: bool) -> Result<()> {
    let meta = resp.meta.take().unwrap_or_default();
    let public = |name: &str| {
        resp.public_fields
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.value).into_owned())
    };
    if json_out {
        let mut j = meta_json(&meta);
        for (i, f) in meta.fields.iter().enumerate() {
            if let Some(v) = public(&f.name).filter(|_| !f.sensitive) {
                j["fields"][i]["value"] = json!(v);
            }
        }
        j["notes"] = json!(resp.notes);
        j["url"] = json!(resp.url);
        return print_json(&j);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "key:      {}", meta.key)?;
    writeln!(out, "fields:")?;
    for f in &meta.fields {
        let shown = match public(&f.name) {
            Some(v) if !f.sensitive => v,
            _ => "(sensitive)".into(),
        };
        let mut about = Vec::new();
        if !f.kind.is_empty() {
            about.push(format!("kind {}", f.kind));
        }
        if !f.hint.is_empty() {
            about.push(f.hint.clone());
        }
        if !f.proxied_to.is_empty() {
            about.push(format!("proxied to {}", f.proxied_to.join(", ")));
        }
        let about = if about.is_empty() {
            String::new()
        } else {
            format!("  [{}]", about.join("; "))
        };
        writeln!(out, "  {}: {shown}{about}", f.name)?;
    }
    if !meta.tags.is_empty() {
        writeln!(out, "tags:     {}", meta.tags.join(", "))?;
    }
    writeln!(
        out,
        "expires:  {}",
        time_s(meta.expires_at).as_deref().unwrap_or("never")
    )?;
    if let Some(u) = &resp.url {
        writeln!(out, "url:      {u}")?;
    }
    if let Some(n) = &resp.notes {
        writeln!(out, "notes:    {n}")?;
    }
    for b in &meta.bindings {
        writeln!(out, "binding:  {}={}", b.env, b.field)?;
    }
    if !meta.proxy_hosts.is_empty() {
        writeln!(out, "proxy:    {}", meta.proxy_hosts.join(", "))?;
    }
    let time = |t| time_s(Some(t)).unwrap_or_else(|| "-".into());
    writeln!(out, "created:  {}", time(meta.created_at))?;
    writeln!(out, "updated:  {}", time(meta.updated_at))?;
    out.flush()?;
    Ok(())
}

pub async fn list(a: ListArgs, json_out: bool) -> Result<()> {
    let (client, _) = connect::connect().await?;
    let resp = client
        .vault()
        .list(ListRequest {
            tag: a.tag.unwrap_or_default(),
            expiring_within_secs: a
                .expiring
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            prefix: a.prefix.unwrap_or_default(),
        })
        .await
        .map_err(|s| client.classify(s))
        .context("cannot list secrets")?
        .into_inner();
    if json_out {
        return print_json(&json!(
            resp.secrets.iter().map(meta_json).collect::<Vec<_>>()
        ));
    }
    // The daemon sorts by key; one buffered write for long lists.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut damaged = 0;
    for s in &resp.secrets {
        if s.damaged.is_empty() {
            writeln!(out, "{}", s.key)?;
        } else {
            damaged += 1;
            writeln!(out, "{}  (DAMAGED)", s.key)?;
        }
    }
    out.flush()?;
    for s in resp.secrets.iter().filter(|s| !s.damaged.is_empty()) {
        eprintln!("warning: {}", s.damaged);
    }
    if damaged > 0 {
        return Err(
            CliError::error(format!("{damaged} damaged secret(s) listed"))
                .hint("delete and store them again, or restore vault.redb from a backup")
                .into(),
        );
    }
    Ok(())
}

pub async fn delete(a: DeleteArgs, json_out: bool) -> Result<()> {
    check_key(&a.key)?;
    let (client, st) = connect::connect().await?;
    crate::reauth::consent(&client, &st, &format!("delete secret '{}'", a.key)).await?;
    if !a.force && password::interactive() {
        eprint!("delete {}? [y/N] ", a.key);
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(CliError::error(format!("'{}' not deleted", a.key))
                .hint("answer y to delete, or pass --force")
                .into());
        }
    }
    client
        .vault()
        .delete(DeleteRequest { key: a.key.clone() })
        .await
        .map_err(|s| client.classify(s))
        .with_context(|| format!("cannot delete '{}'", a.key))?;
    if json_out {
        print_json(&json!({"deleted": a.key}))?;
    } else {
        eprintln!("deleted {}", a.key);
    }
    Ok(())
}
