//! Which client a request came from when a reverse proxy (the shipped
//! Apache/nginx includes, HAProxy) stands in front: the one rule both
//! servers use, boinc-rpc for its per-IP limits and the ops page for its
//! login throttle, so behind a proxy neither counts every client as the
//! proxy's own address.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use crate::ProjectConfig;

/// Config key: peers whose `X-Forwarded-For` names the real client.
pub const TRUSTED_PROXIES_KEY: &str = "rpc_trusted_proxies";

/// The addresses listed under `key` (separated by white space, `,` or `;`);
/// an entry that is not an address is said at WARN and left out.
pub fn ip_list(cfg: &ProjectConfig, key: &str) -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    let text = cfg.str(key).unwrap_or("");
    for t in text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|t| !t.is_empty())
    {
        match t.parse::<IpAddr>() {
            Ok(ip) => {
                out.insert(ip.to_canonical());
            }
            Err(_) => tracing::warn!(key, value = t, "configuration: not an IP address; ignored"),
        }
    }
    out
}

/// `<rpc_trusted_proxies>`.
pub fn trusted_proxies(cfg: &ProjectConfig) -> HashSet<IpAddr> {
    ip_list(cfg, TRUSTED_PROXIES_KEY)
}

/// The client of a request from `peer` carrying these `X-Forwarded-For`
/// header lines: the peer, or, when the peer is a trusted proxy, the
/// client it names.
///
/// All header lines count, as one comma-separated list in order (RFC 9110
/// section 5.3; a proxy such as HAProxy adds its own line rather than
/// extending the client's). Each proxy appends the address it received
/// the request from, so the right-most entry that is not one of our
/// trusted proxies is the client; anything left of it is what the client
/// itself sent and is never believed.
pub fn client_addr(trusted: &HashSet<IpAddr>, peer: IpAddr, forwarded_for: &[&[u8]]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries = forwarded_for
        .iter()
        .flat_map(|line| line.split(|b| *b == b','))
        .rev();
    for entry in entries {
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue; // empty list elements are allowed
        }
        match hop(entry) {
            Some(h) if trusted.contains(&h) => continue,
            Some(h) => return h,
            // Unreadable where the client should be: a proxy that does
            // not append; count it against the proxy, never guess.
            None => return peer,
        }
    }
    peer
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`, `[2001:db8::1]`).
fn hop(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match s.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?,
        },
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(list: &[&str]) -> HashSet<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let t = set(&["127.0.0.1", "10.0.0.2", "2001:db8::2"]);
        let lo = ip("127.0.0.1");
        assert_eq!(
            client_addr(&t, lo, &[b"1.2.3.4, 192.0.2.7"]),
            ip("192.0.2.7")
        );
        let other = ip("192.0.2.1");
        assert_eq!(client_addr(&t, other, &[b"1.2.3.4"]), other);
        assert_eq!(client_addr(&t, lo, &[]), lo);
        assert_eq!(client_addr(&t, lo, &[b"garbage"]), lo);
        // The client's own line first, the proxy's appended line last.
        assert_eq!(
            client_addr(&t, lo, &[b"198.51.100.7", b"203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Our own proxies further right are skipped, in any line.
        assert_eq!(
            client_addr(
                &t,
                lo,
                &[b"6.6.6.6", b"203.0.113.9, 10.0.0.2", b"2001:db8::2"]
            ),
            ip("203.0.113.9")
        );
        // Ports, brackets, blanks, empty elements and IPv4-mapped forms.
        assert_eq!(
            client_addr(&t, lo, &[b"  203.0.113.9:4711 ,, ", b""]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_addr(&t, lo, &[b"[2001:db8:9::1]:80"]),
            ip("2001:db8:9::1")
        );
        assert_eq!(
            client_addr(&t, lo, &[b"::ffff:203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_addr(&t, ip("::ffff:127.0.0.1"), &[b"192.0.2.8"]),
            ip("192.0.2.8")
        );
        // Unreadable right-most entry: the proxy itself.
        assert_eq!(client_addr(&t, lo, &[b"1.2.3.4", b"unknown"]), lo);
        assert_eq!(client_addr(&t, lo, &[b"1.2.3.4, \xff"]), lo);
        assert_eq!(client_addr(&t, lo, &[b"10.0.0.2", b"127.0.0.1"]), lo);
    }

    #[test]
    fn lists_read_from_config() {
        let c = ProjectConfig::from_pairs(
            ".".into(),
            &[(
                TRUSTED_PROXIES_KEY,
                " 127.0.0.1,::1; ::ffff:10.1.2.3 nonsense ",
            )],
        );
        assert_eq!(trusted_proxies(&c), set(&["127.0.0.1", "::1", "10.1.2.3"]));
        assert!(trusted_proxies(&ProjectConfig::from_pairs(".".into(), &[])).is_empty());
    }
}
