//! `ssefan`: opens many Server-Sent Events streams on a campaign's live count, prints READY
//! when all have their first event, then measures how the next change of the count fans out:
//! the spread from the first stream receiving it to the last.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

#[derive(Parser, Debug)]
struct Args {
    /// The server's HTTP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    #[arg(long, default_value = "demo")]
    slug: String,
    /// Streams to open.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    connect_parallel: usize,
    /// Give up waiting for all streams to open after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    open_timeout: f64,
    /// Give up waiting for the update after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    update_timeout: f64,
    /// Write the JSON result here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

enum Report {
    /// Opened, with the first count seen.
    Open,
    Rejected(u16),
    Failed,
    /// The first count above the initial one arrived at this instant.
    Update(Instant),
}

/// The `signatures` value of the last complete `data:` line in `text`, if any.
fn last_count(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| {
            let at = d.find("\"signatures\":")? + 13;
            d[at..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .next()
}

async fn stream(args: Arc<Args>, gate: Arc<Semaphore>, tx: mpsc::UnboundedSender<Report>) {
    let mut permit = Some(gate.acquire().await);
    let conn = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(args.http)).await;
    let Ok(Ok(mut s)) = conn else {
        let _ = tx.send(Report::Failed);
        return;
    };
    let req = format!(
        "GET /api/campaigns/{}/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        args.slug, args.http
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        let _ = tx.send(Report::Failed);
        return;
    }
    let mut buf = vec![0u8; 2048];
    let mut have = 0usize;
    let mut initial: Option<u64> = None;
    loop {
        if have == buf.len() {
            // Keep the tail only: events are small.
            buf.copy_within(have - 512..have, 0);
            have = 512;
        }
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => {
                if initial.is_none() {
                    let _ = tx.send(Report::Failed);
                }
                return;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        have += n;
        let text = String::from_utf8_lossy(&buf[..have]);
        if initial.is_none() {
            if let Some(status) = text.strip_prefix("HTTP/1.1 ") {
                let code: u16 = status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                if code != 200 {
                    let _ = tx.send(Report::Rejected(code));
                    return;
                }
            }
            // Only complete events (ending in a blank line) count.
            let complete = text.rfind("\n\n").map(|e| &text[..e]).unwrap_or("");
            if let Some(c) = last_count(complete) {
                initial = Some(c);
                permit.take();
                let _ = tx.send(Report::Open);
                let tail = text.len() - complete.len();
                let keep = have.min(tail);
                buf.copy_within(have - keep..have, 0);
                have = keep;
            }
            continue;
        }
        let complete = text.rfind("\n\n").map(|e| &text[..e]).unwrap_or("");
        if let (Some(c), Some(i)) = (last_count(complete), initial) {
            if c > i {
                let _ = tx.send(Report::Update(now));
                return;
            }
        }
        if text.len() > 1024 {
            have = 0;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Arc::new(Args::parse());
    if !args.http.ip().is_loopback() {
        return Err("ssefan only connects to loopback".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(args.connect_parallel));
        let opening = Instant::now();
        for _ in 0..args.streams {
            tokio::spawn(stream(args.clone(), gate.clone(), tx.clone()));
        }
        drop(tx);
        let (mut open, mut failed) = (0usize, 0usize);
        let mut rejected = std::collections::BTreeMap::<u16, usize>::new();
        let mut updates: Vec<Instant> = Vec::new();
        let open_deadline = opening + Duration::from_secs_f64(args.open_timeout);
        let mut ready_at = None;
        let mut update_deadline = None;
        loop {
            if ready_at.is_none() && open + failed + rejected.values().sum::<usize>() >= args.streams {
                ready_at = Some(Instant::now());
                println!("READY open={open} failed={failed} rejected={rejected:?} in {:.2}s", opening.elapsed().as_secs_f64());
                update_deadline = Some(Instant::now() + Duration::from_secs_f64(args.update_timeout));
            }
            if updates.len() >= open && ready_at.is_some() {
                break;
            }
            let deadline = update_deadline.unwrap_or(open_deadline);
            let r = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx.recv()).await;
            match r {
                Ok(Some(Report::Open)) => open += 1,
                Ok(Some(Report::Failed)) => failed += 1,
                Ok(Some(Report::Rejected(c))) => *rejected.entry(c).or_default() += 1,
                Ok(Some(Report::Update(t))) => updates.push(t),
                Ok(None) => break,
                Err(_) => {
                    if ready_at.is_none() {
                        ready_at = Some(Instant::now());
                        println!("READY (open timeout) open={open} failed={failed} rejected={rejected:?}");
                        update_deadline = Some(Instant::now() + Duration::from_secs_f64(args.update_timeout));
                    } else {
                        break;
                    }
                }
            }
        }
        updates.sort();
        let first = updates.first().copied();
        let rel: Vec<f64> = updates
            .iter()
            .map(|t| first.map(|f| t.duration_since(f).as_secs_f64() * 1e3).unwrap_or(0.0))
            .collect();
        let q = |p: f64| -> f64 {
            if rel.is_empty() { return 0.0; }
            rel[((p * rel.len() as f64).ceil() as usize).clamp(1, rel.len()) - 1]
        };
        let result = serde_json::json!({
            "streams_requested": args.streams, "open": open, "failed": failed,
            "rejected": rejected, "updated": updates.len(),
            "open_seconds": ready_at.map(|r| r.duration_since(opening).as_secs_f64()),
            "fanout_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)},
        });
        println!("open={open} updated={} fan-out from first to last stream: p50={:.1} ms p99={:.1} ms max={:.1} ms", updates.len(), q(0.5), q(0.99), q(1.0));
        if let Some(path) = &args.out {
            let _ = std::fs::write(path, serde_json::to_string_pretty(&result).unwrap_or_default());
        }
    });
    Ok(())
}
