//! How a password manager's item becomes a multi-field secret (the
//! mapping in docs/transfer.md): username, password and TOTP fields,
//! further fields by label, notes, URLs and tags; empty parts are left
//! out, and an item with nothing to store is skipped.
//!
//! Nothing here prints or returns a value: messages name origins and keys.

use std::collections::HashSet;

use secretctl_proto::v1::{FieldInput, SetRequest, TagList};
use zeroize::Zeroizing;

use super::plan::{Names, Plan, Planned, What, slug};

/// Longest notes kept as the secret's notes (the daemon's limit); longer
/// ones become a sensitive `notes` field.
pub const MAX_NOTES: usize = 10 * 1024;
/// Most tags on a secret (the daemon's limit).
const MAX_TAGS: usize = 10;

/// A field of a password manager's item.
pub struct ItemField {
    /// The label in the file ("username", "API Key").
    pub label: String,
    pub value: Zeroizing<String>,
    pub sensitive: bool,
    /// The field's kind ("password", "totp", "url"), or empty.
    pub kind: &'static str,
}

impl ItemField {
    pub fn new(label: &str, value: String, sensitive: bool, kind: &'static str) -> ItemField {
        ItemField {
            label: label.to_string(),
            value: Zeroizing::new(value),
            sensitive,
            kind,
        }
    }
}

/// A password manager's item, before it becomes a secret.
#[derive(Default)]
pub struct Item {
    pub origin: String,
    /// 1-based position, for `item-N` when the title gives no name.
    pub number: usize,
    pub title: String,
    pub folder: String,
    pub fields: Vec<ItemField>,
    pub notes: Zeroizing<String>,
    pub urls: Vec<String>,
    pub tags: Vec<String>,
}

impl Item {
    /// The login every password manager has: `username` (not sensitive),
    /// `password` and `totp` (sensitive, with their kinds). Empty ones are
    /// left out later, like any empty field.
    pub fn push_login(&mut self, username: String, password: String, totp: String) {
        self.fields
            .push(ItemField::new("username", username, false, ""));
        self.fields
            .push(ItemField::new("password", password, true, "password"));
        self.fields.push(ItemField::new("totp", totp, true, "totp"));
    }
}

/// True for a URL the daemon stores as a secret's URL.
fn storable_url(u: &str) -> bool {
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && u.len() > 8
        && u.len() <= 2048
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A field name from a label: the slug rules, `field` when nothing is
/// left, unique within the secret.
fn field_name(label: &str, used: &mut HashSet<String>) -> String {
    let mut base = slug(label).replace('/', "-");
    if base.is_empty() || base.starts_with('-') {
        base = "field".into();
    }
    let mut name = base.clone();
    let mut n = 1;
    while used.contains(&name) {
        n += 1;
        name = format!("{base}-{n}");
    }
    used.insert(name.clone());
    name
}

/// A label as a field's hint: one line, at most 256 bytes.
fn hint(label: &str) -> String {
    let mut h: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    while h.len() > 256 {
        h.pop();
    }
    h
}

/// The tags of a secret: `--tag` ones first, then the item's (slugged),
/// at most ten; returns the dropped ones too.
fn tags(extra: &[String], item_tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let source = item_tags.iter().map(|t| slug(t).replace('.', "-"));
    for t in extra.iter().cloned().chain(source) {
        if t.is_empty() || out.contains(&t) {
            continue;
        }
        if out.len() < MAX_TAGS {
            out.push(t);
        } else {
            dropped.push(t);
        }
    }
    (out, dropped)
}

/// The request for an item (see docs/transfer.md for the mapping), or
/// `None` when it holds nothing to store. Returns dropped tags too.
pub fn item_request(
    mut item: Item,
    key: &str,
    extra_tags: &[String],
) -> (Option<SetRequest>, Vec<String>) {
    let mut used = HashSet::new();
    let mut fields: Vec<FieldInput> = Vec::new();
    let mut url = None;
    for u in item.urls.iter().filter(|u| !u.trim().is_empty()) {
        if url.is_none() && storable_url(u) {
            url = Some(u.clone());
        } else {
            item.fields
                .push(ItemField::new("url", u.clone(), false, "url"));
        }
    }
    for f in &mut item.fields {
        if f.value.is_empty() {
            continue;
        }
        let name = field_name(&f.label, &mut used);
        let mut input = FieldInput::new(name.clone(), std::mem::take(&mut *f.value).into_bytes());
        input.sensitive = Some(f.sensitive);
        input.kind = f.kind.to_string();
        if f.label != name {
            input.hint = hint(&f.label);
        }
        fields.push(input);
    }
    let mut notes = None;
    if !item.notes.is_empty() {
        // A note with nothing else (a secure note) is the secret itself,
        // and long notes do not fit the notes slot: both become a
        // sensitive field. Notes are shown to MCP clients; fields marked
        // sensitive never are.
        if fields.is_empty() || item.notes.len() > MAX_NOTES || item.notes.contains('\0') {
            let name = field_name("notes", &mut used);
            let mut input = FieldInput::new(name, std::mem::take(&mut *item.notes).into_bytes());
            input.sensitive = Some(true);
            input.kind = "notes".into();
            fields.push(input);
        } else {
            notes = Some(std::mem::take(&mut *item.notes));
        }
    }
    let (tags, dropped) = tags(extra_tags, &item.tags);
    if fields.is_empty() {
        return (None, dropped);
    }
    let req = SetRequest {
        key: key.to_string(),
        fields,
        notes,
        url,
        tags: (!tags.is_empty()).then_some(TagList { tags }),
        ..Default::default()
    };
    (Some(req), dropped)
}

/// Adds a password-manager item to the plan: named, mapped, or skipped
/// when empty.
pub fn add_item(
    plan: &mut Plan,
    names: &mut Names,
    item: Item,
    prefix: &str,
    extra_tags: &[String],
) -> Result<(), String> {
    let origin = item.origin.clone();
    let (key, note) = names.item_key(prefix, &item.folder, &item.title, item.number, &origin)?;
    let (req, dropped) = item_request(item, &key, extra_tags);
    if !dropped.is_empty() {
        plan.notes.push(format!(
            "{origin}: tags {} left out (a secret has at most {MAX_TAGS})",
            dropped.join(", ")
        ));
    }
    plan.entries.push(Planned {
        origin,
        key,
        what: match req {
            Some(r) => What::Send(r),
            None => What::Skip("empty: no field, password or note".into()),
        },
        note,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_map_to_multi_field_secrets() {
        let item = Item {
            origin: "item 1 'GitHub'".into(),
            number: 1,
            title: "GitHub".into(),
            fields: vec![
                ItemField::new("username", "octocat".into(), false, ""),
                ItemField::new("password", "pw-Secret-1".into(), true, "password"),
                ItemField::new("totp", String::new(), true, "totp"),
                ItemField::new("Recovery Code", "rc".into(), true, ""),
                ItemField::new("username", "second".into(), false, ""),
            ],
            notes: Zeroizing::new("some notes".into()),
            urls: vec!["ftp://files".into(), "https://github.com".into()],
            tags: vec!["Work Stuff".into(), "dev".into()],
            ..Default::default()
        };
        let (req, dropped) = item_request(item, "github", &["imported".into(), "dev".into()]);
        let req = req.unwrap();
        assert!(dropped.is_empty());
        let fields: Vec<(&str, Option<bool>, &str)> = req
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive, f.hint.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("username", Some(false), ""),
                ("password", Some(true), ""),
                ("recovery-code", Some(true), "Recovery Code"),
                ("username-2", Some(false), "username"),
                ("url", Some(false), ""),
            ]
        );
        assert_eq!(req.url.as_deref(), Some("https://github.com"));
        assert_eq!(req.notes.as_deref(), Some("some notes"));
        assert_eq!(req.tags.unwrap().tags, ["imported", "dev", "work-stuff"]);
    }

    #[test]
    fn notes_alone_or_long_become_a_sensitive_field_and_empty_items_skip() {
        let note = Item {
            notes: Zeroizing::new("recovery codes".into()),
            ..Default::default()
        };
        let req = item_request(note, "n", &[]).0.unwrap();
        assert_eq!(req.fields[0].name, "notes");
        assert_eq!(req.fields[0].sensitive, Some(true));
        assert!(req.notes.is_none());
        let long = Item {
            fields: vec![ItemField::new("password", "p".into(), true, "password")],
            notes: Zeroizing::new("n".repeat(MAX_NOTES + 1)),
            ..Default::default()
        };
        let req = item_request(long, "l", &[]).0.unwrap();
        assert_eq!(req.fields.len(), 2);
        assert!(req.notes.is_none());
        let empty = Item {
            fields: vec![ItemField::new("password", String::new(), true, "")],
            urls: vec![String::new()],
            ..Default::default()
        };
        assert!(item_request(empty, "e", &[]).0.is_none());
        let many_tags: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
        let tagged = Item {
            fields: vec![ItemField::new("password", "p".into(), true, "")],
            tags: many_tags,
            ..Default::default()
        };
        let (req, dropped) = item_request(tagged, "t", &[]);
        assert_eq!(req.unwrap().tags.unwrap().tags.len(), 10);
        assert_eq!(dropped, ["t10", "t11"]);
    }
}
