//! The rows of upstream's community and job tables an erase removes (the
//! account row, hosts, consent and the forum are in `erase` and `forum`).

use mysql_async::prelude::*;
use mysql_async::Transaction;

use super::mode::Mode;
use crate::DbError;

/// Remove the rows about `userid` from every table here (`has`) that the
/// mode removes from. Returns how many.
pub(super) async fn remove(
    tx: &mut Transaction<'_>,
    userid: i64,
    mode: Mode,
    has: &impl Fn(&str) -> bool,
) -> Result<u64, DbError> {
    let mut removed = 0;
    // Rows of upstream's tables about this user, removed in both modes
    // (table, the tables the statement also reads, how; every `?` is the
    // user id). Order matters: notifications and ratings that point at
    // messages and posts go before those.
    let mut removals: Vec<(&str, &[&str], Removal)> = vec![
        (
            "team_admin",
            &[],
            Found(&["teamid", "userid"], "userid = ?"),
        ),
        (
            "profile",
            &[],
            Delete("DELETE FROM profile WHERE userid = ?"),
        ),
        (
            "notify",
            &["private_messages"],
            // BOINC's type 3: a private message (opaque: its id).
            Found(
                &["id"],
                "type = 3 AND opaque IN (SELECT id FROM private_messages \
                 WHERE userid = ? OR senderid = ?)",
            ),
        ),
        (
            // Their own, and others' friend request / accepted notices
            // naming them (types 1 and 2, opaque: the user id).
            "notify",
            &[],
            Found(&["id"], "userid = ? OR (type IN (1, 2) AND opaque = ?)"),
        ),
        (
            "private_messages",
            &[],
            Found(&["id"], "userid = ? OR senderid = ?"),
        ),
        (
            "friend",
            &[],
            Found(&["user_src", "user_dest"], "user_src = ? OR user_dest = ?"),
        ),
        (
            "subscriptions",
            &[],
            Delete("DELETE FROM subscriptions WHERE userid = ?"),
        ),
        (
            "forum_preferences",
            &[],
            Delete("DELETE FROM forum_preferences WHERE userid = ?"),
        ),
        (
            "forum_logging",
            &[],
            Delete("DELETE FROM forum_logging WHERE userid = ?"),
        ),
        (
            // Others' ratings of the posts that go below.
            "post_ratings",
            &["post"],
            Delete("DELETE FROM post_ratings WHERE post IN (SELECT id FROM post WHERE user = ?)"),
        ),
        ("token", &[], Delete("DELETE FROM token WHERE userid = ?")),
    ];
    if mode == Mode::Wipe {
        for (table, sql) in [
            ("team_delta", "DELETE FROM team_delta WHERE userid = ?"),
            ("credit_user", "DELETE FROM credit_user WHERE userid = ?"),
            ("badge_user", "DELETE FROM badge_user WHERE user_id = ?"),
            ("credited_job", "DELETE FROM credited_job WHERE userid = ?"),
            (
                "donation_paypal",
                "DELETE FROM donation_paypal WHERE userid = ?",
            ),
            (
                "banishment_vote",
                "DELETE FROM banishment_vote WHERE userid = ?",
            ),
            ("post_ratings", "DELETE FROM post_ratings WHERE user = ?"),
            ("sent_email", "DELETE FROM sent_email WHERE userid = ?"),
            ("user_submit", "DELETE FROM user_submit WHERE user_id = ?"),
            (
                "user_submit_app",
                "DELETE FROM user_submit_app WHERE user_id = ?",
            ),
            (
                "msg_from_host",
                "DELETE FROM msg_from_host WHERE hostid IN (SELECT id FROM host WHERE userid = ?)",
            ),
            (
                "msg_to_host",
                "DELETE FROM msg_to_host WHERE hostid IN (SELECT id FROM host WHERE userid = ?)",
            ),
            (
                "host_app_version",
                "DELETE FROM host_app_version WHERE host_id IN \
                 (SELECT id FROM host WHERE userid = ?)",
            ),
        ] {
            removals.push((table, &[], Delete(sql)));
        }
    }
    for (table, reads, how) in removals {
        if !has(table) || !reads.iter().all(|t| has(t)) {
            continue;
        }
        removed += match how {
            Delete(sql) => {
                tx.exec_drop(sql, user_params(sql, userid)).await?;
                tx.affected_rows()
            }
            Found(key, cond) => delete_found(tx, table, key, cond, userid).await?,
        };
    }
    Ok(removed)
}

/// How rows of one table go.
enum Removal {
    /// One statement, for conditions an index of upstream's schema serves
    /// (it locks only the rows it removes).
    Delete(&'static str),
    /// Key columns and a condition no index serves: the rows are found by
    /// a plain read (no locks, no waiting on rows others are writing), then
    /// removed by key. A row about the person written after that read is
    /// not seen; nothing can write one for them once their key is gone, but
    /// another person can still send them a message in that instant.
    Found(&'static [&'static str], &'static str),
}
use Removal::{Delete, Found};

/// The user id once for every `?` of `sql`.
fn user_params(sql: &str, userid: i64) -> Vec<mysql_async::Value> {
    vec![userid.into(); sql.matches('?').count()]
}

/// Rows to remove per DELETE (bounds the statement's size).
const KEYS_PER_DELETE: usize = 500;

async fn delete_found(
    tx: &mut Transaction<'_>,
    table: &str,
    key: &[&str],
    cond: &str,
    userid: i64,
) -> Result<u64, DbError> {
    let cols = key.join(", ");
    let rows: Vec<mysql_async::Row> = tx
        .exec(
            format!("SELECT {cols} FROM {table} WHERE {cond}"),
            user_params(cond, userid),
        )
        .await?;
    // `(a = ? AND b = ?) OR ...`: MariaDB reads that by index; a one-row
    // `(a, b) IN ((?, ?))` it reads by scanning the whole table.
    let one = key
        .iter()
        .map(|k| format!("{k} = ?"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let one = format!("({one})");
    let mut removed = 0;
    for chunk in rows.chunks(KEYS_PER_DELETE) {
        let cond = vec![one.as_str(); chunk.len()].join(" OR ");
        let params: Vec<mysql_async::Value> =
            chunk.iter().flat_map(|r| r.clone().unwrap()).collect();
        tx.exec_drop(format!("DELETE FROM {table} WHERE {cond}"), params)
            .await?;
        removed += tx.affected_rows();
    }
    Ok(removed)
}
