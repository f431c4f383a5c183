//! Key derivation and authenticated encryption.
//!
//! - The master password goes through Argon2id (parameters stored in the
//!   vault header) to a key-encryption key that wraps the random data key.
//! - Values, notes and URLs are sealed with AES-256-GCM-SIV under the data
//!   key. The associated data binds the vault id, the key name and the slot
//!   (field name, notes or url), so a ciphertext copied to another entry or
//!   field fails to open.
//!
//! Invariants: plaintext and derived keys live in `Zeroizing` buffers; errors
//! never carry plaintext.

use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use zeroize::Zeroizing;

use crate::keyring::{DataKey, KEY_LEN};

/// Nonce length of AES-GCM-SIV.
pub const NONCE_LEN: usize = 12;
/// Salt length for Argon2id.
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// Contract default: Argon2id m=64 MiB, t=3, p=4.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// Tiny parameters for unit tests only (the defaults stay untouched).
    #[cfg(test)]
    pub const TEST_TINY: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Largest memory accepted, in KiB (1 GiB).
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Most passes accepted.
    pub const MAX_ITERATIONS: u32 = 10;
    /// Most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Refuses parameters Argon2 cannot run or that would exhaust the
    /// machine. Checked before every derivation, also of a stored header: a
    /// tampered header cannot make an unlock take minutes and gigabytes
    /// before the wrapped key's check fails.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let bad = |what: String| Err(CryptoError::BadParams(what));
        if !(1..=Self::MAX_PARALLELISM).contains(&self.parallelism) {
            return bad(format!("parallelism must be 1..={}", Self::MAX_PARALLELISM));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&self.iterations) {
            return bad(format!("iterations must be 1..={}", Self::MAX_ITERATIONS));
        }
        if self.memory_kib < 8 * self.parallelism || self.memory_kib > Self::MAX_MEMORY_KIB {
            return bad("memory must be at least 8 KiB per lane and at most 1 GiB".into());
        }
        Ok(())
    }

    /// Canonical bytes, bound into the wrapped key's associated data so the
    /// stored parameters cannot be altered unnoticed.
    fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.memory_kib.to_be_bytes());
        out[4..8].copy_from_slice(&self.iterations.to_be_bytes());
        out[8..].copy_from_slice(&self.parallelism.to_be_bytes());
        out
    }
}

/// Crypto failures. None of them carries plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid KDF parameters: {0}")]
    BadParams(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("wrong password")]
    WrongPassword,
    #[error("integrity check failed: the ciphertext was altered or moved")]
    Integrity,
    #[error("the system random generator failed: {0}")]
    Random(String),
}

/// A sealed value: nonce plus ciphertext with tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Fills `buf` with OS randomness.
pub fn random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// Derives the key-encryption key from the master password.
pub fn derive_kek(
    password: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    params.validate()?;
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| CryptoError::BadParams(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(out)
}

/// Associated data: each part length-prefixed, so no two part lists encode alike.
pub fn associated_data(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The key that authenticates each secret's metadata (names, sensitivity,
/// tags, expiry, bindings): derived from the data key, so metadata edited
/// in the file is found at the next read.
pub struct RecordKey(Zeroizing<[u8; KEY_LEN]>);

impl RecordKey {
    pub fn derive(dk: &DataKey) -> RecordKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"secretctl-record"), dk.expose_secret());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        hk.expand(b"secretctl record mac v1", out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        RecordKey(out)
    }

    /// HMAC-SHA256 of `parts` (length-prefixed, so they cannot run together).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes any key length");
        m.update(&associated_data(parts));
        m.finalize().into_bytes().into()
    }
}

fn wrap_aad(vault_id: &[u8], params: KdfParams) -> Vec<u8> {
    associated_data(&[b"secretctl/v1/data-key", vault_id, &params.to_bytes()])
}

fn seal_raw(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let cipher = Aes256GcmSiv::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Integrity)?;
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

fn open_raw(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce: [u8; NONCE_LEN] = sealed
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Integrity)?;
    let cipher = Aes256GcmSiv::new(key.into());
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Integrity)
}

/// Wraps the data key under the password-derived key.
pub fn wrap_key(
    kek: &[u8; KEY_LEN],
    vault_id: &[u8],
    params: KdfParams,
    key: &DataKey,
) -> Result<Sealed, CryptoError> {
    seal_raw(kek, &wrap_aad(vault_id, params), key.expose_secret())
}

/// Unwraps the data key; a wrong password (or altered header) fails here.
pub fn unwrap_key(
    kek: &[u8; KEY_LEN],
    vault_id: &[u8],
    params: KdfParams,
    wrapped: &Sealed,
) -> Result<DataKey, CryptoError> {
    let plain = open_raw(kek, &wrap_aad(vault_id, params), wrapped)
        .map_err(|_| CryptoError::WrongPassword)?;
    let bytes: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
        plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::WrongPassword)?,
    );
    Ok(DataKey::from_bytes(&bytes))
}

/// Seals a value under the data key with the given associated data.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    seal_raw(key.expose_secret(), aad, plaintext)
}

/// Opens a value sealed by [`seal`] with the same associated data.
pub fn open(key: &DataKey, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_raw(key.expose_secret(), aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: KdfParams = KdfParams::TEST_TINY;

    #[test]
    fn wrap_round_trip_and_wrong_password() {
        let key = DataKey::generate().unwrap();
        let salt = [1u8; SALT_LEN];
        let kek = derive_kek(b"correct horse", &salt, TINY).unwrap();
        let wrapped = wrap_key(&kek, b"vault-1", TINY, &key).unwrap();
        let back = unwrap_key(&kek, b"vault-1", TINY, &wrapped).unwrap();
        assert_eq!(back.expose_secret(), key.expose_secret());

        let wrong = derive_kek(b"wrong horse", &salt, TINY).unwrap();
        assert!(matches!(
            unwrap_key(&wrong, b"vault-1", TINY, &wrapped),
            Err(CryptoError::WrongPassword)
        ));
        let other_params = KdfParams {
            iterations: 2,
            ..TINY
        };
        assert!(unwrap_key(&kek, b"vault-1", other_params, &wrapped).is_err());
    }

    #[test]
    fn seal_binds_associated_data() {
        let key = DataKey::generate().unwrap();
        let aad_a = associated_data(&[b"field", b"vault", b"a", b"value"]);
        let aad_b = associated_data(&[b"field", b"vault", b"b", b"value"]);
        let sealed = seal(&key, &aad_a, b"s3cret").unwrap();
        assert_ne!(sealed.ciphertext, b"s3cret");
        assert_eq!(open(&key, &aad_a, &sealed).unwrap().as_slice(), b"s3cret");
        assert!(matches!(
            open(&key, &aad_b, &sealed),
            Err(CryptoError::Integrity)
        ));

        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            open(&key, &aad_a, &tampered),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn associated_data_is_unambiguous() {
        assert_ne!(
            associated_data(&[b"ab", b"c"]),
            associated_data(&[b"a", b"bc"])
        );
    }

    #[test]
    fn params_validation() {
        assert!(KdfParams::DEFAULT.validate().is_ok());
        assert!(TINY.validate().is_ok());
        assert!(
            KdfParams {
                parallelism: 0,
                ..TINY
            }
            .validate()
            .is_err()
        );
        assert!(
            KdfParams {
                memory_kib: 4,
                ..TINY
            }
            .validate()
            .is_err()
        );
        assert!(
            KdfParams {
                iterations: 0,
                ..TINY
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn the_default_kdf_is_the_contracts() {
        // Contract: Argon2id m=64 MiB, t=3, p=4. Lowering it weakens every
        // new vault.
        assert_eq!(
            KdfParams::DEFAULT,
            KdfParams {
                memory_kib: 65536,
                iterations: 3,
                parallelism: 4,
            }
        );
    }

    #[test]
    fn params_limits_are_inclusive() {
        let p = |memory_kib: u32, iterations: u32, parallelism: u32| {
            KdfParams {
                memory_kib,
                iterations,
                parallelism,
            }
            .validate()
            .is_ok()
        };
        // At least 8 KiB per lane.
        assert!(p(8, 1, 1) && p(16, 1, 2) && p(32, 1, 4));
        assert!(!p(7, 1, 1) && !p(15, 1, 2) && !p(31, 1, 4));
        // At most 1 GiB.
        let max = KdfParams::MAX_MEMORY_KIB;
        assert_eq!(max, 1024 * 1024);
        assert!(p(max, 1, 1) && !p(max + 1, 1, 1));
        assert!(p(1024, 10, 1) && !p(1024, 11, 1) && !p(1024, 0, 1));
        assert!(p(1024, 1, 16) && !p(1024, 1, 17) && !p(1024, 1, 0));
    }

    #[test]
    fn every_seal_has_a_fresh_random_nonce() {
        let key = DataKey::generate().unwrap();
        let a = seal(&key, b"aad", b"same value").unwrap();
        let b = seal(&key, b"aad", b"same value").unwrap();
        assert_eq!(a.nonce.len(), NONCE_LEN);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(
            a.ciphertext, b.ciphertext,
            "equal values must not look equal"
        );
        let mut buf = [0u8; 32];
        random(&mut buf).unwrap();
        assert_ne!(buf, [0u8; 32]);
    }
}
