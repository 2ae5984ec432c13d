//! What a reply promises (SPEC section 3): `<success/>` means committed;
//! an error reply means nothing of the call was written, then or later.
//!
//! Two things could break that, and this module owns both answers:
//! - The request deadline. A handler runs in a task of its own; at the
//!   deadline the dispatcher answers -138 only if the handler has not yet
//!   begun its COMMIT ([`CommitGuard::expire`]), and a handler whose reply
//!   was given never commits ([`CommitGuard::begin_commit`]). Past the
//!   deadline, a handler that is committing is waited for.
//! - A COMMIT whose answer is lost (connection killed, server restarted).
//!   Its fate is looked up ([`lost_commit`]) before anything is replied;
//!   if the database cannot tell in time, the reply is neither success
//!   nor error (`RpcError::OutcomeUnknown`, HTTP 503).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::commit::{self, Fate, Trace};
use boinc_db::DbError;
use mysql_async::Transaction;
use tokio::sync::Notify;

use crate::error::RpcError;

const RUNNING: u8 = 0;
const COMMITTING: u8 = 1;
const EXPIRED: u8 = 2;

/// One request's race between its deadline and its COMMIT.
#[derive(Debug, Default)]
pub struct CommitGuard {
    state: AtomicU8,
    released: Notify,
}

impl CommitGuard {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// About to send COMMIT: true if the caller may (its reply has not been
    /// given), and from now on the deadline waits for it. False: the caller
    /// was answered -138 already and must roll back.
    pub fn begin_commit(&self) -> bool {
        match self
            .state
            .compare_exchange(RUNNING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == COMMITTING,
        }
    }

    /// The COMMIT did not happen (known for sure): the deadline may answer
    /// -138 again.
    pub fn not_written(&self) {
        if self
            .state
            .compare_exchange(COMMITTING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.released.notify_waiters();
        }
    }

    /// The deadline: true if the caller may be answered -138 now (nothing
    /// of the request will be committed after this).
    pub fn expire(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self.state.load(Ordering::Acquire) == EXPIRED
    }

    /// Whether the caller has been answered already (work may stop).
    pub fn expired(&self) -> bool {
        self.state.load(Ordering::Acquire) == EXPIRED
    }

    /// Resolves after the next [`not_written`](Self::not_written); call
    /// `enable` on it before checking [`expire`](Self::expire) again, so
    /// no wake-up is lost.
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }
}

/// Why a COMMIT did not (certainly) happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncommitted {
    /// The caller was answered by the deadline: rolled back, stop.
    Answered,
    /// Rolled back for sure (the COMMIT's answer was lost, and it was
    /// looked up): nothing written, the deadline may answer again, and
    /// the work may be tried again.
    RolledBack,
    /// The COMMIT's answer was lost and its fate could not be learnt.
    Unknown,
}

impl From<Uncommitted> for RpcError {
    fn from(u: Uncommitted) -> Self {
        match u {
            Uncommitted::Answered | Uncommitted::RolledBack => RpcError::DbUnavailable,
            Uncommitted::Unknown => RpcError::OutcomeUnknown,
        }
    }
}

/// COMMIT `tx` under `guard`, learning its fate by `trace` if the answer
/// is lost.
pub async fn commit(
    pool: &mysql_async::Pool,
    budget: Duration,
    guard: &CommitGuard,
    tx: Transaction<'_>,
    trace: Trace,
) -> Result<(), Uncommitted> {
    let thread = tx.id();
    if !guard.begin_commit() {
        // Answered already: dropping the transaction rolls it back.
        return Err(Uncommitted::Answered);
    }
    let sent = Instant::now();
    let Err(e) = tx.commit().await else {
        return Ok(());
    };
    // Even an error packet may come after the commit happened (a killed
    // connection says so while dying): ask, whatever the error.
    tracing::warn!(error = %e, "COMMIT failed; looking up whether it happened");
    match lost_commit(pool, budget, thread, sent, &trace).await {
        Some(Fate::Committed) => Ok(()),
        Some(Fate::RolledBack) => {
            guard.not_written();
            Err(Uncommitted::RolledBack)
        }
        None => Err(Uncommitted::Unknown),
    }
}

/// The fate of a COMMIT sent at `sent` on connection `thread` whose
/// answer was lost, asked on fresh connections for up to `budget`; None
/// if the database could not tell in that time.
pub async fn lost_commit(
    pool: &mysql_async::Pool,
    budget: Duration,
    thread: u32,
    sent: Instant,
    trace: &Trace,
) -> Option<Fate> {
    let give_up = Instant::now() + budget;
    let mut pause = Duration::from_millis(20);
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        let attempt = async {
            let mut conn = pool.get_conn().await.map_err(DbError::from)?;
            commit::settle(&mut conn, thread, sent).await?;
            trace.fate(&mut conn).await
        };
        match tokio::time::timeout(left, attempt).await {
            Ok(Ok(fate)) => {
                tracing::info!(?fate, "fate of the COMMIT whose answer was lost");
                return Some(fate);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot look up a COMMIT's fate yet"),
            Err(_) => {}
        }
        if Instant::now() + pause >= give_up {
            tracing::error!(
                "could not learn whether a COMMIT happened; the client is told the outcome is unknown"
            );
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Delete COMMIT tokens nobody can ask about any more (small batches, at
/// most 100 per call).
pub async fn purge_markers(pool: &mysql_async::Pool) {
    const BATCH: u32 = 1000;
    let Ok(mut conn) = pool.get_conn().await else {
        return;
    };
    for _ in 0..100 {
        match commit::purge_markers(&mut conn, boinc_db::now(), BATCH).await {
            Ok(n) if n < u64::from(BATCH) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not purge old rpc_commit rows");
                break;
            }
        }
    }
}
