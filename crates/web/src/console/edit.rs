//! Campaign editing over [`crate::CampaignAdmin`]: texts per language, number, goal, opening
//! times, and new audio per clip and language (uploaded, converted, played back).

use std::collections::HashMap;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;

use super::layout::{csrf_field, head_row, message, page};
use super::{Auth, Console, MAX_UPLOAD_BYTES};
use crate::html::path_segment;
use crate::{AdminError, CampaignAdmin, CampaignEdit, Translation};

/// Languages a campaign's texts may be in.
pub(crate) const LANGUAGES: [&str; 3] = ["nl", "fr", "en"];

fn admin_of(console: &Console, auth: &Auth) -> Result<std::sync::Arc<dyn CampaignAdmin>, Response> {
    console.app.admin.clone().ok_or_else(|| {
        message(
            auth,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not available",
            "Campaign editing is not available on this server.",
        )
    })
}

async fn run<T: Send + 'static>(
    auth: &Auth,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        message(
            auth,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "Internal error.",
        )
    })
}

pub(crate) async fn form(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
) -> Response {
    let admin = match admin_of(&console, &auth) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let s2 = slug.clone();
    let (edit, clips) = match run(&auth, move || (admin.edit_form(&s2), admin.clips(&s2))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(edit) = edit else {
        return message(
            &auth,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such campaign.",
        );
    };
    render(&auth, &slug, &edit, &clips, None)
}

fn render(
    auth: &Auth,
    slug: &str,
    edit: &CampaignEdit,
    clips: &[crate::ClipInfo],
    notice: Option<&str>,
) -> Response {
    let seg = path_segment(slug);
    let mut texts = edit.texts.clone();
    if texts.len() < LANGUAGES.len() {
        texts.push(Translation {
            language: String::new(),
            title: String::new(),
            transcript: String::new(),
        });
    }
    let body = html! {
        @if let Some(notice) = notice {
            p role="status" class="notice" { (notice) }
        }
        form method="post" action={ "/console/campaign/" (seg) } class="edit" {
            (csrf_field(auth))
            @for (i, t) in texts.iter().enumerate() {
                fieldset {
                    legend {
                        @if i == 0 {
                            "Texts in the main language"
                        } @else if t.language.is_empty() {
                            "Add a language"
                        } @else {
                            "Texts in " (t.language)
                        }
                    }
                    label for={ "lang" (i) } { "Language" }
                    select id={ "lang" (i) } name={ "lang" (i) } {
                        option value="" { "(none)" }
                        @for l in LANGUAGES {
                            option selected[l == t.language] { (l) }
                        }
                    }
                    label for={ "title" (i) } { "Title" }
                    input id={ "title" (i) } name={ "title" (i) } value=(t.title) maxlength="200";
                    label for={ "transcript" (i) } {
                        "Transcript (what callers hear; blank lines separate paragraphs)"
                    }
                    textarea id={ "transcript" (i) } name={ "transcript" (i) } rows="8" {
                        (t.transcript)
                    }
                }
            }
            fieldset {
                legend { "The line" }
                label for="number" { "Number shown" }
                input id="number" name="number" value=(edit.number.as_deref().unwrap_or(""))
                    maxlength="40";
                label for="goal" { "Goal (signatures)" }
                input id="goal" name="goal" inputmode="numeric"
                    value=(edit.goal.map(|g| g.to_string()).unwrap_or_default());
                label for="opens" { "Opens (UTC, YYYY-MM-DDTHH:MM:SSZ)" }
                input id="opens" name="opens" value=(edit.opens.as_deref().unwrap_or(""));
                label for="closes" { "Closes (UTC)" }
                input id="closes" name="closes" value=(edit.closes.as_deref().unwrap_or(""));
            }
            button type="submit" { "Save" }
        }
        h2 { "Audio" }
        p {
            "Upload WAV, MP3, OGG or FLAC; it is converted for the phone and the next call \
             hears it. Play it back below to check."
        }
        table class="clips" {
            caption { "Clips" }
            (head_row(&["Clip", "Language", "Length", "Source", "Listen", "Replace"]))
            tbody {
                @for c in clips {
                    @let (cs, ls) = (path_segment(&c.name), path_segment(&c.language));
                    @let url = format!("/console/campaign/{seg}/clip/{cs}/{ls}");
                    tr {
                        th scope="row" { (c.name) }
                        td { (c.language) }
                        td { (format_args!("{:.1}", c.duration_ms as f64 / 1000.0)) " s" }
                        td {
                            (if c.uploaded { "uploaded" } else { "from the configuration" })
                            " (flow " (c.flow_version) ")"
                        }
                        td {
                            audio controls preload="none" src=(url)
                                aria-label={ (c.name) " in " (c.language) } {}
                        }
                        td {
                            form method="post" enctype="multipart/form-data"
                                action={ (url) "?csrf=" (auth.csrf) } class="upload" {
                                label for={ "f-" (cs) "-" (ls) } {
                                    "New audio for " (c.name) " (" (c.language) ")"
                                }
                                input id={ "f-" (cs) "-" (ls) } type="file" name="audio"
                                    accept="audio/*,.wav,.mp3,.ogg,.flac" required;
                                button type="submit" { "Upload" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(auth, &format!("Edit campaign: {slug}"), body).into_response()
}

/// The edit as the form sent it, or a message for the person at the form.
pub(crate) fn parse_edit(form: &HashMap<String, String>) -> Result<CampaignEdit, String> {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut texts = Vec::new();
    for i in 0..LANGUAGES.len() + 1 {
        let lang = get(&format!("lang{i}"));
        let title = get(&format!("title{i}"));
        let transcript = form
            .get(&format!("transcript{i}"))
            .map(|t| t.replace("\r\n", "\n").trim().to_string())
            .unwrap_or_default();
        if lang.is_empty() {
            if !title.is_empty() || !transcript.is_empty() {
                return Err("choose a language for every text".into());
            }
            continue;
        }
        if !LANGUAGES.contains(&lang.as_str()) {
            return Err(format!("unknown language {lang:?}"));
        }
        if texts.iter().any(|t: &Translation| t.language == lang) {
            return Err(format!("two texts in {lang}"));
        }
        if title.is_empty() {
            return Err(format!("the title in {lang} is empty"));
        }
        texts.push(Translation {
            language: lang,
            title,
            transcript,
        });
    }
    if texts.is_empty() {
        return Err("a campaign needs its texts in at least one language".into());
    }
    let opt = |k: &str| {
        let v = get(k);
        (!v.is_empty()).then_some(v)
    };
    let goal = match opt("goal") {
        None => None,
        Some(g) => Some(
            g.replace([' ', '.', ','], "")
                .parse::<u64>()
                .map_err(|_| "the goal must be a whole number".to_string())?,
        ),
    };
    Ok(CampaignEdit {
        texts,
        number: opt("number"),
        goal,
        opens: opt("opens"),
        closes: opt("closes"),
    })
}

pub(crate) async fn save(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let admin = match admin_of(&console, &auth) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let edit = match parse_edit(&form) {
        Ok(e) => e,
        Err(m) => return message(&auth, StatusCode::BAD_REQUEST, "Not saved", &m),
    };
    let (s2, user) = (slug.clone(), auth.user.clone());
    let result = match run(&auth, move || {
        let r = admin.apply_edit(&s2, &edit, &user);
        (r, admin.edit_form(&s2), admin.clips(&s2))
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match result {
        (Ok(()), Some(edit), clips) => render(&auth, &slug, &edit, &clips, Some("Saved.")),
        (Ok(()), None, _) => Redirect::to("/console").into_response(),
        (Err(e), _, _) => refused(&auth, "Not saved", &e),
    }
}

pub(crate) async fn upload(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path((slug, clip, lang)): Path<(String, String, String)>,
    mut multipart: Multipart,
) -> Response {
    let admin = match admin_of(&console, &auth) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut data: Option<Vec<u8>> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                if field.name() != Some("audio") {
                    continue;
                }
                match field.bytes().await {
                    Ok(b) if b.len() <= MAX_UPLOAD_BYTES => data = Some(b.to_vec()),
                    Ok(_) => {
                        return message(
                            &auth,
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "Not uploaded",
                            "The file is larger than 25 MB.",
                        )
                    }
                    Err(_) => {
                        return message(
                            &auth,
                            StatusCode::BAD_REQUEST,
                            "Not uploaded",
                            "The upload broke off or is larger than 25 MB.",
                        )
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                return message(
                    &auth,
                    StatusCode::BAD_REQUEST,
                    "Not uploaded",
                    "The upload broke off or is larger than 25 MB.",
                )
            }
        }
    }
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return message(
            &auth,
            StatusCode::BAD_REQUEST,
            "Not uploaded",
            "Choose an audio file.",
        );
    };
    let (s2, user) = (slug.clone(), auth.user.clone());
    let result = match run(&auth, move || {
        let r = admin.upload_clip(&s2, &clip, &lang, &data, &user);
        (r, admin.edit_form(&s2), admin.clips(&s2))
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match result {
        (Ok(info), Some(edit), clips) => {
            let notice = format!(
                "Uploaded: {} ({}) is now {:.1} s; calls from now on get flow version {}.",
                info.name,
                info.language,
                info.duration_ms as f64 / 1000.0,
                info.flow_version
            );
            render(&auth, &slug, &edit, &clips, Some(&notice))
        }
        (Ok(_), None, _) => Redirect::to("/console").into_response(),
        (Err(e), _, _) => refused(&auth, "Not uploaded", &e),
    }
}

/// The page for a change that was not made: 404 for an unknown campaign, 400 for what the
/// form sent, 500 when the server could not store it.
fn refused(auth: &Auth, title: &str, e: &AdminError) -> Response {
    let status = match e {
        AdminError::UnknownCampaign(_) => StatusCode::NOT_FOUND,
        AdminError::Refused(_) => StatusCode::BAD_REQUEST,
        AdminError::Failed(_) => {
            tracing::error!(error = %e, "a console change could not be made");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    message(auth, status, title, &e.to_string())
}

pub(crate) async fn clip(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path((slug, clip, lang)): Path<(String, String, String)>,
) -> Response {
    let admin = match admin_of(&console, &auth) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match run(&auth, move || admin.clip_wav(&slug, &clip, &lang)).await {
        Ok(Some(wav)) => (
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            wav,
        )
            .into_response(),
        Ok(None) => message(&auth, StatusCode::NOT_FOUND, "Not found", "No such clip."),
        Err(r) => r,
    }
}
