//! The consent-types page (`/`): the table with Enable/Disable and
//! PrivacyPref buttons, the add form, the "why can't I delete" note, the
//! audit history and the consent records report; and its two forms.

use askama::Template;
use axum::extract::State;
use axum::http::header::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::report_view::{chart_views, report_note, ChartView};
use crate::consent_records::ConsentReport;
use crate::ops::{validate_shortname, OpsError, DELETE_EXPLANATION};
use crate::time::utc;
use crate::web::auth::AuthedUser;
use crate::web::numbers;
use crate::web::posted::Posted;
use crate::web::respond::{refuse, rendered, unavailable};
use crate::web::security::{csrf_token, session_from};
use crate::web::state::{AppState, Shared};

const HISTORY_ROWS: u64 = 200;

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
    let (types, history) = match (
        st.ops.list().await,
        st.ops.history(None, HISTORY_ROWS).await,
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let view = st.report.view().await;
    let report_note = report_note(&view);
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
                when: utc(h.change_time),
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
    rendered(
        status,
        page.render(),
        new_cookie.then_some(session.as_str()),
    )
}

/// GET /: the page, with the message of a form just done.
pub(in crate::web) async fn page(
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

/// POST /add: a new consent type (disabled).
pub(in crate::web) async fn add(
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

/// POST /set: Enable/Disable or PrivacyPref on/off.
pub(in crate::web) async fn set_flag(
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
