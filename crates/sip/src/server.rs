//! The SIP endpoint: transports, the incoming request loop and dialog event dispatch.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::DialogId;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::call::{self, CallEvent, CallSetup};
use crate::sdp;

/// Methods we answer, for Allow headers.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// Events queued per call before the dispatcher waits; a call reads them every 20 ms.
const CALL_EVENT_QUEUE: usize = 32;

/// Settings of the SIP channel.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Where SIP listens, on UDP and TCP.
    pub listen: SocketAddr,
    /// The address put in Contact and SDP (the listen address unless it is unspecified).
    pub advertise: IpAddr,
    /// Calls in progress at most; more get 503.
    pub max_calls: usize,
    /// No call lasts longer than this.
    pub max_call: Duration,
}

/// The prompts of a campaign, pre-encoded once and shared by every call.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub greeting: Arc<media::audio::Prompt>,
    pub story: Arc<media::audio::Prompt>,
    pub beep: Arc<media::audio::Prompt>,
    pub thanks: Arc<media::audio::Prompt>,
}

/// A campaign as the SIP channel needs it.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub slug: String,
    /// The numbers (Request-URI users) that reach this campaign, besides its slug.
    pub dids: Vec<String>,
    /// Region for caller numbers without a country code, e.g. "BE".
    pub default_region: String,
    pub flow: flow::FlowConfig,
    pub prompts: Prompts,
}

/// What calls need from the rest of the server.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn store::Store>,
    pub hub: store::CountHub,
    pub secret: Arc<store::Secret>,
}

/// Live figures of the channel.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls_in_progress: AtomicUsize,
    pub calls_total: AtomicU64,
    pub calls_rejected_busy: AtomicU64,
    /// Set when the server drains for shutdown: new calls get 503, calls in progress finish.
    pub draining: std::sync::atomic::AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot listen for SIP on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("SIP endpoint failed: {0}")]
    Endpoint(String),
}

type CallMap = Arc<Mutex<HashMap<DialogId, mpsc::Sender<CallEvent>>>>;

/// A bound SIP endpoint, ready to run.
pub struct SipServer {
    config: SipConfig,
    cancel: CancellationToken,
    endpoint: rsipstack::transaction::Endpoint,
    stats: Arc<Stats>,
}

impl SipServer {
    /// Binds UDP and TCP on `config.listen`.
    pub async fn bind(config: SipConfig) -> Result<SipServer, SipError> {
        let addr = config.listen;
        let bind_err = |e: &dyn std::fmt::Display| SipError::Bind {
            addr,
            reason: e.to_string(),
        };
        // rsipstack binds TCP lazily and only logs a failure; bind once here to fail early.
        drop(std::net::TcpListener::bind(addr).map_err(|e| bind_err(&e))?);
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.clone());
        let udp = UdpConnection::create_connection(addr, None, Some(cancel.child_token()))
            .await
            .map_err(|e| bind_err(&e))?;
        transport.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(addr, None)
            .await
            .map_err(|e| bind_err(&e))?;
        transport.add_transport(tcp.into());
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport)
            .with_user_agent(concat!("belteken/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(SipServer {
            config,
            cancel,
            endpoint,
            stats: Arc::new(Stats::default()),
        })
    }

    /// Live figures, shared.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        campaigns: Vec<Arc<Campaign>>,
        services: Services,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SipError> {
        let mut incoming = self
            .endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Endpoint(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(self.endpoint.inner.clone()));
        let (state_tx, state_rx) = dialogs.new_dialog_state_channel();
        let calls: CallMap = Arc::default();

        let endpoint_inner = self.endpoint.inner.clone();
        let serve = tokio::spawn(async move {
            if let Err(e) = endpoint_inner.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        tokio::spawn(dispatch_dialog_states(
            state_rx,
            calls.clone(),
            dialogs.clone(),
        ));

        let ctx = Arc::new(Context {
            config: self.config.clone(),
            campaigns,
            services,
            dialogs,
            state_tx,
            calls,
            stats: self.stats.clone(),
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                tx = incoming.recv() => match tx {
                    Some(tx) => on_request(ctx.clone(), tx).await,
                    None => break,
                },
            }
        }
        info!("SIP channel stopping");
        self.cancel.cancel();
        serve.abort();
        Ok(())
    }
}

pub(crate) struct Context {
    pub config: SipConfig,
    pub campaigns: Vec<Arc<Campaign>>,
    pub services: Services,
    pub dialogs: Arc<DialogLayer>,
    pub state_tx: DialogStateSender,
    pub calls: CallMap,
    pub stats: Arc<Stats>,
}

impl Context {
    fn campaign_for(&self, user: &str) -> Option<Arc<Campaign>> {
        self.campaigns
            .iter()
            .find(|c| c.slug == user || c.dids.iter().any(|d| d == user))
            .cloned()
    }
}

fn has_to_tag(tx: &Transaction) -> bool {
    tx.original
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some()
}

/// Whether the body is shorter than Content-Length says: a datagram cut short
/// (RFC 3261 section 18.3 wants a 400).
fn body_truncated(tx: &Transaction) -> bool {
    tx.original
        .header_value("Content-Length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|declared| declared > tx.original.body.len())
}

async fn on_request(ctx: Arc<Context>, mut tx: Transaction) {
    let method = tx.original.method;
    if body_truncated(&tx) {
        if method != Method::Ack {
            let warning = Header::Other(
                "Warning".into(),
                "399 belteken \"Content-Length exceeds the message\"".into(),
            );
            reply(&mut tx, StatusCode::BadRequest, vec![warning]).await;
        }
        return;
    }
    if has_to_tag(&tx) {
        // In-dialog request: hand it to its dialog, or 481.
        match ctx.dialogs.match_dialog(&tx) {
            Some(mut dialog) => {
                tokio::spawn(async move {
                    if let Err(e) = dialog.handle(&mut tx).await {
                        debug!(error = %e, "in-dialog request");
                    }
                });
            }
            None => {
                if method != Method::Ack {
                    reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await;
                }
            }
        }
        return;
    }
    match method {
        Method::Invite => on_invite(ctx, tx).await,
        Method::Options => {
            let allow = Header::Other("Allow".into(), ALLOW.into());
            let accept = Header::Other("Accept".into(), "application/sdp".into());
            reply(&mut tx, StatusCode::OK, vec![allow, accept]).await;
        }
        Method::Ack => {}
        Method::Bye
        | Method::Info
        | Method::Update
        | Method::Cancel
        | Method::Refer
        | Method::Notify
        | Method::PRack => {
            reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await;
        }
        _ => {
            let allow = Header::Other("Allow".into(), ALLOW.into());
            reply(&mut tx, StatusCode::MethodNotAllowed, vec![allow]).await;
        }
    }
}

pub(crate) async fn reply(tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(error = %e, "could not send a response");
    }
}

async fn on_invite(ctx: Arc<Context>, mut tx: Transaction) {
    ctx.stats.calls_total.fetch_add(1, Ordering::Relaxed);
    let user = tx
        .original
        .uri
        .user()
        .map(str::to_string)
        .unwrap_or_default();
    let Some(campaign) = ctx.campaign_for(&user) else {
        // The called user is a campaign slug or DID, not a caller number: safe to log.
        info!(called = %user, "INVITE for no campaign: 404");
        reply(&mut tx, StatusCode::NotFound, vec![]).await;
        return;
    };
    let offer = match sdp::parse(&tx.original.body).and_then(|o| {
        let chosen = sdp::negotiate(&o)?;
        Ok((o, chosen))
    }) {
        Ok(offer) => offer,
        Err(e) => {
            info!(campaign = %campaign.slug, reason = %e, "INVITE rejected: 488");
            let warning = Header::Other("Warning".into(), format!("304 belteken \"{e}\""));
            reply(&mut tx, StatusCode::NotAcceptableHere, vec![warning]).await;
            return;
        }
    };
    let in_progress = ctx.stats.calls_in_progress.load(Ordering::Relaxed);
    if in_progress >= ctx.config.max_calls || ctx.stats.draining.load(Ordering::Relaxed) {
        ctx.stats
            .calls_rejected_busy
            .fetch_add(1, Ordering::Relaxed);
        let retry = Header::Other("Retry-After".into(), "30".into());
        reply(&mut tx, StatusCode::ServiceUnavailable, vec![retry]).await;
        return;
    }
    let pai = tx.original.header_value("P-Asserted-Identity");
    let from = tx.original.header_value("From");
    let caller = store::identify_caller(
        crate::identity::caller_user(pai.as_deref(), from.as_deref()),
        &campaign.default_region,
        &ctx.services.secret,
    );
    drop((pai, from));

    let transport = tx
        .connection
        .as_ref()
        .map(|c| c.transport())
        .unwrap_or(rsipstack::sip::Transport::Udp);
    let host = ctx.config.advertise;
    let port = ctx.config.listen.port();
    let host = match host {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let contact = match transport {
        rsipstack::sip::Transport::Udp => format!("sip:belteken@{host}:{port}"),
        other => format!(
            "sip:belteken@{host}:{port};transport={}",
            other.to_string().to_ascii_lowercase()
        ),
    };
    let contact = match rsipstack::sip::Uri::try_from(contact.as_str()) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build Contact");
            reply(&mut tx, StatusCode::ServerInternalError, vec![]).await;
            return;
        }
    };
    let dialog =
        ctx.dialogs
            .get_or_create_server_invite(&tx, ctx.state_tx.clone(), None, Some(contact));
    let dialog = match dialog {
        Ok(d) => d,
        Err(e) => {
            debug!(error = %e, "cannot create a dialog");
            reply(&mut tx, StatusCode::BadRequest, vec![]).await;
            return;
        }
    };
    let (events_tx, events_rx) = mpsc::channel(CALL_EVENT_QUEUE);
    if let Ok(mut calls) = ctx.calls.lock() {
        calls.insert(dialog.id(), events_tx);
    }
    // 100 Trying now; the dialog then sees itself past "Calling" and sends no second one.
    if let Err(e) = tx.send_trying().await {
        debug!(error = %e, "could not send 100 Trying");
    }
    let setup = CallSetup {
        transport: match transport {
            rsipstack::sip::Transport::Udp => "udp",
            rsipstack::sip::Transport::Tcp => "tcp",
            rsipstack::sip::Transport::Tls => "tls",
            _ => "other",
        },
        ctx: ctx.clone(),
        campaign,
        caller,
        offer: offer.0,
        chosen: offer.1,
        dialog,
        events: events_rx,
    };
    ctx.stats.calls_in_progress.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let id = setup.dialog.id();
        let ctx = setup.ctx.clone();
        call::run(setup, tx).await;
        if let Ok(mut calls) = ctx.calls.lock() {
            calls.remove(&id);
        }
        ctx.dialogs.remove_dialog(&id);
        ctx.stats.calls_in_progress.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Routes dialog state changes to their call; answers what needs no call.
async fn dispatch_dialog_states(
    mut states: DialogStateReceiver,
    calls: CallMap,
    dialogs: Arc<DialogLayer>,
) {
    while let Some(state) = states.recv().await {
        let (id, event) = match state {
            DialogState::Terminated(id, reason) => {
                debug!(?reason, "dialog terminated");
                (id, CallEvent::Terminated)
            }
            DialogState::Updated(id, req, handle) => (id, CallEvent::Offer(req.body, handle)),
            DialogState::Info(id, req, handle) => {
                let digit = call::info_digit(&req.body);
                let ok = handle.reply(StatusCode::OK).await;
                if ok.is_err() {
                    debug!("INFO answer not sent");
                }
                match digit {
                    Some(d) => (id, CallEvent::Digit(d)),
                    None => continue,
                }
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle
                    .respond(
                        StatusCode::OK,
                        Some(vec![Header::Other("Allow".into(), ALLOW.into())]),
                        None,
                    )
                    .await;
                continue;
            }
            DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::MethodNotAllowed).await;
                continue;
            }
            DialogState::Confirmed(id, _) => (id, CallEvent::Confirmed),
            _ => continue,
        };
        let sender = calls.lock().ok().and_then(|c| c.get(&id).cloned());
        match sender {
            Some(sender) => {
                if sender.send(event).await.is_err() {
                    dialogs.remove_dialog(&id);
                }
            }
            None => {
                if let CallEvent::Offer(_, handle) = event {
                    let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
            }
        }
    }
}
