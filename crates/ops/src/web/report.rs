//! The ops page's consent report, computed in the background.
//!
//! The report reads every consent row (seconds at a million users), so a
//! page never computes it itself: it shows the last report with its age, or
//! "computing", and at most one computation runs however many pages ask.
//! The computation belongs to the server, not to a request: a page that
//! goes away does not stop it (the next page wants it), the server stopping
//! does — [`ReportCache::stop`] aborts it, and dropping the abandoned
//! query's connection guard kills the statement in MariaDB.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::chart::{self, RenderedChart};
use crate::consent_records::ConsentReport;
use crate::ops::ConsentOps;

/// How long a report is shown before a page view starts a fresh one.
pub const REPORT_TTL: Duration = Duration::from_secs(60);
/// How long a page waits for a computation in flight before answering
/// without it (small projects then never see "computing").
pub const PAGE_WAIT: Duration = Duration::from_millis(500);
/// After a failed computation, page views wait this long before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// What a page shows.
#[derive(Debug, Clone)]
pub struct ReportView {
    /// The latest finished report and when it finished.
    pub report: Option<(ConsentReport, Duration)>,
    /// Its charts, drawn once when it was computed (empty without one).
    pub charts: Arc<Vec<RenderedChart>>,
    /// A computation is running.
    pub computing: bool,
    /// The last computation failed (details are in the server log).
    pub failed: bool,
}

#[derive(Default)]
struct Inner {
    last: Option<(Instant, ConsentReport, Arc<Vec<RenderedChart>>)>,
    failed_at: Option<Instant>,
    running: Option<JoinHandle<()>>,
    /// Completes when the running computation ends.
    done: Option<tokio::sync::watch::Receiver<bool>>,
}

pub struct ReportCache {
    ops: ConsentOps,
    inner: Mutex<Inner>,
}

impl ReportCache {
    pub fn new(ops: ConsentOps) -> Arc<Self> {
        Arc::new(Self {
            ops,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves valid data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a computation unless one is running or the last report is
    /// fresh; never waits for the database.
    fn refresh(self: &Arc<Self>) -> Option<tokio::sync::watch::Receiver<bool>> {
        let mut g = self.lock();
        if g.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return g.done.clone();
        }
        let fresh = g
            .last
            .as_ref()
            .is_some_and(|(at, ..)| at.elapsed() < REPORT_TTL);
        let backing_off = g.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if fresh || backing_off {
            return None;
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let me = Arc::downgrade(self);
        let ops = self.ops.clone();
        g.running = Some(tokio::spawn(async move {
            let t = Instant::now();
            // The charts are drawn here, once per report, not per view.
            let r = ops
                .consent_report()
                .await
                .map(|r| (chart::render_report(&r), r));
            if let Some(me) = me.upgrade() {
                let mut g = me.lock();
                match r {
                    Ok((charts, r)) => {
                        tracing::info!(secs = t.elapsed().as_secs_f64(), "consent report computed");
                        g.last = Some((Instant::now(), r, Arc::new(charts)));
                        g.failed_at = None;
                    }
                    Err(e) => {
                        tracing::error!("consent report: {e}");
                        g.failed_at = Some(Instant::now());
                    }
                }
            }
            let _ = tx.send(true);
        }));
        g.done = Some(rx.clone());
        Some(rx)
    }

    /// What a page shows now, starting a computation when needed; waits at
    /// most [`PAGE_WAIT`] for one in flight.
    pub async fn view(self: &Arc<Self>) -> ReportView {
        if let Some(mut done) = self.refresh() {
            let _ = tokio::time::timeout(PAGE_WAIT, done.wait_for(|d| *d)).await;
        }
        let g = self.lock();
        ReportView {
            report: g.last.as_ref().map(|(at, r, _)| (r.clone(), at.elapsed())),
            charts: g.last.as_ref().map(|(.., c)| c.clone()).unwrap_or_default(),
            computing: g.running.as_ref().is_some_and(|h| !h.is_finished()),
            failed: g.failed_at.is_some(),
        }
    }

    /// Abort a computation in flight and wait until it is gone (its query
    /// is then being killed; see `boinc_db::cancel::wait_for_kills`).
    pub async fn stop(&self) {
        let running = self.lock().running.take();
        if let Some(h) = running {
            h.abort();
            let _ = h.await;
        }
    }
}

impl Drop for ReportCache {
    fn drop(&mut self) {
        if let Some(h) = self.lock().running.take() {
            h.abort();
        }
    }
}

/// "42 s", "3 min", "2 h" for the page.
pub fn age_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age_text;
    use std::time::Duration;

    #[test]
    fn ages_read_well() {
        assert_eq!(age_text(Duration::from_secs(0)), "0 s");
        assert_eq!(age_text(Duration::from_secs(119)), "119 s");
        assert_eq!(age_text(Duration::from_secs(600)), "10 min");
        assert_eq!(age_text(Duration::from_secs(7200)), "2 h");
    }
}
