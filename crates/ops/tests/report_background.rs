//! The consent report's cost stays in its place, against a real MariaDB:
//! the ops page computes it in the background, once however many pages ask,
//! and no report or history query outlives its caller (server stopped, CLI
//! interrupted). A report is made slow by another connection holding
//! `LOCK TABLES consent WRITE`: the report's streaming read then waits on
//! the table's metadata lock, visibly, in PROCESSLIST.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;
use boinc_db::testing::fixtures::new_user;
use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, ServeOptions};
use common::*;

/// Connection ids running a report's consent stream or a history read in
/// this test's database (not counting the asking connection).
async fn admin_queries(db: &TestDb) -> Vec<(u64, String)> {
    let mut c = db.conn().await;
    c.exec(
        "SELECT ID, INFO FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') \
           AND (INFO LIKE '%FROM consent ORDER BY userid%' OR INFO LIKE '%FROM consent c STRAIGHT_JOIN%')",
        (db.settings.name.clone(),),
    )
    .await
    .unwrap()
}

async fn wait_for(db: &TestDb, n: usize, within: Duration) -> Vec<(u64, String)> {
    let t = Instant::now();
    loop {
        let q = admin_queries(db).await;
        if q.len() == n || t.elapsed() > within {
            return q;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection holding the consent table's write lock. Dropping it kills
/// that connection from a thread of its own, so a failing test never leaves
/// the lock behind (TestDb's DROP DATABASE would wait for it forever).
struct ConsentLock {
    db_settings: boinc_db::DbSettings,
    id: u32,
    _conn: Conn,
}

impl Drop for ConsentLock {
    fn drop(&mut self) {
        let (settings, id) = (self.db_settings.clone(), self.id);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = Conn::new(settings.opts()).await {
                    let _ = c.query_drop(format!("KILL {id}")).await;
                    let _ = c.disconnect().await;
                }
            });
        })
        .join();
    }
}

async fn lock_consent(db: &TestDb) -> ConsentLock {
    let mut c = db.conn().await;
    c.query_drop("LOCK TABLES consent WRITE").await.unwrap();
    ConsentLock {
        db_settings: db.settings.clone(),
        id: c.id(),
        _conn: c,
    }
}

async fn get(base: &str) -> (u16, String) {
    let r = client()
        .get(format!("{base}/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

struct Stoppable {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve_stoppable(db: &TestDb) -> Stoppable {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ops = ConsentOps::new(db.pool());
    let opts = ServeOptions {
        read_only: false,
        credentials: Some(creds()),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        boinc_ops::serve_until(listener, ops, opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Stoppable {
        base,
        stop: Some(tx),
        task,
    }
}

#[tokio::test]
async fn sixteen_page_loads_start_one_report_and_answer_at_once() {
    let db = TestDb::new().await;
    let lock = lock_consent(&db).await;
    let s = serve_stoppable(&db).await;
    // Logged in once first: concurrent first logins are throttled (each
    // unverified one holds a failure slot while bcrypt runs).
    let (status, html) = get(&s.base).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"report-pending\""), "{html}");
    let t = Instant::now();
    let pages: Vec<_> = (0..16)
        .map(|_| {
            let base = s.base.clone();
            tokio::spawn(async move { get(&base).await })
        })
        .collect();
    for p in pages {
        let (status, html) = p.await.unwrap();
        assert_eq!(status, 200);
        assert!(html.contains("id=\"report-pending\""), "{html}");
        assert!(html.contains("computing"), "{html}");
    }
    // The page never waits for the report (the lock holds it forever).
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let q = wait_for(&db, 1, Duration::from_secs(5)).await;
    assert_eq!(q.len(), 1, "{q:?}");
    // More loads while it runs still share the one computation.
    for _ in 0..4 {
        get(&s.base).await;
    }
    assert_eq!(admin_queries(&db).await.len(), 1);

    // Released: the report appears, with its age.
    drop(lock);
    let t = Instant::now();
    loop {
        let (_, html) = get(&s.base).await;
        if html.contains("id=\"consent-report\"") {
            assert!(html.contains("id=\"report-age\""), "{html}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admin_queries(&db).await.is_empty());
}

#[tokio::test]
async fn stopping_the_server_kills_the_report_query() {
    let db = TestDb::new().await;
    let lock = lock_consent(&db).await;
    let mut s = serve_stoppable(&db).await;
    // A request that goes away mid-report: the computation is the server's
    // (the next page wants it), so it keeps running, once.
    let _ = client()
        .get(format!("{}/", s.base))
        .basic_auth(USER, Some(PASS))
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    let q = wait_for(&db, 1, Duration::from_secs(5)).await;
    assert_eq!(q.len(), 1, "{q:?}");

    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut s.task)
        .await
        .expect("server stops")
        .unwrap();
    // Still locked, so only a KILL can have ended it.
    let left = wait_for(&db, 0, Duration::from_secs(3)).await;
    assert!(left.is_empty(), "orphan query after stop: {left:?}");
    drop(lock);
}

/// SIGINT to `boinc-ops` while its query waits: the query is killed, the
/// process exits 130 within seconds.
async fn interrupt_cli(db: &TestDb, args: &[&str]) {
    let mut child = Command::new(BIN)
        .args(["--config", NO_CONFIG])
        .args(args)
        .env("BOINC_DATABASE_URL", db.url())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run boinc-ops");
    let q = wait_for(db, 1, Duration::from_secs(20)).await;
    assert_eq!(q.len(), 1, "{args:?}: {q:?}");
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{args:?} ignored SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(130), "{args:?}");
    let left = wait_for(db, 0, Duration::from_secs(3)).await;
    assert!(
        left.is_empty(),
        "{args:?}: orphan query after Ctrl-C: {left:?}"
    );
}

#[tokio::test]
async fn ctrl_c_kills_report_and_history_queries() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    boinc_db::queries::insert_user(&mut c, &new_user(1, "a@example.org", "a", "auth0123"))
        .await
        .unwrap();
    let lock = lock_consent(&db).await;
    interrupt_cli(&db, &["consent", "report"]).await;
    interrupt_cli(&db, &["consent", "history", "--email", "a@example.org"]).await;
    drop(lock);
}
