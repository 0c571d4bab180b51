//! Server-rendered HTML pages (they work without JavaScript), the static files, and the 404s.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::html::{escape, path_segment, tel_target};
use crate::{api, AppState, CampaignView};

const LIVE_JS: &str = include_str!("../static/live.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// Pages show a count, so a browser must ask again each time; they are cheap to render.
const PAGE_CACHE: &str = "no-cache";
/// The static files are not versioned in their URL, so cache them only briefly.
const STATIC_CACHE: &str = "public, max-age=300";

/// The words on a page, in the campaign's language.
struct Labels {
    lang: &'static str,
    call_heading: &'static str,
    how: &'static str,
    sip_intro: &'static str,
    count_heading: &'static str,
    goal: &'static str,
    unverified: &'static str,
    unverified_note: &'static str,
    story_heading: &'static str,
    all_campaigns: &'static str,
    footer: &'static str,
    not_found_title: &'static str,
    not_found_text: &'static str,
}

const EN: Labels = Labels {
    lang: "en",
    call_heading: "Call to sign",
    how: "Call, listen, and say your name after the beep: that signs the petition.",
    sip_intro: "From a SIP phone or app:",
    count_heading: "Signatures so far",
    goal: "Goal:",
    unverified: "Unverified signatures:",
    unverified_note: "counted apart: these callers withheld their number.",
    story_heading: "What you will hear",
    all_campaigns: "All campaigns",
    footer: "A phone petition line run with belteken.",
    not_found_title: "Campaign not found",
    not_found_text: "There is no campaign at this address.",
};

const NL: Labels = Labels {
    lang: "nl",
    call_heading: "Bel om te tekenen",
    how: "Bel, luister en zeg uw naam na de pieptoon: zo tekent u de petitie.",
    sip_intro: "Vanaf een SIP-telefoon of -app:",
    count_heading: "Handtekeningen tot nu toe",
    goal: "Doel:",
    unverified: "Niet-geverifieerde handtekeningen:",
    unverified_note: "apart geteld: deze bellers hielden hun nummer verborgen.",
    story_heading: "Wat u zult horen",
    all_campaigns: "Alle campagnes",
    footer: "Een telefonische petitielijn, gedraaid met belteken.",
    not_found_title: "Campagne niet gevonden",
    not_found_text: "Op dit adres is geen campagne.",
};

const FR: Labels = Labels {
    lang: "fr",
    call_heading: "Appelez pour signer",
    how: "Appelez, écoutez, et dites votre nom après le bip : c'est ainsi que vous signez la pétition.",
    sip_intro: "Depuis un téléphone ou une application SIP :",
    count_heading: "Signatures à ce jour",
    goal: "Objectif :",
    unverified: "Signatures non vérifiées :",
    unverified_note: "comptées à part : ces appelants ont masqué leur numéro.",
    story_heading: "Ce que vous entendrez",
    all_campaigns: "Toutes les campagnes",
    footer: "Une ligne de pétition téléphonique, avec belteken.",
    not_found_title: "Campagne introuvable",
    not_found_text: "Il n'y a pas de campagne à cette adresse.",
};

fn labels(language: &str) -> &'static Labels {
    match language {
        "nl" => &NL,
        "fr" => &FR,
        _ => &EN,
    }
}

/// The language names shown in the switch, in their own language.
fn language_name(code: &str) -> &str {
    match code {
        "nl" => "Nederlands",
        "fr" => "Français",
        "en" => "English",
        other => other,
    }
}

/// `?lang=` on a campaign page.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct LangQuery {
    lang: Option<String>,
}

/// The language to show: `?lang=` if the campaign has it, else the first of Accept-Language
/// (by quality) it has, else the campaign's own.
fn pick_language<'a>(view: &'a CampaignView, asked: Option<&str>, accept: Option<&str>) -> &'a str {
    let has = |code: &str| -> Option<&'a str> {
        if view.language == code {
            return Some(view.language.as_str());
        }
        view.translations
            .iter()
            .find(|t| t.language == code)
            .map(|t| t.language.as_str())
    };
    if let Some(found) = asked.and_then(has) {
        return found;
    }
    if let Some(accept) = accept {
        let mut ranges: Vec<(f32, String)> = accept
            .split(',')
            .take(20)
            .filter_map(|part| {
                let mut bits = part.trim().split(';');
                let tag = bits.next()?.trim().to_ascii_lowercase();
                let q = bits
                    .find_map(|b| {
                        b.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                    })
                    .unwrap_or(1.0);
                let primary = tag.split('-').next().unwrap_or("").to_string();
                (q > 0.0).then_some((q, primary))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(found) = ranges.iter().find_map(|(_, tag)| has(tag)) {
            return found;
        }
    }
    view.language.as_str()
}

/// The document around a page's `<main>` content. `title` and `main` must already be HTML.
fn document(title: &str, main: &str, labels: &Labels) -> String {
    format!(
        "<!doctype html>\n\
<html lang=\"{lang}\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n\
<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
<script src=\"/static/live.js\" defer></script>\n\
</head>\n\
<body>\n\
<header><p class=\"brand\"><a href=\"/\">belteken</a></p></header>\n\
<main>\n{main}</main>\n\
<footer><p>{footer} <a href=\"/\">{all}</a></p></footer>\n\
</body>\n\
</html>\n",
        lang = labels.lang,
        footer = labels.footer,
        all = labels.all_campaigns,
    )
}

fn page(status: StatusCode, cache: &'static str, body: String) -> Response {
    (status, [(header::CACHE_CONTROL, cache)], Html(body)).into_response()
}

/// `GET /`: every campaign, with a link to its page.
pub(crate) async fn index(State(state): State<AppState>) -> Response {
    let campaigns = state.web.campaigns.snapshot();
    // One language for the list when all campaigns share it; English otherwise.
    let language = match campaigns.first() {
        Some(first) if campaigns.iter().all(|c| c.language == first.language) => {
            first.language.as_str()
        }
        _ => "en",
    };
    let labels = labels(language);
    let mut main = format!(
        "<h1>{}</h1>\n<ul class=\"campaigns\">\n",
        labels.all_campaigns
    );
    for c in campaigns.iter() {
        let _ = writeln!(
            main,
            "<li><a href=\"/c/{}\">{}</a></li>",
            path_segment(&c.slug),
            escape(&c.title)
        );
    }
    main.push_str("</ul>\n");
    let body = document(labels.all_campaigns, &main, labels);
    page(StatusCode::OK, PAGE_CACHE, body)
}

/// `GET /c/{slug}`: the public page of one campaign.
pub(crate) async fn campaign(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    match state.web.campaign(&slug) {
        Some(view) => {
            let accept = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok());
            let language = pick_language(&view, query.lang.as_deref(), accept);
            let mut response = page(
                StatusCode::OK,
                PAGE_CACHE,
                campaign_page(&view, language, &state),
            );
            response.headers_mut().insert(
                header::VARY,
                header::HeaderValue::from_static("Accept-Language"),
            );
            response
        }
        None => not_found_page(),
    }
}

fn campaign_page(view: &CampaignView, language: &str, state: &AppState) -> String {
    let labels = labels(language);
    let (title, transcript) = match view.translations.iter().find(|t| t.language == language) {
        Some(t) => (t.title.as_str(), t.transcript.as_str()),
        None => (view.title.as_str(), view.transcript.as_str()),
    };
    let counts = state.web.hub.current(&view.slug);
    let title = escape(title);
    let mut main = String::new();
    if !view.translations.is_empty() {
        let mut codes = vec![view.language.as_str()];
        codes.extend(view.translations.iter().map(|t| t.language.as_str()));
        let _ = write!(
            main,
            "<nav class=\"languages\" aria-label=\"Language\"><ul>"
        );
        for code in codes {
            let name = escape(language_name(code));
            let code_e = escape(code);
            if code == language {
                let _ = write!(
                    main,
                    "<li><a href=\"?lang={code_e}\" lang=\"{code_e}\" hreflang=\"{code_e}\" aria-current=\"page\">{name}</a></li>"
                );
            } else {
                let _ = write!(
                    main,
                    "<li><a href=\"?lang={code_e}\" lang=\"{code_e}\" hreflang=\"{code_e}\">{name}</a></li>"
                );
            }
        }
        main.push_str("</ul></nav>\n");
    }
    let _ = writeln!(main, "<h1>{title}</h1>");

    // Writing to a String cannot fail, hence the ignored results below.
    let _ = write!(
        main,
        "<section class=\"call\" aria-labelledby=\"call-heading\">\n\
<h2 id=\"call-heading\">{}</h2>\n<p>{}</p>\n",
        labels.call_heading, labels.how
    );
    if let Some(number) = &view.number {
        let shown = escape(number);
        match tel_target(number) {
            Some(target) => {
                let _ = writeln!(
                    main,
                    "<p class=\"number\"><a href=\"{}\">{shown}</a></p>",
                    escape(&target)
                );
            }
            None => {
                let _ = writeln!(main, "<p class=\"number\">{shown}</p>");
            }
        }
    }
    let sip = escape(&view.sip_uri);
    let _ = write!(
        main,
        "<p class=\"sip\">{} <a href=\"{sip}\">{sip}</a></p>\n</section>\n",
        labels.sip_intro
    );

    let events = format!("/api/campaigns/{}/events", path_segment(&view.slug));
    let _ = write!(
        main,
        "<section class=\"tally\" aria-labelledby=\"count-heading\">\n\
<h2 id=\"count-heading\">{heading}</h2>\n\
<p class=\"count\"><span id=\"count\" aria-live=\"polite\" aria-atomic=\"true\" \
data-events=\"{events}\">{signatures}</span></p>\n\
{goal}\
<p class=\"unverified\">{unverified} <span id=\"unverified\">{unverified_n}</span> \
<small>({note})</small></p>\n\
</section>\n",
        heading = labels.count_heading,
        goal = match view.goal {
            Some(goal) if goal > 0 => format!(
                "<p class=\"goal\"><label for=\"progress\">{} {goal}</label> \
<progress id=\"progress\" max=\"{goal}\" value=\"{}\">{}</progress></p>\n",
                labels.goal,
                counts.signatures.min(goal),
                counts.signatures
            ),
            _ => String::new(),
        },
        events = escape(&events),
        signatures = counts.signatures,
        unverified = labels.unverified,
        unverified_n = counts.unverified,
        note = labels.unverified_note,
    );

    let _ = write!(
        main,
        "<section class=\"story\" aria-labelledby=\"story-heading\">\n\
<h2 id=\"story-heading\">{}</h2>\n{}</section>\n",
        labels.story_heading,
        paragraphs(transcript)
    );

    document(&title, &main, labels)
}

/// The transcript as `<p>` elements: blank lines separate paragraphs, single line breaks
/// inside one become `<br>`.
fn paragraphs(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    let mut out = String::new();
    let mut lines: Vec<&str> = Vec::new();
    for line in normalized.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.is_empty() {
            if !lines.is_empty() {
                let escaped: Vec<String> = lines.iter().map(|l| escape(l)).collect();
                let _ = writeln!(out, "<p>{}</p>", escaped.join("<br>\n"));
                lines.clear();
            }
        } else {
            lines.push(line);
        }
    }
    out
}

fn not_found_page() -> Response {
    let labels = &EN;
    let main = format!(
        "<h1>{}</h1>\n<p>{} <a href=\"/\">{}</a></p>\n",
        labels.not_found_title, labels.not_found_text, labels.all_campaigns
    );
    let body = document(labels.not_found_title, &main, labels);
    page(StatusCode::NOT_FOUND, "no-store", body)
}

/// Any other path: a JSON 404 under `/api/`, an HTML one elsewhere.
pub(crate) async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        api::error(StatusCode::NOT_FOUND, "not found")
    } else {
        not_found_page()
    }
}

pub(crate) async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, STATIC_CACHE),
        ],
        LIVE_JS,
    )
        .into_response()
}

pub(crate) async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, STATIC_CACHE),
        ],
        STYLE_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::paragraphs;

    #[test]
    fn paragraphs_split_on_blank_lines_and_escape() {
        assert_eq!(
            paragraphs("One\r\ntwo <b>\n\n\n Three & four \n"),
            "<p>One<br>\ntwo &lt;b&gt;</p>\n<p>Three &amp; four</p>\n"
        );
        assert_eq!(paragraphs("  \n"), "");
    }
}
