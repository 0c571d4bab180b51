//! Fetching a provider's recording over HTTP/1.1 (hyper), with basic auth, a size limit,
//! a timeout and retries.
//!
//! Plain `http://` only in this version: `https://` (the providers' real APIs) needs a TLS
//! connector with root certificates, which is not wired yet (see docs/cloud.md).

use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Largest recording fetched, in bytes (the store takes at most this much after conversion).
pub const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;
/// One attempt's time limit.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("unsupported URL (http:// only)")]
    Url,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body larger than the limit or unreadable")]
    Body,
    #[error("timed out")]
    Timeout,
}

/// GETs `url` once with HTTP basic auth `user:password`.
pub async fn get_once(url: &str, auth: Option<(&str, &str)>) -> Result<Vec<u8>, FetchError> {
    let rest = url.strip_prefix("http://").ok_or(FetchError::Url)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(FetchError::Url);
    }
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::get(path).header(hyper::header::HOST, authority);
        if let Some((user, password)) = auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::Url)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let body = Limited::new(resp.into_body(), MAX_FETCH_BYTES)
            .collect()
            .await
            .map_err(|_| FetchError::Body)?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, attempt)
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// GETs `url`, retrying `attempts` times with a growing pause (the recording may not be
/// ready at once). A refused URL is not retried.
pub async fn get(
    url: &str,
    auth: Option<(&str, &str)>,
    attempts: u32,
    first_pause: Duration,
) -> Result<Vec<u8>, FetchError> {
    let mut pause = first_pause;
    let mut last = FetchError::Timeout;
    for i in 0..attempts.max(1) {
        if i > 0 {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
        match get_once(url, auth).await {
            Ok(body) => return Ok(body),
            Err(FetchError::Url) => return Err(FetchError::Url),
            Err(e) => last = e,
        }
    }
    Err(last)
}
