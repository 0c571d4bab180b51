//! The native SIP channel: answers calls, runs each call's flow and media, signs.
//!
//! rsipstack (pinned) does the transactions and dialogs; no type of it leaves this crate.
//! SDP, RTP and the media clock are the project's own (see `sdp` and the `media` crate).

pub mod body;
mod call;
mod context;
pub mod digest;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod metrics;
pub mod ratelimit;
pub mod register;
mod rtp_engine;
pub mod rtp_ports;
pub mod sdp;
mod server;
pub mod shed;
mod steps;
pub mod tls;
pub mod trunk;
mod udp_gate;
pub mod wire;

pub use fault::Faults;
pub use ratelimit::RateLimits;
pub use register::{RegistrationState, RegistrationStatus, Registrations};
pub use server::{
    Campaign, CampaignAudio, CampaignList, EdgeConfig, Services, SipConfig, SipError, SipServer,
    Stats,
};
pub use tls::TlsSettings;
pub use trunk::{
    CallerTrust, Cidr, DidSource, RegisterConfig, TrunkConfig, TrunkSettingError, TrunkTransport,
    Untrusted,
};
