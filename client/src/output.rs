//! Turning daemon answers into text and JSON for people and scripts.
//! Nothing here ever sees a sensitive value.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use secretctl_proto::duration::rfc3339;
use secretctl_proto::v1::SecretMeta;
use serde_json::{Value, json};

/// `println!` that returns the write error (EPIPE when the reader went
/// away: `secretctl status | head -1`) with `?` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))?
    };
}

/// Writes one line to stdout; see [`outln!`].
pub fn write_line(args: std::fmt::Arguments<'_>) -> crate::error::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Writes `bytes` to stdout, returning write errors.
pub fn write_all(bytes: &[u8]) -> crate::error::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Prints a JSON value on one line. Write errors are returned, not a
/// panic as with `println!`, so `| head` ends quietly.
pub fn print_json(v: &Value) -> crate::error::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// RFC 3339 of unix milliseconds, or `None` for 0 (no deadline).
pub fn time_ms(ms: i64) -> Option<String> {
    (ms > 0).then(|| rfc3339(ms / 1000))
}

/// RFC 3339 of unix seconds, or `None` for an unset (0) time.
pub fn time_s(secs: Option<i64>) -> Option<String> {
    secs.filter(|s| *s > 0).map(rfc3339)
}

/// A duration in seconds for people: `1h`, `8h`, `1h 30m`.
pub fn human_secs(secs: u64) -> String {
    secretctl_proto::duration::format(Duration::from_secs(secs))
}

/// A secret's metadata as JSON (contract field names).
pub fn meta_json(m: &SecretMeta) -> Value {
    if !m.damaged.is_empty() {
        return json!({"key": m.key, "damaged": m.damaged});
    }
    json!({
        "key": m.key,
        "field_count": m.fields.len(),
        "fields": m.fields.iter().map(|f| {
            let mut o = json!({"name": f.name, "sensitive": f.sensitive});
            if !f.kind.is_empty() { o["kind"] = json!(f.kind); }
            if !f.hint.is_empty() { o["hint"] = json!(f.hint); }
            if !f.proxy_hosts.is_empty() { o["proxy_hosts"] = json!(f.proxy_hosts); }
            if !f.proxied_to.is_empty() { o["proxied_to"] = json!(f.proxied_to); }
            o
        }).collect::<Vec<_>>(),
        "tags": m.tags,
        "expires_at": time_s(m.expires_at),
        "has_notes": m.has_notes,
        "has_url": m.has_url,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "bindings": m.bindings.iter().map(|b| json!({"env": b.env, "field": b.field})).collect::<Vec<_>>(),
        "proxy_hosts": m.proxy_hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secretctl_proto::v1::{Binding, FieldMeta};

    #[test]
    fn meta_json_shape() {
        let m = SecretMeta {
            key: "db".into(),
            fields: vec![FieldMeta {
                name: "password".into(),
                sensitive: true,
                kind: "password".into(),
                hint: String::new(),
                proxy_hosts: vec![],
                proxied_to: vec!["api.example.com".into()],
            }],
            proxy_hosts: vec!["api.example.com".into()],
            tags: vec!["prod".into()],
            expires_at: Some(0),
            has_notes: true,
            has_url: false,
            created_at: 0,
            updated_at: 60,
            bindings: vec![Binding {
                env: "DB_PASS".into(),
                field: "password".into(),
            }],
            damaged: String::new(),
        };
        let j = meta_json(&m);
        assert_eq!(j["field_count"], 1);
        assert_eq!(j["fields"][0]["kind"], "password");
        assert!(j["fields"][0].get("hint").is_none());
        assert_eq!(j["updated_at"], "1970-01-01T00:01:00Z");
        assert_eq!(j["bindings"][0]["env"], "DB_PASS");
        assert_eq!(j["proxy_hosts"][0], "api.example.com");
        assert_eq!(j["fields"][0]["proxied_to"][0], "api.example.com");
        assert!(j["fields"][0].get("proxy_hosts").is_none());
        assert_eq!(j["expires_at"], Value::Null, "0 means no expiry");
        assert_eq!(time_ms(0), None);
        assert_eq!(time_ms(60_999).as_deref(), Some("1970-01-01T00:01:00Z"));
        assert_eq!(human_secs(3600), "1h");
        assert_eq!(human_secs(5400), "1h30m");
        let bad = SecretMeta {
            key: "x".into(),
            damaged: "secret 'x' is damaged".into(),
            ..Default::default()
        };
        assert_eq!(
            meta_json(&bad),
            json!({"key": "x", "damaged": "secret 'x' is damaged"})
        );
    }
}
