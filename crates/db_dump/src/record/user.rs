//! user records: the user file (and a team's member listing) and the
//! (id, cpid) records of user_deleted and user_optout.

use super::element::{float_el, int_el, text_el};

/// Text fields are raw bytes as the database sent them (UTF-8 expected).
pub struct User<'a> {
    pub id: i64,
    pub name: &'a [u8],
    pub create_time: i64,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub cross_project_id: &'a [u8],
    pub email_addr: &'a [u8],
    pub country: &'a [u8],
    pub url: &'a [u8],
    pub teamid: i64,
    pub has_profile: bool,
}

/// Project settings that change the user record (country, URL).
pub type UserFields = boinc_db::config::profile::ProfileFields;

pub fn user(out: &mut Vec<u8>, u: &User, f: UserFields) {
    out.extend_from_slice(b"<user>\n");
    int_el(out, b" ", b"id", u.id);
    text_el(out, b" ", b"name", u.name);
    int_el(out, b" ", b"create_time", u.create_time);
    float_el(out, b" ", b"total_credit", u.total_credit);
    float_el(out, b" ", b"expavg_credit", u.expavg_credit);
    float_el(out, b" ", b"expavg_time", u.expavg_time);
    out.extend_from_slice(b" <cpid>");
    out.extend_from_slice(&boinc_db::models::cpid_hex(
        u.cross_project_id,
        u.email_addr,
    ));
    out.extend_from_slice(b"</cpid>\n");
    if f.country && !u.country.is_empty() {
        text_el(out, b" ", b"country", u.country);
    }
    if f.url && !u.url.is_empty() {
        text_el(out, b" ", b"url", u.url);
    }
    if u.teamid != 0 {
        int_el(out, b" ", b"teamid", u.teamid);
    }
    if u.has_profile {
        out.extend_from_slice(b" <has_profile/>\n");
    }
    out.extend_from_slice(b"</user>\n");
}

/// user_deleted and user_optout records.
pub fn user_id_cpid(out: &mut Vec<u8>, id: i64, cpid: &[u8]) {
    out.extend_from_slice(b"<user>\n");
    int_el(out, b"    ", b"id", id);
    text_el(out, b"    ", b"cpid", cpid);
    out.extend_from_slice(b"</user>\n");
}
