//! Group commit for am_set_info's consent-only requests.
//!
//! A consent flip is a few tiny statements and one durable commit; alone,
//! the round trips and the commit cost more than the work. Requests are
//! queued here and a few workers each take everything queued so far (up to
//! `consent::group::MAX_GROUP`) into one transaction: under load a group
//! fills while the previous one commits, and a lone request goes at once,
//! so nothing waits for a timer. Every change is decided as it would be
//! alone (`boinc_db::consent::group`).
//!
//! What a reply promises holds by construction (SPEC section 3):
//! - A group never waits for a row lock: an account held elsewhere is
//!   skipped and its request handed back to be applied alone
//!   ([`Reply::Alone`]), where it waits without holding anything of the
//!   others'.
//! - A request joins the COMMIT only once its guard is claimed
//!   (`crate::commit::CommitGuard`): a request answered -138 by its
//!   deadline is never committed; if one is found answered after the
//!   group's statements ran, the group is rolled back and staged again
//!   without it.
//! - Whatever fails before the COMMIT writes nothing; the requests go back
//!   to be applied alone, in their own time, before anyone is answered.
//!   A COMMIT whose answer is lost is looked up (`crate::commit`) before
//!   anyone is answered.
//!
//! Each worker has a connection of its own with autocommit off
//! (`consent::group::GroupConn`); the shared state holds the handle.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::commit::{Fate, Trace};
use boinc_db::consent::group::{Flip, FlipOutcome, GroupConn, Staged, MAX_GROUP};
use boinc_db::DbError;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::commit::{lost_commit, CommitGuard};

/// Concurrent groups: one gathers while another commits; more only adds
/// transactions that contend for the same commit.
pub const WORKERS: usize = 2;

/// Requests waiting at most; past that, submitting waits for room.
const QUEUE: usize = 4096;

/// A connection this long unused is replaced rather than trusted: the
/// server may have closed it (wait_timeout) and a group would fail on it.
const IDLE_MAX: Duration = Duration::from_secs(20);

/// What became of a submitted change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Decided and, where it wrote, committed. Never `FlipOutcome::Busy`.
    Done(FlipOutcome),
    /// Nothing of it was written: apply it alone (its account was held
    /// elsewhere or is unknown, or its group failed before committing).
    Alone,
}

#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    #[error("the consent workers have stopped")]
    Stopped,
    /// The group's COMMIT answer was lost and its fate could not be learnt.
    #[error("the outcome of the consent change is unknown")]
    OutcomeUnknown,
}

struct Job {
    flip: Flip,
    guard: Arc<CommitGuard>,
    reply: oneshot::Sender<Result<Reply, FlipError>>,
}

impl Job {
    fn answer(self, r: Result<Reply, FlipError>) {
        let _ = self.reply.send(r);
    }
}

/// The queue's handle; workers run as long as the runtime does.
pub struct FlipGroups {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    groups: AtomicU64,
    changes: AtomicU64,
    largest: AtomicUsize,
    handed_back: AtomicU64,
    /// The server cannot group (no SKIP LOCKED): every change goes alone.
    unsupported: AtomicBool,
}

/// What the workers have done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlipStats {
    /// Groups staged (a group staged again without an answered request
    /// counts again).
    pub groups: u64,
    /// Requests those groups carried.
    pub changes: u64,
    /// Most requests in one group.
    pub largest: usize,
    /// Requests handed back to be applied alone (busy or unknown account,
    /// failed group).
    pub handed_back: u64,
}

/// How workers reach the database and how long they give it.
#[derive(Clone)]
pub struct Setup {
    /// The project database, for the workers' own connections.
    pub opts: mysql_async::Opts,
    /// For looking up a lost COMMIT's fate.
    pub pool: mysql_async::Pool,
    /// Connecting, and each group's statements and COMMIT.
    pub db_timeout: Duration,
    /// Looking up a lost COMMIT's fate.
    pub lookup_budget: Duration,
    /// Where each committed group's size is counted (`crate::metrics`).
    pub group_sizes: prometheus_client::metrics::histogram::Histogram,
}

impl FlipGroups {
    /// Start `workers` workers on the current tokio runtime.
    pub fn start(setup: Setup, workers: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared::default());
        for _ in 0..workers.max(1) {
            let link = Link {
                setup: setup.clone(),
                conn: None,
            };
            tokio::spawn(work(rx.clone(), link, shared.clone()));
        }
        Self { queue, shared }
    }

    pub fn stats(&self) -> FlipStats {
        FlipStats {
            groups: self.shared.groups.load(Ordering::Relaxed),
            changes: self.shared.changes.load(Ordering::Relaxed),
            largest: self.shared.largest.load(Ordering::Relaxed),
            handed_back: self.shared.handed_back.load(Ordering::Relaxed),
        }
    }

    /// Apply one change, grouped with whatever else is waiting, under the
    /// request's guard.
    pub async fn submit(&self, flip: Flip, guard: Arc<CommitGuard>) -> Result<Reply, FlipError> {
        if self.shared.unsupported.load(Ordering::Relaxed) {
            return Ok(Reply::Alone);
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { flip, guard, reply })
            .await
            .map_err(|_| FlipError::Stopped)?;
        // A dropped answer: the request was answered by its deadline and
        // left out of its group (nothing of it written).
        answer.await.map_err(|_| FlipError::Stopped)?
    }
}

async fn work(rx: Arc<Mutex<mpsc::Receiver<Job>>>, mut link: Link, shared: Arc<Shared>) {
    loop {
        // Holding the queue means gathering a group and running its
        // statements (which never wait for a lock); it is let go before
        // the COMMIT, so the next worker gathers what arrived meanwhile
        // while this group's commit is made durable.
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
        if shared.unsupported.load(Ordering::Relaxed) {
            hand_back(&shared, jobs);
            continue;
        }
        run_group(&mut link, &shared, jobs, queue).await;
    }
}

/// Nothing of these was written: back to their handlers, to go alone.
fn hand_back(shared: &Shared, jobs: Vec<Job>) {
    shared
        .handed_back
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    for j in jobs {
        j.answer(Ok(Reply::Alone));
    }
}

async fn run_group<Q>(link: &mut Link, shared: &Shared, mut jobs: Vec<Job>, queue: Q) {
    let mut queue = Some(queue);
    loop {
        // A request already answered (deadline) or abandoned is not applied.
        jobs.retain(|j| !j.reply.is_closed() && !j.guard.expired());
        if jobs.is_empty() {
            return;
        }
        shared.groups.fetch_add(1, Ordering::Relaxed);
        shared
            .changes
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        shared.largest.fetch_max(jobs.len(), Ordering::Relaxed);
        let flips: Vec<Flip> = jobs.iter().map(|j| j.flip.clone()).collect();
        let staged = match link.stage(&flips, shared).await {
            Ok(s) => s,
            Err(why) => {
                if let Some(why) = why {
                    tracing::warn!(error = %why, requests = jobs.len(),
                        "consent group failed before its COMMIT; its requests go alone");
                }
                drop(queue.take());
                hand_back(shared, jobs);
                return;
            }
        };
        // Claim every request the COMMIT decides; one answered meanwhile
        // must not commit, so the group goes again without it.
        let mut claimed = Vec::new();
        let mut refused = false;
        for (i, (j, o)) in jobs.iter().zip(&staged.outcomes).enumerate() {
            if *o != FlipOutcome::Busy {
                if j.guard.begin_commit() {
                    claimed.push(i);
                } else {
                    refused = true;
                }
            }
        }
        if refused {
            for i in claimed {
                jobs[i].guard.not_written();
            }
            if !link.rollback().await {
                drop(queue.take());
                hand_back(shared, jobs);
                return;
            }
            continue;
        }
        drop(queue.take());
        finish(link, shared, jobs, staged).await;
        return;
    }
}

/// COMMIT a staged, claimed group and answer it.
async fn finish(link: &mut Link, shared: &Shared, jobs: Vec<Job>, staged: Staged) {
    let mut decided = Vec::new();
    let mut busy = Vec::new();
    for (j, o) in jobs.into_iter().zip(staged.outcomes) {
        if o == FlipOutcome::Busy {
            busy.push(j);
        } else {
            decided.push((j, o));
        }
    }
    hand_back(shared, busy);
    let sent = Instant::now();
    let thread = link.thread();
    let committed = match link.commit().await {
        Ok(()) => Some(Fate::Committed),
        // Nothing written: every decision holds whether or not it committed.
        Err(_) if staged.trace.is_none() => Some(Fate::Committed),
        Err(e) => {
            tracing::warn!(error = %e, requests = decided.len(),
                "consent group's COMMIT failed; looking up whether it happened");
            match (thread, staged.trace) {
                (Some(thread), Some(t)) => {
                    lost_commit(
                        &link.setup.pool,
                        link.setup.lookup_budget,
                        thread,
                        sent,
                        &Trace::Row(t),
                    )
                    .await
                }
                _ => None,
            }
        }
    };
    match committed {
        Some(Fate::Committed) => {
            link.setup.group_sizes.observe(decided.len() as f64);
            for (j, o) in decided {
                j.answer(Ok(Reply::Done(o)));
            }
        }
        Some(Fate::RolledBack) => {
            let jobs: Vec<Job> = decided
                .into_iter()
                .map(|(j, _)| {
                    j.guard.not_written();
                    j
                })
                .collect();
            hand_back(shared, jobs);
        }
        None => {
            for (j, _) in decided {
                j.answer(Err(FlipError::OutcomeUnknown));
            }
        }
    }
}

/// A worker's own connection, made when needed.
struct Link {
    setup: Setup,
    conn: Option<(GroupConn, Instant)>,
}

impl Link {
    fn thread(&self) -> Option<u32> {
        self.conn.as_ref().map(|(c, _)| c.thread())
    }

    /// The group's statements on this worker's connection. Err(None): the
    /// server cannot group (noted in `shared`); Err(Some): failed, nothing
    /// written, the connection is dropped.
    async fn stage(&mut self, flips: &[Flip], shared: &Shared) -> Result<Staged, Option<String>> {
        let timeout = self.setup.db_timeout;
        let conn = match self.conn.take() {
            Some((c, used)) if used.elapsed() < IDLE_MAX => c,
            old => {
                if let Some((c, _)) = old {
                    c.disconnect().await;
                }
                match tokio::time::timeout(timeout, GroupConn::connect(self.setup.opts.clone()))
                    .await
                {
                    Ok(Ok(Ok(c))) => c,
                    Ok(Ok(Err(unsupported))) => {
                        if !shared.unsupported.swap(true, Ordering::Relaxed) {
                            tracing::warn!("{unsupported}");
                        }
                        return Err(None);
                    }
                    Ok(Err(e)) => return Err(Some(e.to_string())),
                    Err(_) => return Err(Some("no database connection in time".into())),
                }
            }
        };
        let mut conn = conn;
        let thread = conn.thread();
        match tokio::time::timeout(timeout, conn.stage(flips, boinc_db::now())).await {
            Ok(Ok(staged)) => {
                self.conn = Some((conn, Instant::now()));
                Ok(staged)
            }
            // Dropping the connection rolls the group back.
            Ok(Err(e)) => Err(Some(e.to_string())),
            Err(_) => {
                // Its statement may still run on the server, holding its
                // locks until it notices: end it now.
                drop(conn);
                self.kill(thread);
                Err(Some("the group's statements took too long".into()))
            }
        }
    }

    /// Roll the open group back; false if the connection had to go.
    async fn rollback(&mut self) -> bool {
        let Some((mut c, _)) = self.conn.take() else {
            return false;
        };
        match tokio::time::timeout(self.setup.db_timeout, c.rollback()).await {
            Ok(Ok(())) => {
                self.conn = Some((c, Instant::now()));
                true
            }
            _ => false,
        }
    }

    async fn commit(&mut self) -> Result<(), DbError> {
        let Some((mut c, _)) = self.conn.take() else {
            return Err(DbError::Missing("group connection"));
        };
        match tokio::time::timeout(self.setup.db_timeout, c.commit()).await {
            Ok(Ok(())) => {
                self.conn = Some((c, Instant::now()));
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DbError::Missing("COMMIT answer in time")),
        }
    }

    fn kill(&self, thread: u32) {
        let pool = self.setup.pool.clone();
        tokio::spawn(async move {
            use mysql_async::prelude::Queryable;
            if let Ok(mut c) = pool.get_conn().await {
                // A number, not text: KILL takes no placeholder.
                let _ = c.query_drop(format!("KILL CONNECTION {thread}")).await;
            }
        });
    }
}
