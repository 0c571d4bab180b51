//! Call flows for belteken: the TOML flow language, its validation, a sans-IO interpreter, and numbers in words.
//!
//! - [`spec`]: a campaign's flow as declared in TOML (`[campaign.flow]`), validated into a
//!   [`spec::FlowSpec`]; [`spec::FlowToml::voicemail`] is the built-in default flow.
//! - [`engine`]: one [`engine::Engine`] per call turns inputs (answered, digit, prompt finished,
//!   speech, timer, hangup, store answers) into actions (ring, play, record, sign, transfer,
//!   hang up). It owns no socket and reads no clock: time comes in as an argument.
//! - [`say`]: numbers up to 999,999,999 as recorded word clips in Dutch, French and English.

#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

pub mod engine;
pub mod lang;
pub mod prompts;
pub mod say;
pub mod spec;

pub use lang::Lang;
