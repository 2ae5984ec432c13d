//! badge_user/badge_team and user_work/team_work records.

use std::io::Write as _;

use super::element::{attr, int_el};
use super::number::php_number;

/// badge_user and badge_team records (upstream's layout: the record tag
/// indented one space, `%.0f` times).
pub fn badge_holder(out: &mut Vec<u8>, team: bool, holder: i64, badge_id: i64, create_time: f64) {
    let (tag, id): (&[u8], &[u8]) = if team {
        (b"badge_team", b"team_id")
    } else {
        (b"badge_user", b"user_id")
    };
    out.extend_from_slice(b" <");
    out.extend_from_slice(tag);
    out.extend_from_slice(b">\n");
    int_el(out, b"    ", id, holder);
    int_el(out, b"    ", b"badge_id", badge_id);
    out.extend_from_slice(b"    <create_time>");
    let _ = write!(out, "{create_time:.0}");
    out.extend_from_slice(b"</create_time>\n </");
    out.extend_from_slice(tag);
    out.extend_from_slice(b">\n");
}

/// One sub-project's sums for a user or team (credit_by_app).
pub struct SubprojectCredit<'a> {
    pub name: &'a str,
    pub njobs: i64,
    pub total: f64,
    pub expavg: f64,
}

/// A user_work / team_work record: upstream's export_credit_by_app layout
/// (sub-projects with no credit left out, numbers as PHP prints them).
pub fn work(out: &mut Vec<u8>, team: bool, id: i64, subprojects: &[SubprojectCredit]) {
    out.extend_from_slice(if team { b"<team>\n" } else { b"<user>\n" });
    int_el(out, b"    ", b"id", id);
    for sp in subprojects.iter().filter(|sp| sp.total != 0.0) {
        out.extend_from_slice(b"    <subproject name=\"");
        attr(out, sp.name.as_bytes());
        out.extend_from_slice(b"\">\n        <workunits>");
        out.extend_from_slice(itoa::Buffer::new().format(sp.njobs).as_bytes());
        out.extend_from_slice(b"</workunits>\n        <credit>");
        php_number(out, sp.total);
        out.extend_from_slice(b"</credit>\n        <expavg_credit>");
        php_number(out, sp.expavg);
        out.extend_from_slice(b"</expavg_credit>\n    </subproject>\n");
    }
    out.extend_from_slice(if team { b"</team>\n" } else { b"</user>\n" });
}
