//! The sans-IO flow interpreter: one [`Engine`] per call runs a [`FlowSpec`], inputs in, actions out.
//!
//! The channel that drives a call (native SIP, provider webhooks) feeds [`Input`]s with the
//! time they happened, drains [`Action`]s with [`Engine::poll_action`] until it returns `None`,
//! and sends [`Input::Timer`] at [`Engine::poll_timeout`]. The engine owns no socket and reads
//! no clock.
//!
//! The contract with the channel:
//! - Every [`Action::Play`] is answered by exactly one [`Input::PromptFinished`] when the last
//!   of its prompts ends, unless [`Action::StopPlayback`] came first (then none).
//! - Every [`Action::StartRecording`] is answered by exactly one [`Input::RecordingFinished`],
//!   whether the recording ended by its limits or by [`Action::StopRecording`].
//!   [`Action::DiscardRecording`] drops the last recording (the caller records again).
//! - [`Action::Sign`], [`Action::Withdraw`] and [`Action::Transfer`] are answered by
//!   [`Input::Signed`], [`Input::Withdrawn`] and [`Input::TransferResult`]; the engine waits
//!   for them even after the caller hangs up (a signature is committed with its recording).
//! - The call is answered lazily: [`Action::Answer`] comes just before the first action that
//!   needs media. A channel whose call is already answered sends [`Input::Answered`] first and
//!   ignores [`Action::Ring`].
//! - After [`Input::Hangup`] nothing is played; a pending recording is stopped and, if the
//!   flow goes on to a `sign` step (through `play`, `say_*` and `branch` steps, which are
//!   skipped or evaluated), the signature is still made.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::say::{self, NumberClip};
use crate::spec::{
    is_dtmf, Ask, Condition, FlowSpec, NumberSource, RecordLimits, SignRule, StepId, StepKind,
};
use crate::Lang;

/// Most steps one input may pass through before the engine calls the flow broken (a loop of
/// `branch` steps, say). The call then hangs up with [`Outcome::FlowError`].
pub const MAX_HOPS_PER_INPUT: usize = 64;

/// What the channel knows about the call when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFacts {
    /// The caller has a signature on this campaign.
    pub already_signed: bool,
    /// The caller's number is withheld.
    pub anonymous: bool,
    /// The campaign is not open today.
    pub outside_dates: bool,
    /// The campaign's line has no room for this call.
    pub line_full: bool,
    /// The language, when the channel knows it (from the DID); else the flow's default.
    pub language: Option<Lang>,
    /// The campaign's count when the call started (`say_count`).
    pub count: u64,
    /// A repeat caller's signature number, if known (`say_number = "signature"`).
    pub signature_number: Option<u64>,
}

/// What the store said about a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignResult {
    /// A new signature was counted; `number` is its number (the count after it).
    Counted { number: u64 },
    /// This caller had already signed; nothing new was counted.
    AlreadySigned,
    /// Kept apart as unverified (withheld caller ID).
    Unverified,
    /// The store failed: the caller must not hear that it counted.
    Failed,
}

/// Something that happened to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The call is answered (by us after [`Action::Answer`], or already by a provider).
    Answered,
    /// A DTMF key (`0-9`, `*`, `#`, `A-D`; anything else is ignored).
    Digit(char),
    /// The last [`Action::Play`] played to its end.
    PromptFinished,
    /// The speech detector heard the caller start speaking (informational).
    SpeechStarted,
    /// The speech detector heard the caller stop (informational).
    SpeechStopped,
    /// The recording ended; `speech` is how much of `length` was speech.
    RecordingFinished { speech: Duration, length: Duration },
    /// The store answered [`Action::Sign`].
    Signed(SignResult),
    /// The store answered [`Action::Withdraw`]: whether the signature was deleted.
    Withdrawn(bool),
    /// The transfer (REFER) succeeded or failed.
    TransferResult(bool),
    /// The time from [`Engine::poll_timeout`] has come.
    Timer,
    /// The caller hung up (BYE, CANCEL, or the media timed out).
    Hangup,
}

/// One thing to play.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PromptRef {
    /// A named prompt in a language; resolve it with [`FlowSpec::prompt_source`].
    Prompt { name: String, lang: Lang },
    /// A number word from `audio/numbers/` (or the campaign's own number set).
    Number(NumberClip),
}

/// What the channel must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send 180 Ringing.
    Ring,
    /// Answer the call (200 OK with the media answer).
    Answer,
    /// Play these one after another; report [`Input::PromptFinished`] at the end. With
    /// `barge_in`, the engine may cut it short with [`Action::StopPlayback`].
    Play {
        prompts: Vec<PromptRef>,
        barge_in: bool,
    },
    /// Stop the playback now; no [`Input::PromptFinished`] follows.
    StopPlayback,
    /// Record the caller within these limits; report [`Input::RecordingFinished`].
    StartRecording {
        max: Duration,
        silence_end: Duration,
        initial_silence: Duration,
    },
    /// End the recording now; [`Input::RecordingFinished`] follows.
    StopRecording,
    /// Drop the last recording: the caller records again.
    DiscardRecording,
    /// Commit the signature (with the last recording, if any); report [`Input::Signed`].
    Sign,
    /// Delete the caller's signature and recording; report [`Input::Withdrawn`].
    Withdraw,
    /// Transfer the caller with REFER; report [`Input::TransferResult`].
    Transfer { uri: String },
    /// Hang up (BYE, or a final response before the answer).
    Hangup,
    /// The call's language is now this (for logs and the call's record).
    SetLanguage(Lang),
    /// The caller asked to be contacted again: their signature, made after this, keeps
    /// their number encrypted when the campaign allows it.
    KeepContact,
}

/// How the call went, for logs and the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still going.
    InProgress,
    /// The caller left before the answer.
    AbandonedRinging,
    /// The caller left after the answer, before anything was decided.
    Abandoned,
    /// The flow ended without a sign step (a repeat caller, a closed campaign).
    Completed,
    /// A sign step's rule was not met.
    NoSignature,
    /// The store answered a signature request.
    Signed(SignResult),
    /// The caller withdrew their signature.
    Withdrawn,
    /// The caller confirmed a withdrawal but the store did not delete anything.
    WithdrawFailed,
    /// The caller was transferred (without signing in this call).
    Transferred,
    /// The flow looped without waiting for anything; the call was hung up.
    FlowError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AskPhase {
    /// The question (and any feedback before it) is playing.
    Prompting,
    /// Waiting for a key until this time.
    Waiting { until: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between steps (never seen from outside).
    Idle,
    Ringing {
        until: Instant,
    },
    /// A play or say step is playing.
    Playing {
        barge_in: bool,
    },
    /// A menu, language or withdraw step is asking.
    Asking {
        attempt: u32,
        phase: AskPhase,
    },
    Beeping {
        take: u32,
    },
    Recording {
        take: u32,
    },
    /// A record step asks "press 1 to keep, 2 to record again".
    Confirming {
        take: u32,
        attempt: u32,
        phase: AskPhase,
    },
    Signing,
    Withdrawing,
    /// The withdraw step's done prompts are playing.
    Withdrawn,
    /// A transfer step: its prompts play, then the REFER is out.
    Transferring {
        requested: bool,
    },
    /// A hangup step's prompts are playing.
    HangingUp,
    Done,
}

/// The recording the sign rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recording {
    speech: Duration,
}

/// One call's flow.
#[derive(Debug)]
pub struct Engine {
    spec: Arc<FlowSpec>,
    facts: CallFacts,
    lang: Lang,
    step: StepId,
    state: State,
    actions: VecDeque<Action>,
    outcome: Outcome,
    answered_at: Option<Instant>,
    hung_up_at: Option<Instant>,
    /// A key pressed during a barge-in prompt, kept for the menu that follows.
    typeahead: Option<char>,
    key_pressed: bool,
    recording: Option<Recording>,
    /// Steps entered while handling the current input (see [`MAX_HOPS_PER_INPUT`]).
    hops: usize,
}

impl Engine {
    /// Starts the flow at its start step at `now`.
    pub fn new(spec: Arc<FlowSpec>, facts: CallFacts, now: Instant) -> Engine {
        // A language the flow does not speak would have no prompts: fall back to the default.
        let lang = facts
            .language
            .filter(|l| spec.languages().contains(l))
            .unwrap_or_else(|| spec.default_language());
        let start = spec.start();
        let mut engine = Engine {
            spec,
            facts,
            lang,
            step: start,
            state: State::Idle,
            actions: VecDeque::new(),
            outcome: Outcome::InProgress,
            answered_at: None,
            hung_up_at: None,
            typeahead: None,
            key_pressed: false,
            recording: None,
            hops: 0,
        };
        engine.enter(now, start);
        engine
    }

    /// Feeds one input that happened at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.hops = 0;
        if self.state == State::Done {
            return;
        }
        match input {
            Input::Answered => {
                if self.answered_at.is_none() {
                    self.answered_at = Some(now);
                }
                if let State::Ringing { .. } = self.state {
                    let next = self.next_of_ring();
                    self.enter(now, next);
                }
            }
            Input::Hangup => self.caller_hangup(now),
            Input::Digit(d) => self.digit(now, d),
            Input::PromptFinished => self.prompt_finished(now),
            Input::SpeechStarted | Input::SpeechStopped => {}
            Input::RecordingFinished { speech, .. } => self.recording_finished(now, speech),
            Input::Signed(result) => self.signed(now, result),
            Input::Withdrawn(ok) => self.withdrawn(now, ok),
            Input::TransferResult(ok) => self.transferred(now, ok),
            Input::Timer => {
                if self.poll_timeout().is_some_and(|t| now >= t) {
                    self.timer(now);
                }
            }
        }
    }

    /// The next action for the channel, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the engine wants an [`Input::Timer`], if it waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Ringing { until }
            | State::Asking {
                phase: AskPhase::Waiting { until },
                ..
            }
            | State::Confirming {
                phase: AskPhase::Waiting { until },
                ..
            } => Some(until),
            _ => None,
        }
    }

    /// How the call went so far.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Whether the flow has ended (the actions may still need draining).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The name of the step the call is in (the last one, once done).
    pub fn current_step(&self) -> &str {
        &self.spec.step(self.step).name
    }

    /// The call's language.
    pub fn language(&self) -> Lang {
        self.lang
    }

    /// The flow this call runs.
    pub fn spec(&self) -> &Arc<FlowSpec> {
        &self.spec
    }

    // -----------------------------------------------------------------------------------------

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn answer(&mut self, now: Instant) {
        if self.answered_at.is_none() {
            self.answered_at = Some(now);
            self.push(Action::Answer);
        }
    }

    fn prompt_refs(&self, names: &[String]) -> Vec<PromptRef> {
        names
            .iter()
            .map(|name| PromptRef::Prompt {
                name: name.clone(),
                lang: self.lang,
            })
            .collect()
    }

    fn play(&mut self, now: Instant, prompts: Vec<PromptRef>, barge_in: bool) {
        self.answer(now);
        self.push(Action::Play { prompts, barge_in });
    }

    fn next_of_ring(&self) -> StepId {
        match self.spec.step(self.step).kind {
            StepKind::Ring { next, .. } => next,
            _ => self.step,
        }
    }

    /// Ends the flow; hangs up unless the caller is gone.
    fn finish(&mut self) {
        if self.outcome == Outcome::InProgress {
            self.outcome = if self.hung_up_at.is_some() {
                if self.answered_at.is_some() {
                    Outcome::Abandoned
                } else {
                    Outcome::AbandonedRinging
                }
            } else {
                Outcome::Completed
            };
        }
        if self.hung_up_at.is_none() {
            self.push(Action::Hangup);
        }
        self.state = State::Done;
    }

    fn enter(&mut self, now: Instant, id: StepId) {
        self.hops += 1;
        if self.hops > MAX_HOPS_PER_INPUT {
            if matches!(self.outcome, Outcome::InProgress | Outcome::Completed) {
                self.outcome = Outcome::FlowError;
            }
            self.finish();
            return;
        }
        self.step = id;
        self.state = State::Idle;
        let spec = Arc::clone(&self.spec);
        let kind = &spec.step(id).kind;
        let gone = self.hung_up_at.is_some();
        if gone {
            // Nobody listens: skip what plays, evaluate branches, still sign; stop at anything
            // that needs the caller.
            match kind {
                StepKind::Play { next, .. }
                | StepKind::SayCount { next, .. }
                | StepKind::SayNumber { next, .. } => return self.enter(now, *next),
                StepKind::Branch { .. } | StepKind::Sign { .. } => {}
                _ => return self.finish(),
            }
        }
        let keeps_typeahead = matches!(
            kind,
            StepKind::Play { barge_in: true, .. }
                | StepKind::SayCount { barge_in: true, .. }
                | StepKind::SayNumber { barge_in: true, .. }
                | StepKind::Menu { .. }
                | StepKind::Language { .. }
                | StepKind::Withdraw { .. }
                | StepKind::Branch { .. }
        );
        if !keeps_typeahead {
            self.typeahead = None;
        }
        match kind {
            StepKind::Ring { duration, next } => {
                if self.answered_at.is_some() || duration.is_zero() {
                    if self.answered_at.is_none() {
                        self.push(Action::Ring);
                    }
                    return self.enter(now, *next);
                }
                self.push(Action::Ring);
                self.state = State::Ringing {
                    until: now + *duration,
                };
            }
            StepKind::Play {
                prompts,
                barge_in,
                contact,
                next,
            } => {
                if *contact {
                    self.actions.push_back(Action::KeepContact);
                }
                if *barge_in && self.typeahead.is_some() {
                    return self.enter(now, *next);
                }
                let refs = self.prompt_refs(prompts);
                self.play(now, refs, *barge_in);
                self.state = State::Playing {
                    barge_in: *barge_in,
                };
            }
            StepKind::SayCount {
                prompts,
                barge_in,
                next,
            } => {
                if *barge_in && self.typeahead.is_some() {
                    return self.enter(now, *next);
                }
                let mut refs = self.prompt_refs(prompts);
                refs.extend(
                    say::clips(self.lang, self.facts.count)
                        .into_iter()
                        .map(PromptRef::Number),
                );
                self.play(now, refs, *barge_in);
                self.state = State::Playing {
                    barge_in: *barge_in,
                };
            }
            StepKind::SayNumber {
                prompts,
                number,
                barge_in,
                next,
            } => {
                let n = match number {
                    NumberSource::Literal(n) => Some(*n),
                    NumberSource::Signature => self.facts.signature_number,
                };
                let Some(n) = n.filter(|_| !(*barge_in && self.typeahead.is_some())) else {
                    return self.enter(now, *next);
                };
                let mut refs = self.prompt_refs(prompts);
                refs.extend(say::clips(self.lang, n).into_iter().map(PromptRef::Number));
                self.play(now, refs, *barge_in);
                self.state = State::Playing {
                    barge_in: *barge_in,
                };
            }
            StepKind::Menu { ask, .. } | StepKind::Withdraw { ask, .. } => self.start_ask(now, ask),
            StepKind::Language {
                ask,
                skip_if_known,
                next,
                ..
            } => {
                let known = self
                    .facts
                    .language
                    .is_some_and(|l| spec.languages().contains(&l));
                if *skip_if_known && known {
                    return self.enter(now, *next);
                }
                self.start_ask(now, ask);
            }
            StepKind::Record { beep, .. } => self.start_take(now, 1, *beep),
            StepKind::Sign {
                rule,
                unmet,
                next: _,
                ..
            } => {
                let met = match rule {
                    SignRule::Speech(min) => self.recording.is_some_and(|r| r.speech >= *min),
                    SignRule::KeyPressed => self.key_pressed,
                    SignRule::Listened(min) => {
                        let end = self.hung_up_at.unwrap_or(now);
                        self.answered_at
                            .is_some_and(|t| end.saturating_duration_since(t) >= *min)
                    }
                };
                if met {
                    self.push(Action::Sign);
                    self.state = State::Signing;
                } else {
                    if self.outcome == Outcome::InProgress {
                        self.outcome = Outcome::NoSignature;
                    }
                    match unmet {
                        Some(step) => self.enter(now, *step),
                        None => self.finish(),
                    }
                }
            }
            StepKind::Branch { conditions, next } => {
                let target = conditions
                    .iter()
                    .find(|(c, _)| match c {
                        Condition::OutsideDates => self.facts.outside_dates,
                        Condition::LineFull => self.facts.line_full,
                        Condition::AlreadySigned => self.facts.already_signed,
                        Condition::Anonymous => self.facts.anonymous,
                    })
                    .map_or(*next, |(_, t)| *t);
                self.enter(now, target);
            }
            StepKind::Transfer { uri, prompts, .. } => {
                if prompts.is_empty() {
                    self.answer(now);
                    self.push(Action::Transfer { uri: uri.clone() });
                    self.state = State::Transferring { requested: true };
                } else {
                    let refs = self.prompt_refs(prompts);
                    self.play(now, refs, false);
                    self.state = State::Transferring { requested: false };
                }
            }
            StepKind::Hangup { prompts } => {
                if prompts.is_empty() {
                    self.finish();
                } else {
                    let refs = self.prompt_refs(prompts);
                    self.play(now, refs, false);
                    self.state = State::HangingUp;
                }
            }
        }
    }

    // ---- recording ----------------------------------------------------------------------

    fn record_step(&self) -> Option<(RecordLimits, bool, Option<&Ask>, u32, StepId)> {
        match &self.spec.step(self.step).kind {
            StepKind::Record {
                limits,
                beep,
                confirm,
                max_takes,
                next,
            } => Some((*limits, *beep, confirm.as_ref(), *max_takes, *next)),
            _ => None,
        }
    }

    fn start_take(&mut self, now: Instant, take: u32, beep: bool) {
        self.recording = None;
        if beep {
            let prompts = vec![PromptRef::Prompt {
                name: crate::prompts::BEEP.to_owned(),
                lang: self.lang,
            }];
            self.play(now, prompts, false);
            self.state = State::Beeping { take };
        } else {
            self.start_recording(now, take);
        }
    }

    fn start_recording(&mut self, now: Instant, take: u32) {
        let Some((limits, ..)) = self.record_step() else {
            return self.finish();
        };
        self.answer(now);
        self.push(Action::StartRecording {
            max: limits.max,
            silence_end: limits.silence_end,
            initial_silence: limits.initial_silence,
        });
        self.state = State::Recording { take };
    }

    fn recording_finished(&mut self, now: Instant, speech: Duration) {
        let State::Recording { take } = self.state else {
            return;
        };
        self.recording = Some(Recording { speech });
        let Some((_, _, confirm, _, next)) = self.record_step() else {
            return self.finish();
        };
        match confirm {
            Some(ask) if self.hung_up_at.is_none() => {
                let prompts = self.prompt_refs(&ask.prompts);
                self.play(now, prompts, true);
                self.state = State::Confirming {
                    take,
                    attempt: 0,
                    phase: AskPhase::Prompting,
                };
            }
            // No question, or nobody to ask: keep it.
            _ => self.enter(now, next),
        }
    }

    // ---- asking ---------------------------------------------------------------------------

    /// The question being asked now (a menu, language or withdraw step, or a record's confirm).
    fn current_ask(&self) -> Option<&Ask> {
        match &self.spec.step(self.step).kind {
            StepKind::Menu { ask, .. }
            | StepKind::Language { ask, .. }
            | StepKind::Withdraw { ask, .. } => Some(ask),
            StepKind::Record { confirm, .. } => confirm.as_ref(),
            _ => None,
        }
    }

    fn start_ask(&mut self, now: Instant, ask: &Ask) {
        if let Some(d) = self.typeahead.take() {
            // The caller already answered during the prompt before.
            self.answer(now);
            self.state = State::Asking {
                attempt: 0,
                phase: AskPhase::Waiting {
                    until: now + ask.timeout,
                },
            };
            return self.ask_digit(now, d);
        }
        self.ask(now, 0, None);
    }

    /// Asks (again): plays `feedback` then the question, or waits at once if nothing plays.
    fn ask(&mut self, now: Instant, attempt: u32, feedback: Option<String>) {
        let Some(ask) = self.current_ask().cloned() else {
            return self.finish();
        };
        let mut prompts: Vec<String> = feedback.into_iter().collect();
        prompts.extend(ask.prompts.iter().cloned());
        let phase = if prompts.is_empty() {
            self.answer(now);
            AskPhase::Waiting {
                until: now + ask.timeout,
            }
        } else {
            let refs = self.prompt_refs(&prompts);
            self.play(now, refs, true);
            AskPhase::Prompting
        };
        self.set_ask_state(attempt, phase);
    }

    fn ask_state(&self) -> Option<(u32, AskPhase)> {
        match self.state {
            State::Asking { attempt, phase } | State::Confirming { attempt, phase, .. } => {
                Some((attempt, phase))
            }
            _ => None,
        }
    }

    fn set_ask_state(&mut self, attempt: u32, phase: AskPhase) {
        self.state = match self.state {
            State::Confirming { take, .. } => State::Confirming {
                take,
                attempt,
                phase,
            },
            State::Beeping { take } | State::Recording { take } => State::Confirming {
                take,
                attempt,
                phase,
            },
            _ => State::Asking { attempt, phase },
        };
    }

    /// Whether `d` answers the question; withdraw steps take any key (others cancel).
    fn ask_accepts(&self, d: char) -> bool {
        match &self.spec.step(self.step).kind {
            StepKind::Menu { choices, .. } => choices.iter().any(|c| c.0 == d),
            StepKind::Language { choices, .. } => choices.iter().any(|c| c.0 == d),
            StepKind::Withdraw { .. } => true,
            StepKind::Record { .. } => matches!(d, '1' | '2'),
            _ => false,
        }
    }

    fn ask_digit(&mut self, now: Instant, d: char) {
        let Some((attempt, phase)) = self.ask_state() else {
            return;
        };
        if phase == AskPhase::Prompting {
            self.push(Action::StopPlayback);
        }
        if self.ask_accepts(d) {
            return self.chosen(now, d);
        }
        let feedback = self.current_ask().and_then(|a| a.invalid_prompt.clone());
        self.retry(now, attempt, feedback);
    }

    fn ask_timeout(&mut self, now: Instant) {
        let Some((attempt, _)) = self.ask_state() else {
            return;
        };
        let feedback = self.current_ask().and_then(|a| a.timeout_prompt.clone());
        self.retry(now, attempt, feedback);
    }

    fn retry(&mut self, now: Instant, attempt: u32, feedback: Option<String>) {
        let retries = self.current_ask().map_or(0, |a| a.retries);
        if attempt < retries {
            self.ask(now, attempt + 1, feedback);
        } else {
            self.exhausted(now);
        }
    }

    /// A valid key was pressed.
    fn chosen(&mut self, now: Instant, d: char) {
        let spec = Arc::clone(&self.spec);
        match &spec.step(self.step).kind {
            StepKind::Menu { choices, .. } => {
                if let Some(&(_, target)) = choices.iter().find(|c| c.0 == d) {
                    self.enter(now, target);
                }
            }
            StepKind::Language { choices, next, .. } => {
                if let Some(&(_, lang)) = choices.iter().find(|c| c.0 == d) {
                    self.lang = lang;
                    self.push(Action::SetLanguage(lang));
                }
                self.enter(now, *next);
            }
            StepKind::Withdraw {
                confirm_digit,
                cancel,
                ..
            } => {
                if d == *confirm_digit {
                    self.push(Action::Withdraw);
                    self.state = State::Withdrawing;
                } else {
                    self.enter(now, *cancel);
                }
            }
            StepKind::Record {
                beep,
                max_takes,
                next,
                ..
            } => {
                let State::Confirming { take, .. } = self.state else {
                    return;
                };
                if d == '2' && take < *max_takes {
                    self.push(Action::DiscardRecording);
                    self.start_take(now, take + 1, *beep);
                } else {
                    self.enter(now, *next);
                }
            }
            _ => self.finish(),
        }
    }

    /// No valid answer after every retry.
    fn exhausted(&mut self, now: Instant) {
        let target = match &self.spec.step(self.step).kind {
            StepKind::Menu { next, .. }
            | StepKind::Language { next, .. }
            // An unanswered "keep or record again" keeps the recording.
            | StepKind::Record { next, .. } => Some(*next),
            StepKind::Withdraw { cancel, .. } => Some(*cancel),
            _ => None,
        };
        match target {
            Some(t) => self.enter(now, t),
            None => self.finish(),
        }
    }

    // ---- inputs ---------------------------------------------------------------------------

    fn digit(&mut self, now: Instant, d: char) {
        if !is_dtmf(d) || self.answered_at.is_none() {
            return;
        }
        self.key_pressed = true;
        match self.state {
            State::Playing { barge_in: true } => {
                self.push(Action::StopPlayback);
                self.typeahead = Some(d);
                let next = self.next_of_play();
                self.enter(now, next);
            }
            State::Asking { .. } | State::Confirming { .. } => self.ask_digit(now, d),
            _ => {}
        }
    }

    fn next_of_play(&self) -> StepId {
        match self.spec.step(self.step).kind {
            StepKind::Play { next, .. }
            | StepKind::SayCount { next, .. }
            | StepKind::SayNumber { next, .. }
            | StepKind::Withdraw { next, .. } => next,
            _ => self.step,
        }
    }

    fn prompt_finished(&mut self, now: Instant) {
        match self.state {
            State::Playing { .. } | State::Withdrawn => {
                let next = self.next_of_play();
                self.enter(now, next);
            }
            State::Asking {
                phase: AskPhase::Prompting,
                ..
            }
            | State::Confirming {
                phase: AskPhase::Prompting,
                ..
            } => {
                let timeout = self.current_ask().map_or(Duration::ZERO, |a| a.timeout);
                if let Some((attempt, _)) = self.ask_state() {
                    self.set_ask_state(
                        attempt,
                        AskPhase::Waiting {
                            until: now + timeout,
                        },
                    );
                }
            }
            State::Beeping { take } => self.start_recording(now, take),
            State::Transferring { requested: false } => {
                if let StepKind::Transfer { uri, .. } = &self.spec.step(self.step).kind {
                    let uri = uri.clone();
                    self.push(Action::Transfer { uri });
                }
                self.state = State::Transferring { requested: true };
            }
            State::HangingUp => self.finish(),
            _ => {}
        }
    }

    fn timer(&mut self, now: Instant) {
        match self.state {
            State::Ringing { .. } => {
                let next = self.next_of_ring();
                self.enter(now, next);
            }
            State::Asking { .. } | State::Confirming { .. } => self.ask_timeout(now),
            _ => {}
        }
    }

    fn signed(&mut self, now: Instant, result: SignResult) {
        if self.state != State::Signing {
            return;
        }
        self.outcome = Outcome::Signed(result);
        let StepKind::Sign {
            next,
            already,
            error,
            ..
        } = self.spec.step(self.step).kind
        else {
            return self.finish();
        };
        match result {
            SignResult::Counted { number } => {
                self.facts.signature_number = Some(number);
                self.facts.count = self.facts.count.max(number);
                self.facts.already_signed = true;
                self.enter(now, next);
            }
            SignResult::Unverified => self.enter(now, next),
            SignResult::AlreadySigned => {
                self.facts.already_signed = true;
                self.enter(now, already);
            }
            SignResult::Failed => match error {
                Some(step) => self.enter(now, step),
                None => self.finish(),
            },
        }
    }

    fn withdrawn(&mut self, now: Instant, ok: bool) {
        if self.state != State::Withdrawing {
            return;
        }
        let StepKind::Withdraw {
            done_prompts,
            next,
            error,
            ..
        } = &self.spec.step(self.step).kind
        else {
            return self.finish();
        };
        let (done_prompts, next, error) = (done_prompts.clone(), *next, *error);
        if ok {
            self.outcome = Outcome::Withdrawn;
            self.facts.already_signed = false;
            self.facts.signature_number = None;
            if self.hung_up_at.is_some() {
                return self.finish();
            }
            if done_prompts.is_empty() {
                return self.enter(now, next);
            }
            let refs = self.prompt_refs(&done_prompts);
            self.play(now, refs, false);
            self.state = State::Withdrawn;
        } else {
            self.outcome = Outcome::WithdrawFailed;
            self.enter(now, error.unwrap_or(next));
        }
    }

    fn transferred(&mut self, now: Instant, ok: bool) {
        if self.state != (State::Transferring { requested: true }) {
            return;
        }
        if ok {
            if matches!(self.outcome, Outcome::InProgress) {
                self.outcome = Outcome::Transferred;
            }
            // The trunk has the caller now; our leg ends.
            self.finish();
        } else if let StepKind::Transfer { next, .. } = self.spec.step(self.step).kind {
            self.enter(now, next);
        }
    }

    fn caller_hangup(&mut self, now: Instant) {
        self.hung_up_at = Some(now);
        self.hops = 0;
        match self.state {
            // Still waiting on the store or the recorder: their answer decides.
            State::Recording { .. } => self.push(Action::StopRecording),
            State::Signing | State::Withdrawing => {}
            // A recording waiting for "keep or record again" is kept.
            State::Confirming { .. } => {
                if let Some((_, _, _, _, next)) = self.record_step() {
                    self.enter(now, next);
                } else {
                    self.finish();
                }
            }
            _ => self.finish(),
        }
    }
}
