//! The call driver: one per call, whatever the channel. It runs the call's flow
//! [`Engine`], carries out the engine's actions on a [`Channel`] (SIP and RTP, or a cloud
//! provider's webhooks), and keeps what every channel shares in one place: the caller's
//! recording until the flow signs with it, the signature and the withdrawal (as [`Job`]s that
//! the channel runs where blocking is allowed, against the [`Petition`]), the wish to be
//! contacted, and the call's funnel (how much of the story it heard, whether it recorded and
//! signed).
//!
//! Sans-IO like the engine: no socket, no clock (time is an argument), no runtime. A channel
//! pumps its own events (RTP, dialog requests, webhooks) into [`Driver::handle`] and
//! [`Driver::recorded`], calls [`Driver::step`] after each, and feeds each [`Job`]'s result
//! back.

mod campaign;
mod funnel;
mod petition;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flow::engine::{Action, CallFacts, Engine, Input, Outcome, PromptRef, SignResult};
use flow::spec::FlowSpec;
use flow::Lang;
use tracing::{debug, info};

pub use campaign::{Campaign, CampaignAudio, CampaignList, Translation};
pub use funnel::story_step;
use funnel::Funnel;
pub use petition::{Petition, Recording};

/// Who and what a call is about: enough to sign for it and to name it in the logs (no phone
/// number: the caller is a keyed identity).
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The call's name in the logs (a SIP Call-ID, a provider's call id).
    pub id: String,
    /// The campaign's slug.
    pub campaign: String,
    /// The version of the flow and audio the caller hears, kept with the signature.
    pub flow_version: String,
    pub caller: Arc<store::CallerIdentity>,
    /// How far the caller's identity can be trusted.
    pub trust: store::Trust,
    /// Which channel took the call (`sip`, `twilio`, ...), kept with the signature.
    pub channel: &'static str,
}

/// The limits of one recording of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingLimits {
    pub max: Duration,
    /// Silence after speech that ends it.
    pub silence_end: Duration,
    /// Silence before any speech that ends it.
    pub initial_silence: Duration,
}

/// What a channel does for the driver. Each call returns at once: whatever takes time (an
/// answer on the wire, a REFER, the end of a prompt) comes back later as an [`Input`]
/// through [`Driver::handle`], or as a recording through [`Driver::recorded`].
pub trait Channel {
    /// Tell the caller it rings (180), when the call is not answered yet.
    fn ring(&mut self) {}
    /// Answer the call (200 with the media answer); whether it is answered now. A channel
    /// whose calls arrive answered does nothing and sends [`Input::Answered`] first.
    fn answer(&mut self, _now: Instant) -> bool {
        false
    }
    /// Start playing these, one after another, and send [`Input::PromptFinished`] at the end.
    /// False when none of them can be played: the driver then takes the prompt as over.
    fn play(&mut self, now: Instant, prompts: &[PromptRef], barge_in: bool) -> bool;
    /// Stop the playback; no [`Input::PromptFinished`] for it follows.
    fn stop_playback(&mut self, _now: Instant) {}
    /// Record the caller within these limits; its end comes back through [`Driver::recorded`]
    /// (or as [`Input::RecordingFinished`] from a channel that keeps recordings itself).
    fn start_recording(&mut self, limits: RecordingLimits);
    /// End the recording now; its end comes back as for [`Channel::start_recording`].
    fn stop_recording(&mut self) {}
    /// The flow threw the last recording away (the driver already dropped its copy).
    fn discard_recording(&mut self) {}
    /// Transfer the caller (REFER, or the provider's dial); send [`Input::TransferResult`].
    fn transfer(&mut self, uri: String);
    /// End the call (BYE, or a final response before the answer).
    fn hangup(&mut self);
}

/// Work on the store that a step asks for. The channel runs it where blocking is allowed
/// (a blocking thread, a webhook's worker) and feeds the [`Input`] it returns to the driver.
#[derive(Debug)]
pub enum Job {
    /// Commit the call's signature.
    Sign(SignJob),
    /// Delete the caller's signature (they withdrew by phone).
    Withdraw(Arc<CallInfo>),
}

/// A signature to commit: the call, its recording and the caller's sealed number.
#[derive(Debug)]
pub struct SignJob {
    call: Arc<CallInfo>,
    take: Option<Recording>,
    contact: Option<store::SealedContact>,
}

impl SignJob {
    /// Commits it; the store's answer.
    pub fn sign(self, petition: &Petition) -> SignResult {
        petition.sign(&self.call, self.take, self.contact)
    }
}

impl Job {
    /// Runs it against the store: the input for the driver.
    pub fn run(self, petition: &Petition) -> Input {
        match self {
            Job::Sign(job) => Input::Signed(job.sign(petition)),
            Job::Withdraw(call) => Input::Withdrawn(petition.withdraw(&call)),
        }
    }
}

/// One call's driver.
pub struct Driver {
    engine: Engine,
    call: Arc<CallInfo>,
    /// The last recording, until the flow signs with it or throws it away.
    take: Option<Recording>,
    /// The caller's sealed number, kept with the signature if they ask to be contacted.
    contact: Option<store::SealedContact>,
    wants_contact: bool,
    funnel: Funnel,
}

impl Driver {
    /// Starts the call's flow at `now`. `story` names the flow's story step (for the funnel:
    /// [`story_step`]); `contact` is the caller's sealed number when the campaign keeps the
    /// numbers of callers who ask to be contacted.
    pub fn new(
        flow: Arc<FlowSpec>,
        facts: CallFacts,
        now: Instant,
        call: CallInfo,
        story: Option<String>,
        contact: Option<store::SealedContact>,
    ) -> Driver {
        Driver {
            engine: Engine::new(flow, facts, now),
            call: Arc::new(call),
            take: None,
            contact,
            wants_contact: false,
            funnel: Funnel::new(story),
        }
    }

    /// The flow engine (its step, timer, outcome and language).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// When the flow wants [`Input::Timer`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// Whether the flow has ended.
    pub fn is_done(&self) -> bool {
        self.engine.is_done()
    }

    /// How the call went so far.
    pub fn outcome(&self) -> Outcome {
        self.engine.outcome()
    }

    /// Feeds something that happened to the call at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Answered => self.funnel.answered = true,
            Input::PromptFinished => self.funnel.finished(now),
            Input::RecordingFinished { .. } => self.funnel.recorded = true,
            Input::Signed(r) => {
                self.funnel.signed |=
                    matches!(r, SignResult::Counted { .. } | SignResult::Unverified)
            }
            _ => {}
        }
        self.engine.handle(now, input);
    }

    /// A recording ended with this take: kept for the signature, and the flow told.
    pub fn recorded(&mut self, now: Instant, take: Recording, length: Duration) {
        let speech = take.speech;
        self.take = Some(take);
        self.handle(now, Input::RecordingFinished { speech, length });
    }

    /// Sets the last recording (a channel that keeps recordings between steps itself, as the
    /// cloud one does across webhooks, hands it back before [`Driver::step`]).
    pub fn set_take(&mut self, take: Option<Recording>) {
        self.take = take;
    }

    /// Carries out the engine's actions on `channel` until the engine waits on something;
    /// returns the store work the actions asked for (at most one signature).
    pub fn step(&mut self, now: Instant, channel: &mut dyn Channel) -> Vec<Job> {
        let mut jobs = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Ring => channel.ring(),
                Action::Answer => {
                    if channel.answer(now) {
                        self.funnel.answered = true;
                    }
                }
                Action::Play { prompts, barge_in } => {
                    self.funnel.play(self.engine.current_step(), now);
                    if !channel.play(now, &prompts, barge_in) {
                        // Nothing to play: the prompt is over at once.
                        self.handle(now, Input::PromptFinished);
                    }
                }
                Action::StopPlayback => {
                    self.funnel.stopped(now);
                    channel.stop_playback(now);
                }
                Action::StartRecording {
                    max,
                    silence_end,
                    initial_silence,
                } => channel.start_recording(RecordingLimits {
                    max,
                    silence_end,
                    initial_silence,
                }),
                Action::StopRecording => channel.stop_recording(),
                Action::DiscardRecording => {
                    self.take = None;
                    channel.discard_recording();
                }
                Action::Sign => {
                    self.funnel.recorded |= self.take.is_some();
                    let contact = if self.wants_contact {
                        self.contact.take()
                    } else {
                        None
                    };
                    jobs.push(Job::Sign(SignJob {
                        call: self.call.clone(),
                        take: self.take.take(),
                        contact,
                    }));
                }
                Action::Withdraw => jobs.push(Job::Withdraw(self.call.clone())),
                Action::Transfer { uri } => channel.transfer(uri),
                Action::Hangup => channel.hangup(),
                Action::SetLanguage(lang) => {
                    debug!(call = %self.call.id, %lang, "language");
                }
                Action::KeepContact => {
                    self.wants_contact = true;
                    info!(call = %self.call.id, "caller asked to be contacted");
                }
            }
        }
        jobs
    }

    /// The call's language.
    pub fn language(&self) -> Lang {
        self.engine.language()
    }

    /// How the call went, for the console's funnel (nothing about the caller).
    pub fn summary(&self, now: Instant, ended_at: SystemTime) -> store::CallSummary {
        self.funnel.summary(
            &self.call.campaign,
            &self.call.flow_version,
            self.call.channel,
            now,
            ended_at,
        )
    }
}

#[cfg(test)]
mod tests;
