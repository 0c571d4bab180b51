//! The HTTP server loop: serves the router on a listener the binary bound, over HTTP/1.1, with
//! limits on what a slow or greedy client can hold: time to send a request's headers, time a
//! connection may sit with nothing moving, connections at once overall and per client address.
//!
//! Every connection holds a file descriptor, and the process shares its descriptors with the
//! SIP channel's RTP sockets: without these limits, clients that open connections and never
//! finish a request would leave new calls without a socket (and so a 503).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::client::{AddressKey, TrustedProxies};

/// Default for [`HttpLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`HttpLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`HttpLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default for [`HttpLimits::max_connections_per_address`].
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// Largest request body, in bytes, on every route but those that take files (the console's
/// audio upload keeps its own limit): the largest form the console reads.
pub const MAX_BODY_BYTES: usize = crate::console::auth::MAX_FORM_BYTES;

/// How long the accept loop pauses when the process is out of file descriptors, so that it
/// does not spin while connections close.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits [`serve`] keeps.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time a client has to send a request's line and headers, counted from the connection's
    /// start or from the end of the previous response: so it is also how long a kept-alive
    /// connection may wait between requests. Past it the connection is closed.
    pub header_timeout: Duration,
    /// A connection on which nothing is read or written for this long, while no request is
    /// being handled, is closed (a stalled body upload, a client that stopped reading).
    pub idle_timeout: Duration,
    /// Connections at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Connections at once from one client address (an IPv6 client: its /64) that have not yet
    /// sent a whole request head; one more is answered 429 and closed. A connection whose first
    /// request has arrived counts only toward `max_connections`: a provider sends many webhooks
    /// at once from a few addresses, while a client that opens connections and sends nothing
    /// (or a head byte by byte) is what this cap stops. Trusted proxies are held only to
    /// `max_connections`.
    pub max_connections_per_address: usize,
    /// Peers exempt from the per-address cap (every client behind them shares their address).
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Connections open now, overall and per address.
struct Gate {
    limits: HttpLimits,
    total: AtomicUsize,
    by_address: Mutex<HashMap<AddressKey, usize>>,
}

/// Why a connection was turned away.
enum Full {
    Server,
    Address,
}

/// A connection's place at the gate, given back when dropped.
struct Slot {
    gate: Arc<Gate>,
    key: Option<AddressKey>,
    /// Still counted for its address: no whole request head has arrived yet.
    waiting: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let key = (!self.limits.trusted_proxies.contains(peer)).then(|| AddressKey::of(peer));
        let mut by_address = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.total.load(Ordering::Relaxed) >= self.limits.max_connections {
            return Err(Full::Server);
        }
        if let Some(key) = key {
            let n = by_address.entry(key).or_insert(0);
            if *n >= self.limits.max_connections_per_address {
                return Err(Full::Address);
            }
            *n += 1;
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            gate: self.clone(),
            key,
            waiting: std::sync::atomic::AtomicBool::new(true),
        })
    }
}

impl Slot {
    /// The connection's first request head has arrived: its address's count gives it back.
    fn head_received(&self) {
        if self.waiting.swap(false, Ordering::Relaxed) {
            self.release_address();
        }
    }

    fn release_address(&self) {
        let Some(key) = self.key else {
            return;
        };
        let mut by_address = self
            .gate
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = by_address.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_address.remove(&key);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if *self.waiting.get_mut() {
            self.release_address();
        }
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, asks every
/// open connection to finish its request in progress and returns when they all have closed.
/// Each request carries the peer's `ConnectInfo<SocketAddr>` (the console's login limit and the
/// per-address SSE cap read it).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let gate = Arc::new(Gate {
        limits: limits.clone(),
        total: AtomicUsize::new(0),
        by_address: Mutex::new(HashMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the connections already open go on; try again soon.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let slot = match gate.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                refuse(stream, full);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            builder.clone(),
            limits.idle_timeout,
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: this returns once the last one has ended.
    stop_tx.closed().await;
}

/// Answers a connection turned away at the gate, as far as the socket takes it without
/// waiting, and closes it.
fn refuse(stream: TcpStream, full: Full) {
    let response: &[u8] = match full {
        Full::Server => {
            tracing::warn!("HTTP connection limit reached; answering 503");
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n\
              Content-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n\r\n\
              too many connections now\n"
        }
        Full::Address => {
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nConnection: close\r\n\
              Content-Type: text/plain; charset=utf-8\r\nContent-Length: 38\r\n\r\n\
              too many connections from one address\n"
        }
    };
    let _ = stream.try_write(response);
}

/// One connection, from its first byte to its close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    slot: Slot,
) {
    let slot = Arc::new(slot);
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let busy = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        slot.head_received();
        let limit = body_limit(request.uri().path());
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let too_large = declared.is_some_and(|n| n > limit as u64);
        // A body sent without a length is cut at the limit as it is read: the handler's
        // extractor then answers 413.
        let mut request = request.map(|b| Body::new(Limited::new(b, limit)));
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let busy = busy.clone();
        async move {
            if too_large {
                return Ok(payload_too_large(limit));
            }
            // A request being handled is not idleness, however long the handler takes.
            let _handling = busy.handling();
            app.oneshot(request).await
        }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            () = activity.idle_for(idle_timeout) => {
                tracing::debug!(%peer, "HTTP connection idle; closing it");
                return;
            }
            changed = stop.wait_for(|s| *s), if !stopping => {
                let _ = changed;
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The largest body a request to `path` may send, in bytes.
fn body_limit(path: &str) -> usize {
    crate::console::larger_bodies()
        .iter()
        .find(|(pattern, _)| path_matches(pattern, path))
        .map_or(MAX_BODY_BYTES, |(_, limit)| *limit)
}

/// Whether `path` matches a route pattern like `/console/campaign/{slug}/clip/{clip}/{lang}`
/// (a `{name}` segment matches any one non-empty segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w == g || (w.starts_with('{') && !g.is_empty()) => {}
            _ => return false,
        }
    }
}

/// 413 for a body whose declared length is over the limit, before any of it is read; the
/// connection closes, so the unread body does not matter.
fn payload_too_large(limit: usize) -> axum::response::Response {
    let mut response = (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body too large: at most {limit} bytes\n"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// When a connection last moved a byte, and how many requests it is handling now.
#[derive(Clone)]
struct Activity(Arc<ActivityInner>);

struct ActivityInner {
    start: Instant,
    /// Milliseconds from `start` to the last read or write.
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

/// Marks a request in progress; touches the activity when it ends.
struct Handling(Activity);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0 .0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(ActivityInner {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }))
    }

    fn touch(&self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Relaxed);
    }

    fn handling(&self) -> Handling {
        self.0.handling.fetch_add(1, Ordering::Relaxed);
        Handling(self.clone())
    }

    /// Completes once nothing has moved for `limit` while no request was being handled.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.0.start + Duration::from_millis(self.0.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline && self.0.handling.load(Ordering::Relaxed) == 0 {
                return;
            }
            let next = deadline.max(Instant::now() + limit.min(Duration::from_secs(1)));
            tokio::time::sleep_until(next).await;
        }
    }
}

/// The socket, noting every read and write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_routes_take_larger_bodies() {
        assert!(path_matches(
            "/console/campaign/{slug}/clip/{clip}/{lang}",
            "/console/campaign/demo/clip/story/en"
        ));
        assert!(!path_matches(
            "/console/campaign/{slug}/clip/{clip}/{lang}",
            "/console/campaign/demo/clip/story"
        ));
        assert!(!path_matches(
            "/console/campaign/{slug}/clip/{clip}/{lang}",
            "/console/campaign//clip/story/en"
        ));
        assert!(body_limit("/console/campaign/demo/clip/story/en") > MAX_BODY_BYTES);
        assert_eq!(body_limit("/console/login"), MAX_BODY_BYTES);
        assert_eq!(body_limit("/console/campaign/demo"), MAX_BODY_BYTES);
    }
}
