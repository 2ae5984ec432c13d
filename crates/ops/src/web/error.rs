//! Why the ops page refuses to start (or stops), and the config.xml keys
//! those messages name. A leaf: everything else in `web` may use it.

/// Config keys (inside `<config>` of config.xml) holding the admin login.
pub const USER_KEY: &str = "ops_user";
pub const HASH_KEY: &str = "ops_password_hash";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to start: no admin credentials configured. Put <{USER_KEY}> and \
         <{HASH_KEY}> (a bcrypt hash, e.g. from `boinc-ops hash-password`) in config.xml"
    )]
    NoCredentials,
    #[error("refusing to start: {0}")]
    BadCredentials(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}
