//! The console's POST routes as a signed-in admin sends them (or as anyone forges them):
//! campaign edit forms, the audio upload (multipart), review, bulk invalidation, revert,
//! export and erasure, through the real router, guard and SQLite store. The first byte picks
//! the route and whether the CSRF token is put in front of the body.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use web::{AdminError, CampaignAdmin, CampaignEdit, Campaign, ClipInfo, Options, Translation, WebState};

/// The multipart boundary the upload requests declare.
const BOUNDARY: &str = "fuzzboundary";

const ROUTES: &[(&str, Kind)] = &[
    ("/console/campaign/demo", Kind::Form),
    ("/console/campaign/demo/clip/story/nl", Kind::Multipart),
    ("/console/review/demo/1", Kind::Form),
    ("/console/bulk/demo", Kind::Form),
    ("/console/revert/1", Kind::Form),
    ("/console/export/demo", Kind::Form),
    ("/console/erase", Kind::Form),
    ("/console/api/review/demo/1", Kind::Json),
];

#[derive(Clone, Copy)]
enum Kind {
    Form,
    Multipart,
    Json,
}

/// Campaign editing as the binary does it, less the store: uploads are decoded and prepared.
struct Admin;

impl CampaignAdmin for Admin {
    fn edit_form(&self, slug: &str) -> Option<CampaignEdit> {
        (slug == "demo").then(|| CampaignEdit {
            texts: vec![Translation {
                language: "nl".into(),
                title: "Demo".into(),
                transcript: String::new(),
            }],
            number: None,
            goal: None,
            opens: None,
            closes: None,
        })
    }
    fn apply_edit(
        &self,
        _slug: &str,
        edit: &CampaignEdit,
        _actor: &str,
    ) -> Result<(), AdminError> {
        for t in [&edit.opens, &edit.closes].into_iter().flatten() {
            store::parse_rfc3339(t).ok_or_else(|| AdminError::Refused("not a date".into()))?;
        }
        Ok(())
    }
    fn clips(&self, _slug: &str) -> Vec<ClipInfo> {
        Vec::new()
    }
    fn upload_clip(
        &self,
        _slug: &str,
        clip: &str,
        language: &str,
        data: &[u8],
        _actor: &str,
    ) -> Result<ClipInfo, AdminError> {
        let samples = media::audio::decode_bytes(data, None)
            .map_err(|e| AdminError::Refused(e.to_string()))?;
        let prompt = media::import::prepare(&samples).map_err(|e| AdminError::Refused(e.to_string()))?;
        Ok(ClipInfo {
            name: clip.into(),
            language: language.into(),
            duration_ms: prompt.len() as u64 / 8,
            flow_version: "v2".into(),
            uploaded: true,
        })
    }
    fn clip_wav(&self, _slug: &str, _clip: &str, _language: &str) -> Option<Vec<u8>> {
        None
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Router,
    /// `Cookie` header of an admin's session.
    cookie: String,
    csrf: String,
    /// `Authorization` header with an admin's API token.
    bearer: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // The store lives in memory where there is a tmpfs: writes are the slow part.
        let base = ["/dev/shm", "/tmp"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("belteken-fuzz-console-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db: Arc<dyn store::Store> =
            Arc::new(store::SqliteStore::open(&dir.join("b.db")).expect("open the store"));
        db.ensure_campaign("demo", "Demo").expect("campaign");
        let secret = store::Secret::from_bytes([7; store::SECRET_BYTES]);
        for n in ["+32470000001", "+32470000002", "+33612345678"] {
            db.sign(store::NewSignature {
                campaign: "demo".into(),
                caller: store::identify_caller(Some(n), "BE", &secret),
                recording_wav: media::wav::pcm16_mono(&[100; 800], 8000),
                speech_ms: 900,
                channel: "sip",
                trust: None,
                flow_version: Some("v1".into()),
                contact: None,
            })
            .expect("sign");
        }
        let hash = store::hash_password("a long enough password").expect("hash");
        db.add_console_user("ada", store::Role::Admin, &hash)
            .expect("admin");
        let (token, csrf) = (store::new_token(), store::new_token());
        db.create_console_session(&store::token_hash(&token), "ada", &csrf, SystemTime::now())
            .expect("session");
        let api = store::new_token();
        let now = SystemTime::now();
        let expires = now + std::time::Duration::from_secs(3600);
        db.create_api_token(&store::token_hash(&api), "ada", "fuzz", now, expires)
            .expect("API token");
        let view = Campaign {
            slug: "demo".into(),
            title: "Demo".into(),
            number: None,
            sip_uri: "sip:demo@127.0.0.1".into(),
            transcript: String::new(),
            language: "en".into(),
            goal: None,
            translations: Vec::new(),
            ..Campaign::new("demo")
        };
        let app = runtime.block_on(async {
            web::router_with(
                WebState {
                    campaigns: vec![view].into(),
                    hub: store::CountHub::default(),
                },
                Options {
                    store: Some(db),
                    admin: Some(Arc::new(Admin)),
                    secret: Some(secret),
                    ..Options::default()
                },
            )
        });
        Fixture {
            runtime,
            app,
            cookie: format!("belteken_console={token}"),
            csrf,
            bearer: format!("Bearer {api}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (path, kind) = ROUTES[usize::from(pick & 0x7F) % ROUTES.len()];
    // Most inputs carry the token, so that the handlers are reached; the others try the guard.
    let with_token = pick & 0x80 == 0;
    let mut req = Request::post(path);
    let body = match kind {
        Kind::Form => {
            req = req
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, &f.cookie);
            let mut b = Vec::with_capacity(body.len() + 80);
            if with_token {
                b.extend_from_slice(format!("csrf={}&", f.csrf).as_bytes());
            }
            b.extend_from_slice(body);
            b
        }
        Kind::Multipart => {
            let uri = if with_token {
                format!("{path}?csrf={}", f.csrf)
            } else {
                path.to_string()
            };
            req = Request::post(uri)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .header(header::COOKIE, &f.cookie);
            body.to_vec()
        }
        Kind::Json => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            if with_token {
                req = req.header(header::AUTHORIZATION, &f.bearer);
            }
            body.to_vec()
        }
    };
    let Ok(req) = req.body(Body::from(body)) else {
        return;
    };
    let status = f.runtime.block_on(async {
        let response = f
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let _ = axum::body::to_bytes(response.into_body(), 16 << 20).await;
        status
    });
    assert!(
        !status.is_server_error() || status.as_u16() == 503,
        "{path}: {status}"
    );
});
