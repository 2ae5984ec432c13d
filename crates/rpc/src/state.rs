//! Shared server state: config, pool, the cached project facts
//! get_project_config answers from, and the per-IP counters. Data only:
//! the RPCs, the renderers and `crate::limits` use it; it imports none of
//! them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use boinc_db::models::Platform;
use boinc_db::ProjectConfig;

use crate::error::RpcError;
pub use crate::settings::{Limits, Options};

pub struct AppState {
    pub config: ProjectConfig,
    pub pool: mysql_async::Pool,
    pub options: Options,
    pub project: ProjectCache,
    /// Failed logins per address (applied by `crate::limits`).
    pub limiter: FailureLimiter,
    /// Accounts created per address (applied by `crate::limits`).
    pub creations: FailureLimiter,
    /// Abuse rules from config.xml.
    pub limits: Limits,
    /// Path of master_url (e.g. "/myproject/"): RPCs are served below it
    /// as well as at the root.
    pub url_prefix: String,
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
        options.apply_config(&config);
        let limits = Limits::from_config(&config);
        Ok(Arc::new(Self {
            limiter: FailureLimiter::new(options.fail_limit, options.fail_window),
            creations: FailureLimiter::new(
                limits.create_per_ip_per_hour.max(1),
                Duration::from_secs(3600),
            ),
            config,
            pool,
            options,
            project: ProjectCache::default(),
            url_prefix,
            limits,
        }))
    }

    /// A pooled connection, or -138 if none comes within `db_timeout`.
    pub async fn conn(&self) -> Result<mysql_async::Conn, RpcError> {
        match tokio::time::timeout(self.options.db_timeout, self.pool.get_conn()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot connect to database");
                Err(RpcError::DbUnavailable)
            }
            Err(_) => {
                tracing::warn!("timed out waiting for a database connection");
                Err(RpcError::DbUnavailable)
            }
        }
    }

    /// BOINC's `stop_web` marker: every RPC but get_project_config says -183.
    pub fn check_web_running(&self) -> Result<(), RpcError> {
        if self.config.web_stopped() {
            Err(RpcError::ProjectDown)
        } else {
            Ok(())
        }
    }

    /// Config keys whose absence means "on" in BOINC (user_country, user_url).
    pub fn config_default_on(&self, key: &str) -> bool {
        self.config.str(key).is_none() || self.config.bool(key)
    }

    /// The terms text as served: the file's contents trimmed as PHP's
    /// trim() does; None when the file is missing, unreadable or empty.
    pub fn read_terms(&self) -> Option<String> {
        boinc_db::terms::read_terms_file(&self.config.terms_of_use_path())
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

/// The project facts get_project_config answers from, refreshed in the
/// background so that it answers at once, also while the database is down.
#[derive(Default)]
pub struct ProjectCache {
    terms: RwLock<Option<Arc<str>>>,
    db: RwLock<DbFacts>,
    /// The whole get_project_config reply (header included).
    /// With the (web_stopped, sched_stopped) it was rendered for.
    rendered: RwLock<Option<((bool, bool), axum::body::Bytes)>>,
    /// Serialises rendering (see `rpc::get_project_config`).
    pub render_lock: Mutex<()>,
}

impl ProjectCache {
    pub fn terms(&self) -> Option<Arc<str>> {
        self.terms.read().map(|t| t.clone()).unwrap_or(None)
    }
    pub fn set_terms(&self, t: Option<String>) {
        if let Ok(mut g) = self.terms.write() {
            *g = t.map(Arc::from);
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

/// Counts failed logins per IP address in fixed windows. Upstream sleeps
/// 5 s on each failure, which ties up a worker; refusing further attempts
/// costs the guesser instead.
pub struct FailureLimiter {
    limit: u32,
    window: Duration,
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Refuse if this address used up its failures for the window.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), RpcError> {
        let Some(ip) = ip else { return Ok(()) };
        let Ok(map) = self.map.lock() else {
            return Ok(());
        };
        match map.get(&ip) {
            Some((start, n)) if *n >= self.limit && start.elapsed() < self.window => {
                let left = self.window.saturating_sub(start.elapsed()).as_secs().max(1);
                Err(RpcError::RateLimited(left))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let Ok(mut map) = self.map.lock() else { return };
        let now = Instant::now();
        if map.len() > 100_000 {
            // Bound memory under a wide scan: forget finished windows.
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let e = map.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_url_path() {
        assert_eq!(url_path("http://h/"), "/");
        assert_eq!(url_path("http://h"), "/");
        assert_eq!(url_path("https://h:8080/proj"), "/proj/");
        assert_eq!(url_path(""), "/");
    }

    #[test]
    fn limiter_refuses_after_limit() {
        let l = FailureLimiter::new(2, Duration::from_secs(60));
        let ip = Some("10.0.0.1".parse().unwrap());
        l.check(ip).unwrap();
        l.record_failure(ip);
        l.record_failure(ip);
        assert!(matches!(l.check(ip), Err(RpcError::RateLimited(_))));
        l.check(Some("10.0.0.2".parse().unwrap())).unwrap();
    }
}
