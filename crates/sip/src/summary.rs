//! How far a call got, for the console's funnel and listening curve: answered, how long the
//! caller listened to the story, whether they heard it to the end, recorded and signed.
//! Nothing about the caller.
//!
//! "The story" is the flow's `play` step with the longest audio (in the flow's first
//! language): in a petition flow that is the recorded message the campaign is about.

use std::time::Instant;

use flow::engine::PromptRef;
use flow::spec::StepKind;

use crate::campaign::Campaign;

/// The name of the campaign's story step, if its flow has a `play` step with audio.
pub(crate) fn story_step(campaign: &Campaign) -> Option<String> {
    let lang = *campaign.flow.languages().first()?;
    campaign
        .flow
        .steps()
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Play { prompts, .. } => {
                let length: std::time::Duration = prompts
                    .iter()
                    .filter_map(|name| {
                        campaign.audio.resolve(&PromptRef::Prompt {
                            name: name.clone(),
                            lang,
                        })
                    })
                    .map(|p| p.duration())
                    .sum();
                Some((length, step.name.clone()))
            }
            _ => None,
        })
        .filter(|(length, _)| !length.is_zero())
        .max_by_key(|(length, _)| *length)
        .map(|(_, name)| name)
}

/// Follows one call and builds its summary at the end.
pub(crate) struct Tracker {
    story: Option<String>,
    /// When the story started playing, while it plays.
    playing_since: Option<Instant>,
    heard_ms: u64,
    completed: bool,
    pub answered: bool,
    pub recorded: bool,
    pub signed: bool,
}

impl Tracker {
    pub fn new(campaign: &Campaign) -> Tracker {
        Tracker {
            story: story_step(campaign),
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

    #[cfg(test)]
    fn with_story(story: &str) -> Tracker {
        Tracker {
            story: Some(story.into()),
            playing_since: None,
            heard_ms: 0,
            completed: false,
            answered: false,
            recorded: false,
            signed: false,
        }
    }

    /// A play starts in `step`; any earlier one is over.
    pub fn play(&mut self, step: &str, now: Instant) {
        self.stop(now);
        if self.story.as_deref() == Some(step) {
            self.playing_since = Some(now);
        }
    }

    /// The current play was cut short (barge-in, hangup).
    pub fn stopped(&mut self, now: Instant) {
        self.stop(now);
    }

    /// The current play reached its end.
    pub fn finished(&mut self, now: Instant) {
        if self.playing_since.is_some() {
            self.completed = true;
        }
        self.stop(now);
    }

    pub fn summary(mut self, campaign: &Campaign, now: Instant) -> store::CallSummary {
        self.stop(now);
        store::CallSummary {
            campaign: campaign.slug.clone(),
            flow_version: Some(campaign.flow_version.clone()),
            channel: "sip".into(),
            ended_at: Some(std::time::SystemTime::now()),
            answered: self.answered,
            story_heard_ms: self.heard_ms,
            story_completed: self.completed,
            recorded: self.recorded,
            signed: self.signed,
        }
    }
}

/// Moves one call from step `from` to step `to` in the per-step gauge (an empty name: not in
/// a step, i.e. the call starts or ends).
pub(crate) fn move_step(stats: &crate::server::Stats, campaign: &str, from: &str, to: &str) {
    let mut steps = stats
        .calls_by_step
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !from.is_empty() {
        let key = (campaign.to_string(), from.to_string());
        if let Some(n) = steps.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                steps.remove(&key);
            }
        }
    }
    if !to.is_empty() {
        *steps
            .entry((campaign.to_string(), to.to_string()))
            .or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Tracker;

    #[test]
    fn only_the_story_counts_and_its_end_completes_it() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let mut t = Tracker::with_story("story");
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
        let t0 = Instant::now();
        let mut t = Tracker::with_story("story");
        t.play("story", t0);
        // Barge-in or hangup: stopped, not finished.
        t.stopped(t0 + Duration::from_millis(1800));
        assert_eq!((t.heard_ms, t.completed), (1800, false));
        let mut u = Tracker::with_story("story");
        u.play("story", t0);
        // Another prompt starting also ends the story, unfinished.
        u.play("thanks", t0 + Duration::from_millis(900));
        assert_eq!((u.heard_ms, u.completed), (900, false));
    }
}
