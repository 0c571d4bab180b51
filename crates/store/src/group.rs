//! Group commit: one committer thread per store takes the signatures that callers are waiting
//! on, writes as many as are queued in one transaction (one fsync), and only then answers each
//! caller. Signing many calls at once thus costs one fsync per group, not per call.
//!
//! A group that fails as a whole (an unknown campaign, a database error) is retried one
//! signature at a time, so one bad signature never fails the others.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::{NewSignature, SignOutcome, StoreError};

/// Most signatures committed in one transaction.
pub const MAX_GROUP_SIGNATURES: usize = 256;

/// Most recording bytes in one transaction (a group stops growing past this).
pub const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Most signatures waiting for the committer; a caller past it waits for room (the number of
/// calls, itself limited, bounds how many can wait).
pub const MAX_PENDING_SIGNATURES: usize = 1024;

/// Writes a group of signatures in one durable transaction, returning one outcome per
/// signature in order, or fails the whole group (nothing written).
pub(crate) type CommitFn =
    Box<dyn FnMut(&[NewSignature]) -> Result<Vec<SignOutcome>, StoreError> + Send>;

struct Job {
    sig: NewSignature,
    reply: SyncSender<Result<SignOutcome, StoreError>>,
}

/// The committer thread and the queue to it. Dropping it lets the thread finish the queue and
/// waits for it.
pub(crate) struct Committer {
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(name: &str, commit: CommitFn) -> Result<Committer, StoreError> {
        let (queue, rx) = mpsc::sync_channel(MAX_PENDING_SIGNATURES);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(rx, commit))
            .map_err(|source| StoreError::Io {
                what: "start the committer thread",
                source,
            })?;
        Ok(Committer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues the signature and waits until its group is durable.
    pub(crate) fn sign(&self, sig: NewSignature) -> Result<SignOutcome, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        queue
            .send(Job { sig, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Job>, mut commit: CommitFn) {
    while let Ok(first) = rx.recv() {
        let mut bytes = first.sig.recording_wav.len();
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP_SIGNATURES && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.sig.recording_wav.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (sigs, replies): (Vec<NewSignature>, Vec<_>) =
            jobs.into_iter().map(|j| (j.sig, j.reply)).unzip();
        match guarded(&mut commit, &sigs) {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) if sigs.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (sig, reply) in sigs.iter().zip(replies) {
                    let _ = reply.send(guarded(&mut commit, std::slice::from_ref(sig)).and_then(
                        |mut v| {
                            v.pop()
                                .ok_or(StoreError::Corrupt("commit returned no outcome"))
                        },
                    ));
                }
            }
        }
    }
}

/// Runs one commit, turning a panic into an error so that the thread (and the store) lives on,
/// and checking the one-outcome-per-signature contract.
fn guarded(commit: &mut CommitFn, sigs: &[NewSignature]) -> Result<Vec<SignOutcome>, StoreError> {
    let outcomes = panic::catch_unwind(AssertUnwindSafe(|| commit(sigs)))
        .map_err(|_| StoreError::Corrupt("the committer panicked"))??;
    if outcomes.len() != sigs.len() {
        return Err(StoreError::Corrupt(
            "commit returned the wrong number of outcomes",
        ));
    }
    Ok(outcomes)
}
