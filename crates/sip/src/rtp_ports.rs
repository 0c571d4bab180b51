//! RTP port allocation: a socket per call, from a configured port range (for firewalls and NAT
//! port forwards) or from any free port.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UdpSocket;

/// Ports tried per allocation before giving up (the call then gets 503).
const MAX_ATTEMPTS: u32 = 64;

/// The range RTP sockets come from; `None` lets the system choose.
#[derive(Debug, Default)]
pub struct RtpPorts {
    range: Option<RangeInclusive<u16>>,
    /// Where the next search starts, so consecutive calls spread over the range.
    cursor: AtomicU32,
}

impl RtpPorts {
    /// `range` holds even and odd ports; RTP takes even ones (RFC 3550), leaving the odd
    /// neighbour for RTCP.
    pub fn new(range: Option<RangeInclusive<u16>>) -> RtpPorts {
        RtpPorts {
            range,
            cursor: AtomicU32::new(rand::random::<u16>().into()),
        }
    }

    pub fn range(&self) -> Option<&RangeInclusive<u16>> {
        self.range.as_ref()
    }

    /// The even ports of the range, in the order to try them from the cursor on.
    fn candidates(&self) -> impl Iterator<Item = u16> + '_ {
        let (start, end) = match &self.range {
            Some(r) => (*r.start(), *r.end()),
            None => (0, 0),
        };
        let first_even = start + (start % 2);
        let count = if end >= first_even {
            u32::from((end - first_even) / 2) + 1
        } else {
            0
        };
        let offset = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..count.min(MAX_ATTEMPTS)).map(move |i| {
            let slot = (offset.wrapping_add(i)) % count.max(1);
            // slot < count <= 32768, so this stays within u16.
            first_even + u16::try_from(slot * 2).unwrap_or(0)
        })
    }
}

/// Binds the RTP socket for one call on `ip`, inside the configured range if there is one,
/// as a tokio socket.
pub async fn allocate_rtp_socket(ports: &RtpPorts, ip: IpAddr) -> io::Result<UdpSocket> {
    let socket = bind_rtp_socket(ports, ip)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Binds the RTP socket for one call on `ip`, inside the configured range if there is one.
/// Binding does not block; the socket is handed to a media thread (see `rtp_engine`).
pub fn bind_rtp_socket(ports: &RtpPorts, ip: IpAddr) -> io::Result<std::net::UdpSocket> {
    if ports.range.is_none() {
        return std::net::UdpSocket::bind(SocketAddr::new(ip, 0));
    }
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "the RTP port range is empty");
    for port in ports.candidates() {
        match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(io::Error::new(
        last.kind(),
        format!("no free RTP port in the configured range: {last}"),
    ))
}

/// An RTP port range that cannot be used; each carries the text it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    /// Not two port numbers joined by `-`.
    #[error("{given:?} is not a port range such as \"20000-29999\"")]
    Syntax { given: String },
    /// The range starts among the privileged ports.
    #[error("{given:?}: the range must lie above 1023")]
    Privileged { given: String },
    /// The range holds fewer than two ports (or ends before it starts).
    #[error("{given:?}: the range must hold at least two ports, the lower one first")]
    TooSmall { given: String },
}

/// Parses `"20000-29999"`.
pub fn parse_range(s: &str) -> Result<RangeInclusive<u16>, PortRangeError> {
    let syntax = || PortRangeError::Syntax { given: s.into() };
    let (a, b) = s.split_once('-').ok_or_else(syntax)?;
    let a: u16 = a.trim().parse().map_err(|_| syntax())?;
    let b: u16 = b.trim().parse().map_err(|_| syntax())?;
    if a < 1024 {
        return Err(PortRangeError::Privileged { given: s.into() });
    }
    if b <= a {
        return Err(PortRangeError::TooSmall { given: s.into() });
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("20000-29999"), Ok(20000..=29999));
        let given = |s: &str| s.to_string();
        assert_eq!(
            parse_range("29999-20000"),
            Err(PortRangeError::TooSmall {
                given: given("29999-20000")
            })
        );
        assert_eq!(
            parse_range("80-90"),
            Err(PortRangeError::Privileged {
                given: given("80-90")
            })
        );
        assert_eq!(
            parse_range("20000"),
            Err(PortRangeError::Syntax {
                given: given("20000")
            })
        );
        assert_eq!(
            parse_range("20000-20000"),
            Err(PortRangeError::TooSmall {
                given: given("20000-20000")
            })
        );
    }

    #[test]
    fn candidates_are_even_and_inside() {
        let p = RtpPorts::new(Some(20001..=20010));
        for _ in 0..10 {
            let c: Vec<u16> = p.candidates().collect();
            assert_eq!(c.len(), 5);
            assert!(c
                .iter()
                .all(|&x| x % 2 == 0 && (20002..=20010).contains(&x)));
        }
    }

    #[tokio::test]
    async fn allocates_within_the_range_and_skips_taken_ports() {
        let base = 41000 + (rand::random::<u16>() % 1000) * 2;
        let ports = RtpPorts::new(Some(base..=base + 7));
        let ip = IpAddr::from([127, 0, 0, 1]);
        let mut held = Vec::new();
        for _ in 0..4 {
            let s = allocate_rtp_socket(&ports, ip).await.expect("a free port");
            let port = s.local_addr().expect("bound").port();
            assert!((base..=base + 7).contains(&port) && port % 2 == 0);
            held.push(s);
        }
        // All four even ports are taken now.
        assert!(allocate_rtp_socket(&ports, ip).await.is_err());
        drop(held);
        assert!(allocate_rtp_socket(&ports, ip).await.is_ok());
    }
}
