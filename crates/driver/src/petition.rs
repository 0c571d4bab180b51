//! What a call does to the petition: whether its caller signed, the signature, a withdrawal.
//! The one place a call writes to the store (and tells the live count about it).

use std::sync::Arc;
use std::time::Duration;

use flow::engine::SignResult;
use tracing::{info, warn};

use crate::CallInfo;

/// The store and the live count, as a call sees them.
#[derive(Clone)]
pub struct Petition {
    pub store: Arc<dyn store::Store>,
    pub hub: store::CountHub,
}

/// A recording of the caller, as the signature keeps it (an 8 kHz 16-bit mono WAV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub wav: Vec<u8>,
    /// How much of it was speech.
    pub speech: Duration,
}

impl Petition {
    /// Whether this caller already has a signature on the campaign (false for a withheld
    /// caller, and when the store cannot tell: the flow then treats them as new).
    pub fn already_signed(&self, campaign: &str, caller: &store::CallerIdentity) -> bool {
        if matches!(caller, store::CallerIdentity::Withheld) {
            return false;
        }
        self.store
            .has_signed_identity(campaign, caller)
            .unwrap_or(false)
    }

    /// The campaign's count as the live pages show it.
    pub fn count(&self, campaign: &str) -> u64 {
        self.hub.current(campaign).signatures
    }

    /// Commits the call's signature, durably, with its recording (a flow that signs by a key
    /// has none: the row then keeps a short silent WAV) and the caller's sealed number when
    /// they asked to be contacted. Blocks on the store.
    pub fn sign(
        &self,
        call: &CallInfo,
        take: Option<Recording>,
        contact: Option<store::SealedContact>,
    ) -> SignResult {
        let take = take.unwrap_or_else(|| Recording {
            wav: media::wav::pcm16_mono(&[0; media::FRAME_SAMPLES], 8000),
            speech: Duration::ZERO,
        });
        let signature = store::NewSignature {
            campaign: call.campaign.clone(),
            caller: (*call.caller).clone(),
            recording_wav: take.wav,
            speech_ms: u32::try_from(take.speech.as_millis()).unwrap_or(u32::MAX),
            channel: call.channel,
            trust: Some(call.trust),
            flow_version: Some(call.flow_version.clone()),
            contact,
        };
        match self.store.sign(signature) {
            Ok(outcome) => {
                let counts = outcome.counts();
                self.hub.publish(&call.campaign, counts);
                let result = match outcome {
                    store::SignOutcome::Counted { .. } => SignResult::Counted {
                        number: counts.signatures,
                    },
                    store::SignOutcome::AlreadySigned { .. } => SignResult::AlreadySigned,
                    store::SignOutcome::Unverified { .. } => SignResult::Unverified,
                };
                info!(call = %call.id, channel = call.channel, campaign = %call.campaign, ?result, signatures = counts.signatures, unverified = counts.unverified, "signature");
                result
            }
            Err(e) => {
                warn!(call = %call.id, channel = call.channel, error = %e, "signature not stored");
                SignResult::Failed
            }
        }
    }

    /// Deletes the caller's signature and recording (they withdrew by phone); whether there
    /// was one. Blocks on the store.
    pub fn withdraw(&self, call: &CallInfo) -> bool {
        let Some(key) = call.caller.key() else {
            return false;
        };
        match self.store.erase(&call.campaign, key) {
            Ok(erased) => {
                if let Ok(counts) = self.store.counts(&call.campaign) {
                    self.hub.reset(&call.campaign, counts);
                }
                info!(call = %call.id, channel = call.channel, campaign = %call.campaign, erased, "signature withdrawn by phone");
                erased
            }
            Err(e) => {
                warn!(call = %call.id, channel = call.channel, error = %e, "withdrawal failed");
                false
            }
        }
    }
}
