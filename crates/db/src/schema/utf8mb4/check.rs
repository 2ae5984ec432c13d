//! Steps 1 and 2: what would not fit or would collide, and the repair of
//! values that are not UTF-8.

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

use crate::ident::quote_ident;
use crate::DbError;

use super::table::*;

/// Step 1: what would not fit or would collide.
pub(super) async fn check(
    c: &mut Conn,
    tables: &[Table],
    report: &mut Report,
) -> Result<(), DbError> {
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
                let chars = crate::text::charset::decode(&b).chars().count();
                if chars > *max as usize {
                    let row = match k {
                        Value::NULL => crate::text::charset::decode(&b).chars().take(40).collect(),
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
                        .map(|v| crate::text::charset::decode(v).into_owned())
                        .collect(),
                });
            }
        }
    }
    Ok(())
}

/// Step 2: values that are not UTF-8 become the UTF-8 of what they mean.
pub(super) async fn repair(
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
            let fixed = crate::text::charset::decode(&b).into_owned().into_bytes();
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
