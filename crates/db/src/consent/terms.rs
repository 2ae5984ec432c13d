//! Consent as proof: which terms-of-use text each ENROLL consent accepted,
//! and per-type reports of users' current consent state.
//!
//! Lives in two tables of our own (`terms_version`, `consent_terms`) beside
//! BOINC's, so BOINC's PHP code and the `latest_consent` view are unchanged.

use mysql_async::prelude::*;
use serde::Serialize;

use crate::DbError;

/// SHA-256 hex of the exact text served (and so accepted).
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The terms text as get_project_config serves it (and create_account
/// hashes it): the file's contents, invalid UTF-8 replaced, trimmed as PHP's
/// trim() does; None when the file is missing, unreadable or empty.
pub fn read_terms_file(path: &std::path::Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let t = php_trim(&text);
    (!t.is_empty()).then(|| t.to_owned())
}

/// PHP's trim() set: space, tab, LF, CR, NUL, vertical tab.
pub fn php_trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// The terms a project asks volunteers to accept, or None: the served text
/// (see `read_terms_file`), only while it is non-empty after trimming and
/// the ENROLL consent type is enabled. The one rule behind both
/// get_project_config showing `<terms_of_use>` and create_account recording
/// an ENROLL consent, so consent is never recorded to a text not shown.
pub fn offered_terms<T: AsRef<str>>(served: Option<T>, enroll_enabled: bool) -> Option<T> {
    served.filter(|t| enroll_enabled && !php_trim(t.as_ref()).is_empty())
}

/// The id of this terms text, storing it on first sight. One statement,
/// safe against concurrent callers (the unique sha256 key decides).
pub async fn ensure_terms_version<Q: Queryable>(
    q: &mut Q,
    text: &str,
    now: i64,
) -> Result<i64, DbError> {
    q.exec_drop(
        "INSERT INTO terms_version (sha256, terms, first_seen) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
        (sha256_hex(text), text, now),
    )
    .await?;
    let id: Option<i64> = q.query_first("SELECT LAST_INSERT_ID()").await?;
    id.ok_or(DbError::Missing("terms_version id"))
}

/// Record that consent row `consent_id` accepted terms version `version_id`.
pub async fn link_consent_terms<Q: Queryable>(
    q: &mut Q,
    consent_id: i64,
    version_id: i64,
) -> Result<(), DbError> {
    q.exec_drop(
        "INSERT INTO consent_terms (consent_id, terms_version_id) VALUES (?, ?)",
        (consent_id, version_id),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsVersion {
    pub id: i64,
    pub sha256: String,
    pub first_seen: i64,
}

pub async fn terms_versions<Q: Queryable>(q: &mut Q) -> Result<Vec<TermsVersion>, DbError> {
    let rows: Vec<(i64, String, i64)> = q
        .query("SELECT id, sha256, first_seen FROM terms_version ORDER BY id")
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, sha256, first_seen)| TermsVersion {
            id,
            sha256,
            first_seen,
        })
        .collect())
}

/// How many consent rows (any state, any user) link each terms version.
pub async fn consent_rows_by_version<Q: Queryable>(q: &mut Q) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(q.query(
        "SELECT terms_version_id, COUNT(*) FROM consent_terms \
         GROUP BY terms_version_id ORDER BY terms_version_id",
    )
    .await?)
}

pub async fn terms_text<Q: Queryable>(q: &mut Q, id: i64) -> Result<Option<String>, DbError> {
    Ok(
        q.exec_first("SELECT terms FROM terms_version WHERE id = ?", (id,))
            .await?,
    )
}

/// One row of a user's consent history, for data-subject requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, mysql_async::prelude::FromRow)]
pub struct HistoryEntry {
    pub consent_id: i64,
    pub consent_type: String,
    pub consent_flag: i64,
    pub consent_not_required: i64,
    /// BOINC's PHP writes it too (legacy bytes decode, see `charset`).
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub source: String,
    pub consent_time: i64,
    pub terms_version_id: Option<i64>,
    pub terms_sha256: Option<String>,
}

/// A user's whole consent history, oldest first, ties in insert order.
/// STRAIGHT_JOIN: read the user's rows first (userid index); with stale
/// statistics the optimizer otherwise walks every row of each type.
pub async fn user_history<Q: Queryable>(
    q: &mut Q,
    userid: i64,
) -> Result<Vec<HistoryEntry>, DbError> {
    Ok(q.exec(
        format!(
            "SELECT c.id AS consent_id, ct.shortname AS consent_type, c.consent_flag, \
                    c.consent_not_required, c.source, c.consent_time, t.terms_version_id, \
                    v.sha256 AS terms_sha256 \
             FROM consent c STRAIGHT_JOIN consent_type ct ON ct.id = c.consent_type_id \
             LEFT JOIN consent_terms t ON t.consent_id = c.id \
             LEFT JOIN terms_version v ON v.id = t.terms_version_id \
             WHERE c.userid = ? ORDER BY {}",
            crate::consent::latest::oldest_first("c.")
        ),
        (userid,),
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_offered_only_with_text_and_enroll() {
        assert_eq!(offered_terms(Some("Be nice."), true), Some("Be nice."));
        assert_eq!(offered_terms(Some("Be nice."), false), None);
        for blank in ["", " ", "\n\t\r\n", "\0\x0B "] {
            assert_eq!(offered_terms(Some(blank), true), None, "{blank:?}");
        }
        assert_eq!(offered_terms(None::<&str>, true), None);
    }
}
