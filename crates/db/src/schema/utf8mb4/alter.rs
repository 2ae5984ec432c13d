//! Step 3 by ALTER TABLE (small or pinned tables), and the definition
//! both ways end with.

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::ident::quote_ident;
use crate::DbError;

use super::table::*;

/// The conversion of an empty table of `t`'s definition to what upstream's
/// leaves (CONVERT TO, then the shrunk columns).
pub(super) async fn convert_definition(c: &mut Conn, name: &str, t: &Table) -> Result<(), DbError> {
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

/// Step 3 for one table, with ALTER TABLE (small or pinned tables):
/// CONVERT TO as upstream does (which reads each stored byte as a latin1
/// character), then each value put back to the characters its bytes
/// meant, then the shrunk columns. A marker row in `_utf8mb4_pending`
/// lives from before the first statement to after the last, so a run
/// interrupted in between finishes the table instead of taking it as
/// converted.
pub(super) async fn convert_alter(c: &mut Conn, t: &Table) -> Result<(), DbError> {
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
pub(super) async fn finish_pending(c: &mut Conn, table: &str) -> Result<(), DbError> {
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
