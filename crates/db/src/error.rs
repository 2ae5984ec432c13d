//! The data layer's one error type.

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
