//! Consent changes of several accounts in one transaction: am_set_info's
//! consent-only requests, grouped while the database commits the previous
//! group (see `boinc_rpc::flip_group`). Each change is decided exactly as
//! one request alone would be: the account is locked, the type is found by
//! its exact name, and a row is appended only when the flag differs from
//! the latest one, earlier changes of the same group included.
//!
//! A group never waits for a row lock: accounts another transaction holds
//! are skipped (`SKIP LOCKED`) and come back as [`FlipOutcome::Busy`], for
//! the caller to apply alone, so one busy account never delays the others.
//! The caller claims the group's requests between [`GroupConn::stage`] and
//! [`GroupConn::commit`]; if the COMMIT's answer is lost, the
//! [`Staged::trace`] tells whether it happened (`crate::commit`).

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Value};

use super::insert::{insert_all, NewConsent};
use super::{decide, latest, Decision, FoundType};
use crate::commit::RowTrace;
use crate::locking::LockSyntax;
use crate::DbError;

/// One requested consent change, by account key and consent type name.
#[derive(Debug, Clone)]
pub struct Flip {
    pub account_key: String,
    pub type_name: String,
    pub flag: bool,
    pub not_required: bool,
    pub source: String,
}

/// What became of one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlipOutcome {
    /// Done; `recorded` when a consent row was appended (false: the flag
    /// already was the latest one).
    Applied { userid: i64, recorded: bool },
    /// Withdrawal of ENROLL, which only deleting the account does.
    EnrollWithdrawal { userid: i64 },
    /// The type exists but is disabled: nothing written.
    TypeDisabled { userid: i64, shortname: String },
    /// No type has exactly this name: nothing written.
    UnknownType { userid: i64 },
    /// The group did not lock this account (another transaction holds it,
    /// or the key names no account): nothing decided, apply it alone.
    Busy,
}

/// What a group's statements decided, before its COMMIT.
#[derive(Debug)]
pub struct Staged {
    /// One per change, in order.
    pub outcomes: Vec<FlipOutcome>,
    /// The first row appended, to learn the COMMIT's fate if its answer
    /// is lost; None when nothing was written.
    pub trace: Option<RowTrace>,
}

/// IN lists are padded to these lengths (repeating the last value), so a
/// connection keeps a handful of prepared statements, not one per size.
const BUCKETS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// The most changes a group should hold: more still works, but its
/// statements get longer and their IN lists are no longer padded.
pub const MAX_GROUP: usize = 32;

fn bucket(n: usize) -> usize {
    BUCKETS.into_iter().find(|b| *b >= n).unwrap_or(n)
}

fn padded<T: Clone + Into<Value>>(values: &[T]) -> (String, Vec<Value>) {
    let n = bucket(values.len());
    let mut v: Vec<Value> = values.iter().cloned().map(Into::into).collect();
    if let Some(last) = v.last().cloned() {
        v.resize(n, last);
    }
    (vec!["?"; n].join(", "), v)
}

#[derive(Clone, Copy)]
struct TypeSeen {
    id: i64,
    enabled: bool,
    latest: Option<i64>,
}

/// A connection of its own (not pooled) with autocommit off, for groups:
/// every statement joins the open transaction, so a group needs no
/// START TRANSACTION round trip. Never handed to anything else.
///
/// READ COMMITTED where the server allows it: then one statement finds the
/// accounts by key and locks them by id (the reads after it see a fresh
/// snapshot, so a key lookup inside the transaction hides nothing). Under
/// binlog_format STATEMENT (which refuses writes in READ COMMITTED) the
/// lookup is committed apart first, one round trip more.
pub struct GroupConn {
    conn: Conn,
    read_committed: bool,
    locks: LockSyntax,
}

/// A server without `SKIP LOCKED` (MariaDB before 10.6, MySQL before 8.0)
/// cannot group without waiting on busy accounts.
#[derive(Debug, thiserror::Error)]
#[error("the database server has no SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+): consent changes are applied one by one")]
pub struct NoSkipLocked;

impl GroupConn {
    /// Connect; `Ok(Err(NoSkipLocked))` when the server cannot group.
    pub async fn connect(opts: Opts) -> Result<Result<Self, NoSkipLocked>, DbError> {
        let mut init = opts.init().to_vec();
        init.push("SET SESSION autocommit = 0".into());
        // A backstop only: no statement of a group should wait on a lock
        // (SKIP LOCKED, NOWAIT), but a gap lock under REPEATABLE READ
        // could make an INSERT wait; a second is plenty for any honest one.
        init.push("SET SESSION innodb_lock_wait_timeout = 1".into());
        // Room for every size of the group's statements.
        let opts = OptsBuilder::from_opts(opts).init(init).stmt_cache_size(128);
        let mut conn = Conn::new(opts).await?;
        let locks = LockSyntax::probe(&mut conn).await?;
        if !locks.skip_locked {
            conn.query_drop("COMMIT").await?;
            let _ = conn.disconnect().await;
            return Ok(Err(NoSkipLocked));
        }
        // A server that cannot say (no such variable on some version) gets
        // the plan that is right under any binary log.
        let binlog: Option<(i64, String)> =
            match conn.query_first("SELECT @@log_bin, @@binlog_format").await {
                Ok(b) => b,
                Err(mysql_async::Error::Server(_)) => None,
                Err(e) => return Err(e.into()),
            };
        let read_committed = binlog.is_some_and(|(log_bin, format)| {
            log_bin == 0 || !format.eq_ignore_ascii_case("STATEMENT")
        });
        let level = if read_committed {
            "READ COMMITTED"
        } else {
            "REPEATABLE READ"
        };
        conn.query_drop(format!("SET SESSION TRANSACTION ISOLATION LEVEL {level}"))
            .await?;
        // The reads above opened a transaction (autocommit is off).
        conn.query_drop("COMMIT").await?;
        Ok(Ok(Self {
            conn,
            read_committed,
            locks,
        }))
    }

    /// Whether one statement looks the accounts up and locks them.
    pub fn read_committed(&self) -> bool {
        self.read_committed
    }

    /// The server's id of this connection (`crate::commit::settle`).
    pub fn thread(&self) -> u32 {
        self.conn.id()
    }

    /// Every statement of the group but the COMMIT: lock the accounts that
    /// are free, decide each change, append the rows. The transaction
    /// stays open: [`commit`](Self::commit) or [`rollback`](Self::rollback)
    /// next. After an error the transaction may still be open: drop this
    /// connection (closing it rolls back) and connect again.
    pub async fn stage(&mut self, flips: &[Flip], now: i64) -> Result<Staged, DbError> {
        let ids = if self.read_committed {
            None
        } else {
            let ids = ids_of(&mut self.conn, flips).await?;
            self.conn.query_drop("COMMIT").await?;
            Some(ids)
        };
        stage(&mut self.conn, &self.locks, flips, ids, now).await
    }

    pub async fn commit(&mut self) -> Result<(), DbError> {
        self.conn.query_drop("COMMIT").await?;
        Ok(())
    }

    pub async fn rollback(&mut self) -> Result<(), DbError> {
        self.conn.query_drop("ROLLBACK").await?;
        Ok(())
    }

    /// Close it (rolling back anything open).
    pub async fn disconnect(self) {
        let _ = self.conn.disconnect().await;
    }
}

fn keys_of(flips: &[Flip]) -> Vec<&str> {
    let mut keys: Vec<&str> = flips
        .iter()
        .map(|f| f.account_key.as_str())
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Ids of the accounts the keys name (under the collation; the lock
/// statement checks the keys exactly).
async fn ids_of<Q: Queryable>(q: &mut Q, flips: &[Flip]) -> Result<Vec<i64>, DbError> {
    let keys = keys_of(flips);
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (marks, params) = padded(&keys);
    Ok(q.exec(
        format!("SELECT id FROM user WHERE authenticator IN ({marks})"),
        Params::Positional(params),
    )
    .await?)
}

/// The group's statements, up to the COMMIT, inside the caller's
/// transaction: lock the free accounts, then read the named types and the
/// locked accounts' latest flags (a plain read: under READ COMMITTED a
/// statement reads what was committed when it starts, which is after the
/// locks, so every committed row of these accounts is seen; a locking read
/// would also lock the neighbouring account's newest row and fail on a
/// row being written there), then append the rows decided.
async fn stage<Q: Queryable>(
    tx: &mut Q,
    locks: &LockSyntax,
    flips: &[Flip],
    ids: Option<Vec<i64>>,
    now: i64,
) -> Result<Staged, DbError> {
    let keys = keys_of(flips);
    let mut names: Vec<&str> = flips.iter().map(|f| f.type_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let users = lock(tx, locks, &keys, ids).await?;
    let mut seen = types_and_latest(tx, &users, &names).await?;
    decide_and_insert(tx, flips, &users, &mut seen, now).await
}

/// Lock the group's accounts that no other transaction holds, by id (the
/// primary key, as an erase does: locking through the key's index would
/// deadlock with an erase rewriting that key), skipping the busy ones.
/// `ids`: those ids; None: the ids the keys name, found in the same
/// statement by a non-locking read (READ COMMITTED only). Keys match byte
/// for byte: the collation also accepts case and trailing-space variants.
/// Returns the locked live accounts by key.
async fn lock<Q: Queryable>(
    tx: &mut Q,
    locks: &LockSyntax,
    keys: &[&str],
    ids: Option<Vec<i64>>,
) -> Result<HashMap<String, i64>, DbError> {
    let mut users = HashMap::new();
    let (which, params) = match ids {
        Some(mut ids) => {
            ids.sort_unstable();
            padded(&ids)
        }
        None => {
            let (marks, params) = padded(keys);
            (
                format!("SELECT id FROM user WHERE authenticator IN ({marks})"),
                params,
            )
        }
    };
    if params.is_empty() {
        return Ok(users);
    }
    let skip_locked = locks
        .update_skip_locked()
        .ok_or(DbError::Schema("SKIP LOCKED needed for groups".into()))?;
    let rows: Vec<(i64, Option<String>)> = tx
        .exec(
            format!(
                "SELECT u.id, u.authenticator FROM user u WHERE u.id IN ({which}) \
                 ORDER BY u.id {skip_locked}"
            ),
            Params::Positional(params),
        )
        .await?;
    for (id, auth) in rows {
        let Some(auth) = auth else { continue };
        // Erased since the lookup: the key names nothing.
        if keys.binary_search(&auth.as_str()).is_err()
            || crate::account::erase::is_deleted_key(&auth)
        {
            continue;
        }
        users.insert(auth, id);
    }
    Ok(users)
}

/// The named types and each locked account's latest flag of them, read
/// after the locks, so every committed row of these accounts is seen.
async fn types_and_latest<Q: Queryable>(
    tx: &mut Q,
    users: &HashMap<String, i64>,
    names: &[&str],
) -> Result<HashMap<(i64, String), TypeSeen>, DbError> {
    let mut seen = HashMap::new();
    let mut ids: Vec<i64> = users.values().copied().collect();
    if ids.is_empty() || names.is_empty() {
        return Ok(seen);
    }
    ids.sort_unstable();
    let (id_marks, mut params) = padded(&ids);
    let (name_marks, name_params) = padded(names);
    params.extend(name_params);
    type Row = (i64, String, i64, i64, Option<i64>);
    let rows: Vec<Row> = tx
        .exec(
            format!(
                "SELECT ct.id, ct.shortname, ct.enabled, u.id, {} \
                 FROM consent_type ct JOIN user u ON u.id IN ({id_marks}) \
                 WHERE ct.shortname IN ({name_marks})",
                latest::flag_sql("u.id", "ct.id")
            ),
            Params::Positional(params),
        )
        .await?;
    for (tid, shortname, enabled, uid, latest) in rows {
        let t = TypeSeen {
            id: tid,
            enabled: enabled != 0,
            latest,
        };
        seen.insert((uid, shortname), t);
    }
    Ok(seen)
}

/// Each change in order (earlier ones of the group count for later ones),
/// then one INSERT of the rows decided.
async fn decide_and_insert<Q: Queryable>(
    tx: &mut Q,
    flips: &[Flip],
    users: &HashMap<String, i64>,
    seen: &mut HashMap<(i64, String), TypeSeen>,
    now: i64,
) -> Result<Staged, DbError> {
    let mut outcomes = Vec::with_capacity(flips.len());
    let mut rows: Vec<NewConsent<'_>> = Vec::new();
    for f in flips {
        // Not locked here: held elsewhere, unknown, or erased since the
        // lookup; alone, it waits its turn or gets its "not found".
        let Some(&userid) = users.get(&f.account_key) else {
            outcomes.push(FlipOutcome::Busy);
            continue;
        };
        // Exact name: the map holds the stored bytes, so a look-alike of a
        // type's name finds nothing.
        let t = seen.get_mut(&(userid, f.type_name.clone()));
        let found = t.as_ref().map(|t| FoundType {
            shortname: &f.type_name,
            enabled: t.enabled,
        });
        let latest = t.as_ref().and_then(|t| t.latest);
        let outcome = match (decide(found, f.flag, latest), t) {
            (Decision::UnknownType, _) | (_, None) => FlipOutcome::UnknownType { userid },
            (Decision::EnrollWithdrawal, _) => FlipOutcome::EnrollWithdrawal { userid },
            (Decision::Disabled, _) => FlipOutcome::TypeDisabled {
                userid,
                shortname: f.type_name.clone(),
            },
            (Decision::AlreadyLatest, _) => FlipOutcome::Applied {
                userid,
                recorded: false,
            },
            (Decision::Record, Some(t)) => {
                rows.push(NewConsent {
                    userid,
                    consent_type_id: t.id,
                    consent_time: now,
                    consent_flag: f.flag,
                    consent_not_required: f.not_required,
                    source: &f.source,
                });
                t.latest = Some(i64::from(f.flag));
                FlipOutcome::Applied {
                    userid,
                    recorded: true,
                }
            }
        };
        outcomes.push(outcome);
    }
    let mut trace = None;
    if let Some(first) = rows.first() {
        // One statement; the first row's id traces the COMMIT.
        let id = insert_all(tx, &rows).await?;
        trace = Some(RowTrace {
            id,
            userid: first.userid,
            consent_type_id: first.consent_type_id,
            consent_time: now,
        });
    }
    Ok(Staged { outcomes, trace })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_padded_to_a_few_sizes() {
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(3), 4);
        assert_eq!(bucket(17), 32);
        let (marks, v) = padded(&[5i64, 7, 9]);
        assert_eq!(marks, "?, ?, ?, ?");
        assert_eq!(
            v,
            vec![Value::from(5i64), 7i64.into(), 9i64.into(), 9i64.into()]
        );
    }
}
