//! Contact numbers of callers who asked to be contacted again, encrypted with AES-256-GCM under
//! a key kept in its own file (`contact.key`), apart from the database and the HMAC secret.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::rngs::OsRng;
use rand::TryRngCore;

use crate::caller::parse_number;
use crate::secret::{load_or_create_key_file, SECRET_BYTES};
use crate::StoreError;

/// File name of the contact key in the data directory.
pub const CONTACT_KEY_FILE: &str = "contact.key";

const NONCE_BYTES: usize = 12;

/// The AES-256-GCM key for contact numbers. Never prints.
#[derive(Clone)]
pub struct ContactKey([u8; SECRET_BYTES]);

impl ContactKey {
    /// Reads the key at `path` or creates it (mode 0600), like [`crate::Secret::load_or_create`].
    pub fn load_or_create(path: &Path) -> Result<ContactKey, StoreError> {
        load_or_create_key_file(path).map(ContactKey)
    }

    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> ContactKey {
        ContactKey(bytes)
    }

    /// Encrypts the caller's number (E.164, by the rule of [`crate::identify_caller`]); None
    /// when it is not a usable number.
    pub fn seal(&self, raw_user: Option<&str>, default_region: &str) -> Option<SealedContact> {
        let parsed = parse_number(raw_user, default_region)?;
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.try_fill_bytes(&mut nonce).ok()?;
        let cipher = Aes256Gcm::new_from_slice(&self.0).ok()?;
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), parsed.e164.as_bytes())
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Some(SealedContact(out))
    }

    /// Decrypts a sealed number (E.164). The one place a raw number leaves this crate: for
    /// the campaign team to call back those who asked for it.
    pub fn open(&self, sealed: &SealedContact) -> Result<String, StoreError> {
        let bad = || StoreError::Corrupt("contact number does not decrypt with this key");
        let (nonce, ct) = sealed.0.split_at_checked(NONCE_BYTES).ok_or_else(bad)?;
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| bad())?;
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

impl fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContactKey(..)")
    }
}

/// A contact number encrypted by [`ContactKey::seal`]: nonce then ciphertext and tag.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedContact(pub(crate) Vec<u8>);

impl SealedContact {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: Vec<u8>) -> SealedContact {
        SealedContact(bytes)
    }
}

impl fmt::Debug for SealedContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedContact({} bytes)", self.0.len())
    }
}
