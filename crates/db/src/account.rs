//! Account writes of the web RPCs beyond `queries` (am_set_info's profile
//! update and the row lock that serialises one account's changes).

pub mod audit;
pub mod erase;
pub mod public_lookup;
pub mod retention;
pub mod subject;

use mysql_async::prelude::*;
use mysql_async::{Params, Value};

use crate::locking::LockSyntax;
use crate::models::User;
use crate::queries::USER_COLUMNS;
use crate::DbError;

/// Lock the user's row until the transaction ends, so two concurrent
/// am_set_info calls for one account apply one after the other (the
/// "latest consent differs" check must see the other call's row).
/// False if the user no longer exists.
pub async fn lock_user<Q: Queryable>(q: &mut Q, userid: i64) -> Result<bool, DbError> {
    let id: Option<i64> = q
        .exec_first("SELECT id FROM user WHERE id = ? FOR UPDATE", (userid,))
        .await?;
    Ok(id.is_some())
}

/// Lock the user's row until the transaction ends and read it, in one
/// statement (a locking read sees the latest committed row). None if the
/// user no longer exists. With NOWAIT where the server has it: a row held
/// elsewhere fails at once (`locking::is_lock_busy`) instead of waiting.
pub async fn lock_and_read_user<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    locks: &LockSyntax,
) -> Result<Option<User>, DbError> {
    Ok(q.exec_first(
        format!(
            "SELECT {USER_COLUMNS} FROM user WHERE id = ? {}",
            locks.update_nowait()
        ),
        (userid,),
    )
    .await?)
}

/// An email change as BOINC records it.
#[derive(Debug, Clone)]
pub struct EmailChange {
    pub new_email: String,
    pub previous_email: String,
    pub change_time: i64,
}

/// Profile columns am_set_info may set; `None` leaves a column alone.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub global_prefs: Option<String>,
    pub project_prefs: Option<String>,
    pub url: Option<String>,
    pub send_email: Option<i64>,
    pub show_hosts: Option<i64>,
    pub venue: Option<String>,
    pub email: Option<EmailChange>,
    /// Already in storage form (bcrypt).
    pub passwd_hash: Option<String>,
}

impl UserUpdate {
    pub fn is_empty(&self) -> bool {
        self.assignments().0.is_empty()
    }

    /// Column assignments (fixed column names, never caller text) and
    /// their values, in the same order.
    fn assignments(&self) -> (Vec<&'static str>, Vec<Value>) {
        let mut cols = Vec::new();
        let mut vals: Vec<Value> = Vec::new();
        let mut text = |col: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                cols.push(col);
                vals.push(v.clone().into());
            }
        };
        text("name = ?", &self.name);
        text("country = ?", &self.country);
        text("postal_code = ?", &self.postal_code);
        text("global_prefs = ?", &self.global_prefs);
        text("project_prefs = ?", &self.project_prefs);
        text("url = ?", &self.url);
        text("venue = ?", &self.venue);
        text("passwd_hash = ?", &self.passwd_hash);
        if let Some(v) = self.send_email {
            cols.push("send_email = ?");
            vals.push(v.into());
        }
        if let Some(v) = self.show_hosts {
            cols.push("show_hosts = ?");
            vals.push(v.into());
        }
        if let Some(e) = &self.email {
            cols.push("email_addr = ?");
            vals.push(e.new_email.clone().into());
            cols.push("previous_email_addr = ?");
            vals.push(e.previous_email.clone().into());
            cols.push("email_addr_change_time = ?");
            vals.push(e.change_time.into());
        }
        (cols, vals)
    }
}

/// Apply a profile update in one statement.
pub async fn update_user<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    u: &UserUpdate,
) -> Result<(), DbError> {
    let (cols, mut vals) = u.assignments();
    if cols.is_empty() {
        return Ok(());
    }
    vals.push(userid.into());
    let sql = format!("UPDATE user SET {} WHERE id = ?", cols.join(", "));
    q.exec_drop(sql, Params::Positional(vals)).await?;
    Ok(())
}
