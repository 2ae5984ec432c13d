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

/// Longest actor name stored: the column's size, counted in bytes so it
/// fits whether the database counts characters (utf8mb4) or bytes (latin1).
pub const ACTOR_MAX: usize = 191;

/// `actor` cut to [`ACTOR_MAX`] bytes at a character boundary.
fn fit_actor(actor: &str) -> &str {
    let mut end = actor.len().min(ACTOR_MAX);
    while !actor.is_char_boundary(end) {
        end -= 1;
    }
    &actor[..end]
}

pub async fn record<Q: Queryable>(
    q: &mut Q,
    actor: &str,
    userid: i64,
    action: Action,
    mode: &str,
    now: i64,
) -> Result<(), DbError> {
    let actor = fit_actor(actor);
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

#[cfg(test)]
mod tests {
    #[test]
    fn long_actors_are_cut_at_a_character_boundary() {
        assert_eq!(super::fit_actor("admin"), "admin");
        let long = "é".repeat(200);
        let cut = super::fit_actor(&long);
        assert_eq!(cut.len(), 190);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
