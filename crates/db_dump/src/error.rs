//! The dump's error type.

use std::io;

use boinc_db::config::ConfigError;

use crate::publish::PublishError;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("database: {what}: {source}")]
    Db {
        what: String,
        source: mysql_async::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Internal(String),
}

pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> DumpError {
    let what = what.into();
    move |source| DumpError::Db { what, source }
}
