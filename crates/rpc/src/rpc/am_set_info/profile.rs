//! am_set_info's profile part: credentials checked before the
//! transaction, then the profile columns, email change and team decided
//! under the account's lock.

use boinc_db::account::{EmailChange, UserUpdate};
use boinc_db::models::User;
use boinc_db::queries;

use super::not_written::NotWritten;
use super::request::AmSetInfo;
use crate::error::RpcError;
use crate::state::AppState;
use crate::validate;

/// BOINC's email-change cooldown.
const EMAIL_CHANGE_COOLDOWN_SECS: f64 = 7.0 * 86400.0;

/// The credential changes the call asks for, checked before the
/// transaction (bcrypt is slow; nothing here depends on the lock).
pub(super) struct Credentials {
    email_change: Option<String>,
    new_passwd_hash: Option<String>,
}

pub(super) async fn credentials(
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

/// The profile columns to write, checked against the locked row `cur`
/// (name taken, email in use or changed too recently).
pub(super) async fn update<Q: mysql_async::prelude::Queryable>(
    tx: &mut Q,
    r: &AmSetInfo,
    cur: &User,
    creds: &Credentials,
    now: i64,
) -> Result<UserUpdate, NotWritten> {
    let mut upd = UserUpdate::default();
    if let Some(name) = &r.name {
        if name != cur.name() {
            if queries::user_name_taken(tx, name, cur.id).await? {
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
        if queries::user_by_email(tx, new_email).await?.is_some() {
            return Err(NotWritten::Refused(RpcError::NotUnique(Some(
                "There's already an account with that email address.".into(),
            ))));
        }
        if queries::user_by_previous_email(tx, new_email)
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
    Ok(upd)
}

/// Join or leave a team as asked (a team that is not joinable is left
/// alone, as upstream).
pub(super) async fn team<Q: mysql_async::prelude::Queryable>(
    tx: &mut Q,
    r: &AmSetInfo,
    cur: &User,
) -> Result<(), NotWritten> {
    match r.teamid {
        Some(0) => queries::set_user_team(tx, cur.id, cur.teamid, 0).await?,
        Some(id) => {
            if let Some(team) = queries::team_by_id(tx, id).await? {
                if team.joinable != 0 {
                    queries::set_user_team(tx, cur.id, cur.teamid, team.id).await?;
                }
            }
        }
        None => {}
    }
    Ok(())
}

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
