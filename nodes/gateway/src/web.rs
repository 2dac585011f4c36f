//! The web app at `/`: the files of its build (`http.web_dir`), served with tower-http's
//! `ServeDir` (which keeps requests inside the folder).
//!
//! A path that names no file gets the app's `index.html`, which routes it in the browser
//! (`/rooms/12`). Hashed assets (`main-5NJ2XMEF.js`: a name ending in `-` and eight or more capital
//! letters and digits) never change, so they are cached for a year, `immutable`; every other answer
//! — `index.html` above all — is `no-cache`, so a new build is seen at once. Paths under `/api/`
//! that no route takes stay JSON 404s. A file with a precompressed sibling (`main-….js.br`,
//! `.gz`, which `scripts/web.sh` writes after the build) is answered with it when the client
//! accepts that encoding. Without a build, `/` answers a short page saying how to make one, and
//! other paths a JSON 404.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// `Cache-Control` of a hashed asset.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else.
const REVALIDATE: &str = "no-cache";

/// The page served when there is no build.
const NO_BUILD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Banter</title></head><body><h1>Banter</h1><p>This node serves the chat API and WebSocket, \
but no web app: build it with <code>make run</code> (or <code>npm ci &amp;&amp; npx ng build</code> \
in <code>web-angular/</code>) and set <code>http.web_dir</code> to its \
<code>dist/banter/browser</code> folder.</p></body></html>";

/// The router of everything that is not the API: the app's files, or the page without a build.
pub fn router(web_dir: &str) -> Router {
    let dir = PathBuf::from(web_dir);
    let built = !web_dir.is_empty() && dir.join("index.html").is_file();
    if built {
        tracing::info!(dir = %dir.display(), "serving the web app");
        // The build ships each text file also compressed (`.br`, `.gz`, made by scripts/web.sh):
        // a client that accepts one gets it, with `Vary: Accept-Encoding`.
        let index = ServeFile::new(dir.join("index.html"))
            .precompressed_br()
            .precompressed_gzip();
        let files = ServeDir::new(&dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(index);
        Router::new()
            .fallback_service(files)
            .layer(axum::middleware::map_response_with_state((), cache_headers))
            .layer(axum::middleware::from_fn(api_stays_json))
    } else {
        if !web_dir.is_empty() {
            tracing::warn!(dir = %dir.display(), "http.web_dir has no index.html: no web app");
        }
        let page = || async {
            let mut r = Html(NO_BUILD).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
            r
        };
        Router::new()
            .route("/", axum::routing::get(page))
            .route("/index.html", axum::routing::get(page))
            .fallback(|| async { ApiError::not_found("no such endpoint") })
    }
}

/// Unknown paths under `/api/` are the API's: a JSON 404, never the app's page.
async fn api_stays_json(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.uri().path().starts_with("/api/") || req.uri().path() == "/api" {
        return ApiError::not_found("no such endpoint").into_response();
    }
    next.run(req).await
}

/// Sets `Cache-Control` by what was asked for (see the module doc).
async fn cache_headers(
    axum::extract::State(()): axum::extract::State<()>,
    uri: axum::http::Uri,
    mut response: Response,
) -> Response {
    if response.status() == StatusCode::OK || response.status() == StatusCode::NOT_MODIFIED {
        let value = if is_hashed(uri.path()) {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        // The same path may be answered compressed or not: caches must key on the encoding.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether a path names a hashed asset: its file stem ends in `-` and at least eight capital
/// letters or digits, as Angular's build names them.
fn is_hashed(path: &str) -> bool {
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    let Some((_, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    hash.len() >= 8
        && hash
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && name.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_known_by_their_names() {
        for hashed in [
            "/main-5NJ2XMEF.js",
            "/styles-ABCDEF12.css",
            "/media/chunk-ZZ34AB78.js",
        ] {
            assert!(is_hashed(hashed), "{hashed}");
        }
        for plain in [
            "/index.html",
            "/",
            "/rooms/12",
            "/favicon.ico",
            "/main-abc12345.js",
            "/a-ABC.js",
        ] {
            assert!(!is_hashed(plain), "{plain}");
        }
    }
}
