//! One call: drives its flow engine, plays and records its media, signs, withdraws, transfers.

// Nothing a peer sends may panic this code: no slicing or indexing that can go out of bounds.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flow::engine::{CallFacts, Input, PromptRef, SignResult};
use media::recorder::{Recorder, RecorderLimits};
use media::stream::{BeforeLatch, Command, StreamConfig, StreamEvent};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::context::{CallEvent, Context};
use crate::rtp_engine::MediaHandle;
use crate::sdp::{self, Negotiated, Offer};
use driver::Campaign;

/// A caller whose RTP has stopped this long after the answer is gone (lost BYE).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a REFER to the helpline may take to be accepted.
const REFER_TIMEOUT: Duration = Duration::from_secs(8);

pub(crate) struct CallSetup {
    /// The caller's number, encrypted, for when they ask to be contacted again.
    pub contact: Option<store::SealedContact>,
    pub transport: &'static str,
    /// The number (or user) called, which picked the campaign.
    pub called: String,
    pub ctx: Arc<Context>,
    pub campaign: Arc<Campaign>,
    pub caller: store::CallerIdentity,
    /// Which header gave `caller` (set by the server from the trunk's trust).
    pub trust: crate::trunk::CallerTrust,
    /// The INVITE came from a configured trunk: its SDP address is sent to at once (see
    /// `media::stream::BeforeLatch`).
    pub from_trunk: bool,
    pub offer: Offer,
    pub chosen: Negotiated,
    pub dialog: InviteDialog,
    pub events: mpsc::Receiver<CallEvent>,
    /// Panic once answered (an injected fault, see `fault`).
    pub fault_call: bool,
    /// The media thread panics on this call's stream (an injected fault, see `fault`).
    pub fault_media: bool,
}

/// The INVITE's server transaction until the call hands it to the task that drives it; what
/// is left here when the call panics is answered by [`end_after_panic`].
#[derive(Clone)]
pub(crate) struct InviteSlot(Arc<std::sync::Mutex<Option<Transaction>>>);

impl InviteSlot {
    pub(crate) fn new(tx: Transaction) -> InviteSlot {
        InviteSlot(Arc::new(std::sync::Mutex::new(Some(tx))))
    }

    /// The transaction, once; `None` after.
    pub(crate) fn take(&self) -> Option<Transaction> {
        // A panic never happens while the lock is held (only `take` holds it).
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// Ends on the wire a call whose task panicked: a 500 to an INVITE not yet answered, a BYE to
/// an answered one. Its media stream already closed as the task unwound.
pub(crate) async fn end_after_panic(
    metrics: &crate::metrics::Metrics,
    dialog: &InviteDialog,
    invite: &InviteSlot,
) {
    use rsipstack::dialog::dialog::DialogState;
    let status = StatusCode::ServerInternalError;
    if let Some(mut tx) = invite.take() {
        // The INVITE was never handed to its driver: answer it here.
        crate::context::reply(metrics, &mut tx, status, vec![]).await;
        return;
    }
    match dialog.state() {
        DialogState::Terminated(..) => {}
        DialogState::Confirmed(..) | DialogState::WaitAck(..) => {
            if let Err(e) = dialog.bye().await {
                debug!(error = %e, "BYE after a panic not sent");
            }
        }
        _ => {
            metrics.response(status.code());
            let _ = dialog.reject(Some(status), None);
        }
    }
}

/// The call's place in the per-step gauge (the console's "now" view); leaves it when dropped,
/// however the call ends.
struct StepGauge {
    ctx: Arc<Context>,
    campaign: String,
    step: String,
}

impl StepGauge {
    fn enter(&mut self, to: &str) {
        crate::steps::move_step(&self.ctx.stats, &self.campaign, &self.step, to);
        self.step = to.to_string();
    }

    /// Moves the call to its flow's current step, if it changed (and logs the step).
    fn follow(&mut self, call: &driver::Driver, call_id: &str) {
        if call.engine().current_step() != self.step {
            self.enter(call.engine().current_step());
            info!(call = %call_id, step = %self.step, lang = %call.language(), "step");
        }
    }
}

impl Drop for StepGauge {
    fn drop(&mut self) {
        crate::steps::move_step(&self.ctx.stats, &self.campaign, &self.step, "");
    }
}

/// The digit of a SIP INFO DTMF body (application/dtmf-relay or application/dtmf).
pub(crate) fn info_digit(body: &[u8]) -> Option<char> {
    let body = std::str::from_utf8(body).ok()?;
    let value = body
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v)
        })
        .unwrap_or(body);
    let mut chars = value.trim().chars();
    let c = chars.next()?;
    let valid = c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
    (valid && chars.next().is_none()).then_some(c)
}

/// The call's side of its media, which runs on a media thread (see `rtp_engine`).
struct Media {
    handle: MediaHandle,
    events: mpsc::Receiver<StreamEvent>,
    local: SocketAddr,
    /// Names the latest `Play`, so that the end of a prompt that was replaced or stopped is
    /// not taken for the end of the one playing now.
    play: u64,
    /// A recording was started and its end has not reached the flow yet.
    recording: bool,
    /// The media thread dropped the stream (its event channel closed): the call has no media.
    gone: bool,
}

fn sdp_headers() -> Vec<Header> {
    vec![Header::ContentType("application/sdp".into())]
}

/// The SIP and RTP side of one call: the driver's [`driver::Channel`]. What needs awaiting
/// (a BYE, a recording back from the media thread) is noted here and done by [`run`] after
/// the driver's step.
struct Leg {
    call_id: String,
    /// The server's figures (responses sent).
    stats: Arc<crate::metrics::Stats>,
    dialog: InviteDialog,
    media: Media,
    audio: Arc<driver::CampaignAudio>,
    offer: Offer,
    chosen: Negotiated,
    session_id: u64,
    sdp_version: u64,
    answered: bool,
    /// The call is over on the wire (BYE or a final response sent or received).
    terminated: bool,
    gauge: crate::metrics::CallGauge,
    /// Panic once answered (an injected fault).
    fault_call: bool,
    /// The REFER in progress.
    transferring: Option<oneshot::Receiver<bool>>,
    /// The flow asked to end the recording: its take is fetched from the media thread.
    stop_asked: bool,
    /// The flow asked to hang up.
    hangup_asked: bool,
}

impl driver::Channel for Leg {
    fn ring(&mut self) {
        self.stats.metrics.response(180);
        if let Err(e) = self.dialog.ringing(None, None) {
            debug!(error = %e, "180 not sent");
        }
    }

    fn answer(&mut self, now: Instant) -> bool {
        if self.answered || self.terminated {
            return false;
        }
        let body = self.sdp_answer();
        self.stats.metrics.response(200);
        self.gauge.set(crate::metrics::CallState::Answered);
        if let Err(e) = self
            .dialog
            .accept(Some(sdp_headers()), Some(body.into_bytes()))
        {
            warn!(call = %self.call_id, error = %e, "200 not sent");
        }
        self.answered = true;
        self.media.handle.command(Command::Start { origin: now });
        if self.fault_call {
            crate::fault::fire("fault injected: call");
        }
        true
    }

    fn play(&mut self, _now: Instant, prompts: &[PromptRef], _barge_in: bool) -> bool {
        let prompts: Vec<_> = prompts
            .iter()
            .filter_map(|r| {
                let audio = self.audio.resolve(r);
                if audio.is_none() {
                    warn!(call = %self.call_id, prompt = ?r, "prompt not loaded");
                }
                audio
            })
            .collect();
        self.media.play += 1;
        if prompts.is_empty() {
            self.media.handle.command(Command::StopPlayback);
            return false;
        }
        let play = self.media.play;
        self.media.handle.command(Command::Play { play, prompts });
        true
    }

    fn stop_playback(&mut self, _now: Instant) {
        self.media.play += 1;
        self.media.handle.command(Command::StopPlayback);
    }

    fn start_recording(&mut self, limits: driver::RecordingLimits) {
        let limits = RecorderLimits {
            max: limits.max,
            silence_end: limits.silence_end,
            initial_silence: limits.initial_silence,
        };
        self.media.recording = true;
        self.media
            .handle
            .command(Command::StartRecording { limits });
        // Marks the beep's end: what a caller (and a test) waits for to speak.
        info!(call = %self.call_id, "recording started");
    }

    fn stop_recording(&mut self) {
        self.stop_asked = self.media.recording;
    }

    fn transfer(&mut self, uri: String) {
        let (done_tx, done_rx) = oneshot::channel();
        self.transferring = Some(done_rx);
        let d = self.dialog.clone();
        let call_id = self.call_id.clone();
        tokio::spawn(async move {
            let refer_to = format!("<{uri}>");
            let result = tokio::time::timeout(REFER_TIMEOUT, d.refer(refer_to, None, None)).await;
            let ok = matches!(&result, Ok(Ok(Some(r))) if r.status_code.code() / 100 == 2);
            info!(call = %call_id, ok, "REFER to the helpline");
            let _ = done_tx.send(ok);
        });
    }

    fn hangup(&mut self) {
        self.hangup_asked = true;
    }
}

impl Leg {
    /// Our SDP answer to the caller's offer as it is now.
    fn sdp_answer(&self) -> String {
        sdp::answer(
            &self.offer,
            &self.chosen,
            self.media.local,
            self.session_id,
            self.sdp_version,
        )
    }

    /// Ends the call on the wire (BYE once answered, else `status`), once, and closes its
    /// media.
    async fn end(&mut self, status: StatusCode) {
        if self.terminated {
            return;
        }
        if self.answered {
            if let Err(e) = self.dialog.bye().await {
                debug!(error = %e, "BYE failed");
            }
        } else {
            self.stats.metrics.response(status.code());
            let _ = self.dialog.reject(Some(status), None);
        }
        self.terminated = true;
        self.media.handle.close();
    }

    /// The recording in progress, taken from the media thread now (`None` when it already
    /// ended by itself: its end is then on the way as an event).
    async fn take_recording(&mut self) -> Option<(driver::Recording, Duration)> {
        if !self.media.recording {
            return None;
        }
        let r = self.media.handle.take_recording().await?;
        self.media.recording = false;
        Some(finish_recording(r))
    }
}

/// Store work of the call (its signature, a withdrawal) on a blocking thread; the input it
/// gives the flow comes back on the receiver (`fallback` when the work was lost).
struct Pending {
    fallback: Input,
    rx: oneshot::Receiver<Input>,
}

fn spawn_job(ctx: &Arc<Context>, job: driver::Job) -> Pending {
    let fallback = match job {
        driver::Job::Sign(_) => Input::Signed(SignResult::Failed),
        driver::Job::Withdraw(_) => Input::Withdrawn(false),
    };
    let signs = matches!(job, driver::Job::Sign(_));
    let (done_tx, rx) = oneshot::channel();
    let petition = ctx.petition();
    let stats = ctx.stats.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let input = job.run(&petition);
        if signs {
            stats.metrics.sign_duration(started.elapsed());
        }
        let _ = done_tx.send(input);
    });
    Pending { fallback, rx }
}

/// What the call knows before its flow starts.
async fn facts(
    ctx: &Arc<Context>,
    campaign: &Campaign,
    caller: &Arc<store::CallerIdentity>,
    called: &str,
) -> CallFacts {
    let anonymous = matches!(**caller, store::CallerIdentity::Withheld);
    let petition = ctx.petition();
    let count = petition.count(&campaign.slug);
    // A withheld caller has no signature to find: no trip to the store.
    let already_signed = !anonymous && {
        let slug = campaign.slug.clone();
        let who = caller.clone();
        tokio::task::spawn_blocking(move || petition.already_signed(&slug, &who))
            .await
            .unwrap_or(false)
    };
    CallFacts {
        already_signed,
        anonymous,
        outside_dates: campaign.outside_dates(SystemTime::now()),
        // The last tenth of `max_calls`: a flow can take a shorter route (sign first, a brief
        // message) so that nobody who got through is lost while the line is nearly full.
        line_full: {
            let max = ctx.config.max_calls;
            let in_progress = ctx
                .stats
                .calls_in_progress
                .load(std::sync::atomic::Ordering::Relaxed);
            in_progress > max.saturating_sub(max / 10)
        },
        language: campaign.did_languages.get(called).copied(),
        count,
        signature_number: None,
    }
}

/// Waits on an optional one-shot answer; pending forever when there is none.
async fn answer_of<T>(rx: &mut Option<oneshot::Receiver<T>>) -> Option<T> {
    match rx.as_mut() {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

/// Waits on the call's store work; pending forever when there is none.
async fn job_of(pending: &mut Option<Pending>) -> Input {
    match pending.as_mut() {
        Some(p) => {
            let fallback = p.fallback;
            (&mut p.rx).await.unwrap_or(fallback)
        }
        None => std::future::pending().await,
    }
}

/// Opens the call's RTP stream on a socket of its own.
fn open_media(
    ctx: &Arc<Context>,
    chosen: &Negotiated,
    from_trunk: bool,
    fault_media: bool,
) -> std::io::Result<Media> {
    let bind = SocketAddr::new(ctx.config.listen.ip(), 0);
    let socket = crate::rtp_ports::bind_rtp_socket(&ctx.rtp_ports, bind.ip())?;
    let local = crate::rtp_engine::local_addr(&socket, ctx.config.advertise).unwrap_or(bind);
    let config = StreamConfig {
        ssrc: rand::random(),
        initial_sequence: rand::random(),
        initial_timestamp: rand::random(),
        codec: chosen.codec,
        telephone_event: chosen.telephone_event,
        remote: chosen.remote,
        // A trunk's media servers may sit at another address than its signalling, and its
        // SDP is trusted; anyone else's SDP may name a third party (or a private address
        // behind NAT): nothing is sent until their own RTP shows where they are.
        before_latch: if from_trunk {
            BeforeLatch::OfferAddress
        } else {
            BeforeLatch::Silent
        },
        media_timeout: MEDIA_TIMEOUT,
    };
    let (handle, events) = ctx
        .rtp
        .as_ref()
        .ok_or_else(|| std::io::Error::other("the RTP engine did not start"))?
        .open(socket, config, ctx.stats.clone(), fault_media)?;
    Ok(Media {
        handle,
        events,
        local,
        play: 0,
        recording: false,
        gone: false,
    })
}

pub(crate) async fn run(setup: CallSetup, invite: InviteSlot) {
    let CallSetup {
        contact,
        transport,
        called,
        ctx,
        campaign,
        caller,
        trust,
        from_trunk,
        offer,
        chosen,
        dialog,
        mut events,
        fault_call,
        fault_media,
    } = setup;
    let call_id = dialog.id().call_id.clone();
    let started = Instant::now();
    let caller = Arc::new(caller);
    let withheld = matches!(*caller, store::CallerIdentity::Withheld);
    info!(call = %call_id, campaign = %campaign.slug, transport, withheld, trust = trust.as_str(), codec = chosen.codec.name(), "call");

    let media = match open_media(&ctx, &chosen, from_trunk, fault_media) {
        Ok(media) => media,
        Err(e) => return refuse_without_media(&ctx, &dialog, &invite, &e).await,
    };
    let mut leg = Leg::new(
        &ctx,
        dialog.clone(),
        media,
        &campaign,
        (offer, chosen),
        fault_call,
    );
    let facts = facts(&ctx, &campaign, &caller, &called).await;
    let info = driver::CallInfo {
        id: call_id.clone(),
        campaign: campaign.slug.clone(),
        flow_version: campaign.flow_version.clone(),
        caller,
        trust: trust.store_trust(),
        channel: "sip",
    };
    let mut call = driver::Driver::new(
        campaign.flow.clone(),
        facts,
        Instant::now(),
        info,
        campaign.story_step(),
        contact,
    );
    let deadline = started + ctx.config.max_call;
    let mut pending: Option<Pending> = None;
    let mut step = StepGauge {
        ctx: ctx.clone(),
        campaign: campaign.slug.clone(),
        step: String::new(),
    };
    // One timer for the whole call, reset on each turn (the flow's timers and max_call).
    let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
    tokio::pin!(sleep);

    loop {
        let now = Instant::now();
        step.follow(&call, &call_id);
        carry_out(&ctx, &mut call, &mut leg, &mut pending, now).await;
        if let Some(tx) = invite.take() {
            // Driven only now that the 180 is queued, so that the dialog sends it right
            // after our 100 Trying.
            spawn_invite_transaction(dialog.clone(), tx);
        }
        let waiting_on_store = pending.is_some() || leg.transferring.is_some();
        leg.show_state(waiting_on_store);
        if call.is_done() && !waiting_on_store {
            // The flow ended without saying goodbye on the wire: end the call.
            leg.end(StatusCode::TemporarilyUnavailable).await;
            break;
        }
        if now >= deadline && !leg.terminated {
            info!(call = %call_id, "call reached max_call_seconds");
            call.handle(now, Input::Hangup);
            leg.end(StatusCode::TemporarilyUnavailable).await;
            continue;
        }

        let wake = call.poll_timeout().map_or(deadline, |t| deadline.min(t));
        sleep.as_mut().reset(tokio::time::Instant::from_std(wake));
        tokio::select! {
            () = &mut sleep => {
                let now = Instant::now();
                if call.poll_timeout().is_some_and(|t| t <= now) {
                    call.handle(now, Input::Timer);
                }
            }
            event = leg.media.events.recv(), if !leg.media.gone => {
                on_media_event(&mut call, &mut leg, event).await;
            }
            event = events.recv() => on_dialog_event(&mut call, &mut leg, event).await,
            input = job_of(&mut pending) => {
                pending = None;
                call.handle(Instant::now(), input);
            }
            result = answer_of(&mut leg.transferring) => {
                leg.transferring = None;
                call.handle(Instant::now(), Input::TransferResult(result.unwrap_or(false)));
            }
        }
    }
    leg.media.handle.close();
    drop(step);
    if let Some(summaries) = &ctx.services.summaries {
        summaries.record(call.summary(Instant::now(), SystemTime::now()));
    }
    info!(call = %call_id, outcome = ?call.outcome(), step = call.engine().current_step(), lang = %call.language(), seconds = started.elapsed().as_secs(), "call ended");
}

/// Refuses a call whose RTP could not be opened: 503, and the INVITE transaction driven to
/// its end.
async fn refuse_without_media(
    ctx: &Context,
    dialog: &InviteDialog,
    invite: &InviteSlot,
    error: &std::io::Error,
) {
    warn!(error = %error, "cannot open the call's RTP: 503");
    ctx.stats
        .metrics
        .response(StatusCode::ServiceUnavailable.code());
    let _ = dialog.reject(Some(StatusCode::ServiceUnavailable), None);
    if let Some(tx) = invite.take() {
        drive_invite(dialog.clone(), tx).await;
    }
}

/// Carries out the flow's actions; what needs awaiting (the recording back from the media
/// thread, a BYE) is done here, and the flow goes on from it. Store work starts in the
/// background (`pending`).
async fn carry_out(
    ctx: &Arc<Context>,
    call: &mut driver::Driver,
    leg: &mut Leg,
    pending: &mut Option<Pending>,
    now: Instant,
) {
    loop {
        for job in call.step(now, leg) {
            *pending = Some(spawn_job(ctx, job));
        }
        if std::mem::take(&mut leg.stop_asked) {
            if let Some((take, length)) = leg.take_recording().await {
                call.recorded(now, take, length);
                continue;
            }
        }
        if std::mem::take(&mut leg.hangup_asked) {
            leg.end(StatusCode::TemporarilyUnavailable).await;
        }
        return;
    }
}

/// Drives the INVITE's server transaction in a task of its own; it ends on its own (ACK,
/// CANCEL or its timers).
fn spawn_invite_transaction(mut dialog: InviteDialog, mut tx: Transaction) {
    tokio::spawn(async move {
        if let Err(e) = dialog.handle(&mut tx).await {
            debug!(error = %e, "INVITE transaction");
        }
    });
}

/// What the call's media stream reports: a prompt's or a recording's end, a DTMF key, the
/// caller's RTP gone quiet; or (`None`) the stream itself gone with its media thread.
async fn on_media_event(call: &mut driver::Driver, leg: &mut Leg, event: Option<StreamEvent>) {
    let now = Instant::now();
    let Some(event) = event else {
        // The media thread dropped this call's stream (it panicked on it): the call cannot
        // go on without media.
        leg.media.gone = true;
        if !leg.terminated {
            warn!(call = %leg.call_id, "the call's media stream failed: ending the call");
            call.handle(now, Input::Hangup);
            leg.end(StatusCode::ServerInternalError).await;
        }
        return;
    };
    match event {
        StreamEvent::PromptFinished { play } => {
            if play == leg.media.play && !leg.terminated {
                call.handle(now, Input::PromptFinished);
            }
        }
        StreamEvent::RecordingFinished { recorder, reason } => {
            if leg.media.recording {
                leg.media.recording = false;
                info!(call = %leg.call_id, ?reason, speech_ms = recorder.speech().as_millis() as u64, "recording ended");
                let (take, length) = finish_recording(*recorder);
                call.recorded(now, take, length);
            }
        }
        StreamEvent::Digit(digit) => {
            if !leg.terminated {
                info!(call = %leg.call_id, %digit, step = call.engine().current_step(), "DTMF");
                call.handle(now, Input::Digit(digit));
            }
        }
        StreamEvent::MediaTimeout => {
            if leg.answered && !leg.terminated {
                info!(call = %leg.call_id, "no RTP from the caller: ending the call");
                call.handle(now, Input::Hangup);
                leg.end(StatusCode::TemporarilyUnavailable).await;
            }
        }
    }
}

/// What the call's dialog reports: the ACK, its end (or the dispatcher gone, `None`), a key
/// sent by INFO, a new offer.
async fn on_dialog_event(call: &mut driver::Driver, leg: &mut Leg, event: Option<CallEvent>) {
    let now = Instant::now();
    match event {
        Some(CallEvent::Confirmed) => {}
        Some(CallEvent::Terminated) | None => {
            if !leg.terminated {
                leg.terminated = true;
                call.handle(now, Input::Hangup);
                if let Some((take, length)) = leg.take_recording().await {
                    call.recorded(now, take, length);
                }
                leg.media.handle.close();
            }
        }
        Some(CallEvent::Digit(digit)) => {
            info!(call = %leg.call_id, %digit, step = call.engine().current_step(), "DTMF (INFO)");
            call.handle(now, Input::Digit(digit));
        }
        Some(CallEvent::Offer(body, handle)) => leg.reoffer(&body, handle).await,
    }
}

impl Leg {
    /// A new call's leg, ringing, on the stream `media` opened for it.
    fn new(
        ctx: &Context,
        dialog: InviteDialog,
        media: Media,
        campaign: &Campaign,
        (offer, chosen): (Offer, Negotiated),
        fault_call: bool,
    ) -> Leg {
        Leg {
            call_id: dialog.id().call_id.clone(),
            stats: ctx.stats.clone(),
            dialog,
            media,
            audio: campaign.audio.clone(),
            offer,
            chosen,
            session_id: rand::random::<u32>().into(),
            sdp_version: 1,
            answered: false,
            terminated: false,
            gauge: crate::metrics::CallGauge::new(
                ctx.stats.clone(),
                crate::metrics::CallState::Ringing,
            ),
            fault_call,
            transferring: None,
            stop_asked: false,
            hangup_asked: false,
        }
    }

    /// Shows the call in the gauge of calls by state.
    fn show_state(&mut self, waiting_on_store: bool) {
        self.gauge.set(if waiting_on_store {
            crate::metrics::CallState::Waiting
        } else if self.media.recording {
            crate::metrics::CallState::Recording
        } else if self.answered {
            crate::metrics::CallState::Answered
        } else {
            crate::metrics::CallState::Ringing
        });
    }
}

impl Leg {
    /// Answers a re-INVITE or UPDATE: the same stream, with the new offer's address and
    /// codec.
    async fn reoffer(&mut self, body: &[u8], handle: TransactionHandle) {
        let answer = if body.is_empty() {
            Ok(false)
        } else {
            sdp::parse(body).and_then(|o| {
                let n = sdp::negotiate(&o)?;
                let new_sdp = o != self.offer;
                self.offer = o;
                self.chosen = n;
                Ok(new_sdp)
            })
        };
        match answer {
            Ok(new_sdp) => {
                // The stream keeps its SSRC, sequence and clock. New SDP (the caller moved,
                // held, resumed) makes it learn the caller's source again; the same SDP again
                // (a session refresh) does not, so that no one can take the stream over by
                // flooding it at every refresh.
                self.media.handle.command(Command::Update {
                    remote: new_sdp.then_some(self.chosen.remote),
                    codec: self.chosen.codec,
                    telephone_event: self.chosen.telephone_event,
                });
                self.sdp_version += 1;
                let body = self.sdp_answer();
                self.stats.metrics.response(200);
                let _ = handle
                    .respond(StatusCode::OK, Some(sdp_headers()), Some(body.into_bytes()))
                    .await;
            }
            Err(e) => {
                debug!(error = %e, "re-INVITE offer refused");
                self.stats.metrics.response(488);
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            }
        }
    }
}

/// The take and its length, for a recording that ended.
fn finish_recording(r: Recorder) -> (driver::Recording, Duration) {
    let speech = r.speech();
    let length = Duration::from_secs_f64(r.samples().len() as f64 / 8000.0);
    let take = driver::Recording {
        wav: r.into_wav(),
        speech,
    };
    (take, length)
}

/// Lets the INVITE transaction send a final response queued on the dialog.
async fn drive_invite(mut dialog: InviteDialog, mut tx: Transaction) {
    let _ = tokio::time::timeout(Duration::from_secs(32), dialog.handle(&mut tx)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(body: &str) -> &[u8] {
        body.as_bytes()
    }

    #[test]
    fn info_dtmf_bodies() {
        assert_eq!(info_digit(info("Signal=5\r\nDuration=160\r\n")), Some('5'));
        assert_eq!(info_digit(info("Signal= #\r\n")), Some('#'));
        assert_eq!(info_digit(info("7")), Some('7'));
        assert_eq!(info_digit(info("Signal=x\r\n")), None);
        assert_eq!(info_digit(info("")), None);
        assert_eq!(info_digit(info("Signal=12")), None);
    }
}
