//! A user's current consent of a type is their latest row: the greatest
//! `consent_time`, a same-second tie won by the greater id (the later
//! insert), as BOINC's `latest_consent` view does once `db upgrade` has
//! fixed it. Every statement that needs "the latest row" takes its SQL
//! from here; code that folds a history in Rust reads it in
//! [`oldest_first`] order and keeps the last row.

use mysql_async::prelude::*;

use crate::models::{Consent, ConsentType};
use crate::DbError;

/// ORDER BY of a history, oldest first (the last row per user and type is
/// the latest one); `prefix`: "" or the table alias with its dot ("c.").
pub fn oldest_first(prefix: &str) -> String {
    format!("{prefix}consent_time, {prefix}id")
}

/// ORDER BY that puts the latest row first, for `consent` aliased `c`.
const NEWEST_FIRST: &str = "c.consent_time DESC, c.id DESC";

const CONSENT_COLUMNS: &str =
    "id, userid, consent_type_id, consent_time, consent_flag, consent_not_required, source";

/// SQL: a scalar subquery, the flag of the latest row of type `type_expr`
/// for the user `user_expr` (NULL without a row). One index lookup
/// (`consent(userid, consent_type_id, consent_time)`).
pub fn flag_sql(user_expr: &str, type_expr: &str) -> String {
    format!(
        "(SELECT c.consent_flag FROM consent c \
           WHERE c.userid = {user_expr} AND c.consent_type_id = {type_expr} \
           ORDER BY {NEWEST_FIRST} LIMIT 1)"
    )
}

/// SQL: the time of the latest row, from the index alone (no row lookup):
/// the greatest time is the latest row's time whichever id wins a tie.
pub fn time_sql(user_expr: &str, type_expr: &str) -> String {
    format!(
        "(SELECT MAX(c.consent_time) FROM consent c \
           WHERE c.userid = {user_expr} AND c.consent_type_id = {type_expr})"
    )
}

/// The user's current row of a type.
pub async fn row<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    consent_type_id: i64,
) -> Result<Option<Consent>, DbError> {
    Ok(q.exec_first(
        format!(
            "SELECT {CONSENT_COLUMNS} FROM consent c \
             WHERE userid = ? AND consent_type_id = ? ORDER BY {NEWEST_FIRST} LIMIT 1"
        ),
        (userid, consent_type_id),
    )
    .await?)
}

/// The consent type named exactly `shortname` (byte for byte: the
/// column's collation only finds candidates) and the flag of the user's
/// latest row of it, in one read. Call it after locking the user's row,
/// so the read sees every committed row of the user.
pub async fn type_and_flag<Q: Queryable>(
    q: &mut Q,
    shortname: &str,
    userid: i64,
) -> Result<Option<(ConsentType, Option<i64>)>, DbError> {
    type Row = (i64, String, String, i64, i64, i64, Option<i64>);
    let rows: Vec<Row> = q
        .exec(
            format!(
                "SELECT ct.id, ct.shortname, ct.description, ct.enabled, ct.project_specific, \
                        ct.privacypref, {} \
                 FROM consent_type ct WHERE ct.shortname = ?",
                flag_sql("?", "ct.id")
            ),
            (userid, shortname),
        )
        .await?;
    Ok(rows.into_iter().find(|r| r.1 == shortname).map(
        |(id, shortname, description, enabled, project_specific, privacypref, latest)| {
            (
                ConsentType {
                    id,
                    shortname,
                    description,
                    enabled,
                    project_specific,
                    privacypref,
                },
                latest,
            )
        },
    ))
}
