//! Hand-written `Debug` for every generated message that can carry a
//! password, a value, notes or a URL (the list lives in `build.rs`).
//!
//! Invariant: these impls print names, lengths and flags only, never the
//! bytes, so a stray `{:?}` in a log line or an error cannot leak plaintext.

use std::fmt;

use crate::v1::{
    EnvVar, FieldInput, GetResponse, InitRequest, MetadataResponse, NamedValue, RunInput,
    RunOutput, RunStart, SetRequest, UnlockRequest, run_input, run_output,
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

impl fmt::Debug for crate::v1::ReauthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReauthRequest")
            .field("password", &Hidden(self.password.len()))
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
            .field("proxy_hosts", &self.proxy_hosts)
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
            .field("remove_fields", &self.remove_fields)
            .field("create_only", &self.create_only)
            .field("proxy_hosts", &self.proxy_hosts)
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

impl fmt::Debug for crate::v1::AgentRunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRunRequest")
            .field("keys", &self.keys)
            .field("bindings_only", &self.bindings_only)
            .field("argv", &self.argv)
            .field("env_alias", &self.env_alias)
            .field("env_prefix", &self.env_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("cwd", &self.cwd)
            .field("env", &self.env)
            .finish()
    }
}

impl fmt::Debug for crate::v1::AgentGetFieldResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentGetFieldResponse")
            .field("key", &self.key)
            .field("field", &self.field)
            .field("value", &Hidden(self.value.len()))
            .finish()
    }
}

impl fmt::Debug for crate::v1::AgentMaskedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentMaskedResponse")
            .field("key", &self.key)
            .field("masked_value", &self.masked_value)
            .field("field_count", &self.field_count)
            .field("tags", &self.tags)
            .field("notes", &hidden_opt(&self.notes))
            .field("url", &hidden_opt(&self.url))
            .finish()
    }
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVar")
            .field("name", &self.name)
            .field("value", &Hidden(self.value.len()))
            .finish()
    }
}

impl fmt::Debug for RunStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStart")
            .field("key_patterns", &self.key_patterns)
            .field("env_alias", &self.env_alias)
            .field("env_prefix", &self.env_prefix)
            .field("argv", &self.argv)
            .field("cwd", &self.cwd)
            .field("env", &self.env)
            .field("timeout_ms", &self.timeout_ms)
            .field("pty", &self.pty)
            .field("size", &self.size)
            .field("no_redact", &self.no_redact)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl fmt::Debug for RunInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(run_input::Kind::Start(s)) => s.fmt(f),
            Some(run_input::Kind::Stdin(b)) => write!(f, "RunInput::Stdin({:?})", Hidden(b.len())),
            Some(run_input::Kind::Signal(s)) => write!(f, "RunInput::Signal({s})"),
            Some(run_input::Kind::Resize(w)) => write!(f, "RunInput::Resize({w:?})"),
            Some(run_input::Kind::StdinEof(_)) => f.write_str("RunInput::StdinEof"),
            None => f.write_str("RunInput::Empty"),
        }
    }
}

impl fmt::Debug for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(run_output::Kind::Stdout(b)) => {
                write!(f, "RunOutput::Stdout({:?})", Hidden(b.len()))
            }
            Some(run_output::Kind::Stderr(b)) => {
                write!(f, "RunOutput::Stderr({:?})", Hidden(b.len()))
            }
            Some(run_output::Kind::Exit(e)) => write!(f, "RunOutput::Exit({e:?})"),
            None => f.write_str("RunOutput::Empty"),
        }
    }
}

impl fmt::Debug for crate::v1::ExportedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedSecret")
            .field("meta", &self.meta)
            .field("fields", &self.fields)
            .field("notes", &hidden_opt(&self.notes))
            .field("url", &hidden_opt(&self.url))
            .field("continued", &self.continued)
            .finish()
    }
}

impl fmt::Debug for crate::v1::ImportEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportEntry")
            .field("secret", &self.secret)
            .field("origin", &self.origin)
            .field("continued", &self.continued)
            .finish()
    }
}

impl fmt::Debug for crate::v1::ImportChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportChunk")
            .field("conflict", &self.conflict)
            .field("dry_run", &self.dry_run)
            .field("entries", &self.entries)
            .finish()
    }
}

impl fmt::Debug for crate::v1::BackupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupRequest")
            .field("password", &Hidden(self.password.len()))
            .field("backup_password", &Hidden(self.backup_password.len()))
            .field("file_name", &self.file_name)
            .finish()
    }
}

impl fmt::Debug for crate::v1::RestoreChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreChunk")
            .field("password", &Hidden(self.password.len()))
            .field("verify_only", &self.verify_only)
            .field("dry_run", &self.dry_run)
            .field("data", &self.data.len())
            .field("file_name", &self.file_name)
            .finish()
    }
}

impl fmt::Debug for crate::v1::ChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .field("old_password", &Hidden(self.old_password.len()))
            .field("new_password", &Hidden(self.new_password.len()))
            .field("kdf", &self.kdf)
            .finish()
    }
}

impl fmt::Debug for crate::v1::UiResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UiResponse")
            .field("base_url", &self.base_url)
            .field("login_token", &Hidden(self.login_token.len()))
            .field("started", &self.started)
            .field("idle_stop_secs", &self.idle_stop_secs)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ui_response_hides_the_login_token() {
        let r = crate::v1::UiResponse {
            base_url: "http://127.0.0.1:1".into(),
            login_token: "f00dfeed".into(),
            ..Default::default()
        };
        let shown = format!("{r:?}");
        assert!(
            shown.contains("127.0.0.1:1") && !shown.contains("f00dfeed"),
            "{shown}"
        );
    }

    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let secret = "hunter2-very-secret";
        let set = SetRequest {
            key: "k".into(),
            fields: vec![FieldInput::new("value", secret.as_bytes().to_vec())],
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
        let run = RunInput {
            kind: Some(run_input::Kind::Start(RunStart {
                env: vec![EnvVar {
                    name: "TOKEN".into(),
                    value: secret.as_bytes().to_vec(),
                }],
                ..Default::default()
            })),
        };
        let out = RunOutput {
            kind: Some(run_output::Kind::Stdout(secret.as_bytes().to_vec())),
        };
        for text in [
            format!("{run:?}"),
            format!("{out:?}"),
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
