//! The installation secret that turns phone numbers into pseudonymous [`CallerKey`]s, with an
//! optional previous secret during a key rotation, and the 32-byte key files it shares with
//! the contact key.
//!
//! [`CallerKey`]: crate::CallerKey

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::rngs::OsRng;
use rand::TryRngCore;

use crate::StoreError;

/// Length of the secret in bytes (the HMAC-SHA256 block is larger; 32 bytes is its output size
/// and plenty of key).
pub const SECRET_BYTES: usize = 32;

/// File name of the secret in the data directory.
pub const SECRET_FILE: &str = "secret.key";

/// File name of the previous secret during a key rotation.
pub const PREVIOUS_SECRET_FILE: &str = "secret.previous.key";

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

    /// A key for another use, derived from the current secret: HMAC-SHA256(secret, `purpose`).
    /// Processes sharing the secret derive the same key; the key reveals nothing of the secret.
    pub fn derive_key(&self, purpose: &str) -> [u8; SECRET_BYTES] {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.current) else {
            unreachable!("HMAC takes a key of any length");
        };
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.current
    }

    pub(crate) fn previous_bytes(&self) -> Option<&[u8; SECRET_BYTES]> {
        self.previous.as_ref()
    }
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
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| StoreError::Io {
                what: "read OS randomness",
                source: io::Error::other(e),
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
