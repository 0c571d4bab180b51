//! `GET /api/campaigns/{slug}/events`: the live count as Server-Sent Events.
//!
//! Each stream holds a `watch` receiver from the hub: the first event carries the current
//! count at once, then one event per change. A `watch` keeps only the latest value, so a burst
//! of signatures reaches a slow client as one event with the newest count, and no queue grows.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use store::Counts;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::client::{request_client, AddressKey};
use crate::AppState;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// How long a client turned away at the stream limit is asked to wait.
const RETRY_AFTER_SECONDS: &str = "30";

/// How long a client at its own stream limit is asked to wait.
const RETRY_AFTER_SECONDS_PER_ADDRESS: &str = "60";

/// Open streams per client address, bounded by a per-address limit.
#[derive(Clone)]
pub(crate) struct PerAddress {
    max: usize,
    open: Arc<Mutex<HashMap<AddressKey, usize>>>,
}

/// One stream's place in its address's count, given back when the stream ends.
pub(crate) struct AddressPermit {
    key: AddressKey,
    open: Arc<Mutex<HashMap<AddressKey, usize>>>,
}

impl PerAddress {
    pub(crate) fn new(max: usize) -> Self {
        PerAddress {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more stream from `key`, or None when it has `max` open already.
    pub(crate) fn acquire(&self, key: AddressKey) -> Option<AddressPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressPermit {
            key,
            open: self.open.clone(),
        })
    }
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    if state.web.campaign(&slug).is_none() {
        return crate::openapi::error(StatusCode::NOT_FOUND, "unknown campaign");
    }
    // Requests that come without a peer (in-process tests) are not counted per address.
    let client = request_client(&extensions, &headers, &state.trusted_proxies);
    let address_permit = match client {
        None => None,
        Some(ip) => match state.streams_by_address.acquire(AddressKey::of(ip)) {
            Some(p) => Some(p),
            None => {
                let mut response = crate::openapi::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many live streams from your address",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS_PER_ADDRESS),
                );
                return response;
            }
        },
    };
    let Ok(permit) = state.event_streams.clone().try_acquire_owned() else {
        tracing::warn!("event stream limit reached; answering 503");
        let mut response =
            crate::openapi::error(StatusCode::SERVICE_UNAVAILABLE, "too many live viewers");
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        return response;
    };
    let counts = state.web.hub.subscribe(&slug);
    let mut response = Sse::new(count_events(
        counts,
        state.shutdown,
        (permit, address_permit),
    ))
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
    .into_response();
    // Tells nginx-style proxies not to buffer the stream; Sse already sets no-cache.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The `count` event for one value.
pub(crate) fn count_event(counts: Counts) -> Event {
    Event::default().event("count").data(count_data(counts))
}

/// `{"signatures":N,"unverified":M}`, the data of a `count` event.
pub(crate) fn count_data(counts: Counts) -> String {
    serde_json::json!({
        "signatures": counts.signatures,
        "unverified": counts.unverified,
    })
    .to_string()
}

struct StreamState {
    counts: watch::Receiver<Counts>,
    /// The value sent last; `None` before the first event.
    sent: Option<Counts>,
    shutdown: Option<watch::Receiver<bool>>,
    /// Held for the stream's life: dropping the stream gives the slots back.
    _permit: (OwnedSemaphorePermit, Option<AddressPermit>),
}

fn count_events(
    counts: watch::Receiver<Counts>,
    shutdown: Option<watch::Receiver<bool>>,
    permit: (OwnedSemaphorePermit, Option<AddressPermit>),
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let state = StreamState {
        counts,
        sent: None,
        shutdown,
        _permit: permit,
    };
    stream::unfold(state, next_event)
}

async fn next_event(mut state: StreamState) -> Option<(Result<Event, Infallible>, StreamState)> {
    loop {
        if state.sent.is_some() {
            let changed = match &mut state.shutdown {
                Some(shutdown) => tokio::select! {
                    changed = state.counts.changed() => changed.is_ok(),
                    // Err (sender gone) counts as shutdown too.
                    _ = shutdown.wait_for(|stop| *stop) => false,
                },
                None => state.counts.changed().await.is_ok(),
            };
            if !changed {
                // The hub's sender is gone or the server is shutting down: end the stream.
                return None;
            }
        }
        let current = *state.counts.borrow_and_update();
        if state.sent == Some(current) {
            // Published again with the same value: nothing new to tell the page.
            continue;
        }
        state.sent = Some(current);
        return Some((Ok(count_event(current)), state));
    }
}
