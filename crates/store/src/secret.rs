//! The installation secret that turns phone numbers into pseudonymous [`CallerKey`]s.
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

/// 32 secret bytes, the HMAC key for caller keys. Whoever holds it can test guesses of phone
/// numbers against stored keys, so it never prints and lives in a mode-0600 file.
#[derive(Clone)]
pub struct Secret([u8; SECRET_BYTES]);

impl Secret {
    /// Reads the secret at `path`, or creates it with fresh random bytes (mode 0600, fsync'd)
    /// when the file does not exist. A file of any other length than 32 bytes is refused rather
    /// than silently replaced: replacing it would give every caller a new key and let them sign
    /// again.
    pub fn load_or_create(path: &Path) -> Result<Secret, StoreError> {
        match File::open(path) {
            Ok(file) => return Self::read_from(file),
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
                return Self::read_from(file);
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
        Ok(Secret(bytes))
    }

    /// A secret from known bytes, for tests and for callers that keep the secret elsewhere.
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Secret {
        Secret(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    fn read_from(file: File) -> Result<Secret, StoreError> {
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
        Ok(Secret(bytes))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}
