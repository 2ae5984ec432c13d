//! Consent changes of several accounts in one transaction: am_set_info's
//! consent-only requests, grouped while the database commits the previous
//! group (see `boinc_rpc::flip_group`). Each change is decided exactly as
//! one request alone would be (`account::lock_and_read_user` and
//! `account::consent_type_and_latest`): the account is locked, the type is
//! found by its exact name, and a row is appended only when the flag
//! differs from the latest one, earlier changes of the same group
//! included. On a [`GroupConn`] a group costs four round trips (lock, read,
//! insert, commit) however many changes it holds.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, TxOpts, Value};

use crate::models::CONSENT_ENROLL;
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
    /// The key names no (live) account: nothing written.
    NoAccount,
    /// Done; `recorded` when a consent row was appended (false: the flag
    /// already was the latest one).
    Applied { userid: i64, recorded: bool },
    /// Withdrawal of ENROLL, which only deleting the account does.
    EnrollWithdrawal { userid: i64 },
    /// The type exists but is disabled: nothing written.
    TypeDisabled { userid: i64, shortname: String },
    /// No type has exactly this name: nothing written.
    UnknownType { userid: i64 },
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

/// Whether asking for `flag` changes the consent state whose latest stored
/// flag is `latest` (None: no row yet), i.e. whether a row is appended.
/// Consented means flag 1: an odd stored flag is not consent.
pub fn changes_latest(latest: Option<i64>, flag: bool) -> bool {
    latest.is_none_or(|stored| (stored == 1) != flag)
}

#[derive(Clone, Copy)]
struct TypeSeen {
    id: i64,
    enabled: bool,
    latest: Option<i64>,
}

/// Apply `flips` in one transaction, in order; one outcome per flip. An
/// error means nothing of the group was written.
pub async fn apply(conn: &mut Conn, flips: &[Flip], now: i64) -> Result<Vec<FlipOutcome>, DbError> {
    // Keys to ids before the transaction, as am_set_info alone does.
    let ids = ids_of(conn, flips).await?;
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let outcomes = stage(&mut tx, flips, Plan::AfterLookup(ids), now).await?;
    tx.commit().await?;
    Ok(outcomes)
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
}

impl GroupConn {
    pub async fn connect(opts: Opts) -> Result<Self, DbError> {
        let mut init = opts.init().to_vec();
        init.push("SET SESSION autocommit = 0".into());
        // Room for every size of the group's statements.
        let opts = OptsBuilder::from_opts(opts).init(init).stmt_cache_size(128);
        let mut conn = Conn::new(opts).await?;
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
        // The SELECT above opened a transaction (autocommit is off).
        conn.query_drop("COMMIT").await?;
        Ok(Self {
            conn,
            read_committed,
        })
    }

    /// Whether one statement looks the accounts up and locks them.
    pub fn read_committed(&self) -> bool {
        self.read_committed
    }

    /// [`apply`], calling `before_commit` once every statement but the
    /// COMMIT has run: the next group may then start its statements while
    /// this one waits for its commit to be durable (a later group naming
    /// one of these accounts waits for the commit on the row lock). After
    /// an error the transaction may still be open: drop this connection
    /// (closing it rolls back) and connect again.
    pub async fn apply_then(
        &mut self,
        flips: &[Flip],
        now: i64,
        before_commit: impl FnOnce(),
    ) -> Result<Vec<FlipOutcome>, DbError> {
        let plan = if self.read_committed {
            Plan::InLock
        } else {
            let ids = ids_of(&mut self.conn, flips).await?;
            self.conn.query_drop("COMMIT").await?;
            Plan::AfterLookup(ids)
        };
        let outcomes = stage(&mut self.conn, flips, plan, now).await?;
        before_commit();
        self.conn.query_drop("COMMIT").await?;
        Ok(outcomes)
    }

    /// Close it (rolling back anything open).
    pub async fn disconnect(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// How a group finds, locks and reads.
enum Plan {
    /// READ COMMITTED only: one statement finds the accounts by key, locks
    /// them by id, and reads the named types and, per account, its latest
    /// flag of each, the latter by a locking read (which sees the latest
    /// committed row whatever snapshot the statement's other reads use, and
    /// under READ COMMITTED locks that one row, no gap).
    InLock,
    /// Lock the ids a lookup outside this transaction found, then read the
    /// types and latest flags (a snapshot taken after the locks): one
    /// round trip more.
    AfterLookup(Vec<i64>),
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

/// What the lock (and read) found: live accounts by exact key, and per
/// (account, exact type name) the type and the account's latest flag.
type Found = (HashMap<String, i64>, HashMap<(i64, String), TypeSeen>);

/// The group's statements, up to the COMMIT, inside the caller's
/// transaction.
async fn stage<Q: Queryable>(
    tx: &mut Q,
    flips: &[Flip],
    plan: Plan,
    now: i64,
) -> Result<Vec<FlipOutcome>, DbError> {
    let keys = keys_of(flips);
    let mut names: Vec<&str> = flips.iter().map(|f| f.type_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let (users, mut seen) = match plan {
        Plan::InLock => lock(tx, &keys, None, &names).await?,
        Plan::AfterLookup(ids) => {
            let (users, _) = lock(tx, &keys, Some(ids), &[]).await?;
            let seen = types_and_latest(tx, &users, &names).await?;
            (users, seen)
        }
    };
    decide_and_insert(tx, flips, &users, &mut seen, now).await
}

/// Lock every account of the group by id (the primary key, as an erase
/// does: locking through the key's index would deadlock with an erase
/// rewriting that key), in id order, so two groups never lock the same
/// accounts in opposite orders. `ids`: those ids; None: the ids the keys
/// name, found in the same statement by a non-locking read. With `names`,
/// the same statement reads those types and latest flags (`Plan::InLock`).
/// Keys match byte for byte: the collation also accepts case and
/// trailing-space variants.
async fn lock<Q: Queryable>(
    tx: &mut Q,
    keys: &[&str],
    ids: Option<Vec<i64>>,
    names: &[&str],
) -> Result<Found, DbError> {
    let mut users = HashMap::new();
    let mut seen = HashMap::new();
    let (which, which_params) = match ids {
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
    if which_params.is_empty() {
        return Ok((users, seen));
    }
    let (type_cols, mut params) = if names.is_empty() {
        (String::new(), Vec::new())
    } else {
        let (_, names) = padded(names);
        let col = ", (SELECT CONCAT(ct.id, ':', ct.enabled, ':', ct.shortname) \
                      FROM consent_type ct WHERE ct.shortname = ? LIMIT 1), \
                    (SELECT c.consent_flag FROM consent c \
                      WHERE c.userid = u.id AND c.consent_type_id = \
                            (SELECT ct.id FROM consent_type ct WHERE ct.shortname = ? LIMIT 1) \
                      ORDER BY c.consent_time DESC, c.id DESC LIMIT 1 LOCK IN SHARE MODE)";
        let params = names.iter().flat_map(|n| [n.clone(), n.clone()]).collect();
        (col.repeat(names.len()), params)
    };
    params.extend(which_params);
    let rows: Vec<mysql_async::Row> = tx
        .exec(
            format!(
                "SELECT u.id, u.authenticator{type_cols} FROM user u WHERE u.id IN ({which}) \
                 ORDER BY u.id FOR UPDATE"
            ),
            Params::Positional(params),
        )
        .await?;
    for row in rows {
        let mut cols = row.unwrap().into_iter();
        let id = cols
            .next()
            .and_then(|v| mysql_async::from_value_opt::<i64>(v).ok());
        let auth = cols
            .next()
            .and_then(|v| mysql_async::from_value_opt::<Option<String>>(v).ok())
            .flatten();
        let (Some(id), Some(auth)) = (id, auth) else {
            continue;
        };
        // Erased while we waited for the lock: the key names nothing.
        if keys.binary_search(&auth.as_str()).is_err() || crate::erase::is_deleted_key(&auth) {
            continue;
        }
        users.insert(auth, id);
        // Pairs of ("id:enabled:shortname" or NULL, latest flag or NULL).
        while let (Some(t), Some(latest)) = (cols.next(), cols.next()) {
            let Ok(Some(t)) = mysql_async::from_value_opt::<Option<String>>(t) else {
                continue;
            };
            let latest = mysql_async::from_value_opt::<Option<i64>>(latest)
                .ok()
                .flatten();
            let mut parts = t.splitn(3, ':');
            if let (Some(Ok(tid)), Some(Ok(enabled)), Some(name)) = (
                parts.next().map(str::parse),
                parts.next().map(str::parse::<i64>),
                parts.next(),
            ) {
                let t = TypeSeen {
                    id: tid,
                    enabled: enabled != 0,
                    latest,
                };
                seen.insert((id, name.to_owned()), t);
            }
        }
    }
    Ok((users, seen))
}

/// `Plan::AfterLookup`'s read: the named types and each locked account's
/// latest flag of them, read after the locks, so every committed row of
/// these accounts is seen.
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
                "SELECT ct.id, ct.shortname, ct.enabled, u.id, \
                        (SELECT c.consent_flag FROM consent c \
                          WHERE c.userid = u.id AND c.consent_type_id = ct.id \
                          ORDER BY c.consent_time DESC, c.id DESC LIMIT 1) \
                 FROM consent_type ct JOIN user u ON u.id IN ({id_marks}) \
                 WHERE ct.shortname IN ({name_marks})"
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
) -> Result<Vec<FlipOutcome>, DbError> {
    let mut outcomes = Vec::with_capacity(flips.len());
    let mut rows: Vec<Value> = Vec::new();
    for f in flips {
        let Some(&userid) = users.get(&f.account_key) else {
            outcomes.push(FlipOutcome::NoAccount);
            continue;
        };
        // Exact name: the map holds the stored bytes, so a look-alike of a
        // type's name finds nothing.
        let Some(t) = seen.get_mut(&(userid, f.type_name.clone())) else {
            outcomes.push(FlipOutcome::UnknownType { userid });
            continue;
        };
        if f.type_name == CONSENT_ENROLL && !f.flag {
            outcomes.push(FlipOutcome::EnrollWithdrawal { userid });
            continue;
        }
        if !t.enabled {
            outcomes.push(FlipOutcome::TypeDisabled {
                userid,
                shortname: f.type_name.clone(),
            });
            continue;
        }
        let recorded = changes_latest(t.latest, f.flag);
        if recorded {
            rows.extend([
                userid.into(),
                t.id.into(),
                now.into(),
                i64::from(f.flag).into(),
                i64::from(f.not_required).into(),
                f.source.as_str().into(),
            ]);
            t.latest = Some(i64::from(f.flag));
        }
        outcomes.push(FlipOutcome::Applied { userid, recorded });
    }
    if !rows.is_empty() {
        // One statement: rows of one INSERT get ascending ids in order, so
        // a later change of the same account and type is the latest one.
        let n = rows.len() / 6;
        let values = vec!["(?, ?, ?, ?, ?, ?)"; n].join(", ");
        tx.exec_drop(
            format!(
                "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
                 consent_not_required, source) VALUES {values}"
            ),
            Params::Positional(rows),
        )
        .await?;
    }
    Ok(outcomes)
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
