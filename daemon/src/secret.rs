//! The secret model: limits, validation of everything a client sends, and
//! the upsert rules of `set`.
//!
//! Pure: no I/O and no crypto of its own. Sealing is passed in, so the rules
//! can be tested without a vault.
//!
//! Invariants: a request that breaks any rule is refused as a whole before
//! anything is sealed or stored; error messages name the field or key, never
//! a value.

use secretctl_proto::names;
use secretctl_proto::v1::{self, SetRequest};

use crate::store::{BindingRecord, FieldRecord, SealedRecord, SecretRecord, SecretSummary};

/// Largest value of one field.
pub const MAX_VALUE: usize = 1024 * 1024;
/// Most fields in one secret.
pub const MAX_FIELDS: usize = 100;
/// Most tags on one secret.
pub const MAX_TAGS: usize = 10;
/// Longest tag.
pub const MAX_TAG: usize = 64;
/// Longest notes, in bytes.
pub const MAX_NOTES: usize = 10 * 1024;
/// Longest URL, in bytes.
pub const MAX_URL: usize = 2048;
/// Longest field name.
pub const MAX_FIELD_NAME: usize = 64;
/// Longest kind or hint text.
pub const MAX_LABEL: usize = 256;
/// Most bindings on one secret.
pub const MAX_BINDINGS: usize = 100;
pub use secretctl_proto::rules::DEFAULT_FIELD;

/// A request broke a rule; the text says which and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

/// Where a sealed value goes; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    Field(&'a str),
    Notes,
    Url,
}

/// Checks a key name.
pub fn check_key(key: &str) -> Result<(), Invalid> {
    names::validate_key(key).map_err(|e| Invalid(e.to_string()))
}

/// Checks a field name: 1–64 bytes of `[A-Za-z0-9_.-]`, not starting with `-`.
pub fn check_field_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FIELD_NAME
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "invalid field name {name:?}: use 1-64 letters, digits, '_', '-' or '.'"
        ))
    }
}

fn check_value(field: &str, value: &[u8]) -> Result<(), Invalid> {
    if value.is_empty() {
        return invalid(format!("value of field '{field}' is empty"));
    }
    if value.len() > MAX_VALUE {
        return invalid(format!(
            "value of field '{field}' is {} bytes: the limit is 1 MiB",
            value.len()
        ));
    }
    if value.contains(&0) {
        return invalid(format!(
            "value of field '{field}' contains a NUL byte, which no environment variable can carry: base64-encode binary data"
        ));
    }
    Ok(())
}

fn check_label(what: &str, text: &str) -> Result<(), Invalid> {
    if text.len() > MAX_LABEL || text.chars().any(char::is_control) {
        return invalid(format!(
            "{what} must be at most {MAX_LABEL} bytes without control characters"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), Invalid> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "invalid tag {tag:?}: use 1-64 letters, digits, '_' or '-'"
        ))
    }
}

fn check_notes(notes: &str) -> Result<(), Invalid> {
    if notes.len() > MAX_NOTES {
        return invalid(format!(
            "notes are {} bytes: the limit is 10 KiB",
            notes.len()
        ));
    }
    if notes.contains('\0') {
        return invalid("notes contain a NUL byte");
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), Invalid> {
    if url.len() > MAX_URL {
        return invalid(format!("url is {} bytes: the limit is 2048", url.len()));
    }
    let scheme_ok = ["http://", "https://"].iter().any(|s| {
        url.len() > s.len()
            && url
                .get(..s.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(s))
    });
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("url must be an http:// or https:// address without spaces");
    }
    Ok(())
}

/// Checks a `set` request against the current record (if any): every rule,
/// on the record the request would produce, before anything is sealed.
pub fn check_set(current: Option<&SecretRecord>, req: &SetRequest) -> Result<(), Invalid> {
    check_key(&req.key)?;
    if req.create_only && current.is_some() {
        return invalid(format!(
            "secret '{}' already exists: edit it instead",
            req.key
        ));
    }
    let mut new_names = std::collections::HashSet::new();
    for f in &req.fields {
        check_field_name(&f.name)?;
        if !new_names.insert(f.name.as_str()) {
            return invalid(format!("field '{}' given twice", f.name));
        }
        check_value(&f.name, &f.value)?;
        check_label("kind", &f.kind)?;
        check_label("hint", &f.hint)?;
        if let Some(h) = &f.proxy_hosts {
            check_proxy_hosts(&h.hosts)?;
        }
    }
    if let Some(h) = &req.proxy_hosts {
        check_proxy_hosts(&h.hosts)?;
    }
    // The field names the stored record will have.
    let old = current.map(|r| r.fields.as_slice()).unwrap_or_default();
    let removed = removed_fields(req);
    for (i, name) in removed.iter().enumerate() {
        if !old.iter().any(|f| f.name == *name) {
            return invalid(format!(
                "secret '{}' has no field '{name}' to remove",
                req.key
            ));
        }
        if new_names.contains(name) || removed[..i].contains(name) {
            return invalid(format!("field '{name}' is removed and also given"));
        }
    }
    let added = new_names
        .iter()
        .filter(|n| !old.iter().any(|f| f.name == **n))
        .count();
    let has = |name: &str| {
        new_names.contains(name) || (old.iter().any(|f| f.name == name) && !removed.contains(&name))
    };
    if req.bindings.is_none()
        && let Some(b) = current
            .into_iter()
            .flat_map(|c| &c.bindings)
            .find(|b| removed.contains(&b.field.as_str()))
    {
        return invalid(format!(
            "binding {}={} names field '{}', which is removed: change the bindings too",
            b.env, b.field, b.field
        ));
    }
    if old.len() - removed.len() + added == 0 {
        return invalid(format!(
            "secret '{}' needs at least one field with a value",
            req.key
        ));
    }
    if old.len() - removed.len() + added > MAX_FIELDS {
        return invalid(format!("a secret has at most {MAX_FIELDS} fields"));
    }
    if let Some(exact) = &req.sensitive_exact
        && let Some(name) = exact.names.iter().find(|n| !has(n))
    {
        return invalid(format!(
            "--sensitive names field '{name}', which this secret does not have"
        ));
    }
    if let Some(notes) = &req.notes {
        check_notes(notes)?;
    }
    if let Some(url) = req.url.as_deref().filter(|u| !u.is_empty()) {
        check_url(url)?;
    }
    if let Some(tags) = &req.tags {
        let mut distinct: Vec<&str> = Vec::new();
        for t in &tags.tags {
            check_tag(t)?;
            if !distinct.contains(&t.as_str()) {
                distinct.push(t);
            }
        }
        if distinct.len() > MAX_TAGS {
            return invalid(format!("a secret has at most {MAX_TAGS} tags"));
        }
    }
    if req
        .expires_at
        .is_some_and(|e| !(0..=secretctl_proto::duration::MAX_RFC3339_SECS).contains(&e))
    {
        return invalid("expiry must be a time between 1970 and the end of the year 9999");
    }
    for bindings in req.bindings.iter().chain(&req.default_bindings) {
        if bindings.bindings.len() > MAX_BINDINGS {
            return invalid(format!("a secret has at most {MAX_BINDINGS} bindings"));
        }
        for (i, b) in bindings.bindings.iter().enumerate() {
            names::validate_env_name(&b.env).map_err(|e| Invalid(format!("binding: {e}")))?;
            if !has(&b.field) {
                return invalid(format!(
                    "binding {}={} names a field this secret does not have",
                    b.env, b.field
                ));
            }
            if bindings.bindings[..i].iter().any(|x| x.env == b.env) {
                return invalid(format!("binding {} given twice", b.env));
            }
        }
    }
    Ok(())
}

fn check_proxy_hosts(hosts: &[String]) -> Result<(), Invalid> {
    secretctl_proto::proxy_hosts::parse_all(hosts)
        .map(|_| ())
        .map_err(Invalid)
}

/// The canonical form of hosts [`check_proxy_hosts`] accepted.
fn canonical_hosts(hosts: &[String]) -> Vec<String> {
    secretctl_proto::proxy_hosts::parse_all(hosts).unwrap_or_default()
}

/// The hosts a field's value is proxied to in a run (contract §12): its
/// own, or the secret's when it is sensitive (a user name injected beside
/// a token is not a credential). Empty: it is injected as it is.
pub fn proxied_to<'a>(
    secret_hosts: &'a [String],
    own: &'a [String],
    sensitive: bool,
) -> &'a [String] {
    if !own.is_empty() {
        own
    } else if sensitive {
        secret_hosts
    } else {
        &[]
    }
}

/// The names a request removes.
fn removed_fields(req: &SetRequest) -> Vec<&str> {
    req.remove_fields
        .iter()
        .flat_map(|r| &r.names)
        .map(String::as_str)
        .collect()
}

/// Applies a `set` request to the current record (if any): checks it whole
/// ([`check_set`]), then seals the new values with `seal`. Returns the new
/// record and whether it was created. A sealing failure is `seal`'s own
/// error (a system fault, not bad input).
pub fn apply_set<E: From<Invalid>>(
    current: Option<SecretRecord>,
    req: &SetRequest,
    now: i64,
    mut seal: impl FnMut(Slot<'_>, &[u8]) -> Result<SealedRecord, E>,
) -> Result<(SecretRecord, bool), E> {
    check_set(current.as_ref(), req)?;
    let created = current.is_none();
    let mut rec = current.unwrap_or_else(|| SecretRecord {
        created_at: now,
        ..Default::default()
    });
    let removed = removed_fields(req);
    rec.fields.retain(|f| !removed.contains(&f.name.as_str()));
    for f in &req.fields {
        let sealed = seal(Slot::Field(&f.name), &f.value)?;
        match rec.fields.iter_mut().find(|x| x.name == f.name) {
            Some(existing) => {
                existing.value = Some(sealed);
                if let Some(s) = f.sensitive {
                    existing.sensitive = s;
                }
                if !f.kind.is_empty() {
                    existing.kind = f.kind.clone();
                }
                if !f.hint.is_empty() {
                    existing.hint = f.hint.clone();
                }
                if let Some(h) = &f.proxy_hosts {
                    existing.proxy_hosts = canonical_hosts(&h.hosts);
                }
            }
            None => rec.fields.push(FieldRecord {
                name: f.name.clone(),
                sensitive: f.sensitive.unwrap_or(true),
                kind: f.kind.clone(),
                hint: f.hint.clone(),
                value: Some(sealed),
                proxy_hosts: f
                    .proxy_hosts
                    .as_ref()
                    .map(|h| canonical_hosts(&h.hosts))
                    .unwrap_or_default(),
            }),
        }
    }
    if let Some(h) = &req.proxy_hosts {
        rec.proxy_hosts = canonical_hosts(&h.hosts);
    }
    if let Some(exact) = &req.sensitive_exact {
        for f in &mut rec.fields {
            f.sensitive = exact.names.contains(&f.name);
        }
    }
    if let Some(notes) = &req.notes {
        rec.notes = match notes.as_str() {
            "" => None,
            text => Some(seal(Slot::Notes, text.as_bytes())?),
        };
    }
    if let Some(url) = &req.url {
        rec.url = match url.as_str() {
            "" => None,
            text => Some(seal(Slot::Url, text.as_bytes())?),
        };
    }
    if let Some(tags) = &req.tags {
        rec.tags.clear();
        for t in &tags.tags {
            if !rec.tags.contains(t) {
                rec.tags.push(t.clone());
            }
        }
    }
    if let Some(exp) = req.expires_at {
        rec.expires_at = (exp != 0).then_some(exp);
    }
    let chosen = match (&req.bindings, &req.default_bindings) {
        (Some(b), _) => Some(b),
        (None, Some(d)) if rec.bindings.is_empty() => Some(d),
        _ => None,
    };
    if let Some(bindings) = chosen {
        rec.bindings = bindings
            .bindings
            .iter()
            .map(|b| BindingRecord {
                env: b.env.clone(),
                field: b.field.clone(),
            })
            .collect();
    }
    rec.updated_at = now;
    Ok((rec, created))
}

/// The field `get` reads when none is named: `value`, or the only field.
pub fn default_field(rec: &SecretRecord) -> Option<&FieldRecord> {
    secretctl_proto::rules::default_field(&rec.fields, |f| &f.name)
}

/// True when the secret has expired at `now`.
pub fn is_expired(rec: &SecretRecord, now: i64) -> bool {
    rec.expires_at.is_some_and(|e| e <= now)
}

/// Metadata of a record, as sent on the wire: never a value.
pub fn meta(key: &str, rec: &SecretRecord) -> v1::SecretMeta {
    v1::SecretMeta {
        key: key.to_string(),
        fields: rec
            .fields
            .iter()
            .map(|f| v1::FieldMeta {
                name: f.name.clone(),
                sensitive: f.sensitive,
                kind: f.kind.clone(),
                hint: f.hint.clone(),
                proxy_hosts: f.proxy_hosts.clone(),
                proxied_to: proxied_to(&rec.proxy_hosts, &f.proxy_hosts, f.sensitive).to_vec(),
            })
            .collect(),
        tags: rec.tags.clone(),
        expires_at: rec.expires_at,
        has_notes: rec.notes.is_some(),
        has_url: rec.url.is_some(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        bindings: rec
            .bindings
            .iter()
            .map(|b| v1::Binding {
                env: b.env.clone(),
                field: b.field.clone(),
            })
            .collect(),
        damaged: String::new(),
        proxy_hosts: rec.proxy_hosts.clone(),
    }
}

/// Metadata of a listed record (moves its strings; no value was decoded).
pub fn summary_meta(key: &str, rec: SecretSummary) -> v1::SecretMeta {
    v1::SecretMeta {
        key: key.to_string(),
        fields: rec
            .fields
            .into_iter()
            .map(|f| v1::FieldMeta {
                proxied_to: proxied_to(&rec.proxy_hosts, &f.proxy_hosts, f.sensitive).to_vec(),
                name: f.name,
                sensitive: f.sensitive,
                kind: f.kind,
                hint: f.hint,
                proxy_hosts: f.proxy_hosts,
            })
            .collect(),
        tags: rec.tags,
        expires_at: rec.expires_at,
        has_notes: rec.notes.is_some(),
        has_url: rec.url.is_some(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        bindings: rec
            .bindings
            .into_iter()
            .map(|b| v1::Binding {
                env: b.env,
                field: b.field,
            })
            .collect(),
        damaged: String::new(),
        proxy_hosts: rec.proxy_hosts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::{BindingList, FieldInput, FieldNames, TagList};

    fn fake_seal(slot: Slot<'_>, v: &[u8]) -> Result<SealedRecord, Invalid> {
        // Sealing happens only after every check passed.
        assert!(!v.contains(&0), "sealed a value that check_set refuses");
        Ok(SealedRecord {
            nonce: format!("{slot:?}").into_bytes(),
            ciphertext: v.to_vec(),
        })
    }

    fn field(name: &str, v: &str) -> FieldInput {
        FieldInput::new(name, v.as_bytes().to_vec())
    }

    fn set(key: &str, fields: Vec<FieldInput>) -> SetRequest {
        SetRequest {
            key: key.into(),
            fields,
            ..Default::default()
        }
    }

    #[test]
    fn new_fields_are_sensitive_and_upsert_keeps_metadata() {
        let mut req = set(
            "db",
            vec![field("user", "admin"), field("password", "pw-123456")],
        );
        req.tags = Some(TagList {
            tags: vec!["prod".into()],
        });
        req.notes = Some("rotate monthly".into());
        let (rec, created) = apply_set(None, &req, 10, fake_seal).unwrap();
        assert!(created);
        assert!(rec.fields.iter().all(|f| f.sensitive));
        assert_eq!(rec.created_at, 10);

        let req2 = set("db", vec![field("password", "pw-new-654321")]);
        let (rec2, created2) = apply_set(Some(rec), &req2, 20, fake_seal).unwrap();
        assert!(!created2);
        assert_eq!(rec2.fields.len(), 2);
        assert_eq!(rec2.tags, ["prod"]);
        assert!(rec2.notes.is_some());
        assert_eq!((rec2.created_at, rec2.updated_at), (10, 20));
    }

    #[test]
    fn sensitive_exact_sets_exactly_the_named_fields() {
        let mut req = set("db", vec![field("user", "admin"), field("password", "pw")]);
        req.sensitive_exact = Some(FieldNames {
            names: vec!["password".into()],
        });
        let (rec, _) = apply_set(None, &req, 1, fake_seal).unwrap();
        let flags: Vec<_> = rec
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive))
            .collect();
        assert_eq!(flags, [("user", false), ("password", true)]);

        req.sensitive_exact = Some(FieldNames {
            names: vec!["nope".into()],
        });
        assert!(apply_set(None, &req, 1, fake_seal).is_err());
    }

    #[test]
    fn refuses_bad_input() {
        let big = "x".repeat(MAX_VALUE + 1);
        let cases = [
            set("bad key", vec![field("value", "v")]),
            set("k", vec![field("value", "")]),
            set("k", vec![field("value", &big)]),
            set("k", vec![field("value", "a\0b")]),
            set("k", vec![field("bad name", "v")]),
            set("k", vec![field("value", "a"), field("value", "b")]),
            set("k", vec![]),
        ];
        for req in cases {
            assert!(apply_set(None, &req, 1, fake_seal).is_err(), "{req:?}");
        }
        let mut tags = set("k", vec![field("value", "v")]);
        tags.tags = Some(TagList {
            tags: (0..11).map(|i| format!("t{i}")).collect(),
        });
        assert!(apply_set(None, &tags, 1, fake_seal).is_err());
        tags.tags = Some(TagList {
            tags: vec!["has space".into()],
        });
        assert!(apply_set(None, &tags, 1, fake_seal).is_err());

        let mut url = set("k", vec![field("value", "v")]);
        url.url = Some("ftp://x".into());
        assert!(apply_set(None, &url, 1, fake_seal).is_err());
        for odd in ["https:/é", "é", "httpé://x", "https://"] {
            url.url = Some(odd.into());
            assert!(apply_set(None, &url, 1, fake_seal).is_err(), "{odd}");
        }
        url.url = Some("https://example.com/x".into());
        assert!(apply_set(None, &url, 1, fake_seal).is_ok());

        let mut notes = set("k", vec![field("value", "v")]);
        notes.notes = Some("n".repeat(MAX_NOTES + 1));
        assert!(apply_set(None, &notes, 1, fake_seal).is_err());
    }

    #[test]
    fn nothing_is_sealed_when_any_rule_fails() {
        let mut req = set("k", vec![field("value", "v"), field("other", "w")]);
        req.url = Some("ftp://not-http".into());
        let mut sealed = 0;
        let r = apply_set(None, &req, 1, |slot, v| {
            sealed += 1;
            fake_seal(slot, v)
        });
        assert!(r.is_err());
        assert_eq!(
            sealed, 0,
            "a value was sealed before the request was refused"
        );
    }

    #[test]
    fn bindings_and_sensitive_may_name_fields_already_stored() {
        let (rec, _) = apply_set(
            None,
            &set("db", vec![field("user", "u"), field("pw", "p")]),
            1,
            fake_seal,
        )
        .unwrap();
        let mut req = set("db", vec![]);
        req.bindings = Some(BindingList {
            bindings: vec![v1::Binding {
                env: "DB_PW".into(),
                field: "pw".into(),
            }],
        });
        req.sensitive_exact = Some(FieldNames {
            names: vec!["pw".into()],
        });
        let (rec, created) = apply_set(Some(rec), &req, 2, fake_seal).unwrap();
        assert!(!created);
        assert_eq!(rec.bindings.len(), 1);
        assert!(!rec.fields[0].sensitive && rec.fields[1].sensitive);
    }

    #[test]
    fn fields_are_removed_only_when_nothing_is_left_pointing_at_them() {
        let mut first = set(
            "db",
            vec![field("user", "u"), field("pw", "p"), field("old", "o")],
        );
        let bind = |pairs: &[(&str, &str)]| {
            Some(BindingList {
                bindings: pairs
                    .iter()
                    .map(|(e, f)| v1::Binding {
                        env: (*e).into(),
                        field: (*f).into(),
                    })
                    .collect(),
            })
        };
        first.bindings = bind(&[("DB_USER", "user"), ("DB_OLD", "old")]);
        let (rec, _) = apply_set(None, &first, 1, fake_seal).unwrap();
        let remove = |names: &[&str]| {
            let mut r = set("db", vec![]);
            r.remove_fields = Some(FieldNames {
                names: names.iter().map(|n| n.to_string()).collect(),
            });
            r
        };
        // A kept binding names the field: refused, whole.
        let e = apply_set(Some(rec.clone()), &remove(&["old"]), 2, fake_seal).unwrap_err();
        assert!(e.0.contains("DB_OLD=old"), "{e}");
        // With new bindings it goes, value and all.
        let mut req = remove(&["old"]);
        req.bindings = bind(&[("DB_USER", "user")]);
        let (after, _) = apply_set(Some(rec.clone()), &req, 2, fake_seal).unwrap();
        let names: Vec<&str> = after.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["user", "pw"]);
        assert_eq!(after.bindings.len(), 1);
        // A field it does not have, one given twice or also set, the last
        // field, or a binding to a removed field: refused.
        let mut both = remove(&["pw"]);
        both.fields = vec![field("pw", "new")];
        let mut bound_to_removed = remove(&["pw"]);
        bound_to_removed.bindings = bind(&[("DB_PW", "pw")]);
        for bad in [
            remove(&["nope"]),
            remove(&["pw", "pw"]),
            both,
            bound_to_removed,
        ] {
            assert!(
                apply_set(Some(rec.clone()), &bad, 2, fake_seal).is_err(),
                "{bad:?}"
            );
        }
        let (one, _) = apply_set(None, &set("k", vec![field("value", "v")]), 1, fake_seal).unwrap();
        let mut last = remove(&["value"]);
        last.key = "k".into();
        assert!(
            apply_set(Some(one), &last, 2, fake_seal).is_err(),
            "no field left"
        );
    }

    #[test]
    fn create_only_refuses_an_existing_key() {
        let mut req = set("k", vec![field("value", "v")]);
        req.create_only = true;
        let (rec, created) = apply_set(None, &req, 1, fake_seal).unwrap();
        assert!(created);
        let e = apply_set(Some(rec), &req, 2, fake_seal).unwrap_err();
        assert!(e.0.contains("already exists"), "{e}");
    }

    #[test]
    fn bindings_must_name_fields_and_valid_env_names() {
        let mut req = set("db", vec![field("password", "pw")]);
        req.bindings = Some(BindingList {
            bindings: vec![v1::Binding {
                env: "DB_PASS".into(),
                field: "password".into(),
            }],
        });
        assert!(apply_set(None, &req, 1, fake_seal).is_ok());
        for (env, f) in [
            ("DB_PASS", "missing"),
            ("lower", "password"),
            ("LD_PRELOAD", "password"),
        ] {
            req.bindings = Some(BindingList {
                bindings: vec![v1::Binding {
                    env: env.into(),
                    field: f.into(),
                }],
            });
            assert!(apply_set(None, &req, 1, fake_seal).is_err(), "{env}={f}");
        }
    }

    #[test]
    fn summary_decodes_the_same_metadata() {
        let mut req = set("db", vec![field("user", "admin"), field("password", "pw")]);
        req.notes = Some("n".into());
        req.tags = Some(TagList {
            tags: vec!["t".into()],
        });
        req.bindings = Some(BindingList {
            bindings: vec![v1::Binding {
                env: "P".into(),
                field: "password".into(),
            }],
        });
        let (rec, _) = apply_set(None, &req, 5, fake_seal).unwrap();
        let bytes = prost::Message::encode_to_vec(&rec);
        let summary: SecretSummary = prost::Message::decode(bytes.as_slice()).unwrap();
        assert_eq!(summary_meta("db", summary), meta("db", &rec));
    }

    #[test]
    fn expiry_and_default_field() {
        let mut req = set("k", vec![field("value", "v")]);
        req.expires_at = Some(100);
        let (rec, _) = apply_set(None, &req, 1, fake_seal).unwrap();
        assert!(!is_expired(&rec, 99));
        assert!(is_expired(&rec, 100));
        req.expires_at = Some(0);
        let (rec, _) = apply_set(Some(rec), &req, 2, fake_seal).unwrap();
        assert_eq!(rec.expires_at, None);
        assert_eq!(default_field(&rec).unwrap().name, "value");
        let (one, _) = apply_set(None, &set("k", vec![field("token", "t")]), 1, fake_seal).unwrap();
        assert_eq!(default_field(&one).unwrap().name, "token");
        let (two, _) = apply_set(
            None,
            &set("k", vec![field("a", "1"), field("b", "2")]),
            1,
            fake_seal,
        )
        .unwrap();
        assert!(default_field(&two).is_none());
    }

    #[test]
    fn expiry_is_between_1970_and_the_year_9999() {
        // Found by fuzzing (fuzz/vault_record): a later expiry could not be
        // shown (RFC 3339 ends with the year 9999) and made listing panic.
        let max = secretctl_proto::duration::MAX_RFC3339_SECS;
        let mut req = set("k", vec![field("value", "v")]);
        for bad in [-1, max + 1, i64::MAX] {
            req.expires_at = Some(bad);
            let e = check_set(None, &req).unwrap_err();
            assert!(e.0.contains("year 9999"), "{e}");
        }
        req.expires_at = Some(max);
        let (rec, _) = apply_set(None, &req, 1, fake_seal).unwrap();
        assert_eq!(
            secretctl_proto::duration::rfc3339(rec.expires_at.unwrap()),
            "9999-12-31T23:59:59Z"
        );
    }
}
