//! The predefined consent types (ENROLL, STATSEXPORT) and the check that
//! `boinc-ops db upgrade` makes for a `consent_type` table that lost them.
//!
//! The no-delete trigger cannot catch `TRUNCATE consent_type` (TRUNCATE
//! fires no DELETE triggers, and with `foreign_key_checks=0` the foreign
//! key from `consent` does not stop it either). Afterwards every consent
//! row points at a type that no longer exists, and a type added later could
//! silently take over their ids. The upgrade therefore recreates a missing
//! predefined type, under its old id and with its last flags when the audit
//! trail records them (so the consent rows that were its own are its own
//! again), and otherwise under an id above every id still referenced, so no
//! orphaned row is adopted by the wrong type. It also counts the consent
//! rows left pointing at nothing.

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use crate::consent::types::{insert_audit, NewAudit};
use crate::DbError;

/// A consent type every installation has (sql/content.sql creates them).
pub struct Predefined {
    pub shortname: &'static str,
    pub description: &'static str,
    pub privacypref: bool,
}

/// Must match sql/content.sql (a unit test checks it).
pub const PREDEFINED: [Predefined; 2] = [
    Predefined {
        shortname: "ENROLL",
        description: "General terms-of-use for this BOINC project.",
        privacypref: false,
    },
    Predefined {
        shortname: "STATSEXPORT",
        description:
            "Do you consent to exporting your data to BOINC statistics aggregation Web sites?",
        privacypref: true,
    },
];

/// Audit actor of a recreated type.
pub const RESTORE_ACTOR: &str = "boinc-ops db upgrade";

/// A predefined type that was missing and has been recreated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub shortname: &'static str,
    pub id: i64,
    /// The id (and flags) came from the audit trail; otherwise a fresh id
    /// and the defaults (disabled).
    pub from_audit: bool,
    pub enabled: bool,
    pub privacypref: bool,
}

/// Consent rows whose `consent_type_id` names no consent type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    pub consent_type_id: i64,
    pub rows: i64,
    /// The name the audit trail last recorded for that id, if any.
    pub audit_name: Option<String>,
}

/// What [`restore_missing`] did.
#[derive(Debug, Default)]
pub struct Missing {
    /// Lost types recreated (the operator must look: exit status 3).
    pub restored: Vec<Restored>,
    /// Types the table never had, as far as anything tells: added as
    /// content.sql adds them (disabled), with an audit row, nothing to say.
    pub added: Vec<&'static str>,
}

/// Put back every predefined type missing from an existing `consent_type`
/// table (exact names: a look-alike such as `enroll` does not count).
///
/// A type counts as lost (recreated, loudly) when anything shows the
/// table lost rows: the audit trail names it, or consent rows or audit
/// rows name a type id that no longer exists. With no such trace the table
/// simply never had it (a project that predates it, or whose table was made
/// without sql/content.sql): it is added as a fresh install adds it.
pub async fn restore_missing(conn: &mut Conn) -> Result<Missing, DbError> {
    let mut out = Missing::default();
    let mut lost_rows: Option<bool> = None;
    for p in &PREDEFINED {
        let present: Vec<(i64, String)> = conn
            .exec(
                "SELECT id, shortname FROM consent_type WHERE shortname = ?",
                (p.shortname,),
            )
            .await?;
        if present.iter().any(|(_, n)| n == p.shortname) {
            continue;
        }
        if let Some((id, other)) = present.first() {
            return Err(DbError::Schema(format!(
                "consent type {} is missing and cannot be recreated: type {id} ({other:?}) \
                 takes its name under the column's collation; rename that type, then run \
                 the upgrade again",
                p.shortname
            )));
        }
        let lost = match lost_rows {
            Some(l) => l,
            None => *lost_rows.insert(table_lost_rows(conn).await?),
        };
        if !lost && !audit_names(conn, p.shortname).await? {
            add_fresh(conn, p).await?;
            out.added.push(p.shortname);
            continue;
        }
        if out.restored.is_empty() {
            skip_referenced_ids(conn).await?;
        }
        out.restored.push(restore_one(conn, p).await?);
    }
    Ok(out)
}

/// Does anything name a consent type id that is gone (consent rows, or the
/// audit trail)? Then the table lost rows, e.g. to TRUNCATE.
async fn table_lost_rows(conn: &mut Conn) -> Result<bool, DbError> {
    let n: Option<i64> = conn
        .query_first(
            "SELECT (SELECT COUNT(*) FROM consent c \
                     WHERE NOT EXISTS (SELECT 1 FROM consent_type t WHERE t.id = c.consent_type_id)) \
                  + (SELECT COUNT(*) FROM consent_type_audit a \
                     WHERE NOT EXISTS (SELECT 1 FROM consent_type t WHERE t.id = a.consent_type_id))",
        )
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

/// Does the audit trail name `shortname` exactly?
async fn audit_names(conn: &mut Conn, shortname: &str) -> Result<bool, DbError> {
    let names: Vec<String> = conn
        .exec(
            "SELECT DISTINCT shortname FROM consent_type_audit WHERE shortname = ?",
            (shortname,),
        )
        .await?;
    Ok(names.iter().any(|n| n == shortname))
}

/// Add a type the table never had, as sql/content.sql would (disabled),
/// and record it in the audit trail, in one transaction.
async fn add_fresh(conn: &mut Conn, p: &Predefined) -> Result<(), DbError> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.exec_drop(
        "INSERT INTO consent_type (shortname, description, enabled, project_specific, \
         privacypref) VALUES (?, ?, 0, 0, ?)",
        (p.shortname, p.description, i64::from(p.privacypref)),
    )
    .await?;
    let id = tx
        .last_insert_id()
        .and_then(|i| i64::try_from(i).ok())
        .ok_or(DbError::Missing("consent_type id"))?;
    insert_audit(
        &mut tx,
        &NewAudit {
            change_time: crate::now(),
            actor: RESTORE_ACTOR,
            consent_type_id: id,
            shortname: p.shortname,
            action: "add",
            old_value: "",
            new_value: "predefined type the table lacked (no trace of an earlier one)",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The table lost rows: from now on a fresh id (for a type recreated
/// without an audit record, or added later) must not be one that orphaned
/// consent rows or the audit trail still name, or those rows would be
/// attributed to the wrong type. TRUNCATE reset the counter to 1.
async fn skip_referenced_ids(conn: &mut Conn) -> Result<(), DbError> {
    let top: Option<i64> = conn
        .query_first(
            "SELECT GREATEST(COALESCE((SELECT MAX(consent_type_id) FROM consent), 0), \
             COALESCE((SELECT MAX(consent_type_id) FROM consent_type_audit), 0), \
             COALESCE((SELECT MAX(id) FROM consent_type), 0))",
        )
        .await?;
    // DDL takes no placeholders; this is an integer we computed.
    conn.query_drop(format!(
        "ALTER TABLE consent_type AUTO_INCREMENT = {}",
        top.unwrap_or(0) + 1
    ))
    .await?;
    Ok(())
}

async fn restore_one(conn: &mut Conn, p: &Predefined) -> Result<Restored, DbError> {
    // The audit trail, oldest first, for exactly this name.
    let audit: Vec<(i64, String, String, String)> = conn
        .exec(
            "SELECT consent_type_id, shortname, action, new_value FROM consent_type_audit \
             WHERE shortname = ? ORDER BY id",
            (p.shortname,),
        )
        .await?;
    let audit: Vec<_> = audit
        .into_iter()
        .filter(|(_, n, _, _)| n == p.shortname)
        .collect();
    let old_id = match audit.last() {
        Some((id, ..)) => {
            let taken: Option<i64> = conn
                .exec_first("SELECT id FROM consent_type WHERE id = ?", (*id,))
                .await?;
            taken.is_none().then_some(*id)
        }
        None => None,
    };
    let (mut enabled, mut privacypref) = (false, p.privacypref);
    if old_id.is_some() {
        for (_, _, action, _) in &audit {
            match action.as_str() {
                "enable" => enabled = true,
                "disable" => enabled = false,
                "privacypref_on" => privacypref = true,
                "privacypref_off" => privacypref = false,
                _ => {}
            }
        }
    }
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.exec_drop(
        "INSERT INTO consent_type (id, shortname, description, enabled, project_specific, \
         privacypref) VALUES (?, ?, ?, ?, 0, ?)",
        (
            old_id,
            p.shortname,
            p.description,
            i64::from(enabled),
            i64::from(privacypref),
        ),
    )
    .await?;
    let id = match old_id {
        Some(id) => id,
        None => tx
            .last_insert_id()
            .and_then(|i| i64::try_from(i).ok())
            .ok_or(DbError::Missing("consent_type id"))?,
    };
    insert_audit(
        &mut tx,
        &NewAudit {
            change_time: crate::now(),
            actor: RESTORE_ACTOR,
            consent_type_id: id,
            shortname: p.shortname,
            action: "restore",
            old_value: "",
            new_value: if old_id.is_some() {
                "recreated with its id and flags from the audit trail"
            } else {
                "recreated with a new id, disabled"
            },
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Restored {
        shortname: p.shortname,
        id,
        from_audit: old_id.is_some(),
        enabled,
        privacypref,
    })
}

/// Consent rows pointing at a consent type that does not exist, per id.
pub async fn dangling_consent_rows<Q: Queryable>(q: &mut Q) -> Result<Vec<Dangling>, DbError> {
    let rows: Vec<(i64, i64)> = q
        .query(
            "SELECT c.consent_type_id, COUNT(*) FROM consent c \
             LEFT JOIN consent_type t ON t.id = c.consent_type_id \
             WHERE t.id IS NULL GROUP BY c.consent_type_id ORDER BY c.consent_type_id",
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (consent_type_id, n) in rows {
        let audit_name: Option<String> = q
            .exec_first(
                "SELECT shortname FROM consent_type_audit WHERE consent_type_id = ? \
                 ORDER BY id DESC LIMIT 1",
                (consent_type_id,),
            )
            .await?;
        out.push(Dangling {
            consent_type_id,
            rows: n,
            audit_name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_matches_content_sql() {
        let sql = crate::schema::CONTENT_SQL;
        for p in &PREDEFINED {
            let row = format!(
                "'{}', '{}', 0, 0, {}",
                p.shortname,
                p.description,
                i64::from(p.privacypref)
            );
            assert!(sql.contains(&row), "content.sql lacks {row}");
        }
    }
}
