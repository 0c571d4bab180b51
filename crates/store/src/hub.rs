//! Live counts per campaign, pushed to open pages (SSE) through `tokio::sync::watch`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::Counts;

/// Most campaigns the hub tracks. Callers should only pass slugs of campaigns that exist;
/// past this limit `subscribe` hands out a receiver that is already closed.
pub const MAX_HUB_CAMPAIGNS: usize = 10_000;

/// Latest counts per campaign, shared by the signing side and the web pages. Cheap to clone.
#[derive(Clone, Default)]
pub struct CountHub {
    inner: Arc<Mutex<HashMap<String, watch::Sender<Counts>>>>,
}

impl CountHub {
    pub fn new() -> CountHub {
        CountHub::default()
    }

    /// Publishes counts returned by the store. Counts only grow while people sign, but two
    /// signers can publish in the other order than they committed; an update that is
    /// component-wise smaller than what the hub holds is such a stale one and is ignored.
    /// Subscribers are woken only on a real change. Use [`CountHub::reset`] after a repair that
    /// lowered a counter.
    pub fn publish(&self, slug: &str, counts: Counts) {
        self.with_sender(slug, |tx| {
            tx.send_if_modified(|cur| {
                let stale =
                    counts.signatures <= cur.signatures && counts.unverified <= cur.unverified;
                if stale {
                    return false;
                }
                *cur = counts;
                true
            });
        });
    }

    /// Sets the counts unconditionally (after `Signing::recount`, which may lower them).
    pub fn reset(&self, slug: &str, counts: Counts) {
        self.with_sender(slug, |tx| {
            tx.send_if_modified(|cur| {
                let changed = *cur != counts;
                *cur = counts;
                changed
            });
        });
    }

    /// A receiver of this campaign's counts; it starts with the current value.
    pub fn subscribe(&self, slug: &str) -> watch::Receiver<Counts> {
        self.with_sender(slug, |tx| tx.subscribe())
            .unwrap_or_else(|| watch::channel(Counts::default()).1)
    }

    /// The latest published counts, or zero when nothing was published for this campaign.
    pub fn current(&self, slug: &str) -> Counts {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(slug).map(|tx| *tx.borrow()).unwrap_or_default()
    }

    /// Runs `f` on the campaign's sender, creating it on first use; None when the hub is full.
    fn with_sender<R>(&self, slug: &str, f: impl FnOnce(&watch::Sender<Counts>) -> R) -> Option<R> {
        // The map holds no invariant a panic could break halfway, so a poisoned lock is usable.
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(slug) {
            return Some(f(tx));
        }
        if map.len() >= MAX_HUB_CAMPAIGNS {
            return None;
        }
        let tx = map
            .entry(slug.to_owned())
            .or_insert_with(|| watch::channel(Counts::default()).0);
        Some(f(tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_subscribe_current() {
        let hub = CountHub::new();
        let mut rx = hub.subscribe("demo");
        assert_eq!(*rx.borrow_and_update(), Counts::default());
        let c = Counts {
            signatures: 2,
            unverified: 1,
        };
        hub.publish("demo", c);
        assert!(rx.has_changed().expect("sender is alive in the hub"));
        assert_eq!(*rx.borrow_and_update(), c);
        assert_eq!(hub.current("demo"), c);
        assert_eq!(hub.current("other"), Counts::default());
        // A stale update (published late by a slower signer) is ignored.
        hub.publish(
            "demo",
            Counts {
                signatures: 1,
                unverified: 1,
            },
        );
        assert_eq!(hub.current("demo"), c);
        assert!(!rx.has_changed().expect("sender is alive in the hub"));
        // The same value again does not wake subscribers.
        hub.publish("demo", c);
        assert!(!rx.has_changed().expect("sender is alive in the hub"));
        // A repair may lower the counts.
        let lower = Counts {
            signatures: 1,
            unverified: 0,
        };
        hub.reset("demo", lower);
        assert_eq!(*rx.borrow_and_update(), lower);
        // A clone shares the state.
        let hub2 = hub.clone();
        hub2.publish("demo", c);
        assert_eq!(hub.current("demo"), c);
    }
}
