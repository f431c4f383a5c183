//! Trust, both ways: the roots the proxy verifies upstreams against (system
//! roots plus `proxy.extra_roots`), and the CA bundle file the child is
//! pointed at (those same roots plus the local CA).
//!
//! Invariants: a bad `extra_roots` file is an error naming it, never
//! skipped; the bundle is created fresh (`O_EXCL`, `O_NOFOLLOW`, 0600) under
//! a random name, in a directory that is ours and 0700, so nothing
//! pre-placed can be reused or followed.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{ProxyError, Settings};

/// The roots of a run's proxy.
pub(crate) struct Roots {
    /// For verifying upstreams.
    pub store: RootCertStore,
    /// The same certificates, for the child's bundle.
    pub certs: Vec<CertificateDer<'static>>,
}

/// System roots (rustls-native-certs: the platform store, or the daemon's
/// own `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus each `extra_roots` PEM file.
pub(crate) fn load(settings: &Settings) -> Result<Roots, ProxyError> {
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        // Some platform stores hold a few unreadable entries; the rest are
        // still good roots, so warn and go on.
        tracing::warn!(
            errors = native.errors.len(),
            "some system root certificates could not be read"
        );
    }
    let mut certs = native.certs;
    for path in &settings.extra_roots {
        let bad = |reason: String| ProxyError::ExtraRoot {
            path: path.clone(),
            reason,
        };
        let found = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not valid PEM: {e}")))?;
        if found.is_empty() {
            return Err(bad("holds no PEM CERTIFICATE".into()));
        }
        let mut one = RootCertStore::empty();
        for cert in &found {
            one.add(cert.clone())
                .map_err(|e| bad(format!("not a usable root certificate: {e}")))?;
        }
        certs.extend(found);
    }
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(ProxyError::NoRoots);
    }
    Ok(Roots { store, certs })
}

/// Writes `roots` then `ca` as PEM to a new 0600 file in `dir` and returns
/// its path.
pub(crate) fn write_bundle(
    dir: &Path,
    roots: &[CertificateDer<'static>],
    ca: &CertificateDer<'static>,
) -> Result<PathBuf, ProxyError> {
    check_dir(dir)?;
    let path = dir.join(format!("proxy-ca-{}.pem", super::random_alnum(16)));
    let err = |source| ProxyError::Bundle {
        path: path.clone(),
        source,
    };
    let text = super::certs_pem(roots.iter().chain(std::iter::once(ca)).map(|c| c.as_ref()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(err)?;
    if let Err(e) = file.write_all(text.as_bytes()) {
        let _ = std::fs::remove_file(&path);
        return Err(err(e));
    }
    Ok(path)
}

/// The bundle's directory must be ours and private: a directory (not a
/// symlink), owned by our uid, without group/other permission bits.
fn check_dir(dir: &Path) -> Result<(), ProxyError> {
    let bad = |problem: String| ProxyError::BundleDir {
        path: dir.to_path_buf(),
        problem,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("is not a directory (or is a symlink)".into()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(bad("is owned by another user".into()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(bad(format!(
            "has mode {:o}; it must be 0700",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}
