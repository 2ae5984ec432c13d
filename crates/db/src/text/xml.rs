//! XML escaping: the one rule for every XML writer (boinc-rpc's replies,
//! the ops pages, db_dump's records).
//!
//! quick-xml escapes `< > & " '` but leaves characters XML 1.0 forbids;
//! dropping those is ours to do.
//!
//! One table (`fate`) says what becomes of each byte; the writers differ
//! only in the [`Context`] they escape for:
//!
//! | | `& < >` | `"` | `'` | TAB LF CR | forbidden characters |
//! |---|---|---|---|---|---|
//! | [`Context::Text`] (RPC replies, pages) | entities | `&quot;` | `&apos;` | kept | dropped |
//! | [`Context::Record`] (dump element text) | entities | kept | kept | `&#9;` `&#10;` `&#13;` | dropped |
//! | [`Context::RecordAttr`] (dump attribute values) | entities | `&quot;` | kept | `&#9;` `&#10;` `&#13;` | dropped |
//! | [`Context::Cdata`] (dump CDATA content) | kept | kept | kept | references between sections | dropped |
//!
//! The forbidden characters, dropped everywhere, are the C0 controls other
//! than TAB, LF and CR, and U+FFFE and U+FFFF (surrogates cannot occur in
//! UTF-8). In CDATA, `]]>` is also split across two sections.
//!
//! [`escape_into`] and [`escape`] take `str`s (always UTF-8). The dump's
//! text comes from the database as bytes: [`escape_bytes_into`] writes
//! bytes that are not UTF-8 (a latin1 client's text on a legacy database,
//! see [`crate::text::charset`]) as the latin1 characters the server itself would
//! have converted them to; those need escaping in no context.

use std::ops::Range;

/// Is `c` allowed in an XML 1.0 document?
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Where escaped text goes; see the table in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Element text or an attribute value of an RPC reply or a page:
    /// `& < > " '` as entities, TAB/LF/CR kept as they are.
    Text,
    /// db_dump's element text: `& < >` as entities, quotes kept (as
    /// upstream's exporter writes them), TAB/LF/CR as character references
    /// so a record line never breaks.
    Record,
    /// db_dump's attribute values (in `"`): [`Context::Record`] plus `"`
    /// as `&quot;`.
    RecordAttr,
    /// The content of a db_dump CDATA section, between `<![CDATA[` and
    /// `]]>` (the caller writes those): markup kept; `]]>` split across two
    /// sections and TAB/LF/CR (which CDATA cannot escape) written as
    /// references between sections, so the value stays on one line and one
    /// CDATA-ish value however hostile it is.
    Cdata,
}

/// What becomes of one byte of UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fate {
    /// Copied as it is.
    Copy,
    /// A character XML forbids (all of it is this byte).
    Drop,
    /// 0xEF: the lead byte of U+FFFE (EF BF BE) and U+FFFF (EF BF BF),
    /// which are dropped; copied otherwise.
    NonCharLead,
    /// `]` in CDATA: the start of a `]]>` to split; copied otherwise.
    CdataEnd,
    Amp,
    Lt,
    Gt,
    Quot,
    Apos,
    Tab,
    Lf,
    Cr,
    CdataTab,
    CdataLf,
    CdataCr,
}

impl Fate {
    /// What a replaced byte is written as.
    const fn spelling(self) -> &'static str {
        match self {
            Fate::Copy | Fate::Drop | Fate::NonCharLead | Fate::CdataEnd => "",
            Fate::Amp => "&amp;",
            Fate::Lt => "&lt;",
            Fate::Gt => "&gt;",
            Fate::Quot => "&quot;",
            Fate::Apos => "&apos;",
            Fate::Tab => "&#9;",
            Fate::Lf => "&#10;",
            Fate::Cr => "&#13;",
            Fate::CdataTab => "]]>&#9;<![CDATA[",
            Fate::CdataLf => "]]>&#10;<![CDATA[",
            Fate::CdataCr => "]]>&#13;<![CDATA[",
        }
    }
}

/// The rule: what becomes of byte `b` of UTF-8 text in `ctx`.
const fn fate(b: u8, ctx: Context) -> Fate {
    use Context::*;
    match b {
        // Characters XML 1.0 forbids: dropped everywhere.
        0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F => Fate::Drop,
        0xEF => Fate::NonCharLead,
        b'\t' | b'\n' | b'\r' => match ctx {
            Text => Fate::Copy,
            Record | RecordAttr => match b {
                b'\t' => Fate::Tab,
                b'\n' => Fate::Lf,
                _ => Fate::Cr,
            },
            Cdata => match b {
                b'\t' => Fate::CdataTab,
                b'\n' => Fate::CdataLf,
                _ => Fate::CdataCr,
            },
        },
        b'&' | b'<' | b'>' if matches!(ctx, Cdata) => Fate::Copy,
        b'&' => Fate::Amp,
        b'<' => Fate::Lt,
        b'>' => Fate::Gt,
        b'"' if matches!(ctx, Text | RecordAttr) => Fate::Quot,
        b'\'' if matches!(ctx, Text) => Fate::Apos,
        b']' if matches!(ctx, Cdata) => Fate::CdataEnd,
        _ => Fate::Copy,
    }
}

const fn table(ctx: Context) -> [Fate; 256] {
    let mut t = [Fate::Copy; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = fate(b as u8, ctx);
        b += 1;
    }
    t
}

/// [`fate`] for every byte, one table per [`Context`] (in its order).
static TABLES: [[Fate; 256]; 4] = [
    table(Context::Text),
    table(Context::Record),
    table(Context::RecordAttr),
    table(Context::Cdata),
];

/// Walks `b` (valid UTF-8) for `ctx`: `emit(run, replacement)` for each run
/// of bytes copied as they are (`b[run]`, whole characters) followed by
/// what the next byte or character becomes ("" when dropped); the last
/// call has the rest and "". Runs are handed over whole, never byte by
/// byte.
#[inline(always)]
fn scan(b: &[u8], ctx: Context, mut emit: impl FnMut(Range<usize>, &'static str)) {
    let t = &TABLES[ctx as usize];
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let (rep, skip) = match t[usize::from(b[i])] {
            Fate::Copy => {
                i += 1;
                continue;
            }
            Fate::Drop => ("", 1),
            Fate::NonCharLead
                if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                ("", 3)
            }
            // End the section between "]]" and ">".
            Fate::CdataEnd if b[i..].starts_with(b"]]>") => ("]]]]><![CDATA[>", 3),
            Fate::NonCharLead | Fate::CdataEnd => {
                i += 1;
                continue;
            }
            f => (f.spelling(), 1),
        };
        emit(start..i, rep);
        i += skip;
        start = i;
    }
    emit(start..b.len(), "");
}

/// Escape `s` for [`Context::Text`]: `& < > " '` as entities, characters
/// XML forbids dropped, whitespace kept as is (for RPC replies).
pub fn escape_into(out: &mut String, s: &str) {
    // Runs and replacements end on character boundaries (see `scan`).
    scan(s.as_bytes(), Context::Text, |run, rep| {
        out.push_str(&s[run]);
        out.push_str(rep);
    });
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Escape bytes from the database for `ctx`; bytes that are not UTF-8 are
/// written as latin1 characters (see the module documentation).
pub fn escape_bytes_into(out: &mut Vec<u8>, raw: &[u8], ctx: Context) {
    for chunk in raw.utf8_chunks() {
        let b = chunk.valid().as_bytes();
        scan(b, ctx, |run, rep| {
            out.extend_from_slice(&b[run]);
            out.extend_from_slice(rep.as_bytes());
        });
        for &c in chunk.invalid() {
            let mut buf = [0u8; 4];
            out.extend_from_slice(
                crate::text::charset::latin1_char(c)
                    .encode_utf8(&mut buf)
                    .as_bytes(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_drops_forbidden() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{0}y\u{1b}z\u{FFFE}"), "xyz");
        assert_eq!(escape("tab\there\nü"), "tab\there\nü");
    }

    fn bytes(raw: &[u8], ctx: Context) -> String {
        let mut out = Vec::new();
        escape_bytes_into(&mut out, raw, ctx);
        String::from_utf8(out).unwrap()
    }

    /// Every context drops exactly the characters XML forbids; the str and
    /// byte versions of [`Context::Text`] agree.
    #[test]
    fn xml_every_context_drops_exactly_the_forbidden_characters() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let s: &str = c.encode_utf8(&mut buf);
            let text = escape(s);
            assert_eq!(text.is_empty(), !is_xml_char(c), "{c:?}");
            assert_eq!(bytes(s.as_bytes(), Context::Text), text, "{c:?}");
            for ctx in [Context::Record, Context::RecordAttr, Context::Cdata] {
                assert_eq!(
                    bytes(s.as_bytes(), ctx).is_empty(),
                    !is_xml_char(c),
                    "{c:?} {ctx:?}"
                );
            }
        }
    }

    #[test]
    fn xml_contexts_differ_only_as_documented() {
        let s = b"a&b<c>d\"e'f\tg\nh\ri]]>j\x01k\xff";
        assert_eq!(
            bytes(s, Context::Text),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f\tg\nh\ri]]&gt;jk\u{FF}"
        );
        assert_eq!(
            bytes(s, Context::Record),
            "a&amp;b&lt;c&gt;d\"e'f&#9;g&#10;h&#13;i]]&gt;jk\u{FF}"
        );
        assert_eq!(
            bytes(s, Context::RecordAttr),
            "a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;jk\u{FF}"
        );
        assert_eq!(
            bytes(s, Context::Cdata),
            "a&b<c>d\"e'f]]>&#9;<![CDATA[g]]>&#10;<![CDATA[h]]>&#13;<![CDATA[i]]]]><![CDATA[>jk\u{FF}"
        );
        // A lone 0xEF lead or "]" is copied.
        assert_eq!(
            bytes("\u{FFFD}]]x]".as_bytes(), Context::Cdata),
            "\u{FFFD}]]x]"
        );
    }
}
