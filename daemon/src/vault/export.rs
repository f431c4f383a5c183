//! A secret as `export` sends it (contract §10): every field's value, its
//! notes and URL, in parts small enough for one gRPC message each.

use prost::Message;
use secretctl_proto::v1;

use super::{Vault, VaultError};
use crate::keyring::DataKey;
use crate::secret::{self, Slot};
use crate::store::SecretRecord;

impl Vault {
    /// Decrypts `rec` (stored as `key`, already read and checked against
    /// its seal) into export parts of at most about `part_bytes` each: the
    /// first carries the metadata, notes and URL, later ones (`continued`)
    /// more fields. A secret is one part unless its values are larger than
    /// `part_bytes` (at most 100 fields of 1 MiB each can be).
    pub fn exported(
        &self,
        dk: &DataKey,
        key: &str,
        rec: &SecretRecord,
        part_bytes: usize,
    ) -> Result<Vec<v1::ExportedSecret>, VaultError> {
        let mut part = v1::ExportedSecret {
            meta: Some(secret::meta(key, rec)),
            fields: Vec::with_capacity(rec.fields.len()),
            notes: self.open_text(dk, key, Slot::Notes, &rec.notes)?,
            url: self.open_text(dk, key, Slot::Url, &rec.url)?,
            continued: false,
        };
        let mut size = part.encoded_len();
        let mut parts = Vec::new();
        for f in &rec.fields {
            let value = self.field_value(dk, key, rec, &f.name)?;
            let named = v1::NamedValue {
                name: f.name.clone(),
                value: value.to_vec(),
            };
            let n = named.encoded_len() + 8;
            if size + n > part_bytes && !part.fields.is_empty() {
                let next = v1::ExportedSecret {
                    meta: Some(v1::SecretMeta {
                        key: key.to_string(),
                        ..Default::default()
                    }),
                    fields: Vec::new(),
                    notes: None,
                    url: None,
                    continued: true,
                };
                size = next.encoded_len();
                parts.push(std::mem::replace(&mut part, next));
            }
            size += n;
            part.fields.push(named);
        }
        parts.push(part);
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;

    #[test]
    fn large_secrets_come_in_parts_with_every_field_once() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) =
            Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY).unwrap();
        let big = vec![b'x'; 300_000];
        let req = v1::SetRequest {
            key: "big".into(),
            fields: (0..10)
                .map(|i| v1::FieldInput::new(format!("f{i}"), big.clone()))
                .collect(),
            notes: Some("some notes".into()),
            url: Some("https://example.com".into()),
            ..Default::default()
        };
        vault.set(&key, &req).unwrap();
        let rec = vault.checked(&key, "big").unwrap();
        let parts = vault.exported(&key, "big", &rec, 1 << 20).unwrap();
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(parts.iter().all(|p| p.encoded_len() <= (1 << 20) + 400_000));
        assert!(!parts[0].continued && parts[1..].iter().all(|p| p.continued));
        assert_eq!(parts[0].notes.as_deref(), Some("some notes"));
        assert_eq!(parts[0].url.as_deref(), Some("https://example.com"));
        let names: Vec<&str> = parts
            .iter()
            .flat_map(|p| p.fields.iter().map(|f| f.name.as_str()))
            .collect();
        assert_eq!(names, (0..10).map(|i| format!("f{i}")).collect::<Vec<_>>());
        assert!(parts.iter().flat_map(|p| &p.fields).all(|f| f.value == big));
        let one = vault.exported(&key, "big", &rec, 16 << 20).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].meta.as_ref().unwrap().fields.len(), 10);
    }
}
