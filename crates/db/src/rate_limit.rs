//! Per-client counters in the project database (`rpc_limit`, see
//! sql/schema.sql), shared by every boinc-rpc instance: a fixed window per
//! (kind, client address), an atomic "take a slot if one is free", giving a
//! slot back, and purging expired rows. Policy (which RPC counts what, the
//! limits themselves) stays with the caller.
//!
//! Every statement is a single autocommit statement on one row, so no
//! caller ever holds a lock across other work, and the database clock
//! (`UNIX_TIMESTAMP()`) is the only clock windows are measured with.

use std::net::IpAddr;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::DbError;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Failed logins (wrong password, unknown email or account key).
    FailedLogin = 1,
    /// Accounts created.
    AccountCreation = 2,
    /// Public XML lookups (show_user, team_email_list, team_lookup).
    PublicLookup = 3,
}

/// One counter: a kind and a client. IPv4 addresses count one by one
/// (IPv4-mapped IPv6 addresses as their IPv4 address); IPv6 addresses by
/// their /64 prefix, the smallest block a single subscriber usually gets,
/// so one host cannot walk through its 2^64 addresses to reset its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    kind: Kind,
    client: [u8; 8],
    len: u8,
}

impl Key {
    pub fn new(kind: Kind, ip: IpAddr) -> Self {
        let mut client = [0u8; 8];
        let len = match ip.to_canonical() {
            IpAddr::V4(v4) => {
                client[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                client.copy_from_slice(&v6.octets()[..8]);
                8
            }
        };
        Self { kind, client, len }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The wider block this client's counter is also counted in: an IPv6
    /// /64's /48 (what one site or subscriber is commonly given), so that
    /// walking through the /64s of one block neither multiplies the
    /// budget nor fills the table; None for IPv4 (one address each) and
    /// for a key that is already a /48. Stored as 6 bytes, so it never
    /// shares a row with an IPv4 (4) or /64 (8) counter.
    pub fn wider(&self) -> Option<Key> {
        (self.len == 8).then(|| {
            let mut client = self.client;
            client[6..].fill(0);
            Key {
                kind: self.kind,
                client,
                len: 6,
            }
        })
    }

    /// The stored form of the client address (4 or 8 bytes).
    pub fn client(&self) -> &[u8] {
        &self.client[..usize::from(self.len)]
    }
}

/// The answer to `reserve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// A slot was taken (the caller must `release` it unless the attempt
    /// is to count).
    pub granted: bool,
    /// End of the counter's current window (Unix seconds, database clock):
    /// names the window a slot belongs to, and when a refused client may
    /// try again.
    pub window_end: i64,
    /// The counter's row was created by this call (the table grew).
    pub inserted: bool,
}

/// A counter's state while its window runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: u32,
    pub refused: u32,
    /// Seconds until the window ends (at least 1).
    pub secs_left: i64,
}

/// Take one slot of `key` if fewer than `limit` are in use in its current
/// window (a window of `window_secs` starts at the first reservation after
/// the previous one ended). One statement, so concurrent callers in any
/// number of processes can never take more than `limit` slots together.
///
/// The outcome travels in the OK packet: the statement stores
/// `window_end * 2 + granted` with `LAST_INSERT_ID(expr)`, computed from
/// the row as it was before this update (the first assignment sees only
/// old values), so no second round trip or lock is needed.
pub async fn reserve(
    conn: &mut Conn,
    key: &Key,
    limit: u32,
    window_secs: u32,
) -> Result<Reservation, DbError> {
    const SQL: &str = "INSERT INTO rpc_limit (kind, client, window_end, used, refused) \
         VALUES (:kind, :client, UNIX_TIMESTAMP() + :window, 1, \
                 0 * LAST_INSERT_ID((UNIX_TIMESTAMP() + :window) * 2 + 1)) \
         ON DUPLICATE KEY UPDATE \
           refused = IF(LAST_INSERT_ID(IF(window_end <= UNIX_TIMESTAMP(), \
                                          (UNIX_TIMESTAMP() + :window) * 2 + 1, \
                                          window_end * 2 + (used < :limit))) % 2 = 1, \
                        IF(window_end <= UNIX_TIMESTAMP(), 0, refused), \
                        refused + 1), \
           used = IF(window_end <= UNIX_TIMESTAMP(), 1, IF(used < :limit, used + 1, used)), \
           window_end = IF(window_end <= UNIX_TIMESTAMP(), UNIX_TIMESTAMP() + :window, window_end)";
    let params = params! {
        "kind" => key.kind as u8,
        "client" => key.client(),
        "window" => window_secs.max(1),
        "limit" => limit,
    };
    // Concurrent first reservations of one key may deadlock inside InnoDB
    // (the loser is rolled back at once); the statement is safe to repeat.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match conn.exec_drop(SQL, params.clone()).await {
            Ok(()) => break,
            Err(mysql_async::Error::Server(e)) if e.code == 1213 && attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // INSERT ... ON DUPLICATE KEY UPDATE: 1 affected row for an insert,
    // 2 for an update (this statement always changes the row it updates).
    let inserted = conn.affected_rows() == 1;
    let code = conn
        .last_insert_id()
        .ok_or(DbError::Missing("rpc_limit reservation outcome"))?;
    Ok(Reservation {
        granted: code % 2 == 1,
        window_end: i64::try_from(code / 2).unwrap_or(i64::MAX),
        inserted,
    })
}

/// Give back a slot taken in the window ending at `window_end`. Nothing
/// happens if that window is over (its row was reset or purged). The last
/// slot of a counter that never refused anyone takes its row with it: such
/// a row says nothing (a new window starts at the next reservation, which
/// only ever ends later), and logins that succeed leave no rows behind.
pub async fn release(conn: &mut Conn, key: &Key, window_end: i64) -> Result<(), DbError> {
    let params = (key.kind as u8, key.client(), window_end);
    conn.exec_drop(
        "DELETE FROM rpc_limit \
         WHERE kind = ? AND client = ? AND window_end = ? AND used = 1 AND refused = 0",
        params,
    )
    .await?;
    if conn.affected_rows() == 0 {
        conn.exec_drop(
            "UPDATE rpc_limit SET used = used - 1 \
             WHERE kind = ? AND client = ? AND window_end = ? AND used > 0",
            params,
        )
        .await?;
    }
    Ok(())
}

/// The counter while its window runs; None when it has no running window.
pub async fn usage<Q: Queryable>(q: &mut Q, key: &Key) -> Result<Option<Usage>, DbError> {
    let row: Option<(u32, u32, i64)> = q
        .exec_first(
            "SELECT used, refused, window_end - UNIX_TIMESTAMP() FROM rpc_limit \
             WHERE kind = ? AND client = ? AND window_end > UNIX_TIMESTAMP()",
            (key.kind as u8, key.client()),
        )
        .await?;
    Ok(row.map(|(used, refused, secs_left)| Usage {
        used,
        refused,
        secs_left: secs_left.max(1),
    }))
}

/// Delete up to `batch` rows whose window is over; returns how many went.
/// Small batches keep each statement short beside the live traffic.
pub async fn purge_expired(conn: &mut Conn, batch: u32) -> Result<u64, DbError> {
    conn.exec_drop(
        "DELETE FROM rpc_limit WHERE window_end <= UNIX_TIMESTAMP() ORDER BY window_end LIMIT ?",
        (batch.max(1),),
    )
    .await?;
    Ok(conn.affected_rows())
}

/// What [`enforce_cap`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capped {
    /// Rows before.
    pub rows: u64,
    /// Rows deleted: expired, empty, then running windows.
    pub expired: u64,
    pub empty: u64,
    pub running: u64,
}

/// When the table holds more than `high` rows, delete down to `low`:
/// expired windows first, then rows whose slots were all given back and
/// that refused nobody (they say nothing), then the windows that end
/// soonest. Only the last step loosens a limit (that client starts a new
/// window), and only when the table is flooded.
pub async fn enforce_cap(conn: &mut Conn, high: u64, low: u64) -> Result<Capped, DbError> {
    const BATCH: u64 = 1000;
    let rows: Option<u64> = conn.query_first("SELECT COUNT(*) FROM rpc_limit").await?;
    let mut out = Capped {
        rows: rows.unwrap_or(0),
        ..Capped::default()
    };
    if out.rows <= high {
        return Ok(out);
    }
    let target = low.min(high);
    // Each step's rows, in the order they go; the deleted count per step.
    let steps = [
        "window_end <= UNIX_TIMESTAMP()",
        "used = 0 AND refused = 0",
        "1 = 1",
    ];
    let mut gone_by_step = [0u64; 3];
    let mut left = out.rows;
    for (condition, gone_here) in steps.iter().zip(&mut gone_by_step) {
        while left > target {
            let n = (left - target).min(BATCH);
            conn.exec_drop(
                format!("DELETE FROM rpc_limit WHERE {condition} ORDER BY window_end LIMIT ?"),
                (n,),
            )
            .await?;
            let gone = conn.affected_rows();
            *gone_here += gone;
            left = left.saturating_sub(gone);
            if gone < n {
                break;
            }
        }
    }
    [out.expired, out.empty, out.running] = gone_by_step;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_ipv6_by_prefix_and_unmap_ipv4() {
        let k = |s: &str| Key::new(Kind::FailedLogin, s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::7"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), k("192.0.2.1"));
        assert_ne!(k("192.0.2.1"), k("192.0.2.2"));
        assert_eq!(k("192.0.2.1").client(), &[192, 0, 2, 1]);
        assert_ne!(
            Key::new(Kind::AccountCreation, "192.0.2.1".parse().unwrap()),
            k("192.0.2.1")
        );
    }

    #[test]
    fn ipv6_counters_are_also_counted_by_their_48() {
        let k = |s: &str| Key::new(Kind::FailedLogin, s.parse().unwrap());
        let w = k("2001:db8:1:2::1").wider().unwrap();
        assert_eq!(w.client(), &[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        assert_eq!(Some(w), k("2001:db8:1:ffff::9").wider());
        assert_ne!(Some(w), k("2001:db8:2:2::1").wider());
        assert_eq!(w.kind(), Kind::FailedLogin);
        assert_eq!(w.wider(), None);
        assert_eq!(k("192.0.2.1").wider(), None);
        assert_eq!(k("::ffff:192.0.2.1").wider(), None);
    }
}
