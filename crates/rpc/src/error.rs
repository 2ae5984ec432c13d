//! Typed RPC errors and the BOINC error numbers clients read from them.

use boinc_db::DbError;

/// BOINC error numbers (lib/error_numbers.h).
pub mod num {
    pub const GENERIC: i32 = -1;
    pub const XML_PARSE: i32 = -112;
    pub const DB_NOT_FOUND: i32 = -136;
    pub const DB_NOT_UNIQUE: i32 = -137;
    pub const DB_CANT_CONNECT: i32 = -138;
    pub const PROJECT_DOWN: i32 = -183;
    pub const BAD_USER_NAME: i32 = -188;
    pub const BAD_EMAIL_ADDR: i32 = -205;
    pub const BAD_PASSWD: i32 = -206;
    pub const ACCT_CREATION_DISABLED: i32 = -208;
    pub const INVALID_REQUEST_METHOD: i32 = -210;
    pub const ACCT_REQUIRE_CONSENT: i32 = -242;
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// -1 with a specific message.
    #[error("{0}")]
    Generic(String),
    #[error("missing or bad parameter: {0}")]
    MissingParam(&'static str),
    #[error("{0}")]
    InvalidXml(String),
    #[error("Not found")]
    NotFound,
    #[error("{}", .0.as_deref().unwrap_or("Name or email address is not unique"))]
    NotUnique(Option<String>),
    /// The database could not be reached (or did not answer in time).
    #[error("Can't access database")]
    DbUnavailable,
    /// The database answered with an error we did not expect.
    #[error("database error, please contact site administrators")]
    DbFailed,
    #[error("Project is temporarily offline")]
    ProjectDown,
    #[error("{0}")]
    BadUserName(String),
    #[error("{}", .0.as_deref().unwrap_or("Email address has invalid syntax"))]
    BadEmail(Option<String>),
    #[error("Invalid password")]
    BadPassword,
    #[error("{0}")]
    CreationDisabled(&'static str),
    #[error("Invalid request method")]
    BadMethod,
    #[error(
        "This project requires you to consent to its terms of use. Please update your BOINC \
         software or register via the project's website or contact your account manager's \
         provider."
    )]
    ConsentRequired,
    #[error("too many failed attempts from your address; try again in {0} seconds")]
    RateLimited(u64),
    #[error("too many accounts created from your address; try again later (in {0} seconds)")]
    TooManyAccounts(u64),
    #[error("too many lookups from your address; try again in {0} seconds")]
    TooManyLookups(u64),
    /// The connection broke during COMMIT and the database could not say
    /// in time whether it happened: neither a success nor an error reply
    /// would be true, so the reply is HTTP 503 (`reply`), which clients
    /// treat as a transient failure and retry (every RPC here is
    /// idempotent on retry).
    #[error(
        "the database connection broke while committing; the outcome is unknown, please retry"
    )]
    OutcomeUnknown,
}

impl RpcError {
    pub fn error_num(&self) -> i32 {
        use num::*;
        match self {
            RpcError::Generic(_)
            | RpcError::MissingParam(_)
            | RpcError::DbFailed
            | RpcError::RateLimited(_)
            | RpcError::TooManyAccounts(_)
            | RpcError::TooManyLookups(_) => GENERIC,
            RpcError::InvalidXml(_) => XML_PARSE,
            RpcError::NotFound => DB_NOT_FOUND,
            RpcError::NotUnique(_) => DB_NOT_UNIQUE,
            RpcError::DbUnavailable | RpcError::OutcomeUnknown => DB_CANT_CONNECT,
            RpcError::ProjectDown => PROJECT_DOWN,
            RpcError::BadUserName(_) => BAD_USER_NAME,
            RpcError::BadEmail(_) => BAD_EMAIL_ADDR,
            RpcError::BadPassword => BAD_PASSWD,
            RpcError::CreationDisabled(_) => ACCT_CREATION_DISABLED,
            RpcError::BadMethod => INVALID_REQUEST_METHOD,
            RpcError::ConsentRequired => ACCT_REQUIRE_CONSENT,
        }
    }

    pub fn generic(msg: impl Into<String>) -> Self {
        RpcError::Generic(msg.into())
    }
}

impl From<DbError> for RpcError {
    fn from(e: DbError) -> Self {
        if e.is_connectivity() {
            tracing::warn!(error = %e, "database unreachable");
            RpcError::DbUnavailable
        } else {
            tracing::error!(error = %e, "database error");
            RpcError::DbFailed
        }
    }
}

impl From<mysql_async::Error> for RpcError {
    fn from(e: mysql_async::Error) -> Self {
        DbError::from(e).into()
    }
}

/// Which unique index refused an insert, from the server's message
/// ("Duplicate entry 'x' for key 'email_addr'"; MySQL 8 prefixes the table).
pub fn duplicate_key_name(e: &DbError) -> Option<String> {
    match e {
        DbError::Mysql(mysql_async::Error::Server(s)) if s.code == 1062 => {
            let key = s.message.rsplit("for key").next()?;
            let key = key.trim().trim_matches('\'');
            Some(key.rsplit('.').next().unwrap_or(key).to_owned())
        }
        _ => None,
    }
}
