//! Vault records and the `set` rules.
//!
//! - Stored bytes: `SecretRecord` and `SecretSummary` decode from any bytes
//!   without panicking; whatever decodes as a record also decodes as a
//!   summary with the same `mac_body()` (listing and reading check the
//!   same MAC), and re-encodes to itself.
//! - `check_set` / `apply_set` on fuzz-built requests: a request
//!   `check_set` refuses makes `apply_set` fail before sealing anything;
//!   one it accepts is applied, and the record it produces from a valid
//!   record keeps every rule (1..=100 distinct valid fields, each with a
//!   value; at most 10 distinct tags; bindings to existing fields, each env
//!   once); its metadata formats as the clients show it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use secretctl_proto::v1::{
    Binding, BindingList, FieldInput, FieldNames, HostList, SetRequest, TagList,
};
use secretctld::secret::{self, Invalid, Slot};
use secretctld::store::{SealedRecord, SecretRecord, SecretSummary};

const NAMES: [&str; 8] = [
    "value", "password", "user", "host", "a.b-c_d", "-x", "", "x y",
];
const KEYS: [&str; 6] = ["db/password", "a", "aws/access_key", "/x", "a//b", "k*"];
const ENVS: [&str; 5] = ["PGPASSWORD", "A", "1X", "A=B", ""];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Raw(String),
}

impl Name {
    fn of(&self, list: &[&str]) -> String {
        match self {
            Name::Known(i) => list[*i as usize % list.len()].to_string(),
            Name::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Field {
    name: Name,
    value: Vec<u8>,
    sensitive: Option<bool>,
    kind: String,
    hint: String,
    proxy_hosts: Option<Vec<Name>>,
}

#[derive(Arbitrary, Debug)]
struct Set {
    key: Name,
    fields: Vec<Field>,
    sensitive_exact: Option<Vec<Name>>,
    notes: Option<String>,
    url: Option<String>,
    tags: Option<Vec<String>>,
    expires_at: Option<i64>,
    bindings: Option<Vec<(Name, Name)>>,
    default_bindings: Option<Vec<(Name, Name)>>,
    proxy_hosts: Option<Vec<Name>>,
    remove_fields: Option<Vec<Name>>,
    create_only: bool,
}

/// Proxy host patterns: valid ones, near misses, or anything.
const HOSTS: [&str; 6] = [
    "api.github.com",
    "*.example.com",
    "localhost",
    "*.com",
    "a..b",
    "API.Example.COM.",
];

fn host_list(h: &[Name]) -> HostList {
    HostList {
        hosts: h.iter().map(|n| n.of(&HOSTS)).collect(),
    }
}

fn binding_list(b: &[(Name, Name)]) -> BindingList {
    BindingList {
        bindings: b
            .iter()
            .map(|(e, f)| Binding {
                env: e.of(&ENVS),
                field: f.of(&NAMES),
            })
            .collect(),
    }
}

impl Set {
    fn request(&self) -> SetRequest {
        SetRequest {
            key: self.key.of(&KEYS),
            fields: self
                .fields
                .iter()
                .map(|f| FieldInput {
                    name: f.name.of(&NAMES),
                    value: f.value.clone(),
                    sensitive: f.sensitive,
                    kind: f.kind.clone(),
                    hint: f.hint.clone(),
                    proxy_hosts: f.proxy_hosts.as_deref().map(host_list),
                })
                .collect(),
            sensitive_exact: self.sensitive_exact.as_ref().map(|n| FieldNames {
                names: n.iter().map(|n| n.of(&NAMES)).collect(),
            }),
            notes: self.notes.clone(),
            url: self.url.clone(),
            tags: self.tags.as_ref().map(|t| TagList { tags: t.clone() }),
            expires_at: self.expires_at,
            bindings: self.bindings.as_deref().map(binding_list),
            default_bindings: self.default_bindings.as_deref().map(binding_list),
            remove_fields: self.remove_fields.as_ref().map(|n| FieldNames {
                names: n.iter().map(|n| n.of(&NAMES)).collect(),
            }),
            create_only: self.create_only,
            proxy_hosts: self.proxy_hosts.as_deref().map(host_list),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    stored: Vec<u8>,
    first: Option<Set>,
    second: Set,
    now: i64,
}

/// `apply_set` with a sealer that counts; checks refusal seals nothing.
fn apply(current: Option<SecretRecord>, req: &SetRequest, now: i64) -> Option<SecretRecord> {
    let verdict = secret::check_set(current.as_ref(), req);
    let mut sealed = 0;
    let out = secret::apply_set::<Invalid>(current, req, now, |slot, value| {
        sealed += 1;
        if let Slot::Field(name) = slot {
            assert!(req.fields.iter().any(|f| f.name == name));
        }
        Ok(SealedRecord {
            nonce: Vec::new(),
            ciphertext: value.to_vec(),
        })
    });
    match (verdict, out) {
        (Err(e), Err(again)) => {
            assert_eq!(sealed, 0, "a refused request sealed {sealed} values");
            assert_eq!(e, again);
            None
        }
        (Ok(()), Ok((rec, _))) => Some(rec),
        (v, o) => panic!(
            "check_set said {v:?} but apply_set said {:?}",
            o.map(|_| ())
        ),
    }
}

/// Every rule a stored record keeps.
fn check_valid(rec: &SecretRecord) {
    assert!(!rec.fields.is_empty() && rec.fields.len() <= secret::MAX_FIELDS);
    // Proxy hosts are stored canonical: each parses to itself.
    for h in rec.proxy_hosts.iter().chain(rec.fields.iter().flat_map(|f| &f.proxy_hosts)) {
        assert_eq!(secretctl_proto::proxy_hosts::parse(h).as_deref(), Ok(h.as_str()));
    }
    for (i, f) in rec.fields.iter().enumerate() {
        secret::check_field_name(&f.name).unwrap();
        assert!(f.value.is_some(), "field {} has no value", f.name);
        assert!(
            rec.fields[..i].iter().all(|g| g.name != f.name),
            "duplicate field"
        );
    }
    assert!(rec.tags.len() <= secret::MAX_TAGS);
    for (i, t) in rec.tags.iter().enumerate() {
        assert!(!rec.tags[..i].contains(t), "duplicate tag");
    }
    assert!(rec.bindings.len() <= secret::MAX_BINDINGS);
    for (i, b) in rec.bindings.iter().enumerate() {
        assert!(
            rec.fields.iter().any(|f| f.name == b.field),
            "binding to nothing"
        );
        assert!(
            rec.bindings[..i].iter().all(|c| c.env != b.env),
            "duplicate env"
        );
    }
    assert!(rec.expires_at.is_none_or(|e| e > 0));
}

/// Decoding stored bytes, as `get` and `list` do.
fn decode(bytes: &[u8]) -> Option<SecretRecord> {
    let summary = SecretSummary::decode(bytes);
    let rec = SecretRecord::decode(bytes).ok()?;
    let summary = summary.expect("a record that decodes also decodes as a summary");
    assert_eq!(
        rec.mac_body(),
        summary.mac_body(),
        "list and get see other metadata"
    );
    let again = SecretRecord::decode(rec.encode_to_vec().as_slice()).unwrap();
    assert_eq!(again, rec);
    Some(rec)
}

/// The metadata as the CLI and the MCP shim show it.
fn show(key: &str, rec: &SecretRecord) {
    let m = secret::meta(key, rec);
    let time = secretctl_proto::duration::rfc3339;
    let _ = (time(m.created_at), time(m.updated_at));
    if let Some(e) = m.expires_at.filter(|e| *e > 0) {
        let _ = time(e);
    }
    let _ = secret::default_field(rec);
    let _ = secret::is_expired(rec, m.updated_at);
}

fuzz_target!(|input: Input| {
    let stored = decode(&input.stored);
    if let Some(rec) = &stored {
        let _ = rec.mac_body();
        apply(Some(rec.clone()), &input.second.request(), input.now);
    }
    let current = match &input.first {
        Some(first) => {
            let req = first.request();
            match apply(None, &req, input.now) {
                Some(rec) => {
                    check_valid(&rec);
                    show(&req.key, &rec);
                    assert_eq!(decode(&rec.encode_to_vec()).as_ref(), Some(&rec));
                    Some(rec)
                }
                None => return,
            }
        }
        None => None,
    };
    let req = input.second.request();
    if let Some(rec) = apply(current, &req, input.now) {
        check_valid(&rec);
        show(&req.key, &rec);
        assert_eq!(decode(&rec.encode_to_vec()).as_ref(), Some(&rec));
    }
});
