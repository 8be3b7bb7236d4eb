//! The log viewer: a single-page app compiled into the binary.
//!
//! `GET /` and `GET /events/{id}` answer the same page (the app reads the
//! path, so a permanent link to an event opens straight to it); its files
//! are under `/assets/<version>/...`, where the version is a hash of every
//! asset, so they can be cached for good and a new binary is never served
//! stale files. The page is hand-written HTML, CSS and JavaScript modules in
//! `server/web/`: nothing to build. Every answer carries a strict Content
//! Security Policy (scripts and styles from this origin only).
//!
//! This module serves bytes; it must never read the store or hold a token:
//! the app signs in and reads through the `/v1` API like any client.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::extract::ApiPath;

struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            bytes: include_bytes!(concat!("../web/", $name)),
            content_type: $ct,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("util.js", JS),
    asset!("filter.js", JS),
    asset!("table.js", JS),
    asset!("detail.js", JS),
    asset!("jsonview.js", JS),
    asset!("overview.js", JS),
    asset!("exports.js", JS),
    asset!("live.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX_HTML: &str = include_str!("../web/index.html");

/// Scripts, styles, fonts and images from this origin only; `fetch` to this
/// origin only; no plugins, no framing, no `<base>` tricks.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Hash of every asset's name and bytes (FNV-1a, 64 bits): changes
/// whenever any file changes, which is all a cache-busting version needs.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for a in ASSETS {
            for &b in a.name.as_bytes().iter().chain(a.bytes) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    })
}

fn index_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| INDEX_HTML.replace("{{ASSETS}}", &format!("/assets/{}", version())))
}

fn with_security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn page() -> Response {
    with_security_headers(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // Always revalidated: it names the current asset version.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            index_html(),
        )
            .into_response(),
    )
}

async fn event_page(ApiPath(_id): ApiPath<String>) -> Response {
    page().await
}

async fn asset(ApiPath((v, name)): ApiPath<(String, String)>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return with_security_headers(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such asset",
            )
                .into_response(),
        );
    };
    // A page from an older binary may still ask for its version: it gets
    // today's file, not cached, rather than a broken page.
    let cache = if v == version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    with_security_headers(
        (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, cache),
            ],
            a.bytes,
        )
            .into_response(),
    )
}

/// The viewer's routes; they need no token (the app asks for one).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/events/{id}", get(event_page))
        .route("/assets/{version}/{name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_versioned_assets_it_loads() {
        let page = index_html();
        assert!(!page.contains("{{ASSETS}}"));
        let prefix = format!("/assets/{}/", version());
        for needed in ["app.css", "app.js", "favicon.svg"] {
            assert!(page.contains(&format!("{prefix}{needed}")), "{needed}");
        }
    }

    #[test]
    fn every_module_an_asset_imports_is_served() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .split("from './")
                    .nth(1)
                    .and_then(|t| t.split('\'').next())
                    .unwrap_or_else(|| panic!("{}: relative import expected: {line}", a.name));
                assert!(
                    ASSETS.iter().any(|b| b.name == target),
                    "{} imports {target}, which is not served",
                    a.name
                );
            }
        }
    }
}
