//! The json format of `export`: everything a secret holds, read back by
//! `import --format json` (the lossless way to move secrets between
//! vaults).
//!
//! ```text
//! {"version":1,"secrets":[
//! {"key":"db","fields":[{"name":"user","value":"app","sensitive":false},
//!   {"name":"password","value":"…","sensitive":true,"kind":"password"}],
//!  "notes":"…","url":"https://…","tags":["prod"],
//!  "expires_at":"2030-01-01T00:00:00Z",
//!  "bindings":[{"env":"DB_PASSWORD","field":"password"}]}
//! ]}
//! ```
//!
//! One secret per line. Values are JSON strings; a value that is not UTF-8
//! text is written as `"value_base64"` (standard alphabet, padded) instead
//! of `"value"`. `kind`, `hint`, `notes`, `url`, `tags`, `expires_at`
//! (RFC 3339) and `bindings` are left out when empty.

use base64::Engine;
use secretctl_proto::v1::ExportedSecret;
use serde::Serialize;
use zeroize::Zeroizing;

/// The `version` this module writes and `import` reads.
pub const VERSION: u64 = 1;

#[derive(Serialize)]
struct Field<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<&'a str>,
    sensitive: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    hint: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    proxy_hosts: &'a [String],
}

#[derive(Serialize)]
struct Binding<'a> {
    env: &'a str,
    field: &'a str,
}

#[derive(Serialize)]
struct Secret<'a> {
    key: &'a str,
    fields: Vec<Field<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bindings: Vec<Binding<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    proxy_hosts: &'a [String],
}

/// Most bytes the JSON of `s` can take: every byte of text escaped as
/// `\u00XX` (6 bytes), plus the structure.
fn bound(s: &ExportedSecret) -> usize {
    let meta = s.meta.as_ref();
    let text = |t: &str| t.len() * 6 + 16;
    let fields: usize = s
        .fields
        .iter()
        .map(|f| text(&f.name) + f.value.len() * 6 + 64)
        .sum();
    let labels: usize = meta
        .map(|m| {
            m.fields
                .iter()
                .map(|f| {
                    text(&f.kind)
                        + text(&f.hint)
                        + f.proxy_hosts.iter().map(|h| text(h)).sum::<usize>()
                })
                .sum::<usize>()
                + m.tags.iter().map(|t| text(t)).sum::<usize>()
                + m.bindings
                    .iter()
                    .map(|b| text(&b.env) + text(&b.field) + 32)
                    .sum::<usize>()
                + m.proxy_hosts.iter().map(|h| text(h)).sum::<usize>()
                + text(&m.key)
        })
        .unwrap_or(0);
    fields + labels + s.notes.as_deref().map_or(0, text) + s.url.as_deref().map_or(0, text) + 256
}

/// The whole JSON document of `secrets`, into `out` (allocated once).
pub fn render(secrets: &[ExportedSecret], out: &mut Vec<u8>) -> Result<(), String> {
    out.reserve_exact(64 + secrets.iter().map(bound).sum::<usize>());
    out.extend_from_slice(format!("{{\"version\":{VERSION},\"secrets\":[\n").as_bytes());
    for (i, s) in secrets.iter().enumerate() {
        let meta = s
            .meta
            .as_ref()
            .ok_or("the daemon sent a secret without its metadata")?;
        // Encoded values of non-UTF-8 fields, wiped when done.
        let encoded: Vec<Option<Zeroizing<String>>> = s
            .fields
            .iter()
            .map(|f| {
                std::str::from_utf8(&f.value).is_err().then(|| {
                    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&f.value))
                })
            })
            .collect();
        let fields = s
            .fields
            .iter()
            .zip(&encoded)
            .map(|(f, enc)| {
                let about = meta.fields.iter().find(|m| m.name == f.name);
                Field {
                    name: &f.name,
                    value: std::str::from_utf8(&f.value).ok(),
                    value_base64: enc.as_ref().map(|e| e.as_str()),
                    // A field the metadata does not describe stays hidden.
                    sensitive: about.is_none_or(|m| m.sensitive),
                    kind: about.map_or("", |m| &m.kind),
                    hint: about.map_or("", |m| &m.hint),
                    proxy_hosts: about.map_or(&[], |m| &m.proxy_hosts),
                }
            })
            .collect();
        let secret = Secret {
            key: &meta.key,
            fields,
            notes: s.notes.as_deref(),
            url: s.url.as_deref(),
            tags: &meta.tags,
            expires_at: meta
                .expires_at
                .filter(|e| *e > 0)
                .map(secretctl_proto::duration::rfc3339),
            bindings: meta
                .bindings
                .iter()
                .map(|b| Binding {
                    env: &b.env,
                    field: &b.field,
                })
                .collect(),
            proxy_hosts: &meta.proxy_hosts,
        };
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut *out, &secret).map_err(|e| e.to_string())?;
    }
    out.extend_from_slice(b"\n]}\n");
    Ok(())
}
