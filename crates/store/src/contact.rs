//! Contact numbers of callers who asked to be contacted again, encrypted with AES-256-GCM under
//! a key kept in its own file (`contact.key`), apart from the database and the HMAC secret.

use std::fmt;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::error::Unspecified;
use ring::rand::{SecureRandom, SystemRandom};

use crate::caller::parse_number;
use crate::secret::{load_or_create_key_file, SECRET_BYTES};
use crate::StoreError;

/// File name of the contact key in the data directory.
pub const CONTACT_KEY_FILE: &str = "contact.key";

const NONCE_BYTES: usize = NONCE_LEN;

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
        SystemRandom::new().fill(&mut nonce).ok()?;
        self.seal_with_nonce(&parsed.e164, nonce)
    }

    /// The AES-256-GCM key (32 bytes, which [`SECRET_BYTES`] always is).
    fn cipher(&self) -> Result<LessSafeKey, Unspecified> {
        UnboundKey::new(&AES_256_GCM, &self.0).map(LessSafeKey::new)
    }

    /// Encrypts `e164` under `nonce`: the nonce, then the ciphertext and its tag (no associated
    /// data).
    fn seal_with_nonce(&self, e164: &str, nonce: [u8; NONCE_BYTES]) -> Option<SealedContact> {
        let mut in_out = e164.as_bytes().to_vec();
        self.cipher()
            .and_then(|key| {
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut in_out,
                )
            })
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Some(SealedContact(out))
    }

    /// Decrypts a sealed number (E.164). The one place a raw number leaves this crate: for
    /// the campaign team to call back those who asked for it.
    pub fn open(&self, sealed: &SealedContact) -> Result<String, StoreError> {
        let bad = || StoreError::Corrupt("contact number does not decrypt with this key");
        let (nonce, ct) = sealed.0.split_at_checked(NONCE_BYTES).ok_or_else(bad)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut in_out = ct.to_vec();
        let key = self.cipher().map_err(|_| bad())?;
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut in_out)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; SECRET_BYTES] = [0x42; SECRET_BYTES];
    const NONCE: [u8; NONCE_BYTES] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    /// "+32470000001" sealed under `KEY` and `NONCE`: the 12-byte nonce, the ciphertext, then
    /// the 16-byte tag. Contacts sealed before must keep opening, so this never changes.
    const SEALED: &str =
        "000102030405060708090a0b2eeda3e9861cc23bad367422c270fdc5a9e63d287efc136439d14423";

    #[test]
    fn a_contact_sealed_with_a_known_nonce_has_a_known_layout_and_opens() {
        let key = ContactKey::from_bytes(KEY);
        let sealed = key.seal_with_nonce("+32470000001", NONCE).expect("seals");
        assert_eq!(hex::encode(sealed.as_bytes()), SEALED);
        assert_eq!(
            sealed.as_bytes().len(),
            NONCE_BYTES + "+32470000001".len() + 16
        );
        assert_eq!(&sealed.as_bytes()[..NONCE_BYTES], &NONCE);
        let stored = SealedContact::from_bytes(hex::decode(SEALED).expect("hex"));
        assert_eq!(key.open(&stored).expect("opens"), "+32470000001");
    }

    #[test]
    fn a_tampered_or_truncated_contact_or_another_key_does_not_open() {
        let key = ContactKey::from_bytes(KEY);
        let sealed = hex::decode(SEALED).expect("hex");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                key.open(&SealedContact::from_bytes(bad)).is_err(),
                "byte {i}"
            );
        }
        for len in 0..sealed.len() {
            let short = SealedContact::from_bytes(sealed[..len].to_vec());
            assert!(key.open(&short).is_err(), "length {len}");
        }
        let other = ContactKey::from_bytes([0x43; SECRET_BYTES]);
        assert!(other.open(&SealedContact::from_bytes(sealed)).is_err());
    }

    #[test]
    fn seal_takes_a_fresh_nonce_each_time() {
        let key = ContactKey::from_bytes(KEY);
        let a = key.seal(Some("0470000001"), "BE").expect("seals");
        let b = key.seal(Some("0470000001"), "BE").expect("seals");
        assert_ne!(a.as_bytes()[..NONCE_BYTES], b.as_bytes()[..NONCE_BYTES]);
        assert_eq!(key.open(&a).expect("opens"), "+32470000001");
        assert_eq!(key.open(&b).expect("opens"), "+32470000001");
        assert!(key.seal(Some("12"), "BE").is_none());
    }
}
