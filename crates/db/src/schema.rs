//! The schema tool: create a database from scratch, or bring an existing
//! BOINC database up to what this project needs, without touching data.
//! Both run the same three files from `sql/`; running either twice changes
//! nothing.

pub mod predefined;
pub mod shape;
pub mod utf8mb4;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::config::DbSettings;
use crate::DbError;
use predefined::{Dangling, Restored};
use shape::Shape;

pub const SCHEMA_SQL: &str = include_str!("../../../sql/schema.sql");
pub const CONSTRAINTS_SQL: &str = include_str!("../../../sql/constraints.sql");
pub const CONTENT_SQL: &str = include_str!("../../../sql/content.sql");

/// What an init/upgrade did, for the operator.
#[derive(Debug, Default)]
pub struct Report {
    pub created_database: bool,
    pub applied: Vec<String>,
    pub already_present: usize,
    /// Predefined consent types an existing `consent_type` table had lost
    /// (e.g. to TRUNCATE), recreated by this run.
    pub restored_types: Vec<Restored>,
    /// Predefined consent types an existing table never had (no trace of
    /// a loss), added by this run as a fresh install adds them.
    pub added_types: Vec<&'static str>,
    /// Consent rows that point at no consent type, per missing id.
    pub dangling_consents: Vec<Dangling>,
    /// Indexes left as the database's release made them (non-unique where
    /// master's schema is unique, see `shape`): "table index".
    pub kept_release_indexes: Vec<String>,
    /// Which upstream release line the tables look like (`Shape::release`).
    pub release: &'static str,
}

impl Report {
    /// The consent data needs the operator's attention: types had to be
    /// recreated, or consent rows point at nothing.
    pub fn needs_attention(&self) -> bool {
        !self.restored_types.is_empty() || !self.dangling_consents.is_empty()
    }

    /// The warning for the operator, one line each; empty when all is well.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for r in &self.restored_types {
            w.push(if r.from_audit {
                format!(
                    "consent type {} was MISSING (table emptied, e.g. by TRUNCATE); recreated \
                     with its old id {} and flags from the audit trail (enabled {}, \
                     privacypref {})",
                    r.shortname,
                    r.id,
                    u8::from(r.enabled),
                    u8::from(r.privacypref)
                )
            } else {
                format!(
                    "consent type {} was MISSING (table emptied, e.g. by TRUNCATE); recreated \
                     as id {}, DISABLED (no audit record of its old id): check it and enable \
                     it again if it was enabled",
                    r.shortname, r.id
                )
            });
        }
        for d in &self.dangling_consents {
            w.push(format!(
                "{} consent row(s) point at consent type id {}, which does not exist{}: \
                 recreate that type with this id (INSERT INTO consent_type (id, ...)) \
                 before adding new types",
                d.rows,
                d.consent_type_id,
                match &d.audit_name {
                    Some(n) => format!(" (the audit trail last named it {n:?})"),
                    None => String::new(),
                }
            ));
        }
        w
    }
}

/// Create the database if it does not exist, then upgrade it.
pub async fn init(settings: &DbSettings) -> Result<Report, DbError> {
    let mut server = Conn::new(settings.server_opts()).await?;
    let exists: Option<String> = server
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (&settings.name,),
        )
        .await?;
    if exists.is_none() {
        server
            .query_drop(format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                crate::ident::quote_ident(&settings.name)
            ))
            .await?;
    }
    server.disconnect().await?;
    let mut conn = Conn::new(settings.opts()).await?;
    let mut report = upgrade(&mut conn).await?;
    report.created_database = exists.is_none();
    conn.disconnect().await?;
    Ok(report)
}

/// Add whatever is missing (tables, view, indexes, guards, predefined
/// consent types) to the database `conn` is connected to.
pub async fn upgrade(conn: &mut Conn) -> Result<Report, DbError> {
    let mut report = Report::default();
    // A table made by this run is filled by content.sql as usual; one that
    // existed and lacks a predefined type has lost it (see `predefined`).
    let had_consent_types: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'consent_type'",
        )
        .await?;
    let had_consent_types = had_consent_types.unwrap_or(0) > 0;
    for stmt in statements(SCHEMA_SQL) {
        conn.query_drop(stmt).await?;
    }
    let shape = Shape::probe(conn).await?;
    report.release = shape.release();
    for stmt in statements(CONSTRAINTS_SQL) {
        let c = Constraint::parse(&stmt)
            .ok_or_else(|| DbError::Schema(format!("unrecognised constraint: {stmt}")))?;
        match c.exists(conn, &shape).await? {
            Presence::Present => {
                report.already_present += 1;
                continue;
            }
            Presence::KeptAsRelease => {
                report
                    .kept_release_indexes
                    .push(format!("{} {}", c.table, c.name));
                continue;
            }
            Presence::Missing => {}
        }
        conn.query_drop(&stmt).await.map_err(|e| {
            DbError::Schema(format!(
                "cannot add {} on {}: {e}{}",
                c.name,
                c.table,
                if matches!(c.kind, Kind::Unique(_)) {
                    " (the table has duplicate values: resolve them, then run the upgrade again)"
                } else {
                    ""
                }
            ))
        })?;
        report.applied.push(format!("{} {}", c.table, c.name));
    }
    if had_consent_types {
        let missing = predefined::restore_missing(conn).await?;
        report.restored_types = missing.restored;
        for name in missing.added {
            report.added_types.push(name);
            report.applied.push(format!(
                "consent_type {name} (added: the table never had it)"
            ));
        }
    }
    for stmt in statements(CONTENT_SQL) {
        conn.query_drop(stmt).await?;
    }
    report.dangling_consents = predefined::dangling_consent_rows(conn).await?;
    Ok(report)
}

/// Split a SQL file into statements: `;` at the end of a line ends one;
/// `--` comment lines are dropped.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            let s = cur.trim().trim_end_matches(';').to_owned();
            out.push(s);
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

#[derive(Debug, PartialEq)]
enum Kind {
    Unique(Vec<String>),
    Index(Vec<String>),
    ForeignKey { column: String, ref_table: String },
    Trigger { timing: String, event: String },
}

/// Whether a constraint of `constraints.sql` is in the database.
#[derive(Debug, PartialEq)]
enum Presence {
    /// Under any name.
    Present,
    /// Not, but the release's own non-unique index on those columns is,
    /// and stays (the data may hold duplicates; see `Shape`).
    KeptAsRelease,
    Missing,
}

#[derive(Debug)]
struct Constraint {
    table: String,
    name: String,
    kind: Kind,
}

impl Constraint {
    fn parse(stmt: &str) -> Option<Self> {
        let lower = stmt.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let cols = |s: &str| -> Option<Vec<String>> {
            let open = s.find('(')?;
            let close = s[open..].find(')')? + open;
            Some(
                s[open + 1..close]
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .collect(),
            )
        };
        match words.as_slice() {
            ["alter", "table", table, "add", "unique", name, ..] => Some(Self {
                table: table.to_string(),
                name: name.to_string(),
                kind: Kind::Unique(cols(&lower)?),
            }),
            ["alter", "table", table, "add", "index", name, ..] => Some(Self {
                table: table.to_string(),
                name: name.to_string(),
                kind: Kind::Index(cols(&lower)?),
            }),
            ["alter", "table", table, "add", "constraint", name, "foreign", "key", ..] => {
                let c = cols(&lower)?;
                let after = &lower[lower.find("references")? + "references".len()..];
                let ref_table = after.split_whitespace().next()?.to_owned();
                Some(Self {
                    table: table.to_string(),
                    name: name.to_string(),
                    kind: Kind::ForeignKey {
                        column: c.first()?.clone(),
                        ref_table,
                    },
                })
            }
            ["create", "trigger", name, timing, event, "on", table, ..] => Some(Self {
                table: table.to_string(),
                name: name.to_string(),
                kind: Kind::Trigger {
                    timing: timing.to_string(),
                    event: event.to_string(),
                },
            }),
            _ => None,
        }
    }

    /// Does an equivalent constraint exist, under any name?
    async fn exists(&self, conn: &mut Conn, shape: &Shape) -> Result<Presence, DbError> {
        match &self.kind {
            Kind::Unique(cols) | Kind::Index(cols) => {
                let unique_required = matches!(self.kind, Kind::Unique(_));
                let rows: Vec<(String, i64, String)> = conn
                    .exec(
                        "SELECT INDEX_NAME, NON_UNIQUE, LOWER(COLUMN_NAME) \
                         FROM information_schema.STATISTICS \
                         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
                         ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                        (&self.table,),
                    )
                    .await?;
                let mut indexes: Vec<(String, bool, Vec<String>)> = Vec::new();
                for (name, non_unique, col) in rows {
                    match indexes.last_mut() {
                        Some((n, _, c)) if *n == name => c.push(col),
                        _ => indexes.push((name, non_unique == 0, vec![col])),
                    }
                }
                if indexes.iter().any(|(_, unique, c)| {
                    // A unique index or the primary key also serves a plain index.
                    c == cols && (*unique || !unique_required)
                }) {
                    return Ok(Presence::Present);
                }
                let plain = indexes.iter().any(|(_, _, c)| c == cols);
                Ok(
                    if unique_required && shape.keeps_release_index(&self.table, cols, plain) {
                        Presence::KeptAsRelease
                    } else {
                        Presence::Missing
                    },
                )
            }
            Kind::ForeignKey { column, ref_table } => {
                let n: Option<i64> = conn
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE \
                         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
                           AND COLUMN_NAME = ? AND REFERENCED_TABLE_NAME = ?",
                        (&self.table, column, ref_table),
                    )
                    .await?;
                Ok(presence(n))
            }
            Kind::Trigger { timing, event } => {
                let n: Option<i64> = conn
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.TRIGGERS \
                         WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? \
                           AND ACTION_TIMING = ? AND EVENT_MANIPULATION = ? \
                           AND TRIGGER_NAME = ?",
                        (
                            &self.table,
                            timing.to_ascii_uppercase(),
                            event.to_ascii_uppercase(),
                            &self.name,
                        ),
                    )
                    .await?;
                Ok(presence(n))
            }
        }
    }
}

fn presence(count: Option<i64>) -> Presence {
    if count.unwrap_or(0) > 0 {
        Presence::Present
    } else {
        Presence::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_statement_parses() {
        let stmts = statements(CONSTRAINTS_SQL);
        assert!(stmts.len() > 20);
        for s in &stmts {
            assert!(Constraint::parse(s).is_some(), "cannot parse: {s}");
        }
        let fk = stmts.iter().find(|s| s.contains("foreign key")).unwrap();
        let c = Constraint::parse(fk).unwrap();
        assert_eq!(
            c.kind,
            Kind::ForeignKey {
                column: "consent_type_id".into(),
                ref_table: "consent_type".into()
            }
        );
        let tr = stmts
            .iter()
            .find(|s| s.starts_with("create trigger"))
            .unwrap();
        let c = Constraint::parse(tr).unwrap();
        assert_eq!(c.table, "consent_type");
    }

    #[test]
    fn statements_split_on_line_end_semicolons() {
        let s = statements("-- c\ncreate table a (x int);\n\ninsert into a\n values (1);\n");
        assert_eq!(
            s,
            vec!["create table a (x int)", "insert into a\n values (1)"]
        );
    }
}
