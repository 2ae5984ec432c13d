//! Shared server state: config, pool, the cached project facts
//! get_project_config answers from, the per-IP counters and the consent
//! group-commit queue's handle. Data only:
//! the RPCs, the renderers and `crate::limits` use it; it imports none of
//! them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use boinc_db::locking::LockSyntax;
use boinc_db::models::Platform;
use boinc_db::rate_limit::Key;
use boinc_db::text::charset::Charset;
use boinc_db::ProjectConfig;

use crate::error::RpcError;
use crate::flip_group::FlipGroups;
pub use crate::settings::{Limits, Options, Project};

pub struct AppState {
    pub config: ProjectConfig,
    pub pool: mysql_async::Pool,
    pub options: Options,
    pub project: ProjectCache,
    /// Per-client counters known to be full (see `crate::limits`).
    pub full_counters: Arc<FullCounters>,
    /// What the server has done so far (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Whether the database answers (`GET /health`).
    pub health: crate::health::Health,
    /// This process's additions to the shared counter table since it last
    /// checked the table's size.
    pub limit_rows: LimitRows,
    /// Abuse rules from config.xml.
    pub limits: Limits,
    /// Account and project switches from config.xml.
    pub rules: Project,
    /// Slots for team_email_list bodies being streamed (`Options::lookup_streams`).
    pub lookup_streams: Arc<tokio::sync::Semaphore>,
    /// Path of master_url (e.g. "/myproject/"): RPCs are served below it
    /// as well as at the root.
    pub url_prefix: String,
    /// The sessions' character set (`boinc_db::text::charset`), learnt from the
    /// first connection: it follows the database, which does not change
    /// while we run.
    charset: OnceLock<Charset>,
    /// The row-lock clauses the server offers (`boinc_db::locking`), learnt
    /// from the first connection that asks.
    locks: OnceLock<LockSyntax>,
    /// Consent-only am_set_info requests' group commit, started on first use
    /// (it needs the runtime).
    flip_groups: OnceLock<FlipGroups>,
    /// How to reach the project database outside the pool.
    db_opts: mysql_async::Opts,
}

impl AppState {
    pub fn new(config: ProjectConfig) -> Result<Arc<Self>, boinc_db::config::ConfigError> {
        Self::with_options(config, Options::default())
    }

    pub fn with_options(
        config: ProjectConfig,
        options: Options,
    ) -> Result<Arc<Self>, boinc_db::config::ConfigError> {
        let settings = config.database()?;
        let pool = boinc_db::pool(&settings);
        let url_prefix = url_path(config.master_url());
        let mut options = options;
        options.apply_config(&config)?;
        let limits = Limits::from_config(&config)?;
        let rules = Project::from_config(&config);
        let lookup_streams = Arc::new(tokio::sync::Semaphore::new(options.lookup_streams.max(1)));
        Ok(Arc::new(Self {
            full_counters: Arc::default(),
            metrics: crate::metrics::Metrics::new(options.metrics),
            health: crate::health::Health::default(),
            limit_rows: LimitRows::default(),
            config,
            pool,
            options,
            project: ProjectCache::default(),
            url_prefix,
            limits,
            rules,
            lookup_streams,
            charset: OnceLock::new(),
            locks: OnceLock::new(),
            flip_groups: OnceLock::new(),
            db_opts: settings.opts(),
        }))
    }

    /// A pooled connection, or -138 if none comes within `db_timeout`.
    pub async fn conn(&self) -> Result<mysql_async::Conn, RpcError> {
        let asked = Instant::now();
        let got = tokio::time::timeout(self.options.db_timeout, self.pool.get_conn()).await;
        self.metrics
            .pool_waits
            .observe(asked.elapsed().as_secs_f64());
        let kind = match got {
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot connect to database");
                "connect"
            }
            Err(_) => {
                tracing::warn!("timed out waiting for a database connection");
                "pool_timeout"
            }
        };
        self.metrics
            .db_errors
            .get_or_create(&crate::metrics::KindLabel { kind })
            .inc();
        Err(RpcError::DbUnavailable)
    }

    /// How to reach the project database outside the pool.
    pub fn db_opts(&self) -> &mysql_async::Opts {
        &self.db_opts
    }

    /// The character set `conn`'s session talks (one query, the first time).
    pub async fn charset(&self, conn: &mut mysql_async::Conn) -> Result<Charset, RpcError> {
        if let Some(cs) = self.charset.get() {
            return Ok(*cs);
        }
        let cs = boinc_db::text::charset::session_charset(conn).await?;
        Ok(*self.charset.get_or_init(|| cs))
    }

    /// The row-lock clauses `conn`'s server offers (probed the first time).
    pub async fn locks(&self, conn: &mut mysql_async::Conn) -> Result<LockSyntax, RpcError> {
        if let Some(l) = self.locks.get() {
            return Ok(*l);
        }
        let l = LockSyntax::probe(conn).await?;
        if !l.nowait {
            tracing::warn!(
                "the database server has no NOWAIT (MariaDB 10.3+, MySQL 8.0+): a request for \
                 an account locked elsewhere waits for it, holding a connection"
            );
        }
        Ok(*self.locks.get_or_init(|| l))
    }

    /// The consent-change queue (`crate::flip_group`); None when grouping
    /// is off (`rpc_consent_group_workers` 0).
    pub fn flip_groups(&self) -> Option<&FlipGroups> {
        let workers = self.options.consent_group_workers;
        (workers > 0).then(|| {
            self.flip_groups.get_or_init(|| {
                let setup = crate::flip_group::Setup {
                    opts: self.db_opts.clone(),
                    pool: self.pool.clone(),
                    db_timeout: self.options.db_timeout,
                    lookup_budget: self.options.request_timeout,
                    group_sizes: self.metrics.group_sizes.clone(),
                };
                FlipGroups::start(setup, workers)
            })
        })
    }

    /// The session character set, once a connection has told it.
    pub fn known_charset(&self) -> Option<Charset> {
        self.charset.get().copied()
    }

    /// BOINC's `stop_web` marker: every RPC but get_project_config says -183.
    pub fn check_web_running(&self) -> Result<(), RpcError> {
        if self.config.web_stopped() {
            Err(RpcError::ProjectDown)
        } else {
            Ok(())
        }
    }
}

fn url_path(master_url: &str) -> String {
    let path = master_url
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or("/"))
        .unwrap_or("/");
    let mut p = path.to_owned();
    if !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// What get_project_config needs from the database, as last read.
#[derive(Debug, Clone, Default)]
pub struct DbFacts {
    /// False until the database has answered once.
    pub loaded: bool,
    pub enroll_enabled: bool,
    pub platforms: Arc<Vec<Platform>>,
}

/// What get_project_config shows from files in the project folder, as
/// last read (see `rpc::get_project_config::read_files`).
#[derive(Debug, Clone, Default)]
pub struct ProjectFiles {
    /// The terms of use, trimmed; None when missing or blank.
    pub terms: Option<Arc<str>>,
    /// `local.revision`, trimmed; None when missing, blank or "0".
    pub local_revision: Option<String>,
    /// `project_keywords.xml` as it is (an XML fragment).
    pub keywords: Option<String>,
    /// Base64 of the account-ownership public key file.
    pub ownership_key: Option<String>,
}

/// The project facts get_project_config answers from, refreshed in the
/// background so that it answers at once, also while the database is down.
#[derive(Default)]
pub struct ProjectCache {
    files: RwLock<Arc<ProjectFiles>>,
    db: RwLock<DbFacts>,
    /// The whole get_project_config reply (header included).
    /// With the (web_stopped, sched_stopped) it was rendered for.
    rendered: RwLock<Option<((bool, bool), axum::body::Bytes)>>,
    /// Serialises rendering (see `rpc::get_project_config`).
    pub render_lock: Mutex<()>,
}

impl ProjectCache {
    pub fn terms(&self) -> Option<Arc<str>> {
        self.files().terms.clone()
    }
    pub fn files(&self) -> Arc<ProjectFiles> {
        self.files.read().map(|f| f.clone()).unwrap_or_default()
    }
    pub fn set_files(&self, f: ProjectFiles) {
        if let Ok(mut g) = self.files.write() {
            *g = Arc::new(f);
        }
    }
    pub fn db(&self) -> DbFacts {
        self.db.read().map(|d| d.clone()).unwrap_or_default()
    }
    pub fn rendered(&self) -> Option<((bool, bool), axum::body::Bytes)> {
        self.rendered.read().map(|r| r.clone()).unwrap_or(None)
    }
    pub fn set_rendered(&self, flags: (bool, bool), b: axum::body::Bytes) {
        if let Ok(mut g) = self.rendered.write() {
            *g = Some((flags, b));
        }
    }
    pub fn set_db(&self, d: DbFacts) {
        if let Ok(mut g) = self.db.write() {
            *g = d;
        }
    }
}

/// Counts the `rpc_limit` rows this process added, so that every so many
/// one request checks the table's size; at most one check at a time.
#[derive(Debug, Default)]
pub struct LimitRows {
    added: AtomicU64,
    checking: AtomicBool,
}

impl LimitRows {
    /// One row added: `Some(counted)` when `every` have been added since
    /// the last check and no check runs (the caller checks, then calls
    /// `checked(counted)`).
    pub fn added(&self, every: u64) -> Option<u64> {
        if self.added.fetch_add(1, Ordering::Relaxed) + 1 >= every.max(1) {
            self.begin()
        } else {
            None
        }
    }

    /// Start a check unless one runs: the additions it covers.
    pub fn begin(&self) -> Option<u64> {
        (!self.checking.swap(true, Ordering::AcqRel)).then(|| self.added.load(Ordering::Relaxed))
    }

    /// The check `begin` started is done; rows added meanwhile still count
    /// towards the next one.
    pub fn checked(&self, counted: u64) {
        let _ = self
            .added
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                Some(a.saturating_sub(counted))
            });
        self.checking.store(false, Ordering::Release);
    }
}

/// This process's memory of per-client counters the shared table
/// (`boinc_db::rate_limit`) reported full, until their window ends, so
/// further attempts are refused without a database round trip. Only ever
/// refuses what the database refused, so it never loosens a limit.
#[derive(Default)]
pub struct FullCounters {
    map: Mutex<HashMap<Key, Instant>>,
}

/// Entries kept at most; past that, new ones are simply not remembered
/// (the database still refuses them).
const FULL_COUNTERS_MAX: usize = 100_000;

impl FullCounters {
    /// Time left while `key` is known to be full.
    pub fn full_for(&self, key: &Key) -> Option<Duration> {
        let mut map = self.map.lock().ok()?;
        let until = *map.get(key)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            map.remove(key);
            return None;
        }
        Some(left)
    }

    pub fn mark_full(&self, key: Key, left: Duration) {
        let Ok(mut map) = self.map.lock() else { return };
        let now = Instant::now();
        if map.len() >= FULL_COUNTERS_MAX {
            map.retain(|_, until| *until > now);
            if map.len() >= FULL_COUNTERS_MAX {
                return;
            }
        }
        map.insert(key, now + left);
    }

    pub fn forget(&self, key: &Key) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }

    /// Forget windows that are over.
    pub fn prune(&self) {
        if let Ok(mut map) = self.map.lock() {
            let now = Instant::now();
            map.retain(|_, until| *until > now);
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boinc_db::rate_limit::Kind;

    #[test]
    fn master_url_path() {
        assert_eq!(url_path("http://h/"), "/");
        assert_eq!(url_path("http://h"), "/");
        assert_eq!(url_path("https://h:8080/proj"), "/proj/");
        assert_eq!(url_path(""), "/");
    }

    #[test]
    fn full_counters_expire() {
        let c = FullCounters::default();
        let k = Key::new(Kind::FailedLogin, "10.0.0.1".parse().unwrap());
        assert!(c.full_for(&k).is_none());
        c.mark_full(k, Duration::from_millis(50));
        assert!(c.full_for(&k).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.full_for(&k).is_none());
        assert!(c.is_empty());
    }
}
