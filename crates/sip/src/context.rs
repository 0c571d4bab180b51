//! What a SIP server's requests and calls share: its settings, the services it calls on
//! (store, live count), its figures, the calls in progress and its media threads; and the
//! one way a response is sent (counted). Below `server` (which builds it) and `call` (which
//! runs on it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogStateSender, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::DialogId;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc;
use tracing::debug;

use crate::metrics::Stats;
use crate::ratelimit::{Guard, RateLimits};
use crate::rtp_ports::RtpPorts;
use crate::tls::TlsSettings;
use crate::trunk::{TrunkConfig, Trunks, Untrusted};
use driver::CampaignList;

/// How belteken meets the open internet: untrusted sources, TLS, RTP ports, rate limits.
#[derive(Debug, Clone, Default)]
pub struct EdgeConfig {
    /// The answer to an INVITE from a source that is no trunk's (when trunks exist).
    pub untrusted: Untrusted,
    /// SIP over TLS, if configured.
    pub tls: Option<TlsSettings>,
    /// Roots (PEM) that a TLS trunk's certificate must chain to.
    pub tls_roots_pem: Option<Vec<u8>>,
    /// RTP ports come from this range; `None`: any free port.
    pub rtp_ports: Option<RangeInclusive<u16>>,
    pub limits: RateLimits,
}

/// Settings of the SIP channel.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Where SIP listens, on UDP and TCP.
    pub listen: SocketAddr,
    /// The address put in Contact and SDP (the listen address unless it is unspecified).
    pub advertise: IpAddr,
    /// Calls in progress at most; more get 503.
    pub max_calls: usize,
    /// New calls get 503 while more than this share (percent) of the media threads' pacing
    /// rounds starts late ([`crate::shed`]); 0: never.
    pub shed_late_percent: f64,
    /// No call lasts longer than this.
    pub max_call: Duration,
    /// The trunks; none: calls from anywhere are taken (the demo).
    pub trunks: Vec<TrunkConfig>,
    pub edge: EdgeConfig,
    /// The campaign for numbers a trunk delivers that no campaign owns (else 404).
    pub default_campaign: Option<String>,
    /// Panics injected on purpose, for tests (none in production).
    pub faults: crate::fault::Faults,
}

/// What calls need from the rest of the server.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn store::Store>,
    pub hub: store::CountHub,
    pub secret: Arc<store::Secret>,
    /// Encrypts the number of callers who ask to be contacted (campaigns with keep_contact).
    pub contact_key: Option<Arc<store::ContactKey>>,
    /// Where each call's summary goes when it ends (the console's funnel).
    pub summaries: Option<store::CallSummaries>,
}

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

pub(crate) type CallMap = Arc<Mutex<HashMap<DialogId, mpsc::Sender<CallEvent>>>>;

pub(crate) struct Context {
    pub config: SipConfig,
    pub campaigns: CampaignList,
    pub services: Services,
    pub dialogs: Arc<DialogLayer>,
    pub state_tx: DialogStateSender,
    pub calls: CallMap,
    pub stats: Arc<Stats>,
    pub trunks: Arc<Trunks>,
    pub guard: Arc<Mutex<Guard>>,
    /// Where each call's RTP socket comes from (see `rtp_ports::allocate_rtp_socket`).
    pub rtp_ports: RtpPorts,
    /// Set while new calls are refused for the media threads' pace (see `shed`).
    pub shedding: Arc<std::sync::atomic::AtomicBool>,
    /// The server's media threads (`None`: they did not start, and calls get 503).
    pub rtp: Option<Arc<crate::rtp_engine::RtpEngine>>,
}

impl Context {
    /// Sends a response on `tx`, counted in this server's figures.
    pub(crate) async fn reply(
        &self,
        tx: &mut Transaction,
        status: StatusCode,
        headers: Vec<Header>,
    ) {
        reply(&self.stats.metrics, tx, status, headers).await;
    }

    /// The store and the live count, as the call driver uses them.
    pub(crate) fn petition(&self) -> driver::Petition {
        driver::Petition {
            store: self.services.store.clone(),
            hub: self.services.hub.clone(),
        }
    }
}

pub(crate) async fn reply(
    metrics: &crate::metrics::Metrics,
    tx: &mut Transaction,
    status: StatusCode,
    headers: Vec<Header>,
) {
    metrics.response(status.code());
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(error = %e, "could not send a response");
    }
}
