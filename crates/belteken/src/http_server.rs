//! The HTTP server's setup: file descriptors kept for calls, and the limits `web::serve` keeps.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::{info, warn};

use crate::config::Settings;

/// Descriptors the rest of the process needs besides calls and HTTP connections: listeners,
/// the store's files and connections, logs, the media threads' epoll.
const RESERVED_FDS: u64 = 256;
/// Descriptors one call can hold: its RTP socket, and a SIP TCP/TLS connection when its trunk
/// uses one.
const FDS_PER_CALL: u64 = 2;
/// HTTP connections never take more than this share of the open-file limit (1/4).
const HTTP_SHARE_DIVISOR: u64 = 4;
/// Fewest HTTP connections the server takes, however low the limit.
const MIN_HTTP_CONNECTIONS: u64 = 16;

/// Raises the soft open-file limit to the hard one (the soft default, often 1024, is far
/// below what 2,000 calls and a busy page need) and returns the limit in force.
pub fn raise_open_file_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                warn!(error = %e, soft, hard, "cannot raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            warn!(error = %e, "cannot read the open-file limit");
            1024
        }
    }
}

/// The HTTP connections the server takes at once: as configured, but at most a quarter of
/// the open-file limit and never so many that `max_calls` calls could not get their sockets.
pub fn http_connection_cap(open_files: u64, max_calls: usize, configured: usize) -> usize {
    let for_calls = (max_calls as u64)
        .saturating_mul(FDS_PER_CALL)
        .saturating_add(RESERVED_FDS);
    let cap = (configured as u64)
        .min(open_files / HTTP_SHARE_DIVISOR)
        .min(open_files.saturating_sub(for_calls))
        .max(MIN_HTTP_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The limits for `web::serve`, after raising the open-file limit.
pub fn limits(settings: &Settings) -> web::HttpLimits {
    let open_files = raise_open_file_limit();
    let max_connections =
        http_connection_cap(open_files, settings.max_calls, settings.web.max_connections);
    if max_connections < settings.web.max_connections {
        info!(
            open_files,
            max_calls = settings.max_calls,
            configured = settings.web.max_connections,
            max_connections,
            "HTTP connections capped to keep file descriptors for calls"
        );
    }
    let needed = (settings.max_calls as u64)
        .saturating_mul(FDS_PER_CALL)
        .saturating_add(RESERVED_FDS)
        .saturating_add(max_connections as u64);
    if needed > open_files {
        warn!(
            open_files,
            needed, "the open-file limit is too low for max_calls calls and the HTTP connections"
        );
    }
    web::HttpLimits {
        header_timeout: settings.web.header_timeout,
        idle_timeout: settings.web.idle_timeout,
        max_connections,
        max_connections_per_address: settings.web.max_connections_per_address,
        trusted_proxies: settings.web.trusted_proxies.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::http_connection_cap;

    #[test]
    fn http_takes_a_share_and_leaves_calls_their_sockets() {
        // A typical hard limit: the configured number stands.
        assert_eq!(http_connection_cap(524_288, 2000, 4096), 4096);
        // 8192 descriptors: a quarter.
        assert_eq!(http_connection_cap(8192, 2000, 4096), 2048);
        // 4096: a quarter would leave 3072, less than 2000 calls need (4256): what is left.
        assert_eq!(http_connection_cap(4096, 1000, 4096), 1024);
        assert_eq!(http_connection_cap(4096, 1900, 4096), 40);
        assert_eq!(http_connection_cap(2048, 1900, 4096), 16);
        // The default soft limit with few calls.
        assert_eq!(http_connection_cap(1024, 100, 4096), 256);
    }
}
