//! am_set_info applied alone: one transaction for every field of the
//! call, under the account's row lock (the profile part in `profile.rs`,
//! the consent part in `consent.rs`).
//!
//! The lock is taken with NOWAIT: if another transaction holds the account
//! (an erase, an admin, BOINC's PHP, another call for it), the attempt
//! rolls back, lets its connection go and tries again after a pause, so a
//! busy account delays only its own calls and ties up no connection. The
//! COMMIT goes through `crate::commit`, so the reply tells the truth about
//! it (a token in `rpc_commit` answers for a COMMIT whose answer was lost).

use std::time::Duration;

use boinc_db::account;
use boinc_db::commit::{Marker, Trace};
use boinc_db::locking::LockSyntax;
use boinc_db::models::User;
use boinc_db::queries;
use mysql_async::TxOpts;

use super::consent;
use super::not_written::NotWritten;
use super::profile::{self, Credentials};
use super::request::{applied, AmSetInfo};
use crate::commit::Uncommitted;
use crate::error::RpcError;
use crate::limits::Budget;
use crate::reply::Xml;
use crate::request::RpcRequest;
use crate::state::AppState;
use crate::validate;

/// Pauses between attempts on a busy account: short at first (another
/// call's transaction is over in milliseconds), longer for an erase.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Apply the whole call in one transaction, waiting (without a
/// connection) while the account is busy.
pub(super) async fn alone(
    state: &AppState,
    req: &RpcRequest,
    r: &AmSetInfo,
    failures: &Budget<'_>,
) -> Result<Xml, RpcError> {
    let mut conn = state.conn().await?;
    validate::stored_in(state.charset(&mut conn).await?, &r.stored_text())?;
    let locks = state.locks(&mut conn).await?;
    let Some(user) = queries::user_by_authenticator(&mut conn, &r.account_key).await? else {
        failures.count_failure(&mut conn).await?;
        return Err(RpcError::NotFound);
    };
    failures.admit(&mut conn).await?;
    let creds = profile::credentials(state, r, &user).await?;
    let mut pause = FIRST_PAUSE;
    loop {
        match attempt(state, req, &mut conn, &locks, r, &user, &creds).await {
            Ok((recorded, warning)) => {
                return Ok(applied(state, "alone", user.id, warning, recorded))
            }
            Err(NotWritten::Refused(e)) => return Err(e),
            Err(NotWritten::Busy) => {
                state.metrics.busy_retries.inc();
                if req.guard.expired() {
                    return Err(RpcError::DbUnavailable);
                }
                // The connection goes back while we wait (the pool rolls
                // back what the attempt left open).
                drop(conn);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                conn = state.conn().await?;
            }
        }
    }
}

/// One try: Ok((consent row recorded, warning)) when committed.
async fn attempt(
    state: &AppState,
    req: &RpcRequest,
    conn: &mut mysql_async::Conn,
    locks: &LockSyntax,
    r: &AmSetInfo,
    user: &User,
    creds: &Credentials,
) -> Result<(bool, Option<String>), NotWritten> {
    let now = boinc_db::now();
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    // Serialise changes to this account; re-read it under the lock (one
    // statement does both).
    let Some(cur) = account::lock_and_read_user(&mut tx, user.id, locks).await? else {
        return Err(NotWritten::Refused(RpcError::NotFound));
    };
    // Erased (or key changed) since the lookup: the key no longer names
    // this account.
    if cur.authenticator() != r.account_key || boinc_db::account::erase::is_deleted(&cur) {
        return Err(NotWritten::Refused(RpcError::NotFound));
    }
    // The consent type, by its exact name; what may be done is decided on
    // the type found, never on the text sent (seen under the lock).
    let decided = match &r.consent {
        Some(c) => Some(consent::decide(&mut tx, c, &cur).await?),
        None => None,
    };
    let upd = profile::update(&mut tx, r, &cur, creds, now).await?;
    account::update_user(&mut tx, cur.id, &upd).await?;
    profile::team(&mut tx, r, &cur).await?;
    let (record, warning) = decided.map_or((None, None), |d| (d.record, d.warning));
    let recorded = record.is_some();
    if let Some((c, consent_type_id)) = record {
        consent::record(&mut tx, &cur, c, consent_type_id, now).await?;
    }
    let marker = Marker::new();
    marker.write(&mut tx, now).await?;
    crate::commit::commit(
        &state.pool,
        state.options.request_timeout,
        &req.guard,
        tx,
        Trace::Marker(marker),
    )
    .await
    .map_err(|u| match u {
        // Nothing written and the caller still waits: once more.
        Uncommitted::RolledBack => NotWritten::Busy,
        u => NotWritten::Refused(u.into()),
    })?;
    Ok((recorded, warning))
}
