//! Admin login for the ops page: HTTP basic auth against a bcrypt hash,
//! a per-address throttle on failures, and a small bounded pool for the
//! bcrypt checks.
//!
//! The throttle reserves a failure slot *before* the password is checked
//! (and gives it back when the check succeeds), so concurrent guesses
//! cannot all slip past a check-then-record window: whatever the arrival
//! pattern, one address gets at most [`MAX_FAILURES`] answers other than
//! 429 per window for logins not already verified.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use boinc_db::ProjectConfig;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::error::{ServeError, HASH_KEY, USER_KEY};

/// Failed logins allowed per client address per window, then 429.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// bcrypt checks running at once in this process. A cost-12 check takes
/// about 0.2 s of one core; two at a time leaves the other cores to the
/// RPC server and the database however many requests arrive.
pub const BCRYPT_POOL: usize = 2;

/// Process-wide, because what it protects (the CPU) is shared by every
/// server in the process.
static BCRYPT_PERMITS: Semaphore = Semaphore::const_new(BCRYPT_POOL);
static BCRYPT_RUNNING: AtomicUsize = AtomicUsize::new(0);
static BCRYPT_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most bcrypt checks that ran at the same time in this process so
/// far (never more than [`BCRYPT_POOL`]); for monitoring and tests.
pub fn bcrypt_peak() -> usize {
    BCRYPT_PEAK.load(Ordering::SeqCst)
}

/// The admin login: a user name and a bcrypt hash of the password.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.user)
    }
}

impl Credentials {
    pub fn new(user: &str, bcrypt_hash: &str) -> Result<Self, ServeError> {
        let user = user.trim();
        let hash = bcrypt_hash.trim();
        if user.is_empty() || hash.is_empty() {
            return Err(ServeError::NoCredentials);
        }
        if user.contains(':') {
            return Err(ServeError::BadCredentials(format!(
                "<{USER_KEY}> must not contain ':' (basic auth separator)"
            )));
        }
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(ServeError::BadCredentials(format!(
                "<{HASH_KEY}> is not a bcrypt hash ($2y$/$2b$/$2a$...)"
            )));
        }
        Ok(Self {
            user: user.to_owned(),
            hash: hash.to_owned(),
        })
    }

    /// From config.xml's `<ops_user>` and `<ops_password_hash>`.
    pub fn from_config(cfg: &ProjectConfig) -> Result<Self, ServeError> {
        match (cfg.str(USER_KEY), cfg.str(HASH_KEY)) {
            (Some(u), Some(h)) => Self::new(u, h),
            _ => Err(ServeError::NoCredentials),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }
}

/// The login state of one server.
pub(super) struct Gate {
    creds: Credentials,
    /// SHA-256 of Authorization headers already verified, so bcrypt (slow
    /// on purpose) runs once per login rather than on every request.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Failed (or in-flight) logins per client address: (count, window start).
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Peers whose `X-Forwarded-For` is believed.
    trusted_proxies: HashSet<IpAddr>,
}

/// The logged-in admin, for handlers (audit actor, CSRF token).
#[derive(Clone)]
pub(super) struct AuthedUser(pub String);

impl Gate {
    pub(super) fn new(creds: Credentials, trusted_proxies: HashSet<IpAddr>) -> Self {
        Self {
            creds,
            verified: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            trusted_proxies,
        }
    }

    /// Whose failures a request counts as: the client (behind a trusted
    /// proxy, the one it names, by boinc-rpc's rule), IPv6 by its /64 as
    /// boinc-rpc's limits count it, so one host cannot walk its addresses.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        let forwarded: Vec<&[u8]> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        Some(
            match boinc_db::forwarded::client_addr(&self.trusted_proxies, peer, &forwarded) {
                IpAddr::V6(v6) => {
                    let mut o = v6.octets();
                    o[8..].fill(0);
                    IpAddr::V6(o.into())
                }
                v4 => v4,
            },
        )
    }

    fn is_verified(&self, header: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(header.as_bytes()).into();
        self.verified.lock().is_ok_and(|s| s.contains(&digest))
    }

    /// Take one failure slot for `ip`, or say the address is throttled.
    /// Check and take happen under one lock, so concurrent requests
    /// cannot all see a free slot.
    fn reserve(&self, ip: IpAddr) -> bool {
        let Ok(mut m) = self.failures.lock() else {
            return false;
        };
        // Forget old windows so the map stays small.
        m.retain(|_, (_, start)| start.elapsed() < FAILURE_WINDOW);
        let e = m.entry(ip).or_insert((0, Instant::now()));
        if e.0 >= MAX_FAILURES {
            return false;
        }
        e.0 += 1;
        true
    }

    /// A reserved slot whose login turned out right: not a failure.
    fn release(&self, ip: IpAddr) {
        if let Ok(mut m) = self.failures.lock() {
            if let Some(e) = m.get_mut(&ip) {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }

    async fn check(&self, header: &str) -> bool {
        if self.is_verified(header) {
            return true;
        }
        let Some(b64) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return false;
        };
        let Some((user, pass)) = text.split_once(':') else {
            return false;
        };
        let user_ok: bool = user.as_bytes().ct_eq(self.creds.user.as_bytes()).into();
        // Verify even for a wrong user so timing doesn't tell which part
        // was wrong.
        let pass_ok = bcrypt_verify(pass.to_owned(), self.creds.hash.clone()).await;
        if user_ok && pass_ok {
            let digest: [u8; 32] = Sha256::digest(header.as_bytes()).into();
            if let Ok(mut s) = self.verified.lock() {
                if s.len() > 64 {
                    s.clear();
                }
                s.insert(digest);
            }
            true
        } else {
            false
        }
    }
}

/// bcrypt on the blocking threads, at most [`BCRYPT_POOL`] at a time;
/// later checks wait their turn.
async fn bcrypt_verify(pass: String, hash: String) -> bool {
    let Ok(_permit) = BCRYPT_PERMITS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let now = BCRYPT_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        BCRYPT_PEAK.fetch_max(now, Ordering::SeqCst);
        let ok = bcrypt::verify(pass, &hash).unwrap_or(false);
        BCRYPT_RUNNING.fetch_sub(1, Ordering::SeqCst);
        ok
    })
    .await
    .unwrap_or(false)
}

/// Middleware: let verified admins through, answer 401 or 429 otherwise.
pub(super) async fn basic_auth(
    State(gate): State<Arc<Gate>>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ip = gate.client(&req);
    // Guessing is throttled per address; a login already verified passes,
    // so an attacker can't lock out a working session. Anything else
    // takes a slot first and gives it back only if it turns out right.
    let reserved = match (&header, ip) {
        (Some(h), Some(ip)) if !gate.is_verified(h) => {
            if !gate.reserve(ip) {
                tracing::warn!(%ip, "ops login throttled");
                return throttled();
            }
            Some(ip)
        }
        _ => None,
    };
    match header {
        Some(h) if gate.check(&h).await => {
            if let Some(ip) = reserved {
                gate.release(ip);
            }
            req.extensions_mut()
                .insert(AuthedUser(gate.creds.user.clone()));
            next.run(req).await
        }
        other => {
            if other.is_some() {
                tracing::warn!(path = req.uri().path(), ?ip, "ops login failed");
            }
            let mut resp = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"BOINC ops\", charset=\"UTF-8\""),
            );
            resp
        }
    }
}

fn throttled() -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins; try again in a minute\n",
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}
