//! am_set_info's consent part when applied alone: the change decided by
//! `boinc_db::consent::decide` on the type found by its exact name and the
//! user's latest row (read under the account's lock), then appended.

use boinc_db::consent::{self, Decision, FoundType, NewConsent};
use boinc_db::models::{ConsentType, User};
use mysql_async::prelude::Queryable;

use super::not_written::NotWritten;
use super::request::{disabled_warning, enroll_withdrawal, unknown_warning, ConsentChange};

/// What the change does: a row to append (the type's id), and a warning
/// for the reply.
pub(super) struct Decided<'a> {
    pub record: Option<(&'a ConsentChange, i64)>,
    pub warning: Option<String>,
}

/// Decide the change `c` for the locked account `cur`; a refused ENROLL
/// withdrawal is an error (nothing of the call is written).
pub(super) async fn decide<'a, Q: Queryable>(
    tx: &mut Q,
    c: &'a ConsentChange,
    cur: &User,
) -> Result<Decided<'a>, NotWritten> {
    let found = consent::latest::type_and_flag(tx, &c.name, cur.id).await?;
    let mut out = Decided {
        record: None,
        warning: None,
    };
    match decide_on(found.as_ref(), c.flag) {
        Decision::EnrollWithdrawal => return Err(NotWritten::Refused(enroll_withdrawal())),
        Decision::Disabled => out.warning = Some(disabled_warning(&c.name)),
        Decision::UnknownType => out.warning = Some(unknown_warning(&c.name)),
        Decision::AlreadyLatest => {}
        Decision::Record => out.record = found.map(|(t, _)| (c, t.id)),
    }
    Ok(out)
}

/// `consent::decide` on what `type_and_flag` found.
fn decide_on(found: Option<&(ConsentType, Option<i64>)>, flag: bool) -> Decision {
    let t = found.map(|(t, _)| FoundType {
        shortname: &t.shortname,
        enabled: t.is_enabled(),
    });
    consent::decide(t, flag, found.and_then(|(_, latest)| *latest))
}

/// Append the decided row, at the server's clock (the caller has no say).
pub(super) async fn record<Q: Queryable>(
    tx: &mut Q,
    cur: &User,
    c: &ConsentChange,
    consent_type_id: i64,
    now: i64,
) -> Result<(), NotWritten> {
    consent::insert(
        tx,
        &NewConsent {
            userid: cur.id,
            consent_type_id,
            consent_time: now,
            consent_flag: c.flag,
            consent_not_required: c.not_required,
            source: &c.source,
        },
    )
    .await?;
    Ok(())
}
