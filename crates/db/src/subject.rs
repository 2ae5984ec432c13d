//! What the database holds about one person, for an access request (GDPR
//! Art. 15/20): the account's own columns (never `passwd_hash`,
//! `authenticator` or `login_token`: credentials, not data about the
//! person), their hosts, team, per-app credit. Consent history and terms
//! texts come from `terms`, the admin trail from `audit`.

use mysql_async::prelude::*;
use serde::Serialize;

use crate::DbError;

/// The account row without its credentials.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct UserData {
    pub id: i64,
    pub create_time: i64,
    pub email_addr: String,
    pub name: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub global_prefs: Option<String>,
    pub project_prefs: Option<String>,
    pub teamid: i64,
    pub venue: String,
    pub url: Option<String>,
    pub send_email: i64,
    pub show_hosts: i64,
    pub posts: i64,
    pub signature: Option<String>,
    pub has_profile: i64,
    pub cross_project_id: String,
    pub email_validated: i64,
    pub donated: i64,
    pub previous_email_addr: String,
    pub email_addr_change_time: f64,
}

/// Column list of [`UserData`]; preferences are XML text.
const USER_DATA_COLUMNS: &str = "id, create_time, email_addr, name, country, postal_code, \
    total_credit, expavg_credit, expavg_time, CONVERT(global_prefs USING utf8mb4) AS global_prefs, \
    CONVERT(project_prefs USING utf8mb4) AS project_prefs, teamid, venue, url, send_email, show_hosts, posts, \
    signature, has_profile, cross_project_id, email_validated, donated, previous_email_addr, \
    email_addr_change_time";

pub async fn user_data<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Option<UserData>, DbError> {
    Ok(q.exec_first(
        format!("SELECT {USER_DATA_COLUMNS} FROM user WHERE id = ?"),
        (userid,),
    )
    .await?)
}

/// A computer attached to the account, as the scheduler recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct HostData {
    pub id: i64,
    pub create_time: i64,
    pub rpc_time: i64,
    pub domain_name: Option<String>,
    pub last_ip_addr: Option<String>,
    pub external_ip_addr: Option<String>,
    pub timezone: i64,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub p_vendor: Option<String>,
    pub p_model: Option<String>,
    pub p_ncpus: i64,
    pub p_ngpus: i64,
    pub m_nbytes: f64,
    pub d_total: f64,
    pub product_name: String,
    pub venue: String,
    pub host_cpid: Option<String>,
    pub total_credit: f64,
    pub expavg_credit: f64,
}

pub async fn hosts<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Vec<HostData>, DbError> {
    Ok(q.exec(
        "SELECT id, create_time, rpc_time, domain_name, last_ip_addr, external_ip_addr, \
         timezone, os_name, os_version, p_vendor, p_model, p_ncpus, p_ngpus, m_nbytes, \
         d_total, product_name, venue, host_cpid, total_credit, expavg_credit \
         FROM host WHERE userid = ? ORDER BY id",
        (userid,),
    )
    .await?)
}

/// The team the account belongs to, and whether it founded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamData {
    pub id: i64,
    pub name: String,
    pub founder: bool,
}

/// The account's team (when it has one) and any other team it founded.
pub async fn teams<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    teamid: i64,
) -> Result<Vec<TeamData>, DbError> {
    let rows: Vec<(i64, String, i64)> = q
        .exec(
            "SELECT id, name, userid FROM team WHERE id = ? OR userid = ? ORDER BY id",
            (teamid, userid),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, founder)| TeamData {
            id,
            name,
            founder: founder == userid,
        })
        .collect())
}

/// Credit per application (`credit_user`).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct CreditData {
    pub appid: i64,
    pub credit_type: i64,
    pub njobs: i64,
    pub total: f64,
    pub expavg: f64,
}

pub async fn credit<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Vec<CreditData>, DbError> {
    Ok(q.exec(
        "SELECT appid, credit_type, njobs, total, expavg FROM credit_user \
         WHERE userid = ? ORDER BY appid, credit_type",
        (userid,),
    )
    .await?)
}

/// Accounts an admin may be looking for: exact id, exact email (after
/// ASCII lower-casing, as everywhere) or exact name, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Found {
    pub id: i64,
    pub name: Option<String>,
    pub email_addr: String,
    pub create_time: i64,
    pub deleted: bool,
}

const FOUND_COLUMNS: &str =
    "id, name, email_addr, create_time, COALESCE(authenticator LIKE 'deleted%', 0) AS deleted";

pub async fn find_by_id<Q: Queryable>(q: &mut Q, id: i64) -> Result<Vec<Found>, DbError> {
    Ok(q.exec(
        format!("SELECT {FOUND_COLUMNS} FROM user WHERE id = ?"),
        (id,),
    )
    .await?)
}

pub async fn find_by_email<Q: Queryable>(q: &mut Q, email: &str) -> Result<Vec<Found>, DbError> {
    let email = crate::queries::normalise_email(email);
    let rows: Vec<Found> = q
        .exec(
            format!("SELECT {FOUND_COLUMNS} FROM user WHERE email_addr = ? ORDER BY id"),
            (&email,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|f| crate::queries::same_email(&f.email_addr, &email))
        .collect())
}

pub async fn find_by_name<Q: Queryable>(q: &mut Q, name: &str) -> Result<Vec<Found>, DbError> {
    let rows: Vec<Found> = q
        .exec(
            format!("SELECT {FOUND_COLUMNS} FROM user WHERE name = ? ORDER BY id"),
            (name,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|f| f.name.as_deref() == Some(name))
        .collect())
}

/// Does the current database have this base table? For BOINC's tables
/// this project's schema does not create (forum, messages, ...).
pub async fn table_exists<Q: Queryable>(q: &mut Q, table: &str) -> Result<bool, DbError> {
    let n: Option<i64> = q
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'",
            (table,),
        )
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

/// A forum post the person wrote (BOINC's `post` table).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct PostData {
    pub id: i64,
    pub thread: i64,
    pub timestamp: i64,
    pub modified: i64,
    pub content: String,
}

/// The person's forum posts, or None when the project has no forum tables.
pub async fn forum_posts<Q: Queryable>(
    q: &mut Q,
    userid: i64,
) -> Result<Option<Vec<PostData>>, DbError> {
    if !table_exists(q, "post").await? {
        return Ok(None);
    }
    Ok(Some(
        q.exec(
            "SELECT id, thread, timestamp, modified, content FROM post WHERE user = ? \
             ORDER BY id",
            (userid,),
        )
        .await?,
    ))
}

/// A private message the person sent or received (`private_messages`).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct MessageData {
    pub id: i64,
    pub userid: i64,
    pub senderid: i64,
    pub date: i64,
    pub subject: String,
    pub content: String,
}

/// Messages to or from the person, or None without that table.
pub async fn private_messages<Q: Queryable>(
    q: &mut Q,
    userid: i64,
) -> Result<Option<Vec<MessageData>>, DbError> {
    if !table_exists(q, "private_messages").await? {
        return Ok(None);
    }
    Ok(Some(
        q.exec(
            "SELECT id, userid, senderid, date, subject, content FROM private_messages \
             WHERE userid = ? OR senderid = ? ORDER BY id",
            (userid, userid),
        )
        .await?,
    ))
}
