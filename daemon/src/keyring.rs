//! The unlocked data key, held in one mlocked, zeroize-on-drop page.
//!
//! Invariants: no `Debug`, `Clone`, `Display` or `Serialize`; the key's bytes
//! leave this type only through [`DataKey::expose_secret`]; dropping it (on
//! lock, idle timeout or shutdown) zeroes the page.

use crate::hardening::LockedPage;

/// Length of the data key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// The vault's 256-bit data key.
pub struct DataKey {
    page: LockedPage,
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut page = LockedPage::new();
        getrandom::fill(&mut page.bytes_mut()[..KEY_LEN])?;
        Ok(DataKey { page })
    }

    /// Builds a key from bytes (e.g. just unwrapped); the caller zeroizes its copy.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let mut page = LockedPage::new();
        page.bytes_mut()[..KEY_LEN].copy_from_slice(bytes);
        DataKey { page }
    }

    /// The raw key. Loud on purpose: every caller is a place plaintext key
    /// material is touched, so keep them few (crypto only).
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        self.page.bytes()[..KEY_LEN]
            .try_into()
            .expect("KEY_LEN bytes always fit in the page")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let c = DataKey::from_bytes(a.expose_secret());
        assert_eq!(a.expose_secret(), c.expose_secret());
    }
}
