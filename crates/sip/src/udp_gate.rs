//! The UDP socket the SIP stack reads through: each datagram is judged by [`crate::wire`]
//! first, so requests the stack's parser refuses are answered (400, 416, 501, 505) rather than
//! dropped unanswered, and valid but unusual ones reach the stack in a form it reads.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use tracing::debug;

use crate::wire::{self, Verdict};

/// Whether a source may send now (rate limit, ban): the same gate the stack applies.
pub type Admit = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;
/// Counts a bad request against a source.
pub type Strike = Arc<dyn Fn(IpAddr) + Send + Sync>;

pub struct GatedUdp {
    socket: tokio::net::UdpSocket,
    admit: Admit,
    strike: Strike,
    /// The server's figures (responses sent).
    stats: std::sync::Arc<crate::metrics::Stats>,
}

impl GatedUdp {
    pub fn new(
        socket: tokio::net::UdpSocket,
        admit: Admit,
        strike: Strike,
        stats: std::sync::Arc<crate::metrics::Stats>,
    ) -> GatedUdp {
        GatedUdp {
            socket,
            admit,
            strike,
            stats,
        }
    }
}

#[async_trait::async_trait]
impl StackUdpSocket for GatedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            let Some(data) = buf.get(..len) else {
                continue;
            };
            // Keep-alives and blank lines are the stack's (it answers CRLFCRLF pings).
            if data.iter().all(u8::is_ascii_whitespace) {
                return Ok((len, from));
            }
            match wire::inspect(data, from) {
                Verdict::Pass(bytes) => {
                    if bytes.as_slice() == data {
                        return Ok((len, from));
                    }
                    // The normalised form; longer than the buffer cannot happen by much, but a
                    // datagram that would not fit is dropped rather than cut.
                    let Some(dest) = buf.get_mut(..bytes.len()) else {
                        debug!(src = %from, "normalised request too long; dropped");
                        continue;
                    };
                    dest.copy_from_slice(&bytes);
                    return Ok((bytes.len(), from));
                }
                Verdict::Answer { status, response } => {
                    // Admitted the way the stack admits what it reads; then counted as bad.
                    if !(self.admit)(from.ip()) {
                        continue;
                    }
                    (self.strike)(from.ip());
                    self.stats.metrics.response(status);
                    debug!(src = %from, status, "request refused before the stack");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        debug!(error = %e, "could not send a response");
                    }
                }
                Verdict::Drop => {}
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        if let Some(stripped) = wire::strip_null_tag(buf) {
            self.socket.send_to(&stripped, addr).await?;
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
