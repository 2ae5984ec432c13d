//! Row locks that never wait: what the server's SQL offers for them, and
//! how a refused lock shows.
//!
//! A request that waits on a row lock holds a connection (and, in a group,
//! every other account of the group) for as long as someone else holds the
//! row. So the RPCs lock with `NOWAIT` (and groups with `SKIP LOCKED`),
//! let the connection go when the row is busy, and try again after a
//! pause: a busy account delays only its own calls.
//!
//! MariaDB has `NOWAIT` since 10.3 and `SKIP LOCKED` since 10.6; MySQL
//! both since 8.0. Older servers get plain locking reads, bounded by
//! `innodb_lock_wait_timeout`, and no groups.

use mysql_async::prelude::Queryable;

use crate::DbError;

/// What the server accepts, probed once (`probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSyntax {
    /// `FOR UPDATE NOWAIT`.
    pub nowait: bool,
    /// `FOR UPDATE SKIP LOCKED`.
    pub skip_locked: bool,
}

/// MySQL's "syntax error": the probe's clause is not known.
const ER_PARSE_ERROR: u16 = 1064;
/// Lock wait timeout; MariaDB's answer to NOWAIT on a busy row.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// Deadlock: the transaction was rolled back.
const ER_LOCK_DEADLOCK: u16 = 1213;
/// MySQL 8's answer to NOWAIT on a busy row.
const ER_LOCK_NOWAIT: u16 = 3572;

impl LockSyntax {
    /// Plain locking reads only (a server too old for the rest).
    pub const PLAIN: LockSyntax = LockSyntax {
        nowait: false,
        skip_locked: false,
    };

    /// Ask the server by trying each clause on a read the optimizer knows
    /// matches nothing, so it reads (and locks) no row: a range read would
    /// lock the next row under REPEATABLE READ, and two probes at once
    /// would refuse each other.
    pub async fn probe<Q: Queryable>(q: &mut Q) -> Result<Self, DbError> {
        async fn accepts<Q: Queryable>(q: &mut Q, clause: &str) -> Result<bool, DbError> {
            match q
                .query_drop(format!("SELECT id FROM consent_type WHERE 1 = 0 {clause}"))
                .await
            {
                Ok(()) => Ok(true),
                Err(mysql_async::Error::Server(e)) if e.code == ER_PARSE_ERROR => Ok(false),
                Err(e) => {
                    let e = DbError::from(e);
                    // It parsed: the clause is known.
                    if is_lock_busy(&e) {
                        Ok(true)
                    } else {
                        Err(e)
                    }
                }
            }
        }
        Ok(Self {
            nowait: accepts(q, "FOR UPDATE NOWAIT").await?,
            skip_locked: accepts(q, "FOR UPDATE SKIP LOCKED").await?,
        })
    }

    /// Lock the rows read, or fail at once (`is_lock_busy`) if another
    /// transaction holds one.
    pub fn update_nowait(&self) -> &'static str {
        if self.nowait {
            "FOR UPDATE NOWAIT"
        } else {
            "FOR UPDATE"
        }
    }

    /// Lock the rows read that are free, leaving out the busy ones. None:
    /// the server cannot.
    pub fn update_skip_locked(&self) -> Option<&'static str> {
        self.skip_locked.then_some("FOR UPDATE SKIP LOCKED")
    }
}

/// A row was busy (NOWAIT refused it, a lock wait timed out, or a
/// deadlock rolled the transaction back): nothing was written, trying
/// again later may succeed.
pub fn is_lock_busy(e: &DbError) -> bool {
    matches!(
        e,
        DbError::Mysql(mysql_async::Error::Server(s))
            if matches!(s.code, ER_LOCK_WAIT_TIMEOUT | ER_LOCK_DEADLOCK | ER_LOCK_NOWAIT)
    )
}
