//! A call's funnel: whether it was answered, how much of the story the caller heard, whether
//! they recorded and signed. Recorded as a `store::CallSummary` when the call ends.

use std::time::{Duration, Instant, SystemTime};

use flow::engine::PromptRef;
use flow::spec::{FlowSpec, StepKind};

/// The flow's story: its `play` step with the longest audio in the flow's first language
/// (`length` gives a prompt's duration, `None` when it is not loaded).
pub fn story_step(
    flow: &FlowSpec,
    length: impl Fn(&PromptRef) -> Option<Duration>,
) -> Option<String> {
    let lang = *flow.languages().first()?;
    flow.steps()
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Play { prompts, .. } => {
                let total: Duration = prompts
                    .iter()
                    .filter_map(|name| {
                        length(&PromptRef::Prompt {
                            name: name.clone(),
                            lang,
                        })
                    })
                    .sum();
                Some((total, step.name.clone()))
            }
            _ => None,
        })
        .filter(|(total, _)| !total.is_zero())
        .max_by_key(|(total, _)| *total)
        .map(|(_, name)| name)
}

/// The funnel of one call, kept as the driver carries it out.
#[derive(Debug, Clone)]
pub struct Funnel {
    story: Option<String>,
    playing_since: Option<Instant>,
    heard_ms: u64,
    completed: bool,
    pub answered: bool,
    pub recorded: bool,
    pub signed: bool,
}

impl Funnel {
    pub fn new(story: Option<String>) -> Funnel {
        Funnel {
            story,
            playing_since: None,
            heard_ms: 0,
            completed: false,
            answered: false,
            recorded: false,
            signed: false,
        }
    }

    fn stop(&mut self, now: Instant) {
        if let Some(since) = self.playing_since.take() {
            let ms = now.saturating_duration_since(since).as_millis();
            self.heard_ms = self.heard_ms.max(u64::try_from(ms).unwrap_or(u64::MAX));
        }
    }

    /// Step `step` starts playing (which ends whatever played before).
    pub fn play(&mut self, step: &str, now: Instant) {
        self.stop(now);
        if self.story.as_deref() == Some(step) {
            self.playing_since = Some(now);
        }
    }

    /// The playback was cut short.
    pub fn stopped(&mut self, now: Instant) {
        self.stop(now);
    }

    /// The playback ended by itself.
    pub fn finished(&mut self, now: Instant) {
        if self.playing_since.is_some() {
            self.completed = true;
        }
        self.stop(now);
    }

    /// The summary as of `now`.
    pub fn summary(
        &self,
        campaign: &str,
        flow_version: &str,
        channel: &str,
        now: Instant,
        ended_at: SystemTime,
    ) -> store::CallSummary {
        let mut f = self.clone();
        f.stop(now);
        store::CallSummary {
            campaign: campaign.to_string(),
            flow_version: Some(flow_version.to_string()),
            channel: channel.to_string(),
            ended_at: Some(ended_at),
            answered: f.answered,
            story_heard_ms: f.heard_ms,
            story_completed: f.completed,
            recorded: f.recorded,
            signed: f.signed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Funnel;

    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn story() -> Funnel {
        Funnel::new(Some("story".into()))
    }

    #[test]
    fn only_the_story_counts_and_its_end_completes_it() {
        let t0 = origin();
        let s = |ms| t0 + Duration::from_millis(ms);
        let mut t = story();
        t.play("greeting", s(0));
        t.finished(s(2000));
        assert_eq!((t.heard_ms, t.completed), (0, false));
        t.play("story", s(2000));
        t.finished(s(7000));
        assert_eq!((t.heard_ms, t.completed), (5000, true));
        // Heard again (press 1): the longest listen is kept.
        t.play("story", s(9000));
        t.stopped(s(10_000));
        assert_eq!(t.heard_ms, 5000);
    }

    #[test]
    fn a_hangup_during_the_story_keeps_what_was_heard() {
        let t0 = origin();
        let mut t = story();
        t.play("story", t0);
        // Barge-in or hangup: stopped, not finished.
        t.stopped(t0 + Duration::from_millis(1800));
        assert_eq!((t.heard_ms, t.completed), (1800, false));
        let mut u = story();
        u.play("story", t0);
        // Another prompt starting also ends the story, unfinished.
        u.play("thanks", t0 + Duration::from_millis(900));
        assert_eq!((u.heard_ms, u.completed), (900, false));
    }
}
