//! The walking skeleton's fixed voicemail flow (ring, greeting, story, beep, record, sign,
//! thanks), kept unchanged for the SIP channel until it switches to [`crate::engine`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a campaign's flow needs to know, in units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// How long the line rings before it answers.
    pub ring: Duration,
    /// How the caller's name is recorded.
    pub record: RecordSpec,
    /// The rule that makes a signature count: at least this much speech in the recording.
    pub min_speech: Duration,
}

/// Limits of one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpec {
    /// The recording never runs longer than this.
    pub max: Duration,
    /// The recording ends after this much silence following speech.
    pub silence_end: Duration,
    /// The recording ends when nothing is said for this long from its start.
    pub initial_silence: Duration,
}

/// The prompts a flow can ask the channel to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptId {
    Greeting,
    Story,
    Beep,
    Thanks,
}

/// What the store said about a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignResult {
    /// A new signature was counted.
    Counted,
    /// This caller had already signed; nothing new was counted.
    AlreadySigned,
    /// Kept apart as unverified (withheld caller ID).
    Unverified,
    /// The store failed; the caller must not hear that it counted.
    Failed,
}

/// Something that happened to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A timer the flow asked for (see [`Call::poll_timeout`]) is due.
    Timer,
    /// The prompt last asked for has been played to its end.
    PromptFinished,
    /// The recording ended (by its own limits or because it was asked to finish).
    RecordingFinished { speech: Duration },
    /// A DTMF key.
    Digit(char),
    /// The store answered a [`Action::Sign`].
    Signed(SignResult),
    /// The caller hung up (BYE, CANCEL, or the media timed out).
    CallerHangup,
}

/// What the channel must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send 180 Ringing.
    Ring,
    /// Answer the call (200 OK with the media answer).
    Answer,
    /// Play one prompt; report [`Event::PromptFinished`] at its end.
    Play(PromptId),
    /// Start recording the caller with these limits; report [`Event::RecordingFinished`].
    Record(RecordSpec),
    /// End the recording now (the caller hung up) and report [`Event::RecordingFinished`].
    FinishRecording,
    /// Commit the signature with the recording; report [`Event::Signed`].
    Sign,
    /// Hang up (BYE, or a final error response before the answer).
    Hangup,
}

/// How the call ended, for logs and the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still going.
    InProgress,
    /// The caller left before the answer.
    AbandonedRinging,
    /// The caller left before the recording.
    AbandonedListening,
    /// The recording did not meet the campaign's rule.
    NoSignature,
    /// The store answered a signature request.
    Signed(SignResult),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ringing { until: Instant },
    Playing(PromptId),
    Recording { caller_gone: bool },
    Signing { caller_gone: bool },
    Thanking,
    Done,
}

/// One call's flow.
#[derive(Debug)]
pub struct Call {
    config: FlowConfig,
    step: Step,
    outcome: Outcome,
    actions: VecDeque<Action>,
}

impl Call {
    /// Starts the flow at `now`: the line rings.
    pub fn new(config: FlowConfig, now: Instant) -> Self {
        let mut call = Call {
            step: Step::Ringing {
                until: now + config.ring,
            },
            config,
            outcome: Outcome::InProgress,
            actions: VecDeque::new(),
        };
        call.actions.push_back(Action::Ring);
        call
    }

    /// Feeds one event that happened at `now`.
    pub fn handle(&mut self, now: Instant, event: Event) {
        match (self.step, event) {
            (Step::Done, _) => {}
            (_, Event::Digit(_)) => {} // logged by the channel; menus come with the flow engine
            (Step::Ringing { until }, Event::Timer) if now >= until => {
                self.actions.push_back(Action::Answer);
                self.play(PromptId::Greeting);
            }
            (Step::Ringing { .. }, Event::CallerHangup) => {
                self.finish(Outcome::AbandonedRinging, false)
            }
            (Step::Playing(prompt), Event::PromptFinished) => match prompt {
                PromptId::Greeting => self.play(PromptId::Story),
                PromptId::Story => self.play(PromptId::Beep),
                PromptId::Beep => {
                    self.step = Step::Recording { caller_gone: false };
                    self.actions.push_back(Action::Record(self.config.record));
                }
                // The thank-you is played in its own step.
                PromptId::Thanks => self.finish(self.outcome, true),
            },
            (Step::Playing(_), Event::CallerHangup) => {
                self.finish(Outcome::AbandonedListening, false)
            }
            (Step::Recording { caller_gone: false }, Event::CallerHangup) => {
                self.step = Step::Recording { caller_gone: true };
                self.actions.push_back(Action::FinishRecording);
            }
            (Step::Recording { caller_gone }, Event::RecordingFinished { speech }) => {
                if speech >= self.config.min_speech {
                    self.step = Step::Signing { caller_gone };
                    self.actions.push_back(Action::Sign);
                } else {
                    self.finish(Outcome::NoSignature, !caller_gone);
                }
            }
            (Step::Signing { .. }, Event::CallerHangup) => {
                self.step = Step::Signing { caller_gone: true };
            }
            (Step::Signing { caller_gone }, Event::Signed(result)) => {
                self.outcome = Outcome::Signed(result);
                if caller_gone || result == SignResult::Failed {
                    self.finish(Outcome::Signed(result), !caller_gone);
                } else {
                    self.step = Step::Thanking;
                    self.actions.push_back(Action::Play(PromptId::Thanks));
                }
            }
            (Step::Thanking, Event::PromptFinished) => {
                self.finish(self.outcome, true);
            }
            (Step::Thanking, Event::CallerHangup) => self.finish(self.outcome, false),
            _ => {}
        }
    }

    /// The next action for the channel, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the flow wants an [`Event::Timer`], if it waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.step {
            Step::Ringing { until } => Some(until),
            _ => None,
        }
    }

    /// Whether the flow has ended (all actions may still need draining).
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// How the call ended, or [`Outcome::InProgress`].
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn play(&mut self, prompt: PromptId) {
        self.step = Step::Playing(prompt);
        self.actions.push_back(Action::Play(prompt));
    }

    fn finish(&mut self, outcome: Outcome, hang_up: bool) {
        self.outcome = outcome;
        self.step = Step::Done;
        if hang_up {
            self.actions.push_back(Action::Hangup);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FlowConfig {
        FlowConfig {
            ring: Duration::from_secs(3),
            record: RecordSpec {
                max: Duration::from_secs(10),
                silence_end: Duration::from_secs(2),
                initial_silence: Duration::from_secs(5),
            },
            min_speech: Duration::from_millis(500),
        }
    }

    /// Any instant will do: every later time is this plus a `Duration`.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn drain(call: &mut Call) -> Vec<Action> {
        std::iter::from_fn(|| call.poll_action()).collect()
    }

    #[test]
    fn full_call_signs_then_thanks_then_hangs_up() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        assert_eq!(drain(&mut call), vec![Action::Ring]);
        assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(3)));

        // An early timer does not answer.
        call.handle(t0 + Duration::from_secs(1), Event::Timer);
        assert_eq!(drain(&mut call), vec![]);

        call.handle(t0 + Duration::from_secs(3), Event::Timer);
        assert_eq!(
            drain(&mut call),
            vec![Action::Answer, Action::Play(PromptId::Greeting)]
        );
        call.handle(t0, Event::Digit('5'));
        assert_eq!(drain(&mut call), vec![]);
        call.handle(t0, Event::PromptFinished);
        assert_eq!(drain(&mut call), vec![Action::Play(PromptId::Story)]);
        call.handle(t0, Event::PromptFinished);
        assert_eq!(drain(&mut call), vec![Action::Play(PromptId::Beep)]);
        call.handle(t0, Event::PromptFinished);
        assert_eq!(drain(&mut call), vec![Action::Record(config().record)]);
        call.handle(
            t0,
            Event::RecordingFinished {
                speech: Duration::from_millis(900),
            },
        );
        assert_eq!(drain(&mut call), vec![Action::Sign]);
        call.handle(t0, Event::Signed(SignResult::Counted));
        assert_eq!(drain(&mut call), vec![Action::Play(PromptId::Thanks)]);
        call.handle(t0, Event::PromptFinished);
        assert_eq!(drain(&mut call), vec![Action::Hangup]);
        assert!(call.is_done());
        assert_eq!(call.outcome(), Outcome::Signed(SignResult::Counted));
    }

    #[test]
    fn hangup_while_ringing_signs_nothing() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        drain(&mut call);
        call.handle(t0 + Duration::from_secs(1), Event::CallerHangup);
        assert_eq!(drain(&mut call), vec![]);
        assert!(call.is_done());
        assert_eq!(call.outcome(), Outcome::AbandonedRinging);
        // A late timer changes nothing.
        call.handle(t0 + Duration::from_secs(5), Event::Timer);
        assert_eq!(drain(&mut call), vec![]);
    }

    #[test]
    fn too_little_speech_is_not_a_signature() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        call.handle(t0 + Duration::from_secs(3), Event::Timer);
        for _ in 0..3 {
            call.handle(t0, Event::PromptFinished);
        }
        drain(&mut call);
        call.handle(
            t0,
            Event::RecordingFinished {
                speech: Duration::from_millis(499),
            },
        );
        assert_eq!(drain(&mut call), vec![Action::Hangup]);
        assert_eq!(call.outcome(), Outcome::NoSignature);
    }

    #[test]
    fn caller_who_hangs_up_after_speaking_still_signs() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        call.handle(t0 + Duration::from_secs(3), Event::Timer);
        for _ in 0..3 {
            call.handle(t0, Event::PromptFinished);
        }
        drain(&mut call);
        call.handle(t0, Event::CallerHangup);
        assert_eq!(drain(&mut call), vec![Action::FinishRecording]);
        call.handle(
            t0,
            Event::RecordingFinished {
                speech: Duration::from_secs(1),
            },
        );
        assert_eq!(drain(&mut call), vec![Action::Sign]);
        call.handle(t0, Event::Signed(SignResult::Counted));
        // No thanks and no BYE: the caller is gone.
        assert_eq!(drain(&mut call), vec![]);
        assert_eq!(call.outcome(), Outcome::Signed(SignResult::Counted));
    }

    #[test]
    fn store_failure_is_never_thanked() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        call.handle(t0 + Duration::from_secs(3), Event::Timer);
        for _ in 0..3 {
            call.handle(t0, Event::PromptFinished);
        }
        call.handle(
            t0,
            Event::RecordingFinished {
                speech: Duration::from_secs(1),
            },
        );
        drain(&mut call);
        call.handle(t0, Event::Signed(SignResult::Failed));
        assert_eq!(drain(&mut call), vec![Action::Hangup]);
    }

    #[test]
    fn hangup_during_story_abandons() {
        let t0 = origin();
        let mut call = Call::new(config(), t0);
        call.handle(t0 + Duration::from_secs(3), Event::Timer);
        call.handle(t0, Event::PromptFinished);
        drain(&mut call);
        call.handle(t0, Event::CallerHangup);
        assert_eq!(drain(&mut call), vec![]);
        assert_eq!(call.outcome(), Outcome::AbandonedListening);
    }
}
