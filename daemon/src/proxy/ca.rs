//! [`LocalCa`]: the vault's local certificate authority, which signs a leaf
//! certificate for each intercepted host, and the bounded cache of those
//! leaves.
//!
//! Invariants:
//! - The CA is EC P-256, `CA:true, pathlen:0`, key usage keyCertSign (and
//!   cRLSign, digitalSignature); it can sign leaves only, not further CAs.
//! - The CA key leaves this type only through [`LocalCa::key_pem`] (to be
//!   sealed in the vault); nothing here has `Debug`.
//! - At most [`LEAF_CACHE`] leaves are held; a leaf is re-made after
//!   [`LEAF_REFRESH`], well before its [`LEAF_VALIDITY_DAYS`] end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest;
use zeroize::Zeroizing;

use super::ProxyError;

/// Leaves held at most (one per intercepted host).
pub const LEAF_CACHE: usize = 256;
/// A cached leaf is re-made after this long.
pub const LEAF_REFRESH: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a leaf is valid (a day of clock skew is allowed before).
pub const LEAF_VALIDITY_DAYS: i64 = 30;
/// How long the CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;

/// The local CA: certificate, key, and the leaves it has made.
pub struct LocalCa {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Leaf>>,
}

struct Leaf {
    key: Arc<CertifiedKey>,
    made: Instant,
}

impl LocalCa {
    /// A new CA named "secretctl local CA (`label`)".
    pub fn generate(label: &str) -> Result<LocalCa, ProxyError> {
        let err = |e: rcgen::Error| ProxyError::Ca {
            action: "generated",
            reason: e.to_string(),
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("secretctl local CA ({label})"));
        dn.push(DnType::OrganizationName, "secretctl");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(LocalCa {
            cert_der: cert.der().clone(),
            cert_pem: super::certs_pem([cert.der().as_ref()]),
            issuer: Issuer::new(params, key),
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA stored in the vault: its certificate, and its PKCS#8 key.
    /// Refuses a certificate that is not a CA or whose key is not `key_pem`.
    pub fn from_pem(cert_pem: &str, key_pem: &[u8]) -> Result<LocalCa, ProxyError> {
        let bad = |reason: String| ProxyError::Ca {
            action: "loaded",
            reason: format!("{reason}; rotate the local CA to make a new one"),
        };
        let key_pem = std::str::from_utf8(key_pem).map_err(|_| bad("the key is not PEM".into()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| bad(format!("the key: {e}")))?;
        let der = pem::parse(cert_pem)
            .ok()
            .filter(|p| p.tag() == "CERTIFICATE")
            .ok_or_else(|| bad("the certificate is not a PEM CERTIFICATE".into()))?
            .into_contents();
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("the certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(bad("the certificate is not a CA certificate".into()));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(bad("the key does not belong to the certificate".into()));
        }
        let cert_der = CertificateDer::from(der);
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| bad(format!("the certificate: {e}")))?;
        Ok(LocalCa {
            cert_pem: super::certs_pem([cert_der.as_ref()]),
            cert_der,
            issuer,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    pub(crate) fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA key as PKCS#8 PEM. The loud accessor: only for sealing it in
    /// the vault.
    pub fn key_pem(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            Zeroizing::new(self.issuer.key().serialize_pem())
                .as_bytes()
                .to_vec(),
        )
    }

    /// SHA-256 of the certificate (DER), lowercase hex, for display.
    pub fn fingerprint(&self) -> String {
        sha2::Sha256::digest(self.cert_der.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The leaf certificate and key for `host` (a DNS name or an IP
    /// literal), from the cache or made now.
    pub(crate) fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, ProxyError> {
        let host = host.to_ascii_lowercase();
        // A poisoned lock only means another thread panicked mid-insert; the
        // map itself is still a valid cache.
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(leaf) = leaves.get(&host)
            && leaf.made.elapsed() < LEAF_REFRESH
        {
            return Ok(leaf.key.clone());
        }
        let key = Arc::new(self.make_leaf(&host)?);
        if leaves.len() >= LEAF_CACHE && !leaves.contains_key(&host) {
            let oldest = leaves
                .iter()
                .min_by_key(|(_, l)| l.made)
                .map(|(h, _)| h.clone());
            if let Some(oldest) = oldest {
                leaves.remove(&oldest);
            }
        }
        leaves.insert(
            host,
            Leaf {
                key: key.clone(),
                made: Instant::now(),
            },
        );
        Ok(key)
    }

    fn make_leaf(&self, host: &str) -> Result<CertifiedKey, ProxyError> {
        let err = |reason: String| ProxyError::Leaf {
            host: host.to_string(),
            reason,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| err(e.to_string()))?;
        // `new` makes an IP SAN of an IP literal, a DNS SAN otherwise.
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| err(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(LEAF_VALIDITY_DAYS);
        params.serial_number = Some(serial());
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err(e.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialized_der()));
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| err(e.to_string()))?;
        Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
    }
}

/// A random positive 128-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    // Positive and without a leading zero byte, as DER INTEGER wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}
