//! am_set_info applied alone: one transaction for every field of the
//! call, under the account's row lock.
//!
//! The lock is taken with NOWAIT: if another transaction holds the account
//! (an erase, an admin, BOINC's PHP, another call for it), the attempt
//! rolls back, lets its connection go and tries again after a pause, so a
//! busy account delays only its own calls and ties up no connection. The
//! COMMIT goes through `crate::commit`, so the reply tells the truth about
//! it (a token in `rpc_commit` answers for a COMMIT whose answer was lost).

use std::time::Duration;

use boinc_db::account::{self, EmailChange, UserUpdate};
use boinc_db::commit::{Marker, Trace};
use boinc_db::consent::{self, Decision, FoundType, NewConsent};
use boinc_db::locking::{is_lock_busy, LockSyntax};
use boinc_db::models::User;
use boinc_db::queries;
use boinc_db::DbError;
use mysql_async::TxOpts;

use super::request::{applied, disabled_warning, enroll_withdrawal, unknown_warning, AmSetInfo};
use crate::commit::Uncommitted;
use crate::error::{duplicate_key_name, RpcError};
use crate::limits::Budget;
use crate::reply::Xml;
use crate::request::RpcRequest;
use crate::state::AppState;
use crate::validate;

/// BOINC's email-change cooldown.
const EMAIL_CHANGE_COOLDOWN_SECS: f64 = 7.0 * 86400.0;

/// Pauses between attempts on a busy account: short at first (another
/// call's transaction is over in milliseconds), longer for an erase.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Keep the project-specific block the account manager knows nothing
/// about (as BOINC does): copy it from the stored prefs if the new ones
/// lack one.
fn keep_project_specific(new: String, old: &str) -> String {
    const OPEN: &str = "<project_specific>";
    const CLOSE: &str = "</project_specific>";
    const ROOT: &str = "<project_preferences>";
    if find_ci(&new, OPEN).is_some() {
        return new;
    }
    let Some(start) = find_ci(old, OPEN) else {
        return new;
    };
    let Some(end) = find_ci(&old[start..], CLOSE).map(|e| start + e + CLOSE.len()) else {
        return new;
    };
    match find_ci(&new, ROOT) {
        Some(at) => {
            let at = at + ROOT.len();
            format!("{}\n{}\n{}", &new[..at], &old[start..end], &new[at..])
        }
        None => new,
    }
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(&needle.to_ascii_lowercase())
}

/// Why an attempt wrote nothing.
enum NotWritten {
    /// A row was busy (or the COMMIT was lost and found not to have
    /// happened): try again.
    Busy,
    /// The answer.
    Refused(RpcError),
}

impl From<DbError> for NotWritten {
    fn from(e: DbError) -> Self {
        if is_lock_busy(&e) {
            return NotWritten::Busy;
        }
        NotWritten::Refused(match duplicate_key_name(&e) {
            Some(k) if k.contains("email") => RpcError::NotUnique(Some(
                "There's already an account with that email address.".into(),
            )),
            Some(k) if k.contains("name") => {
                RpcError::BadUserName("user name is already taken".into())
            }
            Some(_) => RpcError::NotUnique(None),
            None => e.into(),
        })
    }
}

impl From<mysql_async::Error> for NotWritten {
    fn from(e: mysql_async::Error) -> Self {
        DbError::from(e).into()
    }
}

/// The credential changes the call asks for, checked before the
/// transaction (bcrypt is slow; nothing here depends on the lock).
struct Credentials {
    email_change: Option<String>,
    new_passwd_hash: Option<String>,
}

async fn credentials(
    state: &AppState,
    r: &AmSetInfo,
    user: &User,
) -> Result<Credentials, RpcError> {
    let allow_credentials = state.rules.am_set_info_allow_credentials;
    // Re-sending the current email or password is harmless (account
    // managers send whole profiles); changing them needs opt-in.
    let email_change = match &r.email_addr {
        Some(e) if !queries::same_email(&user.email_addr, e) => {
            if !allow_credentials {
                return Err(RpcError::generic(
                    "This project does not allow changing the email address through \
                     am_set_info; please change it on the project's web site.",
                ));
            }
            if !validate::email_syntax(e) {
                return Err(RpcError::BadEmail(Some("Invalid email address".into())));
            }
            Some(e.clone())
        }
        _ => None,
    };
    let new_passwd_hash = match &r.password_hash {
        Some(h) => {
            if crate::rpc::verify_password(user.id, h, &user.passwd_hash).await? {
                None
            } else if !allow_credentials {
                return Err(RpcError::generic(
                    "This project does not allow changing the password through am_set_info; \
                     please change it on the project's web site.",
                ));
            } else if h.len() != 32 {
                return Err(RpcError::generic("password hash length not 32"));
            } else {
                Some(crate::rpc::hash_password(h).await?)
            }
        }
        None => None,
    };
    Ok(Credentials {
        email_change,
        new_passwd_hash,
    })
}

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
    let creds = credentials(state, r, &user).await?;
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

/// `consent::decide` on what `type_and_flag` found.
fn decide_on(found: Option<&(boinc_db::models::ConsentType, Option<i64>)>, flag: bool) -> Decision {
    let t = found.map(|(t, _)| FoundType {
        shortname: &t.shortname,
        enabled: t.is_enabled(),
    });
    consent::decide(t, flag, found.and_then(|(_, latest)| *latest))
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
    let mut warning: Option<String> = None;
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    // Serialise changes to this account; re-read it under the lock (one
    // statement does both).
    let Some(cur) = account::lock_and_read_user(&mut tx, user.id, locks).await? else {
        return Err(NotWritten::Refused(RpcError::NotFound));
    };
    // Erased (or key changed) since the lookup: the key no longer names
    // this account.
    if cur.authenticator() != r.account_key || boinc_db::erase::is_deleted(&cur) {
        return Err(NotWritten::Refused(RpcError::NotFound));
    }
    // The consent type, by its exact name; what may be done is decided on
    // the type found, never on the text sent. The same read brings the
    // user's latest row of that type (seen under the lock).
    let mut record = None;
    if let Some(c) = &r.consent {
        let found = consent::latest::type_and_flag(&mut tx, &c.name, cur.id).await?;
        let decision = decide_on(found.as_ref(), c.flag);
        match decision {
            Decision::EnrollWithdrawal => return Err(NotWritten::Refused(enroll_withdrawal())),
            Decision::Disabled => warning = Some(disabled_warning(&c.name)),
            Decision::UnknownType => warning = Some(unknown_warning(&c.name)),
            Decision::AlreadyLatest => {}
            Decision::Record => record = found.map(|(t, _)| (c, t.id)),
        }
    }
    let mut upd = UserUpdate::default();
    if let Some(name) = &r.name {
        if name != cur.name() {
            if queries::user_name_taken(&mut tx, name, cur.id).await? {
                return Err(NotWritten::Refused(RpcError::BadUserName(
                    "user name is already taken".into(),
                )));
            }
            upd.name = Some(name.clone());
        }
    }
    upd.country = r.country.clone();
    upd.postal_code = r.postal_code.clone();
    upd.global_prefs = r.global_prefs.clone();
    if let Some(p) = &r.project_prefs {
        let old = cur
            .project_prefs
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let merged = keep_project_specific(p.clone(), &old);
        // The kept block may push it past the column's size.
        validate::fits("project_prefs", &merged).map_err(NotWritten::Refused)?;
        upd.project_prefs = Some(merged);
    }
    upd.url = r.url.clone();
    upd.send_email = r.send_email;
    upd.show_hosts = r.show_hosts;
    upd.venue = r.venue.clone();
    if let Some(new_email) = &creds.email_change {
        if queries::user_by_email(&mut tx, new_email).await?.is_some() {
            return Err(NotWritten::Refused(RpcError::NotUnique(Some(
                "There's already an account with that email address.".into(),
            ))));
        }
        if queries::user_by_previous_email(&mut tx, new_email)
            .await?
            .is_some()
        {
            return Err(NotWritten::Refused(RpcError::NotUnique(Some(
                "Email address is already in use".into(),
            ))));
        }
        if cur.email_addr_change_time + EMAIL_CHANGE_COOLDOWN_SECS > now as f64 {
            return Err(NotWritten::Refused(RpcError::BadEmail(Some(
                "Email address was changed within the past 7 days; please look for an \
                 email to the previous address if this change is incorrect."
                    .into(),
            ))));
        }
        upd.email = Some(EmailChange {
            new_email: new_email.clone(),
            previous_email: cur.email_addr.clone(),
            change_time: now,
        });
    }
    upd.passwd_hash = creds.new_passwd_hash.clone();
    account::update_user(&mut tx, cur.id, &upd).await?;

    match r.teamid {
        Some(0) => queries::set_user_team(&mut tx, cur.id, cur.teamid, 0).await?,
        Some(id) => {
            if let Some(team) = queries::team_by_id(&mut tx, id).await? {
                if team.joinable != 0 {
                    queries::set_user_team(&mut tx, cur.id, cur.teamid, team.id).await?;
                }
            }
        }
        None => {}
    }

    let recorded = record.is_some();
    if let Some((c, consent_type_id)) = record {
        consent::insert(
            &mut tx,
            &NewConsent {
                userid: cur.id,
                consent_type_id,
                // The server's clock; the caller has no say.
                consent_time: now,
                consent_flag: c.flag,
                consent_not_required: c.not_required,
                source: &c.source,
            },
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_specific_block_is_kept() {
        let old = "<project_preferences>\n<project_specific>\n<x>1</x>\n</project_specific>\n<resource_share>50</resource_share>\n</project_preferences>";
        let new =
            "<project_preferences>\n<resource_share>100</resource_share>\n</project_preferences>"
                .to_owned();
        let merged = keep_project_specific(new, old);
        assert!(merged.contains("<x>1</x>"), "{merged}");
        assert!(merged.contains("<resource_share>100"));
        let with =
            "<project_preferences>\n<project_specific>y</project_specific>\n</project_preferences>"
                .to_owned();
        assert_eq!(keep_project_specific(with.clone(), old), with);
    }
}
