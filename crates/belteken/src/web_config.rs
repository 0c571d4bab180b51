//! `[web]` in the configuration: the HTTP server's limits and the reverse proxies it trusts.

use std::time::Duration;

use serde::Deserialize;

use crate::config_error::ConfigError;

/// `[web]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebSection {
    /// Addresses or blocks ("10.0.0.0/8") of reverse proxies whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client.
    trusted_proxies: Option<Vec<String>>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    header_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_event_streams: Option<usize>,
    max_event_streams_per_address: Option<usize>,
}

/// The validated `[web]`.
#[derive(Debug, Clone)]
pub struct WebSettings {
    pub trusted_proxies: web::TrustedProxies,
    /// HTTP connections at once, as configured (the server may take fewer when the process
    /// has few file descriptors: see `http_connection_cap` in main.rs).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_event_streams: usize,
    pub max_event_streams_per_address: usize,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            trusted_proxies: web::TrustedProxies::default(),
            max_connections: web::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: web::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_timeout: web::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: web::DEFAULT_IDLE_TIMEOUT,
            max_event_streams: web::DEFAULT_MAX_EVENT_STREAMS,
            max_event_streams_per_address: web::DEFAULT_MAX_EVENT_STREAMS_PER_ADDRESS,
        }
    }
}

/// Checks `[web]`; errors name the file, the line and the key.
pub(crate) fn validate(
    raw: WebSection,
    text: &str,
    file: &str,
) -> Result<WebSettings, ConfigError> {
    let err = |key: &str, message: String| ConfigError {
        file: file.into(),
        line: crate::trunks::key_line(text, "[web]", None, key),
        key: format!("web.{key}"),
        message,
    };
    let d = WebSettings::default();
    let mut proxies = Vec::new();
    for p in raw.trusted_proxies.unwrap_or_default() {
        proxies.push(
            p.parse::<web::IpNet>()
                .map_err(|e| err("trusted_proxies", e.to_string()))?,
        );
    }
    let in_range = |key: &str, v: Option<usize>, default: usize, max: usize| match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(err(key, format!("must be between 1 and {max}"))),
    };
    let seconds = |key: &str, v: Option<u64>, default: Duration, max: u64| match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(n)),
        Some(_) => Err(err(key, format!("must be between 1 and {max} seconds"))),
    };
    Ok(WebSettings {
        trusted_proxies: web::TrustedProxies::new(proxies),
        max_connections: in_range(
            "max_connections",
            raw.max_connections,
            d.max_connections,
            1_000_000,
        )?,
        max_connections_per_address: in_range(
            "max_connections_per_address",
            raw.max_connections_per_address,
            d.max_connections_per_address,
            1_000_000,
        )?,
        header_timeout: seconds(
            "header_timeout_seconds",
            raw.header_timeout_seconds,
            d.header_timeout,
            300,
        )?,
        idle_timeout: seconds(
            "idle_timeout_seconds",
            raw.idle_timeout_seconds,
            d.idle_timeout,
            3600,
        )?,
        max_event_streams: in_range(
            "max_event_streams",
            raw.max_event_streams,
            d.max_event_streams,
            1_000_000,
        )?,
        max_event_streams_per_address: in_range(
            "max_event_streams_per_address",
            raw.max_event_streams_per_address,
            d.max_event_streams_per_address,
            1_000_000,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    #[test]
    fn web_keys_are_checked() {
        let s = parse(
            "[web]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nmax_connections = 100\nheader_timeout_seconds = 5\n",
            "c.toml",
            Path::new("."),
        )
        .expect("valid");
        assert!(s
            .web
            .trusted_proxies
            .contains("10.2.3.4".parse().expect("ip")));
        assert!(!s
            .web
            .trusted_proxies
            .contains("192.0.2.1".parse().expect("ip")));
        assert_eq!(s.web.max_connections, 100);
        assert_eq!(s.web.header_timeout.as_secs(), 5);
        let e = parse(
            "[web]\n\ntrusted_proxies = [\"proxy.example.org\"]\n",
            "c.toml",
            Path::new("."),
        )
        .expect_err("a name is no address");
        assert_eq!((e.key.as_str(), e.line), ("web.trusted_proxies", 3), "{e}");
        let e = parse(
            "[web]\nidle_timeout_seconds = 0\n",
            "c.toml",
            Path::new("."),
        )
        .expect_err("zero");
        assert_eq!(e.key, "web.idle_timeout_seconds");
        assert!(parse("[web]\nmax_conections = 5\n", "c.toml", Path::new(".")).is_err());
    }
}
