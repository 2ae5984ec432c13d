//! What config.xml (or the embedding program) sets: server tunables
//! (`Options`), the abuse rules (`Limits`) and the account and project
//! switches (`Project`), read once at start-up.
//! Data and parsing only; `crate::limits` applies the per-client counters
//! and `crate::connections` the connection rules. Keys are documented in
//! the crate README.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use std::ops::RangeInclusive;

use boinc_db::config::profile::ProfileFields;
use boinc_db::config::ConfigError;
use boinc_db::forwarded;
use boinc_db::ProjectConfig;

use crate::error::RpcError;
use crate::params::Params;

/// Defaults of the config keys.
pub mod defaults {
    pub const CREATE_ACCOUNT_PER_IP_PER_HOUR: u32 = 200;
    pub const MAX_PARAM_BYTES: usize = 64 * 1024;
    /// Rows the shared per-client counter table may hold.
    pub const LIMIT_MAX_ROWS: u64 = 200_000;
    /// Public lookups (show_user, team_email_list, team_lookup) one
    /// address may make per `LOOKUP_WINDOW_SECS`: about 5.5 a second all
    /// hour, far more than a stats site's or a pool's nightly job asks of
    /// one project, while walking a million user ids takes 50 hours.
    pub const LOOKUPS_PER_IP: u32 = 20_000;
    pub const LOOKUP_WINDOW_SECS: u32 = 3600;
    /// team_email_list bodies sent at once (each holds a database
    /// connection while it streams).
    pub const LOOKUP_STREAMS: usize = 4;
}

/// Tunables; the defaults suit production, tests shorten some.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest wait for a database connection before answering -138.
    pub db_timeout: Duration,
    /// Longest a whole RPC may take before answering -138.
    pub request_timeout: Duration,
    /// How often the cached project facts are refreshed.
    pub refresh_interval: Duration,
    /// Failed logins (lookup_account, create_account on an existing email)
    /// allowed per IP address within `fail_window`.
    pub fail_limit: u32,
    pub fail_window: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest time from a connection's first byte of a request (or from
    /// accepting it) to the end of the request's header.
    pub header_read_timeout: Duration,
    /// Longest a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Open client connections at most; None: from the descriptor limit.
    pub max_connections: Option<usize>,
    /// Password-hashing threads; None: one per core.
    pub hash_threads: Option<usize>,
    /// Workers committing consent-only am_set_info requests in groups
    /// (`crate::flip_group`); 0: each request in its own transaction.
    pub consent_group_workers: usize,
    /// Whether requests are counted and `/metrics` is served
    /// (`rpc_metrics` 0 turns both off; the bench measures the difference).
    pub metrics: bool,
    /// team_email_list bodies streamed at once; more wait up to
    /// `db_timeout` for one to end, then are refused.
    pub lookup_streams: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            db_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            refresh_interval: Duration::from_millis(500),
            fail_limit: 20,
            fail_window: Duration::from_secs(60),
            max_body_bytes: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: None,
            hash_threads: None,
            consent_group_workers: crate::flip_group::WORKERS,
            metrics: true,
            lookup_streams: defaults::LOOKUP_STREAMS,
        }
    }
}

/// Whole-number keys: the range each may take. Ours alone and read once
/// at start-up, and each bounds an abuse limit or a resource, so a value
/// outside its range (or not a number) stops the start with an error
/// naming the key rather than running with a limit nobody wrote.
const COUNT: RangeInclusive<i64> = 1..=1_000_000;
const BYTES: RangeInclusive<i64> = 1..=(1 << 30);

fn count(
    cfg: &ProjectConfig,
    key: &str,
    range: RangeInclusive<i64>,
) -> Result<Option<usize>, ConfigError> {
    Ok(cfg
        .int_in(key, range)?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

impl Options {
    /// Config keys that override these options (tests pass Options
    /// directly; config.xml wins where it says something). A duration or
    /// count it cannot mean is an error naming the key.
    pub fn apply_config(&mut self, cfg: &ProjectConfig) -> Result<(), ConfigError> {
        if let Some(n) = count(cfg, "rpc_failed_logins_per_ip", 1..=i64::from(u32::MAX))? {
            self.fail_limit = u32::try_from(n).unwrap_or(u32::MAX);
        }
        let durations = [
            ("rpc_failed_login_window", &mut self.fail_window),
            ("rpc_request_timeout", &mut self.request_timeout),
            ("rpc_db_timeout", &mut self.db_timeout),
            ("rpc_header_read_timeout", &mut self.header_read_timeout),
            ("rpc_idle_timeout", &mut self.idle_timeout),
        ];
        for (key, slot) in durations {
            if let Some(d) = cfg.seconds(key, false)? {
                *slot = d;
            }
        }
        if let Some(n) = count(cfg, "rpc_max_body_bytes", BYTES)? {
            self.max_body_bytes = n;
        }
        if let Some(n) = count(cfg, "rpc_max_connections", COUNT)? {
            self.max_connections = Some(n);
        }
        if let Some(n) = count(cfg, "rpc_hash_threads", 1..=1024)? {
            self.hash_threads = Some(n);
        }
        if let Some(n) = count(cfg, "rpc_consent_group_workers", 0..=64)? {
            self.consent_group_workers = n;
        }
        if let Some(n) = count(cfg, "rpc_metrics", 0..=1)? {
            self.metrics = n == 1;
        }
        if let Some(n) = count(cfg, "rpc_lookup_streams", 1..=64)? {
            self.lookup_streams = n;
        }
        Ok(())
    }
}

/// What config.xml says about accounts and the project (beyond abuse and
/// tunables), read once at start-up: handlers read these fields, never
/// config.xml's keys.
#[derive(Debug, Clone)]
pub struct Project {
    /// `disable_account_creation`: no new accounts at all.
    pub account_creation_disabled: bool,
    /// `disable_account_creation_rpc`: none through the RPC.
    pub account_creation_rpc_disabled: bool,
    /// `no_web_account_creation`: none on the web site either (changes
    /// what the RPC's refusal says).
    pub web_account_creation_disabled: bool,
    /// `account_creation_rpc_require_consent`.
    pub require_consent: bool,
    /// `enable_privacy_by_default`: new accounts hide their hosts.
    pub privacy_by_default: bool,
    /// `am_set_info_allow_credentials`: am_set_info may change email and
    /// password.
    pub am_set_info_allow_credentials: bool,
    /// `account_manager`: get_project_config says `<account_manager/>`.
    pub account_manager: bool,
    /// `min_core_client_version` (trimmed, as every value read).
    pub min_core_client_version: Option<String>,
    /// `ldap_host` set: get_project_config says `<ldap_auth/>`.
    pub ldap_auth: bool,
    /// Country and URL (absent keys: on, as BOINC's PHP; see
    /// `ProfileFields::web`).
    pub profile: ProfileFields,
}

impl Project {
    pub fn from_config(cfg: &ProjectConfig) -> Self {
        Self {
            account_creation_disabled: cfg.bool("disable_account_creation"),
            account_creation_rpc_disabled: cfg.bool("disable_account_creation_rpc"),
            web_account_creation_disabled: cfg.bool("no_web_account_creation"),
            require_consent: cfg.bool("account_creation_rpc_require_consent"),
            privacy_by_default: cfg.bool("enable_privacy_by_default"),
            am_set_info_allow_credentials: cfg.bool("am_set_info_allow_credentials"),
            account_manager: cfg.bool("account_manager"),
            min_core_client_version: cfg.str("min_core_client_version").map(str::to_owned),
            ldap_auth: cfg.str("ldap_host").is_some_and(|h| !h.is_empty()),
            profile: ProfileFields::web(cfg),
        }
    }
}

/// What config.xml says about abuse; built once at start-up.
#[derive(Debug)]
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
    /// Rows `rpc_limit` may hold (`crate::limits`: beyond it the windows
    /// that end soonest are dropped).
    pub max_limit_rows: u64,
    /// Public lookups one address may make per `lookup_window_secs`
    /// (0: no limit).
    pub lookups_per_ip: u32,
    pub lookup_window_secs: u32,
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl Limits {
    /// From config.xml; a count it cannot mean is an error naming the key.
    pub fn from_config(cfg: &ProjectConfig) -> Result<Self, ConfigError> {
        let create_per_ip_per_hour = count(
            cfg,
            "rpc_create_account_per_ip_per_hour",
            0..=i64::from(u32::MAX),
        )?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(defaults::CREATE_ACCOUNT_PER_IP_PER_HOUR);
        let max_param_bytes =
            count(cfg, "rpc_max_param_bytes", BYTES)?.unwrap_or(defaults::MAX_PARAM_BYTES);
        let lookups_per_ip = count(cfg, "rpc_lookups_per_ip", 0..=i64::from(u32::MAX))?
            .map_or(defaults::LOOKUPS_PER_IP, |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            });
        let lookup_window_secs = cfg
            .int_in("rpc_lookup_window", 1..=86_400)?
            .map_or(defaults::LOOKUP_WINDOW_SECS, |n| n as u32);
        let max_limit_rows = cfg
            .int_in("rpc_limit_max_rows", 16..=1_000_000_000)?
            .map_or(defaults::LIMIT_MAX_ROWS, |n| n as u64);
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
        Ok(Self {
            create_per_ip_per_hour,
            max_param_bytes,
            banned_domains,
            invite_code,
            trusted_proxies: forwarded::trusted_proxies(cfg),
            exempt: forwarded::ip_list(cfg, "rpc_rate_limit_exempt"),
            max_limit_rows,
            lookups_per_ip,
            lookup_window_secs,
        })
    }

    /// Every parameter is text (UTF-8 without NUL) and within
    /// `max_param_bytes` (names too); else -1 naming it.
    pub fn check_params(&self, p: &Params) -> Result<(), RpcError> {
        p.check(self.max_param_bytes)
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
        )]))
        .unwrap();
        assert!(l.email_banned("a@spam.example"));
        assert!(l.email_banned("a@mx.SPAM.example"));
        assert!(l.email_banned("a@junk.test"));
        assert!(!l.email_banned("a@notspam.example"));
        assert!(!l.email_banned("a@example"));
    }

    #[test]
    fn invite_codes() {
        let l =
            Limits::from_config(&cfg(&[("invite_code_regex", "^(alpha|beta)[0-9]+$")])).unwrap();
        l.check_invite(Some("alpha7")).unwrap();
        assert!(l.check_invite(Some("gamma7")).is_err());
        assert!(l.check_invite(None).is_err());
        let broken = Limits::from_config(&cfg(&[("invite_code_regex", "(")])).unwrap();
        assert!(broken.check_invite(Some("(")).is_err());
        Limits::from_config(&cfg(&[]))
            .unwrap()
            .check_invite(None)
            .unwrap();
    }

    #[test]
    fn config_overrides_options() {
        let mut o = Options::default();
        o.apply_config(&cfg(&[
            ("rpc_failed_logins_per_ip", "5"),
            ("rpc_request_timeout", "1.5"),
            ("rpc_header_read_timeout", "3"),
            ("rpc_idle_timeout", "0.5"),
            ("rpc_max_connections", "100"),
            ("rpc_consent_group_workers", "0"),
            ("rpc_metrics", "0"),
        ]))
        .unwrap();
        assert_eq!(o.fail_limit, 5);
        assert_eq!(o.request_timeout, Duration::from_millis(1500));
        assert_eq!(o.header_read_timeout, Duration::from_secs(3));
        assert_eq!(o.idle_timeout, Duration::from_millis(500));
        assert_eq!(o.max_connections, Some(100));
        assert_eq!(o.consent_group_workers, 0);
        assert!(!o.metrics);
        assert!(Options::default().metrics);
        // Unset keys keep the default.
        assert_eq!(o.db_timeout, Options::default().db_timeout);
    }

    #[test]
    fn lookup_budget_keys() {
        let l = Limits::from_config(&cfg(&[])).unwrap();
        assert_eq!(
            (l.lookups_per_ip, l.lookup_window_secs),
            (defaults::LOOKUPS_PER_IP, defaults::LOOKUP_WINDOW_SECS)
        );
        let l = Limits::from_config(&cfg(&[
            ("rpc_lookups_per_ip", "0"),
            ("rpc_lookup_window", "60"),
        ]))
        .unwrap();
        assert_eq!((l.lookups_per_ip, l.lookup_window_secs), (0, 60));
        let mut o = Options::default();
        assert_eq!(o.lookup_streams, defaults::LOOKUP_STREAMS);
        o.apply_config(&cfg(&[("rpc_lookup_streams", "9")]))
            .unwrap();
        assert_eq!(o.lookup_streams, 9);
        for (key, v) in [
            ("rpc_lookups_per_ip", "-1"),
            ("rpc_lookups_per_ip", "many"),
            ("rpc_lookup_window", "0"),
            ("rpc_lookup_window", "86401"),
        ] {
            let e = Limits::from_config(&cfg(&[(key, v)])).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("config.xml <{key}>: ")),
                "{e}"
            );
        }
        for v in ["0", "65"] {
            let e = Options::default()
                .apply_config(&cfg(&[("rpc_lookup_streams", v)]))
                .unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("config.xml <rpc_lookup_streams>: "),
                "{e}"
            );
        }
    }

    #[test]
    fn nonsense_is_an_error_naming_the_key() {
        for (key, v) in [
            ("rpc_db_timeout", "-1"),
            ("rpc_request_timeout", "1e30"),
            ("rpc_failed_login_window", "NaN"),
            ("rpc_idle_timeout", "inf"),
            ("rpc_header_read_timeout", "soon"),
            ("rpc_failed_logins_per_ip", "0"),
            ("rpc_failed_logins_per_ip", "20x"),
            ("rpc_max_body_bytes", "1e6"),
            ("rpc_max_connections", "-5"),
            ("rpc_hash_threads", "99999"),
            ("rpc_consent_group_workers", "65"),
            ("rpc_metrics", "2"),
        ] {
            let e = Options::default()
                .apply_config(&cfg(&[(key, v)]))
                .unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("config.xml <{key}>: ")),
                "{e}"
            );
        }
        for (key, v) in [
            ("rpc_create_account_per_ip_per_hour", "-1"),
            ("rpc_create_account_per_ip_per_hour", "lots"),
            ("rpc_max_param_bytes", "0"),
        ] {
            let e = Limits::from_config(&cfg(&[(key, v)])).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("config.xml <{key}>: ")),
                "{e}"
            );
        }
        let l = Limits::from_config(&cfg(&[("rpc_create_account_per_ip_per_hour", "0")])).unwrap();
        assert_eq!(l.create_per_ip_per_hour, 0, "0 still means no limit");
    }
}
