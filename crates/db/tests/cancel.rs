//! `boinc_db::cancel::Guarded` against a real MariaDB: a statement whose
//! future is dropped is killed on the server. The statement here is a
//! long scan that sends nothing until it is done, the case MariaDB does
//! not notice by itself when the client goes away (it runs to the end,
//! minutes here, unless killed). A finished statement is left alone.

use std::time::{Duration, Instant};

use boinc_db::cancel::{self, Guarded};
use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;

const SLOW: &str =
    "SELECT COUNT(*) /* guarded */ FROM t a JOIN t b JOIN t c WHERE a.v + b.v + c.v > 0";

/// Statements of this database other than ours, from PROCESSLIST.
async fn running(db: &TestDb) -> usize {
    let mut c = db.conn().await;
    let rows: Vec<u64> = c
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE '%guarded%'",
            (db.settings.name.clone(),),
        )
        .await
        .unwrap();
    rows.len()
}

async fn wait_until(db: &TestDb, n: usize, within: Duration) -> usize {
    let t = Instant::now();
    loop {
        let k = running(db).await;
        if k == n || t.elapsed() > within {
            return k;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup() -> TestDb {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("CREATE TABLE t (v INT NOT NULL) ENGINE=InnoDB")
        .await
        .unwrap();
    // 1000 rows: the three-way join counts 10^9 combinations.
    c.query_drop(
        "INSERT INTO t (v) WITH RECURSIVE s(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000) SELECT n FROM s",
    )
    .await
    .unwrap();
    c.disconnect().await.unwrap();
    db
}

#[tokio::test]
async fn dropped_work_is_killed_on_the_server() {
    let db = setup().await;
    let pool = db.pool();
    let task = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut g = Guarded::get(&pool).await.unwrap();
            let n: Option<i64> = g.query_first(SLOW).await.unwrap();
            g.finish();
            n
        })
    };
    assert_eq!(wait_until(&db, 1, Duration::from_secs(10)).await, 1);
    // Still running a second later: the scan is slow enough to tell.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(running(&db).await, 1);
    task.abort();
    let _ = task.await;
    assert!(cancel::wait_for_kills(Duration::from_secs(5)).await);
    assert_eq!(
        wait_until(&db, 0, Duration::from_secs(3)).await,
        0,
        "the abandoned scan is still running"
    );

    // The pool still works, and finished work is not killed.
    let mut g = Guarded::get(&pool).await.unwrap();
    let n: Option<i64> = g.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1000));
    g.finish();
    assert!(cancel::wait_for_kills(Duration::from_secs(1)).await);
    pool.disconnect().await.unwrap();
}
