//! Registration to trunks: REGISTER with digest (rsipstack answers MD5 and SHA-256 challenges,
//! qop=auth, and retries a `stale=true` nonce), refresh before expiry, back-off after failures,
//! and an unregister (Expires: 0) on clean shutdown. Each trunk's state is shared for /healthz.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rsipstack::dialog::registration::Registration;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Response, StatusCode};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use tracing::{debug, info, warn};

use crate::digest::{self, Challenge};
use crate::trunk::{RegisterConfig, TrunkTransport};

/// Challenges answered within one REGISTER attempt: a cached nonce refused, a fresh one, and
/// `stale=true` retries.
const MAX_AUTH_ROUNDS: u32 = 4;

/// The first retry after a failure; it doubles per failure up to `RETRY_MAX`.
pub const RETRY_MIN: Duration = Duration::from_secs(2);
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// A REGISTER (with its digest rounds) that gets no final answer in this long has failed. Shorter
/// than Timer F (32 s): over TCP a registrar that went away is otherwise only noticed by the
/// transaction timer, and a registrar this slow is not one to rely on.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(15);
/// The unregister at shutdown waits at most this long.
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);
/// Refresh this long before the binding expires, at the latest at 80 % of its lifetime.
const REFRESH_MARGIN: Duration = Duration::from_secs(10);

/// Where a trunk's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// The first REGISTER is on its way.
    Registering,
    Registered,
    /// The last attempt failed; another follows after a back-off.
    Failed,
    /// Unregistered at shutdown.
    Unregistered,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Registering => "registering",
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::Failed => "failed",
            RegistrationStatus::Unregistered => "unregistered",
        }
    }
}

/// One trunk's registration, as shown on /healthz.
#[derive(Debug, Clone)]
pub struct RegistrationState {
    pub trunk: String,
    pub status: RegistrationStatus,
    /// Why the last attempt failed (never holds a caller's number).
    pub last_error: Option<String>,
    /// When the current binding ends (if registered).
    pub expires_at: Option<SystemTime>,
    /// Successful REGISTERs so far (the first and each refresh).
    pub registrations: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the next attempt is due after a failure.
    pub retry_at: Option<SystemTime>,
}

/// The registration state of every registration trunk, shared.
#[derive(Debug, Clone, Default)]
pub struct Registrations(Arc<Mutex<Vec<RegistrationState>>>);

impl prometheus_client::collector::Collector for Registrations {
    fn encode(&self, mut e: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        let regs = self.snapshot();
        if regs.is_empty() {
            return Ok(());
        }
        crate::metrics::gauge_family(
            &mut e,
            "belteken_trunk_registered",
            "Whether the trunk's registration is in force (1) or not (0).",
            "trunk",
            regs.iter().map(|r| {
                (
                    r.trunk.as_str(),
                    i64::from(r.status == RegistrationStatus::Registered),
                )
            }),
        )?;
        crate::metrics::gauge_family(
            &mut e,
            "belteken_trunk_registration_failures",
            "Failures since the last successful registration.",
            "trunk",
            regs.iter()
                .map(|r| (r.trunk.as_str(), i64::from(r.consecutive_failures))),
        )
    }
}

impl Registrations {
    /// A copy of every trunk's state.
    pub fn snapshot(&self) -> Vec<RegistrationState> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn add(&self, trunk: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(RegistrationState {
                trunk: trunk.to_string(),
                status: RegistrationStatus::Registering,
                last_error: None,
                expires_at: None,
                registrations: 0,
                consecutive_failures: 0,
                retry_at: None,
            });
        }
    }

    fn update(&self, trunk: &str, f: impl FnOnce(&mut RegistrationState)) {
        if let Ok(mut v) = self.0.lock() {
            if let Some(s) = v.iter_mut().find(|s| s.trunk == trunk) {
                f(s);
            }
        }
    }
}

/// The wait before retry number `failures` (1-based): doubling from `RETRY_MIN`, capped,
/// with up to a quarter more at random so that many nodes do not retry in step.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = RETRY_MIN.saturating_mul(1u32 << exp).min(RETRY_MAX);
    base.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 4.0)
}

/// When to refresh a binding granted for `granted`.
pub fn refresh_after(granted: Duration) -> Duration {
    let by_margin = granted.saturating_sub(REFRESH_MARGIN);
    let by_share = granted.mul_f64(0.8);
    by_margin
        .min(by_share)
        .max(granted / 2)
        .max(Duration::from_secs(1))
}

/// What one trunk registers with.
pub(crate) struct RegisterJob {
    pub trunk: String,
    pub transport: TrunkTransport,
    pub config: RegisterConfig,
    /// Our Contact: `sip:user@advertised-host:port;transport=...`.
    pub contact_host: String,
    pub contact_port: u16,
}

/// The nonce we answer with, kept across refreshes so that the nonce count goes up.
struct AuthState {
    challenge: Challenge,
    proxy: bool,
    nc: u32,
    cnonce: String,
}

/// Why an attempt ended without a binding, when the response alone does not say.
enum AuthProblem {
    Unanswerable,
    RealmMismatch(String),
}

type Attempt = Result<Result<Response, AuthProblem>, rsipstack::Error>;

fn challenges(resp: &Response, proxy: bool) -> Vec<String> {
    let name = if proxy {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    resp.headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value().to_string())
        .collect()
}

/// One REGISTER with its digest rounds: the final response, or why a challenge could not be
/// answered. A cached nonce is tried first (with the next nonce count).
async fn register_once(
    reg: &mut Registration,
    server: &rsipstack::sip::Uri,
    expires: u32,
    config: &RegisterConfig,
    aor: &[Header],
    auth: &mut Option<AuthState>,
) -> Attempt {
    let uri = server.to_string();
    let digest_user = config
        .auth_username
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or(&config.username);
    // Whether the credentials just sent used a nonce from the challenge right before.
    let mut fresh_nonce = false;
    let mut stale_rounds = 0;
    for _ in 0..MAX_AUTH_ROUNDS {
        reg.extra_headers = aor.to_vec();
        reg.extra_headers.extend(match auth.as_mut() {
            Some(a) => {
                a.nc = a.nc.saturating_add(1);
                let value = digest::authorization(
                    &a.challenge,
                    a.nc,
                    &a.cnonce,
                    digest_user,
                    &config.password,
                    "REGISTER",
                    &uri,
                );
                let name = if a.proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                };
                Some(Header::Other(name.into(), value))
            }
            None => None,
        });
        let resp = reg.register(server.clone(), Some(expires)).await?;
        let proxy = match resp.status_code {
            StatusCode::Unauthorized => false,
            StatusCode::ProxyAuthenticationRequired => true,
            _ => return Ok(Ok(resp)),
        };
        let offered = challenges(&resp, proxy);
        let Some(challenge) = digest::best_challenge(offered.iter().map(String::as_str)) else {
            *auth = None;
            return Ok(Err(AuthProblem::Unanswerable));
        };
        if let Some(realm) = &config.realm {
            if *realm != challenge.realm {
                *auth = None;
                return Ok(Err(AuthProblem::RealmMismatch(challenge.realm)));
            }
        }
        if fresh_nonce {
            if challenge.stale && stale_rounds < 2 {
                stale_rounds += 1;
                debug!("registrar says the nonce is stale: answering the new one");
            } else {
                // A fresh nonce refused: the credentials are wrong.
                *auth = None;
                return Ok(Ok(resp));
            }
        }
        *auth = Some(AuthState {
            challenge,
            proxy,
            nc: 0,
            cnonce: digest::cnonce(),
        });
        fresh_nonce = true;
    }
    *auth = None;
    Err(rsipstack::Error::Error(
        "the registrar kept challenging".into(),
    ))
}

/// The host of `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn registrar_host(registrar: &str) -> &str {
    if let Some(rest) = registrar.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .map_or(registrar, |h| &registrar[..h.len() + 2]);
    }
    if registrar.matches(':').count() > 1 {
        return registrar;
    }
    registrar.split(':').next().unwrap_or(registrar)
}

fn failure_text(status: &StatusCode) -> String {
    match status {
        StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired => format!(
            "authentication failed ({}): the registrar refused our credentials; check username, password and realm",
            status.code()
        ),
        StatusCode::Forbidden => "forbidden (403): the registrar refuses this account".into(),
        StatusCode::NotFound => "not found (404): the registrar does not know this user".into(),
        other => format!("the registrar answered {}", other.code()),
    }
}

/// The addresses a registration sends: the registrar, our Contact, and our address of record
/// (user@registrar-host) as From and To.
struct Addresses {
    server: rsipstack::sip::Uri,
    contact: rsipstack::sip::Uri,
    aor_headers: Vec<Header>,
}

/// The addresses of `job`; `None` (logged, and a registrar that is no SIP URI shown as the
/// trunk's state) when one cannot be built.
fn addresses(job: &RegisterJob, states: &Registrations) -> Option<Addresses> {
    let trunk = &job.trunk;
    let transport_param = match job.transport {
        TrunkTransport::Udp => String::new(),
        other => format!(";transport={}", other.as_str()),
    };
    let server = format!("sip:{}{transport_param}", job.config.registrar);
    let server = match rsipstack::sip::Uri::try_from(server.as_str()) {
        Ok(u) => u,
        Err(e) => {
            warn!(trunk = %trunk, error = %e, "registrar address is not a SIP URI");
            states.update(trunk, |s| {
                s.status = RegistrationStatus::Failed;
                s.last_error = Some(format!("registrar address is not a SIP URI: {e}"));
            });
            return None;
        }
    };
    let contact = format!(
        "sip:{}@{}:{}{transport_param}",
        job.config.username, job.contact_host, job.contact_port
    );
    let contact = match rsipstack::sip::Uri::try_from(contact.as_str()) {
        Ok(u) => u,
        Err(e) => {
            warn!(trunk = %trunk, error = %e, "cannot build our Contact");
            return None;
        }
    };
    // No rsipstack credential: `register_once` answers challenges itself (see `digest`), and
    // so sets the address of record (user@registrar-host) in From and To itself.
    let domain = registrar_host(&job.config.registrar);
    let aor = match rsipstack::sip::Uri::try_from(
        format!("sip:{}@{domain}", job.config.username).as_str(),
    ) {
        Ok(u) => u,
        Err(e) => {
            warn!(trunk = %trunk, error = %e, "cannot build our address of record");
            return None;
        }
    };
    let aor_headers: Vec<Header> = vec![
        rsipstack::sip::typed::From {
            display_name: None,
            uri: aor.clone(),
            params: vec![],
        }
        .with_tag(rsipstack::transaction::make_tag())
        .into(),
        rsipstack::sip::typed::To {
            display_name: None,
            uri: aor,
            params: vec![],
        }
        .into(),
    ];
    Some(Addresses {
        server,
        contact,
        aor_headers,
    })
}

/// Why a registration attempt got no binding, for the log and the trunk's state.
fn failure_reason(outcome: Result<Attempt, tokio::time::error::Elapsed>) -> String {
    match outcome {
        Ok(Ok(Ok(resp))) => failure_text(&resp.status_code),
        Ok(Ok(Err(AuthProblem::Unanswerable))) => {
            "the registrar's challenge cannot be answered (we do digest MD5 and SHA-256, qop=auth)"
                .into()
        }
        Ok(Ok(Err(AuthProblem::RealmMismatch(r)))) => {
            format!("the registrar's realm {r:?} is not the configured realm")
        }
        Ok(Err(e)) => format!("network error: {e}"),
        Err(_) => format!(
            "no answer from the registrar within {} s",
            REGISTER_TIMEOUT.as_secs()
        ),
    }
}

/// Whether a REGISTER's outcome is a 2xx.
fn succeeded(outcome: &Result<Attempt, tokio::time::error::Elapsed>) -> bool {
    matches!(outcome, Ok(Ok(Ok(resp))) if resp.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful)
}

/// Our side of one trunk's registration: the REGISTER client, what it sends, and the digest
/// state kept between attempts.
struct Registrant {
    reg: Registration,
    addresses: Addresses,
    config: RegisterConfig,
    auth: Option<AuthState>,
}

impl Registrant {
    /// One REGISTER asking for `expires`, within `timeout`.
    async fn register(
        &mut self,
        expires: Duration,
        timeout: Duration,
    ) -> Result<Attempt, tokio::time::error::Elapsed> {
        let asked = u32::try_from(expires.as_secs()).unwrap_or(u32::MAX);
        tokio::time::timeout(
            timeout,
            register_once(
                &mut self.reg,
                &self.addresses.server,
                asked,
                &self.config,
                &self.addresses.aor_headers,
                &mut self.auth,
            ),
        )
        .await
    }
}

/// Registers and keeps the registration fresh until `stop`, then unregisters.
pub(crate) async fn run(
    endpoint: EndpointInnerRef,
    job: RegisterJob,
    states: Registrations,
    stop: CancellationToken,
) {
    let trunk = job.trunk.clone();
    states.add(&trunk);
    let Some(addresses) = addresses(&job, &states) else {
        return;
    };
    let mut reg = Registration::new(endpoint, None);
    reg.outbound_proxy = job.config.proxy;
    reg.contact = Some(rsipstack::sip::typed::Contact {
        display_name: None,
        uri: addresses.contact.clone(),
        params: vec![],
    });
    let mut registrant = Registrant {
        reg,
        addresses,
        config: job.config.clone(),
        auth: None,
    };
    let mut expires = job.config.expires;
    let mut failures: u32 = 0;
    let mut registered = false;
    let mut interval_retry_used = false;

    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => break,
            r = registrant.register(expires, REGISTER_TIMEOUT) => r,
        };
        let wait = match outcome {
            outcome if succeeded(&outcome) => {
                let granted = Duration::from_secs(registrant.reg.expires().into());
                failures = 0;
                interval_retry_used = false;
                if !registered {
                    info!(trunk = %trunk, expires_s = granted.as_secs(), "registered");
                } else {
                    info!(trunk = %trunk, expires_s = granted.as_secs(), "registration refreshed");
                }
                registered = true;
                states.update(&trunk, |s| {
                    s.status = RegistrationStatus::Registered;
                    s.last_error = None;
                    s.expires_at = Some(SystemTime::now() + granted);
                    s.registrations += 1;
                    s.consecutive_failures = 0;
                    s.retry_at = None;
                });
                refresh_after(granted)
            }
            Ok(Ok(Ok(resp)))
                if resp.status_code == StatusCode::IntervalTooBrief && !interval_retry_used =>
            {
                // 423: ask again at once with the registrar's minimum.
                interval_retry_used = true;
                let min = resp
                    .header_value("Min-Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(3600);
                info!(trunk = %trunk, min_expires_s = min, "registrar wants a longer interval");
                expires = Duration::from_secs(min.min(86_400));
                continue;
            }
            other => {
                let reason = failure_reason(other);
                failures = failures.saturating_add(1);
                registered = false;
                let wait = backoff(failures, rand::random::<f64>());
                warn!(trunk = %trunk, attempt = failures, retry_in_s = wait.as_secs_f32(), reason = %reason, "registration failed");
                states.update(&trunk, |s| {
                    s.status = RegistrationStatus::Failed;
                    s.last_error = Some(reason);
                    s.expires_at = None;
                    s.consecutive_failures = failures;
                    s.retry_at = Some(SystemTime::now() + wait);
                });
                wait
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }

    if registered {
        if succeeded(
            &registrant
                .register(Duration::ZERO, UNREGISTER_TIMEOUT)
                .await,
        ) {
            info!(trunk = %trunk, "unregistered");
        } else {
            warn!(trunk = %trunk, "unregister got no 2xx; the binding will expire on its own");
        }
    }
    states.update(&trunk, |s| {
        s.status = RegistrationStatus::Unregistered;
        s.expires_at = None;
        s.retry_at = None;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_hosts() {
        assert_eq!(registrar_host("sip.example.net:5060"), "sip.example.net");
        assert_eq!(registrar_host("sip.example.net"), "sip.example.net");
        assert_eq!(registrar_host("[2001:db8::1]:5060"), "[2001:db8::1]");
        assert_eq!(registrar_host("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(3, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 0.0), RETRY_MAX);
        assert_eq!(backoff(1, 1.0), Duration::from_millis(2500));
        // Jitter never makes a later retry come sooner than an earlier one.
        assert!(backoff(2, 0.0) > backoff(1, 1.0));
    }

    #[test]
    fn refresh_comes_before_expiry() {
        for (expires, refresh) in [(3600, 2880), (30, 20), (10, 5), (0, 1)] {
            assert_eq!(
                refresh_after(Duration::from_secs(expires)),
                Duration::from_secs(refresh),
                "{expires} s"
            );
        }
    }
}
