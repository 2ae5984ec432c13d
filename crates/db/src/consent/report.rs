//! The consent report in one pass: every consent row streamed in (user,
//! type, time, id) order, each user's latest row per type folded into
//! counts on the client. The `NOT EXISTS` form of "latest row" costs the
//! server a probe per row (minutes at a million users); this costs one
//! ordered index scan.
//!
//! Consented means `consent_flag = 1` and nothing else, as db_dump exports
//! it; any other flag is "not required" when `consent_not_required` is set,
//! else "withdrawn".
//!
//! The same pass also folds the ops page's monthly chart (`monthly`): rows
//! written per calendar month (UTC) of the last [`MONTHS`] months, and how
//! many accounts' latest row was consent at each month's end. A second scan
//! would double the report's cost at a million users; folding costs a
//! binary search over 24 month starts per row.

use std::collections::HashMap;

use chrono::{Datelike, TimeZone, Utc};

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};
use serde::Serialize;

use crate::consent::terms::{self, TermsVersion};
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
        .query(format!(
            "SELECT id FROM user WHERE {}",
            crate::models::deleted_sql("authenticator")
        ))
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
    /// The last [`MONTHS`] calendar months (UTC), oldest first; the last is
    /// the month of the report, its end the report's time.
    pub monthly: Vec<Month>,
}

/// Months in the report's monthly series.
pub const MONTHS: usize = 24;

/// One calendar month (UTC) of one consent type, live accounts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Month {
    /// First second of the month (UTC), seconds since 1970.
    pub start: i64,
    /// `2026-01`
    pub label: String,
    /// Rows written in the month, by the state each row records.
    pub consented_rows: i64,
    pub withdrawn_rows: i64,
    pub not_required_rows: i64,
    /// Accounts whose latest row by the month's end (latest time, ties by
    /// id) is consent. For the report's own month: its latest row at all,
    /// the report's `consented`.
    pub consenting_at_end: i64,
}

/// The month starts of the [`MONTHS`] months ending with `now`'s month.
pub fn month_starts(now: i64) -> Vec<i64> {
    let d = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    // Months since year 0, so stepping back crosses years by division.
    let cur = d.year() as i64 * 12 + d.month0() as i64;
    (0..MONTHS as i64)
        .map(|k| {
            let m = cur - (MONTHS as i64 - 1) + k;
            Utc.with_ymd_and_hms(
                m.div_euclid(12) as i32,
                m.rem_euclid(12) as u32 + 1,
                1,
                0,
                0,
                0,
            )
            .single()
            .map(|t| t.timestamp())
            .unwrap_or(i64::MIN)
        })
        .collect()
}

fn month_label(start: i64) -> String {
    chrono::DateTime::from_timestamp(start, 0)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// Per type: rows per month and state, and the change of the number of
/// consenting accounts at each month end (a difference array: an account
/// consenting from `a` until `b` adds 1 at the first month end after `a`
/// and takes it back at the first after `b`).
#[derive(Clone)]
struct TypeMonths {
    rows: [[i64; 3]; MONTHS],
    diff: [i64; MONTHS + 1],
}

impl Default for TypeMonths {
    fn default() -> Self {
        Self {
            rows: [[0; 3]; MONTHS],
            diff: [0; MONTHS + 1],
        }
    }
}

/// The monthly part of the fold.
struct Monthly {
    starts: Vec<i64>,
    /// Per consent type id; a handful of types, so a list searched from
    /// the type of the previous row beats hashing every row.
    types: Vec<(i64, TypeMonths)>,
}

impl Monthly {
    fn new(now: i64) -> Self {
        Self {
            starts: month_starts(now),
            types: Vec::new(),
        }
    }

    fn of_type(&mut self, ct: i64) -> &mut TypeMonths {
        let i = match self.types.iter().position(|(t, _)| *t == ct) {
            Some(i) => i,
            None => {
                self.types.push((ct, TypeMonths::default()));
                self.types.len() - 1
            }
        };
        &mut self.types[i].1
    }

    /// The first month whose end is after `t` (`MONTHS - 1` for anything
    /// in the current month or later: its end is "now and after").
    fn end_index(&self, t: i64) -> usize {
        self.starts[1..].partition_point(|&s| s <= t)
    }

    /// A row of a live account.
    fn row(&mut self, ct: i64, state: State, t: i64) {
        if t < self.starts[0] {
            return;
        }
        let m = self.end_index(t);
        let k = match state {
            State::Consented => 0,
            State::Withdrawn => 1,
            State::NotRequired => 2,
        };
        self.of_type(ct).rows[m][k] += 1;
    }

    /// A live account consented from `from` until `until` (`None`: still).
    fn consenting(&mut self, ct: i64, from: i64, until: Option<i64>) {
        // Ended before the first month end: never seen at one.
        if until.is_some_and(|t| t < self.starts[1]) {
            return;
        }
        let a = self.end_index(from);
        let b = until.map_or(MONTHS, |t| self.end_index(t));
        if a < b {
            let d = &mut self.of_type(ct).diff;
            d[a] += 1;
            d[b] -= 1;
        }
    }

    fn of(&self, ct: i64) -> Vec<Month> {
        let tm = self
            .types
            .iter()
            .find(|(t, _)| *t == ct)
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        let mut at_end = 0;
        self.starts
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                at_end += tm.diff[i];
                Month {
                    start,
                    label: month_label(start),
                    consented_rows: tm.rows[i][0],
                    withdrawn_rows: tm.rows[i][1],
                    not_required_rows: tm.rows[i][2],
                    consenting_at_end: at_end,
                }
            })
            .collect()
    }
}

/// Counts per consent type, in consent_type id order; the same numbers as
/// the `latest_consent` rule (latest time, ties by id) over live accounts.
/// The monthly series end with the month of [`crate::now`].
pub async fn consent_report<Q: Queryable>(q: &mut Q) -> Result<Vec<TypeReport>, DbError> {
    consent_report_at(q, crate::now()).await
}

/// [`consent_report`] with the monthly series ending with `now`'s month.
pub async fn consent_report_at<Q: Queryable>(
    q: &mut Q,
    now: i64,
) -> Result<Vec<TypeReport>, DbError> {
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
    let mut monthly = Monthly::new(now);
    // The latest row seen for the current (user, type) of a live account.
    let mut cur: Option<Row> = None;
    let mut live_at = 0usize;
    let mut bad_row = None;
    q.query_iter(format!(
        "SELECT userid, consent_type_id, consent_flag, consent_not_required, id, consent_time \
         FROM consent ORDER BY userid, consent_type_id, {}",
        crate::consent::latest::oldest_first("")
    ))
    .await?
    .for_each(|row| {
        let v = (
            row.get_opt::<i64, _>(0),
            row.get_opt::<i64, _>(1),
            row.get_opt::<i64, _>(2),
            row.get_opt::<i64, _>(3),
            row.get_opt::<i64, _>(4),
            row.get_opt::<i64, _>(5),
        );
        let (
            Some(Ok(user)),
            Some(Ok(ct)),
            Some(Ok(flag)),
            Some(Ok(nr)),
            Some(Ok(id)),
            Some(Ok(time)),
        ) = v
        else {
            bad_row = Some("consent row");
            return;
        };
        // Rows come in user order, so one cursor walks the live ids.
        while live_at < live.len() && live[live_at] < user {
            live_at += 1;
        }
        if live.get(live_at) != Some(&user) {
            return;
        }
        let row = Row {
            user,
            ct,
            state: State::of(flag, nr),
            id,
            time,
        };
        monthly.row(ct, row.state, time);
        if let Some(prev) = cur {
            if (prev.user, prev.ct) == (user, ct) {
                // Superseded: its state lasted until this row.
                if prev.state == State::Consented {
                    monthly.consenting(ct, prev.time, Some(time));
                }
            } else {
                latest(
                    prev,
                    &mut states,
                    &mut by_version,
                    &mut monthly,
                    &version_of,
                );
            }
        }
        cur = Some(row);
    })
    .await?;
    if let Some(what) = bad_row {
        return Err(DbError::Missing(what));
    }
    if let Some(last) = cur {
        latest(
            last,
            &mut states,
            &mut by_version,
            &mut monthly,
            &version_of,
        );
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
            monthly: monthly.of(t.id),
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

/// One consent row of a live account, as the fold keeps it.
#[derive(Clone, Copy)]
struct Row {
    user: i64,
    ct: i64,
    state: State,
    id: i64,
    time: i64,
}

/// A (user, type)'s latest row: counted in the report, and its state
/// lasts to the report's end.
fn latest(
    row: Row,
    states: &mut HashMap<(i64, State), i64>,
    by_version: &mut HashMap<(i64, Option<i64>), i64>,
    monthly: &mut Monthly,
    version_of: &impl Fn(i64) -> Option<i64>,
) {
    *states.entry((row.ct, row.state)).or_default() += 1;
    if row.state == State::Consented {
        *by_version.entry((row.ct, version_of(row.id))).or_default() += 1;
        monthly.consenting(row.ct, row.time, None);
    }
}

/// The report and the stored terms versions, read in one consistent
/// snapshot (read-only, no row locks), on `conn`; monthly series end
/// with `now`'s month.
pub async fn consent_report_snapshot(
    conn: &mut Conn,
    now: i64,
) -> Result<(Vec<TypeReport>, Vec<TermsVersion>), DbError> {
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true).with_readonly(true);
    let mut tx = conn.start_transaction(opts).await?;
    let report = consent_report_at(&mut tx, now).await?;
    let versions = terms::terms_versions(&mut tx).await?;
    tx.commit().await?;
    Ok((report, versions))
}

#[cfg(test)]
mod tests {
    use super::{month_starts, Monthly, State, MONTHS};

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

    // 2026-12-06 08:00:00 UTC
    const NOW: i64 = 1_796_544_000;

    #[test]
    fn window_is_24_calendar_months_ending_now() {
        let s = month_starts(NOW);
        assert_eq!(s.len(), MONTHS);
        assert_eq!(super::month_label(s[0]), "2025-01");
        assert_eq!(super::month_label(s[23]), "2026-12");
        assert_eq!(s[23], 1_796_083_200); // 2026-12-01 00:00:00 UTC
        assert!(s.windows(2).all(|w| w[1] - w[0] >= 28 * 86400));
        // January steps back across the year.
        let jan = month_starts(1_767_225_600); // 2026-01-01 00:00:00
        assert_eq!(super::month_label(jan[0]), "2024-02");
        assert_eq!(super::month_label(jan[23]), "2026-01");
    }

    #[test]
    fn consenting_spans_count_at_month_ends() {
        let mut m = Monthly::new(NOW);
        let s = m.starts.clone();
        // Consented in month 3, withdrew exactly at the start of month 5:
        // consenting at the ends of months 3 and 4 only.
        m.consenting(1, s[3] + 10, Some(s[5]));
        // Consented before the window and still: every month end.
        m.consenting(1, s[0] - 100, None);
        // A row superseded in the same month never shows at a month end.
        m.consenting(1, s[7] + 1, Some(s[7] + 2));
        m.row(1, State::Withdrawn, s[5]);
        m.row(1, State::Consented, s[0] - 1);
        m.row(1, State::NotRequired, NOW + 86400 * 40);
        let out = m.of(1);
        let at: Vec<i64> = out.iter().map(|x| x.consenting_at_end).collect();
        let mut want = vec![1; MONTHS];
        want[3] = 2;
        want[4] = 2;
        assert_eq!(at, want);
        assert_eq!(out[5].withdrawn_rows, 1);
        assert_eq!(out.iter().map(|x| x.consented_rows).sum::<i64>(), 0);
        assert_eq!(out[23].not_required_rows, 1);
        assert_eq!(m.of(2).iter().map(|x| x.consenting_at_end).sum::<i64>(), 0);
    }
}
