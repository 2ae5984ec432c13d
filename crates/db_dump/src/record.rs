//! The dump's record writer: every byte of every output file is produced
//! here, so layout and escaping live in one place.
//!
//! Layout (element order, indentation, `%f` numbers, which elements are
//! optional) follows BOINC's exporter because stats sites parse it, some
//! line by line. Escaping deliberately differs from upstream (see SPEC
//! section 5): text is UTF-8; `& < >` are escaped; characters XML 1.0
//! forbids are dropped; TAB/LF/CR become character references so a record
//! line never breaks; `]]>` cannot end a CDATA section early; bytes from
//! the database that are not UTF-8 (a latin1 client's text on a legacy
//! database) are decoded as latin1 instead of breaking the document.

use std::io::Write as _;

use md5::{Digest, Md5};

use crate::spec::Table;

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

pub struct Host<'a> {
    pub id: i64,
    pub userid: i64,
    /// The owner's show_hosts; None when the owner row is missing.
    pub owner_show_hosts: Option<bool>,
    pub create_time: i64,
    pub rpc_time: i64,
    pub timezone: i64,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub p_vendor: &'a [u8],
    pub p_model: &'a [u8],
    pub os_name: &'a [u8],
    pub os_version: &'a [u8],
    pub details: HostExtra<'a>,
    pub p_ncpus: i64,
    pub p_fpops: f64,
    pub p_iops: f64,
    pub p_membw: f64,
    pub m_nbytes: f64,
    pub m_cache: f64,
    pub m_swap: f64,
    pub d_total: f64,
    pub d_free: f64,
    pub n_bwup: f64,
    pub n_bwdown: f64,
    pub avg_turnaround: f64,
    pub credit_per_cpu_sec: f64,
    pub host_cpid: &'a [u8],
}

/// A host's GPUs, client and VirtualBox, as the database's release
/// stores them (`boinc_db::shape::HostDetails`).
#[derive(Debug, Clone, Copy)]
pub enum HostExtra<'a> {
    /// `host.misc`: written as `<misc>` CDATA (master).
    Misc(&'a [u8]),
    /// `host.serialnum`: written as `<boinc_version>`, `<vbox_version>`
    /// and `<coprocs>`, each only when non-empty, as releases before 1.6
    /// write them.
    Serialnum(&'a [u8]),
}

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

/// Project settings that change the user record.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserFields {
    pub country: bool,
    pub url: bool,
}

pub fn file_header(out: &mut Vec<u8>, table: Table) {
    if table.declaration() {
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    }
    out.extend_from_slice(b"<");
    out.extend_from_slice(table.wrapper().as_bytes());
    out.extend_from_slice(b">\n");
}

pub fn file_footer(out: &mut Vec<u8>, table: Table) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(table.wrapper().as_bytes());
    out.extend_from_slice(b">\n");
}

pub fn user(out: &mut Vec<u8>, u: &User, f: UserFields) {
    out.extend_from_slice(b"<user>\n");
    int_el(out, b" ", b"id", u.id);
    text_el(out, b" ", b"name", u.name);
    int_el(out, b" ", b"create_time", u.create_time);
    float_el(out, b" ", b"total_credit", u.total_credit);
    float_el(out, b" ", b"expavg_credit", u.expavg_credit);
    float_el(out, b" ", b"expavg_time", u.expavg_time);
    out.extend_from_slice(b" <cpid>");
    out.extend_from_slice(&cpid(u.cross_project_id, u.email_addr));
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

pub fn host(out: &mut Vec<u8>, h: &Host, detail: bool) {
    const I: &[u8] = b"    ";
    const D: &[u8] = b"  ";
    out.extend_from_slice(b"<host>\n");
    int_el(out, I, b"id", h.id);
    if detail && h.owner_show_hosts == Some(true) {
        int_el(out, I, b"userid", h.userid);
    }
    float_el(out, I, b"total_credit", h.total_credit);
    float_el(out, I, b"expavg_credit", h.expavg_credit);
    float_el(out, I, b"expavg_time", h.expavg_time);
    text_el(out, I, b"p_vendor", h.p_vendor);
    text_el(out, I, b"p_model", h.p_model);
    text_el(out, I, b"os_name", h.os_name);
    text_el(out, I, b"os_version", h.os_version);
    match h.details {
        HostExtra::Misc(misc) => {
            out.extend_from_slice(b"    <misc>");
            cdata(out, misc);
            out.extend_from_slice(b"</misc>\n");
        }
        HostExtra::Serialnum(s) => {
            let p = boinc_db::shape::parse_serialnum(s);
            if !p.boinc.is_empty() {
                text_el(out, I, b"boinc_version", p.boinc);
            }
            if !p.vbox.is_empty() {
                text_el(out, I, b"vbox_version", p.vbox);
            }
            if !p.coprocs.is_empty() {
                text_el(out, I, b"coprocs", &p.coprocs.concat());
            }
        }
    }
    if detail {
        int_el(out, D, b"create_time", h.create_time);
        int_el(out, D, b"rpc_time", h.rpc_time);
        int_el(out, D, b"timezone", h.timezone);
        int_el(out, D, b"ncpus", h.p_ncpus);
        float_el(out, D, b"p_fpops", h.p_fpops);
        float_el(out, D, b"p_iops", h.p_iops);
        float_el(out, D, b"p_membw", h.p_membw);
        float_el(out, D, b"m_nbytes", h.m_nbytes);
        float_el(out, D, b"m_cache", h.m_cache);
        float_el(out, D, b"m_swap", h.m_swap);
        float_el(out, D, b"d_total", h.d_total);
        float_el(out, D, b"d_free", h.d_free);
        float_el(out, D, b"n_bwup", h.n_bwup);
        float_el(out, D, b"n_bwdown", h.n_bwdown);
        float_el(out, D, b"avg_turnaround", h.avg_turnaround);
        float_el(out, D, b"credit_per_cpu_sec", h.credit_per_cpu_sec);
        text_el(out, D, b"host_cpid", h.host_cpid);
    }
    out.extend_from_slice(b"</host>\n");
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

/// user_deleted and user_optout records.
pub fn user_id_cpid(out: &mut Vec<u8>, id: i64, cpid: &[u8]) {
    out.extend_from_slice(b"<user>\n");
    int_el(out, b"    ", b"id", id);
    text_el(out, b"    ", b"cpid", cpid);
    out.extend_from_slice(b"</user>\n");
}

/// host_deleted and host_optout records.
pub fn host_id_cpid(out: &mut Vec<u8>, id: i64, host_cpid: &[u8]) {
    out.extend_from_slice(b"<host>\n");
    int_el(out, b"    ", b"id", id);
    text_el(out, b"    ", b"host_cpid", host_cpid);
    out.extend_from_slice(b"</host>\n");
}

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

/// Attribute text: element escaping plus the quote.
fn attr(out: &mut Vec<u8>, raw: &[u8]) {
    let mut tmp = Vec::with_capacity(raw.len());
    text(&mut tmp, raw);
    for b in tmp {
        if b == b'"' {
            out.extend_from_slice(b"&quot;");
        } else {
            out.push(b);
        }
    }
}

/// A sum as PHP 8 prints it in a string (`precision` 14): whole numbers
/// plainly (PHP sums the database's integral strings as ints), otherwise
/// up to 14 significant digits without trailing zeros, exponent form
/// (`1.0E+25`) when the rounded exponent is below -4 or above 13.
pub fn php_number(out: &mut Vec<u8>, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        return;
    }
    if !v.is_finite() {
        out.extend_from_slice(if v.is_nan() {
            b"NAN"
        } else if v > 0.0 {
            b"INF"
        } else {
            b"-INF"
        });
        return;
    }
    // 14 significant digits, then decide the form by the exponent.
    let e = format!("{v:.13e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if neg {
        out.push(b'-');
    }
    if (-4..14).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits.as_bytes());
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                out.extend_from_slice(digits.as_bytes());
                for _ in digits.len()..point {
                    out.push(b'0');
                }
            } else {
                out.extend_from_slice(&digits.as_bytes()[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits.as_bytes()[point..]);
            }
        }
    } else {
        out.extend_from_slice(&digits.as_bytes()[..1]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits.as_bytes()[1..]);
        } else {
            out.push(b'0');
        }
        let _ = write!(out, "E{}{}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

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

/// md5 hex of cross_project_id followed by email_addr.
pub fn cpid(cross_project_id: &[u8], email_addr: &[u8]) -> [u8; 32] {
    let mut h = Md5::new();
    h.update(cross_project_id);
    h.update(email_addr);
    let digest = h.finalize();
    let mut hex = [0u8; 32];
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = DIGITS[(b >> 4) as usize];
        hex[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    hex
}

fn int_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: i64) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.extend_from_slice(b">\n");
}

fn float_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: f64) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    fixed6(out, v);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.extend_from_slice(b">\n");
}

fn text_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: &[u8]) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    text(out, v);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.extend_from_slice(b">\n");
}

/// C's `%f`: six decimals, `inf`/`-inf`/`nan` spelled as glibc does.
pub fn fixed6(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    // Whole numbers (most host sizes and speeds) print exactly from an
    // integer; the rest goes through std, whose fixed-precision formatting
    // is exact and rounds like glibc's.
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        if v == 0.0 && v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        out.extend_from_slice(b".000000");
        return;
    }
    let _ = write!(out, "{v:.6}");
}

/// Element text: escape `& < >`, TAB/LF/CR as character references, drop
/// characters XML forbids, decode bytes that are not UTF-8 as latin1.
pub fn text(out: &mut Vec<u8>, raw: &[u8]) {
    for chunk in raw.utf8_chunks() {
        text_str(out, chunk.valid().as_bytes());
        latin1(out, chunk.invalid());
    }
}

/// Bytes that are not UTF-8 were stored by a latin1 client (a legacy
/// database, see `boinc_db::charset`): written as the latin1 characters
/// the server itself would have converted them to.
fn latin1(out: &mut Vec<u8>, invalid: &[u8]) {
    for &b in invalid {
        let mut buf = [0u8; 4];
        out.extend_from_slice(
            boinc_db::charset::latin1_char(b)
                .encode_utf8(&mut buf)
                .as_bytes(),
        );
    }
}

/// `b` is valid UTF-8. Copies runs of harmless bytes in one go.
fn text_str(out: &mut Vec<u8>, b: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (rep, skip): (&[u8], usize) = match c {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'\t' => (b"&#9;", 1),
            b'\n' => (b"&#10;", 1),
            b'\r' => (b"&#13;", 1),
            0..=0x1f => (b"", 1),
            // U+FFFE and U+FFFF are not XML characters (EF BF BE / EF BF BF).
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                (b"", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(rep);
        i += skip;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}

/// `<![CDATA[...]]>` that stays one CDATA-ish value however hostile the
/// content: `]]>` is split across two sections, and TAB/LF/CR (which CDATA
/// cannot escape) are written as references between sections.
pub fn cdata(out: &mut Vec<u8>, raw: &[u8]) {
    out.extend_from_slice(b"<![CDATA[");
    let mut escaped = Vec::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        let b = chunk.valid().as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b'\t' | b'\n' | b'\r' => {
                    escaped.extend_from_slice(b"]]>");
                    escaped.extend_from_slice(match c {
                        b'\t' => b"&#9;",
                        b'\n' => b"&#10;",
                        _ => b"&#13;",
                    });
                    escaped.extend_from_slice(b"<![CDATA[");
                }
                0..=0x1f => {}
                b']' if b[i..].starts_with(b"]]>") => {
                    // End the section between "]]" and ">".
                    escaped.extend_from_slice(b"]]]]><![CDATA[>");
                    i += 3;
                    continue;
                }
                0xEF if b.get(i + 1) == Some(&0xBF)
                    && matches!(b.get(i + 2), Some(0xBE | 0xBF)) =>
                {
                    i += 3;
                    continue;
                }
                _ => escaped.push(c),
            }
            i += 1;
        }
        latin1(&mut escaped, chunk.invalid());
    }
    out.extend_from_slice(&escaped);
    out.extend_from_slice(b"]]>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn text_escaping() {
        let mut o = Vec::new();
        text(
            &mut o,
            "a&b<c>d\te\nf\rg\u{1}h\u{FFFE}i\u{FFFF}jü😀".as_bytes(),
        );
        assert_eq!(s(o), "a&amp;b&lt;c&gt;d&#9;e&#10;f&#13;ghijü😀");
        let mut o = Vec::new();
        text(&mut o, b"ok\xff\xfeend\xc3 J\xf6rg \x80");
        assert_eq!(s(o), "ok\u{FF}\u{FE}end\u{C3} J\u{F6}rg \u{20AC}");
        let mut o = Vec::new();
        text(&mut o, "quotes \" ' stay".as_bytes());
        assert_eq!(s(o), "quotes \" ' stay");
    }

    #[test]
    fn cdata_is_safe() {
        let mut o = Vec::new();
        cdata(&mut o, b"a]]>b\nc]]d<&");
        assert_eq!(s(o), "<![CDATA[a]]]]><![CDATA[>b]]>&#10;<![CDATA[c]]d<&]]>");
    }

    /// Compared with PHP itself (php-cli, installed by .ci/setup): the
    /// sums export_credit_by_app.php prints.
    #[test]
    fn php_number_matches_php() {
        let values = [
            0.0,
            1e-4,
            1.234e-5,
            123.5,
            100.0,
            1e15,
            1.5e15,
            12345678901234.5,
            0.1 + 0.2,
            1e25,
            -3.25,
            2.0 / 3.0,
            1234567.891,
            99999999999999.9,
            5e-324,
            0.000123456789012345,
        ];
        let list: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
        let script = format!(
            "foreach ([{}] as $x) {{ $t = 0; $t += $x; echo \"$t\\n\"; }}",
            list.join(",")
        );
        let out = std::process::Command::new("php")
            .args(["-r", &script])
            .output()
            .expect("php-cli installed (apt-get install php-cli; .ci/setup does)");
        let php = String::from_utf8(out.stdout).unwrap();
        let ours: String = values
            .iter()
            .map(|&v| {
                let mut o = Vec::new();
                php_number(&mut o, v);
                format!("{}\n", s(o))
            })
            .collect();
        assert_eq!(ours, php);
    }

    #[test]
    fn badge_and_work_records() {
        let mut o = Vec::new();
        badge_holder(&mut o, false, 7, 3, 1700000000.6);
        badge_holder(&mut o, true, 9, 4, 2.5);
        assert_eq!(
            s(o),
            " <badge_user>\n    <user_id>7</user_id>\n    <badge_id>3</badge_id>\n    \
<create_time>1700000001</create_time>\n </badge_user>\n <badge_team>\n    <team_id>9</team_id>\n    \
<badge_id>4</badge_id>\n    <create_time>2</create_time>\n </badge_team>\n"
        );
        let mut o = Vec::new();
        let sp = |name, total| SubprojectCredit {
            name,
            njobs: 3,
            total,
            expavg: total / 4.0,
        };
        work(&mut o, false, 5, &[sp("A \"&<b>", 10.5), sp("none", 0.0)]);
        assert_eq!(
            s(o),
            "<user>\n    <id>5</id>\n    <subproject name=\"A &quot;&amp;&lt;b&gt;\">\n        \
<workunits>3</workunits>\n        <credit>10.5</credit>\n        <expavg_credit>2.625</expavg_credit>\n    \
</subproject>\n</user>\n"
        );
    }

    #[test]
    fn fixed6_matches_printf() {
        let f = |v: f64| {
            let mut o = Vec::new();
            fixed6(&mut o, v);
            s(o)
        };
        assert_eq!(f(0.0), "0.000000");
        assert_eq!(f(1.5), "1.500000");
        assert_eq!(f(123456.1234567), "123456.123457");
        assert_eq!(f(-2.25), "-2.250000");
        assert_eq!(f(1e20), "100000000000000000000.000000");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(f64::NAN), "nan");
        assert_eq!(f(-0.0), "-0.000000");
        assert_eq!(f(-17179869184.0), "-17179869184.000000");
        assert_eq!(f(8999999999999999.0), "8999999999999999.000000");
        assert_eq!(f(9.5e15), "9500000000000000.000000");
        for v in [0.1, 2.675, 1e-7, 5e-7, 123.0000005, 1.0 / 3.0] {
            assert_eq!(f(v), format!("{v:.6}"));
        }
    }

    fn sample_host(details: HostExtra<'_>) -> Host<'_> {
        Host {
            id: 42,
            userid: 7,
            owner_show_hosts: Some(true),
            create_time: 1500000000,
            rpc_time: 1600000000,
            timezone: 3600,
            total_credit: 1234.5,
            expavg_credit: 12.25,
            expavg_time: 1600000000.5,
            p_vendor: b"GenuineIntel",
            p_model: b"Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz [Family 6 Model 158 Stepping 10]",
            os_name: b"Microsoft Windows 10",
            os_version: b"Core x64 Edition, (10.00.19045.00)",
            details,
            p_ncpus: 6,
            p_fpops: 4.5e9,
            p_iops: 1.5e10,
            p_membw: 1e9,
            m_nbytes: 17095000064.0,
            m_cache: 9437184.0,
            m_swap: 19595000064.0,
            d_total: 499000000000.0,
            d_free: 123000000000.0,
            n_bwup: 0.0,
            n_bwdown: 0.0,
            avg_turnaround: 86400.0,
            credit_per_cpu_sec: 0.0,
            host_cpid: b"0123456789abcdef0123456789abcdef",
        }
    }

    /// The host record of a release before 1.6 (no host.misc): the
    /// elements that release's db_dump writes after `<os_version>`, byte
    /// for byte, for real clients' serialnum strings; an empty part is
    /// left out. With host.misc, `<misc>` as master writes it.
    #[test]
    fn host_records_follow_the_release() {
        let body = |details| {
            let mut o = Vec::new();
            host(&mut o, &sample_host(details), false);
            let t = s(o);
            let from = t.find("</os_version>\n").unwrap() + "</os_version>\n".len();
            t[from..].to_owned()
        };
        let sn = |v: &'static str| body(HostExtra::Serialnum(v.as_bytes()));
        assert_eq!(
            sn("[BOINC|7.16.21][CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102][vbox|6.1.26|1|1]"),
            "    <boinc_version>[BOINC|7.16.21]</boinc_version>\n\
             \x20   <vbox_version>[vbox|6.1.26|1|1]</vbox_version>\n\
             \x20   <coprocs>[CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102]</coprocs>\n\
             </host>\n"
        );
        assert_eq!(
            sn("[BOINC|8.0.2][CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]"),
            "    <boinc_version>[BOINC|8.0.2]</boinc_version>\n\
             \x20   <coprocs>[CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]</coprocs>\n\
             </host>\n"
        );
        assert_eq!(
            sn("[BOINC|7.14.2|Charity Engine]"),
            "    <boinc_version>[BOINC|7.14.2|Charity Engine]</boinc_version>\n</host>\n"
        );
        // upstream's xml_escape: & and < as entities.
        assert_eq!(
            sn("[BOINC|7.6.22][CAL|AMD Radeon R9 200 & HD 7900 <x>|2|3072MB|1.4.1848|120]"),
            "    <boinc_version>[BOINC|7.6.22]</boinc_version>\n\
             \x20   <coprocs>[CAL|AMD Radeon R9 200 &amp; HD 7900 &lt;x&gt;|2|3072MB|1.4.1848|120]</coprocs>\n\
             </host>\n"
        );
        assert_eq!(sn(""), "</host>\n");
        assert_eq!(sn("not bracketed"), "</host>\n");
        assert_eq!(
            body(HostExtra::Misc(br#"{"gpus":[]}"#)),
            "    <misc><![CDATA[{\"gpus\":[]}]]></misc>\n</host>\n"
        );
    }

    #[test]
    fn cpid_is_md5_of_concatenation() {
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
        assert_eq!(&cpid(b"a", b"bc"), b"900150983cd24fb0d6963f7d28e17f72");
    }
}
