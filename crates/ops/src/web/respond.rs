//! Responses every page gives the same way: a rendered template (with a
//! new session cookie when the request had none), a short refusal, and
//! "database unavailable".

use std::collections::HashMap;

use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::security::set_session_cookie;

/// A rendered page as HTML, with a session cookie when the request had
/// none (`new_session`; the CSRF token on the page is bound to it).
pub(super) fn rendered(
    status: StatusCode,
    r: askama::Result<String>,
    new_session: Option<&str>,
) -> Response {
    match r {
        Ok(body) => {
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response();
            if let Some(s) = new_session {
                set_session_cookie(&mut resp, s);
            }
            resp
        }
        Err(e) => {
            tracing::error!("template: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error\n").into_response()
        }
    }
}

pub(super) fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("ops page: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "database unavailable; see the server log\n",
    )
        .into_response()
}

pub(super) fn refuse(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

/// A GET's query parameters (a mangled query string gives none).
pub(super) fn query_map(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}
