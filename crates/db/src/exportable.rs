//! Who the public may see: the one rule for everything that publishes
//! people, db_dump's files (SPEC section 5) and boinc-rpc's public XML
//! lookups (section 8).
//!
//! * The consent filter is on while the STATSEXPORT consent type exists
//!   and is enabled ([`consent_filter`]); with it off (or no consent
//!   tables at all, as on older BOINC databases) consent decides nothing.
//! * A person is shown ([`shown`]) when their account is not erased and,
//!   with the filter on, their latest STATSEXPORT consent says yes (the
//!   latest row by (consent_time, id), so a same-second tie has one winner).
//! * A team names its founder ([`founder_shown`]) only when the founder
//!   would be shown, or when the filter is off (as upstream).
//!
//! Policy beyond that (db_dump's credit threshold, the lookups' treatment
//! of the owner's own `auth=`) stays with the callers.

use mysql_async::prelude::*;

use crate::DbError;

/// STATSEXPORT's id while the type exists and is enabled (the consent
/// filter is on); None otherwise. The name is compared byte for byte: the
/// column's collation would also match look-alikes ('statsexport',
/// 'STATSEXPORT ', accented letters). The plain comparison lets the unique
/// index find the candidates. A database without a consent_type table
/// (older BOINC) has no filter, as upstream.
pub async fn consent_filter<Q: Queryable>(q: &mut Q) -> Result<Option<i64>, DbError> {
    let r: Result<Option<(i64, i64)>, _> = q
        .query_first(
            "SELECT id, enabled FROM consent_type \
             WHERE shortname = 'STATSEXPORT' AND shortname = BINARY 'STATSEXPORT'",
        )
        .await;
    match r {
        Ok(Some((id, enabled))) => Ok((enabled != 0).then_some(id)),
        Ok(None) => Ok(None),
        Err(mysql_async::Error::Server(e)) if e.code == 1146 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// SQL: user row `u` is not an erased account. BOINC marks one by an
/// authenticator starting with "deleted" (LIKE: case-insensitive under
/// the default collation, as upstream's own checks); NULL is not "deleted".
pub fn not_erased(u: &str) -> String {
    crate::models::live_sql(&format!("{u}.authenticator"))
}

/// SQL: the latest consent of type `type_id` of the user `user_id_expr`
/// is 1. One index lookup per user (`consent(userid, consent_type_id,
/// consent_time)`).
pub fn consented(user_id_expr: &str, type_id: i64) -> String {
    format!(
        "{} = 1",
        crate::consent::latest::flag_sql(user_id_expr, &type_id.to_string())
    )
}

/// SQL: user row `u` may be shown to the public under `filter` (from
/// [`consent_filter`]): not erased and, with the filter on, consenting.
pub fn shown(u: &str, filter: Option<i64>) -> String {
    match filter {
        Some(t) => format!("{} AND {}", not_erased(u), consented(&format!("{u}.id"), t)),
        None => not_erased(u),
    }
}

/// Does a team name its founder? `filter_on`: [`consent_filter`] gave an
/// id; `founder_is_shown`: the founder's row exists and passes [`shown`]
/// under that filter.
pub fn founder_shown(filter_on: bool, founder_is_shown: bool) -> bool {
    !filter_on || founder_is_shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_adds_consent_only_with_the_filter() {
        assert_eq!(
            shown("u", None),
            "(u.authenticator IS NULL OR u.authenticator NOT LIKE 'deleted%')"
        );
        let with = shown("u", Some(7));
        assert!(with.starts_with(&not_erased("u")), "{with}");
        assert!(
            with.contains("c.userid = u.id AND c.consent_type_id = 7"),
            "{with}"
        );
        assert!(with.ends_with("LIMIT 1) = 1"), "{with}");
    }

    #[test]
    fn founders_hide_only_under_the_filter() {
        assert!(founder_shown(false, false));
        assert!(founder_shown(true, true));
        assert!(!founder_shown(true, false));
    }
}
