//! Step 3 online: a converted copy kept current by triggers, filled in
//! batches, swapped in by one RENAME TABLE.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::ident::quote_ident;
use crate::DbError;

use super::alter::convert_definition;
use super::table::*;

pub(super) async fn drop_leftovers(
    c: &mut Conn,
    t: &Table,
    report: &mut Report,
) -> Result<(), DbError> {
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
pub(super) async fn convert_online(c: &mut Conn, t: &Table) -> Result<(), DbError> {
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
