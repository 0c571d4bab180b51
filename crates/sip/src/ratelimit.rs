//! Per-source rate limiting and temporary bans after repeated bad requests.
//!
//! Sans-IO: the caller passes the time. The server consults `allow_packet` for every datagram and
//! every new stream connection (before parsing), and reports bad requests (a refused INVITE, a
//! REGISTER, a method we do not serve, a request for no dialog) with `bad_request`.
//!
//! A source is an IPv4 address or an IPv6 /64: one host usually holds a whole /64, and
//! counting its addresses one by one would give it 2^64 buckets and ban nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The limits, each with its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Sustained messages per second from one source address.
    pub messages_per_second: u32,
    /// Messages one source may send at once above the sustained rate.
    pub burst: u32,
    /// Bad requests within `bad_request_window` that get a source banned.
    pub bad_requests_before_ban: u32,
    pub bad_request_window: Duration,
    /// How long a ban lasts: every message from the source is dropped unread.
    pub ban: Duration,
    /// Sources tracked at most; the least recently seen unbanned one makes room.
    pub max_sources: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages_per_second: 50,
            burst: 200,
            bad_requests_before_ban: 20,
            bad_request_window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
            max_sources: 10_000,
        }
    }
}

#[derive(Debug, Clone)]
struct SourceState {
    tokens: f64,
    last_seen: Instant,
    strikes: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
}

/// What happened to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// Counted; no ban yet.
    Counted,
    /// This strike started a ban of this length.
    Banned(Duration),
    /// The source was already banned.
    AlreadyBanned,
}

/// The state of every source seen recently.
#[derive(Debug)]
pub struct Guard {
    limits: RateLimits,
    sources: HashMap<IpAddr, SourceState>,
}

/// The source an address counts under: an IPv4 address (also when written IPv4-mapped) or
/// the /64 an IPv6 address is in.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
        v4 => v4,
    }
}

impl Guard {
    pub fn new(limits: RateLimits) -> Guard {
        Guard {
            limits,
            sources: HashMap::new(),
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    fn entry(&mut self, ip: IpAddr, now: Instant) -> &mut SourceState {
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.limits.max_sources {
            self.make_room(now);
        }
        let burst = f64::from(self.limits.burst.max(1));
        self.sources.entry(ip).or_insert(SourceState {
            tokens: burst,
            last_seen: now,
            strikes: 0,
            window_start: now,
            banned_until: None,
        })
    }

    /// Drops expired bans and the least recently seen unbanned source.
    fn make_room(&mut self, now: Instant) {
        for s in self.sources.values_mut() {
            if s.banned_until.is_some_and(|until| until <= now) {
                s.banned_until = None;
            }
        }
        let victim = self
            .sources
            .iter()
            .filter(|(_, s)| s.banned_until.is_none())
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(ip, _)| *ip)
            .or_else(|| {
                // Every slot holds a ban: give up the one ending first.
                self.sources
                    .iter()
                    .min_by_key(|(_, s)| s.banned_until)
                    .map(|(ip, _)| *ip)
            });
        if let Some(ip) = victim {
            self.sources.remove(&ip);
        }
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources
            .get(&source(ip))
            .and_then(|s| s.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Whether a message (or a new connection) from `ip` may be read. A message over the
    /// rate is dropped and counts as a bad request, so a flood ends in a ban.
    pub fn allow_packet(&mut self, ip: IpAddr, now: Instant) -> (bool, Option<Strike>) {
        let ip = source(ip);
        if self.is_banned(ip, now) {
            return (false, None);
        }
        let rate = f64::from(self.limits.messages_per_second.max(1));
        let burst = f64::from(self.limits.burst.max(1));
        let s = self.entry(ip, now);
        let elapsed = now.saturating_duration_since(s.last_seen).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(burst);
        s.last_seen = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            (true, None)
        } else {
            (false, Some(self.bad_request(ip, now)))
        }
    }

    /// Counts a bad request from `ip`; bans the source when it has sent too many.
    pub fn bad_request(&mut self, ip: IpAddr, now: Instant) -> Strike {
        let ip = source(ip);
        let limits = self.limits;
        let s = self.entry(ip, now);
        if s.banned_until.is_some_and(|until| until > now) {
            return Strike::AlreadyBanned;
        }
        if now.saturating_duration_since(s.window_start) > limits.bad_request_window {
            s.window_start = now;
            s.strikes = 0;
        }
        s.strikes = s.strikes.saturating_add(1);
        s.last_seen = now;
        if s.strikes >= limits.bad_requests_before_ban.max(1) {
            s.banned_until = Some(now + limits.ban);
            s.strikes = 0;
            s.window_start = now;
            Strike::Banned(limits.ban)
        } else {
            Strike::Counted
        }
    }

    /// Sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn limits() -> RateLimits {
        RateLimits {
            messages_per_second: 10,
            burst: 5,
            bad_requests_before_ban: 3,
            bad_request_window: Duration::from_secs(10),
            ban: Duration::from_secs(60),
            max_sources: 4,
        }
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut g = Guard::new(RateLimits {
            bad_requests_before_ban: 100,
            ..limits()
        });
        for _ in 0..5 {
            assert!(g.allow_packet(ip(1), t0).0);
        }
        assert_eq!(g.allow_packet(ip(1), t0), (false, Some(Strike::Counted)));
        // 100 ms at 10/s is one more message.
        assert!(g.allow_packet(ip(1), t0 + Duration::from_millis(100)).0);
        assert!(!g.allow_packet(ip(1), t0 + Duration::from_millis(100)).0);
        // Another source has its own bucket.
        assert!(g.allow_packet(ip(2), t0).0);
    }

    #[test]
    fn bad_requests_ban_then_expire() {
        let t0 = Instant::now();
        let mut g = Guard::new(limits());
        assert_eq!(g.bad_request(ip(1), t0), Strike::Counted);
        assert_eq!(g.bad_request(ip(1), t0), Strike::Counted);
        assert_eq!(
            g.bad_request(ip(1), t0),
            Strike::Banned(Duration::from_secs(60))
        );
        assert!(g.is_banned(ip(1), t0 + Duration::from_secs(59)));
        assert_eq!(
            g.allow_packet(ip(1), t0 + Duration::from_secs(1)),
            (false, None)
        );
        assert_eq!(
            g.bad_request(ip(1), t0 + Duration::from_secs(2)),
            Strike::AlreadyBanned
        );
        assert!(!g.is_banned(ip(1), t0 + Duration::from_secs(61)));
        assert!(g.allow_packet(ip(1), t0 + Duration::from_secs(61)).0);
    }

    #[test]
    fn strikes_outside_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut g = Guard::new(limits());
        g.bad_request(ip(1), t0);
        g.bad_request(ip(1), t0);
        assert_eq!(
            g.bad_request(ip(1), t0 + Duration::from_secs(11)),
            Strike::Counted
        );
    }

    #[test]
    fn flood_gets_banned() {
        let t0 = Instant::now();
        let mut g = Guard::new(limits());
        let mut banned = false;
        for _ in 0..20 {
            if let (_, Some(Strike::Banned(_))) = g.allow_packet(ip(7), t0) {
                banned = true;
            }
        }
        assert!(banned);
        assert!(g.is_banned(ip(7), t0));
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64() {
        let t0 = Instant::now();
        let mut g = Guard::new(limits());
        let v6 = |s: &str| s.parse::<IpAddr>().expect("test address");
        // Strikes from three addresses of one /64 ban the whole /64, and only it.
        g.bad_request(v6("2001:db8:1:2::1"), t0);
        g.bad_request(v6("2001:db8:1:2::2"), t0);
        assert_eq!(
            g.bad_request(v6("2001:db8:1:2:ffff::3"), t0),
            Strike::Banned(Duration::from_secs(60))
        );
        assert!(g.is_banned(v6("2001:db8:1:2:abcd::9"), t0));
        assert!(!g.allow_packet(v6("2001:db8:1:2::77"), t0).0);
        assert!(!g.is_banned(v6("2001:db8:1:3::1"), t0));
        // Fresh addresses of one /64 share one bucket.
        for i in 0..5u16 {
            assert!(
                g.allow_packet(IpAddr::from([0x2001, 0xdb8, 9, 9, 0, 0, 0, i]), t0)
                    .0
            );
        }
        assert!(
            !g.allow_packet(IpAddr::from([0x2001, 0xdb8, 9, 9, 0, 0, 0, 99]), t0)
                .0
        );
        // An IPv4-mapped address is its IPv4 address.
        for _ in 0..3 {
            g.bad_request(v6("::ffff:192.0.2.200"), t0);
        }
        assert!(g.is_banned(ip(200), t0));
    }

    #[test]
    fn tracking_is_bounded_and_keeps_bans() {
        let t0 = Instant::now();
        let mut g = Guard::new(limits());
        for _ in 0..3 {
            g.bad_request(ip(1), t0);
        }
        for i in 2..50u8 {
            g.allow_packet(ip(i), t0 + Duration::from_millis(u64::from(i)));
            assert!(g.tracked() <= 4);
        }
        assert!(g.is_banned(ip(1), t0 + Duration::from_secs(1)));
    }
}
