//! Consent as proof, for admins: per-type reports of users' current consent
//! state (with ENROLL broken down by the terms-of-use version accepted), one
//! user's full consent history for a data-subject request, and the stored
//! terms texts. Read-only; the SQL lives in `boinc_db::consent::terms`.

use boinc_db::cancel::Guarded;
use boinc_db::consent::report::{consent_report_snapshot, Month, State};
use boinc_db::consent::terms::{self, TermsVersion};
use boinc_db::mysql_async::prelude::Queryable;
use boinc_db::mysql_async::Pool;
use boinc_db::DbError;
use serde::Serialize;

use crate::ops::ConsentOps;
use crate::time::utc;

/// Characters of the SHA-256 shown in tables (the JSON has all 64).
pub const SHORT_SHA: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(
        "no account has that email address (addresses match exactly, ignoring only the case \
         of ASCII letters)"
    )]
    UnknownEmail,
    #[error(
        "no account has that email address as its current one; account {0} had it \
         before an email change (check the requester's identity, then use --user {0})"
    )]
    PreviousEmail(i64),
    #[error("no account with id {0}")]
    UnknownUser(i64),
    #[error("no terms version with id {0} (see `boinc-ops consent terms`)")]
    UnknownTermsVersion(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<boinc_db::mysql_async::Error> for RecordsError {
    fn from(e: boinc_db::mysql_async::Error) -> Self {
        RecordsError::Db(DbError::Mysql(e))
    }
}

impl RecordsError {
    /// A refusal caused by the request (as opposed to the database failing).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, RecordsError::Db(_))
    }
}

pub fn short_sha(sha: &str) -> &str {
    sha.get(..SHORT_SHA).unwrap_or(sha)
}

/// How many users' latest ENROLL consent accepted one terms version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// `None`: consented before terms versioning existed (or by a path
    /// that does not link a version, e.g. BOINC's own PHP sign-up).
    pub terms_version_id: Option<i64>,
    pub sha256: Option<String>,
    pub first_seen: Option<i64>,
    pub first_seen_utc: Option<String>,
    pub users: i64,
    /// The text of the project's terms file now (when the report knows it).
    pub current: bool,
}

impl VersionCount {
    pub fn label(&self) -> String {
        match self.terms_version_id {
            Some(id) => id.to_string(),
            None => "unversioned".to_owned(),
        }
    }
    /// The label with "(current)" for the terms file's current text.
    pub fn label_marked(&self) -> String {
        if self.current {
            format!("{} (current)", self.label())
        } else {
            self.label()
        }
    }
    pub fn short_sha(&self) -> &str {
        self.sha256.as_deref().map(short_sha).unwrap_or("-")
    }
    pub fn first_seen_text(&self) -> &str {
        self.first_seen_utc.as_deref().unwrap_or("-")
    }
}

/// One consent type's row of the report: users by their latest state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeSummary {
    pub shortname: String,
    pub enabled: bool,
    pub consented: i64,
    pub withdrawn: i64,
    pub not_required: i64,
    pub never_asked: i64,
    /// ENROLL only (empty for other types): every stored terms version,
    /// oldest first, then the unversioned consents.
    pub by_terms_version: Vec<VersionCount>,
    /// The last 24 calendar months (UTC), oldest first: rows written per
    /// month by state, and accounts consenting at each month's end.
    pub monthly: Vec<Month>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentReport {
    pub generated_at: i64,
    pub generated_at_utc: String,
    /// Accounts counted (deleted accounts are left out everywhere).
    pub users: i64,
    pub consent_types: Vec<TypeSummary>,
    /// The project's terms file as served now, when the report was given
    /// its path and the file has text.
    pub current_terms: Option<CurrentTerms>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentTerms {
    pub sha256: String,
    /// `None`: no consent has been recorded under this text yet.
    pub terms_version_id: Option<i64>,
}

impl ConsentReport {
    /// Mark the version whose text is in `terms_file` now (cheap: one file
    /// read), so a cached report can be re-marked on every view.
    pub fn mark_current(&mut self, terms_file: Option<&std::path::Path>) {
        let sha = terms_file
            .and_then(terms::read_terms_file)
            .map(|t| terms::sha256_hex(&t));
        let mut id = None;
        for t in &mut self.consent_types {
            for v in &mut t.by_terms_version {
                v.current = v.sha256.is_some() && v.sha256 == sha;
                if v.current {
                    id = v.terms_version_id;
                }
            }
        }
        self.current_terms = sha.map(|sha256| CurrentTerms {
            sha256,
            terms_version_id: id,
        });
    }

    pub fn enroll(&self) -> Option<&TypeSummary> {
        self.consent_types
            .iter()
            .find(|t| t.shortname == boinc_db::models::CONSENT_ENROLL)
    }
}

/// The account a history belongs to: the data subject's own data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub id: i64,
    pub name: String,
    pub email_addr: String,
    pub create_time: i64,
    pub create_time_utc: String,
}

/// One consent row, as recorded (BOINC's columns plus the terms version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    pub consent_id: i64,
    pub consent_type: String,
    /// "consented", "withdrawn" or "not required"
    pub state: &'static str,
    pub consent_flag: i64,
    pub consent_not_required: i64,
    pub source: String,
    pub consent_time: i64,
    pub consent_time_utc: String,
    pub terms_version_id: Option<i64>,
    pub terms_sha256: Option<String>,
}

/// The user's current state per type: their latest row (ties by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentState {
    pub consent_type: String,
    pub state: &'static str,
    pub since: i64,
    pub since_utc: String,
    pub terms_version_id: Option<i64>,
}

/// A terms text a user's consent rows refer to, in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsDocument {
    pub id: i64,
    pub sha256: String,
    pub first_seen: i64,
    pub first_seen_utc: String,
    pub text: String,
}

/// A user's whole consent record: self-contained for a data request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectHistory {
    pub generated_at: i64,
    pub generated_at_utc: String,
    pub user: Subject,
    /// Oldest first; rows of the same second in the order they were written.
    pub consents: Vec<HistoryRow>,
    pub current: Vec<CurrentState>,
    pub terms_versions: Vec<TermsDocument>,
    /// What the fields mean, so the export explains itself.
    pub notes: &'static [&'static str],
}

/// Included in every history export.
pub const HISTORY_NOTES: &[&str] = &[
    "consents: every consent record kept for this account, oldest first. Records are never \
     changed or deleted; a change of mind is a new record.",
    "state \"consented\": consent given (consent_flag 1). \"withdrawn\": consent refused or \
     withdrawn (any other consent_flag). \"not required\": the account was created by software that \
     did not ask its owner, e.g. an account manager (consent_not_required 1).",
    "source: the software or page that recorded the consent. Times are UTC; consent_time is \
     seconds since 1970-01-01 UTC.",
    "current: the latest record per consent type, which is the state in force.",
    "terms_versions: the full text of each version of the terms of use these records refer \
     to (the version in force when the record was made), identified by the SHA-256 of the \
     exact text shown.",
];

/// A stored terms version and how many consent rows accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsListing {
    pub id: i64,
    pub sha256: String,
    pub first_seen: i64,
    pub first_seen_utc: String,
    pub consent_rows: i64,
    /// The text of the project's terms file now (when known).
    pub current: bool,
}

/// Who the history is for.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(i64),
    Email(String),
}

/// Consented means flag 1 only (as the report and db_dump count it).
fn state_of(flag: i64, not_required: i64) -> &'static str {
    match State::of(flag, not_required) {
        State::Consented => "consented",
        State::Withdrawn => "withdrawn",
        State::NotRequired => "not required",
    }
}

fn version_count(v: &TermsVersion, users: i64) -> VersionCount {
    VersionCount {
        terms_version_id: Some(v.id),
        sha256: Some(v.sha256.clone()),
        first_seen: Some(v.first_seen),
        first_seen_utc: Some(utc(v.first_seen)),
        users,
        current: false,
    }
}

impl ConsentOps {
    /// Per type, users by their latest (tie-safe) state; ENROLL by version.
    pub async fn consent_report(&self) -> Result<ConsentReport, RecordsError> {
        consent_report(self.pool(), self.terms_file()).await
    }

    pub async fn user_history(&self, who: &UserRef) -> Result<SubjectHistory, RecordsError> {
        user_history(self.pool(), who).await
    }

    pub async fn terms_list(&self) -> Result<Vec<TermsListing>, RecordsError> {
        terms_list(self.pool(), self.terms_file()).await
    }

    pub async fn terms_document(&self, id: i64) -> Result<TermsDocument, RecordsError> {
        terms_document(self.pool(), id).await
    }
}

/// The report; with `terms_file`, the version matching the file's current
/// text (as served) is marked.
pub async fn consent_report(
    pool: &Pool,
    terms_file: Option<&std::path::Path>,
) -> Result<ConsentReport, RecordsError> {
    // Killed on the server if this future is dropped (page server stopped,
    // CLI interrupted): a report nobody waits for must not keep scanning.
    let now = boinc_db::now();
    let mut conn = Guarded::get(pool).await?;
    let (types, versions) = consent_report_snapshot(&mut conn, now).await?;
    conn.finish();
    let users = types
        .first()
        .map(|t| t.consented + t.withdrawn + t.not_required + t.never_asked)
        .unwrap_or(0);
    let consent_types = types
        .into_iter()
        .map(|t| {
            let mut by_terms_version = Vec::new();
            if t.shortname == boinc_db::models::CONSENT_ENROLL {
                let count = |v: Option<i64>| {
                    t.by_terms_version
                        .iter()
                        .filter(|(id, _)| *id == v)
                        .map(|(_, n)| n)
                        .sum::<i64>()
                };
                by_terms_version = versions
                    .iter()
                    .map(|v| version_count(v, count(Some(v.id))))
                    .collect();
                by_terms_version.push(VersionCount {
                    terms_version_id: None,
                    sha256: None,
                    first_seen: None,
                    first_seen_utc: None,
                    users: count(None),
                    current: false,
                });
            }
            TypeSummary {
                shortname: t.shortname,
                enabled: t.enabled,
                consented: t.consented,
                withdrawn: t.withdrawn,
                not_required: t.not_required,
                never_asked: t.never_asked,
                by_terms_version,
                monthly: t.monthly,
            }
        })
        .collect();
    let mut report = ConsentReport {
        generated_at: now,
        generated_at_utc: utc(now),
        users,
        consent_types,
        current_terms: None,
    };
    report.mark_current(terms_file);
    Ok(report)
}

pub async fn user_history(pool: &Pool, who: &UserRef) -> Result<SubjectHistory, RecordsError> {
    use boinc_db::queries;
    let mut conn = Guarded::get(pool).await?;
    let user = match who {
        UserRef::Id(id) => queries::user_by_id(&mut *conn, *id)
            .await?
            .ok_or(RecordsError::UnknownUser(*id))?,
        UserRef::Email(email) => {
            // Exact after ASCII lower-casing, nothing trimmed: this export
            // must never hand one person's record to a look-alike address.
            let email = email.as_str();
            match queries::user_by_email(&mut *conn, email).await? {
                Some(u) if !email.is_empty() => u,
                _ => {
                    return Err(
                        match queries::user_by_previous_email(&mut *conn, email).await? {
                            Some(u) if !email.is_empty() => RecordsError::PreviousEmail(u.id),
                            _ => RecordsError::UnknownEmail,
                        },
                    )
                }
            }
        }
    };
    let history = history_of(&mut *conn, &user).await?;
    conn.finish();
    Ok(history)
}

/// The consent record of `user`, read on `q` (e.g. inside the caller's
/// snapshot).
pub async fn history_of<Q: Queryable>(
    q: &mut Q,
    user: &boinc_db::models::User,
) -> Result<SubjectHistory, RecordsError> {
    let entries = terms::user_history(q, user.id).await?;
    let mut versions: Vec<i64> = entries.iter().filter_map(|e| e.terms_version_id).collect();
    versions.sort_unstable();
    versions.dedup();
    let all = terms::terms_versions(q).await?;
    let mut terms_versions = Vec::with_capacity(versions.len());
    for id in versions {
        let Some(v) = all.iter().find(|v| v.id == id) else {
            continue;
        };
        let text = terms::terms_text(q, id).await?.unwrap_or_default();
        terms_versions.push(TermsDocument {
            id,
            sha256: v.sha256.clone(),
            first_seen: v.first_seen,
            first_seen_utc: utc(v.first_seen),
            text,
        });
    }

    let consents: Vec<HistoryRow> = entries
        .into_iter()
        .map(|e| HistoryRow {
            state: state_of(e.consent_flag, e.consent_not_required),
            consent_id: e.consent_id,
            consent_type: e.consent_type,
            consent_flag: e.consent_flag,
            consent_not_required: e.consent_not_required,
            source: e.source,
            consent_time_utc: utc(e.consent_time),
            consent_time: e.consent_time,
            terms_version_id: e.terms_version_id,
            terms_sha256: e.terms_sha256,
        })
        .collect();
    // The rows are in (time, id) order, so the last one per type is the
    // latest: the same tie rule as the latest_consent view.
    let mut current: Vec<CurrentState> = Vec::new();
    for row in &consents {
        let state = CurrentState {
            consent_type: row.consent_type.clone(),
            state: row.state,
            since: row.consent_time,
            since_utc: row.consent_time_utc.clone(),
            terms_version_id: row.terms_version_id,
        };
        match current
            .iter_mut()
            .find(|c| c.consent_type == row.consent_type)
        {
            Some(c) => *c = state,
            None => current.push(state),
        }
    }
    let now = boinc_db::now();
    Ok(SubjectHistory {
        generated_at: now,
        generated_at_utc: utc(now),
        user: Subject {
            id: user.id,
            name: user.name().to_owned(),
            email_addr: user.email_addr.clone(),
            create_time: user.create_time,
            create_time_utc: utc(user.create_time),
        },
        consents,
        current,
        terms_versions,
        notes: HISTORY_NOTES,
    })
}

pub async fn terms_list(
    pool: &Pool,
    terms_file: Option<&std::path::Path>,
) -> Result<Vec<TermsListing>, RecordsError> {
    let current_sha = terms_file
        .and_then(terms::read_terms_file)
        .map(|t| terms::sha256_hex(&t));
    let mut conn = pool.get_conn().await?;
    let versions = terms::terms_versions(&mut conn).await?;
    let counts = terms::consent_rows_by_version(&mut conn).await?;
    Ok(versions
        .into_iter()
        .map(|v| TermsListing {
            consent_rows: counts
                .iter()
                .find(|(id, _)| *id == v.id)
                .map(|(_, n)| *n)
                .unwrap_or(0),
            first_seen_utc: utc(v.first_seen),
            current: current_sha.as_deref() == Some(v.sha256.as_str()),
            id: v.id,
            sha256: v.sha256,
            first_seen: v.first_seen,
        })
        .collect())
}

pub async fn terms_document(pool: &Pool, id: i64) -> Result<TermsDocument, RecordsError> {
    let mut conn = pool.get_conn().await?;
    let v = terms::terms_versions(&mut conn)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or(RecordsError::UnknownTermsVersion(id))?;
    let text = terms::terms_text(&mut conn, id)
        .await?
        .ok_or(RecordsError::UnknownTermsVersion(id))?;
    Ok(TermsDocument {
        id,
        first_seen_utc: utc(v.first_seen),
        sha256: v.sha256,
        first_seen: v.first_seen,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_formatting() {
        assert_eq!(state_of(1, 0), "consented");
        assert_eq!(state_of(1, 1), "consented");
        assert_eq!(state_of(0, 0), "withdrawn");
        assert_eq!(state_of(0, 1), "not required");
        assert_eq!(state_of(2, 0), "withdrawn");
        assert_eq!(state_of(-1, 1), "not required");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(short_sha("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_sha("abc"), "abc");
    }
}
