//! The console through the router: access for every route in the table, login, CSRF, roles,
//! escaping, review, bulk invalidation, API tokens and uploads, on a real SQLite store.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use tower::ServiceExt;

use super::{table, Access};
use crate::{
    router_with, AdminError, Campaign, CampaignAdmin, CampaignEdit, ClipInfo, Options, Translation,
    WebState,
};

const PASSWORD: &str = "a long enough password";
const EVIL: &str = "<script>alert('x')</script> & \"q\"";

struct Temp(PathBuf);

impl Temp {
    fn new() -> Temp {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("belteken-console-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        Temp(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Campaign editing as the tests see it: keeps the last edit and upload.
#[derive(Default)]
struct FakeAdmin {
    edit: Mutex<CampaignEdit>,
    uploads: Mutex<Vec<(String, String, usize, String)>>,
}

impl CampaignAdmin for FakeAdmin {
    fn edit_form(&self, slug: &str) -> Option<CampaignEdit> {
        (slug == "demo").then(|| self.edit.lock().expect("lock").clone())
    }
    fn apply_edit(&self, slug: &str, edit: &CampaignEdit, _actor: &str) -> Result<(), AdminError> {
        if slug != "demo" {
            return Err(AdminError::UnknownCampaign(slug.into()));
        }
        match edit.goal {
            Some(7) => return Err(AdminError::Refused("seven is not a goal".into())),
            Some(13) => return Err(AdminError::Failed("the store is read-only".into())),
            _ => {}
        }
        *self.edit.lock().expect("lock") = edit.clone();
        Ok(())
    }
    fn clips(&self, _slug: &str) -> Vec<ClipInfo> {
        vec![ClipInfo {
            name: "story".into(),
            language: "nl".into(),
            duration_ms: 4200,
            flow_version: format!("v{}", self.uploads.lock().expect("lock").len() + 1),
            uploaded: false,
        }]
    }
    fn upload_clip(
        &self,
        _slug: &str,
        clip: &str,
        language: &str,
        data: &[u8],
        actor: &str,
    ) -> Result<ClipInfo, AdminError> {
        self.uploads.lock().expect("lock").push((
            clip.into(),
            language.into(),
            data.len(),
            actor.into(),
        ));
        Ok(ClipInfo {
            name: clip.into(),
            language: language.into(),
            duration_ms: 1000,
            flow_version: "v2".into(),
            uploaded: true,
        })
    }
    fn clip_wav(&self, _slug: &str, clip: &str, _language: &str) -> Option<Vec<u8>> {
        (clip == "story").then(|| b"RIFF....WAVE".to_vec())
    }
}

struct FakeStatus;

impl crate::Status for FakeStatus {
    fn health(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("calls_in_progress".into(), 2.into());
        m.insert(
            "calls_by_step".into(),
            serde_json::json!([{ "campaign": "demo", "step": "story", "calls": 2 }]),
        );
        m.insert(
            "trunks".into(),
            serde_json::json!([{ "trunk": "<trunk>", "registration": "registered" }]),
        );
        m
    }
}

struct Fixture {
    _dir: Temp,
    store: Arc<dyn store::Store>,
    admin: Arc<FakeAdmin>,
    app: Router,
}

fn fixture() -> Fixture {
    let dir = Temp::new();
    let store: Arc<dyn store::Store> =
        Arc::new(store::SqliteStore::open(&dir.0.join("b.db")).expect("open"));
    store.ensure_campaign("demo", "Demo").expect("campaign");
    let secret = store::Secret::from_bytes([7; 32]);
    for n in ["+32470000001", "+32470000002", "+33612345678"] {
        store
            .sign(store::NewSignature {
                campaign: "demo".into(),
                caller: store::identify_caller(Some(n), "BE", &secret),
                recording_wav: b"RIFF\0\0\0\0WAVEdata".to_vec(),
                speech_ms: 900,
                channel: "sip",
                trust: None,
                flow_version: Some("v1".into()),
                contact: None,
            })
            .expect("sign");
    }
    let hash = store::hash_password(PASSWORD).expect("hash");
    store
        .add_console_user("ada", store::Role::Admin, &hash)
        .expect("admin");
    store
        .add_console_user("rey", store::Role::Reviewer, &hash)
        .expect("reviewer");
    let admin = Arc::new(FakeAdmin::default());
    *admin.edit.lock().expect("lock") = CampaignEdit {
        texts: vec![Translation {
            language: "nl".into(),
            title: EVIL.into(),
            transcript: EVIL.into(),
        }],
        number: Some(EVIL.into()),
        goal: Some(10),
        opens: None,
        closes: None,
    };
    let view = Campaign {
        slug: "demo".into(),
        title: EVIL.into(),
        number: None,
        sip_uri: "sip:demo@127.0.0.1".into(),
        transcript: String::new(),
        language: "en".into(),
        goal: None,
        translations: Vec::new(),
        ..Campaign::new("demo")
    };
    let status = Arc::new(FakeStatus) as Arc<dyn crate::Status>;
    let app = router_with(
        WebState {
            campaigns: vec![view].into(),
            hub: store::CountHub::default(),
        },
        Options {
            store: Some(store.clone()),
            admin: Some(admin.clone() as Arc<dyn CampaignAdmin>),
            secret: Some(secret),
            status: Some(status),
            ..Options::default()
        },
    );
    Fixture {
        _dir: dir,
        store,
        admin,
        app,
    }
}

async fn send(app: &Router, req: Request<Body>) -> Response {
    app.clone().oneshot(req).await.expect("infallible")
}

async fn text(r: Response) -> String {
    let b = to_bytes(r.into_body(), 4 << 20).await.expect("body");
    String::from_utf8_lossy(&b).into_owned()
}

/// A request with the given headers (name, value).
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(body).expect("req")
}

/// `GET path` with the given headers.
async fn get(f: &Fixture, path: &str, headers: &[(&str, &str)]) -> Response {
    send(&f.app, request("GET", path, headers, Body::empty())).await
}

/// `GET path` with a session cookie.
async fn get_as(f: &Fixture, path: &str, cookie: &str) -> Response {
    get(f, path, &[("cookie", cookie)]).await
}

/// The page at `path` for a session: it must answer 200.
async fn page_as(f: &Fixture, path: &str, cookie: &str) -> String {
    let r = get_as(f, path, cookie).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    text(r).await
}

/// A form post, with the given headers besides its content type.
fn form_post_with(path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request("POST", path, &all, Body::from(body.to_string()))
}

/// Posts a form with a session cookie.
async fn post_as(f: &Fixture, path: &str, cookie: &str, body: &str) -> Response {
    send(&f.app, form_post(path, Some(cookie), body)).await
}

fn form_post(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    match cookie {
        Some(c) => form_post_with(path, &[("cookie", c)], body),
        None => form_post_with(path, &[], body),
    }
}

fn header_of<'a>(r: &'a Response, name: &header::HeaderName) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap_or("")
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// The value of `name="csrf" value="..."` in a page.
fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("page has a CSRF field")
        + 19;
    html[at..].split('"').next().expect("value").to_string()
}

/// The login page's cookie (its `Set-Cookie` and its value) and form token; `headers` go
/// with the request.
async fn login_form(f: &Fixture, headers: &[(&str, &str)]) -> (String, String, String) {
    let page = get(f, "/console/login", headers).await;
    let set = set_cookie(&page, "belteken_login").expect("login cookie");
    let cookie = cookie_value(&set);
    let token = csrf_in(&text(page).await);
    (set, cookie, token)
}

/// Posts the login form as `user` with the right password.
async fn sign_in(
    f: &Fixture,
    login_cookie: &str,
    token: &str,
    user: &str,
    headers: &[(&str, &str)],
) -> Response {
    let cookie = format!("belteken_login={login_cookie}");
    let mut all = vec![("cookie", cookie.as_str())];
    all.extend_from_slice(headers);
    let body = format!(
        "csrf={token}&user={user}&password={}",
        PASSWORD.replace(' ', "+")
    );
    send(&f.app, form_post_with("/console/login", &all, &body)).await
}

/// A session cookie as the login sets it: HttpOnly, SameSite=Strict, for /console only.
fn assert_session_cookie(set: &str) {
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/console"),
        "{set}"
    );
}

/// A signed-in session: (cookie header, csrf token).
async fn login(f: &Fixture, user: &str) -> (String, String) {
    let (_, login_cookie, token) = login_form(f, &[]).await;
    let r = sign_in(f, &login_cookie, &token, user, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
    let set = set_cookie(&r, "belteken_console").expect("session cookie");
    assert_session_cookie(&set);
    let cookie = format!("belteken_console={}", cookie_value(&set));
    let csrf = csrf_in(&page_as(f, "/console", &cookie).await);
    (cookie, csrf)
}

/// An API token of ada's, valid for a day.
fn api_token(f: &Fixture) -> String {
    let token = store::new_token();
    f.store
        .create_api_token(
            &store::token_hash(&token),
            "ada",
            "t",
            SystemTime::now(),
            SystemTime::now() + std::time::Duration::from_secs(86_400),
        )
        .expect("token");
    token
}

/// A concrete request path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{slug}", "demo")
        .replace("{id}", "1")
        .replace("{action}", "1")
        .replace("{clip}", "story")
        .replace("{lang}", "nl")
}

fn states(store: &dyn store::Store) -> Vec<store::SignatureState> {
    store
        .signature_rows("demo")
        .expect("rows")
        .iter()
        .map(|r| r.state)
        .collect()
}

/// The state of the signature with the given id (1, 2 or 3).
fn state_of(f: &Fixture, id: usize) -> store::SignatureState {
    states(f.store.as_ref())[id - 1]
}

#[tokio::test]
async fn every_route_without_a_session_is_refused() {
    let f = fixture();
    let before = states(f.store.as_ref());
    let mut checked = 0;
    for route in table() {
        if route.access == Access::Public {
            assert!(
                route.path.starts_with("/static/") || route.path == "/console/login",
                "{} must not be public",
                route.path
            );
            continue;
        }
        let path = concrete(route.path);
        for cookie in [
            None,
            Some("belteken_console=0000"),
            Some("belteken_console="),
        ] {
            let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
            headers.extend(cookie.map(|c| ("cookie", c)));
            let body = Body::from("state=invalid&reason=x&country=BE");
            let r = send(&f.app, request(route.method, &path, &headers, body)).await;
            let s = r.status();
            if route.method == "GET" && !path.starts_with("/console/api/") {
                assert_eq!(s, StatusCode::SEE_OTHER, "{} {path}", route.method);
                assert_eq!(header_of(&r, &header::LOCATION), Some("/console/login"));
            } else {
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{} {path}", route.method);
            }
            let body = text(r).await;
            assert!(
                !body.contains("RIFF") && !body.contains("signature"),
                "{path} leaked: {body}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "the table lists the console's routes");
    assert_eq!(states(f.store.as_ref()), before, "nothing changed");
    // An API token does not open the pages (only /console/api/).
    let bearer = format!("Bearer {}", api_token(&f));
    let r = get(&f, "/console", &[("authorization", &bearer)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_logout_and_wrong_passwords() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    let r = get_as(&f, "/console", &cookie).await;
    let csp = header_of(&r, &header::CONTENT_SECURITY_POLICY)
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("form-action 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(header_of(&r, &header::CACHE_CONTROL), Some("no-store"));
    // Logout needs the CSRF token, then ends the session for good.
    let r = post_as(&f, "/console/logout", &cookie, "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_as(&f, "/console/logout", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = get_as(&f, "/console", &cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // A login form without its cookie is refused.
    let r = send(
        &f.app,
        form_post(
            "/console/login",
            None,
            &format!("csrf=x&user=ada&password={}", PASSWORD.replace(' ', "+")),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "belteken_console").is_none());

    // Wrong passwords: refused, then slowed per user name (even with the right one): ten
    // free guesses and the first slowed one are checked, the next within 10 s is not.
    let (_, lc, token) = login_form(&f, &[]).await;
    let attempt = |pw: &str| {
        form_post(
            "/console/login",
            Some(&format!("belteken_login={lc}")),
            &format!("csrf={token}&user=rey&password={pw}"),
        )
    };
    for _ in 0..11 {
        let r = send(&f.app, attempt("wrong+password+here")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(text(r).await.contains("Wrong user name or password"));
    }
    let r = send(&f.app, attempt(&PASSWORD.replace(' ', "+"))).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert!(text(r)
        .await
        .contains("Too many sign-in attempts for this account"));
    assert!(set_cookie(&send(&f.app, attempt("x")).await, "belteken_console").is_none());
    let log = f.store.audit_log(None).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.action == "console login" && e.detail.starts_with("ada")));
    assert!(log
        .iter()
        .any(|e| e.action == "console login failed" && e.detail.starts_with("rey")));
    assert!(
        log.iter()
            .all(|e| !e.detail.contains("wrong") && !e.detail.contains("enough")),
        "no password in the audit log"
    );
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    let before = states(f.store.as_ref());
    let with_token = format!("state=invalid&csrf={csrf}");
    let refused: [(&[(&str, &str)], &str); 5] = [
        (&[], "state=invalid"),
        (&[], "state=invalid&csrf="),
        (&[], &format!("state=invalid&csrf={}", store::new_token())),
        // Another site's form, even with the token, is refused by its Origin.
        (
            &[
                ("host", "console.example"),
                ("origin", "https://evil.example"),
            ],
            &with_token,
        ),
        // `Origin: null` (what browsers send under no-referrer) leaves it to the token.
        (&[("origin", "null")], "state=invalid"),
    ];
    for (headers, body) in refused {
        let mut all = vec![("cookie", cookie.as_str())];
        all.extend_from_slice(headers);
        let r = send(&f.app, form_post_with("/console/review/demo/1", &all, body)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?} {body}");
    }
    // A multipart upload without the token in its URL.
    let r = send(&f.app, upload_request(&cookie, None)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(f.admin.uploads.lock().expect("lock").is_empty());
    assert_eq!(states(f.store.as_ref()), before, "nothing changed");
    // With the token, the same judgement goes through.
    let r = post_as(&f, "/console/review/demo/1", &cookie, &with_token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state_of(&f, 1), store::SignatureState::Invalid);
    let log = f.store.audit_log(Some("demo")).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.action == "review" && e.detail.contains("reviewed by ada")));
}

fn upload_request(cookie: &str, csrf: Option<&str>) -> Request<Body> {
    let boundary = "XyZbound";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"s.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\nRIFFfakeaudio\r\n--{boundary}--\r\n"
    );
    let uri = match csrf {
        Some(t) => format!("/console/campaign/demo/clip/story/nl?csrf={t}"),
        None => "/console/campaign/demo/clip/story/nl".into(),
    };
    let content_type = format!("multipart/form-data; boundary={boundary}");
    request(
        "POST",
        &uri,
        &[("content-type", &content_type), ("cookie", cookie)],
        Body::from(body),
    )
}

#[tokio::test]
async fn a_reviewer_cannot_reach_admin_actions() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "rey").await;
    let before = states(f.store.as_ref());
    let mut admin_routes = 0;
    for route in table().into_iter().filter(|r| r.access == Access::Admin) {
        let path = concrete(route.path);
        let req = request(
            route.method,
            &path,
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Body::from(format!("csrf={csrf}&target=invalid&reason=x&country=BE&number=%2B32470000001&campaign=demo")),
        );
        let r = send(&f.app, req).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{} {path}", route.method);
        admin_routes += 1;
    }
    assert!(admin_routes >= 10);
    assert_eq!(states(f.store.as_ref()), before);
    assert_eq!(
        f.store.signature_rows("demo").expect("rows").len(),
        3,
        "nothing erased"
    );
    assert!(f.admin.uploads.lock().expect("lock").is_empty());
    // But they review.
    let html = page_as(&f, "/console/review/demo", &cookie).await;
    assert!(html.contains("/console/recording/demo/1") && html.contains("data-key=\"v\""));
    assert!(
        !html.contains("/console/audit"),
        "no admin links for a reviewer"
    );
    let r = send(
        &f.app,
        form_post_with(
            "/console/review/demo/2",
            &[("cookie", &cookie), ("accept", "application/json")],
            &format!("state=valid&csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("\"state\":\"valid\""));
    assert_eq!(state_of(&f, 2), store::SignatureState::Valid);
    // Only valid and invalid: fraud and a return to pending are an admin's, by form or API.
    for state in ["pending", "fraudulent"] {
        let r = post_as(
            &f,
            "/console/review/demo/2",
            &cookie,
            &format!("state={state}&csrf={csrf}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{state}");
        let r = send(
            &f.app,
            request(
                "POST",
                "/console/api/review/demo/2",
                &[
                    ("content-type", "application/json"),
                    ("cookie", &cookie),
                    ("x-csrf-token", &csrf),
                ],
                Body::from(format!("{{\"state\":\"{state}\"}}")),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "api {state}");
    }
    assert_eq!(state_of(&f, 2), store::SignatureState::Valid);
    let r = get_as(&f, "/console/recording/demo/1", &cookie).await;
    assert_eq!(header_of(&r, &header::CONTENT_TYPE), Some("audio/wav"));
    assert!(text(r).await.starts_with("RIFF"));
}

#[tokio::test]
async fn campaign_texts_with_html_are_escaped() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    for path in ["/console", "/console/campaign/demo"] {
        let html = page_as(&f, path, &cookie).await;
        assert!(!html.contains("<script>alert"), "{path} carries raw HTML");
        assert!(!html.contains("\"q\""), "{path} carries a raw quote");
        assert!(
            html.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;q&quot;"),
            "{path}"
        );
    }
    // Saving texts keeps them as typed (escaping is for display only).
    let body = format!(
        "csrf={csrf}&lang0=nl&title0=%3Cb%3ENew%3C%2Fb%3E&transcript0=Hallo&lang1=fr&title1=Titre&transcript1=&goal=2000&number=%2B32+2+000"
    );
    let r = post_as(&f, "/console/campaign/demo", &cookie, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("&lt;b&gt;New&lt;/b&gt;") && html.contains("Saved."));
    let edit = f.admin.edit.lock().expect("lock").clone();
    assert_eq!(edit.texts[0].title, "<b>New</b>");
    assert_eq!(edit.texts[1].language, "fr");
    assert_eq!(edit.goal, Some(2000));
    // A bad goal is refused with a message.
    let r = post_as(
        &f,
        "/console/campaign/demo",
        &cookie,
        &format!("csrf={csrf}&lang0=nl&title0=x&goal=lots"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("whole number"));
    // The admin's refusals: the form's fault is 400, the server's 500; each says why.
    for (goal, status, why) in [
        (7, StatusCode::BAD_REQUEST, "seven is not a goal"),
        (
            13,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store is read-only",
        ),
    ] {
        let body = format!("csrf={csrf}&lang0=nl&title0=x&goal={goal}");
        let r = post_as(&f, "/console/campaign/demo", &cookie, &body).await;
        assert_eq!(r.status(), status);
        assert!(text(r).await.contains(why));
    }
    assert_eq!(f.admin.edit.lock().expect("lock").goal, Some(2000));
    // Uploading a clip with the token goes to the admin, and the page shows the new version.
    let r = send(&f.app, upload_request(&cookie, Some(&csrf))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("flow version v2"));
    assert_eq!(
        f.admin.uploads.lock().expect("lock").as_slice(),
        &[("story".to_string(), "nl".to_string(), 13, "ada".to_string())]
    );
    let r = get_as(&f, "/console/campaign/demo/clip/story/nl", &cookie).await;
    assert_eq!(header_of(&r, &header::CONTENT_TYPE), Some("audio/wav"));
}

#[tokio::test]
async fn bulk_invalidation_previews_applies_and_reverts() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    let html = page_as(&f, "/console/bulk/demo?country=fr&preview=1", &cookie).await;
    assert!(
        html.contains("<strong id=\"preview-count\">1</strong>"),
        "{html}"
    );
    assert_eq!(
        states(f.store.as_ref()),
        vec![store::SignatureState::Pending; 3],
        "a preview changes nothing"
    );
    let r = post_as(
        &f,
        "/console/bulk/demo",
        &cookie,
        &format!("csrf={csrf}&country=FR&target=invalid&reason=burst+from+abroad&expected=1"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("<strong id=\"changed\">1</strong>"), "{html}");
    assert_eq!(state_of(&f, 3), store::SignatureState::Invalid);
    let action = html
        .split("/console/revert/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("revert form")
        .to_string();
    let r = post_as(
        &f,
        &format!("/console/revert/{action}"),
        &cookie,
        &format!("csrf={csrf}&reason=mistake"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        states(f.store.as_ref()),
        vec![store::SignatureState::Pending; 3]
    );
    // An empty filter is refused (it would select everything).
    let r = post_as(
        &f,
        "/console/bulk/demo",
        &cookie,
        &format!("csrf={csrf}&target=invalid&reason=x"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = text(get_as(&f, "/console/audit", &cookie).await).await;
    assert!(html.contains("burst from abroad (by ada)") && html.contains("mistake (by ada)"));
    assert!(html.contains("console login"));
    let html = text(get_as(&f, "/console/audit?campaign=demo", &cookie).await).await;
    assert!(html.contains("burst from abroad (by ada)"));
    assert!(
        !html.contains("<td>console login</td>"),
        "only the campaign's entries"
    );
}

#[tokio::test]
async fn export_and_erasure() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    let r = post_as(&f, "/console/export/demo", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, &header::CONTENT_TYPE),
        Some("application/zip")
    );
    let length: usize = header_of(&r, &header::CONTENT_LENGTH)
        .and_then(|v| v.parse().ok())
        .expect("length");
    let zip = to_bytes(r.into_body(), 64 << 20).await.expect("body");
    assert_eq!(zip.len(), length);
    assert!(zip.starts_with(b"PK\x03\x04"));
    // The whole archive came through: it ends with its end-of-central-directory record,
    // after the three recordings (each stored whole).
    assert!(zip[zip.len() - 22..].starts_with(b"PK\x05\x06"));
    assert_eq!(
        zip.windows(16)
            .filter(|w| *w == b"RIFF\0\0\0\0WAVEdata")
            .count(),
        3
    );
    let r = post_as(
        &f,
        "/console/erase",
        &cookie,
        &format!("csrf={csrf}&campaign=demo&number=0470+00+00+02&region=BE"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(
        html.contains("were erased") && !html.contains("0470"),
        "{html}"
    );
    assert_eq!(f.store.signature_rows("demo").expect("rows").len(), 2);
    let log = f.store.audit_log(None).expect("audit");
    assert!(log.iter().all(|e| !e.detail.contains("470")));
}

#[tokio::test]
async fn the_api_takes_a_bearer_token_or_a_session() {
    let f = fixture();
    let bearer = format!("Bearer {}", api_token(&f));
    let with_token = |path: &str, body: Option<&str>| match body {
        None => request("GET", path, &[("authorization", &bearer)], Body::empty()),
        Some(body) => request(
            "POST",
            path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Body::from(body.to_string()),
        ),
    };
    let r = send(&f.app, with_token("/console/api/queue/demo", None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text(r).await).expect("json");
    assert_eq!(v["total"], 3);
    let r = get(
        &f,
        "/console/api/queue/demo",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(
        &f.app,
        with_token(
            "/console/api/review/demo/3",
            Some("{\"state\":\"invalid\"}"),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state_of(&f, 3), store::SignatureState::Invalid);
    f.store
        .record_calls(&[store::CallSummary {
            campaign: "demo".into(),
            channel: "sip".into(),
            answered: true,
            story_heard_ms: 2500,
            ..Default::default()
        }])
        .expect("calls");
    let r = send(&f.app, with_token("/console/api/funnel/demo", None)).await;
    let v: serde_json::Value = serde_json::from_str(&text(r).await).expect("json");
    assert_eq!(v["answered"], 1);
    assert_eq!(v["curve"], serde_json::json!([1, 1, 1]));
    // With a session, a POST needs the CSRF header.
    let (cookie, csrf) = login(&f, "rey").await;
    let post = |csrf: Option<&str>| {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        headers.extend(csrf.map(|c| ("x-csrf-token", c)));
        request(
            "POST",
            "/console/api/review/demo/3",
            &headers,
            Body::from("{\"state\":\"valid\"}"),
        )
    };
    assert_eq!(
        send(&f.app, post(None)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(state_of(&f, 3), store::SignatureState::Invalid);
    assert_eq!(
        send(&f.app, post(Some(&csrf))).await.status(),
        StatusCode::OK
    );
    assert_eq!(state_of(&f, 3), store::SignatureState::Valid);
    // A reviewer's session does not reach the admin funnel.
    let r = get_as(&f, "/console/api/funnel/demo", &cookie).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn now_and_funnel_pages_draw_svg() {
    let f = fixture();
    let call = |story_heard_ms, complete| store::CallSummary {
        campaign: "demo".into(),
        channel: "sip".into(),
        answered: true,
        story_heard_ms,
        story_completed: complete,
        recorded: complete,
        signed: complete,
        ..Default::default()
    };
    f.store
        .record_calls(&[call(3000, true), call(1000, false)])
        .expect("calls");
    let (cookie, _) = login(&f, "ada").await;
    let html = page_as(&f, "/console/funnel/demo", &cookie).await;
    assert!(
        html.contains("<svg") && html.contains("role=\"img\"") && html.contains("Listening curve")
    );
    assert!(
        html.contains("<tr><td>3</td><td>1</td><td>50%</td></tr>"),
        "{html}"
    );
    let html = page_as(&f, "/console/now", &cookie).await;
    for expected in [
        "Signatures, last hour</dt><dd>3</dd>",
        "Calls, last hour</dt><dd>2</dd>",
        "<caption>calls by step</caption>",
        "<meta http-equiv=\"refresh\" content=\"15\">",
        "<title id=\"cpm-demo-t\">Calls per minute, demo, last hour</title>",
        "2 calls ended in the last hour, 2 in the last minute",
        "<td>2</td><td>demo</td><td>story</td>",
        "<td>registered</td><td>&lt;trunk&gt;</td>",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
}

#[test]
fn the_login_limit_counts_per_address_and_slows_an_account() {
    use super::auth::{LoginLimiter, Refused};
    use crate::client::AddressKey;
    use std::time::{Duration, Instant};
    let l = LoginLimiter::default();
    let key = |ip: [u8; 4]| Some(AddressKey::of(std::net::IpAddr::from(ip)));
    let (a, b) = (key([192, 0, 2, 1]), key([192, 0, 2, 2]));
    let t0 = Instant::now();
    // Many names from one address: 20 guesses are taken (counted as they are taken), then
    // the address is refused; other addresses are not.
    for i in 0..20 {
        assert!(
            l.guess(a, &format!("user{i}"), None, t0).is_ok(),
            "guess {i}"
        );
    }
    assert!(matches!(
        l.guess(a, "someone-else", None, t0),
        Err(Refused::Address(w)) if w <= Duration::from_secs(15 * 60)
    ));
    assert!(l.guess(b, "someone-else", None, t0).is_ok());
    // A new window takes guesses again.
    assert!(l
        .guess(a, "x", None, t0 + Duration::from_secs(15 * 60))
        .is_ok());

    // One name from many addresses: 10 free guesses, then one per 10 s, never a lockout.
    for i in 0..10u8 {
        assert!(l.guess(key([198, 51, 100, i]), "ada", None, t0).is_ok());
    }
    let first_slow = l.guess(key([198, 51, 100, 50]), "ada", None, t0);
    assert!(first_slow.is_ok(), "the first slowed guess is taken");
    let refused = l.guess(
        key([198, 51, 100, 51]),
        "ada",
        None,
        t0 + Duration::from_secs(1),
    );
    assert_eq!(
        refused.err(),
        Some(Refused::Account(Duration::from_secs(9)))
    );
    assert!(l
        .guess(
            key([198, 51, 100, 52]),
            "ada",
            None,
            t0 + Duration::from_secs(10)
        )
        .is_ok());
    // A browser that signed in to the account before is not slowed; a success starts over.
    let g = l
        .guess(b, "bob", None, t0)
        .expect("bob's first guess is free");
    l.succeeded(g, "bob", "device-of-bob".into());
    let g = l
        .guess(
            b,
            "ada",
            Some("device-of-ada"),
            t0 + Duration::from_secs(11),
        )
        .expect_err("unknown device while slowed");
    assert!(matches!(g, Refused::Account(_)));
    let g = l
        .guess(b, "ada", None, t0 + Duration::from_secs(20))
        .expect("one slowed guess");
    l.succeeded(g, "ada", "device-of-ada".into());
    for i in 0..12u8 {
        assert!(
            l.guess(
                key([203, 0, 113, i]),
                "ada",
                None,
                t0 + Duration::from_secs(21)
            )
            .is_ok()
                || i >= 10
        );
    }
    assert!(l
        .guess(
            key([203, 0, 113, 99]),
            "ada",
            None,
            t0 + Duration::from_secs(21)
        )
        .is_err());
    assert!(
        l.guess(
            b,
            "ada",
            Some("device-of-ada"),
            t0 + Duration::from_secs(21)
        )
        .is_ok(),
        "the known browser still gets in"
    );
    // Malformed names are not remembered (they could be anything, of any length).
    let long = "x!".repeat(10_000);
    let c = key([192, 0, 2, 3]);
    for _ in 0..15 {
        assert!(l.guess(c, &long, None, t0).is_ok());
    }
    assert!(l.guess(None, &long, None, t0).is_ok());
}

#[tokio::test]
async fn a_proxy_that_rewrites_host_passes_the_origin_check() {
    let f = fixture();
    let (cookie, csrf) = login(&f, "ada").await;
    // Behind a proxy that rewrites Host, X-Forwarded-Host names the site the browser saw:
    // a form from that site goes through, one from another is refused.
    for (origin, state, status) in [
        ("https://petition.example", "valid", StatusCode::SEE_OTHER),
        ("https://evil.example", "pending", StatusCode::FORBIDDEN),
    ] {
        let r = send(
            &f.app,
            form_post_with(
                "/console/review/demo/3",
                &[
                    ("cookie", &cookie),
                    ("host", "127.0.0.1:8080"),
                    ("x-forwarded-host", "petition.example"),
                    ("origin", origin),
                ],
                &format!("state={state}&csrf={csrf}"),
            ),
        )
        .await;
        assert_eq!(r.status(), status, "{origin}");
        assert_eq!(state_of(&f, 3), store::SignatureState::Valid);
    }
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let f = fixture();
    let https = [("x-forwarded-proto", "https")];
    let (set, login_cookie, token) = login_form(&f, &https).await;
    assert!(set.contains("; Secure"), "{set}");
    let r = sign_in(&f, &login_cookie, &token, "ada", &https).await;
    let set = set_cookie(&r, "belteken_console").expect("session cookie");
    assert_session_cookie(&set);
    assert!(set.contains("; Secure"), "{set}");
    // Over plain HTTP (as in the other tests) the flag is absent, or the browser would drop
    // the cookie.
    let (set, _, _) = login_form(&f, &[]).await;
    assert!(!set.contains("Secure"), "{set}");
}

#[test]
fn every_console_api_route_is_documented() {
    let routes: Vec<(String, String)> = table()
        .into_iter()
        .filter(|r| r.path.starts_with("/console/api/"))
        .map(|r| (r.method.to_lowercase(), r.path.to_owned()))
        .collect();
    assert!(!routes.is_empty());
    let documented: Vec<(String, String)> = super::api::DOCS
        .iter()
        .map(|d| (d.method.to_owned(), d.path.to_owned()))
        .collect();
    for route in &routes {
        assert!(
            documented.contains(route),
            "{route:?} is not in the OpenAPI document"
        );
    }
    assert_eq!(routes.len(), documented.len(), "documented but not mounted");
}

#[test]
fn form_decoding_takes_any_bytes_without_panicking() {
    use super::auth::form_urlencoded_pairs;
    assert_eq!(
        form_urlencoded_pairs("a=%2B1+2&b=%e2%82%ac&c=%+f&d=%4&e=%&%zz"),
        vec![
            ("a".into(), "+1 2".into()),
            ("b".into(), "€".into()),
            ("c".into(), "% f".into()),
            ("d".into(), "%4".into()),
            ("e".into(), "%".into()),
            ("%zz".into(), String::new()),
        ]
    );
    for text in ["%", "%%", "=%f", "é=%c3", "&&=&", "%ff%fe"] {
        let _ = form_urlencoded_pairs(text);
    }
}
