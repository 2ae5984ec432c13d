//! What the conversion knows about the database: its constants, each
//! table's text columns and keys (read once), the report and progress
//! types, and the SQL for a column's meant characters.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

use crate::ident::quote_ident;
use crate::DbError;

/// The collation upstream converts to.
pub const COLLATION: &str = "utf8mb4_unicode_ci";

/// Upstream's shrunk columns (db_update's update of 2026-05-02, before its
/// conversion): (table, column, definition, characters).
pub const SHRUNK: &[(&str, &str, &str, u32)] = &[
    ("platform", "name", "varchar(191) not null", 191),
    ("app", "name", "varchar(191) not null", 191),
    (
        "app_version",
        "plan_class",
        "varchar(128) not null default ''",
        128,
    ),
    ("user", "email_addr", "varchar(191) not null", 191),
    ("user", "name", "varchar(191)", 191),
    ("user", "authenticator", "varchar(191)", 191),
    ("team", "name", "varchar(191) not null", 191),
    ("workunit", "name", "varchar(191) not null", 191),
    ("result", "name", "varchar(191) not null", 191),
    ("job_file", "name", "varchar(191) not null", 191),
    ("category", "name", "varchar(180) not null", 180),
    ("forum", "title", "varchar(175) not null", 175),
    ("token", "token", "varchar(64) not null", 64),
    ("consent_type", "shortname", "varchar(191) not null", 191),
];

/// Valid UTF-8 (no overlongs, no surrogates), as a byte-mode regular
/// expression over the stored bytes.
pub(super) const UTF8_RE: &str = concat!(
    // Backslashes doubled: this goes into a SQL string literal.
    r"^([\\x00-\\x7F]|[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]|",
    r"[\\xE1-\\xEC\\xEE\\xEF][\\x80-\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]|",
    r"\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3][\\x80-\\xBF]{3}|",
    r"\\xF4[\\x80-\\x8F][\\x80-\\xBF]{2})*$"
);

pub(super) const SHADOW: &str = "_utf8mb4_new_";
pub(super) const OLD: &str = "_utf8mb4_old_";
/// Rows per copy batch: adapted so that a batch (and so the longest wait
/// of a writer of one of its rows) takes about `BATCH_TIME`.
pub(super) const BATCH_START: u64 = 500;
pub(super) const BATCH_MIN: u64 = 20;
pub(super) const BATCH_MAX: u64 = 20_000;
pub(super) const BATCH_TIME: Duration = Duration::from_millis(25);
/// Tables converted by ALTER whose bytes are not put back yet.
pub(super) const PENDING: &str = "_utf8mb4_pending";

#[derive(Debug, Clone)]
pub(super) struct TextColumn {
    pub(super) name: String,
    pub(super) charset: String,
    pub(super) collation: String,
    pub(super) max_chars: Option<u64>,
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) name: String,
    pub(super) engine: String,
    pub(super) collation: String,
    /// The integer primary key, when it is one column.
    pub(super) int_pk: Option<String>,
    pub(super) text: Vec<TextColumn>,
    /// Other tables' foreign keys point at it, or it has triggers.
    pub(super) pinned: bool,
    /// Its own foreign keys (`ALTER TABLE .. ADD ..` clauses), which a
    /// copy does not inherit.
    pub(super) foreign_keys: Vec<(String, String)>,
}

impl Table {
    pub(super) fn shrunk(
        &self,
    ) -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str, u32)> + '_ {
        SHRUNK.iter().filter(move |(t, c, _, _)| {
            *t == self.name && self.text.iter().any(|x| x.name.eq_ignore_ascii_case(c))
        })
    }

    /// Already as upstream's conversion leaves it.
    pub(super) fn converted(&self) -> bool {
        self.collation == COLLATION
            && self.text.iter().all(|c| c.collation == COLLATION)
            && self.shrunk().all(|(_, c, _, n)| {
                self.text
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(c) && x.max_chars == Some(u64::from(*n)))
            })
    }

    pub(super) fn online(&self) -> bool {
        self.int_pk.is_some() && self.engine.eq_ignore_ascii_case("InnoDB") && !self.pinned
    }

    pub(super) fn latin1(&self) -> impl Iterator<Item = &TextColumn> {
        self.text.iter().filter(|c| c.charset == "latin1")
    }
}

/// A value too long for upstream's shrunk column.
#[derive(Debug, Clone, PartialEq)]
pub struct TooLong {
    pub table: String,
    pub column: String,
    /// The row's primary key, or the value's start.
    pub row: String,
    pub chars: usize,
    pub max: u32,
}

/// Values a unique index would hold twice after the conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Collision {
    pub table: String,
    pub index: String,
    pub values: Vec<String>,
}

/// How a table was (or would be) converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A copy kept current by triggers, swapped in by RENAME.
    Online,
    /// One ALTER TABLE (blocks writes while it copies).
    Alter,
}

#[derive(Debug, Default)]
pub struct Report {
    pub too_long: Vec<TooLong>,
    pub collisions: Vec<Collision>,
    /// (table, column, values rewritten as the UTF-8 they meant).
    pub repaired: Vec<(String, String, u64)>,
    pub converted: Vec<(String, Method, Duration)>,
    pub would_convert: Vec<(String, Method)>,
    pub already: Vec<String>,
    /// Left by an interrupted run and removed.
    pub cleaned: Vec<String>,
}

impl Report {
    /// Nothing may be converted: values would not fit or would collide.
    pub fn blocked(&self) -> bool {
        !self.too_long.is_empty() || !self.collisions.is_empty()
    }
}

/// What a conversion is told as it goes (for a progress line).
pub trait Progress: Send {
    fn step(&mut self, what: &str);
}

impl<F: FnMut(&str) + Send> Progress for F {
    fn step(&mut self, what: &str) {
        self(what)
    }
}

pub(super) async fn tables(c: &mut Conn) -> Result<Vec<Table>, DbError> {
    let rows: Vec<(String, Option<String>, Option<String>)> = c
        .query(
            "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )
        .await?;
    let cols: Vec<(String, String, String, String, Option<u64>)> = c
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME, \
             CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await?;
    let mut text: BTreeMap<String, Vec<TextColumn>> = BTreeMap::new();
    for (t, name, charset, collation, max_chars) in cols {
        text.entry(t).or_default().push(TextColumn {
            name,
            charset,
            collation,
            max_chars,
        });
    }
    let pks: Vec<(String, String, String)> = c
        .query(
            "SELECT k.TABLE_NAME, k.COLUMN_NAME, col.DATA_TYPE \
             FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS col \
               ON col.TABLE_SCHEMA = k.TABLE_SCHEMA AND col.TABLE_NAME = k.TABLE_NAME \
              AND col.COLUMN_NAME = k.COLUMN_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.CONSTRAINT_NAME = 'PRIMARY'",
        )
        .await?;
    let mut pk: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (t, col, ty) in pks {
        pk.entry(t).or_default().push((col, ty));
    }
    let parents: Vec<String> = c
        .query(
            "SELECT DISTINCT REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE()",
        )
        .await?;
    let triggered: Vec<String> = c
        .exec(
            "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME NOT LIKE ?",
            (format!("{}%", SHADOW.replace('_', "\\_")),),
        )
        .await?;
    let fks: Vec<(String, String, String, String, String, String, String)> = c
        .query(
            "SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, \
               GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION), r.REFERENCED_TABLE_NAME, \
               GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION), \
               r.UPDATE_RULE, r.DELETE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS r \
             JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA \
              AND k.TABLE_NAME = r.TABLE_NAME AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME \
             WHERE r.CONSTRAINT_SCHEMA = DATABASE() \
             GROUP BY r.TABLE_NAME, r.CONSTRAINT_NAME, r.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE",
        )
        .await?;
    let mut out = Vec::new();
    for (name, engine, collation) in rows {
        if name.starts_with(SHADOW) || name.starts_with(OLD) || name == PENDING {
            continue;
        }
        let Some(text) = text.remove(&name) else {
            continue; // holds no text: nothing to convert
        };
        let int_pk = match pk.get(&name).map(Vec::as_slice) {
            Some([(col, ty)]) if ty.contains("int") => Some(col.clone()),
            _ => None,
        };
        let foreign_keys = fks
            .iter()
            .filter(|f| f.0 == name)
            .map(|(_, n, cols, rt, rcols, upd, del)| {
                let q = |l: &str| {
                    l.split(',')
                        .map(quote_ident)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                (
                    n.clone(),
                    format!(
                        "ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON UPDATE {upd} ON DELETE {del}",
                        quote_ident(n),
                        q(cols),
                        quote_ident(rt),
                        q(rcols)
                    ),
                )
            })
            .collect();
        out.push(Table {
            pinned: parents.contains(&name) || triggered.contains(&name),
            engine: engine.unwrap_or_default(),
            collation: collation.unwrap_or_default(),
            int_pk,
            text,
            name,
            foreign_keys,
        });
    }
    Ok(out)
}

/// `col` as the characters PHP meant, in utf8mb4 (SQL, for a copy and
/// its triggers). Latin1: the stored bytes as UTF-8 when they are UTF-8
/// (after the repair step they are; a value written since by a latin1
/// client is read as latin1 instead of failing the writer).
pub(super) fn meant(col: &TextColumn, expr: &str) -> String {
    match col.charset.as_str() {
        "latin1" => format!(
            "IF(CAST({expr} AS BINARY) REGEXP '{UTF8_RE}', CONVERT(CAST({expr} AS BINARY) USING utf8mb4), \
             CONVERT({expr} USING utf8mb4))"
        ),
        _ => format!("CONVERT({expr} USING utf8mb4)"),
    }
}

pub(super) fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}
