//! The native SIP channel: answers calls, runs each call's flow and media, signs.
//!
//! rsipstack (pinned) does the transactions and dialogs; no type of it leaves this crate.
//! SDP, RTP and the media clock are the project's own (see `sdp` and the `media` crate).

mod call;
pub mod identity;
pub mod sdp;
mod server;

pub use server::{Campaign, Prompts, Services, SipConfig, SipError, SipServer, Stats};
