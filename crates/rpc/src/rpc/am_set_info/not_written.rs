//! Why an attempt of am_set_info alone wrote nothing: busy (try again) or
//! refused (the answer). A leaf the write path's parts share.

use boinc_db::locking::is_lock_busy;
use boinc_db::DbError;

use crate::error::{duplicate_key_name, RpcError};

/// Why an attempt wrote nothing.
pub(super) enum NotWritten {
    /// A row was busy (or the COMMIT was lost and found not to have
    /// happened): try again.
    Busy,
    /// The answer.
    Refused(RpcError),
}

impl From<DbError> for NotWritten {
    fn from(e: DbError) -> Self {
        if is_lock_busy(&e) {
            return NotWritten::Busy;
        }
        NotWritten::Refused(match duplicate_key_name(&e) {
            Some(k) if k.contains("email") => RpcError::NotUnique(Some(
                "There's already an account with that email address.".into(),
            )),
            Some(k) if k.contains("name") => {
                RpcError::BadUserName("user name is already taken".into())
            }
            Some(_) => RpcError::NotUnique(None),
            None => e.into(),
        })
    }
}

impl From<mysql_async::Error> for NotWritten {
    fn from(e: mysql_async::Error) -> Self {
        DbError::from(e).into()
    }
}
