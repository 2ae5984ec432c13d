//! Abuse limits read from config.xml (documented in the crate README):
//! per-IP account-creation rate, parameter size caps, banned email
//! domains, invite codes, the client-address rule behind a reverse proxy,
//! and the bounded pool that runs bcrypt off the reactor.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boinc_db::ProjectConfig;
use tokio::sync::Semaphore;

use crate::error::RpcError;
use crate::params::Params;
use crate::state::{FailureLimiter, Options};

/// Defaults of the config keys.
pub mod defaults {
    pub const CREATE_ACCOUNT_PER_IP_PER_HOUR: u32 = 200;
    pub const MAX_PARAM_BYTES: usize = 64 * 1024;
}

/// What config.xml says about abuse; built once at start-up.
pub struct Limits {
    /// Accounts one address may create per hour (0: no limit).
    pub create_per_ip_per_hour: u32,
    /// Longest single parameter value accepted.
    pub max_param_bytes: usize,
    /// Lower-case domains (and their subdomains) refused by create_account.
    pub banned_domains: HashSet<String>,
    /// create_account needs an `invite_code` matching this (upstream's INVITE_CODES).
    pub invite_code: Option<regex::Regex>,
    /// Peers whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: HashSet<IpAddr>,
    /// Addresses no per-IP limit applies to (e.g. account managers' servers).
    pub exempt: HashSet<IpAddr>,
    /// Counts accounts created per address.
    pub creations: FailureLimiter,
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn ips(cfg: &ProjectConfig, key: &str) -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    for t in list(cfg.str(key).unwrap_or("")) {
        match t.parse() {
            Ok(ip) => {
                out.insert(ip);
            }
            Err(_) => tracing::warn!(key, value = t, "configuration: not an IP address; ignored"),
        }
    }
    out
}

fn secs(cfg: &ProjectConfig, key: &str) -> Option<Duration> {
    cfg.str(key)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

/// Config keys that override `Options` (tests pass Options directly;
/// config.xml wins where it says something).
pub fn apply_config(cfg: &ProjectConfig, o: &mut Options) {
    if let Some(n) = cfg.int("rpc_failed_logins_per_ip").filter(|n| *n > 0) {
        o.fail_limit = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(d) = secs(cfg, "rpc_failed_login_window") {
        o.fail_window = d;
    }
    if let Some(n) = cfg.int("rpc_max_body_bytes").filter(|n| *n > 0) {
        o.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(d) = secs(cfg, "rpc_request_timeout") {
        o.request_timeout = d;
    }
    if let Some(d) = secs(cfg, "rpc_db_timeout") {
        o.db_timeout = d;
    }
}

impl Limits {
    pub fn from_config(cfg: &ProjectConfig) -> Self {
        let create_per_ip_per_hour = cfg
            .int("rpc_create_account_per_ip_per_hour")
            .filter(|n| *n >= 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(defaults::CREATE_ACCOUNT_PER_IP_PER_HOUR);
        let max_param_bytes = cfg
            .int("rpc_max_param_bytes")
            .filter(|n| *n > 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .unwrap_or(defaults::MAX_PARAM_BYTES);
        let mut banned_domains: HashSet<String> =
            list(cfg.str("banned_email_domains").unwrap_or(""))
                .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                .collect();
        if let Some(f) = cfg
            .str("banned_email_domains_file")
            .filter(|f| !f.is_empty())
        {
            let path = cfg.resolve(f);
            match std::fs::read_to_string(&path) {
                Ok(text) => banned_domains.extend(
                    text.lines()
                        .map(|l| l.split('#').next().unwrap_or("").trim())
                        .filter(|l| !l.is_empty())
                        .map(|d| d.trim_start_matches('@').to_ascii_lowercase()),
                ),
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "configuration: cannot read banned_email_domains_file"),
            }
        }
        let invite_code = cfg
            .str("invite_code_regex")
            .filter(|r| !r.is_empty())
            .and_then(|r| match regex::Regex::new(r) {
                Ok(re) => Some(re),
                Err(e) => {
                    // Fail closed: a broken pattern must not open sign-ups.
                    tracing::error!(error = %e, "configuration: invalid invite_code_regex; no code will match");
                    regex::Regex::new("$^").ok()
                }
            });
        init_hash_pool(
            cfg.int("rpc_hash_threads")
                .filter(|n| *n > 0)
                .map(|n| usize::try_from(n).unwrap_or(1)),
        );
        Self {
            create_per_ip_per_hour,
            max_param_bytes,
            banned_domains,
            invite_code,
            trusted_proxies: ips(cfg, "rpc_trusted_proxies"),
            exempt: ips(cfg, "rpc_rate_limit_exempt"),
            creations: FailureLimiter::new(
                create_per_ip_per_hour.max(1),
                Duration::from_secs(3600),
            ),
        }
    }

    /// The address limits apply to: the peer, or the last hop of
    /// `X-Forwarded-For` when the peer is a trusted proxy. None when exempt.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let mut ip = peer?;
        if self.trusted_proxies.contains(&ip) {
            if let Some(fwd) = forwarded_for
                .and_then(|f| f.rsplit(',').next())
                .and_then(|s| s.trim().parse().ok())
            {
                ip = fwd;
            }
        }
        (!self.exempt.contains(&ip)).then_some(ip)
    }

    /// Every parameter value within `max_param_bytes` (names too).
    pub fn check_params(&self, p: &Params) -> Result<(), RpcError> {
        match p.oversized(self.max_param_bytes) {
            Some(_) => Err(RpcError::generic(format!(
                "parameter too long (at most {} bytes)",
                self.max_param_bytes
            ))),
            None => Ok(()),
        }
    }

    /// create_account's per-address budget.
    pub fn check_create(&self, ip: Option<IpAddr>) -> Result<(), RpcError> {
        if self.create_per_ip_per_hour == 0 {
            return Ok(());
        }
        self.creations.check(ip).map_err(|e| match e {
            RpcError::RateLimited(s) => RpcError::TooManyAccounts(s),
            e => e,
        })
    }

    pub fn record_create(&self, ip: Option<IpAddr>) {
        if self.create_per_ip_per_hour > 0 {
            self.creations.record_failure(ip);
        }
    }

    /// The email's domain (or a parent domain) is banned.
    pub fn email_banned(&self, email: &str) -> bool {
        if self.banned_domains.is_empty() {
            return false;
        }
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        let mut d = domain.as_str();
        loop {
            if self.banned_domains.contains(d) {
                return true;
            }
            match d.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => d = rest,
                _ => return false,
            }
        }
    }

    /// upstream: "Invalid invitation code" unless the code matches.
    pub fn check_invite(&self, code: Option<&str>) -> Result<(), RpcError> {
        match &self.invite_code {
            Some(re) if !re.is_match(code.unwrap_or("")) => {
                Err(RpcError::generic("Invalid invitation code"))
            }
            _ => Ok(()),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

static HASH_POOL: std::sync::OnceLock<HashPool> = std::sync::OnceLock::new();

/// Size the process's hashing pool (`rpc_hash_threads`, default: one
/// thread per core). The first call wins; later ones change nothing.
pub fn init_hash_pool(threads: Option<usize>) {
    HASH_POOL.get_or_init(|| {
        HashPool::new(threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }))
    });
}

/// The process's hashing pool.
pub fn hash_pool() -> &'static HashPool {
    init_hash_pool(None);
    HASH_POOL.get_or_init(|| HashPool::new(1))
}

/// A fixed set of lower-priority threads for bcrypt. At most `threads`
/// hashes run at once (waiting is async and cancellable), so a flood of
/// sign-ups cannot take every core from the reactor serving the cheap RPCs.
pub struct HashPool {
    permits: Arc<Semaphore>,
    tx: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rpc-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // pool dropped
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            tx: Mutex::new(tx),
        }
    }

    /// Run `f` on a hashing thread once one is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RpcError> {
        let internal = || RpcError::generic("internal error");
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| internal())?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            drop(permit);
            let _ = done.send(r);
        });
        self.tx
            .lock()
            .map_err(|_| internal())?
            .send(job)
            .map_err(|_| internal())?;
        match result.await {
            Ok(Ok(v)) => Ok(v),
            _ => {
                tracing::error!("password hashing task failed");
                Err(internal())
            }
        }
    }
}

/// Niceness of the hashing threads: enough for the reactor to win ties
/// under a sign-up flood, not so much that hashing starves on a busy host.
#[cfg(target_os = "linux")]
const HASH_NICE: libc::c_int = 5;

/// Nice the calling thread (Linux: per thread) so the reactor wins ties.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, HASH_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> ProjectConfig {
        ProjectConfig::from_pairs(".".into(), pairs)
    }

    #[test]
    fn banned_domains_match_subdomains() {
        let l = Limits::from_config(&cfg(&[(
            "banned_email_domains",
            "spam.example, @Junk.test",
        )]));
        assert!(l.email_banned("a@spam.example"));
        assert!(l.email_banned("a@mx.SPAM.example"));
        assert!(l.email_banned("a@junk.test"));
        assert!(!l.email_banned("a@notspam.example"));
        assert!(!l.email_banned("a@example"));
    }

    #[test]
    fn invite_codes() {
        let l = Limits::from_config(&cfg(&[("invite_code_regex", "^(alpha|beta)[0-9]+$")]));
        l.check_invite(Some("alpha7")).unwrap();
        assert!(l.check_invite(Some("gamma7")).is_err());
        assert!(l.check_invite(None).is_err());
        let broken = Limits::from_config(&cfg(&[("invite_code_regex", "(")]));
        assert!(broken.check_invite(Some("(")).is_err());
        Limits::from_config(&cfg(&[])).check_invite(None).unwrap();
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = Limits::from_config(&cfg(&[
            ("rpc_trusted_proxies", "127.0.0.1"),
            ("rpc_rate_limit_exempt", "10.9.9.9"),
        ]));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            l.client_ip(Some(lo), Some("1.2.3.4, 192.0.2.7")),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(l.client_ip(Some(other), Some("1.2.3.4")), Some(other));
        assert_eq!(l.client_ip(Some(lo), Some("10.9.9.9")), None);
        assert_eq!(l.client_ip(Some(lo), Some("garbage")), Some(lo));
    }

    #[test]
    fn config_overrides_options() {
        let mut o = Options::default();
        apply_config(
            &cfg(&[
                ("rpc_failed_logins_per_ip", "5"),
                ("rpc_request_timeout", "1.5"),
            ]),
            &mut o,
        );
        assert_eq!(o.fail_limit, 5);
        assert_eq!(o.request_timeout, Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn hash_pool_runs_jobs_and_survives_panics() {
        let p = HashPool::new(2);
        assert_eq!(p.run(|| 21 * 2).await.unwrap(), 42);
        assert!(p.run(|| -> i32 { panic!("boom") }).await.is_err());
        assert_eq!(p.run(|| 1).await.unwrap(), 1);
    }
}
