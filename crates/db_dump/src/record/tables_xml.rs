//! tables.xml: the dump's totals, applications and badges.

use super::element::{float_el, int_el, text_el};

/// Aggregates for tables.xml; a zero total is left out, as upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// `<credit_by_app/>` in config.xml: tables.xml says so.
    pub credit_by_app: bool,
    pub nusers: u64,
    pub nteams: u64,
    pub nhosts: u64,
    pub nusers_deleted: u64,
    pub nhosts_deleted: u64,
    /// Some only when the spec has that optout enumeration.
    pub nusers_optout: Option<u64>,
    pub nhosts_optout: Option<u64>,
    pub total_credit: f64,
}

pub struct Badge {
    pub id: i64,
    pub name: Vec<u8>,
    pub title: Vec<u8>,
    pub image_url: Vec<u8>,
}

pub fn tables_xml(
    out: &mut Vec<u8>,
    update_time: i64,
    t: &Totals,
    apps: &[Vec<u8>],
    badges: &[Badge],
) {
    const I: &[u8] = b"    ";
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<tables>\n");
    int_el(out, I, b"update_time", update_time);
    if t.credit_by_app {
        out.extend_from_slice(b"    <credit_by_app/>\n");
    }
    let mut count = |name: &[u8], n: u64| {
        if n > 0 {
            int_el(out, I, name, n as i64);
        }
    };
    count(b"nusers_total", t.nusers);
    count(b"nteams_total", t.nteams);
    count(b"nhosts_total", t.nhosts);
    count(b"nusers_deleted_total", t.nusers_deleted);
    count(b"nhosts_deleted_total", t.nhosts_deleted);
    count(b"nusers_optout_total", t.nusers_optout.unwrap_or(0));
    count(b"nhosts_optout_total", t.nhosts_optout.unwrap_or(0));
    if t.total_credit != 0.0 {
        float_el(out, I, b"total_credit", t.total_credit);
    }
    out.extend_from_slice(b"    <applications>\n");
    for a in apps {
        out.extend_from_slice(b"        <application>\n");
        text_el(out, b"            ", b"name", a);
        out.extend_from_slice(b"        </application>\n");
    }
    out.extend_from_slice(b"    </applications>\n    <badges>\n");
    for b in badges {
        const B: &[u8] = b"           ";
        out.extend_from_slice(b"       <badge>\n");
        int_el(out, B, b"id", b.id);
        text_el(out, B, b"name", &b.name);
        text_el(out, B, b"title", &b.title);
        text_el(out, B, b"image_url", &b.image_url);
        out.extend_from_slice(b"       </badge>\n");
    }
    out.extend_from_slice(b"    </badges>\n</tables>\n");
}
