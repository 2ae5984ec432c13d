//! No orphan work in the database: a connection whose work is abandoned
//! (the future running it dropped: a page request gone, a server stopped, a
//! CLI interrupted) gets `KILL QUERY` from another connection.
//!
//! MariaDB does not notice a client that went away while a long query runs
//! (it only finds out when it writes the result), so an admin report that is
//! no longer wanted would keep scanning for minutes on the database the
//! scheduler and web site share. [`Guarded`] holds the connection id; if it
//! is dropped before [`Guarded::finish`], a background task kills the query
//! and closes that connection (never returning it to the pool, so the kill
//! can only hit the abandoned statement). Processes that exit right after a
//! cancellation wait for those tasks with [`wait_for_kills`].

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Pool};

use crate::DbError;

/// Kill tasks started and not yet done.
static PENDING: AtomicUsize = AtomicUsize::new(0);
static SETTLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A pooled connection whose running statement is killed if this is
/// dropped before [`Guarded::finish`].
pub struct Guarded {
    conn: Option<Conn>,
    pool: Pool,
    id: u32,
}

impl Guarded {
    pub async fn get(pool: &Pool) -> Result<Self, DbError> {
        let conn = pool.get_conn().await?;
        Ok(Self {
            id: conn.id(),
            conn: Some(conn),
            pool: pool.clone(),
        })
    }

    /// The server's connection id (what PROCESSLIST shows as ID).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The work is over: give the connection back to the pool.
    pub fn finish(mut self) {
        drop(self.conn.take());
    }
}

impl Deref for Guarded {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until finish or drop")
    }
}

impl DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until finish or drop")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime left to run the kill on; the connection closes
            // with the process.
            return;
        };
        let (pool, id) = (self.pool.clone(), self.id);
        PENDING.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            if let Err(e) = kill_query(&pool, id).await {
                tracing::warn!(connection = id, "could not cancel an abandoned query: {e}");
            }
            // Closed, not pooled: the next user must not inherit the
            // interrupted session (or a kill that arrived late).
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.disconnect()).await;
            PENDING.fetch_sub(1, Ordering::SeqCst);
            SETTLED.notify_waiters();
        });
    }
}

/// `KILL QUERY id` from another connection of `pool`: the statement running
/// on that connection stops, the connection stays open.
pub async fn kill_query(pool: &Pool, id: u32) -> Result<(), DbError> {
    let mut c = pool.get_conn().await?;
    // A server-issued number, not caller text; KILL takes no placeholder.
    match c.query_drop(format!("KILL QUERY {id}")).await {
        Ok(()) => Ok(()),
        // 1094: no such thread: the connection is already gone.
        Err(mysql_async::Error::Server(e)) if e.code == 1094 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Wait (at most `limit`) until every kill started by a dropped [`Guarded`]
/// has been sent; true when none is left. For processes about to exit.
pub async fn wait_for_kills(limit: Duration) -> bool {
    let wait = async {
        loop {
            let settled = SETTLED.notified();
            if PENDING.load(Ordering::SeqCst) == 0 {
                return;
            }
            settled.await;
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}
