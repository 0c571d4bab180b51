//! One call: drives its flow engine, plays and records its media, signs, withdraws, transfers.

// Nothing a peer sends may panic this code: no slicing or indexing that can go out of bounds.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flow::engine::{Action, CallFacts, Engine, Input, SignResult};
use media::recorder::{Recorder, RecorderLimits};
use media::stream::{BeforeLatch, Command, StreamConfig, StreamEvent};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::campaign::Campaign;
use crate::rtp_engine::MediaHandle;
use crate::sdp::{self, Negotiated, Offer};
use crate::server::Context;

const SAMPLES_PER_FRAME: usize = media::FRAME_SAMPLES;
/// A caller whose RTP has stopped this long after the answer is gone (lost BYE).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a REFER to the helpline may take to be accepted.
const REFER_TIMEOUT: Duration = Duration::from_secs(8);

/// Something the SIP dialog reports to its call.
pub(crate) enum CallEvent {
    /// The ACK for our 200 arrived.
    Confirmed,
    /// The dialog ended (BYE, CANCEL, timeout).
    Terminated,
    /// A re-INVITE or UPDATE with this body (empty: offer-less); answer on the handle.
    Offer(Vec<u8>, TransactionHandle),
    /// A DTMF key sent by SIP INFO.
    Digit(char),
}

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
pub(crate) async fn end_after_panic(dialog: &InviteDialog, invite: &InviteSlot) {
    use rsipstack::dialog::dialog::DialogState;
    let status = StatusCode::ServerInternalError;
    if let Some(mut tx) = invite.take() {
        // The INVITE was never handed to its driver: answer it here.
        crate::server::reply(&mut tx, status, vec![]).await;
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
            crate::metrics::response(status.code());
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
        crate::summary::move_step(&self.ctx.stats, &self.campaign, &self.step, to);
        self.step = to.to_string();
    }
}

impl Drop for StepGauge {
    fn drop(&mut self) {
        crate::summary::move_step(&self.ctx.stats, &self.campaign, &self.step, "");
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

/// What a finished recording left for the `sign` step.
struct Take {
    wav: Vec<u8>,
    speech: Duration,
}

/// Runs the store's `sign` on a blocking thread; the flow learns the result later.
fn spawn_sign(
    ctx: &Arc<Context>,
    campaign: &Campaign,
    caller: &Arc<store::CallerIdentity>,
    trust: crate::trunk::CallerTrust,
    take: Option<Take>,
    contact: Option<store::SealedContact>,
    call_id: &str,
) -> oneshot::Receiver<SignResult> {
    let (done_tx, done_rx) = oneshot::channel();
    let services = ctx.services.clone();
    let slug = campaign.slug.clone();
    let caller = caller.clone();
    let call_id = call_id.to_string();
    let flow_version = campaign.flow_version.clone();
    tokio::task::spawn_blocking(move || {
        let (wav, speech) = match take {
            Some(t) => (t.wav, t.speech),
            // A flow that signs by a key or by listening has no voice recording: the
            // signature keeps a short silent WAV so that every row has one.
            None => (
                media::wav::pcm16_mono(&[0; SAMPLES_PER_FRAME], 8000),
                Duration::ZERO,
            ),
        };
        let signature = store::NewSignature {
            campaign: slug.clone(),
            caller: (*caller).clone(),
            recording_wav: wav,
            speech_ms: speech.as_millis().min(u128::from(u32::MAX)) as u32,
            channel: "sip",
            trust: Some(match trust {
                crate::trunk::CallerTrust::NetworkAsserted => store::Trust::NetworkAsserted,
                crate::trunk::CallerTrust::FromHeader => store::Trust::FromHeader,
                crate::trunk::CallerTrust::Withheld => store::Trust::Withheld,
            }),
            flow_version: Some(flow_version),
            contact,
        };
        let sign_started = std::time::Instant::now();
        let signed = services.store.sign(signature);
        crate::metrics::sign_duration(sign_started.elapsed());
        let result = match signed {
            Ok(outcome) => {
                let counts = outcome.counts();
                services.hub.publish(&slug, counts);
                let result = match outcome {
                    store::SignOutcome::Counted { .. } => SignResult::Counted {
                        number: counts.signatures,
                    },
                    store::SignOutcome::AlreadySigned { .. } => SignResult::AlreadySigned,
                    store::SignOutcome::Unverified { .. } => SignResult::Unverified,
                };
                info!(call = %call_id, campaign = %slug, ?result, signatures = counts.signatures, unverified = counts.unverified, "signature");
                result
            }
            Err(e) => {
                warn!(call = %call_id, error = %e, "signature not stored");
                SignResult::Failed
            }
        };
        let _ = done_tx.send(result);
    });
    done_rx
}

/// Runs the store's `erase` for a caller who withdraws by phone.
fn spawn_withdraw(
    ctx: &Arc<Context>,
    campaign: &Campaign,
    caller: &Arc<store::CallerIdentity>,
    call_id: &str,
) -> oneshot::Receiver<bool> {
    let (done_tx, done_rx) = oneshot::channel();
    let services = ctx.services.clone();
    let slug = campaign.slug.clone();
    let caller = caller.clone();
    let call_id = call_id.to_string();
    tokio::task::spawn_blocking(move || {
        let ok = match caller.key() {
            None => false,
            Some(key) => match services.store.erase(&slug, key) {
                Ok(erased) => {
                    if let Ok(counts) = services.store.counts(&slug) {
                        services.hub.reset(&slug, counts);
                    }
                    info!(call = %call_id, campaign = %slug, erased, "signature withdrawn by phone");
                    erased
                }
                Err(e) => {
                    warn!(call = %call_id, error = %e, "withdrawal failed");
                    false
                }
            },
        };
        let _ = done_tx.send(ok);
    });
    done_rx
}

/// What the call knows before its flow starts.
async fn facts(
    ctx: &Arc<Context>,
    campaign: &Campaign,
    caller: &Arc<store::CallerIdentity>,
    called: &str,
) -> CallFacts {
    let anonymous = matches!(**caller, store::CallerIdentity::Withheld);
    let already_signed = if anonymous {
        false
    } else {
        let store = ctx.services.store.clone();
        let slug = campaign.slug.clone();
        let caller = caller.clone();
        tokio::task::spawn_blocking(move || store.has_signed_identity(&slug, &caller))
            .await
            .ok()
            .and_then(Result::ok)
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
        count: ctx.services.hub.current(&campaign.slug).signatures,
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

pub(crate) async fn run(setup: CallSetup, invite: InviteSlot) {
    let CallSetup {
        mut contact,
        transport,
        called,
        ctx,
        campaign,
        caller,
        trust,
        from_trunk,
        mut offer,
        mut chosen,
        dialog,
        mut events,
        fault_call,
        fault_media,
    } = setup;
    let call_id = dialog.id().call_id.clone();
    let started = Instant::now();
    let mut gauge = crate::metrics::CallGauge::new(crate::metrics::CallState::Ringing);
    let caller = Arc::new(caller);
    let withheld = matches!(*caller, store::CallerIdentity::Withheld);
    info!(call = %call_id, campaign = %campaign.slug, transport, withheld, trust = trust.as_str(), codec = chosen.codec.name(), "call");

    let bind = SocketAddr::new(ctx.config.listen.ip(), 0);
    let opened = crate::rtp_ports::bind_rtp_socket(&ctx.rtp_ports, bind.ip()).and_then(|socket| {
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
        let (handle, events) =
            crate::rtp_engine::engine()?.open(socket, config, ctx.stats.clone(), fault_media)?;
        Ok((handle, events, local))
    });
    let (handle, media_events, local) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            warn!(error = %e, "cannot open the call's RTP: 503");
            crate::metrics::response(StatusCode::ServiceUnavailable.code());
            let _ = dialog.reject(Some(StatusCode::ServiceUnavailable), None);
            if let Some(tx) = invite.take() {
                drive_invite(dialog.clone(), tx).await;
            }
            return;
        }
    };
    let session_id: u64 = rand::random::<u32>().into();
    let mut sdp_version = 1u64;
    let mut media = Media {
        handle,
        events: media_events,
        local,
        play: 0,
        recording: false,
        gone: false,
    };

    let facts = facts(&ctx, &campaign, &caller, &called).await;
    let mut call = Engine::new(campaign.flow.clone(), facts, Instant::now());
    let deadline = started + ctx.config.max_call;
    let mut answered = false;
    let mut summary = crate::summary::Tracker::new(&campaign);
    let mut terminated = false;
    let mut take: Option<Take> = None;
    let mut signing: Option<oneshot::Receiver<SignResult>> = None;
    let mut withdrawing: Option<oneshot::Receiver<bool>> = None;
    let mut transferring: Option<oneshot::Receiver<bool>> = None;
    let mut step = StepGauge {
        ctx: ctx.clone(),
        campaign: campaign.slug.clone(),
        step: String::new(),
    };
    let mut wants_contact = false;
    // One timer for the whole call, reset on each turn (the flow's timers and max_call).
    let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
    tokio::pin!(sleep);

    loop {
        let now = Instant::now();
        if call.current_step() != step.step {
            step.enter(call.current_step());
            info!(call = %call_id, step = %step.step, lang = %call.language(), "step");
        }
        while let Some(action) = call.poll_action() {
            match action {
                Action::Ring => {
                    crate::metrics::response(180);
                    if let Err(e) = dialog.ringing(None, None) {
                        debug!(error = %e, "180 not sent");
                    }
                }
                Action::Answer => {
                    if !answered && !terminated {
                        let body =
                            sdp::answer(&offer, &chosen, media.local, session_id, sdp_version);
                        crate::metrics::response(200);
                        gauge.set(crate::metrics::CallState::Answered);
                        if let Err(e) = dialog.accept(Some(sdp_headers()), Some(body.into_bytes()))
                        {
                            warn!(call = %call_id, error = %e, "200 not sent");
                        }
                        answered = true;
                        media.handle.command(Command::Start { origin: now });
                        if fault_call {
                            crate::fault::fire("fault injected: call");
                        }
                    }
                }
                Action::Play { prompts, .. } => {
                    let prompts: Vec<_> = prompts
                        .iter()
                        .filter_map(|r| {
                            let audio = campaign.audio.resolve(r);
                            if audio.is_none() {
                                warn!(call = %call_id, prompt = ?r, "prompt not loaded");
                            }
                            audio
                        })
                        .collect();
                    media.play += 1;
                    summary.play(call.current_step(), now);
                    if prompts.is_empty() {
                        // Nothing to play: the prompt is over at once.
                        media.handle.command(Command::StopPlayback);
                        summary.finished(now);
                        call.handle(now, Input::PromptFinished);
                    } else {
                        let play = media.play;
                        media.handle.command(Command::Play { play, prompts });
                    }
                }
                Action::StopPlayback => {
                    summary.stopped(now);
                    media.play += 1;
                    media.handle.command(Command::StopPlayback);
                }
                Action::StartRecording {
                    max,
                    silence_end,
                    initial_silence,
                } => {
                    let limits = RecorderLimits {
                        max,
                        silence_end,
                        initial_silence,
                    };
                    media.recording = true;
                    media.handle.command(Command::StartRecording { limits });
                    // Marks the beep's end: what a caller (and a test) waits for to speak.
                    info!(call = %call_id, "recording started");
                }
                Action::StopRecording => {
                    if media.recording {
                        // When the recording already ended by itself, `None` comes back
                        // and its end is on the way as an event.
                        if let Some(r) = media.handle.take_recording().await {
                            media.recording = false;
                            let (t, input) = finish_recording(r);
                            take = Some(t);
                            call.handle(now, input);
                        }
                    }
                }
                Action::DiscardRecording => take = None,
                Action::Sign => {
                    summary.recorded |= take.is_some();
                    signing = Some(spawn_sign(
                        &ctx,
                        &campaign,
                        &caller,
                        trust,
                        take.take(),
                        if wants_contact { contact.take() } else { None },
                        &call_id,
                    ));
                }
                Action::Withdraw => {
                    withdrawing = Some(spawn_withdraw(&ctx, &campaign, &caller, &call_id));
                }
                Action::Transfer { uri } => {
                    let (done_tx, done_rx) = oneshot::channel();
                    transferring = Some(done_rx);
                    let d = dialog.clone();
                    let call_id = call_id.clone();
                    tokio::spawn(async move {
                        let refer_to = format!("<{uri}>");
                        let result =
                            tokio::time::timeout(REFER_TIMEOUT, d.refer(refer_to, None, None))
                                .await;
                        let ok =
                            matches!(&result, Ok(Ok(Some(r))) if r.status_code.code() / 100 == 2);
                        info!(call = %call_id, ok, "REFER to the helpline");
                        let _ = done_tx.send(ok);
                    });
                }
                Action::KeepContact => {
                    wants_contact = true;
                    info!(call = %call_id, "caller asked to be contacted");
                }
                Action::SetLanguage(lang) => {
                    debug!(call = %call_id, %lang, "language");
                }
                Action::Hangup => {
                    if !terminated {
                        if answered {
                            if let Err(e) = dialog.bye().await {
                                debug!(error = %e, "BYE failed");
                            }
                        } else {
                            crate::metrics::response(StatusCode::TemporarilyUnavailable.code());
                            let _ = dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
                        }
                        terminated = true;
                        media.handle.close();
                    }
                }
            }
        }
        if let Some(mut tx) = invite.take() {
            // The INVITE transaction is driven only after the 180 is queued, so that
            // the dialog sends it right after our 100 Trying. It ends on its own
            // (ACK, CANCEL or its timers).
            let mut d = dialog.clone();
            tokio::spawn(async move {
                if let Err(e) = d.handle(&mut tx).await {
                    debug!(error = %e, "INVITE transaction");
                }
            });
        }
        let waiting_on_store = signing.is_some() || withdrawing.is_some() || transferring.is_some();
        gauge.set(if waiting_on_store {
            crate::metrics::CallState::Waiting
        } else if media.recording {
            crate::metrics::CallState::Recording
        } else if answered {
            crate::metrics::CallState::Answered
        } else {
            crate::metrics::CallState::Ringing
        });
        if call.is_done() && !waiting_on_store {
            if !terminated {
                // The flow ended without saying goodbye on the wire: end the call.
                if answered {
                    let _ = dialog.bye().await;
                } else {
                    crate::metrics::response(StatusCode::TemporarilyUnavailable.code());
                    let _ = dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
                }
            }
            break;
        }
        if now >= deadline && !terminated {
            info!(call = %call_id, "call reached max_call_seconds");
            call.handle(now, Input::Hangup);
            if answered {
                let _ = dialog.bye().await;
            }
            terminated = true;
            media.handle.close();
            continue;
        }

        let mut wake = deadline;
        if let Some(t) = call.poll_timeout() {
            wake = wake.min(t);
        }
        sleep.as_mut().reset(tokio::time::Instant::from_std(wake));
        tokio::select! {
            () = &mut sleep => {
                let now = Instant::now();
                if call.poll_timeout().is_some_and(|t| t <= now) {
                    call.handle(now, Input::Timer);
                }
            }
            event = media.events.recv(), if !media.gone => {
                let now = Instant::now();
                let Some(event) = event else {
                    // The media thread dropped this call's stream (it panicked on it): the
                    // call cannot go on without media.
                    media.gone = true;
                    if !terminated {
                        warn!(call = %call_id, "the call's media stream failed: ending the call");
                        call.handle(now, Input::Hangup);
                        if answered {
                            let _ = dialog.bye().await;
                        } else {
                            crate::metrics::response(StatusCode::ServerInternalError.code());
                            let _ = dialog.reject(Some(StatusCode::ServerInternalError), None);
                        }
                        terminated = true;
                        media.handle.close();
                    }
                    continue;
                };
                match event {
                    StreamEvent::PromptFinished { play } => {
                        if play == media.play && !terminated {
                            summary.finished(now);
                            call.handle(now, Input::PromptFinished);
                        }
                    }
                    StreamEvent::RecordingFinished { recorder, reason } => {
                        if media.recording {
                            media.recording = false;
                            info!(call = %call_id, ?reason, speech_ms = recorder.speech().as_millis() as u64, "recording ended");
                            let (t, input) = finish_recording(*recorder);
                            summary.recorded = true;
                            take = Some(t);
                            call.handle(now, input);
                        }
                    }
                    StreamEvent::Digit(digit) => {
                        if !terminated {
                            info!(call = %call_id, %digit, step = call.current_step(), "DTMF");
                            call.handle(now, Input::Digit(digit));
                        }
                    }
                    StreamEvent::MediaTimeout => {
                        if answered && !terminated {
                            info!(call = %call_id, "no RTP from the caller: ending the call");
                            call.handle(now, Input::Hangup);
                            let _ = dialog.bye().await;
                            terminated = true;
                            media.handle.close();
                        }
                    }
                }
            }
            event = events.recv() => {
                let now = Instant::now();
                match event {
                    Some(CallEvent::Confirmed) => {}
                    Some(CallEvent::Terminated) | None => {
                        if !terminated {
                            terminated = true;
                            call.handle(now, Input::Hangup);
                            if media.recording {
                                if let Some(r) = media.handle.take_recording().await {
                                    media.recording = false;
                                    let (t, input) = finish_recording(r);
                                    take = Some(t);
                                    call.handle(now, input);
                                }
                            }
                            media.handle.close();
                        }
                    }
                    Some(CallEvent::Digit(digit)) => {
                        info!(call = %call_id, %digit, step = call.current_step(), "DTMF (INFO)");
                        call.handle(now, Input::Digit(digit));
                    }
                    Some(CallEvent::Offer(body, handle)) => {
                        let answer = if body.is_empty() {
                            Ok(false)
                        } else {
                            sdp::parse(&body).and_then(|o| {
                                let n = sdp::negotiate(&o)?;
                                let new_sdp = o != offer;
                                offer = o;
                                chosen = n;
                                Ok(new_sdp)
                            })
                        };
                        match answer {
                            Ok(new_sdp) => {
                                // The stream keeps its SSRC, sequence and clock. New SDP (the
                                // caller moved, held, resumed) makes it learn the caller's
                                // source again; the same SDP again (a session refresh) does
                                // not, so that no one can take the stream over by flooding it
                                // at every refresh.
                                media.handle.command(Command::Update {
                                    remote: new_sdp.then_some(chosen.remote),
                                    codec: chosen.codec,
                                    telephone_event: chosen.telephone_event,
                                });
                                sdp_version += 1;
                                let body = sdp::answer(&offer, &chosen, media.local, session_id, sdp_version);
                                crate::metrics::response(200);
                                let _ = handle.respond(StatusCode::OK, Some(sdp_headers()), Some(body.into_bytes())).await;
                            }
                            Err(e) => {
                                debug!(error = %e, "re-INVITE offer refused");
                                crate::metrics::response(488);
                                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                            }
                        }
                    }
                }
            }
            result = answer_of(&mut signing) => {
                signing = None;
                summary.signed = matches!(result, Some(SignResult::Counted { .. } | SignResult::Unverified));
                call.handle(Instant::now(), Input::Signed(result.unwrap_or(SignResult::Failed)));
            }
            result = answer_of(&mut withdrawing) => {
                withdrawing = None;
                call.handle(Instant::now(), Input::Withdrawn(result.unwrap_or(false)));
            }
            result = answer_of(&mut transferring) => {
                transferring = None;
                call.handle(Instant::now(), Input::TransferResult(result.unwrap_or(false)));
            }
        }
    }
    media.handle.close();
    drop(step);
    summary.answered = answered;
    if let Some(summaries) = &ctx.services.summaries {
        summaries.record(summary.summary(&campaign, Instant::now()));
    }
    info!(call = %call_id, outcome = ?call.outcome(), step = call.current_step(), lang = %call.language(), seconds = started.elapsed().as_secs(), "call ended");
}

/// The take and the flow's input for a recording that ended.
fn finish_recording(r: Recorder) -> (Take, Input) {
    let speech = r.speech();
    let length = Duration::from_secs_f64(r.samples().len() as f64 / 8000.0);
    let take = Take {
        wav: r.into_wav(),
        speech,
    };
    (take, Input::RecordingFinished { speech, length })
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
