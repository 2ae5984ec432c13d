//! Erasing an account on a data-subject request (GDPR Art. 17), in BOINC's
//! two ways (upstream `html/inc/delete_account.inc`):
//!
//! * **obfuscate**: the user row stays (credit, ids and consent evidence
//!   keep their meaning) but loses everything that identifies the person:
//!   email, name, keys, password hash, cross-project id, preferences and
//!   every text they wrote; hosts are anonymised; forum posts, profile,
//!   messages, friends and the rest of the community records go; donation
//!   records keep amounts and dates but not the payer.
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
//! (forum, private messages, results, ...) are handled when present. What
//! stays, by design: the account id in rows that only count or link
//! (`account_audit`, results, batches, moderation votes, a surviving
//! thread's `owner`), and texts other people wrote (their posts, even when
//! they quote the person; team names and descriptions).

use mysql_async::prelude::*;
use mysql_async::{Conn, IsolationLevel, Transaction, TxOpts};

use crate::account::audit::{self, Action};
use crate::account::subject::existing_tables;
use crate::models::User;
use crate::DbError;

pub mod forum;
mod mode;
mod results;
mod rows;

pub use mode::Mode;

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
    /// Rows kept without the person's identity (donation records, titles of
    /// threads they started that others replied to).
    pub other_rows_anonymised: u64,
}

/// The marker BOINC puts in a deleted account's authenticator and email
/// (`deleted_<time>_<random>`); every reader treats `deleted%` as deleted.
pub fn deleted_marker(now: i64) -> String {
    format!(
        "{}_{now}_{}",
        crate::models::DELETED_PREFIX,
        crate::random_hex32()
    )
}

pub use crate::models::{is_deleted, is_deleted_key};

/// READ COMMITTED where the server's binary log allows writes in it (no
/// binary log, or not in STATEMENT format), else REPEATABLE READ. Rows no
/// index of upstream's can find (by `private_messages.senderid`,
/// `thread.owner`, `notify.opaque`, ...) are found by a plain read and then
/// changed by key, so the erase locks only what it changes in either level;
/// READ COMMITTED also lets those reads see what was committed a moment
/// ago rather than at the transaction's first read.
async fn write_isolation(conn: &mut Conn) -> Result<IsolationLevel, DbError> {
    // A server that cannot say gets the level right under any binary log.
    let binlog: Option<(i64, String)> =
        match conn.query_first("SELECT @@log_bin, @@binlog_format").await {
            Ok(b) => b,
            Err(mysql_async::Error::Server(_)) => None,
            Err(e) => return Err(e.into()),
        };
    let read_committed = binlog
        .is_some_and(|(log_bin, format)| log_bin == 0 || !format.eq_ignore_ascii_case("STATEMENT"));
    Ok(if read_committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::RepeatableRead
    })
}

/// Erase account `userid` in one transaction. `actor` goes to the audit row.
pub async fn erase(
    conn: &mut Conn,
    userid: i64,
    mode: Mode,
    actor: &str,
) -> Result<Outcome, EraseError> {
    let now = crate::now();
    let mut opts = TxOpts::default();
    opts.with_isolation_level(write_isolation(conn).await?);
    let mut tx = conn.start_transaction(opts).await?;
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
    // Three unrelated markers: the key, the public name / address, and an
    // unusable password hash. BOINC's own obfuscation uses one value for
    // key and address; a key equal to the public name would let anyone
    // sign in to the anonymous account through BOINC's PHP.
    let key_marker = deleted_marker(now);
    let name_marker = deleted_marker(now);
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
        (&key_marker, userid),
    )
    .await?;

    // Deletion records for stats sites, with the ids they know (so written
    // before the cross-project ids change below). An account obfuscated
    // earlier and wiped now keeps its first records: its address and ids
    // are no longer the real ones.
    if !already {
        tx.exec_drop(
            "INSERT INTO user_deleted (userid, public_cross_project_id, create_time) \
             VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE userid = userid",
            (userid, user.cpid(), now),
        )
        .await?;
        tx.exec_drop(
            "INSERT INTO host_deleted (hostid, public_cross_project_id, create_time) \
             SELECT id, COALESCE(host_cpid, ''), ? FROM host WHERE userid = ? \
             ON DUPLICATE KEY UPDATE hostid = host_deleted.hostid",
            (now, userid),
        )
        .await?;
    }

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
    if mode == Mode::Wipe {
        // A founder request (negative: withdrawn by leaving) from an
        // account that no longer exists: BOINC's founder page would look
        // the requester up and find nothing.
        let pinged: Vec<i64> = tx
            .exec("SELECT id FROM team WHERE ABS(ping_user) = ?", (userid,))
            .await?;
        for team in pinged {
            tx.exec_drop(
                "UPDATE team SET ping_user = 0, ping_time = 0 WHERE id = ?",
                (team,),
            )
            .await?;
        }
    }

    out.other_rows_removed += rows::remove(tx, userid, mode, &has).await?;

    if has("post") && has("thread") && has("forum") {
        out.other_rows_removed += forum::delete_posts(tx, userid).await?;
    }
    if has("thread") {
        out.other_rows_anonymised += forum::untitle_threads(tx, userid).await?;
    }

    let consent_rows: Option<i64> = tx
        .exec_first("SELECT COUNT(*) FROM consent WHERE userid = ?", (userid,))
        .await?;
    let consent_rows = consent_rows.unwrap_or(0) as u64;

    match mode {
        Mode::Obfuscate => {
            if has("donation_paypal") {
                // Amounts and dates stay for the project's accounts.
                tx.exec_drop(
                    "UPDATE donation_paypal SET email_addr = '', payer_email = '', \
                     payer_name = '' WHERE userid = ?",
                    (userid,),
                )
                .await?;
                out.other_rows_anonymised += tx.affected_rows();
            }
            // Upstream's columns, plus everything else that identifies the
            // person. The name gets a marker, not upstream's 'deleted':
            // names are unique here. The cross-project id changes after
            // user_deleted published md5(old id . address): kept, it would
            // confirm a guessed address with one md5.
            tx.exec_drop(
                "UPDATE user SET email_addr = ?, name = ?, country = '', postal_code = '', \
                 has_profile = 0, url = '', signature = '', previous_email_addr = '', \
                 email_addr_change_time = 0, login_token = '', login_token_time = 0, \
                 global_prefs = '', project_prefs = '', venue = '', cross_project_id = ?, \
                 passwd_hash = ? WHERE id = ?",
                (
                    &name_marker,
                    &name_marker,
                    crate::random_hex32(),
                    deleted_marker(now),
                    userid,
                ),
            )
            .await?;
            // host_cpid too: other projects publish the same computer's id
            // next to the person's name there.
            tx.exec_drop(
                "UPDATE host SET domain_name = 'deleted', last_ip_addr = '', \
                 external_ip_addr = '', host_cpid = '' WHERE userid = ?",
                (userid,),
            )
            .await?;
            out.consent_rows_kept = consent_rows;
        }
        Mode::Wipe => {
            if has("result") {
                results::detach(tx, userid, now, has("workunit")).await?;
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
