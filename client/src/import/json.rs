//! JSON imports: secretctl's own export (`{"version":1,"secrets":[…]}`,
//! see `export::json`), which keeps every field, flag, note, URL, tag,
//! expiry and binding; or a flat object `{"NAME": "value", …}` (one secret
//! per member, its value in the `value` field; numbers and booleans are
//! taken as written, `null` and `""` are skipped).
//!
//! Parsed values are wiped when their structures are dropped; serde_json's
//! own scratch buffers are not reachable.

use base64::Engine;
use secretctl_proto::v1::{Binding, BindingList, FieldInput, HostList, SetRequest, TagList};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use zeroize::Zeroize;

use super::plan::{self, Plan, Planned, What};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonField {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_base64: Option<String>,
    #[serde(default = "yes")]
    sensitive: bool,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    hint: String,
    #[serde(default)]
    proxy_hosts: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Drop for JsonField {
    fn drop(&mut self) {
        self.value.zeroize();
        self.value_base64.zeroize();
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expiry {
    Unix(i64),
    Text(String),
}

#[derive(Deserialize)]
struct JsonBinding {
    env: String,
    field: String,
}

#[derive(Deserialize)]
struct JsonSecret {
    key: String,
    fields: Vec<JsonField>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    expires_at: Option<Expiry>,
    #[serde(default)]
    bindings: Vec<JsonBinding>,
    #[serde(default)]
    proxy_hosts: Vec<String>,
    // Informational in other tools' copies of the shape; not imported.
    #[serde(default)]
    #[allow(dead_code)]
    created_at: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    updated_at: Option<serde_json::Value>,
}

impl Drop for JsonSecret {
    fn drop(&mut self) {
        self.notes.zeroize();
        self.url.zeroize();
    }
}

#[derive(Deserialize)]
struct Document {
    version: u64,
    secrets: Vec<JsonSecret>,
}

/// True when `doc` is secretctl's own shape (it has `version` and
/// `secrets`).
pub fn is_ours(doc: &serde_json::Value) -> bool {
    doc.get("version").is_some() && doc.get("secrets").is_some_and(|s| s.is_array())
}

/// Where and what kind of JSON error: serde_json's own message may quote
/// a string of the file (a value), so it is never shown.
pub fn where_(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "the file ends early",
        serde_json::error::Category::Io => "a read error",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

fn origin_of(i: usize, name: &str) -> String {
    format!("item {} '{}'", i + 1, secretctl_proto::text::shown(name))
}

/// Plans secretctl's own JSON export.
pub fn plan_ours(text: &[u8], prefix: &str, extra_tags: &[String]) -> Result<Plan, String> {
    let doc: Document = serde_json::from_slice(text)
        .map_err(|e| format!("not a secretctl JSON export: {}", where_(&e)))?;
    if doc.version != crate::export::json::VERSION {
        return Err(format!(
            "version {} of the JSON export is not known to this secretctl (it reads version {})",
            doc.version,
            crate::export::json::VERSION
        ));
    }
    let mut plan = Plan::new();
    let mut seen = std::collections::HashMap::new();
    for (i, mut s) in doc.secrets.into_iter().enumerate() {
        let origin = origin_of(i, &s.key);
        let key = plan::key_as_written(prefix, &s.key, &origin)?;
        if let Some(first) = seen.insert(key.clone(), origin.clone()) {
            return Err(format!("{origin}: the same key as {first}"));
        }
        let mut fields = Vec::new();
        for f in &mut s.fields {
            let value = match (f.value.take(), f.value_base64.take()) {
                (Some(v), None) => v.into_bytes(),
                (None, Some(mut b)) => {
                    let decoded = base64::engine::general_purpose::STANDARD.decode(b.as_bytes());
                    b.zeroize();
                    decoded.map_err(|_| {
                        format!("{origin}: field '{}': value_base64 is not base64", f.name)
                    })?
                }
                _ => {
                    return Err(format!(
                        "{origin}: field '{}' needs exactly one of value and value_base64",
                        f.name
                    ));
                }
            };
            if value.is_empty() {
                continue;
            }
            let mut input = FieldInput::new(std::mem::take(&mut f.name), value);
            input.sensitive = Some(f.sensitive);
            input.kind = std::mem::take(&mut f.kind);
            input.hint = std::mem::take(&mut f.hint);
            if !f.proxy_hosts.is_empty() {
                input.proxy_hosts = Some(HostList {
                    hosts: std::mem::take(&mut f.proxy_hosts),
                });
            }
            fields.push(input);
        }
        let mut tags = extra_tags.to_vec();
        for t in std::mem::take(&mut s.tags) {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let expires_at = match s.expires_at.take() {
            None => None,
            Some(Expiry::Unix(t)) => Some(t),
            Some(Expiry::Text(t)) => Some(
                humantime::parse_rfc3339_weak(&t)
                    .ok()
                    .and_then(|st| st.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .ok_or_else(|| {
                        format!("{origin}: expires_at is not an RFC 3339 time or unix seconds")
                    })?,
            ),
        };
        let bindings: Vec<Binding> = s
            .bindings
            .drain(..)
            .map(|b| Binding {
                env: b.env,
                field: b.field,
            })
            .collect();
        let what = if fields.is_empty() {
            What::Skip("empty: no field with a value".into())
        } else {
            What::Send(SetRequest {
                key: key.clone(),
                fields,
                notes: s.notes.take().filter(|n| !n.is_empty()),
                url: s.url.take().filter(|u| !u.is_empty()),
                tags: (!tags.is_empty()).then_some(TagList { tags }),
                expires_at,
                bindings: (!bindings.is_empty()).then_some(BindingList { bindings }),
                proxy_hosts: (!s.proxy_hosts.is_empty()).then(|| HostList {
                    hosts: std::mem::take(&mut s.proxy_hosts),
                }),
                ..Default::default()
            })
        };
        plan.entries.push(Planned {
            origin,
            key,
            what,
            note: None,
        });
    }
    Ok(plan)
}

/// The members of a JSON object in file order (serde_json's map sorts).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of NAME: value members")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Plans a flat `{"NAME": "value"}` object. A name given twice: the last
/// one wins, as in a .env file.
pub fn plan_flat(text: &[u8], prefix: &str, tags: &[String]) -> Result<Plan, String> {
    let Members(members) = serde_json::from_slice(text)
        .map_err(|e| format!("not a JSON object of NAME: value members: {}", where_(&e)))?;
    let mut plan = Plan::new();
    let mut seen = std::collections::HashMap::new();
    for (i, (name, mut value)) in members.into_iter().enumerate() {
        let origin = origin_of(i, &name);
        let key = plan::key_as_written(prefix, &name, &origin)?;
        let mut note = None;
        if let Some(j) = seen.insert(name.clone(), plan.entries.len()) {
            let earlier: &mut Planned = &mut plan.entries[j];
            earlier.what = What::Skip(format!(
                "'{}' is given again as item {}: the last one wins",
                secretctl_proto::text::shown(&name),
                i + 1
            ));
            note = Some(format!("replaces {}", earlier.origin));
        }
        let text = match &mut value {
            serde_json::Value::String(s) => std::mem::take(s),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => String::new(),
            _ => {
                return Err(format!(
                    "{origin}: the value is an object or array, not text (for secretctl's own export, pass its whole file)"
                ));
            }
        };
        let what = if text.is_empty() {
            What::Skip("empty value".into())
        } else {
            What::Send(plan::value_request(&key, text.into_bytes(), tags))
        };
        plan.entries.push(Planned {
            origin,
            key,
            what,
            note,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secretctl_proto::v1::{ExportedSecret, FieldMeta, NamedValue, SecretMeta};

    fn sent(p: &Plan) -> Vec<&SetRequest> {
        p.entries
            .iter()
            .filter_map(|e| match &e.what {
                What::Send(r) => Some(r),
                What::Skip(_) => None,
            })
            .collect()
    }

    #[test]
    fn our_export_round_trips_through_render_and_plan() {
        let secret = ExportedSecret {
            meta: Some(SecretMeta {
                key: "db/main".into(),
                fields: vec![
                    FieldMeta {
                        name: "user".into(),
                        sensitive: false,
                        kind: String::new(),
                        hint: "login name".into(),
                        ..Default::default()
                    },
                    FieldMeta {
                        name: "password".into(),
                        sensitive: true,
                        kind: "password".into(),
                        hint: String::new(),
                        ..Default::default()
                    },
                    FieldMeta {
                        name: "blob".into(),
                        sensitive: true,
                        ..Default::default()
                    },
                ],
                tags: vec!["prod".into()],
                expires_at: Some(1_900_000_000),
                bindings: vec![Binding {
                    env: "DB_PASS".into(),
                    field: "password".into(),
                }],
                ..Default::default()
            }),
            fields: vec![
                NamedValue {
                    name: "user".into(),
                    value: b"app".to_vec(),
                },
                NamedValue {
                    name: "password".into(),
                    value: "p'w\"\\\n $x ü".as_bytes().to_vec(),
                },
                NamedValue {
                    name: "blob".into(),
                    value: vec![0xff, 0x00, 0x80],
                },
            ],
            notes: Some("line1\nline2".into()),
            url: Some("https://db.example.com".into()),
            continued: false,
        };
        let mut text = Vec::new();
        crate::export::json::render(std::slice::from_ref(&secret), &mut text).unwrap();
        let s = String::from_utf8(text.clone()).unwrap();
        assert!(s.contains("\"value_base64\":\"/wCA\""), "{s}");
        let plan = plan_ours(&text, "copy/", &["imported".into()]).unwrap();
        let reqs = sent(&plan);
        assert_eq!(reqs.len(), 1);
        let r = reqs[0];
        assert_eq!(r.key, "copy/db/main");
        type Row<'a> = (&'a str, &'a [u8], Option<bool>, &'a str, &'a str);
        let fields: Vec<Row> = r
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.value.as_slice(),
                    f.sensitive,
                    f.kind.as_str(),
                    f.hint.as_str(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("user", &b"app"[..], Some(false), "", "login name"),
                (
                    "password",
                    "p'w\"\\\n $x ü".as_bytes(),
                    Some(true),
                    "password",
                    ""
                ),
                ("blob", &[0xff, 0x00, 0x80][..], Some(true), "", ""),
            ]
        );
        assert_eq!(r.notes.as_deref(), Some("line1\nline2"));
        assert_eq!(r.url.as_deref(), Some("https://db.example.com"));
        assert_eq!(r.tags.as_ref().unwrap().tags, ["imported", "prod"]);
        assert_eq!(r.expires_at, Some(1_900_000_000));
        assert_eq!(r.bindings.as_ref().unwrap().bindings[0].env, "DB_PASS");
        assert_eq!(plan.entries[0].origin, "item 1 'db/main'");
    }

    #[test]
    fn flat_objects_keep_file_order() {
        let text = br#"{"ZED": "z", "ALPHA": 42, "EMPTY": "", "ON": true, "ZED": "last"}"#;
        let plan = plan_flat(text, "", &[]).unwrap();
        let keys: Vec<(&str, bool)> = plan
            .entries
            .iter()
            .map(|e| (e.key.as_str(), matches!(e.what, What::Send(_))))
            .collect();
        assert_eq!(
            keys,
            [
                ("ZED", false),
                ("ALPHA", true),
                ("EMPTY", false),
                ("ON", true),
                ("ZED", true)
            ]
        );
        let reqs = sent(&plan);
        assert_eq!(reqs[0].fields[0].value, b"42");
        assert_eq!(reqs[2].fields[0].value, b"last");
        assert!(plan_flat(br#"{"A": {"b": 1}}"#, "", &[]).is_err());
    }

    #[test]
    fn bad_documents_are_refused_without_their_content() {
        for (text, want) in [
            (
                &br#"{"version":2,"secrets":[]}"#[..],
                "version 2 of the JSON export",
            ),
            (
                br#"{"version":1,"secrets":[{"key":"k","fields":[{"name":"f","value":"secret-value","value_base64":"eA=="}]}]}"#,
                "item 1 'k': field 'f' needs exactly one",
            ),
            (
                br#"{"version":1,"secrets":[{"key":"k","fields":[{"name":"f","value_base64":"!!secret-value"}]}]}"#,
                "item 1 'k': field 'f': value_base64 is not base64",
            ),
            (
                br#"{"version":1,"secrets":[{"key":"bad key","fields":[]}]}"#,
                "item 1 'bad key': 'bad key' is not a valid key",
            ),
        ] {
            let e = plan_ours(text, "", &[]).err().unwrap();
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains("secret-value"), "{e}");
        }
    }
}
