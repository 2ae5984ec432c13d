//! The dump's record writer: every byte of every output file and of
//! tables.xml is produced here, so the layout lives in one place: one file
//! per kind of record (`user.rs`, `host.rs`, `team.rs`, `credit.rs` for
//! badge and credit_by_app records, `tables_xml.rs`), numbers as C and PHP
//! print them in `number.rs`, the element helpers here. The escaping rule
//! itself is `boinc_db::xml`'s; [`text`], `attr` and [`cdata`] pick its
//! context.
//!
//! Layout (element order, indentation, `%f` numbers, which elements are
//! optional) follows BOINC's exporter because stats sites parse it, some
//! line by line. Escaping deliberately differs from upstream (see SPEC
//! section 5): text is UTF-8; `& < >` are escaped; characters XML 1.0
//! forbids are dropped; TAB/LF/CR become character references so a record
//! line never breaks; `]]>` cannot end a CDATA section early; bytes from
//! the database that are not UTF-8 (a latin1 client's text on a legacy
//! database) are decoded as latin1 instead of breaking the document.

mod credit;
mod host;
mod number;
mod tables_xml;
mod team;
mod user;

pub use credit::{badge_holder, work, SubprojectCredit};
pub use host::{host, host_id_cpid, Host, HostExtra};
pub use number::{fixed6, php_number};
pub use tables_xml::{tables_xml, Badge, Totals};
pub use team::{team_end, team_start, Team};
pub use user::{user, user_id_cpid, User, UserFields};

use boinc_db::xml::{escape_bytes_into, Context};

use crate::spec::Table;

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

/// Attribute text: element escaping plus the quote.
fn attr(out: &mut Vec<u8>, raw: &[u8]) {
    escape_bytes_into(out, raw, Context::RecordAttr);
}

/// Element text: escape `& < >`, TAB/LF/CR as character references, drop
/// characters XML forbids, decode bytes that are not UTF-8 as latin1
/// (`boinc_db::xml`'s rule for [`Context::Record`]).
pub fn text(out: &mut Vec<u8>, raw: &[u8]) {
    escape_bytes_into(out, raw, Context::Record);
}

/// `<![CDATA[...]]>` that stays one CDATA-ish value however hostile the
/// content: `]]>` is split across two sections, and TAB/LF/CR (which CDATA
/// cannot escape) are written as references between sections
/// ([`Context::Cdata`]).
pub fn cdata(out: &mut Vec<u8>, raw: &[u8]) {
    out.extend_from_slice(b"<![CDATA[");
    escape_bytes_into(out, raw, Context::Cdata);
    out.extend_from_slice(b"]]>");
}

#[cfg(test)]
mod tests;
