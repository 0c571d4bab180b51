//! The campaign team's console accounts: users with argon2id password hashes, sessions and
//! API tokens (both kept only as SHA-256 hashes of the random token), and the per-call
//! summaries behind the funnel and the listening curve.
//!
//! Everything lives in the store so that every node behind a load balancer knows the same
//! users and sessions. Nothing here touches caller data: a call summary says how far a call
//! got, never who made it.

use std::time::{Duration, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::StoreError;

/// Longest console user name, in bytes.
pub const MAX_USER_NAME_BYTES: usize = 64;
/// Shortest password `hash_password` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password, in bytes (argon2 takes any length; this bounds the work per login).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest API token label, in bytes.
pub const MAX_TOKEN_LABEL_BYTES: usize = 100;
/// Longest audit action or detail [`crate::Audit::record_audit`] takes, in bytes.
pub const MAX_AUDIT_BYTES: usize = 1000;

/// What a console user may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub enum Role {
    /// Everything: review, bulk invalidation, export, erasure, campaign editing, users.
    Admin,
    /// List, listen to and judge signatures.
    Reviewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Reviewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A console user, without the password hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A live console session, found by its token's hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsoleSession {
    pub user: String,
    pub role: Role,
    /// The per-session token every console form carries.
    pub csrf: String,
}

/// How long a session lives: `idle` since its last use, `absolute` since login.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(2 * 3600),
            absolute: Duration::from_secs(14 * 3600),
        }
    }
}

/// An admin API token as listed (its secret is never shown again after creation).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ApiTokenInfo {
    pub user: String,
    pub label: String,
    pub created_at: String,
    /// RFC 3339 UTC; past it the token is refused.
    pub expires_at: String,
}

/// How one call went, recorded when it ends: nothing about the caller.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CallSummary {
    pub campaign: String,
    pub flow_version: Option<String>,
    /// Which channel took the call, e.g. "sip".
    pub channel: String,
    pub ended_at: Option<SystemTime>,
    pub answered: bool,
    /// Milliseconds of the story the caller stayed on the line for.
    pub story_heard_ms: u64,
    /// Whether the caller heard the story to its end.
    pub story_completed: bool,
    /// Whether a recording was made.
    pub recorded: bool,
    /// Whether the call ended in a stored signature.
    pub signed: bool,
}

/// A campaign's funnel over the call summaries.
#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct Funnel {
    pub calls: u64,
    pub answered: u64,
    pub story_completed: u64,
    pub recorded: u64,
    pub signed: u64,
    /// `curve[s]`: answered calls still listening at second `s` of the story (so `curve[0]` is
    /// the answered calls). Its length is one more than the longest time anyone listened,
    /// capped at [`MAX_CURVE_SECONDS`].
    pub curve: Vec<u64>,
}

/// The listening curve is cut here (an hour of story is more than any campaign has).
pub const MAX_CURVE_SECONDS: usize = 3600;

impl Funnel {
    /// Builds the curve from (whole seconds heard, number of calls) pairs.
    pub fn curve_from_histogram(histogram: &[(u64, u64)]) -> Vec<u64> {
        let longest = histogram
            .iter()
            .map(|&(s, _)| s.min(MAX_CURVE_SECONDS as u64) as usize)
            .max();
        let Some(longest) = longest else {
            return Vec::new();
        };
        let mut at = vec![0u64; longest + 1];
        for &(s, n) in histogram {
            let s = s.min(MAX_CURVE_SECONDS as u64) as usize;
            // `at` has room for every second up to `longest`, which bounds `s`.
            if let Some(slot) = at.get_mut(s) {
                *slot = slot.saturating_add(n);
            }
        }
        // Still listening at second s: everyone who heard s seconds or more.
        let mut acc = 0u64;
        for v in at.iter_mut().rev() {
            acc = acc.saturating_add(*v);
            *v = acc;
        }
        at
    }
}

/// Hashes a password with argon2id (19 MiB, 2 passes, 1 lane: OWASP's recommendation) and a
/// random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::Invalid {
            what: "password",
            why: "shorter than 10 characters",
        });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(StoreError::Invalid {
            what: "password",
            why: "longer than 1024 bytes",
        });
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StoreError::Invalid {
            what: "password salt",
            why: "no system randomness",
        })?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| StoreError::Invalid {
        what: "password salt",
        why: "cannot encode",
    })?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| StoreError::Invalid {
            what: "password",
            why: "cannot hash",
        })?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`; false for a malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(a) = argon2() else {
        return false;
    };
    a.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Verifies against a fixed hash, so that a login with an unknown user name takes as long as
/// one with a wrong password.
pub fn verify_password_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

fn argon2() -> Result<Argon2<'static>, StoreError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| StoreError::Invalid {
        what: "argon2 parameters",
        why: "rejected",
    })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A fresh random 256-bit token, hex-encoded (for session cookies, CSRF and API tokens).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works once the process runs");
    hex::encode(bytes)
}

/// The hash under which a session or API token is stored (SHA-256, hex).
pub fn token_hash(token: &str) -> String {
    hex::encode(digest(&SHA256, token.as_bytes()))
}

/// Checks a user name: 1 to 64 bytes of letters, digits and `.-_@`.
pub fn validate_user_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > MAX_USER_NAME_BYTES
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(StoreError::Invalid {
            what: "user name",
            why: "must be 1 to 64 letters, digits or .-_@",
        });
    }
    Ok(())
}

pub(crate) fn validate_token_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid {
            what: "token hash",
            why: "must be 64 hex digits",
        });
    }
    Ok(())
}

pub(crate) fn validate_label(label: &str) -> Result<(), StoreError> {
    if label.trim().is_empty() || label.len() > MAX_TOKEN_LABEL_BYTES {
        return Err(StoreError::Invalid {
            what: "token label",
            why: "must be 1 to 100 bytes",
        });
    }
    Ok(())
}

pub(crate) fn validate_audit(action: &str, detail: &str) -> Result<(), StoreError> {
    if action.is_empty() || action.len() > MAX_AUDIT_BYTES || detail.len() > MAX_AUDIT_BYTES {
        return Err(StoreError::Invalid {
            what: "audit entry",
            why: "action must be 1 to 1000 bytes, detail at most 1000",
        });
    }
    Ok(())
}

pub(crate) fn validate_summary(s: &CallSummary) -> Result<(), StoreError> {
    crate::validate_campaign(&s.campaign, "")?;
    if s.channel.is_empty() || s.channel.len() > 32 {
        return Err(StoreError::Invalid {
            what: "channel",
            why: "must be 1 to 32 bytes",
        });
    }
    if s.flow_version
        .as_ref()
        .is_some_and(|v| v.len() > crate::MAX_FLOW_VERSION_BYTES)
    {
        return Err(StoreError::Invalid {
            what: "flow_version",
            why: "longer than 64 bytes",
        });
    }
    Ok(())
}

/// Whether a session created at `created` and last used at `last_seen` (Unix seconds) is still
/// alive at `now`.
pub(crate) fn session_alive(created: i64, last_seen: i64, now: i64, limits: SessionLimits) -> bool {
    let idle = i64::try_from(limits.idle.as_secs()).unwrap_or(i64::MAX);
    let absolute = i64::try_from(limits.absolute.as_secs()).unwrap_or(i64::MAX);
    now.saturating_sub(last_seen) < idle && now.saturating_sub(created) < absolute
}

/// Open sessions per user at most; a new login ends the least recently used beyond this.
pub const MAX_SESSIONS_PER_USER: i64 = 20;

/// Sessions touched less than this long ago are not written again on use.
pub(crate) const TOUCH_EVERY_SECS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn curve_counts_everyone_still_listening() {
        assert_eq!(
            Funnel::curve_from_histogram(&[(0, 2), (2, 1), (3, 3)]),
            vec![6, 4, 4, 3]
        );
        assert!(Funnel::curve_from_histogram(&[]).is_empty());
    }

    /// SHA-256 of a fixed token, hex. Sessions and API tokens are looked up by this hash, so
    /// it never changes.
    const TOKEN_HASH: &str = "2a8abfa8cb9906290437854193ca6bca41d4d4e26d1d454bd66a35158095e737";
    /// An argon2id hash of "correct horse battery" with the parameters of [`hash_password`].
    const PASSWORD_HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$/8cWUXagKNbFbAx8KmZj3A$/EXm8BxhRSX+oLP+HtYZVcKH1i2XYEnHlmYKjuM6gfg";

    #[test]
    fn token_hashes_and_password_hashes_made_before_still_match() {
        assert_eq!(
            token_hash("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
            TOKEN_HASH
        );
        assert!(verify_password("correct horse battery", PASSWORD_HASH));
        assert!(!verify_password("correct horse batterz", PASSWORD_HASH));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert!(validate_token_hash(&token_hash(&a)).is_ok());
    }
}

/// Call summaries waiting for the writer, at most; more are dropped (and counted).
pub const MAX_PENDING_SUMMARIES: usize = 10_000;
/// How long the writer gathers summaries before one transaction writes them.
pub const SUMMARY_BATCH_WINDOW: Duration = Duration::from_secs(1);

/// Writes call summaries in batches on its own thread: a call's end costs a channel send,
/// and the store one transaction (one flush) per [`SUMMARY_BATCH_WINDOW`] at most. Cheap to
/// clone; the thread ends after the last clone is dropped, writing what is queued
/// ([`CallSummaries::close`] waits for that).
#[derive(Clone)]
pub struct CallSummaries {
    tx: std::sync::mpsc::SyncSender<CallSummary>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: std::sync::Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl CallSummaries {
    pub fn start<S: crate::Calls + ?Sized + 'static>(
        store: std::sync::Arc<S>,
    ) -> Result<CallSummaries, StoreError> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel::<CallSummary>(MAX_PENDING_SUMMARIES);
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failed_in_thread = failed.clone();
        let thread = std::thread::Builder::new()
            .name("store-call-summaries".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    let until = std::time::Instant::now() + SUMMARY_BATCH_WINDOW;
                    while batch.len() < 1000 {
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    if store.record_calls(&batch).is_err() {
                        failed_in_thread.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|source| StoreError::Io {
                what: "start the call summary writer",
                source,
            })?;
        Ok(CallSummaries {
            tx,
            dropped: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            failed,
            thread: std::sync::Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Drops this handle and waits, up to `limit`, for the writer to write what is queued and
    /// end (it ends once every other clone is dropped too). True when it ended: its hold on
    /// the store is released.
    pub fn close(self, limit: Duration) -> bool {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self);
        let Some(thread) = thread else {
            return true;
        };
        let deadline = std::time::Instant::now() + limit;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        thread.join().is_ok()
    }

    /// Queues a summary without blocking; dropped (and counted) when the queue is full.
    pub fn record(&self, summary: CallSummary) {
        if self.tx.try_send(summary).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Summaries dropped because the queue was full, and lost because the store failed.
    pub fn lost(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.dropped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
