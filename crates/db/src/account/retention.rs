//! Retention of deletion records and tokens, as BOINC's daily tasks
//! `delete_expired_users_and_hosts` and `delete_expired_tokens` do:
//! `user_deleted` / `host_deleted` rows older than the window (default 60
//! days, upstream's fixed value; long enough for stats sites and account
//! managers to have read them) and tokens past their expiry time.

use mysql_async::prelude::*;
use serde::Serialize;

use crate::DbError;

pub const DEFAULT_DAYS: u32 = 60;
/// Rows per DELETE, so a big backlog never holds long locks.
const BATCH: u64 = 10_000;

/// Rows removed (or, in a dry run, that would be).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub user_deleted: u64,
    pub host_deleted: u64,
    pub tokens: u64,
}

/// (table, condition); `?` is the cut-off time.
const TARGETS: [(&str, &str); 3] = [
    ("user_deleted", "create_time < ?"),
    ("host_deleted", "create_time < ?"),
    ("token", "expire_time < ?"),
];

/// Purge rows older than `days` (tokens: expired before `now`). With
/// `dry_run`, only count them.
pub async fn purge(
    q: &mut mysql_async::Conn,
    days: u32,
    now: i64,
    dry_run: bool,
) -> Result<Purged, DbError> {
    let cutoff = now - i64::from(days) * 86_400;
    let mut counts = [0u64; 3];
    for (i, (table, cond)) in TARGETS.iter().enumerate() {
        let at = if *table == "token" { now } else { cutoff };
        if dry_run {
            let n: Option<i64> = q
                .exec_first(format!("SELECT COUNT(*) FROM {table} WHERE {cond}"), (at,))
                .await?;
            counts[i] = n.unwrap_or(0) as u64;
            continue;
        }
        loop {
            q.exec_drop(
                format!("DELETE FROM {table} WHERE {cond} LIMIT {BATCH}"),
                (at,),
            )
            .await?;
            let n = q.affected_rows();
            counts[i] += n;
            if n < BATCH {
                break;
            }
        }
    }
    Ok(Purged {
        user_deleted: counts[0],
        host_deleted: counts[1],
        tokens: counts[2],
    })
}
