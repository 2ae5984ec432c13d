//! A POST form that passed the common checks (read-only mode, origin,
//! CSRF), with the signed-in admin and the request headers; every POST
//! handler takes one, so none can forget a check.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::AuthedUser;
use super::respond::refuse;
use super::security::{csrf_ok, same_origin};
use super::state::{AppState, Shared};

pub(super) struct Posted {
    pub(super) user: String,
    pub(super) headers: HeaderMap,
    pub(super) form: HashMap<String, String>,
}

impl axum::extract::FromRequest<Shared> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, st: &Shared) -> Result<Self, Response> {
        let user = match req.extensions().get::<AuthedUser>() {
            Some(AuthedUser(u)) => u.clone(),
            None => return Err(refuse(StatusCode::UNAUTHORIZED, "sign in first")),
        };
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, st)
            .await
            .map_err(IntoResponse::into_response)?;
        match post_guard(st, &headers, &user, &body) {
            Ok(form) => Ok(Self {
                user,
                headers,
                form,
            }),
            Err((status, text)) => Err(refuse(status, text)),
        }
    }
}

fn post_guard(
    st: &AppState,
    headers: &HeaderMap,
    user: &str,
    body: &Bytes,
) -> Result<HashMap<String, String>, (StatusCode, &'static str)> {
    if st.read_only {
        return Err((
            StatusCode::FORBIDDEN,
            "the ops page is in read-only mode; nothing was changed",
        ));
    }
    if !same_origin(headers) {
        tracing::warn!(user, "POST from a foreign origin refused");
        return Err((StatusCode::FORBIDDEN, "cross-origin request refused"));
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    if !csrf_ok(st, headers, user, form.get("csrf").map(String::as_str)) {
        tracing::warn!(user, "POST with missing or stale CSRF token refused");
        return Err((
            StatusCode::FORBIDDEN,
            "missing or stale form token (reload the page and try again); nothing was changed",
        ));
    }
    Ok(form)
}
