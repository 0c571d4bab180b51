//! What every API route is made of: its documentation entry ([`ApiRoute`], [`Schema`]), its
//! error body ([`error`]), and the OpenAPI 3.1 document built from the route tables the
//! router mounts (`api::routes`, the console's), so a route cannot be served without being
//! documented. Below every module that serves API routes: it knows none of them.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// The document changes only with a new release; a few minutes of caching is harmless.
pub(crate) const OPENAPI_CACHE: &str = "public, max-age=300";

/// One documented operation.
pub(crate) struct ApiRoute {
    /// The path as the router spells it, e.g. "/api/campaigns/{slug}" (also OpenAPI's syntax).
    pub path: &'static str,
    /// Lower-case HTTP method, e.g. "get".
    pub method: &'static str,
    pub operation_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// Path parameters: name and meaning (all strings).
    pub params: &'static [(&'static str, &'static str)],
    /// Query parameters: name and meaning (all optional strings).
    pub query: &'static [(&'static str, &'static str)],
    /// The Cache-Control of a successful answer, stated in the document.
    pub cache: &'static str,
    /// Whether the caller needs a console session or an API token.
    pub needs_auth: bool,
    pub responses: &'static [ApiResponse],
}

/// One documented answer of an operation.
pub(crate) struct ApiResponse {
    pub status: u16,
    pub description: &'static str,
    /// Media type of the body, e.g. "application/json"; "" for none.
    pub media: &'static str,
    /// The body's JSON Schema, or a `$ref` to one of [`Schema`]s.
    pub schema: fn() -> Value,
}

/// A named schema for `components.schemas`.
pub(crate) struct Schema {
    pub name: &'static str,
    pub schema: fn() -> Value,
}

/// `{"$ref": "#/components/schemas/NAME"}`.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The whole document for these routes and schemas.
pub(crate) fn document(routes: &[&ApiRoute], schemas: &[&Schema]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let mut responses = Map::new();
        for resp in r.responses {
            let mut answer = Map::new();
            answer.insert("description".into(), resp.description.into());
            if resp.status < 300 {
                answer.insert(
                    "headers".into(),
                    json!({ "Cache-Control": {
                        "description": format!("Always `{}`.", r.cache),
                        "schema": { "type": "string" }
                    }}),
                );
            }
            if !resp.media.is_empty() {
                answer.insert(
                    "content".into(),
                    json!({ resp.media: { "schema": (resp.schema)() } }),
                );
            }
            responses.insert(resp.status.to_string(), Value::Object(answer));
        }
        let mut parameters: Vec<Value> = r
            .params
            .iter()
            .map(|(name, description)| {
                json!({ "name": name, "in": "path", "required": true,
                        "description": description, "schema": { "type": "string" } })
            })
            .collect();
        parameters.extend(r.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false,
                    "description": description, "schema": { "type": "string" } })
        }));
        let mut operation = json!({
            "operationId": r.operation_id,
            "tags": [r.tag],
            "summary": r.summary,
            "description": r.description,
            "parameters": parameters,
            "responses": responses,
        });
        let security = if r.needs_auth {
            json!([{ "session": [] }, { "token": [] }])
        } else {
            json!([])
        };
        if let Some(o) = operation.as_object_mut() {
            o.insert("security".into(), security);
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(r.method.to_owned(), operation);
        }
    }
    let mut components = Map::new();
    for s in schemas {
        components.insert(s.name.to_owned(), (s.schema)());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "belteken",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of a belteken phone-petition server: campaigns, their \
    live counts (also as Server-Sent Events), health and metrics. Public endpoints need no \
    credentials and may be cached as their Cache-Control says.",
            "license": { "name": "see the project's repository" },
        },
        "tags": [
            { "name": "public", "description": "Campaigns and their counts; no credentials." },
            { "name": "operations", "description": "Health and metrics for the operators." },
            { "name": "console", "description": "The campaign team's review and figures; \
    a console session (with its CSRF token in `X-CSRF-Token` on POST) or an API token from \
    `belteken admin token create`." },
        ],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::console::auth::SESSION_COOKIE,
                             "description": "A console session (see /console)." },
                "token": { "type": "http", "scheme": "bearer",
                           "description": "An API token." },
            },
        },
    })
}

/// `GET /api/openapi.json`.
/// A JSON error body `{"error": message}`; never cached. Messages are fixed strings of ours,
/// never an internal error's text.
pub(crate) fn error(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
