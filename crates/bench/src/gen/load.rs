//! How the rows get in: batched multi-row INSERTs ([`Inserter`]) and, into
//! empty tables, secondary indexes dropped before the load and built after
//! it.

use mysql_async::prelude::*;
use mysql_async::Conn;

use boinc_db::ident::quote_ident;
use boinc_db::DbSettings;

/// The tables the parallel streams fill.
pub(super) const BULK_TABLES: &[&str] = &[
    "user",
    "user_deleted",
    "host",
    "host_deleted",
    "consent",
    "badge_user",
    "badge_team",
    "credit_user",
    "credit_team",
];

/// A secondary index dropped for the load: table and the `ADD ...` clause
/// that puts it back as it was.
pub(super) type Deferred = (String, String);

/// Drops the secondary indexes of `tables` (those a foreign key needs
/// stay) and returns how to put them back.
pub(super) async fn defer_indexes(
    conn: &mut Conn,
    tables: &[&str],
) -> Result<Vec<Deferred>, mysql_async::Error> {
    let mut out = Vec::new();
    for &t in tables {
        // (index, unique, type, column, prefix length), in column order.
        let rows: Vec<(String, i64, String, String, Option<i64>)> = conn
            .exec(
                "SELECT INDEX_NAME, NON_UNIQUE, INDEX_TYPE, COLUMN_NAME, SUB_PART                  FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()                  AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (t,),
            )
            .await?;
        let mut indexes: Vec<(String, String, Vec<String>)> = Vec::new();
        for (name, non_unique, kind, col, sub) in rows {
            let col = match sub {
                Some(n) => format!("{}({n})", quote_ident(&col)),
                None => quote_ident(&col),
            };
            match indexes.last_mut() {
                Some((n, _, cols)) if *n == name => cols.push(col),
                _ => {
                    let kind = match (kind.as_str(), non_unique) {
                        ("FULLTEXT", _) => "FULLTEXT INDEX",
                        (_, 0) => "UNIQUE INDEX",
                        _ => "INDEX",
                    };
                    indexes.push((name, kind.to_owned(), vec![col]));
                }
            }
        }
        for (name, kind, cols) in indexes {
            match conn
                .query_drop(format!(
                    "ALTER TABLE {} DROP INDEX {}",
                    quote_ident(t),
                    quote_ident(&name)
                ))
                .await
            {
                Ok(()) => out.push((
                    t.to_owned(),
                    format!("ADD {kind} {} ({})", quote_ident(&name), cols.join(", ")),
                )),
                // 1553: a foreign key needs it; it stays.
                Err(mysql_async::Error::Server(e)) if e.code == 1553 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Puts the deferred indexes back: one ALTER per table, two tables at a
/// time (each build is mostly one thread sorting).
pub(super) async fn restore_indexes(
    settings: &DbSettings,
    deferred: &[Deferred],
) -> Result<(), mysql_async::Error> {
    let mut tables: Vec<&str> = deferred.iter().map(|(t, _)| t.as_str()).collect();
    tables.dedup();
    let next = std::sync::Mutex::new(tables.into_iter());
    let worker = || async {
        let mut conn = Conn::new(settings.opts()).await?;
        loop {
            let Some(t) = next.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                break;
            };
            let adds: Vec<&str> = deferred
                .iter()
                .filter(|(x, _)| x == t)
                .map(|(_, a)| a.as_str())
                .collect();
            conn.query_drop(format!(
                "ALTER TABLE {} {}",
                quote_ident(t),
                adds.join(", ")
            ))
            .await?;
        }
        let _ = conn.disconnect().await;
        Ok::<(), mysql_async::Error>(())
    };
    tokio::try_join!(worker(), worker())?;
    Ok(())
}

/// Collects VALUES tuples and sends one multi-row INSERT per batch, in
/// transactions of many statements (far fewer log flushes).
pub(super) struct Inserter {
    conn: Conn,
    head: String,
    sql: String,
    rows: usize,
    per: usize,
    stmts: usize,
}

impl Inserter {
    pub(super) async fn new(
        settings: &DbSettings,
        head: &str,
        per: usize,
    ) -> Result<Self, mysql_async::Error> {
        let mut conn = Conn::new(settings.opts()).await?;
        conn.query_drop("SET SESSION unique_checks = 0, SESSION foreign_key_checks = 0")
            .await?;
        conn.query_drop("START TRANSACTION").await?;
        Ok(Self {
            conn,
            head: head.to_owned(),
            sql: String::new(),
            rows: 0,
            per,
            stmts: 0,
        })
    }

    pub(super) async fn row(&mut self, values: &str) -> Result<(), mysql_async::Error> {
        if self.rows == 0 {
            self.sql.clear();
            self.sql.push_str(&self.head);
            self.sql.push_str(" VALUES ");
        } else {
            self.sql.push(',');
        }
        self.sql.push('(');
        self.sql.push_str(values);
        self.sql.push(')');
        self.rows += 1;
        if self.rows >= self.per {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), mysql_async::Error> {
        if self.rows > 0 {
            self.conn.query_drop(&self.sql).await?;
            self.rows = 0;
            self.stmts += 1;
            if self.stmts.is_multiple_of(50) {
                self.conn.query_drop("COMMIT").await?;
                self.conn.query_drop("START TRANSACTION").await?;
            }
        }
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<(), mysql_async::Error> {
        self.flush().await?;
        self.conn.query_drop("COMMIT").await?;
        let _ = self.conn.disconnect().await;
        Ok(())
    }
}
