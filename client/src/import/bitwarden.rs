//! Bitwarden JSON exports (the unencrypted "JSON" kind; an encrypted one
//! is refused: it can only be read with the Bitwarden account's keys).
//!
//! | item part | becomes |
//! |---|---|
//! | `name` | the key (slug), and the origin's name |
//! | folder (`folderId` → `folders[].name`), else its first collection | the key's folder |
//! | `login.username` | field `username` (not sensitive) |
//! | `login.password` | field `password` (sensitive) |
//! | `login.totp` | field `totp` (sensitive) |
//! | `login.uris[].uri` | the first http(s) one is the secret's URL; the others fields `url`, `url-2`, … |
//! | `notes` | the secret's notes (a secure note's text: its sensitive `notes` field) |
//! | `fields[]` | fields named after them: text and boolean ones not sensitive, hidden ones sensitive, linked ones left out |
//! | `card` | `cardholderName`, `brand`, `expMonth`, `expYear` not sensitive; `number`, `code` sensitive |
//! | `identity` | every part not sensitive, except `ssn`, `passportNumber`, `licenseNumber` |
//! | `sshKey` | `privateKey` sensitive; `publicKey`, `keyFingerprint` not |
//! | `folders` themselves, `passwordHistory`, `fido2Credentials`, ids, dates | left out |

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::items::{self, Item, ItemField};
use super::plan::{Names, Plan};

#[derive(Deserialize)]
struct Named {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    folders: Vec<Named>,
    #[serde(default)]
    collections: Vec<Named>,
    #[serde(default)]
    items: Vec<Value>,
}

/// True when a JSON document looks like a Bitwarden export.
pub fn looks_like(doc: &Value) -> bool {
    doc.get("items").is_some_and(Value::is_array)
        || doc.get("encKeyValidation_DO_NOT_EDIT").is_some()
        || (doc.get("encrypted").is_some() && doc.get("passwordProtected").is_some())
}

/// A string member of `v`, or "".
fn text(v: &Value, name: &str) -> String {
    match v.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// The string members of an object part (`card`, `identity`, …), each a
/// field, sensitive when named in `sensitive`.
fn part_fields(item: &mut Item, part: Option<&Value>, sensitive: &[&str]) {
    let Some(Value::Object(map)) = part else {
        return;
    };
    for (name, v) in map {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        item.fields.push(ItemField::new(
            name,
            value,
            sensitive.contains(&name.as_str()),
            "",
        ));
    }
}

pub fn plan(text_in: &[u8], prefix: &str, tags: &[String]) -> Result<Plan, String> {
    let mut doc: Value = serde_json::from_slice(text_in)
        .map_err(|e| format!("not a Bitwarden JSON export: {}", super::json::where_(&e)))?;
    if doc.get("encKeyValidation_DO_NOT_EDIT").is_some()
        || doc.get("encrypted").and_then(Value::as_bool) == Some(true)
    {
        return Err(
            "this Bitwarden export is encrypted: export again choosing the format 'JSON' (not 'JSON (Encrypted)'), import it, and delete the file"
                .into(),
        );
    }
    let export: Export = serde_json::from_value(doc.take())
        .map_err(|_| "not a Bitwarden JSON export: it needs an \"items\" list".to_string())?;
    if export.encrypted {
        return Err("this Bitwarden export is encrypted".into());
    }
    let folders: HashMap<String, String> =
        export.folders.into_iter().map(|f| (f.id, f.name)).collect();
    let collections: HashMap<String, String> = export
        .collections
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let mut plan = Plan::new();
    let mut names = Names::default();
    for (i, mut v) in export.items.into_iter().enumerate() {
        let title = text(&v, "name");
        let origin = format!("item {} '{}'", i + 1, secretctl_proto::text::shown(&title));
        if !v.is_object() {
            return Err(format!("{origin}: not an object"));
        }
        let folder = v
            .get("folderId")
            .and_then(Value::as_str)
            .and_then(|id| folders.get(id))
            .or_else(|| {
                v.get("collectionIds")
                    .and_then(Value::as_array)
                    .and_then(|ids| ids.first())
                    .and_then(Value::as_str)
                    .and_then(|id| collections.get(id))
            })
            .cloned()
            .unwrap_or_default();
        let mut item = Item {
            origin,
            number: i + 1,
            title,
            folder,
            notes: Zeroizing::new(text(&v, "notes")),
            ..Default::default()
        };
        if let Some(login) = v.get("login") {
            item.push_login(
                text(login, "username"),
                text(login, "password"),
                text(login, "totp"),
            );
            if let Some(Value::Array(uris)) = login.get("uris") {
                item.urls = uris.iter().map(|u| text(u, "uri")).collect();
            }
        }
        part_fields(&mut item, v.get("card"), &["number", "code"]);
        part_fields(
            &mut item,
            v.get("identity"),
            &["ssn", "passportNumber", "licenseNumber"],
        );
        part_fields(&mut item, v.get("sshKey"), &["privateKey"]);
        if let Some(Value::Array(fields)) = v.get("fields") {
            for f in fields {
                // 0 text, 1 hidden, 2 boolean, 3 linked (no value of its own).
                let kind = f.get("type").and_then(Value::as_u64).unwrap_or(1);
                if kind == 3 {
                    continue;
                }
                let label = match text(f, "name") {
                    n if n.is_empty() => "field".to_string(),
                    n => n,
                };
                item.fields
                    .push(ItemField::new(&label, text(f, "value"), kind == 1, ""));
            }
        }
        wipe(&mut v);
        items::add_item(&mut plan, &mut names, item, prefix, tags)?;
    }
    Ok(plan)
}

/// Wipes every string in `v` (the parsed copies of values).
pub fn wipe(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe),
        Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::plan::What;

    const SAMPLE: &str = r#"{
      "encrypted": false,
      "folders": [{"id": "f1", "name": "Work/Cloud"}],
      "items": [
        {"id": "i1", "folderId": "f1", "type": 1, "name": "AWS Console", "notes": "root account",
         "favorite": false,
         "fields": [{"name": "Account ID", "value": "123456", "type": 0},
                    {"name": "Recovery", "value": "rc-1", "type": 1},
                    {"name": "Linked", "value": null, "type": 3, "linkedId": 100}],
         "login": {"uris": [{"match": null, "uri": "https://aws.amazon.com"},
                            {"uri": "androidapp://com.amazon"}],
                   "username": "admin", "password": "aws-pass", "totp": "otpauth://totp/aws"}},
        {"id": "i2", "folderId": null, "type": 2, "name": "Wifi", "notes": "wpa key",
         "secureNote": {"type": 0}},
        {"id": "i3", "type": 3, "name": "Visa",
         "card": {"cardholderName": "A B", "brand": "Visa", "number": "4111", "expMonth": "1",
                  "expYear": "2030", "code": "123"}},
        {"id": "i4", "type": 1, "name": "Nothing", "login": {"username": null, "password": null}}
      ]
    }"#;

    #[test]
    fn items_folders_and_kinds() {
        let p = plan(SAMPLE.as_bytes(), "bw/", &[]).unwrap();
        let keys: Vec<&str> = p.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bw/work/cloud/aws-console",
                "bw/wifi",
                "bw/visa",
                "bw/nothing"
            ]
        );
        let req = |i: usize| match &p.entries[i].what {
            What::Send(r) => r,
            What::Skip(_) => panic!("{i} skipped"),
        };
        let aws: Vec<(&str, Option<bool>)> = req(0)
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive))
            .collect();
        assert_eq!(
            aws,
            [
                ("username", Some(false)),
                ("password", Some(true)),
                ("totp", Some(true)),
                ("account-id", Some(false)),
                ("recovery", Some(true)),
                ("url", Some(false)),
            ]
        );
        assert_eq!(req(0).url.as_deref(), Some("https://aws.amazon.com"));
        assert_eq!(req(0).notes.as_deref(), Some("root account"));
        assert_eq!(req(1).fields[0].name, "notes");
        let card: Vec<(&str, Option<bool>)> = req(2)
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.sensitive))
            .collect();
        assert!(card.contains(&("number", Some(true))));
        assert!(card.contains(&("code", Some(true))));
        assert!(card.contains(&("brand", Some(false))));
        assert!(matches!(p.entries[3].what, What::Skip(_)));
        assert_eq!(p.entries[0].origin, "item 1 'AWS Console'");
    }

    #[test]
    fn encrypted_exports_are_refused() {
        for doc in [
            r#"{"encrypted": true, "passwordProtected": true, "salt": "x", "data": "y"}"#,
            r#"{"encrypted": true, "encKeyValidation_DO_NOT_EDIT": "2.x", "folders": [], "items": []}"#,
        ] {
            let e = plan(doc.as_bytes(), "", &[]).err().unwrap();
            assert!(e.contains("encrypted"), "{e}");
            assert!(looks_like(&serde_json::from_str(doc).unwrap()));
        }
    }
}
