//! Reading from a replica (`replica_db_host` and friends in config.xml):
//! every connection of the dump goes there and nothing to the primary. A
//! replica that is behind gives a consistent but older dump; when it is
//! more than `<replica_max_lag>` seconds behind (default 300), or its lag
//! cannot be known, the summary says so.

use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use crate::error::{db, DumpError};

pub const MAX_LAG_KEY: &str = "replica_max_lag";
pub const DEFAULT_MAX_LAG: i64 = 300;

/// `<replica_max_lag>` in whole seconds (a fraction counts as a second
/// more); a value that is not a duration is an error naming the key.
pub fn max_lag(config: &boinc_db::ProjectConfig) -> Result<i64, boinc_db::config::ConfigError> {
    Ok(config
        .seconds(MAX_LAG_KEY, true)?
        .map(|d| i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX))
        .unwrap_or(DEFAULT_MAX_LAG))
}

/// What the replica reports about its replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// `Seconds_Behind_Master`; None while replication is not running.
    pub seconds_behind: Option<i64>,
    pub io_running: String,
    pub sql_running: String,
    pub last_error: String,
}

/// The replica's state (None: the server replicates from nobody).
/// Needs the REPLICATION CLIENT / SLAVE MONITOR privilege.
pub async fn state(conn: &mut Conn) -> Result<Option<ReplicaState>, DumpError> {
    let row: Option<Row> = conn
        .query_first("SHOW SLAVE STATUS")
        .await
        .map_err(db("SHOW SLAVE STATUS"))?;
    let Some(row) = row else { return Ok(None) };
    let text = |name: &str| -> String {
        row.get_opt::<Option<String>, _>(name)
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default()
    };
    let errors: Vec<String> = ["Last_IO_Error", "Last_SQL_Error"]
        .iter()
        .map(|n| text(n))
        .filter(|e| !e.is_empty())
        .collect();
    Ok(Some(ReplicaState {
        seconds_behind: text("Seconds_Behind_Master").trim().parse().ok(),
        io_running: text("Slave_IO_Running"),
        sql_running: text("Slave_SQL_Running"),
        last_error: errors.join("; "),
    }))
}

/// The summary's line about the replica, when there is something to say.
pub fn note(
    host: &str,
    state: &Result<Option<ReplicaState>, DumpError>,
    max_lag: i64,
) -> Option<String> {
    match state {
        Err(e) => Some(format!("replica {host}: lag unknown ({e})")),
        Ok(None) => Some(format!(
            "replica {host}: lag unknown (the server reports no replication)"
        )),
        Ok(Some(s)) => match s.seconds_behind {
            Some(n) if n > max_lag => Some(format!(
                "replica {host} is {n} s behind its primary (more than {MAX_LAG_KEY} {max_lag} s): \
                 this dump shows the project as it was {n} s ago"
            )),
            Some(_) => None,
            None => Some(format!(
                "replica {host}: lag unknown (replication not running: IO {}, SQL {}{}); \
                 this dump shows the replica's data, which may be old",
                or_dash(&s.io_running),
                or_dash(&s.sql_running),
                if s.last_error.is_empty() {
                    String::new()
                } else {
                    format!("; {}", s.last_error)
                }
            )),
        },
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}
