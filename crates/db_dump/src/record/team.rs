//! team records (a detail listing puts user records between start and
//! end).

use super::element::{float_el, int_el, text_el};

pub struct Team<'a> {
    pub id: i64,
    pub team_type: i64,
    pub name: &'a [u8],
    /// The founder; None when the founder would not be exported (did not
    /// consent while the consent filter is on): then neither userid nor
    /// founder_name is written.
    pub userid: Option<i64>,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    /// None when the founder's user row is missing (upstream then omits
    /// it) or the founder is hidden.
    pub founder_name: Option<&'a [u8]>,
    pub create_time: i64,
    pub url: &'a [u8],
    pub name_html: &'a [u8],
    pub description: &'a [u8],
    pub country: &'a [u8],
}

/// The team's opening part; a detail listing of members (user records)
/// goes between this and [`team_end`].
pub fn team_start(out: &mut Vec<u8>, t: &Team) {
    out.extend_from_slice(b"<team>\n");
    int_el(out, b" ", b"id", t.id);
    int_el(out, b" ", b"type", t.team_type);
    text_el(out, b" ", b"name", t.name);
    if let Some(u) = t.userid {
        int_el(out, b" ", b"userid", u);
    }
    float_el(out, b" ", b"total_credit", t.total_credit);
    float_el(out, b" ", b"expavg_credit", t.expavg_credit);
    float_el(out, b" ", b"expavg_time", t.expavg_time);
    if let Some(f) = t.founder_name {
        text_el(out, b"  ", b"founder_name", f);
    }
    int_el(out, b" ", b"create_time", t.create_time);
    if !t.url.is_empty() {
        text_el(out, b" ", b"url", t.url);
    }
    if !t.name_html.is_empty() {
        text_el(out, b"", b"name_html", t.name_html);
    }
    if !t.description.is_empty() {
        text_el(out, b"", b"description", t.description);
    }
    text_el(out, b" ", b"country", t.country);
}

pub fn team_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"</team>\n");
}
