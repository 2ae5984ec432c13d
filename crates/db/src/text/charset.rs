//! Character sets: projects created on MySQL before utf8mb4 have `latin1`
//! tables (BOINC's schema names no character set) holding the UTF-8 bytes
//! PHP wrote over a latin1 connection. On such a database every session of
//! ours is latin1 too, so the server converts nothing and bytes pass
//! through both ways exactly as PHP's do; on any other database it is
//! utf8mb4. The session decides itself when it connects (see
//! `SESSION_INIT`), so every binary and every connection behaves the same
//! without configuration.
//!
//! Reading: text comes back as the stored bytes. Valid UTF-8 is taken as
//! is; bytes that are not (text a latin1 client stored) are decoded as
//! MySQL's latin1, i.e. what the server itself would have converted them to.

use std::borrow::Cow;

use mysql_async::prelude::*;
use mysql_async::{FromValueError, Value};

use crate::DbError;

/// The character set `user.name` calls for: latin1 when that column is
/// latin1, else utf8mb4 (also before the tables exist).
macro_rules! wanted {
    () => {
        "(SELECT IF(COUNT(*) > 0, 'latin1', 'utf8mb4') FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user' AND COLUMN_NAME = 'name' \
         AND CHARACTER_SET_NAME = 'latin1')"
    };
}

/// Run on every new connection: `SET NAMES` with the character set
/// `user.name` calls for. One statement (mysql_async runs a list of init
/// statements last to first), each variable with its own subquery (the
/// assignments of one SET see the values from before it).
pub const SESSION_INIT: &str = concat!(
    "SET character_set_client = ",
    wanted!(),
    ", character_set_connection = ",
    wanted!(),
    ", character_set_results = ",
    wanted!()
);

/// The character set a session talks in (see `SESSION_INIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8mb4,
    /// A legacy database: bytes pass through, and a `varchar(N)` holds N
    /// bytes (one latin1 character per byte).
    Latin1,
}

/// The character set a new session would choose now (`SESSION_INIT`'s
/// rule), e.g. to notice that the tables were converted meanwhile.
pub async fn wanted<Q: Queryable>(q: &mut Q) -> Result<Charset, DbError> {
    let cs: Option<String> = q.query_first(concat!("SELECT ", wanted!())).await?;
    Ok(match cs.as_deref() {
        Some("latin1") => Charset::Latin1,
        _ => Charset::Utf8mb4,
    })
}

/// The session's character set, as `SESSION_INIT` chose it.
pub async fn session_charset<Q: Queryable>(q: &mut Q) -> Result<Charset, DbError> {
    let cs: Option<String> = q.query_first("SELECT @@character_set_client").await?;
    Ok(match cs.as_deref() {
        Some("latin1") => Charset::Latin1,
        _ => Charset::Utf8mb4,
    })
}

/// Stored text as a string: UTF-8 where it is UTF-8, each other byte as
/// MySQL's latin1 character.
pub fn decode(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            decode_into(&mut out, b);
            Cow::Owned(out)
        }
    }
}

/// `decode`, appending to `out`.
pub fn decode_into(out: &mut String, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&c| latin1_char(c)));
    }
}

/// MySQL's `latin1` is Windows-1252, with the five bytes cp1252 leaves
/// undefined mapped to the C1 controls of the same number.
pub fn latin1_char(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}',
        '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// A text column for `#[mysql(deserialize_with = ...)]`: never fails on
/// bytes that are not UTF-8 (see `decode`).
pub fn string(v: Value) -> Result<String, FromValueError> {
    match v {
        Value::Bytes(b) => Ok(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => {
                let mut s = String::new();
                decode_into(&mut s, e.as_bytes());
                s
            }
        }),
        Value::NULL => Err(FromValueError(Value::NULL)),
        other => String::from_value_opt(other),
    }
}

/// As `string`, for a column that may be NULL.
pub fn opt_string(v: Value) -> Result<Option<String>, FromValueError> {
    match v {
        Value::NULL => Ok(None),
        other => string(other).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_and_other_bytes_are_latin1() {
        assert_eq!(decode("Jörg 李 🚀".as_bytes()), "Jörg 李 🚀");
        assert!(matches!(decode(b"plain"), Cow::Borrowed(_)));
        // "Jörg" written by a latin1 client: ö is the single byte F6.
        assert_eq!(decode(b"J\xF6rg"), "Jörg");
        assert_eq!(decode(b"\x80 \x81 \x9F \xFF"), "€ \u{81} Ÿ ÿ");
        // Mixed: valid UTF-8 runs stay, stray bytes are latin1.
        assert_eq!(decode(b"\xC3\xA9\xE9"), "éé");
    }

    #[test]
    fn deserializers() {
        assert_eq!(string(Value::Bytes(b"J\xF6rg".to_vec())).unwrap(), "Jörg");
        assert_eq!(opt_string(Value::NULL).unwrap(), None);
        assert!(string(Value::NULL).is_err());
    }
}
