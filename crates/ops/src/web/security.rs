//! The checks and headers every page shares: strict response headers, the
//! session cookie, the CSRF token bound to it and the signed-in admin, and
//! the same-origin test for POSTs.

use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::state::AppState;

const SESSION_COOKIE: &str = "ops_session";

pub(super) async fn security_headers(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    tracing::debug!(%method, path, status = resp.status().as_u16(), "request");
    resp
}

pub(super) fn session_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Give the browser the session `session` (a page for a request that came
/// without one; the CSRF token on it is bound to this session).
pub(super) fn set_session_cookie(resp: &mut Response, session: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
}

fn csrf_mac(st: &AppState, session: &str, user: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&st.csrf_key).expect("any key size");
    mac.update(b"csrf\0");
    mac.update(session.as_bytes());
    mac.update(b"\0");
    mac.update(user.as_bytes());
    mac
}

pub(super) fn csrf_token(st: &AppState, session: &str, user: &str) -> String {
    hex::encode(csrf_mac(st, session, user).finalize().into_bytes())
}

pub(super) fn csrf_ok(st: &AppState, headers: &HeaderMap, user: &str, token: Option<&str>) -> bool {
    let (Some(session), Some(token)) = (session_from(headers), token) else {
        return false;
    };
    let Ok(bytes) = hex::decode(token) else {
        return false;
    };
    csrf_mac(st, &session, user).verify_slice(&bytes).is_ok()
}

/// Defence in depth beside the CSRF token: browsers label cross-site
/// requests. Sec-Fetch-Site is preferred because our no-referrer policy
/// makes Chromium send `Origin: null` even for same-origin form POSTs.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = get(header::ORIGIN.as_str()) else {
        return true;
    };
    if origin == "null" {
        return true;
    }
    let host = get(header::HOST.as_str()).unwrap_or("");
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host)
}
