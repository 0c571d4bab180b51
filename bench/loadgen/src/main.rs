//! `loadgen`: places SIP calls at a rate and concurrency, plays phone-like RTP, and measures
//! setup time, RTP lateness, loss and signatures; prints a summary and writes a JSON result.

mod http;
mod rtp;
mod sip;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "SIP/RTP load generator for belteken (loopback benchmarks)")]
struct Args {
    /// The server's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// Request-URI user: the campaign slug or DID.
    #[arg(long, default_value = "demo")]
    user: String,
    /// Local address for SIP and RTP (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: std::net::Ipv4Addr,
    /// Calls to place in all.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// New calls per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Calls in progress at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Hang up this many seconds after the answer; without it, wait for the server's BYE.
    #[arg(long)]
    hold: Option<f64>,
    /// Hang up any call after this many seconds, whatever else is set.
    #[arg(long, default_value_t = 120.0)]
    max_call: f64,
    /// Start speaking (a loud tone) this many seconds after the answer (after the beep).
    #[arg(long)]
    speak_at: Option<f64>,
    /// Speak for this long.
    #[arg(long, default_value_t = 1.5)]
    speak_secs: f64,
    /// Press a key: DIGIT@SECONDS after the answer (repeatable), e.g. 1@3.5.
    #[arg(long)]
    dtmf: Vec<String>,
    /// RTP shards (threads, each with one socket).
    #[arg(long, default_value_t = 1)]
    rtp_shards: usize,
    /// A call without a 200 OK this long after its INVITE has failed.
    #[arg(long, default_value_t = 10.0)]
    setup_timeout: f64,
    /// The whole run ends after this many seconds (open calls are hung up).
    #[arg(long, default_value_t = 300.0)]
    duration: f64,
    /// The server's HTTP address, to read the campaign's count before and after.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// First caller number offset (+324NNNNNNNN); defaults to one derived from the clock.
    #[arg(long)]
    caller_base: Option<u64>,
    /// Write the JSON result here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Include one record per call in the JSON.
    #[arg(long)]
    per_call: bool,
    /// A label stored in the JSON.
    #[arg(long, default_value = "")]
    label: String,
}

fn parse_dtmf(s: &str) -> Option<(u8, Duration)> {
    let (d, at) = s.split_once('@')?;
    let event = match d {
        "*" => 10,
        "#" => 11,
        "A" | "a" => 12,
        "B" | "b" => 13,
        "C" | "c" => 14,
        "D" | "d" => 15,
        _ => d.parse::<u8>().ok().filter(|&n| n <= 9)?,
    };
    Some((event, Duration::from_secs_f64(at.parse().ok()?)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.server.ip().is_loopback() || !IpAddr::V4(args.local_ip).is_loopback() {
        return Err("loadgen only sends to and from loopback addresses".into());
    }
    let dtmf = args
        .dtmf
        .iter()
        .map(|s| parse_dtmf(s).ok_or_else(|| format!("bad --dtmf {s}")))
        .collect::<Result<Vec<_>, _>>()?;
    let wall = Instant::now();
    let cpu0 = stats::self_cpu_seconds();
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let run_id = format!("r{:x}", (clock / 1000) as u64 & 0xFFFF_FFFF);
    let caller_base = args
        .caller_base
        .unwrap_or(((clock / 1_000_000) as u64 % 1000) * 100_000);

    let count_before = args.api.and_then(|a| http::signatures(a, &args.user));

    let window = Arc::new(rtp::Window::default());
    let mut shards = Vec::new();
    let mut handles = Vec::new();
    for k in 0..args.rtp_shards.max(1) {
        let shard = rtp::Shard::bind(args.local_ip)?;
        let local = shard.local;
        let (tx, rx) = std::sync::mpsc::channel();
        let w = window.clone();
        let seed = (clock as u32) ^ (k as u32).wrapping_mul(0x9E37_79B9);
        handles.push(
            std::thread::Builder::new()
                .name(format!("rtp{k}"))
                .spawn(move || rtp::run(shard, rx, w, seed))?,
        );
        shards.push((tx, local));
    }
    let plan = sip::Plan {
        server: args.server,
        user: args.user.clone(),
        local_ip: args.local_ip,
        calls: args.calls,
        rate: args.rate,
        concurrency: args.concurrency,
        hold: args.hold.map(Duration::from_secs_f64),
        max_call: Duration::from_secs_f64(args.max_call),
        speak: args.speak_at.map(|at| {
            (
                Duration::from_secs_f64(at),
                Duration::from_secs_f64(args.speak_secs),
            )
        }),
        dtmf,
        setup_timeout: Duration::from_secs_f64(args.setup_timeout),
        deadline: Instant::now() + Duration::from_secs_f64(args.duration),
        caller_base,
        run_id,
        shards,
        window,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sip = rt.block_on(sip::run(&plan))?;
    for (tx, _) in &plan.shards {
        let _ = tx.send(rtp::Cmd::Shutdown);
    }
    let mut lateness = stats::Hist::default();
    let mut steady = stats::Hist::default();
    let mut media: Vec<rtp::CallMedia> = Vec::new();
    let (mut unmatched, mut send_errors, mut cmsg_trunc) = (0, 0, 0);
    for h in handles {
        let r = h.join().map_err(|_| "an RTP shard panicked")?;
        lateness.merge(&r.lateness);
        steady.merge(&r.steady);
        media.extend(r.calls);
        unmatched += r.unmatched;
        send_errors += r.send_errors;
        cmsg_trunc += r.rx_truncated_cmsg;
    }
    media.sort_by_key(|m| m.call);

    // Give the last signatures a moment to land before reading the count.
    let count_after = args.api.and_then(|a| {
        std::thread::sleep(Duration::from_millis(500));
        http::signatures(a, &args.user)
    });
    let cpu1 = stats::self_cpu_seconds();
    let wall_s = wall.elapsed().as_secs_f64();
    let cpu_s = (cpu1.0 - cpu0.0) + (cpu1.1 - cpu0.1);

    let sum = |f: fn(&rtp::CallMedia) -> u64| media.iter().map(f).sum::<u64>();
    let received = sum(|m| m.received);
    let lost = sum(|m| m.lost);
    let calls_with_loss = media.iter().filter(|m| m.lost > 0).count();
    let calls_without_rtp = media.iter().filter(|m| m.received == 0).count();
    let late = lateness.summary();
    let steady_s = steady.summary();
    let setup = sip.setup.summary();
    let result = json!({
        "label": args.label,
        "args": {
            "calls": args.calls, "rate": args.rate, "concurrency": args.concurrency,
            "hold": args.hold, "speak_at": args.speak_at, "speak_secs": args.speak_secs,
            "dtmf": args.dtmf, "rtp_shards": args.rtp_shards, "duration": args.duration,
        },
        "calls": {
            "placed": sip.placed, "answered": sip.answered, "failed": sip.failed,
            "setup_timeouts": sip.setup_timeouts, "fail_codes": sip.fail_codes,
            "ended": sip.ended, "peak_concurrency": sip.peak_concurrency,
            "invite_retransmits": sip.invite_retransmits, "bye_retransmits": sip.bye_retransmits,
            "sip_parse_errors": sip.parse_errors,
            "server_bye_after_speech": sip.server_bye_after_speech,
        },
        "setup": setup,
        "rtp": {
            "sent": sum(|m| m.sent), "received": received, "lost": lost,
            "loss_ratio": if received + lost == 0 { 0.0 } else { lost as f64 / (received + lost) as f64 },
            "seq_errors": sum(|m| m.seq_errors), "ts_errors": sum(|m| m.ts_errors),
            "ssrc_changes": sum(|m| m.ssrc_changes), "stray": sum(|m| m.stray),
            "calls_with_loss": calls_with_loss, "calls_without_rtp": calls_without_rtp,
            "unmatched_packets": unmatched, "send_errors": send_errors,
            "cmsg_truncated": cmsg_trunc,
            "lateness": late, "steady_lateness": steady_s,
        },
        "signed": {
            "count_before": count_before, "count_after": count_after,
            "delta": match (count_before, count_after) { (Some(a), Some(b)) => Some(b as i64 - a as i64), _ => None },
        },
        "loadgen": { "cpu_seconds": cpu_s, "wall_seconds": wall_s, "cpu_percent_of_one_core": 100.0 * cpu_s / wall_s },
        "per_call": if args.per_call {
            json!(media.iter().zip(sip.per_call_setup_ms.iter().zip(&sip.per_call_ended)).map(|(m, (s, e))| json!({
                "media": m, "setup_ms": s, "ended": e,
            })).collect::<Vec<_>>())
        } else { json!(null) },
    });
    println!(
        "calls placed={} answered={} failed={} timeouts={} peak={} | setup ms p50={:.2} p99={:.2} max={:.2} | \
         rtp rx={} lost={} seq_err={} ts_err={} | lateness ms p50={:.2} p99={:.2} max={:.2} | steady p99={:.2} max={:.2} (n={}) | \
         signed delta={:?} | loadgen cpu {:.1}% of a core",
        sip.placed, sip.answered, sip.failed, sip.setup_timeouts, sip.peak_concurrency,
        setup.p50_ms, setup.p99_ms, setup.max_ms,
        received, lost, sum(|m| m.seq_errors), sum(|m| m.ts_errors),
        late.p50_ms, late.p99_ms, late.max_ms, steady_s.p99_ms, steady_s.max_ms, steady_s.count,
        result["signed"]["delta"], 100.0 * cpu_s / wall_s,
    );
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}
