//! How long a value each text column written by these components holds, as
//! declared in `sql/schema.sql` (BOINC's sizes). Callers check a value here
//! before the database sees it: in strict SQL mode an over-long value is a
//! statement error (the whole change lost), otherwise it is cut silently.
//! `tests/columns.rs` compares this table with the live schema.

use crate::text::charset::Charset;

/// What a column's limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `varchar(N)`: N characters, whatever their encoded size.
    Chars,
    /// `blob`: N bytes.
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub table: &'static str,
    pub column: &'static str,
    pub max: usize,
    pub unit: Unit,
}

impl Column {
    const fn chars(table: &'static str, column: &'static str, max: usize) -> Self {
        Self {
            table,
            column,
            max,
            unit: Unit::Chars,
        }
    }

    const fn bytes(table: &'static str, column: &'static str, max: usize) -> Self {
        Self {
            table,
            column,
            max,
            unit: Unit::Bytes,
        }
    }

    /// The value's length in this column's unit (on a utf8mb4 database).
    pub fn len_of(&self, value: &str) -> usize {
        self.len_in(value, Charset::Utf8mb4)
    }

    pub fn fits(&self, value: &str) -> bool {
        self.fits_in(value, Charset::Utf8mb4)
    }

    /// The value's length as a database talking `cs` counts it: a latin1
    /// `varchar(N)` holds N bytes (our UTF-8 passes through byte by byte).
    pub fn len_in(&self, value: &str, cs: Charset) -> usize {
        match (self.unit, cs) {
            (Unit::Chars, Charset::Utf8mb4) => value.chars().count(),
            _ => value.len(),
        }
    }

    pub fn fits_in(&self, value: &str, cs: Charset) -> bool {
        // Cheap exit first: a value can't have more chars than bytes.
        value.len() <= self.max || self.len_in(value, cs) <= self.max
    }

    /// "characters" or "bytes", for messages.
    pub fn unit_name(&self) -> &'static str {
        self.unit_name_in(Charset::Utf8mb4)
    }

    pub fn unit_name_in(&self, cs: Charset) -> &'static str {
        match (self.unit, cs) {
            (Unit::Chars, Charset::Utf8mb4) => "characters",
            _ => "bytes",
        }
    }
}

pub const USER_EMAIL_ADDR: Column = Column::chars("user", "email_addr", 191);
pub const USER_NAME: Column = Column::chars("user", "name", 191);
pub const USER_COUNTRY: Column = Column::chars("user", "country", 254);
pub const USER_POSTAL_CODE: Column = Column::chars("user", "postal_code", 254);
pub const USER_URL: Column = Column::chars("user", "url", 254);
pub const USER_VENUE: Column = Column::chars("user", "venue", 254);
pub const USER_GLOBAL_PREFS: Column = Column::bytes("user", "global_prefs", 65535);
pub const USER_PROJECT_PREFS: Column = Column::bytes("user", "project_prefs", 65535);
pub const USER_PASSWD_HASH: Column = Column::chars("user", "passwd_hash", 254);
pub const USER_PREVIOUS_EMAIL_ADDR: Column = Column::chars("user", "previous_email_addr", 254);
pub const CONSENT_SOURCE: Column = Column::chars("consent", "source", 255);
pub const CONSENT_TYPE_SHORTNAME: Column = Column::chars("consent_type", "shortname", 191);
pub const CONSENT_TYPE_DESCRIPTION: Column = Column::chars("consent_type", "description", 255);

/// Every column above (the schema test walks this).
pub const ALL: &[Column] = &[
    USER_EMAIL_ADDR,
    USER_NAME,
    USER_COUNTRY,
    USER_POSTAL_CODE,
    USER_URL,
    USER_VENUE,
    USER_GLOBAL_PREFS,
    USER_PROJECT_PREFS,
    USER_PASSWD_HASH,
    USER_PREVIOUS_EMAIL_ADDR,
    CONSENT_SOURCE,
    CONSENT_TYPE_SHORTNAME,
    CONSENT_TYPE_DESCRIPTION,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_count_characters_and_blobs_count_bytes() {
        let c = Column::chars("t", "c", 3);
        assert!(c.fits("abc"));
        assert!(c.fits("äöü"), "3 characters, 6 bytes");
        assert!(!c.fits("abcd"));
        assert!(!c.fits("äöüß"));
        let b = Column::bytes("t", "b", 3);
        assert!(b.fits("abc"));
        assert!(!b.fits("äö"), "2 characters, 4 bytes");
        assert_eq!(b.len_of("äö"), 4);
        // A legacy latin1 database counts bytes for varchar too.
        assert!(!c.fits_in("äöü", Charset::Latin1));
        assert!(!c.fits_in("äö", Charset::Latin1));
        assert!(c.fits_in("aä", Charset::Latin1));
        assert_eq!(c.unit_name_in(Charset::Latin1), "bytes");
    }
}
