//! Converting a legacy latin1 database to utf8mb4 without double
//! encoding (`boinc-ops db convert-utf8mb4`).
//!
//! BOINC's PHP wrote UTF-8 over a latin1 connection, so a latin1 column
//! holds UTF-8 bytes; upstream's own conversion (`CONVERT TO CHARACTER
//! SET utf8mb4`) reads each of those bytes as a latin1 character and
//! encodes it again, turning every non-ASCII name into mojibake. Here the
//! stored bytes become the characters PHP meant, as our binaries already
//! read them (`charset::decode`): UTF-8 sequences as UTF-8, any other byte
//! as latin1. Each table ends exactly as upstream's conversion leaves it
//! (`utf8mb4_unicode_ci`, upstream's shrunk `varchar` sizes, TEXT widened
//! as CONVERT TO widens it), so running upstream's statements afterwards
//! changes nothing.
//!
//! Steps, each safe to interrupt and repeat:
//! 1. Check (before touching anything): values longer than upstream's
//!    shrunk columns, and values a unique index would hold twice once
//!    compared as `utf8mb4_unicode_ci`. Any: nothing is changed.
//! 2. Repair: values that are not valid UTF-8 are rewritten in place as
//!    the UTF-8 of what they mean (compare-and-set, row by row).
//! 3. Convert, table by table. An InnoDB table with an integer primary
//!    key, no triggers of its own and no foreign key pointing at it is
//!    converted online: a converted copy (`_utf8mb4_new_T`) kept current
//!    by triggers, filled in small batches, then swapped in with one
//!    atomic `RENAME TABLE` (writers wait only for that rename). Other
//!    tables (small: consent types, tokens, limits; MyISAM tables of old
//!    releases) get one `ALTER TABLE`, which blocks writes while it
//!    copies. A table already converted is left alone; a copy left by an
//!    interrupted run is dropped and made again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
const UTF8_RE: &str = concat!(
    // Backslashes doubled: this goes into a SQL string literal.
    r"^([\\x00-\\x7F]|[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]|",
    r"[\\xE1-\\xEC\\xEE\\xEF][\\x80-\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]|",
    r"\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3][\\x80-\\xBF]{3}|",
    r"\\xF4[\\x80-\\x8F][\\x80-\\xBF]{2})*$"
);

const SHADOW: &str = "_utf8mb4_new_";
const OLD: &str = "_utf8mb4_old_";
/// Rows per copy batch: adapted so that a batch (and so the longest wait
/// of a writer of one of its rows) takes about `BATCH_TIME`.
const BATCH_START: u64 = 500;
const BATCH_MIN: u64 = 20;
const BATCH_MAX: u64 = 20_000;
const BATCH_TIME: Duration = Duration::from_millis(25);
/// Tables converted by ALTER whose bytes are not put back yet.
const PENDING: &str = "_utf8mb4_pending";

#[derive(Debug, Clone)]
struct TextColumn {
    name: String,
    charset: String,
    collation: String,
    max_chars: Option<u64>,
}

#[derive(Debug, Clone)]
struct Table {
    name: String,
    engine: String,
    collation: String,
    /// The integer primary key, when it is one column.
    int_pk: Option<String>,
    text: Vec<TextColumn>,
    /// Other tables' foreign keys point at it, or it has triggers.
    pinned: bool,
    /// Its own foreign keys (`ALTER TABLE .. ADD ..` clauses), which a
    /// copy does not inherit.
    foreign_keys: Vec<(String, String)>,
}

impl Table {
    fn shrunk(
        &self,
    ) -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str, u32)> + '_ {
        SHRUNK.iter().filter(move |(t, c, _, _)| {
            *t == self.name && self.text.iter().any(|x| x.name.eq_ignore_ascii_case(c))
        })
    }

    /// Already as upstream's conversion leaves it.
    fn converted(&self) -> bool {
        self.collation == COLLATION
            && self.text.iter().all(|c| c.collation == COLLATION)
            && self.shrunk().all(|(_, c, _, n)| {
                self.text
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(c) && x.max_chars == Some(u64::from(*n)))
            })
    }

    fn online(&self) -> bool {
        self.int_pk.is_some() && self.engine.eq_ignore_ascii_case("InnoDB") && !self.pinned
    }

    fn latin1(&self) -> impl Iterator<Item = &TextColumn> {
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

async fn tables(c: &mut Conn) -> Result<Vec<Table>, DbError> {
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
fn meant(col: &TextColumn, expr: &str) -> String {
    match col.charset.as_str() {
        "latin1" => format!(
            "IF(CAST({expr} AS BINARY) REGEXP '{UTF8_RE}', CONVERT(CAST({expr} AS BINARY) USING utf8mb4), \
             CONVERT({expr} USING utf8mb4))"
        ),
        _ => format!("CONVERT({expr} USING utf8mb4)"),
    }
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

/// Step 1: what would not fit or would collide.
async fn check(c: &mut Conn, tables: &[Table], report: &mut Report) -> Result<(), DbError> {
    for t in tables.iter().filter(|t| !t.converted()) {
        let tq = quote_ident(&t.name);
        for (_, col, _, max) in t.shrunk() {
            let Some(tc) = t.text.iter().find(|x| x.name.eq_ignore_ascii_case(col)) else {
                continue;
            };
            let key = t
                .int_pk
                .as_deref()
                .map(quote_ident)
                .unwrap_or_else(|| "NULL".into());
            // More bytes than characters allowed is necessary for too
            // many characters; the exact count is the decoded one.
            let rows: Vec<(Value, Value)> = c
                .exec(
                    format!(
                        "SELECT {key}, CAST({c} AS BINARY) FROM {tq} WHERE LENGTH({c}) > ?",
                        c = quote_ident(&tc.name)
                    ),
                    (*max,),
                )
                .await?;
            for (k, v) in rows {
                let Some(b) = bytes_of(&v) else { continue };
                let chars = crate::charset::decode(&b).chars().count();
                if chars > *max as usize {
                    let row = match k {
                        Value::NULL => crate::charset::decode(&b).chars().take(40).collect(),
                        other => other.as_sql(true).trim_matches('\'').to_owned(),
                    };
                    report.too_long.push(TooLong {
                        table: t.name.clone(),
                        column: tc.name.clone(),
                        row,
                        chars,
                        max: *max,
                    });
                }
            }
        }
        // Unique indexes over text columns, compared as they will be.
        let idx: Vec<(String, String)> = c
            .exec(
                "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) \
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = ? AND NON_UNIQUE = 0 GROUP BY INDEX_NAME",
                (&t.name,),
            )
            .await?;
        for (index, cols) in idx {
            let cols: Vec<&str> = cols.split(',').collect();
            if !cols.iter().any(|c| {
                t.text
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(c) && x.collation != COLLATION)
            }) {
                continue;
            }
            // Only a value that is not ASCII can compare differently
            // afterwards: an index over ASCII text needs no sort.
            let non_ascii = cols
                .iter()
                .filter(|c| t.text.iter().any(|x| x.name.eq_ignore_ascii_case(c)))
                .map(|c| {
                    format!(
                        "CAST({} AS BINARY) REGEXP '[^\\\\x00-\\\\x7F]'",
                        quote_ident(c)
                    )
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let any: Option<i64> = c
                .query_first(format!("SELECT 1 FROM {tq} WHERE {non_ascii} LIMIT 1"))
                .await?;
            if any.is_none() {
                continue;
            }
            let exprs: Vec<String> = cols
                .iter()
                .map(
                    |c| match t.text.iter().find(|x| x.name.eq_ignore_ascii_case(c)) {
                        Some(tc) => format!("{} COLLATE {COLLATION}", meant(tc, &quote_ident(c))),
                        None => quote_ident(c),
                    },
                )
                .collect();
            let shown = cols
                .iter()
                .map(|c| format!("CAST({} AS BINARY)", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ' / ', ");
            let groups: Vec<Value> = c
                .query(format!(
                    "SELECT GROUP_CONCAT(CONCAT({shown}) SEPARATOR '\\n') FROM {tq} \
                     GROUP BY {} HAVING COUNT(*) > 1 LIMIT 100",
                    exprs.join(", ")
                ))
                .await?;
            for g in groups {
                let Some(b) = bytes_of(&g) else { continue };
                report.collisions.push(Collision {
                    table: t.name.clone(),
                    index: index.clone(),
                    values: b
                        .split(|&x| x == b'\n')
                        .map(|v| crate::charset::decode(v).into_owned())
                        .collect(),
                });
            }
        }
    }
    Ok(())
}

/// Step 2: values that are not UTF-8 become the UTF-8 of what they mean.
async fn repair(
    c: &mut Conn,
    t: &Table,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), DbError> {
    let tq = quote_ident(&t.name);
    let cols: Vec<&TextColumn> = t.latin1().collect();
    if cols.is_empty() {
        return Ok(());
    }
    // One pass over the table: the rows holding a value that is not
    // UTF-8 (few), with only those values.
    let bin = |c: &TextColumn| format!("CAST({} AS BINARY)", quote_ident(&c.name));
    let sel = cols
        .iter()
        .map(|c| format!("IF({b} REGEXP '{UTF8_RE}', NULL, {b})", b = bin(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let cond = cols
        .iter()
        .map(|c| format!("NOT ({} REGEXP '{UTF8_RE}')", bin(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let rows: Vec<mysql_async::Row> = c
        .query(format!("SELECT {sel} FROM {tq} WHERE {cond}"))
        .await?;
    let mut bad: Vec<std::collections::BTreeSet<Vec<u8>>> = vec![Default::default(); cols.len()];
    for r in rows {
        for (i, set) in bad.iter_mut().enumerate() {
            if let Some(Value::Bytes(b)) = r.as_ref(i) {
                set.insert(b.clone());
            }
        }
    }
    for (col, values) in cols.iter().zip(bad) {
        let cq = quote_ident(&col.name);
        let mut n = 0u64;
        for b in values {
            let fixed = crate::charset::decode(&b).into_owned().into_bytes();
            if dry_run {
                n += 1;
                continue;
            }
            // Compare-and-set on the exact stored bytes: a value changed
            // meanwhile is left to the next run.
            let r = c
                .exec_iter(
                    format!("UPDATE {tq} SET {cq} = ? WHERE {cq} = ? AND CAST({cq} AS BINARY) = ?"),
                    (fixed, b.clone(), b),
                )
                .await?;
            n += r.affected_rows();
            drop(r);
        }
        if n > 0 {
            report.repaired.push((t.name.clone(), col.name.clone(), n));
        }
    }
    Ok(())
}

/// The conversion of an empty table of `t`'s definition to what upstream's
/// leaves (CONVERT TO, then the shrunk columns).
async fn convert_definition(c: &mut Conn, name: &str, t: &Table) -> Result<(), DbError> {
    let q = quote_ident(name);
    c.query_drop(format!(
        "ALTER TABLE {q} CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION}"
    ))
    .await?;
    let mods: Vec<String> = t
        .shrunk()
        .map(|(_, col, def, _)| format!("MODIFY {} {def}", quote_ident(col)))
        .collect();
    if !mods.is_empty() {
        c.query_drop(format!("ALTER TABLE {q} {}", mods.join(", ")))
            .await?;
    }
    Ok(())
}

async fn drop_leftovers(c: &mut Conn, t: &Table, report: &mut Report) -> Result<(), DbError> {
    let shadow = format!("{SHADOW}{}", t.name);
    for ev in ["i", "u", "d"] {
        c.query_drop(format!(
            "DROP TRIGGER IF EXISTS {}",
            quote_ident(&format!("{shadow}_{ev}"))
        ))
        .await?;
    }
    for name in [shadow, format!("{OLD}{}", t.name)] {
        let there: Option<i64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = ?",
                (&name,),
            )
            .await?;
        if there.unwrap_or(0) > 0 {
            c.query_drop("SET SESSION foreign_key_checks = 0").await?;
            c.query_drop(format!("DROP TABLE {}", quote_ident(&name)))
                .await?;
            c.query_drop("SET SESSION foreign_key_checks = 1").await?;
            report.cleaned.push(name);
        }
    }
    Ok(())
}

/// Step 3 for one table, online: copy, triggers, batches, swap.
async fn convert_online(c: &mut Conn, t: &Table) -> Result<(), DbError> {
    let pk = t.int_pk.clone().unwrap_or_default();
    let tq = quote_ident(&t.name);
    let shadow = format!("{SHADOW}{}", t.name);
    let sq = quote_ident(&shadow);
    let pkq = quote_ident(&pk);
    c.query_drop(format!("CREATE TABLE {sq} LIKE {tq}")).await?;
    convert_definition(c, &shadow, t).await?;
    let all: Vec<String> = c
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&t.name,),
        )
        .await?;
    let list = all
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let values = |row: &str| -> String {
        all.iter()
            .map(|name| {
                let e = format!("{row}{}", quote_ident(name));
                match t.text.iter().find(|x| &x.name == name) {
                    Some(tc) => meant(tc, &e),
                    None => e,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sets = all
        .iter()
        .map(|name| {
            let e = format!("NEW.{}", quote_ident(name));
            let v = match t.text.iter().find(|x| &x.name == name) {
                Some(tc) => meant(tc, &e),
                None => e,
            };
            format!("{} = {v}", quote_ident(name))
        })
        .collect::<Vec<_>>()
        .join(", ");
    // The copy follows every write from now on, in the writer's own
    // transaction. A row not copied yet is updated by the batch that
    // copies it (its row lock orders the two).
    let trig = |ev: &str| quote_ident(&format!("{shadow}_{ev}"));
    c.query_drop(format!(
        "CREATE TRIGGER {} AFTER INSERT ON {tq} FOR EACH ROW \
         INSERT INTO {sq} ({list}) VALUES ({})",
        trig("i"),
        values("NEW.")
    ))
    .await?;
    c.query_drop(format!(
        "CREATE TRIGGER {} AFTER UPDATE ON {tq} FOR EACH ROW \
         UPDATE {sq} SET {sets} WHERE {pkq} = OLD.{pkq}",
        trig("u")
    ))
    .await?;
    c.query_drop(format!(
        "CREATE TRIGGER {} AFTER DELETE ON {tq} FOR EACH ROW \
         DELETE FROM {sq} WHERE {pkq} = OLD.{pkq}",
        trig("d")
    ))
    .await?;
    // Batches in key order; the source rows are share-locked while each
    // batch copies them, so a delete or update waits for it (and its
    // trigger then sees the copied row).
    // Rows beyond the key at the start are the triggers' alone; the
    // batches never lock the open end where writers insert.
    let max: Option<Option<i64>> = c
        .query_first(format!("SELECT MAX({pkq}) FROM {tq}"))
        .await?;
    let Some(max) = max.flatten() else {
        return swap(c, t, &shadow).await;
    };
    // Record locks only (no gap locks): a batch then waits for, or
    // holds up, writers of its own rows only.
    let row_binlog: Option<String> = c
        .query_first("SELECT IF(@@log_bin = 0 OR @@binlog_format <> 'STATEMENT', 'yes', NULL)")
        .await?;
    if row_binlog.is_some() {
        c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await?;
    }
    let mut lo: Option<i64> = None;
    let mut batch = BATCH_START;
    loop {
        let hi: Option<i64> = match lo {
            None => {
                c.query_first(format!(
                    "SELECT {pkq} FROM {tq} ORDER BY {pkq} LIMIT 1 OFFSET {}",
                    batch - 1
                ))
                .await?
            }
            Some(l) => {
                c.exec_first(
                    format!(
                        "SELECT {pkq} FROM {tq} WHERE {pkq} > ? ORDER BY {pkq} LIMIT 1 OFFSET {}",
                        batch - 1
                    ),
                    (l,),
                )
                .await?
            }
        };
        let hi = hi.filter(|h| *h < max);
        let top = hi.unwrap_or(max);
        let range = match lo {
            None => format!("{pkq} <= {top}"),
            Some(l) => format!("{pkq} > {l} AND {pkq} <= {top}"),
        };
        let mut tries = 0;
        let started = Instant::now();
        loop {
            let r = c
                .query_drop(format!(
                    "INSERT IGNORE INTO {sq} ({list}) SELECT {} FROM {tq} WHERE {range} LOCK IN SHARE MODE",
                    values("")
                ))
                .await;
            match r {
                Ok(()) => break,
                // A deadlock with a writer's trigger: go again.
                Err(mysql_async::Error::Server(e))
                    if (e.code == 1213 || e.code == 1205) && tries < 20 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let took = started.elapsed();
        if took < BATCH_TIME / 2 {
            batch = (batch * 2).min(BATCH_MAX);
        } else if took > BATCH_TIME {
            batch = (batch / 2).max(BATCH_MIN);
        }
        match hi {
            Some(h) => lo = Some(h),
            None => break,
        }
    }
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    swap(c, t, &shadow).await
}

/// Check the copy, swap it in, drop the old table, put the foreign keys
/// back.
async fn swap(c: &mut Conn, t: &Table, shadow: &str) -> Result<(), DbError> {
    let tq = quote_ident(&t.name);
    let sq = quote_ident(shadow);
    // Both tables hold the same rows (one snapshot of both): INSERT
    // IGNORE skipped nothing but rows the triggers had copied.
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let a: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {tq}")).await?;
    let b: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {sq}")).await?;
    c.query_drop("COMMIT").await?;
    if a != b {
        return Err(DbError::Schema(format!(
            "{}: the converted copy holds {} rows, the table {}: left unconverted (run again)",
            t.name,
            b.unwrap_or(0),
            a.unwrap_or(0)
        )));
    }
    // The swap: writers wait for this rename only. Give up quickly when a
    // long transaction holds the table (everyone would queue behind us).
    let old = format!("{OLD}{}", t.name);
    c.query_drop("SET SESSION lock_wait_timeout = 2").await?;
    let mut tries = 0;
    loop {
        match c
            .query_drop(format!(
                "RENAME TABLE {tq} TO {}, {sq} TO {tq}",
                quote_ident(&old)
            ))
            .await
        {
            Ok(()) => break,
            // 1205: a long transaction holds the table; 1213: the rename
            // lost a metadata-lock deadlock. Either way nothing changed.
            Err(mysql_async::Error::Server(e))
                if (e.code == 1205 || e.code == 1213) && tries < 30 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    c.query_drop("SET SESSION lock_wait_timeout = DEFAULT")
        .await?;
    // Dropping the old table drops its triggers and frees its foreign
    // keys' names for the converted table.
    c.query_drop("SET SESSION foreign_key_checks = 0").await?;
    c.query_drop(format!("DROP TABLE {}", quote_ident(&old)))
        .await?;
    for (_, add) in &t.foreign_keys {
        c.query_drop(format!("ALTER TABLE {tq} {add}")).await?;
    }
    c.query_drop("SET SESSION foreign_key_checks = 1").await?;
    Ok(())
}

/// Step 3 for one table, with ALTER TABLE (small or pinned tables):
/// CONVERT TO as upstream does (which reads each stored byte as a latin1
/// character), then each value put back to the characters its bytes
/// meant, then the shrunk columns. A marker row in `_utf8mb4_pending`
/// lives from before the first statement to after the last, so a run
/// interrupted in between finishes the table instead of taking it as
/// converted.
async fn convert_alter(c: &mut Conn, t: &Table) -> Result<(), DbError> {
    let tq = quote_ident(&t.name);
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {PENDING} (table_name VARCHAR(64) NOT NULL, \
         column_name VARCHAR(64) NOT NULL, PRIMARY KEY (table_name, column_name)) ENGINE=InnoDB"
    ))
    .await?;
    for col in t.latin1() {
        c.exec_drop(
            format!("INSERT IGNORE INTO {PENDING} VALUES (?, ?)"),
            (&t.name, &col.name),
        )
        .await?;
    }
    c.query_drop(format!(
        "ALTER TABLE {tq} CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION}"
    ))
    .await?;
    finish_pending(c, &t.name).await?;
    convert_definition(c, &t.name, t).await
}

/// Put back the bytes of every column CONVERT TO read as latin1 (see
/// `convert_alter`), then forget the marker.
async fn finish_pending(c: &mut Conn, table: &str) -> Result<(), DbError> {
    let there: Option<i64> = c
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = '{PENDING}'"
        ))
        .await?;
    if there.unwrap_or(0) == 0 {
        return Ok(());
    }
    let cols: Vec<String> = c
        .exec(
            format!("SELECT column_name FROM {PENDING} WHERE table_name = ?"),
            (table,),
        )
        .await?;
    let tq = quote_ident(table);
    for col in &cols {
        let q = quote_ident(col);
        // The latin1 reading is exact (every byte has its character), so
        // going back gives the stored bytes; they are UTF-8 after the
        // repair step (a value that is not stays as read).
        let bytes = format!("CAST(CONVERT({q} USING latin1) AS BINARY)");
        c.query_drop(format!(
            "UPDATE {tq} SET {q} = CONVERT({bytes} USING utf8mb4) \
             WHERE CAST({q} AS BINARY) REGEXP '[^\\\\x00-\\\\x7F]' \
               AND CAST(CONVERT(CONVERT({q} USING latin1) USING utf8mb4) AS BINARY) = CAST({q} AS BINARY) \
               AND {bytes} REGEXP '{UTF8_RE}'"
        ))
        .await?;
        c.exec_drop(
            format!("DELETE FROM {PENDING} WHERE table_name = ? AND column_name = ?"),
            (table, col),
        )
        .await?;
    }
    let left: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM {PENDING}"))
        .await?;
    if left.unwrap_or(0) == 0 {
        c.query_drop(format!("DROP TABLE {PENDING}")).await?;
    }
    Ok(())
}

/// Run the conversion (or, with `dry_run`, only report what it would do).
pub async fn convert(
    c: &mut Conn,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<Report, DbError> {
    let mut report = Report::default();
    // The bytes as stored, both ways.
    c.query_drop("SET NAMES binary").await?;
    let all = tables(c).await?;
    if !dry_run {
        // An interrupted ALTER conversion first.
        for t in &all {
            finish_pending(c, &t.name).await?;
        }
    }
    progress.step("checking lengths and unique values");
    check(c, &all, &mut report).await?;
    if report.blocked() {
        return Ok(report);
    }
    for t in &all {
        if t.converted() {
            report.already.push(t.name.clone());
            continue;
        }
        let method = if t.online() {
            Method::Online
        } else {
            Method::Alter
        };
        progress.step(&format!("repairing {}", t.name));
        repair(c, t, dry_run, &mut report).await?;
        if dry_run {
            report.would_convert.push((t.name.clone(), method));
            continue;
        }
        progress.step(&format!("converting {}", t.name));
        drop_leftovers(c, t, &mut report).await?;
        let start = Instant::now();
        match method {
            Method::Online => convert_online(c, t).await?,
            Method::Alter => convert_alter(c, t).await?,
        }
        report
            .converted
            .push((t.name.clone(), method, start.elapsed()));
    }
    if !dry_run {
        // Whatever an interrupted run took away (a foreign key between
        // the swap and its re-creation) is put back.
        c.query_drop("SET NAMES utf8mb4").await?;
        crate::schema::upgrade(c).await?;
    }
    Ok(report)
}
