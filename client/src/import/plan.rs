//! What an import will send: one entry per secret, each with its key, its
//! origin in the file and its request — and the rules every format shares:
//! key naming and collisions (`items` maps a password manager's item to a
//! multi-field secret).
//!
//! Key naming for password-manager items (docs/transfer.md): `folder/title`
//! (or `title`), each part a slug — ASCII letters lower-cased, digits, `_`
//! and `.` kept, spaces and separators (`-`, `:`, `@`, `+`, `,`, `|`)
//! becoming one `-`, everything else (other punctuation, non-ASCII) dropped;
//! a folder's own `/` or `\` nesting is kept as `/`. A title with nothing
//! left becomes `item-N`. Within one file a key already taken gets `-2`,
//! `-3`, … (said per entry). `--prefix` goes before every key.
//!
//! Nothing here prints or returns a value: messages name origins and keys.

use std::collections::HashMap;

use secretctl_proto::names;
use secretctl_proto::v1::{FieldInput, SetRequest, TagList};

/// Longest slug of one title or folder segment.
const MAX_SLUG: usize = 64;

/// One planned entry.
pub struct Planned {
    /// Where it came from: "line 12", "line 3 'GitHub'", "item 2 'AWS'".
    pub origin: String,
    pub key: String,
    pub what: What,
    /// Said beside the entry (a rename, a redefinition); never a value.
    pub note: Option<String>,
}

/// What becomes of a planned entry.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every entry is a Send; boxing each request would save nothing"
)]
pub enum What {
    Send(SetRequest),
    /// Not sent, counted as skipped: why.
    Skip(String),
}

/// Everything the import will do. No `Debug`: it holds values.
pub struct Plan {
    pub entries: Vec<Planned>,
    /// Lines said once, before the entries (dropped tags, …).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            entries: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Entries to send.
    pub fn sending(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.what, What::Send(_)))
            .count()
    }
}

/// Checks `--prefix` (a key must be able to start with it).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    names::validate_key(&format!("{prefix}x")).map_err(|e| {
        format!(
            "--prefix '{}' cannot start a key name: {e}",
            secretctl_proto::text::shown(prefix)
        )
    })
}

/// Checks a `--tag` the way the daemon will.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid --tag '{}': use 1-64 letters, digits, '_' or '-'",
            secretctl_proto::text::shown(tag)
        ))
    }
}

/// `prefix + name` as a key, or why not (naming the origin).
pub fn key_as_written(prefix: &str, name: &str, origin: &str) -> Result<String, String> {
    let key = format!("{prefix}{name}");
    names::validate_key(&key).map_err(|e| {
        format!(
            "{origin}: '{}' is not a valid key: {e}",
            secretctl_proto::text::shown(&key)
        )
    })?;
    Ok(key)
}

/// The slug of one title or folder part (see the module docs).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' || (c == '.' && !out.ends_with('.')) {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c);
        } else if c.is_whitespace() || matches!(c, '-' | ':' | '@' | '+' | ',' | '|' | '/' | '\\') {
            gap = true;
        }
    }
    let mut s = out.trim_start_matches(['.', '-']).to_string();
    s.truncate(MAX_SLUG);
    s.trim_end_matches(['.', '-']).to_string()
}

/// Key names handed out within one file, for collision suffixes.
#[derive(Default)]
pub struct Names {
    taken: HashMap<String, String>,
}

impl Names {
    /// The key for an item: `prefix + folder/title` slugs, made unique
    /// within the file with `-2`, `-3`, …; with a note when renamed.
    pub fn item_key(
        &mut self,
        prefix: &str,
        folder: &str,
        title: &str,
        number: usize,
        origin: &str,
    ) -> Result<(String, Option<String>), String> {
        let mut base = String::from(prefix);
        for part in folder
            .split(['/', '\\'])
            .map(slug)
            .filter(|s| !s.is_empty())
        {
            base.push_str(&part);
            base.push('/');
        }
        let title = match slug(title) {
            t if t.is_empty() => format!("item-{number}"),
            t => t,
        };
        base.push_str(&title);
        names::validate_key(&base).map_err(|e| {
            format!(
                "{origin}: its key '{}' is not valid: {e}",
                secretctl_proto::text::shown(&base)
            )
        })?;
        let mut key = base.clone();
        let mut n = 1;
        while self.taken.contains_key(&key) {
            n += 1;
            key = format!("{base}-{n}");
        }
        let note = (n > 1).then(|| {
            format!(
                "renamed: '{base}' is taken by {}",
                self.taken
                    .get(&base)
                    .map_or("another entry", |o| o.as_str())
            )
        });
        names::validate_key(&key)
            .map_err(|e| format!("{origin}: its key '{key}' is not valid: {e}"))?;
        self.taken.insert(key.clone(), origin.to_string());
        Ok((key, note))
    }
}

/// A one-value secret (`.env`, flat JSON): its `value` field, sensitive.
pub fn value_request(key: &str, value: Vec<u8>, extra_tags: &[String]) -> SetRequest {
    let mut field = FieldInput::new(secretctl_proto::rules::DEFAULT_FIELD, value);
    field.sensitive = Some(true);
    SetRequest {
        key: key.to_string(),
        fields: vec![field],
        tags: (!extra_tags.is_empty()).then(|| TagList {
            tags: extra_tags.to_vec(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("GitHub"), "github");
        assert_eq!(slug("My Bank: Savings (old)"), "my-bank-savings-old");
        assert_eq!(slug("  --Ünïcode—title  "), "ncodetitle");
        assert_eq!(slug("example.com"), "example.com");
        assert_eq!(slug("..hidden..file."), "hidden.file");
        assert_eq!(slug("me@example.com"), "me-example.com");
        assert_eq!(slug("a/b\\c"), "a-b-c");
        assert_eq!(slug("日本"), "");
        assert_eq!(slug(&"x".repeat(100)).len(), MAX_SLUG);
    }

    #[test]
    fn keys_with_folders_prefix_and_collisions() {
        let mut n = Names::default();
        let mut key = |folder: &str, title: &str, i: usize| {
            n.item_key("pm/", folder, title, i, &format!("line {i}"))
                .unwrap()
        };
        assert_eq!(key("", "GitHub", 1), ("pm/github".into(), None));
        assert_eq!(key("Work/Dev", "AWS Prod", 2).0, "pm/work/dev/aws-prod");
        assert_eq!(key("Work\\Dev", "AWS Prod", 3).0, "pm/work/dev/aws-prod-2");
        let (k, note) = key("", "github", 4);
        assert_eq!(k, "pm/github-2");
        assert_eq!(note.unwrap(), "renamed: 'pm/github' is taken by line 1");
        assert_eq!(key("", "GITHUB", 5).0, "pm/github-3");
        assert_eq!(key("", "日本", 6).0, "pm/item-6");
    }
}
