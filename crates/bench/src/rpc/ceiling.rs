//! What MariaDB manages without HTTP: am_set_info's statements at 16
//! connections, and mariadb-slap's single-row commits.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use boinc_db::consent::{self, NewConsent};
use boinc_db::queries;
use boinc_db::testing::TestDb;
use mysql_async::prelude::*;
use mysql_async::TxOpts;

use super::Bench;
use crate::load;

/// am_set_info's statements for a consent flip, today's and before.
pub async fn ceiling(b: &Bench<'_>) -> anyhow::Result<()> {
    let (db, keys, secs) = (b.db, &b.keys, b.secs);
    // am_set_info's statements for a consent flip, 16 connections, no
    // HTTP: today's sequence and, in the same run, the one it replaced.
    for before in [false, true] {
        let tx_per_s = statement_ceiling(db, keys, secs, before).await?;
        let what = if before {
            "before: lookup, begin, lock, re-read, type, latest, insert, LAST_INSERT_ID, commit = 9 round trips"
        } else {
            "lookup, begin, lock+read, type+latest, insert, commit = 6 round trips"
        };
        println!(
            "| MariaDB ceiling: am_set_info's statements ({what}), 16 conns, no HTTP | {tx_per_s:.0} tx/s | | | | {} |",
            load()
        );
    }
    Ok(())
}

/// Consent flips as am_set_info's statements alone, 16 connections, for
/// `secs`; `before`: the statement sequence before issue 11.
pub async fn statement_ceiling(
    db: &TestDb,
    keys: &[String],
    secs: u64,
    before: bool,
) -> anyhow::Result<f64> {
    let pool = db.pool();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut conn = pool.get_conn().await?;
    let type_id = queries::consent_type_by_name(&mut conn, "STATSEXPORT")
        .await?
        .context("STATSEXPORT")?
        .id;
    drop(conn);
    let mut tasks = Vec::new();
    for w in 0..16usize {
        let (pool, stop, done, keys) = (pool.clone(), stop.clone(), done.clone(), keys.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut c = pool.get_conn().await?;
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let key = &keys[i % keys.len()];
                i += 16;
                let user = queries::user_by_authenticator(&mut c, key)
                    .await?
                    .context("user")?;
                let mut tx = c.start_transaction(TxOpts::default()).await?;
                let latest = if before {
                    boinc_db::account::lock_user(&mut tx, user.id).await?;
                    queries::user_by_id(&mut tx, user.id).await?;
                    queries::consent_type_by_name(&mut tx, "STATSEXPORT").await?;
                    consent::latest::row(&mut tx, user.id, type_id)
                        .await?
                        .map(|l| l.consent_flag)
                } else {
                    boinc_db::account::lock_and_read_user(
                        &mut tx,
                        user.id,
                        &boinc_db::locking::LockSyntax::PLAIN,
                    )
                    .await?;
                    consent::latest::type_and_flag(&mut tx, "STATSEXPORT", user.id)
                        .await?
                        .context("STATSEXPORT")?
                        .1
                };
                consent::insert(
                    &mut tx,
                    &NewConsent {
                        userid: user.id,
                        consent_type_id: type_id,
                        consent_time: boinc_db::now(),
                        consent_flag: latest != Some(1),
                        consent_not_required: false,
                        source: "ceiling",
                    },
                )
                .await?;
                if before {
                    // The separate id read consent::insert used to make.
                    let _: Option<i64> = tx.query_first("SELECT LAST_INSERT_ID()").await?;
                }
                tx.commit().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    pool.disconnect().await.ok();
    Ok(rate)
}

/// `mariadb-slap --concurrency=16 --number-of-queries=16000` single-row
/// autocommit inserts into a table `t` of a scratch schema beside the
/// bench database: the durable commits/s MariaDB manages here.
pub async fn slap_inserts(db: &TestDb, conn: &mut mysql_async::Conn) -> anyhow::Result<f64> {
    let schema = format!("{}_slap", db.settings.name);
    conn.query_drop(format!("CREATE DATABASE `{schema}`"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE `{schema}`.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB"
    ))
    .await?;
    let s = &db.settings;
    let out = Command::new("mariadb-slap")
        .args([
            &format!("--host={}", s.host),
            &format!("--port={}", s.port),
            &format!("--user={}", s.user),
            "--concurrency=16",
            "--number-of-queries=16000",
            &format!("--create-schema={schema}"),
            "--no-drop",
            "--query=insert into t (v) values (1)",
        ])
        .env("MYSQL_PWD", &s.passwd)
        .output()
        .context("running mariadb-slap (apt-get install mariadb-client)");
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{schema}`"))
        .await?;
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "mariadb-slap failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secs: f64 = text
        .lines()
        .find(|l| l.contains("Average number of seconds to run all queries"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("mariadb-slap output: {text}"))?;
    Ok(16000.0 / secs.max(1e-6))
}
