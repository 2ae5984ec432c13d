//! The shared per-client counters (`rpc_limit`) against real MariaDB:
//! atomic reservation under concurrency, release tied to its window,
//! expiry, purging.

use std::time::Duration;

use boinc_db::mysql_async::prelude::*;
use boinc_db::rate_limit::{self, Key, Kind};
use boinc_db::testing::TestDb;

fn key(ip: &str) -> Key {
    Key::new(Kind::FailedLogin, ip.parse().unwrap())
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_limit() {
    let db = TestDb::new().await;
    // Separate connections, all released at once: as many boinc-rpc
    // processes would hit the table.
    let mut conns = Vec::new();
    for _ in 0..40 {
        conns.push(db.conn().await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(conns.len()));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = rate_limit::reserve(&mut c, &key("192.0.2.10"), 5, 60)
                    .await
                    .unwrap();
                c.disconnect().await.ok();
                r
            })
        })
        .collect();
    let mut granted = 0;
    let mut ends = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        granted += usize::from(r.granted);
        ends.insert(r.window_end);
    }
    assert_eq!(granted, 5);
    assert_eq!(ends.len(), 1, "one window for all: {ends:?}");
    let mut c = db.conn().await;
    let u = rate_limit::usage(&mut c, &key("192.0.2.10"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u.used, u.refused), (5, 35));
    assert!((1..=60).contains(&u.secs_left), "{u:?}");
    // Another client is untouched, and another kind is another counter.
    assert!(rate_limit::usage(&mut c, &key("192.0.2.11"))
        .await
        .unwrap()
        .is_none());
    let creation = Key::new(Kind::AccountCreation, "192.0.2.10".parse().unwrap());
    assert!(
        rate_limit::reserve(&mut c, &creation, 1, 60)
            .await
            .unwrap()
            .granted
    );
}

#[tokio::test]
async fn release_frees_a_slot_of_its_own_window_only() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let k = key("2001:db8:5:6::1");
    let a = rate_limit::reserve(&mut c, &k, 2, 60).await.unwrap();
    let b = rate_limit::reserve(&mut c, &k, 2, 60).await.unwrap();
    assert!(a.granted && b.granted);
    // Another address of the same /64 shares the budget.
    let same_net = key("2001:db8:5:6:abcd::9");
    assert!(
        !rate_limit::reserve(&mut c, &same_net, 2, 60)
            .await
            .unwrap()
            .granted
    );
    rate_limit::release(&mut c, &k, a.window_end).await.unwrap();
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );
    // A stale window's release changes nothing.
    rate_limit::release(&mut c, &k, a.window_end - 1000)
        .await
        .unwrap();
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );
    assert!(
        rate_limit::reserve(&mut c, &k, 2, 60)
            .await
            .unwrap()
            .granted
    );
    assert!(
        !rate_limit::reserve(&mut c, &k, 2, 60)
            .await
            .unwrap()
            .granted
    );
    // Never below zero.
    for _ in 0..5 {
        rate_limit::release(&mut c, &k, a.window_end).await.unwrap();
    }
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        0
    );
}

#[tokio::test]
async fn windows_expire_and_expired_rows_are_purged() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let k = key("198.51.100.3");
    let first = rate_limit::reserve(&mut c, &k, 1, 1).await.unwrap();
    assert!(first.granted);
    let refused = rate_limit::reserve(&mut c, &k, 1, 1).await.unwrap();
    assert!(!refused.granted);
    assert_eq!(refused.window_end, first.window_end);
    // Wait (by the database clock) until the window is over.
    loop {
        let now: i64 = c
            .query_first("SELECT UNIX_TIMESTAMP()")
            .await
            .unwrap()
            .unwrap();
        if now >= first.window_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rate_limit::usage(&mut c, &k).await.unwrap().is_none());
    let next = rate_limit::reserve(&mut c, &k, 1, 1).await.unwrap();
    assert!(next.granted, "a new window starts");
    assert!(next.window_end > first.window_end);
    let u = rate_limit::usage(&mut c, &k).await.unwrap().unwrap();
    assert_eq!((u.used, u.refused), (1, 0), "counts reset with the window");
    // The old window's release does not touch the new one.
    rate_limit::release(&mut c, &k, first.window_end)
        .await
        .unwrap();
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );

    // 25 expired rows and one running: purging in batches of 10 removes
    // exactly the expired ones.
    for i in 0..25 {
        let k = key(&format!("203.0.113.{i}"));
        rate_limit::reserve(&mut c, &k, 5, 60).await.unwrap();
    }
    c.query_drop(
        "UPDATE rpc_limit SET window_end = UNIX_TIMESTAMP() - 5 WHERE client <> x'c6336403'",
    )
    .await
    .unwrap();
    let mut purged = Vec::new();
    loop {
        let n = rate_limit::purge_expired(&mut c, 10).await.unwrap();
        purged.push(n);
        if n < 10 {
            break;
        }
    }
    assert_eq!(purged, vec![10, 10, 5]);
    let left: i64 = c
        .query_first("SELECT COUNT(*) FROM rpc_limit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, 1);
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );
}

async fn rows(c: &mut mysql_async::Conn) -> i64 {
    c.query_first("SELECT COUNT(*) FROM rpc_limit")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn reservations_say_when_they_add_a_row() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let k = key("2001:db8:7::1");
    let w = k.wider().expect("a /48");
    let first = rate_limit::reserve(&mut c, &k, 2, 60).await.unwrap();
    assert!(first.granted && first.inserted);
    let second = rate_limit::reserve(&mut c, &k, 2, 60).await.unwrap();
    assert!(second.granted && !second.inserted);
    let refused = rate_limit::reserve(&mut c, &k, 2, 60).await.unwrap();
    assert!(!refused.granted && !refused.inserted);
    // The /48 is a counter of its own, in a row of its own.
    let wide = rate_limit::reserve(&mut c, &w, 8, 60).await.unwrap();
    assert!(wide.granted && wide.inserted);
    assert_eq!(rows(&mut c).await, 2);
    let stored: Vec<Vec<u8>> = c
        .query("SELECT client FROM rpc_limit ORDER BY LENGTH(client)")
        .await
        .unwrap();
    assert_eq!(
        stored,
        [
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 7],
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 0]
        ]
    );
}

#[tokio::test]
async fn the_last_slot_given_back_takes_an_empty_row_with_it() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    // A success (reserve, give back): no row left behind.
    let k = key("192.0.2.50");
    let a = rate_limit::reserve(&mut c, &k, 3, 60).await.unwrap();
    rate_limit::release(&mut c, &k, a.window_end).await.unwrap();
    assert_eq!(rows(&mut c).await, 0);
    // Two in flight: the first back keeps the row for the second.
    let a = rate_limit::reserve(&mut c, &k, 3, 60).await.unwrap();
    let b = rate_limit::reserve(&mut c, &k, 3, 60).await.unwrap();
    rate_limit::release(&mut c, &k, a.window_end).await.unwrap();
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );
    rate_limit::release(&mut c, &k, b.window_end).await.unwrap();
    assert_eq!(rows(&mut c).await, 0);
    // A counter that refused someone keeps its row (and its refusals).
    let k = key("192.0.2.51");
    let a = rate_limit::reserve(&mut c, &k, 1, 60).await.unwrap();
    assert!(
        !rate_limit::reserve(&mut c, &k, 1, 60)
            .await
            .unwrap()
            .granted
    );
    rate_limit::release(&mut c, &k, a.window_end).await.unwrap();
    let u = rate_limit::usage(&mut c, &k).await.unwrap().unwrap();
    assert_eq!((u.used, u.refused), (0, 1));
    // A failure that counts (kept) keeps its row.
    let k = key("192.0.2.52");
    rate_limit::reserve(&mut c, &k, 3, 60).await.unwrap();
    assert_eq!(
        rate_limit::usage(&mut c, &k).await.unwrap().unwrap().used,
        1
    );
}

#[tokio::test]
async fn the_cap_drops_expired_then_empty_then_the_soonest_ending_windows() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    // 10 expired, 10 empty (used 0, refused 0), 10 running: 192.0.2.x.
    for i in 0..30u8 {
        rate_limit::reserve(&mut c, &key(&format!("192.0.2.{i}")), 5, 600)
            .await
            .unwrap();
    }
    c.query_drop(
        "UPDATE rpc_limit SET window_end = UNIX_TIMESTAMP() - 5 \
         WHERE ORD(SUBSTRING(client, 4, 1)) < 10",
    )
    .await
    .unwrap();
    c.query_drop(
        "UPDATE rpc_limit SET used = 0 WHERE ORD(SUBSTRING(client, 4, 1)) BETWEEN 10 AND 19",
    )
    .await
    .unwrap();
    // Running windows end later the higher their last byte.
    c.query_drop(
        "UPDATE rpc_limit SET window_end = UNIX_TIMESTAMP() + 100 + ORD(SUBSTRING(client, 4, 1)) \
         WHERE ORD(SUBSTRING(client, 4, 1)) >= 20",
    )
    .await
    .unwrap();
    // At or under the high mark: nothing happens.
    let same = rate_limit::enforce_cap(&mut c, 30, 5).await.unwrap();
    assert_eq!(
        (same.rows, same.expired, same.empty, same.running),
        (30, 0, 0, 0)
    );
    let first = rate_limit::enforce_cap(&mut c, 25, 15).await.unwrap();
    assert_eq!(
        (first.rows, first.expired, first.empty, first.running),
        (30, 10, 5, 0)
    );
    assert_eq!(rows(&mut c).await, 15);
    let second = rate_limit::enforce_cap(&mut c, 10, 5).await.unwrap();
    assert_eq!(
        (second.rows, second.expired, second.empty, second.running),
        (15, 0, 5, 5)
    );
    let left: Vec<Vec<u8>> = c
        .query("SELECT client FROM rpc_limit ORDER BY client")
        .await
        .unwrap();
    let expect: Vec<Vec<u8>> = (25..30u8).map(|i| vec![192, 0, 2, i]).collect();
    assert_eq!(left, expect, "the windows that end last are kept");
}
