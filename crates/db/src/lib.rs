//! Shared data layer: project config, database connections, typed models,
//! every query, the schema tool, password hashing and XML text escaping.
//! The RPC server, the ops tools and db_dump all go through this crate.

pub mod account;
pub mod audit;
pub mod cancel;
pub mod charset;
pub mod columns;
pub mod config;
pub mod config_values;
pub mod consent_flip;
pub mod consent_report;
pub mod consent_types;
pub mod countries;
pub mod erase;
pub mod forwarded;
pub mod models;
pub mod password;
pub mod predefined;
pub mod queries;
pub mod rate_limit;
pub mod retention;
pub mod schema;
pub mod subject;
pub mod terms;
pub mod testing;
pub mod xml;

pub use config::{DbSettings, ProjectConfig};
pub use mysql_async;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("database returned no {0}")]
    Missing(&'static str),
    #[error("schema: {0}")]
    Schema(String),
}

impl DbError {
    /// Duplicate key (MySQL error 1062): a unique index refused the write.
    pub fn is_duplicate_key(&self) -> bool {
        matches!(self, DbError::Mysql(mysql_async::Error::Server(e)) if e.code == 1062)
    }

    /// The server could not be reached or the connection broke, as opposed
    /// to an error the server reported for a statement.
    pub fn is_connectivity(&self) -> bool {
        match self {
            DbError::Mysql(mysql_async::Error::Server(_)) => false,
            DbError::Mysql(_) => true,
            _ => false,
        }
    }
}

/// A pool for the given settings. Connections are made lazily, so this
/// succeeds even while the database is down; the pool reconnects by itself.
/// Connections are not reset on return: a reset drops the connection's
/// prepared statements, so every request would prepare each statement
/// again (a round trip each, ~half of am_set_info's throughput). No caller
/// keeps session state, and mysql_async still rolls back an unfinished
/// transaction on return.
pub fn pool(settings: &DbSettings) -> mysql_async::Pool {
    let constraints = mysql_async::PoolConstraints::new(1, 32).expect("1 <= 32");
    let opts = mysql_async::OptsBuilder::from_opts(settings.opts())
        .pool_opts(
            mysql_async::PoolOpts::default()
                .with_constraints(constraints)
                .with_inactive_connection_ttl(std::time::Duration::from_secs(60))
                .with_reset_connection(false),
        )
        // Room for every statement plus the few sizes of grouped consent
        // changes (`consent_flip`), so none is prepared twice.
        .stmt_cache_size(128);
    mysql_async::Pool::new(opts)
}

/// Stats-site cross-project id: md5 hex of cross_project_id . email_addr.
pub fn cpid(cross_project_id: &str, email_addr: &str) -> String {
    let mut s = String::with_capacity(cross_project_id.len() + email_addr.len());
    s.push_str(cross_project_id);
    s.push_str(email_addr);
    password::md5_hex(&s)
}

/// 32 random hex digits (authenticators, cross-project ids), like BOINC's
/// random_string(): 128 bits from the OS generator.
pub fn random_hex32() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
