//! The installation secret that turns phone numbers into pseudonymous [`CallerKey`]s, with an
//! optional previous secret during a key rotation, its fingerprint (which the store keeps, so
//! that a node with another key is refused), and the 32-byte key files it shares with the
//! contact key.
//!
//! [`CallerKey`]: crate::CallerKey

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Accounts, StoreError};

/// Length of the secret in bytes (the HMAC-SHA256 block is larger; 32 bytes is its output size
/// and plenty of key).
pub const SECRET_BYTES: usize = 32;

/// File name of the secret in the data directory.
pub const SECRET_FILE: &str = "secret.key";

/// File name of the previous secret during a key rotation.
pub const PREVIOUS_SECRET_FILE: &str = "secret.previous.key";

/// What a key's fingerprint is the HMAC of. It holds letters, so it is never the E.164 form of
/// a number (whose HMAC is a caller key).
const FINGERPRINT_LABEL: &[u8] = b"belteken secret fingerprint v1";

/// Hex digits of a fingerprint (HMAC-SHA256).
const FINGERPRINT_HEX_DIGITS: usize = 64;

/// Hex digits of a fingerprint shown in messages: enough to tell keys apart.
const FINGERPRINT_SHOWN_DIGITS: usize = 12;

/// Attempts at claiming the store's fingerprint when other nodes change it at the same time.
const CHECK_ATTEMPTS: usize = 3;

/// 32 secret bytes, the HMAC key for caller keys, and optionally the previous secret while a
/// rotation is under way. Whoever holds it can test guesses of phone numbers against stored
/// keys, so it never prints and lives in a mode-0600 file.
///
/// Rotation: move `secret.key` to `secret.previous.key` and start; a new `secret.key` is made.
/// A caller found under the previous key is re-keyed on their next call, never counted twice.
/// Once the old key is gone, callers who never called again can no longer be recognised.
#[derive(Clone)]
pub struct Secret {
    current: [u8; SECRET_BYTES],
    previous: Option<[u8; SECRET_BYTES]>,
}

impl Secret {
    /// Reads the secret at `path`, or creates it with fresh random bytes (mode 0600, fsync'd)
    /// when the file does not exist. A file of any other length than 32 bytes is refused rather
    /// than silently replaced: replacing it would give every caller a new key and let them sign
    /// again.
    pub fn load_or_create(path: &Path) -> Result<Secret, StoreError> {
        Ok(Secret::from_bytes(load_or_create_key_file(path)?))
    }

    /// `secret.key` in `dir` (created when missing) and, when present, `secret.previous.key`.
    pub fn load_dir(dir: &Path) -> Result<Secret, StoreError> {
        let secret = Secret::load_or_create(&dir.join(SECRET_FILE))?;
        match read_key_file(&dir.join(PREVIOUS_SECRET_FILE))? {
            Some(previous) => Ok(secret.with_previous(Secret::from_bytes(previous))),
            None => Ok(secret),
        }
    }

    /// A secret from 64 hex digits (for example from an environment variable, which only the
    /// binary reads).
    pub fn from_hex(hex_digits: &str) -> Result<Secret, StoreError> {
        let mut bytes = [0u8; SECRET_BYTES];
        hex::decode_to_slice(hex_digits.trim(), &mut bytes).map_err(|_| {
            StoreError::SecretWrongLength {
                expected: SECRET_BYTES,
            }
        })?;
        Ok(Secret::from_bytes(bytes))
    }

    /// This secret, with `previous` (its current key) as the secret being rotated out.
    pub fn with_previous(mut self, previous: Secret) -> Secret {
        self.previous = Some(previous.current);
        self
    }

    /// Whether a rotation is under way.
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    /// A secret from known bytes, for tests and for callers that keep the secret elsewhere.
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Secret {
        Secret {
            current: bytes,
            previous: None,
        }
    }

    /// The fingerprint of the current key: hex HMAC-SHA256 of a fixed label under the key.
    /// It tells keys apart without revealing them, and is what the store keeps to refuse a
    /// node that runs with another key ([`check_secret`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current)
    }

    /// The fingerprint of the previous key, during a rotation.
    pub fn previous_fingerprint(&self) -> Option<String> {
        self.previous.as_ref().map(fingerprint)
    }

    /// A key for another use, derived from the current secret: HMAC-SHA256(secret, `purpose`).
    /// Processes sharing the secret derive the same key; the key reveals nothing of the secret.
    pub fn derive_key(&self, purpose: &str) -> [u8; SECRET_BYTES] {
        let tag = hmac_sha256(&self.current, purpose.as_bytes());
        let mut key = [0u8; SECRET_BYTES];
        key.copy_from_slice(tag.as_ref());
        key
    }

    pub(crate) fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.current
    }

    pub(crate) fn previous_bytes(&self) -> Option<&[u8; SECRET_BYTES]> {
        self.previous.as_ref()
    }
}

/// HMAC-SHA256 of `data` under `key`: a tag of [`SECRET_BYTES`] (32) bytes.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

fn fingerprint(key: &[u8; SECRET_BYTES]) -> String {
    hex::encode(hmac_sha256(key, FINGERPRINT_LABEL))
}

/// Checks what a backend is asked to store as a fingerprint: 64 lowercase hex digits.
pub(crate) fn validate_fingerprint(fingerprint: &str) -> Result<(), StoreError> {
    if fingerprint.len() != FINGERPRINT_HEX_DIGITS
        || !fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StoreError::Invalid {
            what: "secret fingerprint",
            why: "must be 64 lowercase hex digits",
        });
    }
    Ok(())
}

fn shown(fingerprint: &str) -> String {
    let short = fingerprint
        .get(..FINGERPRINT_SHOWN_DIGITS)
        .unwrap_or(fingerprint);
    format!("{short}…")
}

/// How [`check_secret`] found the store.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecretCheck {
    /// The store had no fingerprint (a new store, or one from before fingerprints): it now
    /// holds this key's.
    Claimed,
    /// The store's keys are made with this key.
    Same,
    /// The store's keys were made with the previous key: the store now names the current one,
    /// and callers are re-keyed as they call again.
    Rotated,
}

/// Makes sure the store's caller keys are made with `secret`, so that two nodes with different
/// keys never share a store (each would recognise only its own callers, and count a caller
/// once per key). The store keeps the fingerprint of its key: a store without one takes this
/// key's; a store that names the previous key of a rotation moves to the current key; a store
/// that names another key is refused with [`StoreError::SecretMismatch`].
///
/// Run it before the first caller is identified against the store.
pub fn check_secret<S: Accounts + ?Sized>(
    store: &S,
    secret: &Secret,
) -> Result<SecretCheck, StoreError> {
    let current = secret.fingerprint();
    let previous = secret.previous_fingerprint();
    let mut stored = store.secret_fingerprint()?;
    for _ in 0..CHECK_ATTEMPTS {
        let outcome = match stored.as_deref() {
            Some(s) if s == current => return Ok(SecretCheck::Same),
            None => SecretCheck::Claimed,
            Some(s) if previous.as_deref() == Some(s) => SecretCheck::Rotated,
            Some(s) => {
                return Err(StoreError::SecretMismatch {
                    stored: shown(s),
                    current: shown(&current),
                })
            }
        };
        if store.swap_secret_fingerprint(stored.as_deref(), &current)? {
            return Ok(outcome);
        }
        // Another node changed it between our read and our write: judge again by what it
        // wrote.
        stored = store.secret_fingerprint()?;
    }
    Err(StoreError::Invalid {
        what: "secret fingerprint",
        why: "changed by other nodes on every attempt; start again",
    })
}

/// Reads a 32-byte key file; None when it does not exist.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<[u8; SECRET_BYTES]>, StoreError> {
    match File::open(path) {
        Ok(file) => read_from(file).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            what: "open key file",
            source,
        }),
    }
}

/// Reads the 32-byte key file at `path`, or creates it (see [`Secret::load_or_create`]).
pub(crate) fn load_or_create_key_file(path: &Path) -> Result<[u8; SECRET_BYTES], StoreError> {
    {
        match File::open(path) {
            Ok(file) => return read_from(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    what: "open secret file",
                    source,
                })
            }
        }
        let mut bytes = [0u8; SECRET_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Io {
                what: "read OS randomness",
                source: io::Error::other("the system random source failed"),
            })?;
        // create_new: if another process won the race to create it, use theirs.
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let file = File::open(path).map_err(|source| StoreError::Io {
                    what: "open secret file",
                    source,
                })?;
                return read_from(file);
            }
            Err(source) => {
                return Err(StoreError::Io {
                    what: "create secret file",
                    source,
                })
            }
        };
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| StoreError::Io {
                what: "write secret file",
                source,
            })?;
        // Make the new directory entry durable too; best effort where the directory can't be
        // opened (the file itself is already synced).
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(bytes)
    }
}

fn read_from(file: File) -> Result<[u8; SECRET_BYTES], StoreError> {
    {
        let mut buf = Vec::with_capacity(SECRET_BYTES + 1);
        // Read one byte more than needed so an oversized file is detected without reading all of it.
        file.take(SECRET_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|source| StoreError::Io {
                what: "read secret file",
                source,
            })?;
        let bytes: [u8; SECRET_BYTES] =
            buf.as_slice()
                .try_into()
                .map_err(|_| StoreError::SecretWrongLength {
                    expected: SECRET_BYTES,
                })?;
        Ok(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint of the key of 32 bytes 0x01. Stores keep it to recognise their key, so
    /// this never changes.
    const FINGERPRINT: &str = "fd10515c3d1d926f8539550d56a5c33703a56d75ee65ec904346360fb1f3aa03";
    /// `derive_key("belteken test purpose")` under the same key.
    const DERIVED: &str = "27318aa87be47c75abbce857321bb091ba33e1ff7f143fc5f04ad509a6de8313";

    #[test]
    fn fingerprints_and_derived_keys_are_stable() {
        let secret = Secret::from_bytes([1; SECRET_BYTES]);
        assert_eq!(secret.fingerprint(), FINGERPRINT);
        assert!(validate_fingerprint(&secret.fingerprint()).is_ok());
        assert_eq!(
            hex::encode(secret.derive_key("belteken test purpose")),
            DERIVED
        );
        let rotated = Secret::from_bytes([2; SECRET_BYTES]).with_previous(secret);
        assert_eq!(rotated.previous_fingerprint().as_deref(), Some(FINGERPRINT));
        assert_ne!(rotated.fingerprint(), FINGERPRINT);
    }
}
