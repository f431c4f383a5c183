//! The credential proxy (CONTRACT §12): a run's child holds a placeholder,
//! and a forward proxy of the run's own, in the daemon, puts the value in
//! its place on the way to the hosts the secret names.
//!
//! Map:
//! - [`ca`]: the local CA ([`LocalCa`]) and its per-host leaf cache.
//! - [`hosts`]: [`HostPattern`], the hosts a proxied secret names.
//! - [`roots`]: the roots upstreams are verified against, and the CA bundle
//!   file handed to the child.
//! - [`substitute`]: replacing placeholders in header values and the query.
//! - [`server`]: [`RunProxy`]: listener, proxy credential, connection
//!   tracking, stop.
//! - [`route`]: each request to the proxy itself: authenticate, then
//!   intercept, tunnel, forward or refuse.
//! - [`intercept`]: the TLS-terminated side of an intercepted CONNECT: each
//!   request is checked, substituted, audited and forwarded.
//! - [`wire`]: hop-by-hop headers, plain-text answers, upstream errors.
//!
//! Invariants:
//! - A value is only ever written to a TLS connection to a host one of its
//!   [`HostPattern`]s matches, decided by the CONNECT target (never by a
//!   header), verified against the system roots plus `extra_roots`.
//! - A value is sent only after [`Auditor::substituted`] returned `Ok`.
//! - Values, the proxy credential and the CA key never appear in a log line,
//!   an error or a `Debug` output: the types holding them have no `Debug`.
#![forbid(unsafe_code)]

pub mod ca;
pub mod hosts;
mod intercept;
mod roots;
mod route;
mod server;
mod substitute;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod wire;

use std::path::PathBuf;

use zeroize::Zeroizing;

pub use ca::LocalCa;
pub use hosts::HostPattern;
pub use server::RunProxy;

/// The prefix of every placeholder; what follows is 24 random characters.
pub const PLACEHOLDER_PREFIX: &str = "SECRETCTL_PH_";

/// One proxied value of a run. No `Debug`: it holds the value.
pub struct Substitution {
    /// Audit name, e.g. `github/token` or `stripe#secret` (key plus field).
    pub key: String,
    /// What the child holds instead of the value (from [`placeholder`]).
    pub placeholder: String,
    pub value: Zeroizing<Vec<u8>>,
    /// The hosts the value may be sent to.
    pub hosts: Vec<HostPattern>,
}

/// A fresh placeholder: [`PLACEHOLDER_PREFIX`] + 24 characters of
/// `[A-Za-z0-9]` (about 143 bits), so it is unguessable and survives any
/// quoting or URL encoding unchanged.
pub fn placeholder() -> String {
    format!("{PLACEHOLDER_PREFIX}{}", random_alnum(24))
}

/// `n` random characters of `[A-Za-z0-9]`, unbiased (rejection sampling).
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut buf = [0u8; 64];
        // Without the OS random source nothing this module makes is safe;
        // there is no meaningful way to go on.
        getrandom::fill(&mut buf).expect("the OS random source failed");
        // 248 = 4 * 62: bytes at or above it would favour the first letters.
        for b in buf.into_iter().filter(|b| *b < 248) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[usize::from(b) % 62] as char);
        }
    }
    out
}

/// Certificates (DER) as PEM with LF line endings (the `pem` crate's
/// default is CRLF, which some tools print as stray characters).
pub(crate) fn certs_pem<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    let pems: Vec<pem::Pem> = ders
        .into_iter()
        .map(|d| pem::Pem::new("CERTIFICATE", d.to_vec()))
        .collect();
    pem::encode_many_config(
        &pems,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Proxy settings from the daemon's configuration (`proxy.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Refuse CONNECTs and plain HTTP to hosts no proxied secret names,
    /// instead of tunnelling or forwarding them untouched.
    pub strict: bool,
    /// PEM files of further roots upstreams are verified against (and the
    /// child trusts through the bundle).
    pub extra_roots: Vec<PathBuf>,
}

/// One substitution about to be sent upstream, for the audit log.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub key: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    /// The request path, without the query (which may hold the value).
    pub path: &'a str,
}

/// Records substitutions; the daemon's audit log in production.
pub trait Auditor: Send + Sync + 'static {
    /// Called before a substituted request is sent upstream, on a blocking
    /// thread (it may wait for the record to be durable). `Err(reason)` =>
    /// the request is refused and nothing is sent (fail closed: the audit
    /// record could not be made durable).
    fn substituted(&self, ev: &Event<'_>) -> Result<(), String>;
}

/// Why the proxy or the local CA cannot be set up; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid proxy host {pattern:?}: {reason}")]
    HostPattern { pattern: String, reason: String },
    #[error("the local CA could not be {action}: {reason}")]
    Ca {
        action: &'static str,
        reason: String,
    },
    #[error("a certificate for {host} could not be made from the local CA: {reason}")]
    Leaf { host: String, reason: String },
    #[error("proxy.extra_roots file {path}: {reason}; fix or remove it from the proxy settings")]
    ExtraRoot { path: PathBuf, reason: String },
    #[error(
        "no trusted roots: the system has none and proxy.extra_roots names none; install the system CA certificates (e.g. the ca-certificates package)"
    )]
    NoRoots,
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("the proxy could not listen on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    #[error(
        "the CA bundle directory {path} {problem}; the daemon creates it 0700 under its runtime directory"
    )]
    BundleDir { path: PathBuf, problem: String },
    #[error("the CA bundle file {path} could not be written: {source}; check the directory")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
}
