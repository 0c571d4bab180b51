//! Sessions, CSRF, roles and the login rate limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};

use super::layout::{self, page_bare};
use super::{Access, Console};
use crate::client::{request_client, AddressKey};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "belteken_console";
/// The cookie that ties the login form to the browser that loaded it (before any session).
pub(crate) const LOGIN_COOKIE: &str = "belteken_login";
/// Largest form body the guard reads to find the CSRF token.
pub(crate) const MAX_FORM_BYTES: usize = 256 * 1024;

/// Who is making a console request.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    pub user: String,
    pub role: store::Role,
    /// The session's CSRF token; empty for API token requests (they carry no cookie).
    pub csrf: String,
    /// The session token's hash (for logout); None with an API token.
    pub session: Option<String>,
}

impl Auth {
    pub fn is_admin(&self) -> bool {
        self.role == store::Role::Admin
    }
}

/// The value of a cookie in the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether cookies must be `Secure`: the request came over HTTPS (a TLS proxy in front says
/// so in `X-Forwarded-Proto`, a browser in `Origin`).
fn secure(headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("https://"));
    forwarded || origin
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the request's Origin (or else Referer), when sent, is this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // Under the pages' `Referrer-Policy: no-referrer` browsers send `Origin: null` on form
    // posts: that says nothing either way, so the CSRF token alone decides.
    let source = headers
        .get(header::ORIGIN)
        .filter(|v| v.as_bytes() != b"null")
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match source {
        None => true,
        Some(s) => {
            let rest = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"));
            // A reverse proxy that rewrites Host passes the browser's in X-Forwarded-Host.
            let forwarded = headers
                .get("x-forwarded-host")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim());
            match rest.and_then(|r| r.split('/').next()) {
                Some(origin) => origin == host || forwarded == Some(origin),
                None => false,
            }
        }
    }
}

/// A refusal: a redirect to the login page for a page, a status for everything else.
fn refuse(method: &Method, path: &str, status: StatusCode, message: &str) -> Response {
    if *method == Method::GET
        && !path.starts_with("/console/api/")
        && status == StatusCode::UNAUTHORIZED
    {
        return Redirect::to("/console/login").into_response();
    }
    if path.starts_with("/console/api/") {
        return layout::json_error(status, message);
    }
    (
        status,
        layout::page_bare("Refused", html! { p { (message) } }),
    )
        .into_response()
}

/// The guard in front of every non-public console route.
pub(crate) async fn guard(
    State((console, access)): State<(Console, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let Some(store) = console.app.store.clone() else {
        return refuse(
            &method,
            &path,
            StatusCode::SERVICE_UNAVAILABLE,
            "the console needs the store",
        );
    };
    let headers = request.headers().clone();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| store::token_hash(t.trim()));
    let session_hash = cookie(&headers, super::auth::SESSION_COOKIE).map(store::token_hash);
    let limits = console.limits;
    let api = path.starts_with("/console/api/");
    let found = tokio::task::spawn_blocking(move || -> Result<Option<Auth>, store::StoreError> {
        if let (true, Some(hash)) = (api, bearer) {
            return Ok(store
                .api_token_user(&hash, SystemTime::now())?
                .map(|u| Auth {
                    user: u.name,
                    role: u.role,
                    csrf: String::new(),
                    session: None,
                }));
        }
        let Some(hash) = session_hash else {
            return Ok(None);
        };
        Ok(store
            .console_session(&hash, SystemTime::now(), limits)?
            .map(|s| Auth {
                user: s.user,
                role: s.role,
                csrf: s.csrf,
                session: Some(hash),
            }))
    })
    .await;
    let auth = match found {
        Ok(Ok(Some(auth))) => auth,
        Ok(Ok(None)) => {
            return refuse(&method, &path, StatusCode::UNAUTHORIZED, "sign in first");
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console session lookup failed");
            return refuse(
                &method,
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is not reachable",
            );
        }
        Err(_) => {
            return refuse(
                &method,
                &path,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            );
        }
    };
    if access == Access::Admin && !auth.is_admin() {
        return refuse(&method, &path, StatusCode::FORBIDDEN, "this needs an admin");
    }
    let mut request = request;
    if method != Method::GET && method != Method::HEAD && auth.session.is_some() {
        if !same_origin(&headers) {
            return refuse(
                &method,
                &path,
                StatusCode::FORBIDDEN,
                "the form came from another site",
            );
        }
        let (checked, rebuilt) = match csrf_of(request).await {
            Ok(v) => v,
            Err(response) => return response,
        };
        if !checked.is_some_and(|t| same_token(&t, &auth.csrf)) {
            return refuse(
                &method,
                &path,
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale: reload the page and try again",
            );
        }
        request = rebuilt;
    }
    request.extensions_mut().insert(auth);
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The CSRF token the request carries, and the request to pass on (its body read and put
/// back when it was a form).
async fn csrf_of(request: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(t) = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        let t = t.to_string();
        return Ok((Some(t), request));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let from_query = request.uri().query().and_then(|q| {
            form_urlencoded_pairs(q)
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        });
        return Ok((from_query, request));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok((None, request));
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response());
        }
    };
    let token = std::str::from_utf8(&bytes).ok().and_then(|text| {
        form_urlencoded_pairs(text)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v)
    });
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// Decodes `a=b&c=d` (with `+` and percent escapes).
pub(crate) fn form_urlencoded_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%' {
            // Two hex digits exactly (from_str_radix alone would also take a sign: "%+f").
            let decoded = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(d) = decoded {
                out.push(d);
                i += 3;
                continue;
            }
            out.push(b'%');
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sign-in guesses per client address (an IPv6 client: its /64) within [`LIMIT_WINDOW`]. A
/// guess is counted before its password is checked, so that parallel guesses cannot all slip
/// through; a guess that signs in is given back.
const MAX_GUESSES_PER_ADDRESS: u32 = 20;
/// Guesses at one account name within [`LIMIT_WINDOW`] before that account is slowed down.
const FREE_GUESSES_PER_ACCOUNT: u32 = 10;
/// Past its free guesses, an account takes one guess per this long, from any number of
/// addresses; a browser that signed in to it before is not slowed (see docs/console.md).
const ACCOUNT_GUESS_SPACING: Duration = Duration::from_secs(10);
const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses and account names remembered at most (each map); the oldest go first.
const MAX_TRACKED: usize = 10_000;
/// Browsers remembered per account (their device cookie's hash); the oldest go first.
const MAX_DEVICES_PER_ACCOUNT: usize = 16;
/// The cookie a browser gets when it signs in, by which the account's slowdown knows it.
pub(crate) const DEVICE_COOKIE: &str = "belteken_device";
/// How long the device cookie lasts, in seconds (90 days).
const DEVICE_COOKIE_SECONDS: u64 = 90 * 24 * 3600;

/// Sign-in guesses per client address and per account name, in memory and bounded.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    inner: Mutex<Limits>,
}

/// Guesses counted since `start`.
#[derive(Clone, Copy)]
struct Window {
    count: u32,
    start: Instant,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            count: 0,
            start: now,
        }
    }

    /// The count in the window that holds `now` (a window past its end starts over).
    fn current(&mut self, now: Instant) -> u32 {
        if now.saturating_duration_since(self.start) >= LIMIT_WINDOW {
            *self = Window::new(now);
        }
        self.count
    }

    fn remaining(&self, now: Instant) -> Duration {
        LIMIT_WINDOW.saturating_sub(now.saturating_duration_since(self.start))
    }
}

struct Account {
    guesses: Window,
    /// When this account takes its next guess from an unknown browser, once over its free ones.
    next: Instant,
    /// Hashes of the device cookies of browsers that signed in to this account.
    devices: Vec<String>,
}

#[derive(Default)]
struct Limits {
    by_address: HashMap<AddressKey, Window>,
    by_user: HashMap<String, Account>,
}

/// Why a guess was not taken, and how long until one would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Address(Duration),
    Account(Duration),
}

/// A guess that was counted; handed back on success.
#[derive(Debug)]
pub(crate) struct Guess {
    key: Option<AddressKey>,
}

/// Makes room for one more key: drops entries whose window has ended, then the oldest.
fn make_room<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    start: impl Fn(&V) -> Instant,
    now: Instant,
) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, v| now.saturating_duration_since(start(v)) < LIMIT_WINDOW);
    if map.len() >= MAX_TRACKED {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| start(v))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one guess from `address` at `user`, or says why not: checking and counting are
    /// one step under one lock, so however many guesses arrive at once, no more than the
    /// limits allow are ever checked. `device` is the hash of the browser's device cookie.
    pub fn guess(
        &self,
        address: Option<AddressKey>,
        user: &str,
        device: Option<&str>,
        now: Instant,
    ) -> Result<Guess, Refused> {
        let mut l = self.lock();
        if let Some(key) = address {
            if let Some(w) = l.by_address.get_mut(&key) {
                if w.current(now) >= MAX_GUESSES_PER_ADDRESS {
                    return Err(Refused::Address(w.remaining(now)));
                }
            }
        }
        // Only well-formed names (at most 64 bytes) are remembered, so the map stays small.
        let user = store::validate_user_name(user)
            .is_ok()
            .then(|| user.to_string());
        if let Some(name) = &user {
            let known = |a: &Account| device.is_some_and(|d| a.devices.iter().any(|k| k == d));
            match l.by_user.get_mut(name) {
                Some(a) if known(a) => {}
                Some(a) => {
                    if a.guesses.current(now) >= FREE_GUESSES_PER_ACCOUNT {
                        if now < a.next {
                            return Err(Refused::Account(a.next.saturating_duration_since(now)));
                        }
                        a.next = now + ACCOUNT_GUESS_SPACING;
                    }
                    a.guesses.count = a.guesses.count.saturating_add(1);
                }
                None => {
                    make_room(&mut l.by_user, |a| a.guesses.start, now);
                    let mut guesses = Window::new(now);
                    guesses.count = 1;
                    l.by_user.insert(
                        name.clone(),
                        Account {
                            guesses,
                            next: now,
                            devices: Vec::new(),
                        },
                    );
                }
            }
        }
        if let Some(key) = address {
            if !l.by_address.contains_key(&key) {
                make_room(&mut l.by_address, |w| w.start, now);
            }
            let w = l.by_address.entry(key).or_insert(Window::new(now));
            w.current(now);
            w.count = w.count.saturating_add(1);
        }
        Ok(Guess { key: address })
    }

    /// The guess signed in: its address gets it back, the account's count starts over and
    /// the browser (by its new device cookie's hash) is remembered for the account.
    pub fn succeeded(&self, guess: Guess, user: &str, device: String) {
        let now = Instant::now();
        let mut l = self.lock();
        if let Some(w) = guess.key.and_then(|k| l.by_address.get_mut(&k)) {
            w.count = w.count.saturating_sub(1);
        }
        if !l.by_user.contains_key(user) {
            make_room(&mut l.by_user, |a| a.guesses.start, now);
        }
        let account = l.by_user.entry(user.to_string()).or_insert(Account {
            guesses: Window::new(now),
            next: now,
            devices: Vec::new(),
        });
        account.guesses = Window::new(now);
        account.next = now;
        if !account.devices.contains(&device) {
            if account.devices.len() >= MAX_DEVICES_PER_ACCOUNT {
                account.devices.remove(0);
            }
            account.devices.push(device);
        }
    }
}

fn login_form(token: &str, message: Option<&str>) -> Markup {
    html! {
        h1 { "Campaign console" }
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
        form method="post" action="/console/login" class="login" {
            input type="hidden" name="csrf" value=(token);
            label for="user" { "User name" }
            input id="user" name="user" autocomplete="username" required maxlength="64" autofocus;
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password"
                required maxlength="1024";
            button type="submit" { "Sign in" }
        }
        p class="note" { "Accounts are made with " code { "belteken admin create" } "." }
    }
}

/// The login page; sets the cookie its form's token must match.
pub(crate) async fn login_page(headers: HeaderMap) -> Response {
    let token = store::new_token();
    let mut response = page_bare("Sign in", login_form(&token, None)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, Some(3600), secure(&headers)),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

fn login_again(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let token = store::new_token();
    let mut response = (
        status,
        page_bare("Sign in", login_form(&token, Some(message))),
    )
        .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, Some(3600), secure(headers)),
    );
    response
}

pub(crate) async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let ip = request_client(request.extensions(), &headers, &console.app.trusted_proxies);
    let form = match Form::<LoginForm>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return login_again(
                &headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form was too large.",
            );
        }
        Err(_) => {
            return login_again(
                &headers,
                StatusCode::BAD_REQUEST,
                "The form was incomplete.",
            );
        }
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, &form.csrf) || !same_origin(&headers) {
        return login_again(
            &headers,
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Please try again.",
        );
    }
    let Some(store) = console.app.store.clone() else {
        return login_again(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "The console needs the store.",
        );
    };
    let user = form.user.trim().to_string();
    let device = cookie(&headers, DEVICE_COOKIE).map(store::token_hash);
    // Counted before the password is checked: see [`LoginLimiter::guess`].
    let guess = match console.limiter.guess(
        ip.map(AddressKey::of),
        &user,
        device.as_deref(),
        Instant::now(),
    ) {
        Ok(guess) => guess,
        Err(refused) => {
            let (wait, message) = match refused {
                Refused::Address(wait) => (
                    wait,
                    format!(
                        "Too many sign-in attempts from your address. Try again in {} minute(s).",
                        wait.as_secs().div_ceil(60).max(1)
                    ),
                ),
                Refused::Account(wait) => (
                    wait,
                    format!(
                        "Too many sign-in attempts for this account. Try again in {} second(s).",
                        wait.as_secs().max(1)
                    ),
                ),
            };
            let mut response = login_again(&headers, StatusCode::TOO_MANY_REQUESTS, &message);
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    };
    // Each check costs 19 MiB and tens of milliseconds: a few at a time; the rest wait their
    // turn briefly or are told to try again.
    let permit = match tokio::time::timeout(
        Duration::from_secs(5),
        console.verifying.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            return login_again(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many sign-ins at once. Try again in a moment.",
            )
        }
    };
    let password = form.password;
    let signed_in_user = user.clone();
    let address = ip
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown address".into());
    let outcome = tokio::task::spawn_blocking(
        move || -> Result<Option<(String, String)>, store::StoreError> {
            let found = if store::validate_user_name(&user).is_ok() {
                store.console_user(&user)?
            } else {
                None
            };
            let ok = match &found {
                Some((_, hash)) => store::verify_password(&password, hash),
                None => {
                    store::verify_password_dummy(&password);
                    false
                }
            };
            drop(permit);
            // The name typed is logged only when it is a well-formed user name (so a password
            // typed into the wrong field stays out of the log as far as possible).
            let shown = if store::validate_user_name(&user).is_ok() {
                user.as_str()
            } else {
                "(malformed name)"
            };
            if !ok {
                store.record_audit(
                    None,
                    "console login failed",
                    &format!("{shown} from {address}"),
                )?;
                return Ok(None);
            }
            let token = store::new_token();
            let csrf = store::new_token();
            store.create_console_session(
                &store::token_hash(&token),
                &user,
                &csrf,
                SystemTime::now(),
            )?;
            store.record_audit(None, "console login", &format!("{user} from {address}"))?;
            Ok(Some((token, csrf)))
        },
    )
    .await;
    match outcome {
        Ok(Ok(Some((token, _)))) => {
            let device = store::new_token();
            console
                .limiter
                .succeeded(guess, &signed_in_user, store::token_hash(&device));
            let mut response = Redirect::to("/console").into_response();
            let secure = secure(&headers);
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(DEVICE_COOKIE, &device, Some(DEVICE_COOKIE_SECONDS), secure),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &token, None, secure),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", Some(0), secure),
            );
            response
        }
        Ok(Ok(None)) => login_again(
            &headers,
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console login failed on the store");
            login_again(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                "The store is not reachable; try again.",
            )
        }
        Err(_) => login_again(
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error.",
        ),
    }
}

pub(crate) async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Extension(auth): axum::Extension<Auth>,
) -> Response {
    if let (Some(store), Some(hash)) = (console.app.store.clone(), auth.session.clone()) {
        let user = auth.user.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.end_console_session(&hash)?;
            store.record_audit(None, "console logout", &user)
        })
        .await;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(0), secure(&headers)),
    );
    response
}
