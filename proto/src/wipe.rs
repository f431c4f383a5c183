//! Wiping on drop: every generated message that carries a password or a
//! plaintext value zeroizes it when dropped, wherever it is dropped — in
//! the CLI after tonic encoded the request, in the daemon after a request
//! was handled or a response sent. (The encoded bytes in the transport's
//! own buffers are out of reach; see docs/security.md.)
//!
//! A message with `Drop` cannot be built with `..Default::default()`:
//! [`FieldInput::new`] builds the common case.

use zeroize::Zeroize;

use crate::v1::{
    AgentGetFieldResponse, BackupRequest, ChangePasswordRequest, ExportedSecret, FieldInput,
    GetResponse, InitRequest, MetadataResponse, NamedValue, ReauthRequest, RestoreChunk,
    UnlockRequest,
};

macro_rules! wipe_on_drop {
    ($t:ty, |$m:ident| $body:block) => {
        impl Drop for $t {
            fn drop(&mut self) {
                let $m = self;
                $body
            }
        }
    };
}

wipe_on_drop!(InitRequest, |m| { m.password.zeroize() });
wipe_on_drop!(UnlockRequest, |m| { m.password.zeroize() });
wipe_on_drop!(ReauthRequest, |m| { m.password.zeroize() });
wipe_on_drop!(BackupRequest, |m| {
    m.password.zeroize();
    m.backup_password.zeroize();
});
wipe_on_drop!(RestoreChunk, |m| { m.password.zeroize() });
wipe_on_drop!(ChangePasswordRequest, |m| {
    m.old_password.zeroize();
    m.new_password.zeroize();
});
wipe_on_drop!(ExportedSecret, |m| {
    if let Some(n) = &mut m.notes {
        n.zeroize();
    }
    if let Some(u) = &mut m.url {
        u.zeroize();
    }
});
wipe_on_drop!(FieldInput, |m| { m.value.zeroize() });
wipe_on_drop!(GetResponse, |m| { m.value.zeroize() });
wipe_on_drop!(NamedValue, |m| { m.value.zeroize() });
wipe_on_drop!(AgentGetFieldResponse, |m| { m.value.zeroize() });
wipe_on_drop!(MetadataResponse, |m| {
    if let Some(n) = &mut m.notes {
        n.zeroize();
    }
    if let Some(u) = &mut m.url {
        u.zeroize();
    }
});

impl FieldInput {
    /// A field with a value and no sensitivity, kind or hint of its own.
    pub fn new(name: impl Into<String>, value: Vec<u8>) -> FieldInput {
        FieldInput {
            name: name.into(),
            value,
            sensitive: None,
            kind: String::new(),
            hint: String::new(),
            proxy_hosts: None,
        }
    }
}
