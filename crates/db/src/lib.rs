//! Shared data layer: project config, database connections, typed models,
//! every query, the schema tool, password hashing and XML text escaping.
//! The RPC server, the ops tools and db_dump all go through this crate.
//! Modules are grouped by subject (`config`, `text`, `consent`, `account`,
//! `schema`); this file holds the pool, the clock and random keys.

pub mod account;
pub mod cancel;
pub mod commit;
pub mod config;
pub mod consent;
mod error;
pub mod exportable;
pub mod forwarded;
pub mod ident;
pub mod locking;
pub mod models;
pub mod password;
pub mod queries;
pub mod rate_limit;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use config::{DbSettings, ProjectConfig};
pub use error::DbError;
pub use mysql_async;

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
        // changes (`consent::group`), so none is prepared twice.
        .stmt_cache_size(128);
    mysql_async::Pool::new(opts)
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
