//! Server-rendered HTML pages (they work without JavaScript), the static files, and the 404s.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use std::time::{Duration, UNIX_EPOCH};

use crate::html::{path_segment, tel_target};
use crate::{chart, AppState, Campaign};

const LIVE_JS: &str = include_str!("../static/live.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// Pages show a count, so a browser must ask again each time; they are cheap to render.
const PAGE_CACHE: &str = "no-cache";
/// The static files are not versioned in their URL, so cache them only briefly.
const STATIC_CACHE: &str = "public, max-age=300";

/// The words on a page, in the campaign's language. `{…}` marks a value filled in.
pub(crate) struct Labels {
    pub lang: &'static str,
    skip: &'static str,
    language_nav: &'static str,
    call_heading: &'static str,
    how: &'static str,
    sip_intro: &'static str,
    count_heading: &'static str,
    pub count_unit: &'static str,
    /// "{n} of {goal} ({percent}%)".
    goal_progress: &'static str,
    pub goal: &'static str,
    unverified: &'static str,
    unverified_note: &'static str,
    story_heading: &'static str,
    chart_heading: &'static str,
    /// "{total} signatures from {start} to {end} (UTC)."
    chart_desc: &'static str,
    chart_table: &'static str,
    col_period: &'static str,
    col_new: &'static str,
    col_total: &'static str,
    where_heading: &'static str,
    countries_caption: &'static str,
    col_country: &'static str,
    col_region: &'static str,
    col_signatures: &'static str,
    other_countries: &'static str,
    regions_caption: &'static str,
    regions: [&'static str; 3],
    /// "Figures as of {time} UTC; they follow the live count within seconds."
    as_of: &'static str,
    stats_pending: &'static str,
    no_signatures: &'static str,
    embed_heading: &'static str,
    embed_text: &'static str,
    embed_iframe_text: &'static str,
    embed_title: &'static str,
    pub embed_link: &'static str,
    all_campaigns: &'static str,
    footer: &'static str,
    not_found_title: &'static str,
    not_found_text: &'static str,
}

const EN: Labels = Labels {
    lang: "en",
    skip: "Skip to content",
    language_nav: "Language",
    call_heading: "Call to sign",
    how: "Call, listen, and say your name after the beep: that signs the petition.",
    sip_intro: "From a SIP phone or app:",
    count_heading: "Signatures so far",
    count_unit: "signatures",
    goal_progress: "{n} of {goal} ({percent}%)",
    goal: "Goal:",
    unverified: "Unverified signatures:",
    unverified_note: "counted apart: these callers withheld their number.",
    story_heading: "What you will hear",
    chart_heading: "Signatures over time",
    chart_desc: "{total} signatures from {start} to {end} (UTC).",
    chart_table: "The figures as a table",
    col_period: "From (UTC)",
    col_new: "New",
    col_total: "Total",
    where_heading: "Where the signatures come from",
    countries_caption: "By country",
    col_country: "Country",
    col_region: "Region",
    col_signatures: "Signatures",
    other_countries: "Other or unknown",
    regions_caption: "Belgian landlines, by region",
    regions: ["Brussels", "Flanders", "Wallonia"],
    as_of: "Figures as of {time} UTC; they follow the live count within seconds.",
    stats_pending: "These figures are being computed; reload in a few seconds.",
    no_signatures: "No signatures yet: be the first to call.",
    embed_heading: "Show the counter on your site",
    embed_text: "Paste this where the counter should appear:",
    embed_iframe_text: "Or, where your site allows no scripts:",
    embed_title: "Live signature count",
    embed_link: "Sign by phone",
    all_campaigns: "All campaigns",
    footer: "A phone petition line run with belteken.",
    not_found_title: "Campaign not found",
    not_found_text: "There is no campaign at this address.",
};

const NL: Labels = Labels {
    lang: "nl",
    skip: "Naar de inhoud",
    language_nav: "Taal",
    call_heading: "Bel om te tekenen",
    how: "Bel, luister en zeg uw naam na de pieptoon: zo tekent u de petitie.",
    sip_intro: "Vanaf een SIP-telefoon of -app:",
    count_heading: "Handtekeningen tot nu toe",
    count_unit: "handtekeningen",
    goal_progress: "{n} van {goal} ({percent}%)",
    goal: "Doel:",
    unverified: "Niet-geverifieerde handtekeningen:",
    unverified_note: "apart geteld: deze bellers hielden hun nummer verborgen.",
    story_heading: "Wat u zult horen",
    chart_heading: "Handtekeningen in de tijd",
    chart_desc: "{total} handtekeningen van {start} tot {end} (UTC).",
    chart_table: "De cijfers als tabel",
    col_period: "Vanaf (UTC)",
    col_new: "Nieuw",
    col_total: "Totaal",
    where_heading: "Waar de handtekeningen vandaan komen",
    countries_caption: "Per land",
    col_country: "Land",
    col_region: "Gewest",
    col_signatures: "Handtekeningen",
    other_countries: "Ander of onbekend",
    regions_caption: "Belgische vaste lijnen, per gewest",
    regions: ["Brussel", "Vlaanderen", "Wallonië"],
    as_of: "Cijfers van {time} UTC; ze volgen de live telling binnen enkele seconden.",
    stats_pending: "Deze cijfers worden berekend; herlaad over enkele seconden.",
    no_signatures: "Nog geen handtekeningen: bel als eerste.",
    embed_heading: "Toon de teller op uw website",
    embed_text: "Plak dit waar de teller moet komen:",
    embed_iframe_text: "Of, als uw website geen scripts toelaat:",
    embed_title: "Live teller van de handtekeningen",
    embed_link: "Teken per telefoon",
    all_campaigns: "Alle campagnes",
    footer: "Een telefonische petitielijn, gedraaid met belteken.",
    not_found_title: "Campagne niet gevonden",
    not_found_text: "Op dit adres is geen campagne.",
};

const FR: Labels = Labels {
    lang: "fr",
    skip: "Aller au contenu",
    language_nav: "Langue",
    call_heading: "Appelez pour signer",
    how: "Appelez, écoutez, et dites votre nom après le bip : c'est ainsi que vous signez la pétition.",
    sip_intro: "Depuis un téléphone ou une application SIP :",
    count_heading: "Signatures à ce jour",
    count_unit: "signatures",
    goal_progress: "{n} sur {goal} ({percent} %)",
    goal: "Objectif :",
    unverified: "Signatures non vérifiées :",
    unverified_note: "comptées à part : ces appelants ont masqué leur numéro.",
    story_heading: "Ce que vous entendrez",
    chart_heading: "Signatures au fil du temps",
    chart_desc: "{total} signatures du {start} au {end} (UTC).",
    chart_table: "Les chiffres en tableau",
    col_period: "À partir de (UTC)",
    col_new: "Nouvelles",
    col_total: "Total",
    where_heading: "D'où viennent les signatures",
    countries_caption: "Par pays",
    col_country: "Pays",
    col_region: "Région",
    col_signatures: "Signatures",
    other_countries: "Autre ou inconnu",
    regions_caption: "Lignes fixes belges, par région",
    regions: ["Bruxelles", "Flandre", "Wallonie"],
    as_of: "Chiffres de {time} UTC ; ils suivent le compteur en direct à quelques secondes près.",
    stats_pending: "Ces chiffres sont en cours de calcul ; rechargez dans quelques secondes.",
    no_signatures: "Pas encore de signatures : soyez le premier à appeler.",
    embed_heading: "Affichez le compteur sur votre site",
    embed_text: "Collez ceci là où le compteur doit apparaître :",
    embed_iframe_text: "Ou, si votre site n'accepte pas de script :",
    embed_title: "Compteur de signatures en direct",
    embed_link: "Signez par téléphone",
    all_campaigns: "Toutes les campagnes",
    footer: "Une ligne de pétition téléphonique, avec belteken.",
    not_found_title: "Campagne introuvable",
    not_found_text: "Il n'y a pas de campagne à cette adresse.",
};

pub(crate) fn labels(language: &str) -> &'static Labels {
    match language {
        "nl" => &NL,
        "fr" => &FR,
        _ => &EN,
    }
}

/// Names of the countries most campaigns see, per page language; others show their code.
fn country_name(code: &str, language: &str) -> Option<&'static str> {
    const NAMES: [(&str, [&str; 3]); 12] = [
        ("BE", ["Belgium", "België", "Belgique"]),
        ("NL", ["Netherlands", "Nederland", "Pays-Bas"]),
        ("FR", ["France", "Frankrijk", "France"]),
        ("DE", ["Germany", "Duitsland", "Allemagne"]),
        ("LU", ["Luxembourg", "Luxemburg", "Luxembourg"]),
        (
            "GB",
            ["United Kingdom", "Verenigd Koninkrijk", "Royaume-Uni"],
        ),
        ("IE", ["Ireland", "Ierland", "Irlande"]),
        ("ES", ["Spain", "Spanje", "Espagne"]),
        ("IT", ["Italy", "Italië", "Italie"]),
        ("PT", ["Portugal", "Portugal", "Portugal"]),
        ("CH", ["Switzerland", "Zwitserland", "Suisse"]),
        ("US", ["United States", "Verenigde Staten", "États-Unis"]),
    ];
    let i = match language {
        "nl" => 1,
        "fr" => 2,
        _ => 0,
    };
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .and_then(|(_, n)| n.get(i).copied())
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
    pub lang: Option<String>,
}

/// The language to show: `?lang=` if the campaign has it, else the first of Accept-Language
/// (by quality) it has, else the campaign's own.
pub(crate) fn pick_language<'a>(
    view: &'a Campaign,
    asked: Option<&str>,
    accept: Option<&str>,
) -> &'a str {
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

/// The `<head>` of a public page and of the embeddable counter; `extra` follows the title.
pub(crate) fn head_of(title: &str, extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            (extra)
            link rel="stylesheet" href="/static/style.css";
            script src="/static/live.js" defer {}
        }
    }
}

/// The document around a page's `<main>` content: `extra_head` goes into `<head>`, `nav`
/// into the header.
fn document(title: &str, extra_head: Markup, nav: Markup, main: Markup, labels: &Labels) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(labels.lang) {
            (head_of(title, extra_head))
            body {
                a class="skip" href="#main" { (labels.skip) }
                header {
                    p class="brand" { a href="/" { "belteken" } }
                    (nav)
                }
                main id="main" tabindex="-1" { (main) }
                footer {
                    p { (labels.footer) " " a href="/" { (labels.all_campaigns) } }
                }
            }
        }
    }
}

fn page(status: StatusCode, cache: &'static str, body: Markup) -> Response {
    (status, [(header::CACHE_CONTROL, cache)], body).into_response()
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
    let main = html! {
        h1 { (labels.all_campaigns) }
        ul class="campaigns" {
            @for c in campaigns.iter() {
                li {
                    a href={ "/c/" (path_segment(&c.slug)) } { (c.title) }
                    " "
                    span class="tally-line" {
                        (state.web.hub.current(&c.slug).signatures) " " (labels.count_unit)
                    }
                }
            }
        }
    };
    let body = document(labels.all_campaigns, html! {}, html! {}, main, labels);
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

/// The transcript's first sentence (up to [`MAX_SUMMARY_CHARS`]), for link previews.
pub(crate) fn first_sentence(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = flat.len();
    let mut chars = flat.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|(_, n)| *n == ' ') {
            end = i + c.len_utf8();
            break;
        }
    }
    let sentence = flat.get(..end).unwrap_or(&flat);
    if sentence.chars().count() <= MAX_SUMMARY_CHARS {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(MAX_SUMMARY_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Longest link-preview description, in characters.
const MAX_SUMMARY_CHARS: usize = 200;

/// `{name}` placeholders replaced in a label.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The campaign's public address: under `public_url` when configured, else a path.
pub(crate) fn campaign_url(state: &AppState, slug: &str) -> String {
    format!(
        "{}/c/{}",
        state.public_url.as_deref().unwrap_or(""),
        path_segment(slug)
    )
}

/// A label with its `{name}` placeholder replaced by markup (the rest is text, escaped).
fn fill_markup(template: &str, name: &str, value: Markup) -> Markup {
    let placeholder = format!("{{{name}}}");
    match template.split_once(&placeholder) {
        Some((before, after)) => html! { (before) (value) (after) },
        None => html! { (template) },
    }
}

/// Open Graph and Twitter card tags. No image: the server draws no PNG.
fn preview_tags(view: &Campaign, language: &str, state: &AppState) -> Markup {
    let (title, transcript) = view.texts(language);
    let summary = first_sentence(transcript);
    let url = state.public_url.is_some().then(|| {
        format!(
            "{}?lang={}",
            campaign_url(state, &view.slug),
            path_segment(language)
        )
    });
    html! {
        meta name="description" content=(summary);
        meta property="og:type" content="website";
        meta property="og:title" content=(title);
        meta property="og:description" content=(summary);
        meta property="og:locale" content=(og_locale(language));
        meta name="twitter:card" content="summary";
        meta name="twitter:title" content=(title);
        meta name="twitter:description" content=(summary);
        @if let Some(url) = &url {
            meta property="og:url" content=(url);
            link rel="canonical" href=(url);
        }
    }
}

/// "nl_BE"-style locale for Open Graph.
fn og_locale(language: &str) -> String {
    match language {
        "nl" => "nl_BE".into(),
        "fr" => "fr_BE".into(),
        "en" => "en_GB".into(),
        other => other.to_owned(),
    }
}

fn language_nav(view: &Campaign, language: &str, labels: &Labels) -> Markup {
    if view.translations.is_empty() {
        return html! {};
    }
    let mut codes = vec![view.language.as_str()];
    codes.extend(view.translations.iter().map(|t| t.language.as_str()));
    html! {
        nav class="languages" aria-label=(labels.language_nav) {
            ul {
                @for code in codes {
                    li {
                        a href={ "?lang=" (code) } lang=(code) hreflang=(code)
                            aria-current=[(code == language).then_some("page")] {
                            (language_name(code))
                        }
                    }
                }
            }
        }
    }
}

fn campaign_page(view: &Campaign, language: &str, state: &AppState) -> Markup {
    let labels = labels(language);
    let (title, transcript) = view.texts(language);
    let counts = state.web.hub.current(&view.slug);
    let events = format!("/api/campaigns/{}/events", path_segment(&view.slug));
    let goal = view.goal.filter(|goal| *goal > 0);
    let main = html! {
        h1 { (title) }
        section class="call" aria-labelledby="call-heading" {
            h2 id="call-heading" { (labels.call_heading) }
            @if let Some(number) = &view.number {
                p class="number" {
                    @match tel_target(number) {
                        Some(target) => { a href=(target) { (number) } }
                        None => { (number) }
                    }
                }
            }
            p { (labels.how) }
            p class="sip" { (labels.sip_intro) " " a href=(view.sip_uri) { (view.sip_uri) } }
        }
        section class="tally" aria-labelledby="count-heading" {
            h2 id="count-heading" { (labels.count_heading) }
            p class="count" role="status" aria-live="polite" aria-atomic="true"
                aria-labelledby="count-heading" {
                span id="count" data-events=(events) { (counts.signatures) }
                " "
                span class="unit" { (labels.count_unit) }
            }
            @if let Some(goal) = goal {
                p class="goal" {
                    label for="progress" { (labels.goal) " " (goal) }
                    " "
                    progress id="progress" max=(goal) value=(counts.signatures.min(goal)) {
                        (counts.signatures)
                    }
                    " "
                    span id="goal-text" data-template=(labels.goal_progress) {
                        (fill(labels.goal_progress, &[
                            ("n", &counts.signatures.to_string()),
                            ("goal", &goal.to_string()),
                            ("percent", &(counts.signatures.saturating_mul(100) / goal).to_string()),
                        ]))
                    }
                }
            }
            p class="unverified" {
                (labels.unverified) " " span id="unverified" { (counts.unverified) }
                " " small { "(" (labels.unverified_note) ")" }
            }
        }
        @if state.store.is_some() {
            (statistics(view, labels, state))
        }
        section class="story" aria-labelledby="story-heading" {
            h2 id="story-heading" { (labels.story_heading) }
            (paragraphs(transcript))
        }
        // The embed code only makes sense with an absolute address to paste on another site.
        @if let Some(base) = state.public_url.as_deref() {
            (embed_code(base, &view.slug, labels))
        }
    };
    document(
        title,
        preview_tags(view, language, state),
        language_nav(view, language, labels),
        main,
        labels,
    )
}

/// The snippets another site pastes to show the counter, shown as text to copy.
fn embed_code(base: &str, slug: &str, labels: &Labels) -> Markup {
    let slug = path_segment(slug);
    let script = html! {
        script src={ (base) "/static/embed.js" } data-campaign=(slug) data-lang=(labels.lang)
            async {}
    };
    let iframe = html! {
        iframe src={ (base) "/embed/" (slug) "?lang=" (labels.lang) } title=(labels.embed_title)
            width="100%" height="190" style="border:0;max-width:24rem" loading="lazy" {}
    };
    html! {
        section class="embed-code" aria-labelledby="embed-heading" {
            h2 id="embed-heading" { (labels.embed_heading) }
            p { label for="embed-snippet" { (labels.embed_text) } }
            textarea id="embed-snippet" readonly rows="3" { (script.into_string()) }
            p { label for="embed-iframe" { (labels.embed_iframe_text) } }
            textarea id="embed-iframe" readonly rows="3" { (iframe.into_string()) }
        }
    }
}

/// "YYYY-MM-DD HH:MM" of a time in seconds (UTC).
fn date_time(secs: u64) -> String {
    let s = store::rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
    // "YYYY-MM-DDTHH:MM:SSZ": ASCII, so these ranges are on character boundaries.
    format!(
        "{} {}",
        s.get(..10).unwrap_or_default(),
        s.get(11..16).unwrap_or_default()
    )
}

/// The chart, the table behind it, and the counts per country and region, from the cache.
fn statistics(view: &Campaign, labels: &Labels, state: &AppState) -> Markup {
    let Some(stats) = state.stats.get(&view.slug) else {
        return html! {
            section class="stats" aria-labelledby="chart-heading" {
                h2 id="chart-heading" { (labels.chart_heading) }
                p class="as-of" { (labels.stats_pending) }
            }
        };
    };
    let as_of = fill_markup(
        labels.as_of,
        "time",
        as_of_time(&store::rfc3339_utc(stats.as_of)),
    );
    if stats.signatures == 0 {
        return html! {
            section class="stats" aria-labelledby="chart-heading" {
                h2 id="chart-heading" { (labels.chart_heading) }
                p class="empty" { (labels.no_signatures) }
                p class="as-of" { (as_of) }
            }
        };
    }
    let points = stats.cumulative();
    // Times alone for the first hours, dates with times for days, dates beyond.
    let width = stats.bucket_secs;
    let x_label = move |t: u64| {
        let s = date_time(t);
        match width {
            w if w <= 600 => s.get(11..).unwrap_or_default().to_owned(),
            w if w < 86_400 => s.get(5..).unwrap_or_default().to_owned(),
            _ => s.get(..10).unwrap_or_default().to_owned(),
        }
    };
    let (start, end) = (
        points.first().map(|p| p.0).unwrap_or(0),
        points.last().map(|p| p.0).unwrap_or(0),
    );
    let desc = fill(
        labels.chart_desc,
        &[
            ("total", &stats.signatures.to_string()),
            ("start", &date_time(start)),
            ("end", &date_time(end)),
        ],
    );
    let chart = chart::LineChart {
        points: &points,
        title: labels.chart_heading,
        description: &desc,
        x_label: &x_label,
        id: "chart",
    }
    .render();
    // The table rows: each bucket with signatures, its new ones and the running total.
    let mut total = 0u64;
    let rows: Vec<(u64, u64, u64)> = stats
        .per_bucket
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            total += n;
            (*n > 0).then(|| (stats.first_bucket + i as u64 * stats.bucket_secs, *n, total))
        })
        .collect();
    let mut countries: Vec<(String, u64)> = stats
        .countries
        .iter()
        .map(|(code, n)| {
            let name = country_name(code, labels.lang).map_or_else(|| code.clone(), str::to_owned);
            (name, *n)
        })
        .collect();
    if stats.other_countries > 0 {
        countries.push((labels.other_countries.to_owned(), stats.other_countries));
    }
    let regions: Vec<(String, u64)> = stats
        .regions
        .iter()
        .zip(labels.regions)
        .map(|((_, n), name)| (name.to_owned(), *n))
        .collect();
    let region_total = regions.iter().map(|r| r.1).sum();
    html! {
        section class="stats" aria-labelledby="chart-heading" {
            h2 id="chart-heading" { (labels.chart_heading) }
            (chart)
            details {
                summary { (labels.chart_table) }
                table class="figures" {
                    thead {
                        tr {
                            th scope="col" { (labels.col_period) }
                            th scope="col" { (labels.col_new) }
                            th scope="col" { (labels.col_total) }
                        }
                    }
                    tbody {
                        @for (from, n, total) in &rows {
                            tr { th scope="row" { (date_time(*from)) } td { (n) } td { (total) } }
                        }
                    }
                }
            }
        }
        section class="where" aria-labelledby="where-heading" {
            h2 id="where-heading" { (labels.where_heading) }
            div class="tables" {
                (share_table(
                    "countries",
                    labels.countries_caption,
                    labels.col_country,
                    labels.col_signatures,
                    &countries,
                    stats.signatures,
                ))
                (share_table(
                    "regions",
                    labels.regions_caption,
                    labels.col_region,
                    labels.col_signatures,
                    &regions,
                    region_total,
                ))
            }
            p class="as-of" { (as_of) }
        }
    }
}

/// "HH:MM:SS" of an RFC 3339 UTC time, as a `<time>` element.
fn as_of_time(rfc3339: &str) -> Markup {
    html! { time datetime=(rfc3339) { (rfc3339.get(11..19).unwrap_or(rfc3339)) } }
}

/// A table of names and counts with a bar per row showing its share of `total`.
fn share_table(
    class: &str,
    caption: &str,
    name_col: &str,
    count_col: &str,
    rows: &[(String, u64)],
    total: u64,
) -> Markup {
    html! {
        table class={ "share " (class) } {
            caption { (caption) }
            thead { tr { th scope="col" { (name_col) } th scope="col" { (count_col) } } }
            tbody {
                @for (name, n) in rows {
                    tr {
                        th scope="row" { (name) }
                        td {
                            span class="n" { (n) }
                            " "
                            // The share out of 100, drawn as an SVG so the CSP needs no inline
                            // style.
                            svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none"
                                aria-hidden="true" {
                                rect width=(n.saturating_mul(100).checked_div(total).unwrap_or(0))
                                    height="8" {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The transcript as `<p>` elements: blank lines separate paragraphs, single line breaks
/// inside one become `<br>`.
fn paragraphs(text: &str) -> Markup {
    let normalized = text.replace("\r\n", "\n");
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut lines: Vec<&str> = Vec::new();
    for line in normalized.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.is_empty() {
            if !lines.is_empty() {
                paragraphs.push(std::mem::take(&mut lines));
            }
        } else {
            lines.push(line);
        }
    }
    html! {
        @for lines in &paragraphs {
            p {
                @for (i, line) in lines.iter().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
    }
}

fn not_found_page() -> Response {
    let labels = &EN;
    let main = html! {
        h1 { (labels.not_found_title) }
        p { (labels.not_found_text) " " a href="/" { (labels.all_campaigns) } }
    };
    let body = document(labels.not_found_title, html! {}, html! {}, main, labels);
    page(StatusCode::NOT_FOUND, "no-store", body)
}

/// Any other path: a JSON 404 under `/api/`, an HTML one elsewhere.
pub(crate) async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::openapi::error(StatusCode::NOT_FOUND, "not found")
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
            paragraphs("One\r\ntwo <b>\n\n\n Three & four \n").into_string(),
            "<p>One<br>two &lt;b&gt;</p><p>Three &amp; four</p>"
        );
        assert_eq!(paragraphs("  \n").into_string(), "");
    }
}
