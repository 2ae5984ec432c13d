//! What a test database holds, read back so that two reads compare equal:
//! its tables, and each table's rows as text.

use mysql_async::prelude::*;

/// The base tables (not views) of the connection's database, by name.
pub async fn base_tables(c: &mut mysql_async::Conn) -> Vec<String> {
    c.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .await
    .expect("list base tables")
}

/// Every row of `table`, each as its values' SQL text (whole values: a
/// row's Debug text shortens long ones), sorted.
pub async fn table_rows(c: &mut mysql_async::Conn, table: &str) -> Vec<String> {
    let rows: Vec<mysql_async::Row> = c
        .query(format!(
            "SELECT * FROM {}",
            crate::ident::quote_ident(table)
        ))
        .await
        .unwrap_or_else(|e| panic!("rows of {table}: {e}"));
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|v| v.as_sql(false))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    out.sort();
    out
}
