//! Rows many tests write, written once: a user as tests usually make one,
//! a consent type's id, and a user with an ENROLL consent (as
//! create_account leaves a new account).

use mysql_async::prelude::*;

use crate::consent::{self, NewConsent};
use crate::models::CONSENT_ENROLL;
use crate::queries::{self, NewUser};

/// A user as most tests write one: what the test names, and for the rest
/// cross_project_id `x`, passwd_hash `h`, no country, hosts shown, no
/// team. Change more with struct update syntax
/// (`NewUser { country: "Germany", ..new_user(..) }`).
pub fn new_user<'a>(
    create_time: i64,
    email_addr: &'a str,
    name: &'a str,
    authenticator: &'a str,
) -> NewUser<'a> {
    NewUser {
        create_time,
        email_addr,
        name,
        authenticator,
        cross_project_id: "x",
        passwd_hash: "h",
        country: "",
        show_hosts: 1,
        teamid: 0,
    }
}

/// The id of the consent type named exactly `shortname`; panics when there
/// is none.
pub async fn type_id<Q: Queryable>(q: &mut Q, shortname: &str) -> i64 {
    queries::consent_type_by_name(q, shortname)
        .await
        .unwrap_or_else(|e| panic!("consent type {shortname}: {e}"))
        .unwrap_or_else(|| panic!("no consent type {shortname}"))
        .id
}

/// Append an ENROLL consent of `userid` (flag 1, required) at
/// `consent_time` from `source`; the consent row's id.
pub async fn enroll<Q: Queryable>(q: &mut Q, userid: i64, consent_time: i64, source: &str) -> i64 {
    let consent_type_id = type_id(q, CONSENT_ENROLL).await;
    consent::insert(
        q,
        &NewConsent {
            userid,
            consent_type_id,
            consent_time,
            consent_flag: true,
            consent_not_required: false,
            source,
        },
    )
    .await
    .expect("insert ENROLL consent")
}

/// A user who consented to ENROLL when the account was made: `user`, then
/// its ENROLL row at the account's `create_time` from `source`. The user's
/// id.
pub async fn user_with_enroll<Q: Queryable>(q: &mut Q, user: &NewUser<'_>, source: &str) -> i64 {
    let id = queries::insert_user(q, user).await.expect("insert user");
    enroll(q, id, user.create_time, source).await;
    id
}
