//! Server-rendered HTML pages (they work without JavaScript), the static files, and the 404s.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use std::time::{Duration, UNIX_EPOCH};

use crate::html::{escape, path_segment, tel_target};
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

/// The document around a page's `<main>` content. `title`, `head` (extra `<head>` elements),
/// `nav` (extra header content) and `main` must already be HTML.
fn document(title: &str, head: &str, nav: &str, main: &str, labels: &Labels) -> String {
    format!(
        "<!doctype html>\n\
<html lang=\"{lang}\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n\
{head}\
<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
<script src=\"/static/live.js\" defer></script>\n\
</head>\n\
<body>\n\
<a class=\"skip\" href=\"#main\">{skip}</a>\n\
<header><p class=\"brand\"><a href=\"/\">belteken</a></p>{nav}</header>\n\
<main id=\"main\" tabindex=\"-1\">\n{main}</main>\n\
<footer><p>{footer} <a href=\"/\">{all}</a></p></footer>\n\
</body>\n\
</html>\n",
        lang = labels.lang,
        skip = labels.skip,
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
            "<li><a href=\"/c/{}\">{}</a> <span class=\"tally-line\">{} {}</span></li>",
            path_segment(&c.slug),
            escape(&c.title),
            state.web.hub.current(&c.slug).signatures,
            labels.count_unit
        );
    }
    main.push_str("</ul>\n");
    let body = document(labels.all_campaigns, "", "", &main, labels);
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

/// Open Graph and Twitter card tags. No image: the server draws no PNG.
fn preview_tags(view: &Campaign, language: &str, state: &AppState) -> String {
    let (title, transcript) = view.texts(language);
    let title = escape(title);
    let summary = escape(&first_sentence(transcript));
    let mut head = String::new();
    let _ = writeln!(
        head,
        "<meta name=\"description\" content=\"{summary}\">\n\
<meta property=\"og:type\" content=\"website\">\n\
<meta property=\"og:title\" content=\"{title}\">\n\
<meta property=\"og:description\" content=\"{summary}\">\n\
<meta property=\"og:locale\" content=\"{}\">\n\
<meta name=\"twitter:card\" content=\"summary\">\n\
<meta name=\"twitter:title\" content=\"{title}\">\n\
<meta name=\"twitter:description\" content=\"{summary}\">",
        escape(&og_locale(language))
    );
    if state.public_url.is_some() {
        let url = escape(&format!(
            "{}?lang={}",
            campaign_url(state, &view.slug),
            path_segment(language)
        ));
        let _ = writeln!(
            head,
            "<meta property=\"og:url\" content=\"{url}\">\n<link rel=\"canonical\" href=\"{url}\">"
        );
    }
    head
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

fn language_nav(view: &Campaign, language: &str, labels: &Labels) -> String {
    if view.translations.is_empty() {
        return String::new();
    }
    let mut codes = vec![view.language.as_str()];
    codes.extend(view.translations.iter().map(|t| t.language.as_str()));
    let mut nav = format!(
        "<nav class=\"languages\" aria-label=\"{}\"><ul>",
        labels.language_nav
    );
    for code in codes {
        let name = escape(language_name(code));
        let code_e = escape(code);
        let current = if code == language {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<li><a href=\"?lang={code_e}\" lang=\"{code_e}\" hreflang=\"{code_e}\"{current}>{name}</a></li>"
        );
    }
    nav.push_str("</ul></nav>");
    nav
}

fn campaign_page(view: &Campaign, language: &str, state: &AppState) -> String {
    let labels = labels(language);
    let (title, transcript) = view.texts(language);
    let counts = state.web.hub.current(&view.slug);
    let title = escape(title);
    let mut main = String::new();
    let _ = writeln!(main, "<h1>{title}</h1>");

    // Writing to a String cannot fail, hence the ignored results below.
    let _ = write!(
        main,
        "<section class=\"call\" aria-labelledby=\"call-heading\">\n\
<h2 id=\"call-heading\">{}</h2>\n",
        labels.call_heading
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
        "<p>{}</p>\n<p class=\"sip\">{} <a href=\"{sip}\">{sip}</a></p>\n</section>\n",
        labels.how, labels.sip_intro
    );

    let events = format!("/api/campaigns/{}/events", path_segment(&view.slug));
    let _ = write!(
        main,
        "<section class=\"tally\" aria-labelledby=\"count-heading\">\n\
<h2 id=\"count-heading\">{heading}</h2>\n\
<p class=\"count\" role=\"status\" aria-live=\"polite\" aria-atomic=\"true\" \
aria-labelledby=\"count-heading\"><span id=\"count\" data-events=\"{events}\">{signatures}</span> \
<span class=\"unit\">{unit}</span></p>\n\
{goal}\
<p class=\"unverified\">{unverified} <span id=\"unverified\">{unverified_n}</span> \
<small>({note})</small></p>\n\
</section>\n",
        heading = labels.count_heading,
        unit = labels.count_unit,
        goal = match view.goal {
            Some(goal) if goal > 0 => {
                let percent = (counts.signatures.saturating_mul(100) / goal).to_string();
                format!(
                    "<p class=\"goal\"><label for=\"progress\">{} {goal}</label>\n\
<progress id=\"progress\" max=\"{goal}\" value=\"{}\">{}</progress>\n\
<span id=\"goal-text\" data-template=\"{}\">{}</span></p>\n",
                    labels.goal,
                    counts.signatures.min(goal),
                    counts.signatures,
                    escape(labels.goal_progress),
                    fill(
                        labels.goal_progress,
                        &[
                            ("n", &counts.signatures.to_string()),
                            ("goal", &goal.to_string()),
                            ("percent", &percent),
                        ]
                    )
                )
            }
            _ => String::new(),
        },
        events = escape(&events),
        signatures = counts.signatures,
        unverified = labels.unverified,
        unverified_n = counts.unverified,
        note = labels.unverified_note,
    );

    if state.store.is_some() {
        main.push_str(&statistics(view, labels, state));
    }

    let _ = write!(
        main,
        "<section class=\"story\" aria-labelledby=\"story-heading\">\n\
<h2 id=\"story-heading\">{}</h2>\n{}</section>\n",
        labels.story_heading,
        paragraphs(transcript)
    );

    // The embed code only makes sense with an absolute address to paste on another site.
    if let Some(base) = state.public_url.as_deref() {
        let slug = path_segment(&view.slug);
        let script = format!(
            "<script src=\"{base}/static/embed.js\" data-campaign=\"{slug}\" data-lang=\"{}\" async></script>",
            labels.lang
        );
        let iframe = format!(
            "<iframe src=\"{base}/embed/{slug}?lang={}\" title=\"{}\" width=\"100%\" height=\"190\" \
style=\"border:0;max-width:24rem\" loading=\"lazy\"></iframe>",
            labels.lang, labels.embed_title
        );
        let _ = write!(
            main,
            "<section class=\"embed-code\" aria-labelledby=\"embed-heading\">\n\
<h2 id=\"embed-heading\">{}</h2>\n<p><label for=\"embed-snippet\">{}</label></p>\n\
<textarea id=\"embed-snippet\" readonly rows=\"3\">{}</textarea>\n\
<p><label for=\"embed-iframe\">{}</label></p>\n\
<textarea id=\"embed-iframe\" readonly rows=\"3\">{}</textarea>\n</section>\n",
            labels.embed_heading,
            labels.embed_text,
            escape(&script),
            labels.embed_iframe_text,
            escape(&iframe)
        );
    }

    document(
        &title,
        &preview_tags(view, language, state),
        &language_nav(view, language, labels),
        &main,
        labels,
    )
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
fn statistics(view: &Campaign, labels: &Labels, state: &AppState) -> String {
    let mut out = format!(
        "<section class=\"stats\" aria-labelledby=\"chart-heading\">\n\
<h2 id=\"chart-heading\">{}</h2>\n",
        labels.chart_heading
    );
    let Some(stats) = state.stats.get(&view.slug) else {
        let _ = write!(
            out,
            "<p class=\"as-of\">{}</p>\n</section>\n",
            labels.stats_pending
        );
        return out;
    };
    if stats.signatures == 0 {
        let time = store::rfc3339_utc(stats.as_of);
        let _ = write!(
            out,
            "<p class=\"empty\">{}</p>\n<p class=\"as-of\">{}</p>\n</section>\n",
            labels.no_signatures,
            fill(labels.as_of, &[("time", &as_of_time(&time))])
        );
        return out;
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
    out.push_str(
        &chart::LineChart {
            points: &points,
            title: labels.chart_heading,
            description: &desc,
            x_label: &x_label,
            id: "chart",
        }
        .render(),
    );
    let _ = write!(
        out,
        "\n<details><summary>{}</summary>\n<table class=\"figures\">\n\
<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        labels.chart_table, labels.col_period, labels.col_new, labels.col_total
    );
    let mut total = 0u64;
    for (i, n) in stats.per_bucket.iter().enumerate() {
        total += n;
        if *n == 0 {
            continue;
        }
        let from = stats.first_bucket + i as u64 * stats.bucket_secs;
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{n}</td><td>{total}</td></tr>",
            date_time(from)
        );
    }
    out.push_str("</tbody>\n</table>\n</details>\n</section>\n");

    let _ = write!(
        out,
        "<section class=\"where\" aria-labelledby=\"where-heading\">\n\
<h2 id=\"where-heading\">{}</h2>\n<div class=\"tables\">\n",
        labels.where_heading
    );
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
    out.push_str(&share_table(
        "countries",
        labels.countries_caption,
        labels.col_country,
        labels.col_signatures,
        &countries,
        stats.signatures,
    ));
    let regions: Vec<(String, u64)> = stats
        .regions
        .iter()
        .zip(labels.regions)
        .map(|((_, n), name)| (name.to_owned(), *n))
        .collect();
    let region_total = regions.iter().map(|r| r.1).sum();
    out.push_str(&share_table(
        "regions",
        labels.regions_caption,
        labels.col_region,
        labels.col_signatures,
        &regions,
        region_total,
    ));
    let time = store::rfc3339_utc(stats.as_of);
    let _ = write!(
        out,
        "</div>\n<p class=\"as-of\">{}</p>\n</section>\n",
        fill(labels.as_of, &[("time", &as_of_time(&time))])
    );
    out
}

/// "HH:MM:SS" of an RFC 3339 UTC time, as a `<time>` element.
fn as_of_time(rfc3339: &str) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        escape(rfc3339),
        escape(rfc3339.get(11..19).unwrap_or(rfc3339))
    )
}

/// A table of names and counts with a bar per row showing its share of `total`.
fn share_table(
    class: &str,
    caption: &str,
    name_col: &str,
    count_col: &str,
    rows: &[(String, u64)],
    total: u64,
) -> String {
    let mut out = format!(
        "<table class=\"share {class}\">\n<caption>{caption}</caption>\n\
<thead><tr><th scope=\"col\">{name_col}</th><th scope=\"col\">{count_col}</th></tr></thead>\n<tbody>\n"
    );
    for (name, n) in rows {
        // Bar length out of 100: the share, drawn as an SVG so the CSP needs no inline style.
        let width = n.saturating_mul(100).checked_div(total).unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td><span class=\"n\">{n}</span> \
<svg class=\"bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
<rect width=\"{width}\" height=\"8\"/></svg></td></tr>",
            escape(name)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
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
    let body = document(labels.not_found_title, "", "", &main, labels);
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
            paragraphs("One\r\ntwo <b>\n\n\n Three & four \n"),
            "<p>One<br>\ntwo &lt;b&gt;</p>\n<p>Three &amp; four</p>\n"
        );
        assert_eq!(paragraphs("  \n"), "");
    }
}
