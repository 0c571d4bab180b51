//! A virtual-clock harness for driving one [`Engine`] step by step in tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flow::engine::{Action, CallFacts, Engine, Input, PromptRef};
use flow::spec::FlowSpec;

/// Any instant will do: every later time is this plus a `Duration`.
#[allow(clippy::disallowed_methods)]
pub fn origin() -> Instant {
    Instant::now()
}

pub fn spec(text: &str) -> Arc<FlowSpec> {
    match FlowSpec::parse("test", text) {
        Ok(spec) => Arc::new(spec),
        Err(e) => panic!("flow does not load: {e}"),
    }
}

/// One call on a virtual clock.
pub struct Call {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
}

impl Call {
    pub fn new(spec: Arc<FlowSpec>, facts: CallFacts) -> (Call, Vec<Action>) {
        let t0 = origin();
        let mut call = Call {
            engine: Engine::new(spec, facts, t0),
            t0,
            now: t0,
        };
        let first = call.drain();
        (call, first)
    }

    pub fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.engine.poll_action()).collect()
    }

    /// Feeds `input` now and returns the actions it caused.
    pub fn send(&mut self, input: Input) -> Vec<Action> {
        self.engine.handle(self.now, input);
        self.drain()
    }

    pub fn after(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        self
    }

    /// Moves the clock to the engine's timeout and fires it.
    pub fn fire_timer(&mut self) -> Vec<Action> {
        let t = self
            .engine
            .poll_timeout()
            .expect("the engine waits on a timer");
        assert!(t >= self.now, "timeout in the past");
        self.now = t;
        self.send(Input::Timer)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }
}

/// The names in a play action (numbers as `#token`).
pub fn played(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Play { prompts, .. } => Some(prompts),
            _ => None,
        })
        .flatten()
        .map(|p| match p {
            PromptRef::Prompt { name, .. } => name.clone(),
            PromptRef::Number(clip) => format!("#{}", clip.token),
        })
        .collect()
}

/// A short description of actions for assertions: `ring`, `answer`, `play:a+b`, `stop`, ….
pub fn describe(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Ring => "ring".to_owned(),
            Action::Answer => "answer".to_owned(),
            Action::Play { prompts, barge_in } => {
                let names: Vec<String> = prompts
                    .iter()
                    .map(|p| match p {
                        PromptRef::Prompt { name, .. } => name.clone(),
                        PromptRef::Number(clip) => format!("#{}", clip.token),
                    })
                    .collect();
                format!(
                    "play{}:{}",
                    if *barge_in { "*" } else { "" },
                    names.join("+")
                )
            }
            Action::StopPlayback => "stop".to_owned(),
            Action::StartRecording { .. } => "record".to_owned(),
            Action::StopRecording => "stop-record".to_owned(),
            Action::DiscardRecording => "discard".to_owned(),
            Action::Sign => "sign".to_owned(),
            Action::Withdraw => "withdraw".to_owned(),
            Action::Transfer { uri } => format!("transfer:{uri}"),
            Action::Hangup => "hangup".to_owned(),
            Action::SetLanguage(l) => format!("lang:{l}"),
            Action::KeepContact => "keep-contact".to_string(),
        })
        .collect()
}
