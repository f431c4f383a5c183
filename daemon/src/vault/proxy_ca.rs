//! The credential proxy's local CA in the vault (contract §12): its
//! certificate and key, sealed with the data key like the applied copies
//! of the settings files, so the key never touches the disk in clear and
//! goes wherever the vault goes (backup, restore, password change).

use zeroize::Zeroizing;

use super::{Vault, VaultError, from_record, to_record};
use crate::crypto;
use crate::keyring::DataKey;
use crate::store::Applied;

/// The CA as stored: its certificate (public) and key (PEM, secret).
pub struct StoredCa {
    pub cert_pem: String,
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl Vault {
    /// The stored CA, if one was made.
    pub fn proxy_ca(&self, dk: &DataKey) -> Result<Option<StoredCa>, VaultError> {
        let Some(sealed) = self.store.applied(Applied::ProxyCa)? else {
            return Ok(None);
        };
        let damaged = || VaultError::Integrity {
            key: "(proxy CA)".into(),
            slot: "the credential proxy's CA".into(),
        };
        let plain = crypto::open(
            dk,
            &self.applied_aad(Applied::ProxyCa),
            &from_record(sealed),
        )
        .map_err(|_| damaged())?;
        // Framing: 4-byte big-endian length of the certificate, the
        // certificate, the key.
        let (len, rest) = plain.split_at_checked(4).ok_or_else(damaged)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| damaged())?) as usize;
        let (cert, key) = rest.split_at_checked(len).ok_or_else(damaged)?;
        Ok(Some(StoredCa {
            cert_pem: String::from_utf8(cert.to_vec()).map_err(|_| damaged())?,
            key_pem: Zeroizing::new(key.to_vec()),
        }))
    }

    /// Stores (replaces) the CA, in one transaction.
    pub fn set_proxy_ca(
        &self,
        dk: &DataKey,
        cert_pem: &str,
        key_pem: &[u8],
    ) -> Result<(), VaultError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + cert_pem.len() + key_pem.len()));
        plain.extend_from_slice(&(cert_pem.len() as u32).to_be_bytes());
        plain.extend_from_slice(cert_pem.as_bytes());
        plain.extend_from_slice(key_pem);
        let sealed = crypto::seal(dk, &self.applied_aad(Applied::ProxyCa), &plain)
            .map_err(VaultError::Crypto)?;
        Ok(self
            .store
            .set_applied(Applied::ProxyCa, &to_record(sealed))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;

    #[test]
    fn the_ca_is_sealed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, dk) =
            Vault::init(&dir.path().join("v.redb"), b"pw", KdfParams::TEST_TINY).unwrap();
        assert!(vault.proxy_ca(&dk).unwrap().is_none());
        let key = b"PRIVATE-KEY-MARKER-0123456789";
        vault.set_proxy_ca(&dk, "CERT", key).unwrap();
        let got = vault.proxy_ca(&dk).unwrap().unwrap();
        assert_eq!(
            (got.cert_pem.as_str(), got.key_pem.as_slice()),
            ("CERT", &key[..])
        );
        let raw = std::fs::read(dir.path().join("v.redb")).unwrap();
        assert!(
            !raw.windows(key.len()).any(|w| w == key),
            "the key is sealed"
        );
        let other = DataKey::generate().unwrap();
        assert!(
            vault.proxy_ca(&other).is_err(),
            "another key cannot open it"
        );
    }
}
