//! The ops page login under a concurrent burst (issue 9 item 4): the
//! failure slot is reserved before the password is checked, so a burst of
//! wrong passwords gets exactly the limit's worth of 401s and 429 for the
//! rest, and the bcrypt checks run on a bounded pool.

mod common;

use boinc_db::testing::TestDb;
use boinc_ops::web::{bcrypt_peak, BCRYPT_POOL, MAX_FAILURES};
use boinc_ops::{ConsentOps, Credentials, ServeOptions};
use common::{client, PASS, USER};

const BURST: usize = 25;

/// A server whose hash is slow enough (cost 6, debug build) that every
/// request of the burst is in flight while the first checks still run.
async fn start_slow() -> (TestDb, String, tokio::task::JoinHandle<()>) {
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hash = bcrypt::hash(PASS, 6).expect("hash");
    let opts = ServeOptions {
        read_only: false,
        credentials: Some(Credentials::new(USER, &hash).expect("credentials")),
        ..Default::default()
    };
    let ops = ConsentOps::new(db.pool());
    let task = tokio::spawn(async move {
        boinc_ops::serve(listener, ops, opts).await.expect("serve");
    });
    (db, base, task)
}

/// Send `BURST` wrong-password requests at once; the statuses they got.
async fn burst(base: &str) -> Vec<u16> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(BURST));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let (base, barrier) = (base.to_owned(), barrier.clone());
        set.spawn(async move {
            let req = client()
                .get(format!("{base}/"))
                .basic_auth(USER, Some(format!("wrong guess {i}")));
            barrier.wait().await;
            req.send().await.expect("GET /").status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        statuses.push(r.expect("request task"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_login_concurrent_wrong_passwords_get_limit_401s_then_429() {
    let (_db, base, task) = start_slow().await;
    let statuses = burst(&base).await;
    let n401 = statuses.iter().filter(|s| **s == 401).count();
    let n429 = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(n401 + n429, BURST, "only 401/429 expected: {statuses:?}");
    assert_eq!(n401, MAX_FAILURES as usize, "statuses: {statuses:?}");
    assert_eq!(n429, BURST - MAX_FAILURES as usize);

    // The address is now throttled for the window, the right password
    // included (it was never verified before the burst).
    let r = client()
        .get(format!("{base}/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_login_bcrypt_checks_never_exceed_the_pool() {
    let (_db, base, task) = start_slow().await;
    let statuses = burst(&base).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        MAX_FAILURES as usize
    );
    let peak = bcrypt_peak();
    assert!(peak >= 1, "the burst ran no bcrypt check");
    assert!(
        peak <= BCRYPT_POOL,
        "{peak} bcrypt checks ran at once; the pool has {BCRYPT_POOL}"
    );
    task.abort();
}

#[tokio::test]
async fn ops_login_right_password_gives_its_slot_back() {
    // A right password takes a slot like any unverified login but gives it
    // back: it is not a failure, so the address still has its full
    // allowance of wrong guesses around it.
    let (_db, base, task) = start_slow().await;
    let get = |p: &'static str| {
        client()
            .get(format!("{base}/"))
            .basic_auth(USER, Some(p))
            .send()
    };
    for _ in 0..MAX_FAILURES - 1 {
        assert_eq!(get("guess").await.unwrap().status(), 401);
    }
    assert_eq!(get(PASS).await.unwrap().status(), 200);
    assert_eq!(get("guess").await.unwrap().status(), 401);
    assert_eq!(get("guess").await.unwrap().status(), 429);
    // Verified before, so the admin's own login still works.
    assert_eq!(get(PASS).await.unwrap().status(), 200);
    task.abort();
}
