//! What the database holds about one person, for an access request (GDPR
//! Art. 15/20), and finding the account an admin means.
//!
//! [`parts::PARTS`] names every upstream BOINC table that holds data about
//! a person and how its rows are tied to them; [`read_parts`] reads each one
//! that exists in this database, with the columns it has (older and newer
//! BOINC schemas differ), leaving out only credentials. Consent history and
//! terms texts come from `terms`, the admin trail from `audit`.

use mysql_async::prelude::*;
use mysql_async::Value;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::DbError;

pub mod parts;

pub use parts::{PartSpec, PARTS};

/// Accounts an admin may be looking for: exact id, exact email (after
/// ASCII lower-casing, as everywhere) or exact name, byte for byte.
#[derive(Debug, Clone, PartialEq, serde::Serialize, FromRow)]
pub struct Found {
    pub id: i64,
    pub name: Option<String>,
    pub email_addr: String,
    pub create_time: i64,
    pub deleted: bool,
}

fn found_columns() -> String {
    format!(
        "id, name, email_addr, create_time, COALESCE({}, 0) AS deleted",
        crate::models::deleted_sql("authenticator")
    )
}

pub async fn find_by_id<Q: Queryable>(q: &mut Q, id: i64) -> Result<Vec<Found>, DbError> {
    Ok(q.exec(
        format!("SELECT {} FROM user WHERE id = ?", found_columns()),
        (id,),
    )
    .await?)
}

pub async fn find_by_email<Q: Queryable>(q: &mut Q, email: &str) -> Result<Vec<Found>, DbError> {
    let email = crate::queries::normalise_email(email);
    let rows: Vec<Found> = q
        .exec(
            format!(
                "SELECT {} FROM user WHERE email_addr = ? ORDER BY id",
                found_columns()
            ),
            (&email,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|f| crate::queries::same_email(&f.email_addr, &email))
        .collect())
}

pub async fn find_by_name<Q: Queryable>(q: &mut Q, name: &str) -> Result<Vec<Found>, DbError> {
    let rows: Vec<Found> = q
        .exec(
            format!(
                "SELECT {} FROM user WHERE name = ? ORDER BY id",
                found_columns()
            ),
            (name,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter(|f| f.name.as_deref() == Some(name))
        .collect())
}

/// Does the current database have this base table? For BOINC's tables
/// this project's schema does not create (forum, messages, ...).
pub async fn table_exists<Q: Queryable>(q: &mut Q, table: &str) -> Result<bool, DbError> {
    let n: Option<i64> = q
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'",
            (table,),
        )
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

/// Base tables of the current database.
pub async fn existing_tables<Q: Queryable>(q: &mut Q) -> Result<Vec<String>, DbError> {
    Ok(q.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
    )
    .await?)
}

/// One stored value, as the export shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Text and blobs (see `charset::decode`), dates as `YYYY-MM-DD hh:mm:ss`.
    Text(String),
}

impl From<Value> for Cell {
    fn from(v: Value) -> Self {
        match v {
            Value::NULL => Cell::Null,
            Value::Int(i) => Cell::Int(i),
            Value::UInt(u) => Cell::UInt(u),
            Value::Float(f) => Cell::Float(f64::from(f)),
            Value::Double(d) => Cell::Float(d),
            Value::Bytes(b) => Cell::Text(crate::text::charset::decode(&b).into_owned()),
            Value::Date(y, mo, d, h, mi, s, us) => Cell::Text(if us == 0 {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
            }),
            Value::Time(neg, d, h, mi, s, us) => {
                let sign = if neg { "-" } else { "" };
                let h = u64::from(d) * 24 + u64::from(h);
                Cell::Text(format!("{sign}{h:02}:{mi:02}:{s:02}.{us:06}"))
            }
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Int(i) => s.serialize_i64(*i),
            Cell::UInt(u) => s.serialize_u64(*u),
            Cell::Float(f) => s.serialize_f64(*f),
            Cell::Text(t) => s.serialize_str(t),
        }
    }
}

/// One row: its columns in the table's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<(String, Cell)>);

impl Row {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.0.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The rows one table holds about the person.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePart {
    pub spec: &'static PartSpec,
    pub rows: Vec<Row>,
}

/// Every part of [`PARTS`] whose tables exist here, in that order, read on
/// `q` (the caller's snapshot). The first is always the account's own row
/// (empty when there is no such account).
pub async fn read_parts<Q: Queryable>(q: &mut Q, userid: i64) -> Result<Vec<TablePart>, DbError> {
    let present = existing_tables(q).await?;
    let has = |t: &str| present.iter().any(|p| p == t);
    let mut out = Vec::with_capacity(PARTS.len());
    for spec in PARTS {
        if !has(spec.table) || !spec.needs.iter().all(|t| has(t)) {
            continue;
        }
        let rows = read_part(q, spec, userid).await?;
        out.push(TablePart { spec, rows });
    }
    Ok(out)
}

/// Columns of `table` in their order, without the ones `omit` names.
async fn columns<Q: Queryable>(
    q: &mut Q,
    table: &str,
    omit: &[&str],
) -> Result<Vec<String>, DbError> {
    let all: Vec<String> = q
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await?;
    Ok(all
        .into_iter()
        .filter(|c| !omit.iter().any(|o| o.eq_ignore_ascii_case(c)))
        .collect())
}

async fn read_part<Q: Queryable>(
    q: &mut Q,
    spec: &PartSpec,
    userid: i64,
) -> Result<Vec<Row>, DbError> {
    let cols = columns(q, spec.table, spec.omit).await?;
    let list: Vec<String> = cols.iter().map(|c| crate::ident::quote_ident(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {}",
        list.join(", "),
        crate::ident::quote_ident(spec.table),
        spec.rows,
        spec.order
    );
    let params: Vec<Value> = vec![userid.into(); spec.rows.matches('?').count()];
    let raw: Vec<mysql_async::Row> = q.exec(sql, params).await?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let values = r.unwrap();
            Row(cols
                .iter()
                .cloned()
                .zip(values.into_iter().map(Cell::from))
                .collect())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_the_stored_value() {
        assert_eq!(Cell::from(Value::NULL), Cell::Null);
        assert_eq!(Cell::from(Value::Int(-3)), Cell::Int(-3));
        assert_eq!(Cell::from(Value::Double(2.5)), Cell::Float(2.5));
        assert_eq!(
            Cell::from(Value::Bytes(b"J\xF6rg".to_vec())),
            Cell::Text("Jörg".into())
        );
        assert_eq!(
            Cell::from(Value::Date(2023, 1, 2, 3, 4, 5, 0)),
            Cell::Text("2023-01-02 03:04:05".into())
        );
    }

    #[test]
    fn every_part_binds_only_the_person() {
        for p in PARTS {
            assert!(
                p.rows.contains('?'),
                "{}: rows not tied to the person",
                p.part
            );
            assert!(!p.order.is_empty(), "{}", p.part);
        }
        let mut names: Vec<&str> = PARTS.iter().map(|p| p.part).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PARTS.len(), "part names are unique");
        assert_eq!(PARTS[0].table, "user", "the account comes first");
    }
}
