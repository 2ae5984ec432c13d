//! Knowing whether a COMMIT happened when its answer was lost.
//!
//! If the connection breaks after COMMIT was sent (a killed connection, a
//! server restart, a network cut), the server may have committed or not.
//! Replying "error" then could be a lie that matters: a consent withdrawal
//! the caller believes failed may be in force, or one it will retry
//! differently may come back. So each transaction leaves a trace that a
//! fresh connection can look for: a row it wrote anyway (found by
//! [`RowTrace`]), or a token row in `rpc_commit` ([`Marker`]).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::DbError;

/// Wait until the session whose COMMIT answer was lost (`thread`, its
/// connection id, COMMIT sent at `sent`) is gone from the server, killing
/// it if it is still there: until then its transaction may still commit
/// (a COMMIT in progress finishes whatever happens to the client), and a
/// look for its trace could say "not written" too early. A server that
/// started after `sent` has decided every transaction of before (and may
/// have given the id to someone else, who must not be killed).
pub async fn settle<Q: Queryable>(q: &mut Q, thread: u32, sent: Instant) -> Result<(), DbError> {
    let uptime: Option<(String, u64)> = q.query_first("SHOW GLOBAL STATUS LIKE 'Uptime'").await?;
    let up = Duration::from_secs(uptime.map(|u| u.1).unwrap_or(0));
    // Uptime counts whole seconds: a second of margin.
    if up < sent.elapsed() + Duration::from_secs(1) {
        return Ok(());
    }
    loop {
        let there: Option<i64> = q
            .exec_first(
                "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?",
                (thread,),
            )
            .await?;
        if there.is_none() {
            return Ok(());
        }
        // Gone by now, or being killed by someone else: either is fine.
        // (KILL takes no placeholder; `thread` is a number.)
        match q.query_drop(format!("KILL CONNECTION {thread}")).await {
            Ok(()) | Err(mysql_async::Error::Server(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What became of a COMMIT whose answer was lost, once looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Committed,
    RolledBack,
}

/// A token written in the transaction (`rpc_commit`), for transactions
/// with no new row of their own to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker([u8; 16]);

impl Marker {
    pub fn new() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        Self(b)
    }

    /// Write the token inside the caller's transaction.
    pub async fn write<Q: Queryable>(&self, tx: &mut Q, now: i64) -> Result<(), DbError> {
        tx.exec_drop(
            "INSERT INTO rpc_commit (token, create_time) VALUES (?, ?)",
            (self.0.to_vec(), now),
        )
        .await?;
        Ok(())
    }

    /// Look for the token (on a connection other than the broken one).
    pub async fn fate<Q: Queryable>(&self, q: &mut Q) -> Result<Fate, DbError> {
        let found: Option<i64> = q
            .exec_first(
                "SELECT 1 FROM rpc_commit WHERE token = ?",
                (self.0.to_vec(),),
            )
            .await?;
        Ok(if found.is_some() {
            Fate::Committed
        } else {
            Fate::RolledBack
        })
    }
}

impl Default for Marker {
    fn default() -> Self {
        Self::new()
    }
}

/// Tokens older than an hour: every transaction they could tell about
/// has long been decided and answered.
pub async fn purge_markers<Q: Queryable>(q: &mut Q, now: i64, batch: u32) -> Result<u64, DbError> {
    let r = q
        .exec_iter(
            "DELETE FROM rpc_commit WHERE create_time < ? ORDER BY create_time LIMIT ?",
            (now - 3600, batch),
        )
        .await?;
    let n = r.affected_rows();
    r.drop_result().await?;
    Ok(n)
}

/// A consent row the transaction inserted, by id and content (an id alone
/// could, on an old server restarted since, have been given again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTrace {
    pub id: i64,
    pub userid: i64,
    pub consent_type_id: i64,
    pub consent_time: i64,
}

impl RowTrace {
    pub async fn fate<Q: Queryable>(&self, q: &mut Q) -> Result<Fate, DbError> {
        let found: Option<i64> = q
            .exec_first(
                "SELECT 1 FROM consent WHERE id = ? AND userid = ? AND consent_type_id = ? \
                 AND consent_time = ?",
                (
                    self.id,
                    self.userid,
                    self.consent_type_id,
                    self.consent_time,
                ),
            )
            .await?;
        Ok(if found.is_some() {
            Fate::Committed
        } else {
            Fate::RolledBack
        })
    }
}

/// How to find one transaction's writes later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// A token it wrote into `rpc_commit`.
    Marker(Marker),
    /// A consent row it appended.
    Row(RowTrace),
    /// The account it created (authenticators are random and unique).
    Account { authenticator: String },
}

impl Trace {
    pub async fn fate<Q: Queryable>(&self, q: &mut Q) -> Result<Fate, DbError> {
        match self {
            Trace::Marker(m) => m.fate(q).await,
            Trace::Row(r) => r.fate(q).await,
            Trace::Account { authenticator } => {
                // Byte for byte: the column's collation ignores case.
                let found: Vec<String> = q
                    .exec(
                        "SELECT authenticator FROM user WHERE authenticator = ?",
                        (authenticator,),
                    )
                    .await?;
                Ok(if found.iter().any(|a| a == authenticator) {
                    Fate::Committed
                } else {
                    Fate::RolledBack
                })
            }
        }
    }
}
