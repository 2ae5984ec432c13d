//! The one statement that writes consent: rows are appended, never
//! updated or deleted.

use mysql_async::prelude::*;
use mysql_async::{Params, Value};

use crate::DbError;

/// A row to append.
#[derive(Debug, Clone)]
pub struct NewConsent<'a> {
    pub userid: i64,
    pub consent_type_id: i64,
    pub consent_time: i64,
    pub consent_flag: bool,
    pub consent_not_required: bool,
    pub source: &'a str,
}

/// Append one row; its id.
pub async fn insert<Q: Queryable>(q: &mut Q, c: &NewConsent<'_>) -> Result<i64, DbError> {
    insert_all(q, std::slice::from_ref(c)).await
}

/// Append rows in one statement, in order (rows of one INSERT get
/// ascending ids, so a later row of the same user and type is the later
/// one); the first row's id. `rows` must not be empty.
pub async fn insert_all<Q: Queryable>(q: &mut Q, rows: &[NewConsent<'_>]) -> Result<i64, DbError> {
    if rows.is_empty() {
        return Err(DbError::Missing("consent rows to insert"));
    }
    let mut params: Vec<Value> = Vec::with_capacity(rows.len() * 6);
    for c in rows {
        params.extend([
            c.userid.into(),
            c.consent_type_id.into(),
            c.consent_time.into(),
            i64::from(c.consent_flag).into(),
            i64::from(c.consent_not_required).into(),
            c.source.into(),
        ]);
    }
    let values = vec!["(?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let r = q
        .exec_iter(
            format!(
                "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
                 consent_not_required, source) VALUES {values}"
            ),
            Params::Positional(params),
        )
        .await?;
    // The (first) id comes in the INSERT's own OK packet: no second round
    // trip.
    let id = r.last_insert_id();
    r.drop_result().await?;
    id.and_then(|id| i64::try_from(id).ok())
        .ok_or(DbError::Missing("LAST_INSERT_ID"))
}
