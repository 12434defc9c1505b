//! The browser app: build-free ES modules and styles embedded in the binary (so a
//! single file deploys everything), or served from `SWITCHBOARD_WEB_DIR` while
//! developing the app without rebuilding.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `(name, content type, body)` of every embedded file.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "tictactoe.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/tictactoe.js"),
    ),
    (
        "switchboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/js/switchboard.js"),
    ),
];

/// `GET /`: the app's page.
pub(super) async fn index(state: State<AppState>) -> Response {
    asset(state, Path("index.html".to_owned())).await
}

/// `GET /app/{file}`: one of the app's files, from the web dir when configured.
pub(super) async fn asset(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((name, content_type, embedded)) = ASSETS.iter().find(|(n, _, _)| *n == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, *content_type),
        // Small, versioned with the binary; revalidate so an upgrade shows at once.
        (header::CACHE_CONTROL, "no-cache"),
    ];
    if let Some(dir) = &st.gw.config.web_dir {
        let path = if *name == "switchboard.js" {
            dir.join("..").join("clients/js/switchboard.js")
        } else {
            dir.join(name)
        };
        return match tokio::fs::read_to_string(&path).await {
            Ok(body) => (headers, body).into_response(),
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "web dir file unreadable");
                StatusCode::NOT_FOUND.into_response()
            }
        };
    }
    (headers, *embedded).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_named_once() {
        let mut names: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|(_, _, body)| !body.is_empty()));
    }
}
