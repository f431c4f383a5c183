//! Importing many secrets at once (contract §10): every entry is checked
//! first, then all are written in one store transaction — all or nothing.
//!
//! Invariants:
//! - An entry creates its secret from itself alone: an overwrite replaces
//!   the stored secret entirely (fields, notes, URL, tags, expiry,
//!   bindings), it never merges with it.
//! - A refusal names the entry by its origin in the file ("line 12",
//!   "item 3 'GitHub'") and its key, never by a value.
//! - A dry run reads only: nothing is sealed or written.

use std::collections::HashMap;

use secretctl_proto::v1;

use super::{Vault, VaultError, now_secs};
use crate::crypto::RecordKey;
use crate::keyring::DataKey;
use crate::secret::{self, Invalid};

/// What to do with an entry whose key is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Keep the stored secret; the entry is skipped.
    Skip,
    /// Replace the stored secret with the entry.
    Overwrite,
    /// Refuse the whole import.
    Error,
}

/// What happened (or, in a dry run, would happen) to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Create,
    Overwrite,
    Skip,
    /// Dry run with [`Conflict::Error`]: the key exists, so the import
    /// would be refused.
    Conflict,
}

impl Done {
    /// As sent on the wire (`ImportOutcome.action`).
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Create => "create",
            Done::Overwrite => "overwrite",
            Done::Skip => "skip",
            Done::Conflict => "conflict",
        }
    }
}

/// One entry to import and where it came from. No `Debug`: it holds values.
pub struct Entry {
    pub req: v1::SetRequest,
    pub origin: String,
}

/// Why an import was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `--conflict error` and these keys exist.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> ImportError {
        ImportError::Vault(e.into())
    }
}

/// How an entry is named in messages: its origin (escaped, cut) and key.
fn named(e: &Entry) -> String {
    format!(
        "{} ('{}')",
        secretctl_proto::text::shown(&e.origin),
        secretctl_proto::text::shown(&e.req.key)
    )
}

fn refused(e: &Entry, why: impl std::fmt::Display) -> ImportError {
    ImportError::Vault(VaultError::Invalid(Invalid(format!("{}: {why}", named(e)))))
}

/// The entries whose keys exist, as one message for `--conflict error`.
fn conflict_message(entries: &[Entry], exists: &[bool]) -> String {
    const SHOWN: usize = 5;
    let hits: Vec<&Entry> = entries
        .iter()
        .zip(exists)
        .filter_map(|(e, x)| x.then_some(e))
        .collect();
    let mut list: Vec<String> = hits
        .iter()
        .take(SHOWN)
        .map(|e| {
            format!(
                "'{}' ({})",
                secretctl_proto::text::shown(&e.req.key),
                secretctl_proto::text::shown(&e.origin)
            )
        })
        .collect();
    if hits.len() > SHOWN {
        list.push(format!("and {} more", hits.len() - SHOWN));
    }
    let n = hits.len();
    format!(
        "{n} key{} already exist{} ({}) and --conflict is error: nothing was imported",
        if n == 1 { "" } else { "s" },
        if n == 1 { "s" } else { "" },
        list.join(", ")
    )
}

/// The conflict rule for one entry. (A real import with
/// [`Conflict::Error`] is refused as a whole before any entry is decided.)
fn decide(exists: bool, conflict: Conflict) -> Done {
    match (exists, conflict) {
        (false, _) => Done::Create,
        (true, Conflict::Skip) => Done::Skip,
        (true, Conflict::Overwrite) => Done::Overwrite,
        (true, Conflict::Error) => Done::Conflict,
    }
}

impl Vault {
    /// Imports `entries` in one transaction: checks every entry (as a new
    /// secret built from the entry alone), then applies the conflict rule
    /// to keys that exist, then seals and writes them all — or, on any
    /// refusal, nothing. Returns what was done with each entry, in order.
    /// With `dry_run`, checks and answers the same without writing.
    pub fn import(
        &self,
        dk: &DataKey,
        entries: &[Entry],
        conflict: Conflict,
        dry_run: bool,
    ) -> Result<Vec<Done>, ImportError> {
        let mut seen: HashMap<&str, &Entry> = HashMap::with_capacity(entries.len());
        for e in entries {
            secret::check_key(&e.req.key).map_err(|why| refused(e, why))?;
            if let Some(first) = seen.insert(e.req.key.as_str(), e) {
                return Err(refused(
                    e,
                    format!(
                        "the same key as {}: give each entry its own key",
                        secretctl_proto::text::shown(&first.origin)
                    ),
                ));
            }
            secret::check_set(None, &e.req).map_err(|why| refused(e, why))?;
        }
        if dry_run {
            let exists = self
                .store
                .contains_each(entries.iter().map(|e| e.req.key.as_str()))?;
            return Ok(exists.into_iter().map(|x| decide(x, conflict)).collect());
        }
        let now = now_secs();
        let rk = RecordKey::derive(dk);
        self.store.transaction(|txn| {
            let exists = entries
                .iter()
                .map(|e| txn.contains(&e.req.key))
                .collect::<Result<Vec<bool>, _>>()?;
            if conflict == Conflict::Error && exists.iter().any(|x| *x) {
                return Err(ImportError::Conflict(conflict_message(entries, &exists)));
            }
            let mut done = Vec::with_capacity(entries.len());
            for (e, x) in entries.iter().zip(exists) {
                let d = decide(x, conflict);
                if d != Done::Skip {
                    // From the entry alone: an overwrite keeps nothing of
                    // the stored secret (not even a damaged one's metadata).
                    let (rec, _) =
                        self.apply(dk, &rk, None, &e.req, now)
                            .map_err(|why| match why {
                                VaultError::Invalid(i) => refused(e, i),
                                other => ImportError::Vault(other),
                            })?;
                    txn.put(&e.req.key, &rec)?;
                }
                done.push(d);
            }
            Ok(done)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;

    fn entry(key: &str, origin: &str, fields: &[(&str, &str)]) -> Entry {
        Entry {
            req: v1::SetRequest {
                key: key.into(),
                fields: fields
                    .iter()
                    .map(|(n, v)| v1::FieldInput::new(*n, v.as_bytes().to_vec()))
                    .collect(),
                ..Default::default()
            },
            origin: origin.into(),
        }
    }

    fn setup() -> (tempfile::TempDir, Vault, DataKey) {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) =
            Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY).unwrap();
        let mut old = entry("old", "-", &[("user", "u"), ("password", "old-pw")]);
        old.req.notes = Some("old notes".into());
        old.req.tags = Some(v1::TagList {
            tags: vec!["was".into()],
        });
        vault.set(&key, &old.req).unwrap();
        (dir, vault, key)
    }

    fn value(vault: &Vault, key: &DataKey, k: &str) -> String {
        String::from_utf8(vault.get(key, k, "").unwrap().1.to_vec()).unwrap()
    }

    #[test]
    fn skip_overwrite_and_error() {
        let (_d, vault, key) = setup();
        let batch = || {
            vec![
                entry("new", "line 1", &[("value", "n1")]),
                entry("old", "line 2", &[("value", "replaced")]),
            ]
        };
        let done = vault.import(&key, &batch(), Conflict::Skip, true).unwrap();
        assert_eq!(done, [Done::Create, Done::Skip]);
        assert_eq!(vault.count(), 1, "a dry run writes nothing");
        let done = vault.import(&key, &batch(), Conflict::Error, true).unwrap();
        assert_eq!(done, [Done::Create, Done::Conflict]);

        let e = vault
            .import(&key, &batch(), Conflict::Error, false)
            .unwrap_err();
        assert!(matches!(e, ImportError::Conflict(_)), "{e}");
        assert!(e.to_string().contains("'old' (line 2)"), "{e}");
        assert_eq!(vault.count(), 1, "refused as a whole");

        let done = vault.import(&key, &batch(), Conflict::Skip, false).unwrap();
        assert_eq!(done, [Done::Create, Done::Skip]);
        assert!(vault.get(&key, "old", "password").is_ok(), "skipped: kept");

        let done = vault
            .import(&key, &batch(), Conflict::Overwrite, false)
            .unwrap();
        assert_eq!(done, [Done::Overwrite, Done::Overwrite]);
        // Replaced entirely: no field, note or tag of the old one is left.
        let meta = vault.metadata(&key, "old").unwrap();
        let m = meta.meta.clone().unwrap();
        assert_eq!(
            m.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["value"]
        );
        assert!(m.tags.is_empty() && meta.notes.is_none());
        assert_eq!(value(&vault, &key, "old"), "replaced");
    }

    #[test]
    fn a_bad_entry_stores_nothing_and_is_named() {
        let (_d, vault, key) = setup();
        let bad = [
            entry("a", "line 1", &[("value", "1")]),
            entry("b", "line 7", &[("value", "")]),
        ];
        let e = vault
            .import(&key, &bad, Conflict::Skip, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 7 ('b'): "), "{e}");
        assert_eq!(vault.count(), 1);
        let twice = [
            entry("a", "line 1", &[("value", "1")]),
            entry("a", "line 3", &[("value", "2")]),
        ];
        let e = vault
            .import(&key, &twice, Conflict::Skip, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3 ('a')") && e.contains("line 1"), "{e}");
        let badkey = [entry("a b", "item 2 'A B'", &[("value", "1")])];
        let e = vault
            .import(&key, &badkey, Conflict::Skip, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("item 2 'A B' ('a b'): key name"), "{e}");
        assert_eq!(vault.count(), 1);
    }

    #[test]
    fn many_in_one_transaction() {
        let (_d, vault, key) = setup();
        let many: Vec<Entry> = (0..500)
            .map(|i| {
                entry(
                    &format!("k/{i:04}"),
                    &format!("line {i}"),
                    &[("value", "v")],
                )
            })
            .collect();
        let done = vault.import(&key, &many, Conflict::Skip, false).unwrap();
        assert!(done.iter().all(|d| *d == Done::Create));
        assert_eq!(vault.count(), 501);
    }
}
