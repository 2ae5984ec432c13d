//! Shared data layer: project config, database connections, typed models,
//! every query, the schema tool, password hashing and XML text escaping.
//! The RPC server, the ops tools and db_dump all go through this crate.

pub mod account;
pub mod audit;
pub mod cancel;
pub mod charset;
pub mod columns;
pub mod commit;
pub mod config;
pub mod config_values;
pub mod consent;
pub mod consent_report;
pub mod consent_types;
pub mod countries;
pub mod erase;
pub mod exportable;
pub mod forwarded;
pub mod ident;
pub mod locking;
pub mod models;
pub mod password;
pub mod predefined;
pub mod public_lookup;
pub mod queries;
pub mod rate_limit;
pub mod retention;
pub mod schema;
pub mod shape;
pub mod subject;
pub mod terms;
#[cfg(feature = "testing")]
pub mod testing;
pub mod utf8mb4;
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

    /// The server could not be reached, or the connection broke or was
    /// ended (what another connection, or a later try, may not meet), as
    /// opposed to a fault of the statement, its values or their decoding,
    /// or of the configuration (which every try would meet again).
    pub fn is_connectivity(&self) -> bool {
        use mysql_async::{DriverError as D, Error as E};
        let DbError::Mysql(e) = self else {
            return false;
        };
        match e {
            // Refused, reset, broken pipe, end of stream, TLS.
            E::Io(_) => true,
            E::Driver(D::ConnectionClosed | D::PoolDisconnected) => true,
            E::Driver(_) => false,
            E::Server(s) => matches!(
                s.code,
                // Too many connections; server shutting down (1053, 1077);
                // connection aborted; network read/write errors and
                // timeouts (1158-1161); connection killed (MariaDB 1927,
                // MySQL 3169); disconnected for inactivity (MySQL 4031).
                1040 | 1053 | 1077 | 1152 | 1158..=1161 | 1927 | 3169 | 4031
            ),
            E::Other(_) | E::Url(_) => false,
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
        // changes (`consent::group`), so none is prepared twice.
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

#[cfg(test)]
mod tests {
    use super::DbError;
    use mysql_async::{DriverError as D, Error as E, IoError, ServerError, UrlError, Value};
    use std::io::ErrorKind;

    fn db(e: E) -> DbError {
        DbError::Mysql(e)
    }

    fn server(code: u16) -> DbError {
        db(E::Server(ServerError {
            code,
            message: "m".into(),
            state: "HY000".into(),
        }))
    }

    #[test]
    fn broken_or_unreachable_connections_are_connectivity() {
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
            ErrorKind::TimedOut,
            ErrorKind::NotConnected,
        ] {
            let e = db(E::Io(IoError::Io(std::io::Error::from(kind))));
            assert!(e.is_connectivity(), "{kind:?}");
        }
        assert!(db(E::Driver(D::ConnectionClosed)).is_connectivity());
        assert!(db(E::Driver(D::PoolDisconnected)).is_connectivity());
        for code in [
            1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 1927, 3169, 4031,
        ] {
            assert!(server(code).is_connectivity(), "{code}");
        }
    }

    #[test]
    fn faults_of_the_statement_or_its_values_are_not() {
        let drivers = [
            D::FromValue { value: Value::NULL },
            D::MixedParams,
            D::NestedTransaction,
            D::PacketOutOfOrder,
            D::PacketTooLarge,
            D::ReadOnlyTransNotSupported,
            D::StmtParamsMismatch {
                required: 2,
                supplied: 1,
            },
            D::StmtParamsNumberExceedsLimit { supplied: 70_000 },
            D::UnexpectedPacket { payload: vec![1] },
            D::UnknownAuthPlugin { name: "x".into() },
            D::CantParseServerVersion {
                version_string: "x".into(),
            },
            D::BadCompressedPacketHeader,
            D::MysqlOldPasswordDisabled,
            D::CleartextPluginDisabled,
            D::NoClientSslFlagFromServer,
        ];
        for d in drivers {
            let name = format!("{d:?}");
            assert!(!db(E::Driver(d)).is_connectivity(), "{name}");
        }
        // Duplicate key, lock wait timeout, deadlock, syntax, data too long,
        // incorrect string value, unknown column.
        for code in [1062, 1205, 1213, 1064, 1406, 1366, 1054] {
            assert!(!server(code).is_connectivity(), "{code}");
        }
        assert!(!db(E::Url(UrlError::Invalid)).is_connectivity());
        assert!(!db(E::Other("conversion".into())).is_connectivity());
        assert!(!DbError::Missing("x").is_connectivity());
        assert!(!DbError::Schema("x".into()).is_connectivity());
    }
}
