//! `GET /health` for load balancers: 200 while the database answers, 503
//! with a short reason soon after it stops answering (get_project_config
//! keeps being served from its cache meanwhile).
//!
//! One background loop asks the database once a second on a connection of
//! its own (not the pool: a pool busy with requests is not a database
//! down); a probe only reads the last answer, so any number of balancers
//! probing as often as they like cost the database nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

/// How often the database is asked.
const EVERY: Duration = Duration::from_secs(1);
/// Longest wait for one answer (connecting included).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// Unhealthy once the last answer is older than this: with a question a
/// second and a second to answer, a lost database shows within 3 s.
const STALE_AFTER: Duration = Duration::from_millis(2500);

#[derive(Debug)]
pub struct Health {
    last: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    ok_at: Option<Instant>,
    problem: String,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            last: Mutex::new(Seen {
                ok_at: None,
                problem: "starting".into(),
            }),
        }
    }
}

impl Health {
    /// Ok, or why not (one line).
    pub fn status(&self) -> Result<(), String> {
        let seen = self
            .last
            .lock()
            .map_err(|_| "health state poisoned".to_owned())?;
        match seen.ok_at {
            Some(at) if at.elapsed() < STALE_AFTER => Ok(()),
            Some(at) => Err(format!(
                "database unreachable for {} s: {}",
                at.elapsed().as_secs(),
                seen.problem
            )),
            None => Err(format!("database not reached yet: {}", seen.problem)),
        }
    }

    fn ok(&self) {
        if let Ok(mut s) = self.last.lock() {
            s.ok_at = Some(Instant::now());
        }
    }

    fn problem(&self, why: String) {
        if let Ok(mut s) = self.last.lock() {
            // One line, whatever the driver's message holds.
            s.problem = why.replace(['\r', '\n'], " ");
        }
    }

    /// Ask the database once a second, for as long as the server runs.
    pub async fn watch(&self, opts: mysql_async::Opts) {
        let mut conn: Option<mysql_async::Conn> = None;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let asked = async {
                let mut c = match conn.take() {
                    Some(c) => c,
                    None => mysql_async::Conn::new(opts.clone()).await?,
                };
                c.query_drop("DO 1").await?;
                Ok::<_, mysql_async::Error>(c)
            };
            match tokio::time::timeout(ANSWER_WITHIN, asked).await {
                Ok(Ok(c)) => {
                    conn = Some(c);
                    self.ok();
                }
                // The connection, if any, is dropped: a fresh one next time.
                Ok(Err(e)) => self.problem(e.to_string()),
                Err(_) => {
                    self.problem(format!("no answer within {} ms", ANSWER_WITHIN.as_millis()))
                }
            }
        }
    }
}
