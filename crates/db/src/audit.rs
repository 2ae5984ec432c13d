//! `account_audit`: what admins did about an account on a data-subject
//! request. Who (the admin), when, what, in which mode, and the account's
//! id: never the person's data, so the trail may outlive the account.

use mysql_async::prelude::*;

use crate::DbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An export of the account's data was produced (access request).
    Export,
    /// The account was erased (mode obfuscate or wipe).
    Delete,
    /// An admin opened the account on the ops page.
    View,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Export => "export",
            Action::Delete => "delete",
            Action::View => "view",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub action_time: i64,
    pub actor: String,
    pub userid: i64,
    pub action: String,
    pub mode: String,
}

/// Longest actor name stored (the column's size).
pub const ACTOR_MAX: usize = 191;

pub async fn record<Q: Queryable>(
    q: &mut Q,
    actor: &str,
    userid: i64,
    action: Action,
    mode: &str,
    now: i64,
) -> Result<(), DbError> {
    let actor: String = actor.chars().take(ACTOR_MAX).collect();
    q.exec_drop(
        "INSERT INTO account_audit (action_time, actor, userid, action, mode) \
         VALUES (?, ?, ?, ?, ?)",
        (now, actor, userid, action.as_str(), mode),
    )
    .await?;
    Ok(())
}

/// One account's trail, oldest first.
pub async fn for_user<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Vec<AuditRow>, DbError> {
    Ok(q.exec(
        "SELECT id, action_time, actor, userid, action, mode FROM account_audit \
         WHERE userid = ? ORDER BY id",
        (userid,),
    )
    .await?)
}

/// The latest `limit` entries for all accounts, newest first (ops page).
pub async fn recent<Q: Queryable>(q: &mut Q, limit: u64) -> Result<Vec<AuditRow>, DbError> {
    Ok(q.exec(
        "SELECT id, action_time, actor, userid, action, mode FROM account_audit \
         ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    .await?)
}
