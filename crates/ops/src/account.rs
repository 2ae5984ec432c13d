//! Data-subject requests for admins, shared by the CLI and the ops page:
//! find an account, export everything held about the person (access
//! request), erase the account (erasure request). Every export and erase
//! is recorded in `account_audit`. The SQL lives in `boinc_db::{subject,
//! erase, audit}`; this module picks the account and assembles the export.

use boinc_db::audit::{self, Action, AuditRow};
use boinc_db::erase::{self, EraseError, Mode, Outcome};
use boinc_db::mysql_async::Pool;
use boinc_db::subject::{
    self, CreditData, Found, HostData, MessageData, PostData, TeamData, UserData,
};
use boinc_db::{queries, DbError};
use serde::Serialize;

use crate::consent_records::{self, utc, CurrentState, HistoryRow, TermsDocument, UserRef};
use crate::RecordsError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "no account has that email address (addresses match exactly, ignoring only the case \
         of ASCII letters)"
    )]
    UnknownEmail,
    #[error(
        "no account has that email address as its current one; account {0} had it before an \
         email change (check the requester's identity, then use --id {0})"
    )]
    PreviousEmail(i64),
    #[error("no account with id {0}")]
    UnknownUser(i64),
    #[error(
        "account {0} is already deleted (obfuscated); only --mode wipe can remove what is left"
    )]
    AlreadyObfuscated(i64),
    #[error("the confirmation does not match the account id {0}; nothing was changed")]
    NotConfirmed(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<boinc_db::mysql_async::Error> for AccountError {
    fn from(e: boinc_db::mysql_async::Error) -> Self {
        AccountError::Db(DbError::Mysql(e))
    }
}

impl From<EraseError> for AccountError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::UnknownUser(id) => AccountError::UnknownUser(id),
            EraseError::AlreadyObfuscated(id) => AccountError::AlreadyObfuscated(id),
            EraseError::Db(e) => AccountError::Db(e),
        }
    }
}

impl From<RecordsError> for AccountError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::UnknownEmail => AccountError::UnknownEmail,
            RecordsError::PreviousEmail(id) => AccountError::PreviousEmail(id),
            RecordsError::UnknownUser(id) => AccountError::UnknownUser(id),
            RecordsError::UnknownTermsVersion(_) => {
                AccountError::Db(DbError::Missing("terms version"))
            }
            RecordsError::Db(e) => AccountError::Db(e),
        }
    }
}

impl AccountError {
    /// A refusal caused by the request (as opposed to the database failing).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, AccountError::Db(_))
    }
}

/// The account named by id, or by its current email (exact after ASCII
/// lower-casing; a deleted account's address is gone, so it is not found).
pub async fn resolve(pool: &Pool, who: &UserRef) -> Result<i64, AccountError> {
    let mut conn = pool.get_conn().await?;
    match who {
        UserRef::Id(id) => {
            let found = subject::find_by_id(&mut conn, *id).await?;
            found
                .first()
                .map(|f| f.id)
                .ok_or(AccountError::UnknownUser(*id))
        }
        UserRef::Email(email) => {
            if email.is_empty() {
                return Err(AccountError::UnknownEmail);
            }
            if let Some(u) = queries::user_by_email(&mut conn, email).await? {
                return Ok(u.id);
            }
            match queries::user_by_previous_email(&mut conn, email).await? {
                Some(u) => Err(AccountError::PreviousEmail(u.id)),
                None => Err(AccountError::UnknownEmail),
            }
        }
    }
}

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

/// Erase account `userid` (see `boinc_db::erase`).
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

/// One part of the export and what it holds, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub part: &'static str,
    pub contents: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct About {
    pub document: &'static str,
    pub generated_at: i64,
    pub generated_at_utc: String,
    pub not_included: &'static str,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentPart {
    pub records: Vec<HistoryRow>,
    pub current: Vec<CurrentState>,
    pub terms_versions: Vec<TermsDocument>,
    pub notes: &'static [&'static str],
}

/// Everything the database holds about one person, self-describing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    pub about: About,
    pub account: UserData,
    pub hosts: Vec<HostData>,
    pub teams: Vec<TeamData>,
    pub credit_by_app: Vec<CreditData>,
    /// Only on projects with BOINC's forum tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forum_posts: Option<Vec<PostData>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_messages: Option<Vec<MessageData>>,
    pub consent: ConsentPart,
    pub audit_trail: Vec<AuditRow>,
}

pub const EXPORT_DOCUMENT: &str = "Copy of the personal data this BOINC project's database \
    holds about one account, produced for the account's owner (GDPR Art. 15 and 20). Times \
    are seconds since 1970-01-01 UTC unless a field ends in _utc.";

pub const EXPORT_NOT_INCLUDED: &str = "The password hash, the account key (authenticator) and \
    login tokens are credentials, not information about you, and are never exported. Work \
    results and files computed by your computers are scientific data of the project.";

/// Parts present only when the project has BOINC's forum tables.
pub const FORUM_POSTS_PART: (&str, &str) = (
    "forum_posts",
    "Your posts in the project's message boards: thread, times and text.",
);
pub const PRIVATE_MESSAGES_PART: (&str, &str) = (
    "private_messages",
    "Private messages you sent or received on the project's web site.",
);

pub const EXPORT_PARTS: &[(&str, &str)] = &[
    (
        "account",
        "Your account record: email address, name, country, postal code, web site, signature, \
         preferences (XML), credit totals, team id, and when the account was created.",
    ),
    (
        "hosts",
        "The computers attached to your account, as the BOINC client reported them: network \
         name, IP addresses, operating system, processor, memory, disk and their credit.",
    ),
    (
        "teams",
        "The team you belong to, and any team you founded (founder true).",
    ),
    (
        "credit_by_app",
        "Credit per application: jobs, total and recent average credit.",
    ),
    (
        "consent",
        "Every consent record kept for the account (what you agreed to or withdrew, when, and \
         through which software), your current state per consent type, and the full text of \
         each version of the terms of use you accepted.",
    ),
    (
        "audit_trail",
        "What the project's administrators did with this account on data requests (exports, \
         deletions, views on the admin page): when, by which administrator, what.",
    ),
];

/// Build the export of account `who` and record it in the audit trail
/// (the trail in the document includes this export). `now` is the export's
/// time.
pub async fn export(
    pool: &Pool,
    who: &UserRef,
    actor: &str,
    now: i64,
) -> Result<Export, AccountError> {
    let userid = resolve(pool, who).await?;
    let mut conn = pool.get_conn().await?;
    let account = subject::user_data(&mut conn, userid)
        .await?
        .ok_or(AccountError::UnknownUser(userid))?;
    audit::record(&mut conn, actor, userid, Action::Export, "", now).await?;
    let hosts = subject::hosts(&mut conn, userid).await?;
    let teams = subject::teams(&mut conn, userid, account.teamid).await?;
    let credit_by_app = subject::credit(&mut conn, userid).await?;
    let audit_trail = audit::for_user(&mut conn, userid).await?;
    let forum_posts = subject::forum_posts(&mut conn, userid).await?;
    let private_messages = subject::private_messages(&mut conn, userid).await?;
    drop(conn);
    let mut parts: Vec<Part> = EXPORT_PARTS
        .iter()
        .map(|&(part, contents)| Part { part, contents })
        .collect();
    for (present, (part, contents)) in [
        (forum_posts.is_some(), FORUM_POSTS_PART),
        (private_messages.is_some(), PRIVATE_MESSAGES_PART),
    ] {
        if present {
            parts.push(Part { part, contents });
        }
    }
    let h = consent_records::user_history(pool, &UserRef::Id(userid)).await?;
    Ok(Export {
        about: About {
            document: EXPORT_DOCUMENT,
            generated_at: now,
            generated_at_utc: utc(now),
            not_included: EXPORT_NOT_INCLUDED,
            parts,
        },
        account,
        hosts,
        teams,
        credit_by_app,
        forum_posts,
        private_messages,
        consent: ConsentPart {
            records: h.consents,
            current: h.current,
            terms_versions: h.terms_versions,
            notes: consent_records::HISTORY_NOTES,
        },
        audit_trail,
    })
}
