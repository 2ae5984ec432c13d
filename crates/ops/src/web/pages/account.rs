//! The ops page's data-subject requests: find an account (exact id, email
//! or name), see its consent history and the terms versions it accepted,
//! download its export, delete it (mode choice, the account id typed as
//! confirmation, CSRF as the other forms). Every view, export and delete
//! is written to `account_audit` and shown on the page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use boinc_db::account::audit::AuditRow;
use boinc_db::account::erase::Mode;
use boinc_db::account::subject::Found;

use crate::account::{self, AccountError, Query};
use crate::consent_records::{self, RecordsError, SubjectHistory, UserRef};
use crate::time::utc;
use crate::web::auth::AuthedUser;
use crate::web::fetch::{self, Fetch};
use crate::web::posted::Posted;
use crate::web::respond::{query_map, refuse, rendered, unavailable};
use crate::web::security::{csrf_token, session_from};
use crate::web::state::{AppState, Shared};
use crate::web::timeline::timeline;

const RECENT_AUDIT: u64 = 100;

struct AuditLine {
    when: String,
    actor: String,
    userid: i64,
    action: String,
    mode: String,
}

fn lines(rows: Vec<AuditRow>) -> Vec<AuditLine> {
    rows.into_iter()
        .map(|r| AuditLine {
            when: utc(r.action_time),
            actor: r.actor,
            userid: r.userid,
            action: r.action,
            mode: r.mode,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage<'a> {
    user: &'a str,
    by: &'a str,
    q: &'a str,
    searched: bool,
    results: Vec<FoundRow>,
    error: Option<String>,
    audit: Vec<AuditLine>,
}

struct FoundRow {
    id: i64,
    name: String,
    email_addr: String,
    created: String,
    deleted: bool,
}

impl From<Found> for FoundRow {
    fn from(f: Found) -> Self {
        FoundRow {
            id: f.id,
            name: f.name.unwrap_or_default(),
            email_addr: f.email_addr,
            created: utc(f.create_time),
            deleted: f.deleted,
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    user: &'a str,
    csrf: &'a str,
    read_only: bool,
    id: i64,
    /// `None`: no such account (wiped, or never existed).
    history: Option<SubjectHistory>,
    /// The history as a timeline (trusted SVG; `None`: no rows, or drawing
    /// failed, which is logged: the table below it has every row).
    timeline: Option<String>,
    deleted: bool,
    message: Option<&'static str>,
    error: Option<String>,
    audit: Vec<AuditLine>,
}

/// GET /accounts: the search form, its exact matches, the recent audit.
pub(in crate::web) async fn accounts(
    State(st): State<Shared>,
    axum::Extension(AuthedUser(user)): axum::Extension<AuthedUser>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let params = query_map(&uri);
    let by = params.get("by").map(String::as_str).unwrap_or("email");
    let q = params.get("q").map(String::as_str).unwrap_or("");
    let mut error = None;
    let mut results = Vec::new();
    let searched = !q.is_empty();
    if searched {
        let query = match by {
            "id" => q.trim().parse().ok().map(Query::Id),
            "email" => Some(Query::Email(q.to_owned())),
            "name" => Some(Query::Name(q.to_owned())),
            _ => None,
        };
        match query {
            None => error = Some("search by id (a number), email or name".to_owned()),
            Some(query) => match account::find(st.ops.pool(), &query).await {
                Ok(r) => results = r.into_iter().map(FoundRow::from).collect(),
                Err(e) => return unavailable(&e),
            },
        }
    }
    let audit = match account::recent_audit(st.ops.pool(), RECENT_AUDIT).await {
        Ok(a) => lines(a),
        Err(e) => return unavailable(&e),
    };
    let by = match by {
        "id" | "email" | "name" => by,
        _ => "email",
    };
    let page = AccountsPage {
        user: &user,
        by,
        q,
        searched,
        results,
        error,
        audit,
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // The session cookie (SameSite=Strict) marks the links followed from
    // here as this site's own where browsers send no Fetch Metadata.
    let new_session = session_from(&headers)
        .is_none()
        .then(boinc_db::random_hex32);
    rendered(status, page.render(), new_session.as_deref())
}

/// Render one account's page (`history` None: the account is gone).
async fn account_page(
    st: &AppState,
    headers: &HeaderMap,
    user: &str,
    id: i64,
    status: StatusCode,
    message: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let (session, new_session) = match session_from(headers) {
        Some(s) => (s, None),
        None => {
            let s = boinc_db::random_hex32();
            (s.clone(), Some(s))
        }
    };
    let csrf = csrf_token(st, &session, user);
    let pool = st.ops.pool();
    let (history, deleted) = match consent_records::user_history(pool, &UserRef::Id(id)).await {
        Ok(h) => {
            let found = account::find(pool, &Query::Id(id)).await;
            let deleted = found.is_ok_and(|f| f.first().is_some_and(|f| f.deleted));
            (Some(h), deleted)
        }
        Err(RecordsError::UnknownUser(_)) => (None, false),
        Err(e) => return unavailable(&e),
    };
    if history.is_some() {
        if let Err(e) = account::record_view(pool, id, user).await {
            return unavailable(&e);
        }
    }
    let audit = match account::audit_trail(pool, id).await {
        Ok(a) => lines(a),
        Err(e) => return unavailable(&e),
    };
    let status = if history.is_none() && status == StatusCode::OK && message.is_none() {
        StatusCode::NOT_FOUND
    } else {
        status
    };
    let timeline = history.as_ref().and_then(|h| {
        timeline(h)
            .map_err(|e| tracing::error!(userid = id, "{e}"))
            .ok()
            .flatten()
    });
    let page = AccountPage {
        user,
        csrf: &csrf,
        read_only: st.read_only,
        id,
        history,
        timeline,
        deleted,
        message,
        error,
        audit,
    };
    rendered(status, page.render(), new_session.as_deref())
}

/// GET /account?id=N
pub(in crate::web) async fn account(
    State(st): State<Shared>,
    axum::Extension(AuthedUser(user)): axum::Extension<AuthedUser>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let params = query_map(&uri);
    let Some(id) = params.get("id").and_then(|s| s.parse::<i64>().ok()) else {
        return refuse(StatusCode::BAD_REQUEST, "give ?id=ACCOUNT_ID");
    };
    match fetch::classify(&headers, session_from(&headers).is_some()) {
        Fetch::PageView => {}
        Fetch::ForeignNavigation => return open_link(&headers, &user, id),
        Fetch::Subresource => {
            tracing::warn!(
                user,
                userid = id,
                "ops: account page requested as a subresource; refused, not audited"
            );
            return refuse(
                StatusCode::FORBIDDEN,
                "an account is shown only as a page of this site (not an image, frame or script)",
            );
        }
    }
    let message = match params.get("done").map(String::as_str) {
        Some("obfuscate") => Some("Account deleted (obfuscated)."),
        Some("wipe") => Some("Account deleted (wiped)."),
        _ => None,
    };
    account_page(&st, &headers, &user, id, StatusCode::OK, message, None).await
}

#[derive(Template)]
#[template(path = "account_open.html")]
struct OpenLinkPage<'a> {
    user: &'a str,
    id: i64,
}

/// A navigation another site started (or one we cannot tell from it):
/// nothing of the account and no audit row, only a link the admin follows
/// from this site (the session cookie comes with the page, so that
/// follow-up counts even without Fetch Metadata).
fn open_link(headers: &HeaderMap, user: &str, id: i64) -> Response {
    let new_session = session_from(headers).is_none().then(boinc_db::random_hex32);
    rendered(
        StatusCode::OK,
        OpenLinkPage { user, id }.render(),
        new_session.as_deref(),
    )
}

fn form_id(form: &HashMap<String, String>) -> Option<i64> {
    form.get("id").and_then(|s| s.trim().parse().ok())
}

fn account_error(e: &AccountError) -> (StatusCode, String) {
    match e {
        AccountError::Db(err) => {
            tracing::error!("ops: {err}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "database error; nothing was changed (see the server log)".to_owned(),
            )
        }
        AccountError::Output(err) => {
            tracing::error!("ops: export: {err}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the export could not be produced; nothing was recorded (see the server log)"
                    .to_owned(),
            )
        }
        AccountError::UnknownUser(_) => (StatusCode::NOT_FOUND, e.to_string()),
        other => (StatusCode::BAD_REQUEST, other.to_string()),
    }
}

/// POST /account-export: the export as a JSON download (audited).
pub(in crate::web) async fn export(
    State(st): State<Shared>,
    Posted {
        user,
        headers: _,
        form,
    }: Posted,
) -> Response {
    let Some(id) = form_id(&form) else {
        return refuse(StatusCode::BAD_REQUEST, "id must be an account id");
    };
    // Serialised before the export is recorded (see account::export).
    let exported = account::export_staged(
        st.ops.pool(),
        &UserRef::Id(id),
        &user,
        boinc_db::now(),
        |doc| {
            serde_json::to_string_pretty(doc)
                .map(|j| j + "\n")
                .map_err(std::io::Error::other)
        },
    )
    .await;
    match exported {
        Ok((_, json)) => {
            tracing::info!(user, userid = id, "account exported");
            let disposition = format!("attachment; filename=\"account-{id}.json\"");
            let mut resp = (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                json,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => {
            let (status, text) = account_error(&e);
            refuse(status, &text)
        }
    }
}

/// POST /account-delete: erase after the account id was typed again.
pub(in crate::web) async fn delete(
    State(st): State<Shared>,
    Posted {
        user,
        headers,
        form,
    }: Posted,
) -> Response {
    let Some(id) = form_id(&form) else {
        return refuse(StatusCode::BAD_REQUEST, "id must be an account id");
    };
    let Some(mode) = form.get("mode").and_then(|m| Mode::parse(m)) else {
        let text = "choose a mode: obfuscate or wipe; nothing was changed".to_owned();
        return account_page(
            &st,
            &headers,
            &user,
            id,
            StatusCode::BAD_REQUEST,
            None,
            Some(text),
        )
        .await;
    };
    let confirmed = form
        .get("confirm")
        .is_some_and(|c| c.trim() == id.to_string());
    if !confirmed {
        let text = AccountError::NotConfirmed(id).to_string();
        return account_page(
            &st,
            &headers,
            &user,
            id,
            StatusCode::BAD_REQUEST,
            None,
            Some(text),
        )
        .await;
    }
    match account::delete(st.ops.pool(), id, mode, &user).await {
        Ok(o) => {
            tracing::info!(user, userid = id, mode = o.mode, "account deleted");
            let q = serde_urlencoded::to_string([("id", id.to_string()), ("done", o.mode.into())])
                .unwrap_or_default();
            Redirect::to(&format!("account?{q}")).into_response()
        }
        Err(e) => {
            let (status, text) = account_error(&e);
            account_page(&st, &headers, &user, id, status, None, Some(text)).await
        }
    }
}
