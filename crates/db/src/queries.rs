//! Every query the RPC server and the ops tools run, parameterized.
//! Each takes anything `Queryable` (a connection or a transaction) so that
//! callers decide what belongs in one transaction.

use mysql_async::prelude::*;
use mysql_async::Params;

use crate::models::{ConsentType, Platform, Team, User};
use crate::DbError;

pub const USER_COLUMNS: &str = "id, create_time, email_addr, name, authenticator, country, \
     postal_code, total_credit, expavg_credit, expavg_time, global_prefs, project_prefs, \
     teamid, venue, url, send_email, show_hosts, posts, has_profile, cross_project_id, \
     passwd_hash, previous_email_addr, email_addr_change_time";

async fn user_where<Q: Queryable>(
    q: &mut Q,
    condition: &str,
    params: impl Into<Params> + Send,
) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM user WHERE {condition} LIMIT 1");
    Ok(q.exec_first(sql, params).await?)
}

/// An email address as people type it, in the form create_account stores
/// it: ASCII lower-case (PHP's strtolower), nothing else. No Unicode case
/// mapping: it would turn look-alikes such as the Kelvin sign into ASCII.
pub fn normalise_email(given: &str) -> String {
    given.to_ascii_lowercase()
}

/// Does a stored address select the account for an address a person gave?
/// Byte for byte after ASCII lower-casing both: never a collation-equal
/// look-alike (trailing space, accent, zero-width or full-width character,
/// non-ASCII case variant), so one person's account is never handed to
/// another whatever the column's collation considers equal.
pub fn same_email(stored: &str, given: &str) -> bool {
    stored.eq_ignore_ascii_case(given)
}

/// The account whose current address is `email` (see `same_email`).
/// Deleted (obfuscated) accounts are never found, here or by key. The
/// column's collation finds the candidates through its index; the exact
/// comparison picks among them.
pub async fn user_by_email<Q: Queryable>(q: &mut Q, email: &str) -> Result<Option<User>, DbError> {
    let email = normalise_email(email);
    let rows: Vec<User> = q
        .exec(
            format!("SELECT {USER_COLUMNS} FROM user WHERE email_addr = ?"),
            (&email,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .find(|u| same_email(&u.email_addr, &email) && !crate::models::is_deleted(u)))
}

/// An account that used `email` before an email change (see `same_email`).
pub async fn user_by_previous_email<Q: Queryable>(
    q: &mut Q,
    email: &str,
) -> Result<Option<User>, DbError> {
    let email = normalise_email(email);
    if email.is_empty() {
        return Ok(None);
    }
    let rows: Vec<User> = q
        .exec(
            format!(
                "SELECT {USER_COLUMNS} FROM user \
                 WHERE previous_email_addr = ? AND previous_email_addr <> '' ORDER BY id"
            ),
            (&email,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .find(|u| same_email(&u.previous_email_addr, &email) && !crate::models::is_deleted(u)))
}

pub async fn user_by_authenticator<Q: Queryable>(
    q: &mut Q,
    auth: &str,
) -> Result<Option<User>, DbError> {
    if auth.is_empty() {
        return Ok(None);
    }
    // Exact: the collation also finds case and trailing-space variants of
    // the key, so every candidate is fetched and the exact one picked (as
    // for emails); the first alone could be a variant stored earlier that
    // hides the account asked for (possible wherever the unique index on
    // the key is missing, e.g. an older schema).
    let rows: Vec<User> = q
        .exec(
            format!("SELECT {USER_COLUMNS} FROM user WHERE authenticator = ?"),
            (auth,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .find(|u| u.authenticator.as_deref() == Some(auth) && !crate::models::is_deleted(u)))
}

pub async fn user_by_id<Q: Queryable>(q: &mut Q, id: i64) -> Result<Option<User>, DbError> {
    user_where(q, "id = ?", (id,)).await
}

pub async fn user_name_taken<Q: Queryable>(
    q: &mut Q,
    name: &str,
    except_userid: i64,
) -> Result<bool, DbError> {
    let n: Option<i64> = q
        .exec_first(
            "SELECT id FROM user WHERE name = ? AND id <> ? LIMIT 1",
            (name, except_userid),
        )
        .await?;
    Ok(n.is_some())
}

/// What create_account writes; every other column gets BOINC's default.
pub struct NewUser<'a> {
    pub create_time: i64,
    pub email_addr: &'a str,
    pub name: &'a str,
    pub authenticator: &'a str,
    pub cross_project_id: &'a str,
    pub passwd_hash: &'a str,
    pub country: &'a str,
    pub show_hosts: i64,
    pub teamid: i64,
}

pub async fn insert_user<Q: Queryable>(q: &mut Q, u: &NewUser<'_>) -> Result<i64, DbError> {
    q.exec_drop(
        "INSERT INTO user (create_time, email_addr, name, authenticator, country, postal_code, \
         total_credit, expavg_credit, expavg_time, global_prefs, project_prefs, teamid, venue, \
         url, send_email, show_hosts, posts, seti_id, seti_nresults, seti_last_result_time, \
         seti_total_cpu, signature, has_profile, cross_project_id, passwd_hash, \
         email_validated, donated) \
         VALUES (?, ?, ?, ?, ?, '', 0, 0, UNIX_TIMESTAMP(), '', '', ?, '', '', 1, ?, 0, 0, 0, \
         0, 0, '', 0, ?, ?, 0, 0)",
        (
            u.create_time,
            u.email_addr,
            u.name,
            u.authenticator,
            u.country,
            u.teamid,
            u.show_hosts,
            u.cross_project_id,
            u.passwd_hash,
        ),
    )
    .await?;
    last_insert_id(q).await
}

async fn last_insert_id<Q: Queryable>(q: &mut Q) -> Result<i64, DbError> {
    let id: Option<i64> = q.query_first("SELECT LAST_INSERT_ID()").await?;
    id.ok_or(DbError::Missing("LAST_INSERT_ID"))
}

pub async fn team_by_name<Q: Queryable>(q: &mut Q, name: &str) -> Result<Option<Team>, DbError> {
    Ok(q.exec_first(
        "SELECT id, userid, name, joinable FROM team WHERE name = ? LIMIT 1",
        (name,),
    )
    .await?)
}

pub async fn team_by_id<Q: Queryable>(q: &mut Q, id: i64) -> Result<Option<Team>, DbError> {
    Ok(q.exec_first(
        "SELECT id, userid, name, joinable FROM team WHERE id = ?",
        (id,),
    )
    .await?)
}

/// Move a user to a team (0 = leave); keeps team.nusers roughly right as
/// BOINC's user_join_team does.
pub async fn set_user_team<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    old_teamid: i64,
    new_teamid: i64,
) -> Result<(), DbError> {
    if old_teamid == new_teamid {
        return Ok(());
    }
    q.exec_drop(
        "UPDATE user SET teamid = ? WHERE id = ?",
        (new_teamid, userid),
    )
    .await?;
    if old_teamid != 0 {
        q.exec_drop(
            "UPDATE team SET nusers = GREATEST(nusers - 1, 0) WHERE id = ?",
            (old_teamid,),
        )
        .await?;
    }
    if new_teamid != 0 {
        q.exec_drop(
            "UPDATE team SET nusers = nusers + 1 WHERE id = ?",
            (new_teamid,),
        )
        .await?;
    }
    Ok(())
}

const CONSENT_TYPE_COLUMNS: &str =
    "id, shortname, description, enabled, project_specific, privacypref";

pub async fn consent_types<Q: Queryable>(q: &mut Q) -> Result<Vec<ConsentType>, DbError> {
    Ok(q.query(format!(
        "SELECT {CONSENT_TYPE_COLUMNS} FROM consent_type ORDER BY id"
    ))
    .await?)
}

/// The consent type named exactly `shortname`, byte for byte. The column's
/// collation (case-, accent- and trailing-space-insensitive) only finds
/// candidates; a look-alike such as `ENROLL ` or `enroll` is no type.
pub async fn consent_type_by_name<Q: Queryable>(
    q: &mut Q,
    shortname: &str,
) -> Result<Option<ConsentType>, DbError> {
    let rows: Vec<ConsentType> = q
        .exec(
            format!("SELECT {CONSENT_TYPE_COLUMNS} FROM consent_type WHERE shortname = ?"),
            (shortname,),
        )
        .await?;
    Ok(exact_type(rows, shortname))
}

/// The row named exactly `shortname` among collation-equal candidates.
pub(crate) fn exact_type(rows: Vec<ConsentType>, shortname: &str) -> Option<ConsentType> {
    rows.into_iter().find(|t| t.shortname == shortname)
}

/// Platforms with a current (non-deprecated) app version, as BOINC's
/// get_project_config lists them.
pub async fn platforms<Q: Queryable>(q: &mut Q) -> Result<Vec<Platform>, DbError> {
    Ok(q.query(
        "SELECT platform.name, platform.user_friendly_name, app_version.plan_class \
             FROM platform, app_version, app \
             WHERE app_version.platformid = platform.id AND app_version.appid = app.id \
               AND app_version.deprecated = 0 AND app.deprecated = 0 \
             GROUP BY platform.name, platform.user_friendly_name, app_version.plan_class \
             ORDER BY platform.name, app_version.plan_class",
    )
    .await?)
}
