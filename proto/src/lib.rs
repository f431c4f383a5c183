//! `secretctl.v1`: the wire between `secretctld` and its clients.
//!
//! This crate owns the `.proto` definitions, the one typed client that dials
//! the daemon's Unix socket ([`client`]), and the small vocabulary every piece
//! must agree on: where files live ([`paths`]), what a key name is and how
//! key patterns match ([`names`]), how durations are written
//! ([`duration`]), the rules every piece applies alike ([`rules`]), how
//! outside text is shown ([`text`]), and what the CLI and the web UI share:
//! secret [`templates`], password generation ([`generate`], OS randomness
//! only) and command-line splitting ([`split`], used by the MCP shim and the
//! UI's "would this command run?" box). It links no cryptography and never decrypts
//! anything.
#![forbid(unsafe_code)]

pub mod audit_actions;
pub mod client;
pub mod duration;
pub mod generate;
pub mod names;
pub mod paths;
pub mod proxy_hosts;
mod redacted;
pub mod rules;
pub mod split;
pub mod templates;
pub mod text;
mod wipe;

/// Generated messages and services of package `secretctl.v1`.
pub mod v1 {
    tonic::include_proto!("secretctl.v1");
}

/// Version of the workspace, shared by daemon, CLI and shim.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wire protocol number. Bump it on any change an older peer would misread;
/// clients compare it with `StatusResponse.protocol`.
pub const PROTOCOL: u32 = 2;

/// Metadata key on a refusal that re-authentication can lift (an agent's
/// process asked for a value or a change, contract §9): the CLI may ask for
/// the master password on the terminal and retry.
pub const REAUTH_METADATA: &str = "x-secretctl-reauth";

/// The message a request needing the key gets while the vault is locked
/// (contract §3). Clients recognise it by this exact prefix.
pub const LOCKED_MESSAGE: &str = "vault is locked: run 'secretctl unlock'";
