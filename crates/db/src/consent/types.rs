//! Consent-type administration queries (the ops tools) and the audit table
//! `consent_type_audit`. All parameterized; each takes anything `Queryable`
//! so the caller puts a change and its audit row in one transaction.
//! There is deliberately no delete: consent types are never removed.

use mysql_async::prelude::*;

use crate::models::ConsentType;
use crate::DbError;

const COLUMNS: &str = "id, shortname, description, enabled, project_specific, privacypref";

/// Lock a type's row for the rest of the transaction (read-modify-write).
/// Exact name, byte for byte, as `queries::consent_type_by_name`.
pub async fn by_name_for_update<Q: Queryable>(
    q: &mut Q,
    shortname: &str,
) -> Result<Option<ConsentType>, DbError> {
    let rows: Vec<ConsentType> = q
        .exec(
            format!("SELECT {COLUMNS} FROM consent_type WHERE shortname = ? FOR UPDATE"),
            (shortname,),
        )
        .await?;
    Ok(crate::queries::exact_type(rows, shortname))
}

pub async fn by_id<Q: Queryable>(q: &mut Q, id: i64) -> Result<Option<ConsentType>, DbError> {
    Ok(q.exec_first(
        format!("SELECT {COLUMNS} FROM consent_type WHERE id = ?"),
        (id,),
    )
    .await?)
}

/// Insert a project-specific type as BOINC's ops page does: disabled,
/// project_specific=1, privacypref=0. Returns the new id.
pub async fn insert<Q: Queryable>(
    q: &mut Q,
    shortname: &str,
    description: &str,
) -> Result<i64, DbError> {
    q.exec_drop(
        "INSERT INTO consent_type (shortname, description, enabled, project_specific, \
         privacypref) VALUES (?, ?, 0, 1, 0)",
        (shortname, description),
    )
    .await?;
    let id: Option<i64> = q.query_first("SELECT LAST_INSERT_ID()").await?;
    id.ok_or(DbError::Missing("LAST_INSERT_ID"))
}

pub async fn set_enabled<Q: Queryable>(q: &mut Q, id: i64, on: bool) -> Result<(), DbError> {
    q.exec_drop(
        "UPDATE consent_type SET enabled = ? WHERE id = ?",
        (i64::from(on), id),
    )
    .await?;
    Ok(())
}

pub async fn set_privacypref<Q: Queryable>(q: &mut Q, id: i64, on: bool) -> Result<(), DbError> {
    q.exec_drop(
        "UPDATE consent_type SET privacypref = ? WHERE id = ?",
        (i64::from(on), id),
    )
    .await?;
    Ok(())
}

/// One row of `consent_type_audit`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub change_time: i64,
    pub actor: String,
    pub consent_type_id: i64,
    pub shortname: String,
    pub action: String,
    pub old_value: String,
    pub new_value: String,
}

pub struct NewAudit<'a> {
    pub change_time: i64,
    pub actor: &'a str,
    pub consent_type_id: i64,
    pub shortname: &'a str,
    pub action: &'a str,
    pub old_value: &'a str,
    pub new_value: &'a str,
}

pub async fn insert_audit<Q: Queryable>(q: &mut Q, a: &NewAudit<'_>) -> Result<(), DbError> {
    q.exec_drop(
        "INSERT INTO consent_type_audit (change_time, actor, consent_type_id, shortname, \
         action, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            a.change_time,
            a.actor,
            a.consent_type_id,
            a.shortname,
            a.action,
            a.old_value,
            a.new_value,
        ),
    )
    .await?;
    Ok(())
}

const AUDIT_COLUMNS: &str =
    "id, change_time, actor, consent_type_id, shortname, action, old_value, new_value";

/// Newest first; `shortname` limits it to one type (exact name: the
/// collation match finds candidates through the index, the binary
/// comparison drops look-alikes), `limit` caps the rows.
pub async fn audit_history<Q: Queryable>(
    q: &mut Q,
    shortname: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, DbError> {
    Ok(match shortname {
        Some(name) => {
            q.exec(
                format!(
                    "SELECT {AUDIT_COLUMNS} FROM consent_type_audit WHERE shortname = ? \
                     AND CAST(shortname AS BINARY) = CAST(? AS BINARY) ORDER BY id DESC LIMIT ?"
                ),
                (name, name, limit),
            )
            .await?
        }
        None => {
            q.exec(
                format!("SELECT {AUDIT_COLUMNS} FROM consent_type_audit ORDER BY id DESC LIMIT ?"),
                (limit,),
            )
            .await?
        }
    })
}
