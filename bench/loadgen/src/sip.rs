//! The SIP user agent: hand-written INVITE/ACK/BYE over one UDP socket, calls told apart by
//! Call-ID, retransmissions on RFC 3261 timer A/E (500 ms doubling).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::rtp::{Cmd, StartCall, Window};
use crate::stats::Hist;

const T1: Duration = Duration::from_millis(500);
/// A BYE unanswered this long is given up.
const BYE_TIMEOUT: Duration = Duration::from_secs(4);

/// What the SIP side needs to know.
pub struct Plan {
    pub server: SocketAddr,
    pub user: String,
    pub local_ip: Ipv4Addr,
    pub calls: usize,
    pub rate: f64,
    pub concurrency: usize,
    pub hold: Option<Duration>,
    pub max_call: Duration,
    pub speak: Option<(Duration, Duration)>,
    pub dtmf: Vec<(u8, Duration)>,
    pub setup_timeout: Duration,
    pub deadline: Instant,
    pub caller_base: u64,
    pub run_id: String,
    /// RTP shards: their command channel and the local RTP address to offer.
    pub shards: Vec<(Sender<Cmd>, SocketAddrV4)>,
    pub window: Arc<Window>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Inviting,
    Early,
    Answered,
    Byeing,
    Done,
}

struct CallSip {
    state: State,
    invite_at: Option<Instant>,
    answered_at: Option<Instant>,
    retx: u32,
    to_tag: String,
    contact: String,
    ended_by: Ended,
    fail_code: u16,
    ended_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Still going (serialised as "not_ended").
    #[serde(rename = "not_ended")]
    Running,
    ServerBye,
    OurBye,
    Failed,
    SetupTimeout,
    RunDeadline,
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    InviteRetx,
    SetupTimeout,
    Hangup,
    ByeRetx,
}

/// The SIP side's figures.
#[derive(Debug, Default)]
pub struct SipResult {
    pub placed: u64,
    pub answered: u64,
    pub failed: u64,
    pub setup_timeouts: u64,
    pub fail_codes: BTreeMap<u16, u64>,
    pub ended: BTreeMap<String, u64>,
    pub setup: Hist,
    pub invite_retransmits: u64,
    pub bye_retransmits: u64,
    pub peak_concurrency: u64,
    pub parse_errors: u64,
    /// Calls the server hung up after the caller had spoken (heard the thanks, then BYE).
    pub server_bye_after_speech: u64,
    pub per_call_setup_ms: Vec<Option<f64>>,
    pub per_call_ended: Vec<Ended>,
    pub per_call_seconds: Vec<f64>,
    pub first_answer: Option<Instant>,
    pub last_answer: Option<Instant>,
    pub last_launch: Option<Instant>,
}

struct Msg<'a> {
    /// Response status, or 0 for a request.
    status: u16,
    method: &'a str,
    call_id: &'a str,
    cseq_method: &'a str,
    to: &'a str,
    contact: &'a str,
    body: &'a str,
    head: &'a str,
}

fn header<'a>(head: &'a str, long: &str, short: &str) -> &'a str {
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short) {
                return value.trim();
            }
        }
    }
    ""
}

fn parse(data: &[u8]) -> Option<Msg<'_>> {
    let text = std::str::from_utf8(data).ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let first = head.split("\r\n").next()?;
    let (status, method) = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        (rest.get(..3)?.parse().ok()?, "")
    } else {
        (0, first.split(' ').next()?)
    };
    let cseq = header(head, "CSeq", "CSeq");
    Some(Msg {
        status,
        method,
        call_id: header(head, "Call-ID", "i"),
        cseq_method: cseq.split_ascii_whitespace().nth(1).unwrap_or(""),
        to: header(head, "To", "t"),
        contact: header(head, "Contact", "m"),
        body,
        head,
    })
}

fn tag_of(value: &str) -> &str {
    value
        .split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("tag="))
        .unwrap_or("")
}

fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    }
}

/// The server's RTP address from its SDP answer.
fn sdp_remote(body: &str) -> Option<SocketAddrV4> {
    let mut ip = None;
    let mut port = None;
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c.split('/').next().and_then(|s| s.trim().parse().ok());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split(' ').next().and_then(|s| s.parse().ok());
        }
    }
    Some(SocketAddrV4::new(ip?, port?))
}

struct Ua<'p> {
    plan: &'p Plan,
    sock: UdpSocket,
    local: SocketAddr,
    calls: Vec<CallSip>,
    timers: BinaryHeap<Reverse<(Instant, u32, u8)>>,
    out: String,
    res: SipResult,
    active: u64,
}

impl Ua<'_> {
    fn call_id(&self, i: u32) -> String {
        format!("{}-{}@loadgen", self.plan.run_id, i)
    }
    fn from(&self, i: u32) -> String {
        let number = (self.plan.caller_base + u64::from(i)) % 100_000_000;
        format!(
            "<sip:+324{number:08}@{}>;tag={}f{i}",
            self.plan.local_ip, self.plan.run_id
        )
    }
    fn shard(&self, i: u32) -> &(Sender<Cmd>, SocketAddrV4) {
        &self.plan.shards[i as usize % self.plan.shards.len()]
    }
    fn arm(&mut self, at: Instant, i: u32, t: Timer) {
        self.timers.push(Reverse((at, i, t as u8)));
    }
    async fn send(&mut self) {
        // A full socket buffer is not expected at these rates; a lost datagram is retransmitted.
        let _ = self
            .sock
            .send_to(self.out.as_bytes(), self.plan.server)
            .await;
    }

    fn build_invite(&mut self, i: u32) {
        let p = self.plan;
        let rtp = self.shard(i).1;
        let mut sdp = String::with_capacity(256);
        let _ = write!(
            sdp,
            "v=0\r\no=- {i} 1 IN IP4 {ip}\r\ns=loadgen\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        );
        let (call_id, from) = (self.call_id(i), self.from(i));
        let n = self.calls[i as usize].retx;
        self.out.clear();
        let _ = write!(
            self.out,
            "INVITE sip:{user}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{run}i{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: <sip:{user}@{server}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:loadgen@{local}>\r\n\
             Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO\r\n\
             User-Agent: belteken-loadgen\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            user = p.user,
            server = p.server,
            local = self.local,
            run = p.run_id,
            len = sdp.len(),
        );
        let _ = n;
    }

    fn build_ack(&mut self, i: u32, branch: &str) {
        let c = &self.calls[i as usize];
        let target = if c.contact.is_empty() {
            format!("sip:{}@{}", self.plan.user, self.plan.server)
        } else {
            c.contact.clone()
        };
        let (call_id, from, to_tag) = (self.call_id(i), self.from(i), c.to_tag.clone());
        self.out.clear();
        let _ = write!(
            self.out,
            "ACK {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: <sip:{user}@{server}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
            local = self.local,
            user = self.plan.user,
            server = self.plan.server,
        );
    }

    fn build_bye(&mut self, i: u32) {
        let c = &self.calls[i as usize];
        let target = if c.contact.is_empty() {
            format!("sip:{}@{}", self.plan.user, self.plan.server)
        } else {
            c.contact.clone()
        };
        let (call_id, from, to_tag) = (self.call_id(i), self.from(i), c.to_tag.clone());
        self.out.clear();
        let _ = write!(
            self.out,
            "BYE {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{run}b{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: <sip:{user}@{server}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            local = self.local,
            run = self.plan.run_id,
            user = self.plan.user,
            server = self.plan.server,
        );
    }

    /// A 200 OK to a request from the server, echoing its Via, From, To, Call-ID and CSeq.
    fn build_ok(&mut self, head: &str) {
        self.out.clear();
        self.out.push_str("SIP/2.0 200 OK\r\n");
        for line in head.split("\r\n").skip(1) {
            let name = line.split(':').next().unwrap_or("").trim();
            if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                self.out.push_str(line);
                self.out.push_str("\r\n");
            }
        }
        self.out.push_str("Content-Length: 0\r\n\r\n");
    }

    fn finish(&mut self, i: u32, how: Ended, now: Instant) {
        let c = &mut self.calls[i as usize];
        if c.state == State::Done {
            return;
        }
        let was_media = matches!(c.state, State::Answered | State::Byeing);
        c.state = State::Done;
        c.ended_by = how;
        c.ended_at = Some(now);
        let answered_at = c.answered_at;
        self.active -= 1;
        if was_media {
            let _ = self.shard(i).0.send(Cmd::Stop { call: i });
        }
        if how == Ended::ServerBye {
            if let (Some((at, dur)), Some(ans)) = (self.plan.speak, answered_at) {
                if now.duration_since(ans) > at + dur {
                    self.res.server_bye_after_speech += 1;
                }
            }
        }
    }

    async fn launch(&mut self, i: u32, now: Instant) {
        let c = &mut self.calls[i as usize];
        c.state = State::Inviting;
        c.invite_at = Some(now);
        self.active += 1;
        self.res.placed += 1;
        self.res.peak_concurrency = self.res.peak_concurrency.max(self.active);
        self.res.last_launch = Some(now);
        self.build_invite(i);
        self.send().await;
        self.arm(now + T1, i, Timer::InviteRetx);
        self.arm(now + self.plan.setup_timeout, i, Timer::SetupTimeout);
    }

    async fn hang_up(&mut self, i: u32, now: Instant) {
        let c = &mut self.calls[i as usize];
        if c.state != State::Answered {
            return;
        }
        c.state = State::Byeing;
        c.retx = 0;
        c.ended_at = Some(now);
        let _ = self.shard(i).0.send(Cmd::Stop { call: i });
        self.build_bye(i);
        self.send().await;
        self.arm(now + T1, i, Timer::ByeRetx);
    }

    async fn on_timer(&mut self, i: u32, kind: u8, now: Instant) {
        let state = self.calls[i as usize].state;
        match kind {
            k if k == Timer::InviteRetx as u8 && state == State::Inviting => {
                let c = &mut self.calls[i as usize];
                c.retx += 1;
                let next = T1 * 2u32.pow(c.retx.min(3));
                self.res.invite_retransmits += 1;
                self.build_invite(i);
                self.send().await;
                self.arm(now + next, i, Timer::InviteRetx);
            }
            k if k == Timer::SetupTimeout as u8
                && matches!(state, State::Inviting | State::Early) =>
            {
                self.res.setup_timeouts += 1;
                // A CANCEL would be polite; the server's own timers end its side.
                self.finish(i, Ended::SetupTimeout, now);
            }
            k if k == Timer::Hangup as u8 && state == State::Answered => {
                self.hang_up(i, now).await;
            }
            k if k == Timer::ByeRetx as u8 && state == State::Byeing => {
                let c = &mut self.calls[i as usize];
                let ended = c.ended_at.unwrap_or(now);
                if now.duration_since(ended) > BYE_TIMEOUT {
                    // Unanswered BYE: the media already stopped when it went out.
                    c.state = State::Done;
                    c.ended_by = Ended::OurBye;
                    self.active -= 1;
                    return;
                }
                c.retx += 1;
                let next = T1 * 2u32.pow(c.retx.min(3));
                self.res.bye_retransmits += 1;
                self.build_bye(i);
                self.send().await;
                self.arm(now + next, i, Timer::ByeRetx);
            }
            _ => {}
        }
    }

    async fn on_datagram(&mut self, data: &[u8], now: Instant) {
        let Some(msg) = parse(data) else {
            self.res.parse_errors += 1;
            return;
        };
        let idx = msg
            .call_id
            .strip_prefix(self.plan.run_id.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split('@').next())
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&n| (n as usize) < self.calls.len());
        let Some(i) = idx else {
            self.res.parse_errors += 1;
            return;
        };
        let head = msg.head.to_string();
        if msg.status == 0 {
            // A request from the server: BYE (or OPTIONS/INFO in the dialog): 200.
            if msg.method != "ACK" {
                self.build_ok(&head);
                self.send().await;
            }
            if msg.method == "BYE" {
                let state = self.calls[i as usize].state;
                if matches!(state, State::Answered | State::Byeing) {
                    self.finish(i, Ended::ServerBye, now);
                } else if state != State::Done {
                    self.finish(i, Ended::Failed, now);
                }
            }
            return;
        }
        let state = self.calls[i as usize].state;
        match (msg.cseq_method, msg.status) {
            ("INVITE", 100..=199) if state == State::Inviting => {
                self.calls[i as usize].state = State::Early;
            }
            // A further provisional (180 after 100): nothing changes.
            ("INVITE", 100..=199) => {}
            ("INVITE", 200..=299) => {
                let tag = tag_of(msg.to).to_string();
                let contact = uri_of(msg.contact).to_string();
                let remote = sdp_remote(msg.body);
                {
                    let c = &mut self.calls[i as usize];
                    if c.to_tag.is_empty() {
                        c.to_tag = tag;
                        c.contact = contact;
                    }
                }
                self.build_ack(i, &format!("z9hG4bK{}a{i}", self.plan.run_id));
                self.send().await;
                if !matches!(state, State::Inviting | State::Early) {
                    return; // a retransmitted 200: ACKed again
                }
                let c = &mut self.calls[i as usize];
                let setup = now.duration_since(c.invite_at.unwrap_or(now));
                c.state = State::Answered;
                c.answered_at = Some(now);
                self.res.answered += 1;
                self.res.setup.record(setup.as_nanos() as u64);
                self.res.first_answer.get_or_insert(now);
                self.res.last_answer = Some(now);
                match remote {
                    Some(remote) => {
                        let start = StartCall {
                            call: i,
                            remote,
                            answered: now,
                            speak: self.plan.speak,
                            dtmf: self.plan.dtmf.clone(),
                            dtmf_pt: 101,
                        };
                        let _ = self.shard(i).0.send(Cmd::Start(Box::new(start)));
                    }
                    None => self.res.parse_errors += 1,
                }
                let hold = self
                    .plan
                    .hold
                    .unwrap_or(self.plan.max_call)
                    .min(self.plan.max_call);
                self.arm(now + hold, i, Timer::Hangup);
            }
            ("INVITE", code) => {
                // Non-2xx final: ACK on the INVITE's branch, then the call has failed.
                self.calls[i as usize].to_tag = tag_of(msg.to).to_string();
                self.build_ack(i, &format!("z9hG4bK{}i{i}", self.plan.run_id));
                self.out = self.out.replacen(
                    &format!("ACK {}", self.calls[i as usize].contact),
                    &format!("ACK sip:{}@{}", self.plan.user, self.plan.server),
                    1,
                );
                self.send().await;
                if matches!(state, State::Inviting | State::Early) {
                    *self.res.fail_codes.entry(code).or_default() += 1;
                    self.res.failed += 1;
                    self.calls[i as usize].fail_code = code;
                    self.finish(i, Ended::Failed, now);
                }
            }
            ("BYE", _) if state == State::Byeing => {
                // The media stopped when the BYE went out.
                self.calls[i as usize].state = State::Done;
                self.calls[i as usize].ended_by = Ended::OurBye;
                self.active -= 1;
            }
            _ => {}
        }
    }
}

/// Places the calls; returns when every call has ended or the deadline passed.
pub async fn run(plan: &Plan) -> std::io::Result<SipResult> {
    let sock = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&SocketAddr::from((plan.local_ip, 0)).into())?;
        s.set_nonblocking(true)?;
        UdpSocket::from_std(s.into())?
    };
    let local = sock.local_addr()?;
    let calls = (0..plan.calls)
        .map(|_| CallSip {
            state: State::Pending,
            invite_at: None,
            answered_at: None,
            retx: 0,
            to_tag: String::new(),
            contact: String::new(),
            ended_by: Ended::Running,
            fail_code: 0,
            ended_at: None,
        })
        .collect();
    let mut ua = Ua {
        plan,
        sock,
        local,
        calls,
        timers: BinaryHeap::new(),
        out: String::with_capacity(1500),
        res: SipResult::default(),
        active: 0,
    };
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(0.001));
    let mut next_launch = Instant::now();
    let mut launched = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut steady_set = false;
    let mut deadline_hit = false;

    loop {
        let now = Instant::now();
        // Launch the calls due, within the concurrency limit.
        while launched < plan.calls
            && next_launch <= now
            && (plan.concurrency == 0 || (ua.active as usize) < plan.concurrency)
            && !deadline_hit
        {
            ua.launch(launched as u32, now).await;
            launched += 1;
            next_launch += interval;
            if next_launch + Duration::from_secs(1) < now {
                next_launch = now; // held back by the concurrency limit: no burst after
            }
        }
        // Steady state: from 1 s after the last answer until the first hang-up timer.
        if !steady_set
            && launched == plan.calls
            && ua.res.answered as usize + ua.res.failed as usize + ua.res.setup_timeouts as usize
                >= plan.calls
        {
            if let Some(last) = ua.res.last_answer {
                let offset = Instant::now().saturating_duration_since(last);
                let rt = realtime_ns() - offset.as_nanos() as i64 + 1_000_000_000;
                plan.window.start_ns.store(rt, Ordering::Relaxed);
                steady_set = true;
            }
        }
        // Timers due.
        while let Some(Reverse((at, i, kind))) = ua.timers.peek().copied() {
            if at > now {
                break;
            }
            ua.timers.pop();
            if kind == Timer::Hangup as u8 && plan.window.end_ns.load(Ordering::Relaxed) == 0 {
                plan.window.end_ns.store(realtime_ns(), Ordering::Relaxed);
            }
            ua.on_timer(i, kind, now).await;
        }
        if launched == plan.calls && ua.active == 0 {
            break;
        }
        if now >= plan.deadline {
            if !deadline_hit {
                deadline_hit = true;
                if plan.window.end_ns.load(Ordering::Relaxed) == 0 {
                    plan.window.end_ns.store(realtime_ns(), Ordering::Relaxed);
                }
                for i in 0..ua.calls.len() as u32 {
                    match ua.calls[i as usize].state {
                        State::Answered => ua.hang_up(i, now).await,
                        State::Inviting | State::Early => ua.finish(i, Ended::RunDeadline, now),
                        _ => {}
                    }
                }
            }
            if now >= plan.deadline + BYE_TIMEOUT + Duration::from_secs(1) {
                break;
            }
            if ua.active == 0 {
                break;
            }
        }
        let mut wake = now + Duration::from_millis(50);
        if launched < plan.calls && !deadline_hit {
            wake = wake.min(next_launch);
        }
        if let Some(Reverse((at, _, _))) = ua.timers.peek() {
            wake = wake.min(*at);
        }
        tokio::select! {
            r = ua.sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    let now = Instant::now();
                    ua.on_datagram(&buf[..n], now).await;
                    // Drain what else is queued without waiting.
                    while let Ok((n, _)) = ua.sock.try_recv_from(&mut buf) {
                        let now = Instant::now();
                        ua.on_datagram(&buf[..n], now).await;
                    }
                }
            }
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
    let end = Instant::now();
    for c in &ua.calls {
        if c.state == State::Pending {
            continue;
        }
        *ua.res.ended.entry(format!("{:?}", c.ended_by)).or_default() += 1;
        ua.res
            .per_call_setup_ms
            .push(match (c.invite_at, c.answered_at) {
                (Some(a), Some(b)) => Some(b.duration_since(a).as_secs_f64() * 1e3),
                _ => None,
            });
        ua.res.per_call_ended.push(c.ended_by);
        ua.res.per_call_seconds.push(
            c.answered_at
                .map(|a| c.ended_at.unwrap_or(end).duration_since(a).as_secs_f64())
                .unwrap_or(0.0),
        );
        let _ = c.fail_code;
    }
    Ok(ua.res)
}

fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let m = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\
                  To: <sip:demo@127.0.0.1>;tag=abc\r\nCall-ID: r1-7@loadgen\r\nCSeq: 1 INVITE\r\n\
                  Contact: <sip:belteken@127.0.0.1:5060>\r\nContent-Length: 40\r\n\r\n\
                  v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let msg = parse(m).expect("parses");
        assert_eq!(msg.status, 200);
        assert_eq!(msg.call_id, "r1-7@loadgen");
        assert_eq!(msg.cseq_method, "INVITE");
        assert_eq!(tag_of(msg.to), "abc");
        assert_eq!(uri_of(msg.contact), "sip:belteken@127.0.0.1:5060");
        assert_eq!(
            sdp_remote(msg.body),
            Some("127.0.0.1:4000".parse().expect("addr"))
        );
    }
}
