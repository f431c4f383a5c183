//! `set`, `get`, `list`, `delete`.

use std::io::{IsTerminal, Write};

use secretctl_proto::names;
use secretctl_proto::v1::{
    Binding, BindingList, DeleteRequest, FieldInput, FieldNames, GetRequest, ListRequest,
    MetadataRequest, SetRequest, TagList,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{DeleteArgs, GetArgs, ListArgs, SetArgs};
use crate::connect;
use crate::error::{CliError, Result};
use crate::output::{meta_json, print_json};
use crate::{password, templates};

/// Values shorter than this make redaction match too often.
const SHORT_VALUE: usize = 8;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Splits `NAME=VALUE` (value may be absent).
fn split_field(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

/// Builds the `Set` request from the flags. `read` supplies values not given
/// on the command line (stdin or a prompt); `interactive` says whether
/// missing template fields may be prompted for.
pub fn build_set(
    a: &SetArgs,
    interactive: bool,
    now: i64,
    mut read: impl FnMut(&str) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<SetRequest> {
    names::validate_key(&a.key).map_err(|e| CliError::usage(format!("'{}': {e}", a.key)))?;
    let template = match &a.template {
        Some(t) => Some(templates::fields(t).ok_or_else(|| {
            CliError::usage(format!(
                "unknown template '{t}': use one of {}",
                templates::NAMES.join(", ")
            ))
        })?),
        None => None,
    };
    let mut given: Vec<(String, Option<String>)> = Vec::new();
    for spec in &a.fields {
        let (name, value) = split_field(spec);
        if name.is_empty() {
            return Err(CliError::usage(format!(
                "--field {spec:?}: the field name is empty"
            )));
        }
        given.push((name.to_string(), value.map(str::to_string)));
    }
    if given.iter().filter(|(_, v)| v.is_none()).count() > 1 {
        return Err(CliError::usage(
            "only one --field may read its value from stdin",
        ));
    }

    let mut fields = Vec::new();
    let mut value_of = |name: &str, v: &Option<String>| -> Result<Vec<u8>> {
        match v {
            Some(v) => Ok(v.as_bytes().to_vec()),
            None => Ok(read(&format!("{} field {name}: ", a.key))?.to_vec()),
        }
    };
    if let Some(tpl) = template {
        let mut missing = Vec::new();
        for tf in tpl {
            let value = match given.iter().find(|(n, _)| n == tf.name) {
                Some((_, v)) => value_of(tf.name, v)?,
                None if interactive => value_of(tf.name, &None)?,
                None => {
                    missing.push(tf.name);
                    continue;
                }
            };
            fields.push(FieldInput {
                name: tf.name.to_string(),
                value,
                sensitive: Some(tf.sensitive),
                kind: tf.name.to_string(),
                hint: tf.hint.to_string(),
            });
        }
        if !missing.is_empty() {
            return Err(CliError::usage(format!(
                "template fields without a value: {}",
                missing.join(", ")
            ))
            .hint(format!(
                "pass them as --field {}=VALUE (or run in a terminal to be prompted)",
                missing[0]
            )));
        }
    }
    for (name, v) in &given {
        if template.is_some_and(|t| t.iter().any(|tf| tf.name == name)) {
            continue;
        }
        fields.push(FieldInput {
            name: name.clone(),
            value: value_of(name, v)?,
            ..Default::default()
        });
    }
    if fields.is_empty() {
        let value = read(&format!("Value for {}: ", a.key))?;
        fields.push(FieldInput {
            name: "value".into(),
            value: value.to_vec(),
            ..Default::default()
        });
    }
    if let Some(empty) = fields.iter().find(|f| f.value.is_empty()) {
        return Err(CliError::usage(format!(
            "the value of field '{}' is empty",
            empty.name
        )));
    }

    let tags = a.tags.as_ref().map(|t| TagList {
        tags: t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    });
    let expires_at = match a.expires.as_deref() {
        None => None,
        Some("never") => Some(0),
        Some(d) => {
            let d = secretctl_proto::duration::parse(d)
                .map_err(|e| CliError::usage(format!("--expires: {e}")))?;
            Some(now.saturating_add(d.as_secs() as i64))
        }
    };
    let bindings = if a.bindings.is_empty() {
        None
    } else {
        let mut list = Vec::new();
        for b in &a.bindings {
            let (env, field) = b
                .split_once('=')
                .filter(|(e, f)| !e.is_empty() && !f.is_empty())
                .ok_or_else(|| CliError::usage(format!("--binding {b:?}: use ENV=FIELD")))?;
            list.push(Binding {
                env: env.into(),
                field: field.into(),
            });
        }
        Some(BindingList { bindings: list })
    };
    Ok(SetRequest {
        key: a.key.clone(),
        fields,
        sensitive_exact: (!a.sensitive.is_empty()).then(|| FieldNames {
            names: a.sensitive.clone(),
        }),
        notes: a.notes.clone(),
        url: a.url.clone(),
        tags,
        expires_at,
        bindings,
    })
}

pub async fn set(a: SetArgs, json_out: bool) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let mut req = build_set(&a, interactive, now_secs(), password::secret_value)?;
    // Only values that will be redacted matter: sensitive ones.
    let sensitive = |f: &FieldInput| match &req.sensitive_exact {
        Some(exact) => exact.names.contains(&f.name),
        None => f.sensitive != Some(false),
    };
    let short: Vec<(String, usize)> = req
        .fields
        .iter()
        .filter(|f| sensitive(f) && f.value.len() < SHORT_VALUE)
        .map(|f| (f.name.clone(), f.value.len()))
        .collect();
    let (client, _) = connect::connect().await?;
    let result = client.vault().set(req.clone()).await;
    for f in &mut req.fields {
        zeroize::Zeroize::zeroize(&mut f.value);
    }
    let resp = result.map_err(|s| client.classify(s))?.into_inner();
    for (name, len) in short {
        eprintln!(
            "warning: field '{name}' is only {len} bytes: short values make output redaction noisy"
        );
    }
    if json_out {
        let meta = resp.meta.as_ref().map(meta_json).unwrap_or_default();
        print_json(&json!({"created": resp.created, "secret": meta}));
    } else {
        eprintln!(
            "{} {}",
            if resp.created { "created" } else { "updated" },
            a.key
        );
    }
    Ok(())
}

pub async fn get(a: GetArgs, json_out: bool) -> Result<()> {
    names::validate_key(&a.key).map_err(|e| CliError::usage(format!("'{}': {e}", a.key)))?;
    let (client, _) = connect::connect().await?;
    if a.show_metadata {
        let resp = client
            .vault()
            .get_metadata(MetadataRequest { key: a.key.clone() })
            .await
            .map_err(|s| client.classify(s))?
            .into_inner();
        return print_metadata(resp, json_out);
    }
    let resp = client
        .vault()
        .get(GetRequest {
            key: a.key.clone(),
            field: a.field.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| client.classify(s))?
        .into_inner();
    let value = Zeroizing::new(resp.value);
    if json_out {
        let text = std::str::from_utf8(&value).map_err(|_| {
            CliError::error("the value is not UTF-8")
                .hint("run without --json to get the raw bytes")
        })?;
        print_json(&json!({"key": resp.key, "field": resp.field, "value": text}));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&value)?;
    if std::io::stdout().is_terminal() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn print_metadata(resp: secretctl_proto::v1::MetadataResponse, json_out: bool) -> Result<()> {
    let meta = resp.meta.unwrap_or_default();
    let public = |name: &str| {
        resp.public_fields
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.value).into_owned())
    };
    if json_out {
        let mut j = meta_json(&meta);
        for (i, f) in meta.fields.iter().enumerate() {
            if let Some(v) = public(&f.name) {
                j["fields"][i]["value"] = json!(v);
            }
        }
        j["notes"] = json!(resp.notes);
        j["url"] = json!(resp.url);
        print_json(&j);
        return Ok(());
    }
    println!("key:      {}", meta.key);
    println!("fields:");
    for f in &meta.fields {
        let shown = match public(&f.name) {
            Some(v) => v,
            None => "(sensitive)".into(),
        };
        let kind = if f.kind.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.kind)
        };
        println!("  {}{kind}: {shown}", f.name);
    }
    if !meta.tags.is_empty() {
        println!("tags:     {}", meta.tags.join(", "));
    }
    if let Some(e) = meta.expires_at {
        println!("expires:  {}", secretctl_proto::duration::rfc3339(e));
    }
    if let Some(u) = &resp.url {
        println!("url:      {u}");
    }
    if let Some(n) = &resp.notes {
        println!("notes:    {n}");
    }
    for b in &meta.bindings {
        println!("binding:  {} <- {}", b.env, b.field);
    }
    println!(
        "created:  {}",
        secretctl_proto::duration::rfc3339(meta.created_at)
    );
    println!(
        "updated:  {}",
        secretctl_proto::duration::rfc3339(meta.updated_at)
    );
    Ok(())
}

pub async fn list(a: ListArgs, json_out: bool) -> Result<()> {
    let expiring_within_secs = match &a.expiring {
        Some(d) => Some(
            secretctl_proto::duration::parse(d)
                .map_err(|e| CliError::usage(format!("--expiring: {e}")))?
                .as_secs() as i64,
        ),
        None => None,
    };
    let (client, _) = connect::connect().await?;
    let resp = client
        .vault()
        .list(ListRequest {
            tag: a.tag.unwrap_or_default(),
            expiring_within_secs,
            prefix: a.prefix.unwrap_or_default(),
        })
        .await
        .map_err(|s| client.classify(s))?
        .into_inner();
    if json_out {
        print_json(&json!(
            resp.secrets.iter().map(meta_json).collect::<Vec<_>>()
        ));
    } else {
        let mut out = std::io::stdout().lock();
        for s in &resp.secrets {
            writeln!(out, "{}", s.key)?;
        }
    }
    Ok(())
}

pub async fn delete(a: DeleteArgs, json_out: bool) -> Result<()> {
    names::validate_key(&a.key).map_err(|e| CliError::usage(format!("'{}': {e}", a.key)))?;
    if !a.force && std::io::stdin().is_terminal() {
        eprint!("delete {}? [y/N] ", a.key);
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(CliError::error("not deleted"));
        }
    }
    let (client, _) = connect::connect().await?;
    client
        .vault()
        .delete(DeleteRequest { key: a.key.clone() })
        .await
        .map_err(|s| client.classify(s))?;
    if json_out {
        print_json(&json!({"deleted": a.key}));
    } else {
        eprintln!("deleted {}", a.key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(key: &str) -> SetArgs {
        SetArgs {
            key: key.into(),
            notes: None,
            url: None,
            tags: None,
            expires: None,
            fields: vec![],
            sensitive: vec![],
            bindings: vec![],
            template: None,
        }
    }

    fn stdin_value(v: &'static str) -> impl FnMut(&str) -> Result<Zeroizing<Vec<u8>>> {
        move |_| Ok(Zeroizing::new(v.as_bytes().to_vec()))
    }

    #[test]
    fn plain_value_from_stdin() {
        let req = build_set(&args("k"), false, 100, stdin_value("v")).unwrap();
        assert_eq!(req.fields.len(), 1);
        assert_eq!(
            (req.fields[0].name.as_str(), req.fields[0].value.as_slice()),
            ("value", &b"v"[..])
        );
        assert_eq!(req.fields[0].sensitive, None);
        assert!(req.tags.is_none() && req.expires_at.is_none() && req.bindings.is_none());
    }

    #[test]
    fn template_fields_and_flags() {
        let mut a = args("db");
        a.template = Some("login".into());
        a.fields = vec!["username=alice".into(), "password".into()];
        a.tags = Some("a, b,".into());
        a.expires = Some("1d".into());
        a.bindings = vec!["DB_PASS=password".into()];
        let req = build_set(&a, false, 100, stdin_value("pw")).unwrap();
        let f: Vec<_> = req
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive, f.value.as_slice()))
            .collect();
        assert_eq!(
            f,
            [
                ("username", Some(false), &b"alice"[..]),
                ("password", Some(true), &b"pw"[..])
            ]
        );
        assert_eq!(req.tags.unwrap().tags, ["a", "b"]);
        assert_eq!(req.expires_at, Some(100 + 86400));
        assert_eq!(req.bindings.unwrap().bindings[0].env, "DB_PASS");
    }

    #[test]
    fn missing_template_fields_without_tty_are_an_error() {
        let mut a = args("db");
        a.template = Some("database".into());
        a.fields = vec!["host=h".into()];
        let e = build_set(&a, false, 0, stdin_value("x")).unwrap_err();
        assert_eq!(e.code, crate::error::USAGE);
        assert!(e.message.contains("port"), "{}", e.message);
    }

    #[test]
    fn refusals() {
        assert!(build_set(&args("bad key"), false, 0, stdin_value("v")).is_err());
        assert!(
            build_set(&args("k"), false, 0, stdin_value("")).is_err(),
            "empty value"
        );
        let mut a = args("k");
        a.fields = vec!["a".into(), "b".into()];
        assert!(
            build_set(&a, false, 0, stdin_value("v")).is_err(),
            "two stdin fields"
        );
        let mut a = args("k");
        a.bindings = vec!["NOEQUALS".into()];
        assert!(build_set(&a, false, 0, stdin_value("v")).is_err());
        let mut a = args("k");
        a.template = Some("nope".into());
        assert!(build_set(&a, false, 0, stdin_value("v")).is_err());
        let mut a = args("k");
        a.expires = Some("never".into());
        assert_eq!(
            build_set(&a, false, 0, stdin_value("v"))
                .unwrap()
                .expires_at,
            Some(0)
        );
    }

    #[test]
    fn sensitive_flag_is_exact() {
        let mut a = args("k");
        a.fields = vec!["user=u".into(), "pass=p".into()];
        a.sensitive = vec!["pass".into()];
        let req = build_set(&a, false, 0, stdin_value("v")).unwrap();
        assert_eq!(req.sensitive_exact.unwrap().names, ["pass"]);
    }
}
