//! Per-client abuse limits: which address a request counts against (the
//! peer, or the client named by a trusted proxy), and the per-address
//! budgets for failed logins and account creation. Uses the shared state;
//! the rules themselves come from config.xml (`crate::settings`).

use std::net::IpAddr;

use crate::error::RpcError;
use crate::settings::Limits;
use crate::state::AppState;

/// The address limits apply to: the peer, or the last hop of
/// `X-Forwarded-For` when the peer is a trusted proxy. None when exempt.
pub fn client_ip(l: &Limits, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
    let mut ip = peer?;
    if l.trusted_proxies.contains(&ip) {
        if let Some(fwd) = forwarded_for
            .and_then(|f| f.rsplit(',').next())
            .and_then(|s| s.trim().parse().ok())
        {
            ip = fwd;
        }
    }
    (!l.exempt.contains(&ip)).then_some(ip)
}

/// create_account's per-address budget.
pub fn check_create(state: &AppState, ip: Option<IpAddr>) -> Result<(), RpcError> {
    if state.limits.create_per_ip_per_hour == 0 {
        return Ok(());
    }
    state.creations.check(ip).map_err(|e| match e {
        RpcError::RateLimited(s) => RpcError::TooManyAccounts(s),
        e => e,
    })
}

pub fn record_create(state: &AppState, ip: Option<IpAddr>) {
    if state.limits.create_per_ip_per_hour > 0 {
        state.creations.record_failure(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boinc_db::ProjectConfig;

    fn limits(pairs: &[(&str, &str)]) -> Limits {
        Limits::from_config(&ProjectConfig::from_pairs(".".into(), pairs))
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = limits(&[
            ("rpc_trusted_proxies", "127.0.0.1"),
            ("rpc_rate_limit_exempt", "10.9.9.9"),
        ]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            client_ip(&l, Some(lo), Some("1.2.3.4, 192.0.2.7")),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(client_ip(&l, Some(other), Some("1.2.3.4")), Some(other));
        assert_eq!(client_ip(&l, Some(lo), Some("10.9.9.9")), None);
        assert_eq!(client_ip(&l, Some(lo), Some("garbage")), Some(lo));
    }
}
