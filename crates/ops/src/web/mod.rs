//! The ops web page: the consent-type table with Enable/Disable and
//! PrivacyPref buttons, the add form, the "why can't I delete" note and the
//! audit history, and the consent records report (users per consent state,
//! ENROLL per terms version), rendered from `html_ops/` templates.
//!
//! Security model: admin-only HTTP basic auth (user + bcrypt hash from
//! config.xml); the server refuses to start without them. Every POST needs
//! a CSRF token that is an HMAC of the session cookie and the user under a
//! key made at start-up, so a token from another session or an earlier run
//! is stale. Templates escape everything; responses carry strict headers.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;

mod auth;
pub mod chart;
pub mod numbers;
pub mod report;

use auth::AuthedUser;
pub use auth::{bcrypt_peak, Credentials, BCRYPT_POOL, FAILURE_WINDOW, MAX_FAILURES};
use report::{age_text, ReportCache};

mod account;
mod fetch;

use crate::consent_records::ConsentReport;
use crate::ops::{validate_shortname, ConsentOps, OpsError, DELETE_EXPLANATION};

/// Config keys (inside `<config>` of config.xml) holding the admin login.
pub const USER_KEY: &str = "ops_user";
pub const HASH_KEY: &str = "ops_password_hash";
const SESSION_COOKIE: &str = "ops_session";
const HISTORY_ROWS: u64 = 200;
const CSS: &str = include_str!("../../../../html_ops/static/ops.css");

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to start: no admin credentials configured. Put <{USER_KEY}> and \
         <{HASH_KEY}> (a bcrypt hash, e.g. from `boinc-ops hash-password`) in config.xml"
    )]
    NoCredentials,
    #[error("refusing to start: {0}")]
    BadCredentials(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Show the table and history only; refuse every POST.
    pub read_only: bool,
    /// Required: `serve` refuses to start with `None`.
    pub credentials: Option<Credentials>,
    /// Peers whose `X-Forwarded-For` names the client (config.xml's
    /// `<rpc_trusted_proxies>`, as boinc-rpc reads it): the login
    /// throttle counts that client, not the proxy.
    pub trusted_proxies: HashSet<IpAddr>,
}

struct AppState {
    ops: ConsentOps,
    read_only: bool,
    auth: auth::Gate,
    /// Per-run key: CSRF tokens from an earlier run are stale.
    csrf_key: [u8; 32],
    /// The consent report scans every consent row (seconds on a big
    /// project): computed in the background, one at a time.
    report: Arc<ReportCache>,
}

type Shared = Arc<AppState>;

/// The router; fails when no usable credentials are configured.
pub fn router(ops: ConsentOps, opts: ServeOptions) -> Result<Router, ServeError> {
    Ok(router_with_report(ops, opts)?.0)
}

/// The router and its background report (to stop it with the server).
fn router_with_report(
    ops: ConsentOps,
    opts: ServeOptions,
) -> Result<(Router, Arc<ReportCache>), ServeError> {
    let creds = opts.credentials.ok_or(ServeError::NoCredentials)?;
    let report = ReportCache::new(ops.clone());
    let mut csrf_key = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut csrf_key);
    let state = Arc::new(AppState {
        ops,
        read_only: opts.read_only,
        auth: auth::Gate::new(creds, opts.trusted_proxies),
        csrf_key,
        report: report.clone(),
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/add", post(add))
        .route("/set", post(set_flag))
        .route("/accounts", get(account::accounts))
        .route("/account", get(account::account))
        .route("/account-export", post(account::export))
        .route("/account-delete", post(account::delete))
        .route("/static/ops.css", get(css))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::basic_auth,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state);
    Ok((router, report))
}

/// Serve the ops page on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    ops: ConsentOps,
    opts: ServeOptions,
) -> Result<(), ServeError> {
    serve_until(listener, ops, opts, std::future::pending()).await
}

/// [`serve`] until `shutdown` resolves, then finish in-flight requests.
pub async fn serve_until(
    listener: TcpListener,
    ops: ConsentOps,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let read_only = opts.read_only;
    let (app, report) = router_with_report(ops, opts)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, read_only, "ops page listening");
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // No orphan work: a report in flight is aborted and its query killed
    // before the process may exit.
    report.stop().await;
    if !boinc_db::cancel::wait_for_kills(Duration::from_secs(5)).await {
        tracing::warn!("a cancelled report query may still be running in the database");
    }
    Ok(())
}

async fn security_headers(req: Request, next: Next) -> Response {
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

fn session_from(headers: &HeaderMap) -> Option<String> {
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

fn csrf_mac(st: &AppState, session: &str, user: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&st.csrf_key).expect("any key size");
    mac.update(b"csrf\0");
    mac.update(session.as_bytes());
    mac.update(b"\0");
    mac.update(user.as_bytes());
    mac
}

fn csrf_token(st: &AppState, session: &str, user: &str) -> String {
    hex::encode(csrf_mac(st, session, user).finalize().into_bytes())
}

fn csrf_ok(st: &AppState, headers: &HeaderMap, user: &str, token: Option<&str>) -> bool {
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
fn same_origin(headers: &HeaderMap) -> bool {
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

/// One consent type's chart and the table of the same numbers.
struct ChartView {
    shortname: String,
    /// The type name as an id fragment.
    id: String,
    /// Trusted SVG drawn when the report was computed (`None`: failed).
    svg: Option<String>,
    months: Vec<MonthRow>,
    /// Terms versions first seen inside the chart's months (ENROLL).
    terms: Vec<String>,
}

struct MonthRow {
    label: String,
    consented: String,
    withdrawn: String,
    not_required: String,
    /// "1,234 (56.7%)"
    consenting: String,
}

fn chart_views(records: &ConsentReport, charts: &[chart::RenderedChart]) -> Vec<ChartView> {
    use numbers::{count, count_share};
    records
        .consent_types
        .iter()
        .map(|t| {
            let data = chart::ChartData::of(t, records.users);
            ChartView {
                shortname: t.shortname.clone(),
                id: chart::css_id(&t.shortname),
                svg: charts
                    .iter()
                    .find(|c| c.shortname == t.shortname)
                    .and_then(|c| c.svg.clone()),
                months: t
                    .monthly
                    .iter()
                    .map(|m| MonthRow {
                        label: m.label.clone(),
                        consented: count(m.consented_rows),
                        withdrawn: count(m.withdrawn_rows),
                        not_required: count(m.not_required_rows),
                        consenting: count_share(m.consenting_at_end, records.users),
                    })
                    .collect(),
                terms: data
                    .terms
                    .iter()
                    .filter_map(|m| {
                        let v = t
                            .by_terms_version
                            .iter()
                            .find(|v| v.terms_version_id == Some(m.version))?;
                        Some(format!(
                            "terms v{}: first seen {}",
                            m.version,
                            v.first_seen_text()
                        ))
                    })
                    .collect(),
            }
        })
        .collect()
}

struct TypeRow {
    shortname: String,
    description: String,
    enabled: bool,
    project_specific: bool,
    privacypref: bool,
}

struct HistoryRow {
    when: String,
    actor: String,
    shortname: String,
    action: String,
    old_value: String,
    new_value: String,
}

#[derive(Template)]
#[template(path = "ops.html")]
struct OpsPage<'a> {
    read_only: bool,
    user: &'a str,
    csrf: &'a str,
    types: Vec<TypeRow>,
    history: Vec<HistoryRow>,
    records: Option<ConsentReport>,
    charts: Vec<ChartView>,
    report_note: String,
    message: Option<String>,
    error: Option<String>,
    form_shortname: &'a str,
    form_description: &'a str,
    delete_explanation: &'a str,
}

impl OpsPage<'_> {
    /// "692,458 (69.9%)" for the templates.
    fn share(
        &self,
        part: impl std::borrow::Borrow<i64>,
        whole: impl std::borrow::Borrow<i64>,
    ) -> String {
        numbers::count_share(*part.borrow(), *whole.borrow())
    }

    fn count(&self, n: impl std::borrow::Borrow<i64>) -> String {
        numbers::count(*n.borrow())
    }
}

#[derive(serde::Deserialize, Default)]
struct Done {
    done: Option<String>,
    #[serde(rename = "type")]
    type_name: Option<String>,
}

/// Render the page; issues a session cookie when the request has none.
async fn render(
    st: &AppState,
    headers: &HeaderMap,
    user: &str,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
    form: (&str, &str),
) -> Response {
    let (session, new_cookie) = match session_from(headers) {
        Some(s) => (s, false),
        None => (boinc_db::random_hex32(), true),
    };
    let csrf = csrf_token(st, &session, user);
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!("ops page: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable; see the server log\n",
        )
            .into_response()
    };
    let (types, history) = match (
        st.ops.list().await,
        st.ops.history(None, HISTORY_ROWS).await,
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let view = st.report.view().await;
    let report_note = match (&view.report, view.computing, view.failed) {
        (Some((_, age)), true, _) => {
            format!("{} old; a fresh one is being computed", age_text(*age))
        }
        (Some((_, age)), false, false) => format!("{} old", age_text(*age)),
        (Some((_, age)), false, true) => {
            format!(
                "{} old; computing a fresh one failed (see the server log)",
                age_text(*age)
            )
        }
        (None, true, _) => "computing… (reload in a few seconds)".to_owned(),
        (None, false, _) => "computing it failed (see the server log); reload to retry".to_owned(),
    };
    let records = view.report.map(|(mut records, _)| {
        // Cheap parts fresh on every view: the terms file and the enabled flags.
        records.mark_current(st.ops.terms_file());
        for r in &mut records.consent_types {
            if let Some(t) = types.iter().find(|t| t.shortname == r.shortname) {
                r.enabled = t.enabled != 0;
            }
        }
        records
    });
    let charts = records
        .as_ref()
        .map(|r| chart_views(r, &view.charts))
        .unwrap_or_default();
    let page = OpsPage {
        read_only: st.read_only,
        user,
        csrf: &csrf,
        types: types
            .into_iter()
            .map(|t| TypeRow {
                enabled: t.enabled != 0,
                project_specific: t.project_specific != 0,
                privacypref: t.privacypref != 0,
                shortname: t.shortname,
                description: t.description,
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| HistoryRow {
                when: crate::consent_records::utc(h.change_time),
                actor: h.actor,
                shortname: h.shortname,
                action: h.action,
                old_value: h.old_value,
                new_value: h.new_value,
            })
            .collect(),
        records,
        charts,
        report_note,
        message,
        error,
        form_shortname: form.0,
        form_description: form.1,
        delete_explanation: DELETE_EXPLANATION,
    };
    match page.render() {
        Ok(html) => {
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            if new_cookie {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"
                )) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => {
            tracing::error!("template: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error\n").into_response()
        }
    }
}

async fn page(
    State(st): State<Shared>,
    axum::Extension(AuthedUser(user)): axum::Extension<AuthedUser>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    // Parsed leniently: a mangled query string just shows no message.
    let done: Done = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    // Only fixed texts and a valid type name are reflected into the page.
    let name = done
        .type_name
        .filter(|n| validate_shortname(n).is_ok())
        .unwrap_or_default();
    let message = match done.done.as_deref() {
        Some("added") => Some(format!(
            "Added consent type {name} (disabled; enable it when ready)."
        )),
        Some("enable") => Some(format!("Enabled {name}.")),
        Some("disable") => Some(format!("Disabled {name}.")),
        Some("privacypref_on") => Some(format!("PrivacyPref turned on for {name}.")),
        Some("privacypref_off") => Some(format!("PrivacyPref turned off for {name}.")),
        Some("unchanged") => Some(format!("{name} already had that setting; nothing changed.")),
        _ => None,
    };
    render(
        &st,
        &headers,
        &user,
        StatusCode::OK,
        message,
        None,
        ("", ""),
    )
    .await
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn not_found(method: Method) -> Response {
    if method == Method::POST {
        // e.g. someone trying /delete: there is no such operation.
        (
            StatusCode::NOT_FOUND,
            format!("no such operation. {DELETE_EXPLANATION}\n"),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}

fn refuse(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

/// A POST form that passed the common checks (read-only mode, origin,
/// CSRF), with the signed-in admin and the request headers; every POST
/// handler takes one, so none can forget a check.
struct Posted {
    user: String,
    headers: HeaderMap,
    form: HashMap<String, String>,
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

fn error_status(e: &OpsError) -> StatusCode {
    match e {
        OpsError::InvalidShortname(..) | OpsError::InvalidDescription(_) => StatusCode::BAD_REQUEST,
        OpsError::Duplicate(_) => StatusCode::CONFLICT,
        OpsError::UnknownType(_) => StatusCode::NOT_FOUND,
        OpsError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_text(e: &OpsError) -> String {
    match e {
        OpsError::Db(err) => {
            tracing::error!("ops: {err}");
            "database error; nothing was changed (see the server log)".to_owned()
        }
        other => other.to_string(),
    }
}

fn done_url(what: &str, name: &str) -> String {
    let q = serde_urlencoded::to_string([("done", what), ("type", name)]).unwrap_or_default();
    format!("./?{q}")
}

async fn add(
    State(st): State<Shared>,
    Posted {
        user,
        headers,
        form,
    }: Posted,
) -> Response {
    let name = form.get("shortname").map(String::as_str).unwrap_or("");
    let desc = form.get("description").map(String::as_str).unwrap_or("");
    match st.ops.add(&user, name, desc).await {
        Ok(ct) => Redirect::to(&done_url("added", &ct.shortname)).into_response(),
        Err(e) => {
            let status = error_status(&e);
            let text = error_text(&e);
            render(&st, &headers, &user, status, None, Some(text), (name, desc)).await
        }
    }
}

async fn set_flag(
    State(st): State<Shared>,
    Posted {
        user,
        headers,
        form,
    }: Posted,
) -> Response {
    let name = form.get("shortname").map(String::as_str).unwrap_or("");
    let on = match form.get("value").map(String::as_str) {
        Some("on") => true,
        Some("off") => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "value must be on or off"),
    };
    let (result, action) = match form.get("field").map(String::as_str) {
        Some("enabled") => (
            st.ops.set_enabled(&user, name, on).await,
            if on { "enable" } else { "disable" },
        ),
        Some("privacypref") => (
            st.ops.set_privacypref(&user, name, on).await,
            if on {
                "privacypref_on"
            } else {
                "privacypref_off"
            },
        ),
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "field must be enabled or privacypref",
            )
        }
    };
    match result {
        Ok(c) if c.changed => {
            Redirect::to(&done_url(action, &c.consent_type.shortname)).into_response()
        }
        Ok(c) => Redirect::to(&done_url("unchanged", &c.consent_type.shortname)).into_response(),
        Err(e) => {
            let status = error_status(&e);
            let text = error_text(&e);
            render(&st, &headers, &user, status, None, Some(text), ("", "")).await
        }
    }
}
