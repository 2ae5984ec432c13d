//! Data-subject requests for admins, shared by the CLI and the ops page:
//! find an account, export everything held about the person (access
//! request, `export`), erase the account (erasure request). Every export and
//! erase is recorded in `account_audit`. The SQL lives in
//! `boinc_db::{account::subject, account::erase, account::audit}`; this module picks the account.

use boinc_db::account::audit::{self, Action, AuditRow};
use boinc_db::account::erase::{self, Mode, Outcome};
use boinc_db::account::subject::{self, Found};
use boinc_db::mysql_async::Pool;

mod export;
mod resolve;

pub use resolve::{resolve, resolve_on, AccountError};

pub use export::{
    export, export_staged, About, ConsentPart, Export, PartAbout, EXPORT_DOCUMENT,
    EXPORT_NOT_INCLUDED,
};

/// What `find` looks for: exact matches only.
#[derive(Debug, Clone)]
pub enum Query {
    Id(i64),
    Email(String),
    Name(String),
}

pub async fn find(pool: &Pool, q: &Query) -> Result<Vec<Found>, AccountError> {
    let mut conn = pool.get_conn().await?;
    Ok(match q {
        Query::Id(id) => subject::find_by_id(&mut conn, *id).await?,
        Query::Email(e) => subject::find_by_email(&mut conn, e).await?,
        Query::Name(n) => subject::find_by_name(&mut conn, n).await?,
    })
}

/// Erase account `userid` (see `boinc_db::account::erase`).
pub async fn delete(
    pool: &Pool,
    userid: i64,
    mode: Mode,
    actor: &str,
) -> Result<Outcome, AccountError> {
    let mut conn = pool.get_conn().await?;
    Ok(erase::erase(&mut conn, userid, mode, actor).await?)
}

pub async fn audit_trail(pool: &Pool, userid: i64) -> Result<Vec<AuditRow>, AccountError> {
    let mut conn = pool.get_conn().await?;
    Ok(audit::for_user(&mut conn, userid).await?)
}

pub async fn recent_audit(pool: &Pool, limit: u64) -> Result<Vec<AuditRow>, AccountError> {
    let mut conn = pool.get_conn().await?;
    Ok(audit::recent(&mut conn, limit).await?)
}

/// Record that an admin looked at an account (ops page).
pub async fn record_view(pool: &Pool, userid: i64, actor: &str) -> Result<(), AccountError> {
    let mut conn = pool.get_conn().await?;
    audit::record(&mut conn, actor, userid, Action::View, "", boinc_db::now()).await?;
    Ok(())
}
