//! Per-client abuse limits: which address a request counts against (the
//! peer, or the client named by a trusted proxy), and the per-address
//! budgets for failed logins and account creation, kept in the project
//! database so they hold across instances and restarts. Uses the shared
//! state; the rules come from config.xml (`crate::settings`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use boinc_db::rate_limit::{self, Key, Kind};
use mysql_async::Conn;

use crate::error::RpcError;
use crate::settings::Limits;
use crate::state::{AppState, FullCounters};

/// The address limits apply to: the peer, or, when the peer is a trusted
/// proxy, the client it names in `X-Forwarded-For` (the rule the ops page
/// shares: `boinc_db::forwarded::client_addr`). None when exempt.
pub fn client_ip(l: &Limits, peer: Option<IpAddr>, forwarded_for: &[&[u8]]) -> Option<IpAddr> {
    let ip = boinc_db::forwarded::client_addr(&l.trusted_proxies, peer?, forwarded_for);
    (!l.exempt.contains(&ip)).then_some(ip)
}

/// How long this process refuses a counter the database reported full
/// without asking again: a flood costs one query per client per period,
/// and a slot given back elsewhere is seen within it.
const REMEMBER_FULL_FOR: Duration = Duration::from_secs(2);

/// An IPv6 client's /48 may use this many times the per-client budget
/// (each /64 in it still has its own): rotating through the /64s of one
/// block gains at most this factor, and creates at most that many rows
/// per window (a refused block never reaches its /64's row).
pub const WIDER_BLOCK_FACTOR: u32 = 4;

/// A per-client budget of one request: failed logins or account
/// creations of the request's address, counted in the project database
/// (`boinc_db::rate_limit`), so the limit holds across every boinc-rpc
/// instance and restart. Inert (everything allowed) for exempt or unknown
/// addresses and when the limit is off.
pub struct Budget<'a> {
    state: &'a AppState,
    counter: Option<Counter>,
}

#[derive(Clone, Copy)]
struct Counter {
    key: Key,
    limit: u32,
    window_secs: u32,
}

impl Counter {
    /// The client's own counter and, for IPv6, its /48's (checked first).
    fn keys(&self) -> impl Iterator<Item = (Key, u32)> {
        let wider = self
            .key
            .wider()
            .map(|w| (w, self.limit.saturating_mul(WIDER_BLOCK_FACTOR)));
        wider.into_iter().chain([(self.key, self.limit)])
    }
}

/// Failed logins (lookup_account, create_account on an existing email with
/// another password, am_get_info / am_set_info with an unknown key).
pub fn failed_logins(state: &AppState, ip: Option<IpAddr>) -> Budget<'_> {
    let o = &state.options;
    Budget {
        state,
        counter: ip.map(|ip| Counter {
            key: Key::new(Kind::FailedLogin, ip),
            limit: o.fail_limit.max(1),
            window_secs: window_secs(o.fail_window),
        }),
    }
}

/// New accounts per hour.
pub fn account_creations(state: &AppState, ip: Option<IpAddr>) -> Budget<'_> {
    let limit = state.limits.create_per_ip_per_hour;
    Budget {
        state,
        counter: ip.filter(|_| limit > 0).map(|ip| Counter {
            key: Key::new(Kind::AccountCreation, ip),
            limit,
            window_secs: 3600,
        }),
    }
}

/// Public lookups (show_user, team_email_list, team_lookup): every
/// request counts, found or not.
pub fn lookups(state: &AppState, ip: Option<IpAddr>) -> Budget<'_> {
    let l = &state.limits;
    Budget {
        state,
        counter: ip.filter(|_| l.lookups_per_ip > 0).map(|ip| Counter {
            key: Key::new(Kind::PublicLookup, ip),
            limit: l.lookups_per_ip,
            window_secs: l.lookup_window_secs.max(1),
        }),
    }
}

fn window_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .unwrap_or(u32::MAX)
        .max(1)
}

impl Budget<'_> {
    fn refusal(&self, c: &Counter, secs: u64) -> RpcError {
        let secs = secs.clamp(1, u64::from(c.window_secs));
        match c.key.kind() {
            Kind::FailedLogin => RpcError::RateLimited(secs),
            Kind::AccountCreation => RpcError::TooManyAccounts(secs),
            Kind::PublicLookup => RpcError::TooManyLookups(secs),
        }
    }

    /// Whether this budget counts anything (false: exempt address, or the
    /// limit is off), i.e. whether its checks need the database at all.
    pub fn is_counted(&self) -> bool {
        self.counter.is_some()
    }

    /// Refuse at once, without the database, when this process saw the
    /// counter (or its /48's) full in its current window.
    pub fn check_local(&self) -> Result<(), RpcError> {
        let Some(c) = &self.counter else {
            return Ok(());
        };
        for (key, _) in c.keys() {
            if let Some(left) = self.state.full_counters.full_for(&key) {
                return Err(self.refusal(c, left.as_secs() + 1));
            }
        }
        Ok(())
    }

    fn remember_full(&self, c: &Counter, key: Key, secs: u64) {
        // Briefly: a full counter may hold slots of attempts in progress
        // (here or in another instance) that are about to be given back.
        let left = Duration::from_secs(secs.clamp(1, u64::from(c.window_secs)));
        self.state
            .full_counters
            .mark_full(key, left.min(REMEMBER_FULL_FOR));
    }

    /// Take a slot before doing the work; refused when the budget is used
    /// up (attempts in progress hold slots too). The slot counts unless it
    /// is released: `keep` it when the attempt is one the rule counts.
    /// An IPv6 client takes a slot of its /48 first and of its /64 then;
    /// either refusing refuses (and gives the other back).
    pub async fn reserve(&self, conn: &mut Conn) -> Result<Slot, RpcError> {
        self.check_local()?;
        let Some(c) = self.counter else {
            return Ok(Slot::inert());
        };
        // Dropped on any error: what it holds is given back.
        let mut slot = Slot::inert();
        for (key, limit) in c.keys() {
            let r = rate_limit::reserve(conn, &key, limit, c.window_secs).await?;
            if r.inserted {
                note_new_row(self.state, conn).await;
            }
            if !r.granted {
                slot.release(Some(conn)).await;
                let secs = u64::try_from(r.window_end - boinc_db::now()).unwrap_or(1);
                self.remember_full(&c, key, secs);
                return Err(self.refusal(&c, secs));
            }
            slot.held.push(Held {
                key,
                window_end: r.window_end,
                pool: self.state.pool.clone(),
                db_timeout: self.state.options.db_timeout,
                full_counters: self.state.full_counters.clone(),
            });
        }
        Ok(slot)
    }

    /// Count an attempt that failed: Ok when it fitted in the budget (the
    /// caller answers with the failure), else the refusal to answer with
    /// instead. For work cheap enough to do before counting (one indexed
    /// lookup): at most `limit` failures are ever reported per window.
    pub async fn count_failure(&self, conn: &mut Conn) -> Result<(), RpcError> {
        self.reserve(conn).await.map(Slot::keep)
    }

    /// Count this request (budgets where every request counts, found or
    /// not): Ok while it fits, else the refusal to answer with.
    pub async fn count(&self, conn: &mut Conn) -> Result<(), RpcError> {
        self.reserve(conn).await.map(Slot::keep)
    }

    /// Before answering a success of such cheap work: refuse while the
    /// budget (or the /48's) is used up, as a failure would be (otherwise a
    /// client past its limit could still tell right guesses from wrong ones).
    pub async fn admit(&self, conn: &mut Conn) -> Result<(), RpcError> {
        self.check_local()?;
        let Some(c) = self.counter else {
            return Ok(());
        };
        for (key, limit) in c.keys() {
            if let Some(u) = rate_limit::usage(conn, &key).await? {
                if u.used >= limit {
                    let secs = u64::try_from(u.secs_left).unwrap_or(1);
                    self.remember_full(&c, key, secs);
                    return Err(self.refusal(&c, secs));
                }
            }
        }
        Ok(())
    }
}

/// A counter row was added. Every `step` (1/8 of `<rpc_limit_max_rows>`)
/// of this process's additions, the request that makes the last one
/// checks the table's size (one check at a time per process) and brings
/// it down to `cap - 3 step` rows once it is past `cap - 2 step`: between
/// checks this process adds at most a step, and the step left over is
/// room for what concurrent requests add while a check runs, so the table
/// stays within the cap however fast new clients arrive between the
/// minutely purges (several instances: each adds its steps).
async fn note_new_row(state: &AppState, conn: &mut Conn) {
    let cap = state.limits.max_limit_rows;
    if let Some(counted) = state.limit_rows.added(cap_step(cap)) {
        keep_within_cap(state, conn).await;
        state.limit_rows.checked(counted);
    }
}

fn cap_step(cap: u64) -> u64 {
    (cap / 8).max(1)
}

async fn keep_within_cap(state: &AppState, conn: &mut Conn) {
    let cap = state.limits.max_limit_rows;
    let step = cap_step(cap);
    let (high, low) = (cap.saturating_sub(2 * step), cap.saturating_sub(3 * step));
    match rate_limit::enforce_cap(conn, high, low).await {
        Ok(c) if c.running > 0 => tracing::warn!(
            rows = c.rows,
            max = cap,
            expired = c.expired,
            empty = c.empty,
            running = c.running,
            "rpc_limit near rpc_limit_max_rows: dropped the windows that end soonest"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not keep rpc_limit within its row cap"),
    }
}

/// A reserved slot. Dropped without `keep` or `release` (an error, a
/// cancelled request) it is given back in the background.
#[must_use = "keep() the slot if the attempt counts, else release() it"]
pub struct Slot {
    held: Vec<Held>,
}

struct Held {
    key: Key,
    window_end: i64,
    pool: mysql_async::Pool,
    db_timeout: Duration,
    full_counters: Arc<FullCounters>,
}

impl Held {
    async fn give_back(self, conn: Option<&mut Conn>) {
        // A slot is free again: no longer known to be full.
        self.full_counters.forget(&self.key);
        let result = match conn {
            Some(c) => rate_limit::release(c, &self.key, self.window_end).await,
            None => {
                let release = async {
                    let mut c = self.pool.get_conn().await?;
                    rate_limit::release(&mut c, &self.key, self.window_end).await
                };
                tokio::time::timeout(self.db_timeout, release)
                    .await
                    .unwrap_or(Err(boinc_db::DbError::Missing("connection in time")))
            }
        };
        if let Err(e) = result {
            // The slot then counts until its window ends: stricter, never looser.
            tracing::warn!(error = %e, "could not give back a per-client limit slot");
        }
    }
}

impl Slot {
    fn inert() -> Self {
        Self { held: Vec::new() }
    }

    /// The attempt counts: the slot stays used until its window ends.
    pub fn keep(mut self) {
        self.held.clear();
    }

    /// The attempt does not count (a success, or a failure of another
    /// kind). `conn`: the caller's connection if it holds one, so a
    /// request never waits for a second pooled connection.
    pub async fn release(mut self, mut conn: Option<&mut Conn>) {
        for h in std::mem::take(&mut self.held) {
            h.give_back(conn.as_deref_mut()).await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            for h in std::mem::take(&mut self.held) {
                rt.spawn(h.give_back(None));
            }
        }
    }
}

/// Delete expired counters from the shared table (every instance does
/// this now and then; small batches), and forget finished local windows.
pub async fn purge_expired(state: &AppState) {
    const BATCH: u32 = 1000;
    state.full_counters.prune();
    let Ok(mut conn) = state.conn().await else {
        return;
    };
    // At most 100 batches per call: a backlog is worked off over several
    // calls instead of one long burst of deletes.
    for _ in 0..100 {
        match rate_limit::purge_expired(&mut conn, BATCH).await {
            Ok(n) if n < u64::from(BATCH) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired rpc_limit rows");
                break;
            }
        }
    }
    // Rows another instance (or an earlier run) added count too.
    if let Some(counted) = state.limit_rows.begin() {
        keep_within_cap(state, &mut conn).await;
        state.limit_rows.checked(counted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boinc_db::ProjectConfig;

    fn limits(pairs: &[(&str, &str)]) -> Limits {
        Limits::from_config(&ProjectConfig::from_pairs(".".into(), pairs)).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = limits(&[
            ("rpc_trusted_proxies", "127.0.0.1"),
            ("rpc_rate_limit_exempt", "10.9.9.9"),
        ]);
        let lo = Some(ip("127.0.0.1"));
        let other = ip("192.0.2.1");
        assert_eq!(
            client_ip(&l, lo, &[b"1.2.3.4, 192.0.2.7"]),
            Some(ip("192.0.2.7"))
        );
        assert_eq!(client_ip(&l, Some(other), &[b"1.2.3.4"]), Some(other));
        assert_eq!(client_ip(&l, lo, &[b"10.9.9.9"]), None);
        assert_eq!(client_ip(&l, lo, &[b"garbage"]), lo);
        assert_eq!(client_ip(&l, lo, &[]), lo);
        assert_eq!(client_ip(&l, Some(ip("10.9.9.9")), &[]), None);
    }

    #[test]
    fn repeated_forwarded_for_lines_are_one_list() {
        let l = limits(&[
            ("rpc_trusted_proxies", "127.0.0.1 10.0.0.2 2001:db8::2"),
            ("rpc_rate_limit_exempt", "198.51.100.7"),
        ]);
        let lo = Some(ip("127.0.0.1"));
        // The client's own line first, the proxy's appended line last:
        // the proxy's entry wins, the client cannot pick an exempt address.
        assert_eq!(
            client_ip(&l, lo, &[b"198.51.100.7", b"203.0.113.9"]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(&l, lo, &[b"198.51.100.7, 1.1.1.1", b"203.0.113.9"]),
            Some(ip("203.0.113.9"))
        );
        // Our own proxies further right are skipped, in any line.
        assert_eq!(
            client_ip(
                &l,
                lo,
                &[b"6.6.6.6", b"203.0.113.9, 10.0.0.2", b"2001:db8::2"]
            ),
            Some(ip("203.0.113.9"))
        );
        // Ports, brackets, blanks, empty elements and IPv4-mapped forms.
        assert_eq!(
            client_ip(&l, lo, &[b"  203.0.113.9:4711 ,, ", b""]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(&l, lo, &[b"[2001:db8:9::1]:80"]),
            Some(ip("2001:db8:9::1"))
        );
        assert_eq!(
            client_ip(&l, lo, &[b"::ffff:203.0.113.9"]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(&l, lo, &[b"1.2.3.4", b"198.51.100.7"]), None);
        // Unreadable right-most entry: the proxy itself, not the entry
        // left of it that the client wrote.
        assert_eq!(client_ip(&l, lo, &[b"1.2.3.4", b"unknown"]), lo);
        assert_eq!(client_ip(&l, lo, &[b"1.2.3.4, \xff"]), lo);
        // All entries are our proxies: the peer.
        assert_eq!(client_ip(&l, lo, &[b"10.0.0.2", b"127.0.0.1"]), lo);
    }
}
