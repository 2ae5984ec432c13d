//! The dump's SQL and the mapping of result rows to records.
//!
//! Every enumeration is one streaming statement: owners' `show_hosts`,
//! team founders' names and team members come from JOINs (one query, not
//! one per row as upstream). The latest STATSEXPORT consent is the row with
//! the greatest (consent_time, id), so a same-second tie has one winner.

use mysql_async::{Row, Value};

use crate::record::{Host, HostExtra, Team, User};
use crate::spec::Sort;
use boinc_db::schema::shape::HostDetails;

use boinc_db::exportable;

/// Exportable user: credit, and shown by the shared rule
/// (`boinc_db::exportable`: not erased; the consent side of the rule is
/// the owner map's, see `owners`).
pub fn user_exportable(u: &str) -> String {
    format!("{u}.total_credit > 0 AND {}", exportable::not_erased(u))
}

/// Exportable host: credit, an owner, not marked deleted. `<=>` compares
/// under the column's collation ('Deleted', 'deleted ' match) and treats a
/// NULL domain name as not deleted.
pub fn host_exportable(h: &str) -> String {
    format!("{h}.total_credit > 0 AND {h}.userid <> 0 AND NOT ({h}.domain_name <=> 'deleted')")
}

fn order(sort: Sort, alias: &str) -> String {
    match sort {
        Sort::None | Sort::Id => format!("{alias}.id"),
        Sort::TotalCredit => format!("{alias}.total_credit DESC, {alias}.id"),
        Sort::ExpavgCredit => format!("{alias}.expavg_credit DESC, {alias}.id"),
    }
}

const USER_COLS: &str = "u.id, u.name, u.create_time, u.total_credit, u.expavg_credit, \
    u.expavg_time, u.cross_project_id, u.email_addr, u.country, u.url, u.teamid, u.has_profile";
const USER_NCOLS: usize = 12;

pub fn users(sort: Sort, consent: Option<i64>) -> String {
    let filter = consent
        .map(|t| format!(" AND {}", exportable::consented("u.id", t)))
        .unwrap_or_default();
    format!(
        "SELECT {USER_COLS} FROM user u WHERE {}{filter} ORDER BY {}",
        user_exportable("u"),
        order(sort, "u")
    )
}

/// Every user by id, with the owner map's columns after the user file's
/// (`USER_NCOLS`..: show_hosts, shown, exportable): the user file's scan
/// builds the owner map on its way, so the user table is read once.
pub fn users_with_owners(consent: Option<i64>) -> String {
    format!(
        "SELECT {USER_COLS}, u.show_hosts, {}, {}, {} FROM user u ORDER BY u.id",
        exportable::shown("u", consent),
        user_exportable("u"),
        latest_consent_time(consent)
    )
}

/// SQL: the time of user `u`'s latest STATSEXPORT row (NULL without the
/// filter). Read from the consent index alone (userid, type, time: no row
/// lookup), so it costs the owner pass almost nothing; with the latest
/// flag it tells who may have withdrawn recently (see `optout`).
fn latest_consent_time(consent: Option<i64>) -> String {
    match consent {
        Some(t) => boinc_db::consent::latest::time_sql("u.id", &t.to_string()),
        None => "NULL".to_owned(),
    }
}

/// Where the owner map's columns start in a `users_with_owners` row.
pub const USER_OWNER_BASE: usize = USER_NCOLS;

pub fn user_at(r: &Row, base: usize) -> User<'_> {
    User {
        id: int(r, base),
        name: bytes(r, base + 1),
        create_time: int(r, base + 2),
        total_credit: dbl(r, base + 3),
        expavg_credit: dbl(r, base + 4),
        expavg_time: dbl(r, base + 5),
        cross_project_id: bytes(r, base + 6),
        email_addr: bytes(r, base + 7),
        country: bytes(r, base + 8),
        url: bytes(r, base + 9),
        teamid: int(r, base + 10),
        has_profile: int(r, base + 11) != 0,
    }
}

/// Hosts in one sequential scan, no joins: owners' consent and
/// show_hosts come from the [`owners`] bitmap, because per-row lookups
/// into user/consent are random reads that crawl once those tables
/// outgrow the buffer pool (upstream's per-host owner lookup, 286 s at 1M).
/// Column 13 is `misc` or, in releases before 1.6, `serialnum`.
pub fn hosts(sort: Sort, details: HostDetails) -> String {
    format!(
        "SELECT h.id, h.userid, NULL, h.create_time, h.rpc_time, h.timezone, \
         h.total_credit, h.expavg_credit, h.expavg_time, h.p_vendor, h.p_model, h.os_name, \
         h.os_version, h.{}, h.p_ncpus, h.p_fpops, h.p_iops, h.p_membw, h.m_nbytes, \
         h.m_cache, h.m_swap, h.d_total, h.d_free, h.n_bwup, h.n_bwdown, h.avg_turnaround, \
         h.credit_per_cpu_sec, h.host_cpid \
         FROM host h WHERE {} ORDER BY {}",
        details.column(),
        host_exportable("h"),
        order(sort, "h")
    )
}

/// Every user by id with show_hosts, whether they may own exported hosts
/// and be named as a team's founder (the shared rule
/// `boinc_db::exportable::shown`: not erased and, with the consent
/// filter, latest consent is 1), whether the user is
/// counted in tables.xml, their credit and name (kept for team founders),
/// and what the optout list needs (cpid parts, latest consent time).
/// User-id order keeps the
/// consent index lookups sequential; the same pass gives the user totals.
pub fn owners(consent: Option<i64>) -> String {
    let ok = exportable::shown("u", consent);
    format!(
        "SELECT u.id, u.show_hosts, {ok}, {}, u.total_credit, u.name, u.cross_project_id, \
         u.email_addr, {} FROM user u ORDER BY u.id",
        user_exportable("u"),
        latest_consent_time(consent)
    )
}

pub fn host(r: &Row, details: HostDetails) -> Host<'_> {
    Host {
        id: int(r, 0),
        userid: int(r, 1),
        owner_show_hosts: None,
        create_time: int(r, 3),
        rpc_time: int(r, 4),
        timezone: int(r, 5),
        total_credit: dbl(r, 6),
        expavg_credit: dbl(r, 7),
        expavg_time: dbl(r, 8),
        p_vendor: bytes(r, 9),
        p_model: bytes(r, 10),
        os_name: bytes(r, 11),
        os_version: bytes(r, 12),
        details: match details {
            HostDetails::Misc => HostExtra::Misc(bytes(r, 13)),
            HostDetails::Serialnum => HostExtra::Serialnum(bytes(r, 13)),
        },
        p_ncpus: int(r, 14),
        p_fpops: dbl(r, 15),
        p_iops: dbl(r, 16),
        p_membw: dbl(r, 17),
        m_nbytes: dbl(r, 18),
        m_cache: dbl(r, 19),
        m_swap: dbl(r, 20),
        d_total: dbl(r, 21),
        d_free: dbl(r, 22),
        n_bwup: dbl(r, 23),
        n_bwdown: dbl(r, 24),
        avg_turnaround: dbl(r, 25),
        credit_per_cpu_sec: dbl(r, 26),
        host_cpid: bytes(r, 27),
    }
}

/// Teams, and with `members` each team's exportable users right after it:
/// one statement, so team and member list come from the same snapshot.
/// Column 0 tells a team row (0) from a member row (1).
pub fn teams(sort: Sort, members: bool, consent: Option<i64>) -> String {
    let key = match sort {
        Sort::None | Sort::Id => "",
        Sort::TotalCredit => "tk DESC, ",
        Sort::ExpavgCredit => "tk DESC, ",
    };
    let key_col = match sort {
        Sort::ExpavgCredit => "t.expavg_credit",
        _ => "t.total_credit",
    };
    let nulls_user = ["NULL"; USER_NCOLS].join(", ");
    let nulls_team = ["NULL"; TEAM_NCOLS].join(", ");
    let team_part = format!(
        "SELECT 0 AS k, t.id AS tid, {key_col} AS tk, {TEAM_COLS}, NULL AS uid, {nulls_user} \
         FROM team t WHERE t.total_credit > 0"
    );
    if !members {
        return format!("{team_part} ORDER BY {key}tid");
    }
    let filter = consent
        .map(|t| format!(" AND {}", exportable::consented("u.id", t)))
        .unwrap_or_default();
    format!(
        "{team_part} UNION ALL \
         SELECT 1, t.id, {key_col}, {nulls_team}, u.id, {USER_COLS} \
         FROM team t JOIN user u ON u.teamid = t.id \
         WHERE t.total_credit > 0 AND {}{filter} \
         ORDER BY {key}tid, k, uid",
        user_exportable("u")
    )
}

/// The founder's name is not joined here (a random read per team): it
/// comes from the owner pass (`Owners::founder_name`); two NULLs keep the
/// columns' places.
const TEAM_COLS: &str = "t.id, t.type, t.name, t.userid, t.total_credit, t.expavg_credit, \
    t.expavg_time, NULL, NULL, t.create_time, t.url, t.name_html, t.description, t.country";
const TEAM_NCOLS: usize = 14;
/// Where the member's user columns start in a team-query row.
pub const TEAM_MEMBER_BASE: usize = 3 + TEAM_NCOLS + 1;

pub fn team_row_is_member(r: &Row) -> bool {
    int(r, 0) == 1
}

pub fn team(r: &Row) -> Team<'_> {
    let b = 3;
    Team {
        id: int(r, b),
        team_type: int(r, b + 1),
        name: bytes(r, b + 2),
        userid: Some(int(r, b + 3)),
        total_credit: dbl(r, b + 4),
        expavg_credit: dbl(r, b + 5),
        expavg_time: dbl(r, b + 6),
        // Filled in by the writer from the owner map.
        founder_name: None,
        create_time: int(r, b + 9),
        url: bytes(r, b + 10),
        name_html: bytes(r, b + 11),
        description: bytes(r, b + 12),
        country: bytes(r, b + 13),
    }
}

pub const USERS_DELETED: &str =
    "SELECT userid, public_cross_project_id FROM user_deleted ORDER BY userid";
pub const HOSTS_DELETED: &str =
    "SELECT hostid, public_cross_project_id FROM host_deleted ORDER BY hostid";

/// Consent history of every user with a STATSEXPORT refusal (any flag
/// but 1) since `since`: the only users who can have withdrawn within the
/// window. Ordered so one pass decides each user (see `optout::Tracker`).
/// Both reads of consent are forced onto the clustered index (two
/// sequential scans, the server sorts the few matching rows): looked up by
/// the secondary indexes, each row cost a random read, minutes at 10M
/// users. Who among them is exportable, and their cpid, comes from the
/// owner pass.
pub fn optout_candidates(type_id: i64, since: i64) -> String {
    format!(
        "SELECT c.userid, c.consent_time, c.consent_flag \
         FROM consent c FORCE INDEX (PRIMARY) \
         WHERE c.consent_type_id = {type_id} AND c.userid IN \
           (SELECT r.userid FROM consent r FORCE INDEX (PRIMARY) \
              WHERE r.consent_type_id = {type_id} AND r.consent_flag <> 1 \
              AND r.consent_time >= {since}) \
         ORDER BY c.userid, c.consent_time, c.id"
    )
}

/// Every exportable host, sequentially (before the consent filter: the
/// reader keeps those of optout users who show their hosts).
pub fn optout_hosts() -> String {
    format!(
        "SELECT h.id, h.host_cpid, h.userid FROM host h WHERE {} ORDER BY h.id",
        host_exportable("h")
    )
}

pub fn count_users() -> String {
    format!(
        "SELECT COUNT(*), COALESCE(SUM(u.total_credit), 0) FROM user u WHERE {}",
        user_exportable("u")
    )
}

/// The users whose names the team file may print (see `TEAM_COLS`).
pub const TEAM_FOUNDERS: &str = "SELECT DISTINCT userid FROM team WHERE total_credit > 0";
pub const COUNT_TEAMS: &str = "SELECT COUNT(*) FROM team WHERE total_credit > 0";
pub const COUNT_USERS_DELETED: &str = "SELECT COUNT(*) FROM user_deleted";
pub const COUNT_HOSTS_DELETED: &str = "SELECT COUNT(*) FROM host_deleted";
/// credit_by_app: every credit_user row in primary-key order (merged
/// with the owner map), and every team with credit with its credit_team
/// rows (a team without rows gives one row of NULLs).
pub const CREDIT_USERS: &str = "SELECT userid, appid, njobs, total, expavg FROM credit_user \
    ORDER BY userid, appid, credit_type";
pub const CREDIT_TEAMS: &str = "SELECT t.id, c.appid, c.njobs, c.total, c.expavg FROM team t \
    LEFT JOIN credit_team c ON c.teamid = t.id WHERE t.total_credit > 0 \
    ORDER BY t.id, c.appid, c.credit_type";
/// Badges of users (kept when the user file lists the user) and of teams
/// the team file lists.
pub const BADGE_USERS: &str =
    "SELECT user_id, badge_id, create_time FROM badge_user ORDER BY user_id, badge_id";
pub const BADGE_TEAMS: &str = "SELECT b.team_id, b.badge_id, b.create_time FROM badge_team b \
    JOIN team t ON t.id = b.team_id WHERE t.total_credit > 0 ORDER BY b.team_id, b.badge_id";
pub const APPS: &str = "SELECT user_friendly_name FROM app ORDER BY id";
pub const BADGES: &str = "SELECT id, name, title, image_url FROM badge ORDER BY id";

// Value access that never panics: a NULL or missing column reads as
// 0 / "", and a column of an unexpected type is converted.

pub fn opt_int(r: &Row, i: usize) -> Option<i64> {
    match r.as_ref(i)? {
        Value::NULL => None,
        v => Some(value_int(v)),
    }
}

pub fn int(r: &Row, i: usize) -> i64 {
    r.as_ref(i).map(value_int).unwrap_or(0)
}

fn value_int(v: &Value) -> i64 {
    match v {
        Value::Int(x) => *x,
        Value::UInt(x) => *x as i64,
        Value::Float(x) => *x as i64,
        Value::Double(x) => *x as i64,
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
            })
            .unwrap_or(0),
        _ => 0,
    }
}

pub fn dbl(r: &Row, i: usize) -> f64 {
    match r.as_ref(i) {
        Some(Value::Double(x)) => *x,
        Some(Value::Float(x)) => *x as f64,
        Some(Value::Int(x)) => *x as f64,
        Some(Value::UInt(x)) => *x as f64,
        Some(Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

pub fn bytes(r: &Row, i: usize) -> &[u8] {
    match r.as_ref(i) {
        Some(Value::Bytes(b)) => b,
        _ => b"",
    }
}
