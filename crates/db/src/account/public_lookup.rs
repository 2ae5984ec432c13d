//! The queries of boinc-rpc's public XML lookups (show_user,
//! team_email_list, team_lookup; SPEC section 8). Who is shown is decided
//! by the shared rule (`crate::exportable`), inside each statement, so a
//! hidden person's row never leaves the database.
//!
//! Every statement finds its rows through an index (primary key,
//! `user.authenticator`, `user.teamid`, `host.userid`, `team.name`); the
//! consent side of the rule is one lookup in `consent(userid,
//! consent_type_id, consent_time)` per candidate.
//!
//! Doubles are read as the server prints them (`CAST(x AS CHAR) AS x`, what its
//! text protocol sends and so what upstream's PHP echoes), so credits
//! print exactly as upstream's pages print them (`1e15`, `0.00001`, ...).

use mysql_async::prelude::*;
use mysql_async::Value;

use crate::exportable;
use crate::DbError;

/// A person as the lookups show them.
#[derive(Debug, Clone, FromRow)]
pub struct PublicUser {
    pub id: i64,
    pub create_time: i64,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub name: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub total_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub expavg_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub expavg_time: String,
    pub teamid: i64,
    pub has_profile: i64,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub country: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub url: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub cross_project_id: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub email_addr: String,
    /// Shown only to the owner (`auth=`).
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub venue: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub authenticator: Option<String>,
}

impl PublicUser {
    /// md5(cross_project_id . email_addr), as everywhere.
    pub fn cpid(&self) -> String {
        crate::models::cpid_string(&self.cross_project_id, &self.email_addr)
    }
}

const USER_COLS: &str = "u.id, u.create_time, u.name, CAST(u.total_credit AS CHAR) AS total_credit, \
    CAST(u.expavg_credit AS CHAR) AS expavg_credit, CAST(u.expavg_time AS CHAR) AS expavg_time, u.teamid, u.has_profile, \
    u.country, u.url, u.cross_project_id, u.email_addr, u.venue, u.authenticator";

/// A host as its owner sees it (upstream's show_host_xml).
#[derive(Debug, Clone, FromRow)]
pub struct OwnerHost {
    pub id: i64,
    pub create_time: i64,
    pub rpc_seqno: i64,
    pub rpc_time: i64,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub host_cpid: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub total_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub expavg_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub expavg_time: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub domain_name: Option<String>,
    pub p_ncpus: i64,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub p_vendor: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub p_model: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub p_fpops: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub p_iops: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub os_name: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub os_version: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub m_nbytes: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub d_free: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub d_total: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub venue: String,
}

/// A team as team_lookup shows it; `userid` is 0 when its founder is not
/// to be named (`exportable::founder_shown`).
#[derive(Debug, Clone)]
pub struct PublicTeam {
    pub id: i64,
    pub create_time: i64,
    pub userid: i64,
    pub name: String,
    pub url: Option<String>,
    pub team_type: i64,
    pub country: Option<String>,
    pub total_credit: String,
    pub expavg_credit: String,
    pub expavg_time: String,
}

#[derive(FromRow)]
struct TeamRow {
    id: i64,
    create_time: i64,
    userid: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    name: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    url: Option<String>,
    team_type: i64,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    country: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    total_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    expavg_credit: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    expavg_time: String,
    founder_is_shown: Option<i64>,
}

impl TeamRow {
    fn public(self, filter: Option<i64>) -> PublicTeam {
        let named = exportable::founder_shown(filter.is_some(), self.founder_is_shown == Some(1));
        PublicTeam {
            id: self.id,
            create_time: self.create_time,
            userid: if named { self.userid } else { 0 },
            name: self.name,
            url: self.url,
            team_type: self.team_type,
            country: self.country,
            total_credit: self.total_credit,
            expavg_credit: self.expavg_credit,
            expavg_time: self.expavg_time,
        }
    }
}

/// The team columns, with whether the founder passes the shared rule.
fn team_select(filter: Option<i64>) -> String {
    format!(
        "SELECT t.id, t.create_time, t.userid, t.name, t.url, t.type AS team_type, t.country, \
         CAST(t.total_credit AS CHAR) AS total_credit, CAST(t.expavg_credit AS CHAR) AS expavg_credit, \
         CAST(t.expavg_time AS CHAR) AS expavg_time, (f.id IS NOT NULL AND {}) AS founder_is_shown \
         FROM team t LEFT JOIN user f ON f.id = t.userid",
        exportable::shown("f", filter)
    )
}

/// The statement `user_shown_by_id` runs (for EXPLAIN in tests).
pub fn user_by_id_sql(filter: Option<i64>) -> String {
    format!(
        "SELECT {USER_COLS} FROM user u WHERE u.id = ? AND {}",
        exportable::shown("u", filter)
    )
}

/// User `id` if the shared rule shows them; None for an unknown id and for
/// a hidden person alike.
pub async fn user_shown_by_id<Q: Queryable>(
    q: &mut Q,
    id: i64,
    filter: Option<i64>,
) -> Result<Option<PublicUser>, DbError> {
    Ok(q.exec_first(user_by_id_sql(filter), (id,)).await?)
}

/// The account whose key is exactly `auth`, whatever its consent (the
/// owner sees themselves); never an erased account. The column's
/// collation also finds case and trailing-space variants, so the exact
/// one is picked among the candidates (as `queries::user_by_authenticator`).
pub async fn owner_by_authenticator<Q: Queryable>(
    q: &mut Q,
    auth: &str,
) -> Result<Option<PublicUser>, DbError> {
    if auth.is_empty() {
        return Ok(None);
    }
    let rows: Vec<PublicUser> = q
        .exec(
            format!(
                "SELECT {USER_COLS} FROM user u WHERE u.authenticator = ? AND {}",
                exportable::not_erased("u")
            ),
            (auth,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .find(|u| u.authenticator.as_deref() == Some(auth)))
}

/// The owner's hosts, by id (upstream: every host row of the user).
pub async fn hosts_of<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Vec<OwnerHost>, DbError> {
    Ok(q.exec(
        "SELECT id, create_time, rpc_seqno, rpc_time, host_cpid, CAST(total_credit AS CHAR) AS total_credit, \
         CAST(expavg_credit AS CHAR) AS expavg_credit, CAST(expavg_time AS CHAR) AS expavg_time, domain_name, p_ncpus, \
         p_vendor, p_model, CAST(p_fpops AS CHAR) AS p_fpops, CAST(p_iops AS CHAR) AS p_iops, os_name, os_version, \
         CAST(m_nbytes AS CHAR) AS m_nbytes, CAST(d_free AS CHAR) AS d_free, CAST(d_total AS CHAR) AS d_total, venue \
         FROM host WHERE userid = ? ORDER BY id",
        (userid,),
    )
    .await?)
}

/// Does team `id` exist? (team_email_list answers -136 otherwise.)
pub async fn team_exists<Q: Queryable>(q: &mut Q, id: i64) -> Result<bool, DbError> {
    let found: Option<i64> = q
        .exec_first("SELECT id FROM team WHERE id = ?", (id,))
        .await?;
    Ok(found.is_some())
}

/// Members of a team the shared rule shows, by id, one parameter: the
/// team id. `credit_only`: members with credit only (upstream's
/// `creditonly=1` skips a total_credit of 0). Rows are [`PublicUser`]s;
/// stream them (`exec_iter`), a team may have 100,000 members.
pub fn members_sql(filter: Option<i64>, credit_only: bool) -> String {
    let credit = if credit_only {
        " AND u.total_credit <> 0"
    } else {
        ""
    };
    // The team's ids first, from `user(teamid)` alone (its entries are in
    // id order), then each member's row by primary key. Written as the
    // plain query, the optimizer reads the whole primary key in id order
    // instead once a team holds a tenth of the users (seen at 1M users:
    // 1M rows read for a 100k-member team).
    format!(
        "SELECT STRAIGHT_JOIN {USER_COLS} FROM user m JOIN user u ON u.id = m.id \
         WHERE m.teamid = ? AND {}{credit} ORDER BY m.id",
        exportable::shown("u", filter)
    )
}

/// The statement `team_by_id` runs.
pub fn team_by_id_sql(filter: Option<i64>) -> String {
    format!("{} WHERE t.id = ?", team_select(filter))
}

pub async fn team_by_id<Q: Queryable>(
    q: &mut Q,
    id: i64,
    filter: Option<i64>,
) -> Result<Option<PublicTeam>, DbError> {
    let row: Option<TeamRow> = q.exec_first(team_by_id_sql(filter), (id,)).await?;
    Ok(row.map(|r| r.public(filter)))
}

/// Teams by id, in the order asked (an id asked twice is shown twice, as
/// upstream), unknown ids left out. One statement.
pub async fn teams_by_ids<Q: Queryable>(
    q: &mut Q,
    ids: &[i64],
    filter: Option<i64>,
) -> Result<Vec<PublicTeam>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!("{} WHERE t.id IN ({marks})", team_select(filter));
    let params: Vec<Value> = ids.iter().map(|&i| Value::Int(i)).collect();
    let rows: Vec<TeamRow> = q.exec(sql, params).await?;
    let found: std::collections::HashMap<i64, PublicTeam> =
        rows.into_iter().map(|r| (r.id, r.public(filter))).collect();
    Ok(ids.iter().filter_map(|i| found.get(i).cloned()).collect())
}

/// The statement `teams_by_name_prefix` runs.
pub fn teams_by_name_sql(filter: Option<i64>, limit: u32) -> String {
    format!(
        "{} WHERE t.name LIKE ? ORDER BY t.expavg_credit DESC, t.id LIMIT {limit}",
        team_select(filter)
    )
}

/// `s` as a LIKE pattern matching itself literally.
pub fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Teams whose name starts with `prefix` (under the column's collation,
/// so case-insensitive as upstream's search), most active first, at most
/// `limit`. A prefix, not upstream's substring: a prefix is a range of
/// the name index, a substring a read of the whole team table per request.
pub async fn teams_by_name_prefix<Q: Queryable>(
    q: &mut Q,
    prefix: &str,
    filter: Option<i64>,
    limit: u32,
) -> Result<Vec<PublicTeam>, DbError> {
    let pattern = format!("{}%", like_literal(prefix));
    let rows: Vec<TeamRow> = q.exec(teams_by_name_sql(filter, limit), (pattern,)).await?;
    Ok(rows.into_iter().map(|r| r.public(filter)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_literal("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(like_literal("Team ü"), "Team ü");
    }
}
