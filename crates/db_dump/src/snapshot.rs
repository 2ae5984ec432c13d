//! One point in time for the whole dump: a set of connections whose
//! transactions all see the same committed data.
//!
//! Every read of a dump (the STATSEXPORT lookup, the owner map, the
//! optout lists, each enumeration, the totals, apps and badges) runs on a
//! connection leased from this set, and every connection's snapshot is
//! taken before anything is read. `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT` on N connections gives N read views; they see the same data
//! when no transaction started or committed between the first and the
//! last. InnoDB takes a new number from one counter for each of those
//! events (`Innodb_max_trx_id`), so an unchanged counter around the N
//! starts proves the views equal; otherwise we roll back and try again.
//! No lock is taken (no FLUSH TABLES WITH READ LOCK, no RELOAD privilege),
//! so the project's writers never wait for us. A server too busy to align
//! the views, or one without that counter (MySQL), gets one connection:
//! trivially one view, the enumerations then run one after another.

use std::sync::Mutex;
use std::time::Duration;

use boinc_db::DbSettings;
use futures_util::future::try_join_all;
use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::sync::Semaphore;

use crate::error::{db, DumpError};

/// Attempts at aligning the views before falling back to one connection.
const ATTEMPTS: u32 = 50;

pub struct Snapshot {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    /// Connections in the snapshot.
    pub connections: usize,
    /// Attempts it took to align them (0: one connection, nothing to align).
    pub attempts: u32,
    /// Why there is only one connection although more were asked for.
    pub fallback: Option<String>,
}

/// A connection of the snapshot; goes back to the set when dropped.
pub struct Lease<'a> {
    conn: Option<Conn>,
    snap: &'a Snapshot,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("lease holds a connection")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("lease holds a connection")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if let Ok(mut idle) = self.snap.idle.lock() {
                idle.push(c);
            }
            self.snap.permits.add_permits(1);
        }
    }
}

async fn connect(settings: &DbSettings) -> Result<Conn, DumpError> {
    let mut conn = Conn::new(settings.opts())
        .await
        .map_err(db(format!("connect to {settings:?}")))?;
    // A slow consumer must not make the server drop us mid-stream.
    conn.query_drop("SET SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600")
        .await
        .map_err(db("session setup"))?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(db("session setup"))?;
    Ok(conn)
}

async fn start(conn: &mut Conn) -> Result<(), DumpError> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(db("start snapshot"))
}

/// InnoDB's transaction counter, None when the server has none (MySQL).
async fn counter(conn: &mut Conn) -> Result<Option<u64>, DumpError> {
    let r: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Innodb_max_trx_id'")
        .await
        .map_err(db("read Innodb_max_trx_id"))?;
    Ok(r.and_then(|(_, v)| v.trim().parse().ok()))
}

impl Snapshot {
    /// `n` connections (at least 1) in one consistent snapshot.
    pub async fn open(settings: &DbSettings, n: usize) -> Result<Self, DumpError> {
        let n = n.max(1);
        let mut conns = try_join_all((0..n).map(|_| connect(settings))).await?;
        let mut attempts = 0;
        let mut fallback = None;
        if n > 1 {
            match counter(&mut conns[0]).await? {
                None => {
                    fallback = Some(
                        "the server has no Innodb_max_trx_id to check that connections share one snapshot"
                            .to_owned(),
                    )
                }
                Some(_) => {
                    let mut aligned = false;
                    while attempts < ATTEMPTS {
                        attempts += 1;
                        let before = counter(&mut conns[0]).await?;
                        try_join_all(conns.iter_mut().map(start)).await?;
                        let after = counter(&mut conns[0]).await?;
                        if before.is_some() && before == after {
                            aligned = true;
                            break;
                        }
                        for c in conns.iter_mut() {
                            c.query_drop("ROLLBACK").await.map_err(db("rollback"))?;
                        }
                        // Writers commit in bursts: wait for a gap.
                        let ms = 1 + rand::random::<u64>() % (2 * attempts as u64);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if !aligned {
                        fallback = Some(format!(
                            "commits never paused during {ATTEMPTS} attempts to align {n} snapshots"
                        ));
                    }
                }
            }
            if let Some(why) = &fallback {
                tracing::warn!("one database connection for the whole dump: {why}");
                for c in conns.drain(1..) {
                    let _ = c.disconnect().await;
                }
                conns[0]
                    .query_drop("ROLLBACK")
                    .await
                    .map_err(db("rollback"))?;
                start(&mut conns[0]).await?;
            }
        } else {
            start(&mut conns[0]).await?;
        }
        let connections = conns.len();
        Ok(Self {
            idle: Mutex::new(conns),
            permits: Semaphore::new(connections),
            connections,
            attempts: if connections > 1 { attempts } else { 0 },
            fallback,
        })
    }

    /// Wait for a free connection. Fails once [`Snapshot::close_leases`]
    /// was called (the run is being cancelled).
    pub async fn lease(&self) -> Result<Lease<'_>, DumpError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DumpError::Internal("cancelled after another error".into()))?;
        permit.forget();
        let conn = self
            .idle
            .lock()
            .map_err(|_| DumpError::Internal("snapshot lock poisoned".into()))?
            .pop()
            .ok_or_else(|| DumpError::Internal("no idle connection for a permit".into()))?;
        Ok(Lease {
            conn: Some(conn),
            snap: self,
        })
    }

    /// Wake everyone waiting for a connection with an error.
    pub fn close_leases(&self) {
        self.permits.close();
    }

    /// End every transaction and connection.
    pub async fn close(&self) {
        let conns: Vec<Conn> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => return,
        };
        for c in conns {
            let _ = c.disconnect().await;
        }
    }
}
