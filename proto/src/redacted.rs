//! Hand-written `Debug` for every generated message that can carry a
//! password, a value, notes or a URL (the list lives in `build.rs`).
//!
//! Invariant: these impls print names, lengths and flags only, never the
//! bytes, so a stray `{:?}` in a log line or an error cannot leak plaintext.

use std::fmt;

use crate::v1::{
    FieldInput, GetResponse, InitRequest, MetadataResponse, NamedValue, SetRequest, UnlockRequest,
};

/// Stands in for a value: shows only that one was there and its length.
struct Hidden(usize);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

fn hidden_opt(s: &Option<String>) -> Option<Hidden> {
    s.as_ref().map(|s| Hidden(s.len()))
}

impl fmt::Debug for InitRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitRequest")
            .field("password", &Hidden(self.password.len()))
            .field("kdf", &self.kdf)
            .finish()
    }
}

impl fmt::Debug for UnlockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnlockRequest")
            .field("password", &Hidden(self.password.len()))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl fmt::Debug for FieldInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldInput")
            .field("name", &self.name)
            .field("value", &Hidden(self.value.len()))
            .field("sensitive", &self.sensitive)
            .field("kind", &self.kind)
            .field("hint", &self.hint)
            .finish()
    }
}

impl fmt::Debug for SetRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetRequest")
            .field("key", &self.key)
            .field("fields", &self.fields)
            .field("sensitive_exact", &self.sensitive_exact)
            .field("notes", &hidden_opt(&self.notes))
            .field("url", &hidden_opt(&self.url))
            .field("tags", &self.tags)
            .field("expires_at", &self.expires_at)
            .field("bindings", &self.bindings)
            .finish()
    }
}

impl fmt::Debug for GetResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResponse")
            .field("key", &self.key)
            .field("field", &self.field)
            .field("value", &Hidden(self.value.len()))
            .finish()
    }
}

impl fmt::Debug for NamedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedValue")
            .field("name", &self.name)
            .field("value", &Hidden(self.value.len()))
            .finish()
    }
}

impl fmt::Debug for MetadataResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataResponse")
            .field("meta", &self.meta)
            .field("public_fields", &self.public_fields)
            .field("notes", &hidden_opt(&self.notes))
            .field("url", &hidden_opt(&self.url))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let secret = "hunter2-very-secret";
        let set = SetRequest {
            key: "k".into(),
            fields: vec![FieldInput {
                name: "value".into(),
                value: secret.as_bytes().to_vec(),
                ..Default::default()
            }],
            notes: Some(secret.into()),
            url: Some(secret.into()),
            ..Default::default()
        };
        let get = GetResponse {
            key: "k".into(),
            field: "value".into(),
            value: secret.as_bytes().to_vec(),
        };
        let unlock = UnlockRequest {
            password: secret.as_bytes().to_vec(),
            timeout_secs: 1,
        };
        let init = InitRequest {
            password: secret.as_bytes().to_vec(),
            kdf: None,
        };
        let meta = MetadataResponse {
            meta: None,
            public_fields: vec![NamedValue {
                name: "user".into(),
                value: secret.as_bytes().to_vec(),
            }],
            notes: Some(secret.into()),
            url: None,
        };
        for text in [
            format!("{set:?}"),
            format!("{get:?}"),
            format!("{unlock:?}"),
            format!("{init:?}"),
            format!("{meta:?}"),
            format!("{set:#?}"),
        ] {
            assert!(!text.contains(secret), "leaked in {text}");
            assert!(text.contains("<redacted"), "{text}");
        }
    }
}
