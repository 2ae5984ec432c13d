//! Group commit for am_set_info's consent-only requests.
//!
//! A consent flip is a few tiny statements and one durable commit; alone,
//! the round trips and the commit cost more than the work. Requests are
//! queued here and a few workers each take everything queued so far (up to
//! `consent_flip::MAX_GROUP`) into one transaction: under load a group
//! fills while the previous one commits, and a lone request goes at once,
//! so nothing waits for a timer. Every change is decided as it would be
//! alone (`boinc_db::consent_flip`). If a group fails, each of its requests
//! is tried again on its own, so one request's failure never costs another
//! its change.
//!
//! Each worker has a connection of its own with autocommit off
//! (`consent_flip::GroupConn`); the shared state holds the handle.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::consent_flip::{Flip, FlipOutcome, GroupConn, MAX_GROUP};
use boinc_db::DbError;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Concurrent groups: one gathers while another commits; more only adds
/// transactions that contend for the same commit.
pub const WORKERS: usize = 2;

/// Requests waiting at most; past that, submitting waits for room.
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    #[error("no database connection within the timeout")]
    NoConnection,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the consent workers have stopped")]
    Stopped,
}

impl FlipError {
    /// The database could not be reached (as opposed to refusing a
    /// statement): trying each request apart would only wait again.
    pub fn is_connectivity(&self) -> bool {
        match self {
            FlipError::NoConnection => true,
            FlipError::Db(e) => e.is_connectivity(),
            FlipError::Stopped => false,
        }
    }
}

struct Job {
    flip: Flip,
    reply: oneshot::Sender<Result<FlipOutcome, FlipError>>,
}

/// The queue's handle; workers run as long as the runtime does.
pub struct FlipGroups {
    queue: mpsc::Sender<Job>,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    groups: AtomicU64,
    changes: AtomicU64,
    largest: AtomicUsize,
}

/// What the workers have done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlipStats {
    /// Transactions attempted (groups, and single retries after a failed group).
    pub groups: u64,
    /// Requests those transactions carried.
    pub changes: u64,
    /// Most requests in one transaction.
    pub largest: usize,
}

impl FlipGroups {
    /// Start `workers` workers on the current tokio runtime, connecting
    /// with `opts` (the project database).
    pub fn start(opts: mysql_async::Opts, db_timeout: Duration, workers: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Counters::default());
        for _ in 0..workers.max(1) {
            let link = Link {
                opts: opts.clone(),
                db_timeout,
                conn: None,
            };
            tokio::spawn(work(rx.clone(), link, stats.clone()));
        }
        Self { queue, stats }
    }

    pub fn stats(&self) -> FlipStats {
        FlipStats {
            groups: self.stats.groups.load(Ordering::Relaxed),
            changes: self.stats.changes.load(Ordering::Relaxed),
            largest: self.stats.largest.load(Ordering::Relaxed),
        }
    }

    /// Apply one change, grouped with whatever else is waiting.
    pub async fn submit(&self, flip: Flip) -> Result<FlipOutcome, FlipError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { flip, reply })
            .await
            .map_err(|_| FlipError::Stopped)?;
        answer.await.map_err(|_| FlipError::Stopped)?
    }
}

async fn work(rx: Arc<Mutex<mpsc::Receiver<Job>>>, mut link: Link, stats: Arc<Counters>) {
    loop {
        // Holding the queue means gathering a group and running its
        // statements; it is let go before the COMMIT, so the next worker
        // gathers what arrived meanwhile while this group's commit is made
        // durable. Fewer, larger groups cost the database less than many
        // small ones. Order holds: a later group naming one of these
        // accounts waits for this group's commit on the row lock.
        let mut queue = rx.clone().lock_owned().await;
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut jobs = vec![first];
        let mut yielded = false;
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) if !yielded => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        // A request whose client has gone (or timed out) is not applied,
        // as it would not be had it run alone.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let flips: Vec<Flip> = jobs.iter().map(|j| j.flip.clone()).collect();
        let mut first = link.apply(&flips, &stats, move || drop(queue)).await;
        if first.as_ref().is_err_and(FlipError::is_connectivity) {
            // Perhaps only this connection broke (a server restart): once
            // more on a fresh one.
            first = link.apply(&flips, &stats, || ()).await;
        }
        match first {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) if jobs.len() == 1 => {
                let _ = jobs.into_iter().next().map(|j| j.reply.send(Err(e)));
            }
            Err(e) if e.is_connectivity() => {
                tracing::warn!(error = %e, requests = jobs.len(), "consent group: database unreachable");
                for job in jobs {
                    let _ = job.reply.send(Err(FlipError::NoConnection));
                }
            }
            Err(e) => {
                // Nothing of the group was written: each request on its
                // own, with its own outcome.
                tracing::warn!(error = %e, requests = jobs.len(),
                    "consent group failed; applying its requests one by one");
                for job in jobs {
                    let one = link
                        .apply(std::slice::from_ref(&job.flip), &stats, || ())
                        .await
                        .and_then(|o| {
                            o.into_iter()
                                .next()
                                .ok_or(FlipError::Db(DbError::Missing("consent change outcome")))
                        });
                    let _ = job.reply.send(one);
                }
            }
        }
    }
}

/// A connection this long unused is replaced rather than trusted: the
/// server may have closed it (wait_timeout) and a group would fail on it.
const IDLE_MAX: Duration = Duration::from_secs(20);

/// A worker's own connection, made when needed.
struct Link {
    opts: mysql_async::Opts,
    db_timeout: Duration,
    conn: Option<(GroupConn, Instant)>,
}

impl Link {
    /// One transaction of `flips`; `before_commit` runs when only the
    /// COMMIT is left (or is dropped unrun if something fails first).
    async fn apply(
        &mut self,
        flips: &[Flip],
        stats: &Counters,
        before_commit: impl FnOnce(),
    ) -> Result<Vec<FlipOutcome>, FlipError> {
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats
            .changes
            .fetch_add(flips.len() as u64, Ordering::Relaxed);
        stats.largest.fetch_max(flips.len(), Ordering::Relaxed);
        let mut conn = match self.conn.take() {
            Some((c, used)) if used.elapsed() < IDLE_MAX => c,
            _ => match tokio::time::timeout(self.db_timeout, GroupConn::connect(self.opts.clone()))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(FlipError::NoConnection),
            },
        };
        // On an error the connection is dropped: closing it rolls back
        // whatever the failed group left open.
        let outcomes = conn
            .apply_then(flips, boinc_db::now(), before_commit)
            .await?;
        self.conn = Some((conn, Instant::now()));
        Ok(outcomes)
    }
}
