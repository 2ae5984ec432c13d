//! Who a request is about, and what can go wrong answering it: a leaf the
//! account commands and the export share.

use boinc_db::account::erase::EraseError;
use boinc_db::account::subject;
use boinc_db::mysql_async::prelude::Queryable;
use boinc_db::mysql_async::Pool;
use boinc_db::{queries, DbError};

use crate::consent_records::{RecordsError, UserRef};

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
    /// The export could not be written out; it was not recorded.
    #[error("could not write the export (nothing was recorded): {0}")]
    Output(#[source] std::io::Error),
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
    /// A refusal caused by the request (as opposed to the database or the
    /// output failing).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, AccountError::Db(_) | AccountError::Output(_))
    }
}

/// The account named by id, or by its current email (exact after ASCII
/// lower-casing; a deleted account's address is gone, so it is not found).
pub async fn resolve(pool: &Pool, who: &UserRef) -> Result<i64, AccountError> {
    let mut conn = pool.get_conn().await?;
    resolve_on(&mut conn, who).await
}

/// `resolve`, on the caller's connection or transaction.
pub async fn resolve_on<Q: Queryable>(q: &mut Q, who: &UserRef) -> Result<i64, AccountError> {
    match who {
        UserRef::Id(id) => {
            let found = subject::find_by_id(q, *id).await?;
            found
                .first()
                .map(|f| f.id)
                .ok_or(AccountError::UnknownUser(*id))
        }
        UserRef::Email(email) => {
            if email.is_empty() {
                return Err(AccountError::UnknownEmail);
            }
            if let Some(u) = queries::user_by_email(q, email).await? {
                return Ok(u.id);
            }
            match queries::user_by_previous_email(q, email).await? {
                Some(u) => Err(AccountError::PreviousEmail(u.id)),
                None => Err(AccountError::UnknownEmail),
            }
        }
    }
}
