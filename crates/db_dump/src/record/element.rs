//! The pieces every record is made of: a file's wrapper, one element per
//! value, escaped text, attributes and CDATA (the escaping rule itself is
//! `boinc_db::text::xml`'s; these pick its context).

use boinc_db::text::xml::{escape_bytes_into, Context};

use super::number::fixed6;
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

pub(super) fn int_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: i64) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.extend_from_slice(b">\n");
}

pub(super) fn float_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: f64) {
    out.extend_from_slice(indent);
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    fixed6(out, v);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.extend_from_slice(b">\n");
}

pub(super) fn text_el(out: &mut Vec<u8>, indent: &[u8], name: &[u8], v: &[u8]) {
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
pub(super) fn attr(out: &mut Vec<u8>, raw: &[u8]) {
    escape_bytes_into(out, raw, Context::RecordAttr);
}

/// Element text: escape `& < >`, TAB/LF/CR as character references, drop
/// characters XML forbids, decode bytes that are not UTF-8 as latin1
/// (`boinc_db::text::xml`'s rule for [`Context::Record`]).
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
