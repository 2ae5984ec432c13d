//! The consent report in one pass: every consent row streamed in (user,
//! type, time, id) order, each user's latest row per type folded into
//! counts on the client. The `NOT EXISTS` form of "latest row" costs the
//! server a probe per row (minutes at a million users); this costs one
//! ordered index scan.
//!
//! Consented means `consent_flag = 1` and nothing else, as db_dump exports
//! it; any other flag is "not required" when `consent_not_required` is set,
//! else "withdrawn".

use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};
use serde::Serialize;

use crate::terms::{self, TermsVersion};
use crate::DbError;

/// The state a user's latest row puts them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Consented,
    Withdrawn,
    NotRequired,
}

impl State {
    /// The one definition: consented means flag 1.
    pub fn of(consent_flag: i64, consent_not_required: i64) -> Self {
        match (consent_flag == 1, consent_not_required != 0) {
            (true, _) => State::Consented,
            (false, false) => State::Withdrawn,
            (false, true) => State::NotRequired,
        }
    }
}

/// Live accounts: not deleted (BOINC marks a deleted account by its
/// authenticator). Sorted ids. Every id comes from the narrowest index the
/// server picks (`SELECT id` needs no row); the few deleted ones from a
/// range of the authenticator index. Cheaper than reading each
/// authenticator, with the same set: `NOT LIKE ... OR IS NULL` is exactly
/// "not `LIKE 'deleted%'`".
async fn live_users<Q: Queryable>(q: &mut Q) -> Result<Vec<i64>, DbError> {
    let mut deleted: Vec<i64> = q
        .query("SELECT id FROM user WHERE authenticator LIKE 'deleted%'")
        .await?;
    deleted.sort_unstable();
    let mut ids: Vec<i64> = Vec::new();
    q.query_iter("SELECT id FROM user")
        .await?
        .for_each(|row| {
            if let Some(Ok(id)) = row.get_opt::<i64, _>(0) {
                if deleted.binary_search(&id).is_err() {
                    ids.push(id);
                }
            }
        })
        .await?;
    ids.sort_unstable();
    Ok(ids)
}

/// consent id -> terms version, sorted by consent id (primary key order).
async fn consent_versions<Q: Queryable>(q: &mut Q) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(
        q.query("SELECT consent_id, terms_version_id FROM consent_terms ORDER BY consent_id")
            .await?,
    )
}

/// Users' current (latest, tie-safe) state for one consent type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeReport {
    pub shortname: String,
    pub enabled: bool,
    /// latest consent_flag = 1
    pub consented: i64,
    /// latest consent_flag other than 1 and consent_not_required = 0
    pub withdrawn: i64,
    /// latest consent_flag other than 1 and consent_not_required = 1
    pub not_required: i64,
    /// non-deleted users with no row for this type
    pub never_asked: i64,
    /// ENROLL only: users whose latest row is consent, by terms version
    /// (`None`: consented before versioning or outside create_account).
    pub by_terms_version: Vec<(Option<i64>, i64)>,
}

/// Counts per consent type, in consent_type id order; the same numbers as
/// the `latest_consent` rule (latest time, ties by id) over live accounts.
pub async fn consent_report<Q: Queryable>(q: &mut Q) -> Result<Vec<TypeReport>, DbError> {
    let types = crate::queries::consent_types(q).await?;
    let live = live_users(q).await?;
    let versions = consent_versions(q).await?;
    let version_of = |consent_id: i64| {
        versions
            .binary_search_by_key(&consent_id, |&(c, _)| c)
            .ok()
            .map(|i| versions[i].1)
    };

    // (type, state) -> users; (type, version) -> consented users.
    let mut states: HashMap<(i64, State), i64> = HashMap::new();
    let mut by_version: HashMap<(i64, Option<i64>), i64> = HashMap::new();
    // The latest row seen for the current (user, type).
    let mut cur: Option<(i64, i64, State, i64)> = None;
    let mut live_at = 0usize;
    let mut fold = |(user, ct, state, id): (i64, i64, State, i64)| {
        // Rows come in user order, so one cursor walks the live ids.
        while live_at < live.len() && live[live_at] < user {
            live_at += 1;
        }
        if live.get(live_at) != Some(&user) {
            return;
        }
        *states.entry((ct, state)).or_default() += 1;
        if state == State::Consented {
            *by_version.entry((ct, version_of(id))).or_default() += 1;
        }
    };
    let mut bad_row = None;
    q.query_iter(
        "SELECT userid, consent_type_id, consent_flag, consent_not_required, id FROM consent \
         ORDER BY userid, consent_type_id, consent_time, id",
    )
    .await?
    .for_each(|row| {
        let v = (
            row.get_opt::<i64, _>(0),
            row.get_opt::<i64, _>(1),
            row.get_opt::<i64, _>(2),
            row.get_opt::<i64, _>(3),
            row.get_opt::<i64, _>(4),
        );
        let (Some(Ok(user)), Some(Ok(ct)), Some(Ok(flag)), Some(Ok(nr)), Some(Ok(id))) = v else {
            bad_row = Some("consent row");
            return;
        };
        let row = (user, ct, State::of(flag, nr), id);
        match cur {
            Some((u, t, ..)) if u == user && t == ct => {}
            Some(prev) => fold(prev),
            None => {}
        }
        cur = Some(row);
    })
    .await?;
    if let Some(what) = bad_row {
        return Err(DbError::Missing(what));
    }
    if let Some(last) = cur {
        fold(last);
    }

    let live_users = live.len() as i64;
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let n = |s| states.get(&(t.id, s)).copied().unwrap_or(0);
        let mut r = TypeReport {
            shortname: t.shortname.clone(),
            enabled: t.is_enabled(),
            consented: n(State::Consented),
            withdrawn: n(State::Withdrawn),
            not_required: n(State::NotRequired),
            ..Default::default()
        };
        r.never_asked = (live_users - r.consented - r.withdrawn - r.not_required).max(0);
        if t.shortname == crate::models::CONSENT_ENROLL {
            let mut v: Vec<(Option<i64>, i64)> = by_version
                .iter()
                .filter(|((ct, _), _)| *ct == t.id)
                .map(|(&(_, v), &n)| (v, n))
                .collect();
            v.sort_unstable();
            r.by_terms_version = v;
        }
        out.push(r);
    }
    Ok(out)
}

/// The report and the stored terms versions, read in one consistent
/// snapshot (read-only, no row locks), on `conn`.
pub async fn consent_report_snapshot(
    conn: &mut Conn,
) -> Result<(Vec<TypeReport>, Vec<TermsVersion>), DbError> {
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true).with_readonly(true);
    let mut tx = conn.start_transaction(opts).await?;
    let report = consent_report(&mut tx).await?;
    let versions = terms::terms_versions(&mut tx).await?;
    tx.commit().await?;
    Ok((report, versions))
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn consented_means_flag_one() {
        assert_eq!(State::of(1, 0), State::Consented);
        assert_eq!(State::of(1, 1), State::Consented);
        assert_eq!(State::of(0, 0), State::Withdrawn);
        assert_eq!(State::of(0, 1), State::NotRequired);
        assert_eq!(State::of(2, 0), State::Withdrawn);
        assert_eq!(State::of(-1, 0), State::Withdrawn);
        assert_eq!(State::of(2, 1), State::NotRequired);
    }
}
