//! Erasing an account on a data-subject request (GDPR Art. 17), in BOINC's
//! two ways (upstream `html/inc/delete_account.inc`):
//!
//! * **obfuscate**: the user row stays (credit, ids and consent evidence
//!   keep their meaning) but loses everything that identifies the person;
//!   hosts are anonymised; forum posts, profile, messages and friends go.
//! * **wipe**: the user row, its hosts and every row keyed by the user go,
//!   consent rows and their terms links included.
//!
//! Both record the account in `user_deleted` / `host_deleted` (so stats
//! sites and account managers learn of it from db_dump), take the user out
//! of their team, clear them as founder of any team, and write one
//! `account_audit` row; all in one transaction whose first write replaces
//! the authenticator, so no RPC can act on the account from then on and
//! nothing is half done if any step fails.
//!
//! Tables an upstream BOINC database has but this project's schema does not
//! (forum, private messages, results, ...) are handled when present.

use mysql_async::prelude::*;
use mysql_async::{Conn, Transaction, TxOpts};

use crate::audit::{self, Action};
use crate::models::User;
use crate::DbError;

/// How to erase (upstream's DELETE_ACCOUNT_METHOD_OBFUSCATE / _WIPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Obfuscate,
    Wipe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Obfuscate => "obfuscate",
            Mode::Wipe => "wipe",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "obfuscate" => Some(Mode::Obfuscate),
            "wipe" => Some(Mode::Wipe),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("no account with id {0}")]
    UnknownUser(i64),
    #[error(
        "account {0} is already deleted (obfuscated); only --mode wipe can remove what is left"
    )]
    AlreadyObfuscated(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<mysql_async::Error> for EraseError {
    fn from(e: mysql_async::Error) -> Self {
        EraseError::Db(DbError::Mysql(e))
    }
}

/// What an erase did, for the operator (counts only, no personal data).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub userid: i64,
    pub mode: &'static str,
    pub hosts: u64,
    pub consent_rows_kept: u64,
    pub consent_rows_removed: u64,
    pub teams_founder_cleared: u64,
    /// Rows removed from upstream tables that exist here (forum, messages, ...).
    pub other_rows_removed: u64,
}

/// The marker BOINC puts in a deleted account's authenticator and email
/// (`deleted_<time>_<random>`); every reader treats `deleted%` as deleted.
pub fn deleted_marker(now: i64) -> String {
    format!("deleted_{now}_{}", crate::random_hex32())
}

/// Is this account deleted (obfuscated)? The same rule db_dump and the
/// consent reports use.
pub fn is_deleted(u: &User) -> bool {
    is_deleted_key(u.authenticator())
}

/// The same rule on the authenticator alone (BOINC's marker).
pub fn is_deleted_key(authenticator: &str) -> bool {
    authenticator.starts_with("deleted")
}

/// Erase account `userid` in one transaction. `actor` goes to the audit row.
pub async fn erase(
    conn: &mut Conn,
    userid: i64,
    mode: Mode,
    actor: &str,
) -> Result<Outcome, EraseError> {
    let now = crate::now();
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    // Roll back explicitly on any error: a transaction merely dropped
    // keeps its locks until the connection is next used.
    match erase_in(&mut tx, userid, mode, actor, now).await {
        Ok(out) => {
            tx.commit().await?;
            Ok(out)
        }
        Err(e) => {
            if let Err(r) = tx.rollback().await {
                tracing::warn!("erase: rollback failed: {r}");
            }
            Err(e)
        }
    }
}

async fn erase_in(
    tx: &mut Transaction<'_>,
    userid: i64,
    mode: Mode,
    actor: &str,
    now: i64,
) -> Result<Outcome, EraseError> {
    let marker = deleted_marker(now);
    // First: lock the row and replace the authenticator, so every RPC that
    // looks the account up by key (or locks it) finds nothing from here on.
    let user: Option<User> = tx
        .exec_first(
            format!(
                "SELECT {} FROM user WHERE id = ? FOR UPDATE",
                crate::queries::USER_COLUMNS
            ),
            (userid,),
        )
        .await?;
    let user = user.ok_or(EraseError::UnknownUser(userid))?;
    let already = is_deleted(&user);
    if already && mode == Mode::Obfuscate {
        return Err(EraseError::AlreadyObfuscated(userid));
    }
    tx.exec_drop(
        "UPDATE user SET authenticator = ? WHERE id = ?",
        (&marker, userid),
    )
    .await?;

    // Deletion records for stats sites. An account obfuscated earlier and
    // wiped now keeps its first record (its email is no longer the real one).
    if !already {
        tx.exec_drop(
            "INSERT INTO user_deleted (userid, public_cross_project_id, create_time) \
             VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE userid = userid",
            (userid, user.cpid(), now),
        )
        .await?;
    }
    tx.exec_drop(
        "INSERT INTO host_deleted (hostid, public_cross_project_id, create_time) \
         SELECT id, COALESCE(host_cpid, ''), ? FROM host WHERE userid = ? \
         ON DUPLICATE KEY UPDATE hostid = host_deleted.hostid",
        (now, userid),
    )
    .await?;

    let mut out = Outcome {
        userid,
        mode: mode.as_str(),
        ..Default::default()
    };
    let hosts: Option<i64> = tx
        .exec_first("SELECT COUNT(*) FROM host WHERE userid = ?", (userid,))
        .await?;
    out.hosts = hosts.unwrap_or(0) as u64;

    let present = existing_tables(tx).await?;
    let has = |t: &str| present.iter().any(|p| p == t);

    // Team: leave it (as BOINC's user_quit_team) and stop being founder of
    // any team, so the team's members can take it over through BOINC's
    // founder-request flow.
    if user.teamid != 0 {
        crate::queries::set_user_team(tx, userid, user.teamid, 0).await?;
        tx.exec_drop(
            "UPDATE team SET ping_user = -ping_user WHERE id = ? AND ping_user = ?",
            (user.teamid, userid),
        )
        .await?;
        if has("team_delta") && mode == Mode::Obfuscate {
            tx.exec_drop(
                "INSERT INTO team_delta (userid, teamid, timestamp, joining, total_credit) \
                 VALUES (?, ?, ?, 0, ?)",
                (userid, user.teamid, now, user.total_credit),
            )
            .await?;
        }
    }
    tx.exec_drop("UPDATE team SET userid = 0 WHERE userid = ?", (userid,))
        .await?;
    out.teams_founder_cleared = tx.affected_rows();

    // Rows of upstream's tables keyed by this user, removed in both modes.
    let mut removals: Vec<(&str, &str)> = vec![
        ("team_admin", "DELETE FROM team_admin WHERE userid = ?"),
        ("profile", "DELETE FROM profile WHERE userid = ?"),
        (
            "private_messages",
            "DELETE FROM private_messages WHERE userid = ? OR senderid = ?",
        ),
        (
            "friend",
            "DELETE FROM friend WHERE user_src = ? OR user_dest = ?",
        ),
        (
            "subscriptions",
            "DELETE FROM subscriptions WHERE userid = ?",
        ),
        (
            "forum_preferences",
            "DELETE FROM forum_preferences WHERE userid = ?",
        ),
        (
            "forum_logging",
            "DELETE FROM forum_logging WHERE userid = ?",
        ),
        ("token", "DELETE FROM token WHERE userid = ?"),
    ];
    if mode == Mode::Wipe {
        removals.extend([
            ("team_delta", "DELETE FROM team_delta WHERE userid = ?"),
            ("credit_user", "DELETE FROM credit_user WHERE userid = ?"),
            ("badge_user", "DELETE FROM badge_user WHERE user_id = ?"),
            ("notify", "DELETE FROM notify WHERE userid = ?"),
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
        ]);
    }
    for (table, sql) in removals {
        if !has(table) {
            continue;
        }
        let n = sql.matches('?').count();
        let params: Vec<mysql_async::Value> = vec![userid.into(); n];
        tx.exec_drop(sql, params).await?;
        out.other_rows_removed += tx.affected_rows();
    }

    if has("post") && has("thread") && has("forum") {
        out.other_rows_removed += delete_forum_posts(tx, userid).await?;
    }

    let consent_rows: Option<i64> = tx
        .exec_first("SELECT COUNT(*) FROM consent WHERE userid = ?", (userid,))
        .await?;
    let consent_rows = consent_rows.unwrap_or(0) as u64;

    match mode {
        Mode::Obfuscate => {
            // Upstream's columns, plus the ones that still identify the
            // person (url, signature, previous address, login token). The
            // name gets the marker too: names are unique here.
            tx.exec_drop(
                "UPDATE user SET email_addr = ?, name = ?, country = '', postal_code = '', \
                 has_profile = 0, url = '', signature = '', previous_email_addr = '', \
                 email_addr_change_time = 0, login_token = '', login_token_time = 0 \
                 WHERE id = ?",
                (&marker, &marker, userid),
            )
            .await?;
            tx.exec_drop(
                "UPDATE host SET domain_name = 'deleted', last_ip_addr = '', \
                 external_ip_addr = '' WHERE userid = ?",
                (userid,),
            )
            .await?;
            out.consent_rows_kept = consent_rows;
        }
        Mode::Wipe => {
            if has("result") {
                detach_results(tx, userid, now, has("workunit")).await?;
            }
            tx.exec_drop("DELETE FROM host WHERE userid = ?", (userid,))
                .await?;
            // A full wipe is the one place consent rows are removed (see
            // ARCHITECTURE.md, "Consent history is append-only").
            tx.exec_drop(
                "DELETE t FROM consent_terms t JOIN consent c ON c.id = t.consent_id \
                 WHERE c.userid = ?",
                (userid,),
            )
            .await?;
            tx.exec_drop("DELETE FROM consent WHERE userid = ?", (userid,))
                .await?;
            out.consent_rows_removed = consent_rows;
            tx.exec_drop("DELETE FROM user WHERE id = ?", (userid,))
                .await?;
        }
    }

    audit::record(tx, actor, userid, Action::Delete, mode.as_str(), now).await?;
    Ok(out)
}

/// As upstream's cancel_results_for_user: results in progress or not yet
/// validated are cancelled (their workunits transitioned); all lose the
/// user and host ids.
async fn detach_results<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    now: i64,
    has_workunit: bool,
) -> Result<(), DbError> {
    // BOINC's constants: server_state IN_PROGRESS 4, OVER 5; outcome
    // SUCCESS 1, CLIENT_DETACHED 7; validate_state INIT 0, INVALID 2,
    // INCONCLUSIVE 4.
    const OPEN: &str = "(server_state = 4 OR (server_state = 5 AND outcome = 1 \
                        AND validate_state IN (0, 4)))";
    if has_workunit {
        q.exec_drop(
            format!(
                "UPDATE workunit SET transition_time = ? WHERE id IN \
                 (SELECT workunitid FROM result WHERE userid = ? AND {OPEN})"
            ),
            (now, userid),
        )
        .await?;
    }
    q.exec_drop(
        format!(
            "UPDATE result SET server_state = 5, outcome = 7, validate_state = 2 \
             WHERE userid = ? AND {OPEN}"
        ),
        (userid,),
    )
    .await?;
    q.exec_drop(
        "UPDATE result SET hostid = 0, userid = 0 WHERE userid = ?",
        (userid,),
    )
    .await?;
    Ok(())
}

/// As upstream's forum_delete_user / delete_post, set-wise: the user's
/// posts go; thread reply and forum post counts drop by the visible ones;
/// threads left empty go (forum thread counts drop by the visible ones);
/// the others get the time of their latest remaining post. Returns the
/// number of posts removed.
async fn delete_forum_posts(tx: &mut Transaction<'_>, userid: i64) -> Result<u64, DbError> {
    let threads: Vec<i64> = tx
        .exec(
            "SELECT DISTINCT thread FROM post WHERE user = ? ORDER BY thread",
            (userid,),
        )
        .await?;
    if threads.is_empty() {
        return Ok(0);
    }
    tx.exec_drop(
        "UPDATE thread t JOIN (SELECT thread, SUM(hidden = 0) AS n FROM post WHERE user = ?          GROUP BY thread) p ON p.thread = t.id SET t.replies = GREATEST(t.replies - p.n, 0)",
        (userid,),
    )
    .await?;
    tx.exec_drop(
        "UPDATE forum f JOIN (SELECT t.forum, SUM(p.hidden = 0) AS n FROM post p          JOIN thread t ON t.id = p.thread WHERE p.user = ? GROUP BY t.forum) x          ON x.forum = f.id SET f.posts = GREATEST(f.posts - x.n, 0)",
        (userid,),
    )
    .await?;
    tx.exec_drop("DELETE FROM post WHERE user = ?", (userid,))
        .await?;
    let removed = tx.affected_rows();
    let ids = vec!["?"; threads.len()].join(", ");
    let params: Vec<mysql_async::Value> = threads.iter().map(|&t| t.into()).collect();
    const EMPTY: &str = "NOT EXISTS (SELECT 1 FROM post p WHERE p.thread = thread.id)";
    tx.exec_drop(
        format!(
            "UPDATE forum f JOIN (SELECT forum, COUNT(*) AS n FROM thread              WHERE id IN ({ids}) AND hidden = 0 AND {EMPTY} GROUP BY forum) x              ON x.forum = f.id SET f.threads = GREATEST(f.threads - x.n, 0)"
        ),
        params.clone(),
    )
    .await?;
    tx.exec_drop(
        format!("DELETE FROM thread WHERE id IN ({ids}) AND {EMPTY}"),
        params.clone(),
    )
    .await?;
    tx.exec_drop(
        format!(
            "UPDATE thread SET timestamp = (SELECT MAX(p.timestamp) FROM post p              WHERE p.thread = thread.id) WHERE id IN ({ids})"
        ),
        params,
    )
    .await?;
    Ok(removed)
}

/// Base tables of the current database.
async fn existing_tables<Q: Queryable>(q: &mut Q) -> Result<Vec<String>, DbError> {
    Ok(q.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
    )
    .await?)
}
