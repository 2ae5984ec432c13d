//! Consent-only am_set_info requests are group-committed
//! (`boinc_rpc::flip_group`): the same replies and rows as each request
//! alone, exact under same-instant requests, and one failing request
//! costs no other its change.

mod common;

use std::time::Duration;

use boinc_db::consent::group::{Flip, FlipOutcome};
use boinc_db::testing::{self, TestDb};
use boinc_rpc::commit::CommitGuard;
use boinc_rpc::flip_group::{FlipError, FlipGroups, Reply, Setup};
use common::*;
use mysql_async::prelude::*;

/// Accounts straight into the database (no bcrypt): (id, key).
async fn accounts(c: &mut mysql_async::Conn, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("{:032x}", 0x00C0_FFEE_0000_u64 + i as u64);
        out.push((testing::insert_account(c, i, &key).await, key));
    }
    out
}

fn consent<'a>(key: &'a str, name: &'a str, flag: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", key),
        ("consent_name", name),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", "AM"),
    ]
}

/// Every consent row: (account index, type, flag, not_required, source).
async fn all_rows(h: &Harness, ids: &[i64]) -> Vec<(usize, String, i64, i64, String)> {
    let mut c = h.conn().await;
    let rows: Vec<(i64, String, i64, i64, String)> = c
        .query(
            "SELECT c.userid, t.shortname, c.consent_flag, c.consent_not_required, c.source \
             FROM consent c JOIN consent_type t ON t.id = c.consent_type_id ORDER BY c.id",
        )
        .await
        .unwrap();
    rows.into_iter()
        .map(|(u, t, f, n, s)| (ids.iter().position(|i| *i == u).unwrap(), t, f, n, s))
        .collect()
}

async fn project(workers: usize) -> Harness {
    let h = Harness::with(
        "",
        Some(TERMS),
        boinc_rpc::Options {
            consent_group_workers: workers,
            ..test_options()
        },
    )
    .await;
    h.set_type_enabled("ENROLL", true).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    h.add_type("NEWSLETTER", false).await;
    h
}

/// Copies of one script, each on its own pair of accounts, sent at the
/// same time (each copy's steps in order): alone and grouped, the same
/// replies and the same rows, and the rows the rules ask for. Grouped,
/// every request went through the groups and groups held several.
#[tokio::test]
async fn grouped_and_alone_answer_and_record_the_same() {
    const COPIES: usize = 6;
    let mut seen = Vec::new();
    for workers in [0, 2] {
        let h = project(workers).await;
        assert_eq!(h.server.state.flip_groups().is_some(), workers > 0);
        let mut c = h.conn().await;
        let acc = accounts(&mut c, 2 * COPIES).await;
        let ids: Vec<i64> = acc.iter().map(|a| a.0).collect();
        let mut runs = Vec::new();
        for copy in 0..COPIES {
            let (a, b) = (acc[2 * copy].1.clone(), acc[2 * copy + 1].1.clone());
            let (client, url) = (h.client.clone(), h.url("am_set_info.php"));
            runs.push(tokio::spawn(async move {
                let upper = a.to_uppercase();
                let script: Vec<Vec<(&str, &str)>> = vec![
                    consent(&a, "STATSEXPORT", "1"),
                    consent(&a, "STATSEXPORT", "1"),
                    consent(&a, "STATSEXPORT", "0"),
                    consent(&a, "statsexport", "1"),
                    consent(&a, "STATSEXPORT\u{200b}", "1"),
                    consent(&a, "NEWSLETTER", "1"),
                    consent(&a, "ENROLL", "0"),
                    consent(&a, "ENROLL", "1"),
                    consent(&upper, "STATSEXPORT", "1"),
                    consent("0123456789abcdef0123456789abcdef", "STATSEXPORT", "1"),
                    consent(&b, "STATSEXPORT", "0"),
                    consent(&b, "STATSEXPORT", "1"),
                ];
                let mut replies = Vec::new();
                for params in &script {
                    let r = client.post(&url).form(params).send().await.unwrap();
                    replies.push(r.text().await.unwrap());
                }
                replies
            }));
        }
        let mut replies = Vec::new();
        for r in runs {
            replies.push(r.await.unwrap());
        }
        let rows = all_rows(&h, &ids).await;
        if workers > 0 {
            let stats = h.server.state.flip_groups().unwrap().stats();
            // Requests handed back (a group saw an account busy, e.g. its
            // other copy's request) are counted again when applied alone.
            assert!(
                stats.changes >= 12 * COPIES as u64,
                "every request went through the groups: {stats:?}"
            );
            assert!(stats.largest >= 2, "groups held several: {stats:?}");
        }
        seen.push((replies, rows));
    }
    let (alone, grouped) = (&seen[0], &seen[1]);
    assert_eq!(alone.0, grouped.0, "replies differ");
    // Rows per copy (their order across copies depends on timing).
    let per_copy = |rows: &Vec<(usize, String, i64, i64, String)>, copy: usize| {
        rows.iter()
            .filter(|r| r.0 / 2 == copy)
            .map(|r| (r.0 % 2, r.1.clone(), r.2, r.3, r.4.clone()))
            .collect::<Vec<_>>()
    };
    let s = |i: usize, t: &str, f: i64| (i, t.to_owned(), f, 0, "AM".to_owned());
    for copy in 0..COPIES {
        assert_eq!(
            per_copy(&alone.1, copy),
            per_copy(&grouped.1, copy),
            "copy {copy}"
        );
        // A's rows in order, then B's.
        let mut rows = per_copy(&grouped.1, copy);
        rows.sort_by_key(|r| r.0);
        assert_eq!(
            rows,
            vec![
                s(0, "STATSEXPORT", 1),
                s(0, "STATSEXPORT", 0),
                s(0, "ENROLL", 1),
                s(1, "STATSEXPORT", 0),
                s(1, "STATSEXPORT", 1),
            ],
            "copy {copy}"
        );
        // And the replies are what the rules say.
        let replies = &grouped.0[copy];
        for i in [0, 1, 2, 7, 10, 11] {
            assert!(
                replies[i].contains("<success/>") && !replies[i].contains("warning"),
                "{i}: {}",
                replies[i]
            );
        }
        for i in [3, 4] {
            assert!(replies[i].contains("does not exist"), "{}", replies[i]);
        }
        assert!(replies[5].contains("not enabled"), "{}", replies[5]);
        assert_eq!(error_num(&replies[6]), Some(-1), "{}", replies[6]);
        assert!(replies[6].contains("ENROLL"), "{}", replies[6]);
        assert_eq!(error_num(&replies[8]), Some(-136), "{}", replies[8]);
        assert_eq!(error_num(&replies[9]), Some(-136), "{}", replies[9]);
    }
}

/// Many requests for the same accounts at the same instant: each change
/// is recorded once, whatever groups they fall into.
#[tokio::test]
async fn same_instant_flips_record_each_change_once() {
    let h = project(2).await;
    let mut c = h.conn().await;
    let acc = accounts(&mut c, 16).await;
    let ids: Vec<i64> = acc.iter().map(|a| a.0).collect();
    for flag in ["1", "0", "0"] {
        let mut calls = Vec::new();
        for (_, key) in &acc {
            for _ in 0..4 {
                let (client, url, key) = (h.client.clone(), h.url("am_set_info.php"), key.clone());
                calls.push(tokio::spawn(async move {
                    client
                        .post(url)
                        .form(&consent(&key, "STATSEXPORT", flag))
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                }));
            }
        }
        for call in calls {
            let body = call.await.unwrap();
            assert!(body.contains("<success/>"), "{body}");
        }
    }
    let rows = all_rows(&h, &ids).await;
    for i in 0..acc.len() {
        let flags: Vec<i64> = rows.iter().filter(|r| r.0 == i).map(|r| r.2).collect();
        // On, then off; the repeated withdrawals change nothing.
        assert_eq!(flags, vec![1, 0], "account {i}");
    }
}

fn flip(key: &str, source: String) -> Flip {
    Flip {
        account_key: key.to_owned(),
        type_name: "STATSEXPORT".into(),
        flag: true,
        not_required: false,
        source,
    }
}

fn setup(db: &TestDb, workers: usize) -> FlipGroups {
    FlipGroups::start(
        Setup {
            opts: db.settings.opts(),
            pool: boinc_db::pool(&db.settings),
            db_timeout: Duration::from_secs(5),
            lookup_budget: Duration::from_secs(5),
            group_sizes: boinc_rpc::metrics::Metrics::default().group_sizes,
        },
        workers,
    )
}

/// A group that fails before its COMMIT (here: one request the database
/// refuses) writes nothing and hands every request back to be applied
/// alone, where each gets its own outcome (am_set_info's checks refuse the
/// over-long source before it ever reaches a group).
#[tokio::test]
async fn a_failing_group_hands_every_request_back_having_written_nothing() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let acc = accounts(&mut c, 4).await;
    let groups = setup(&db, 1);
    let mut calls = Vec::new();
    for (i, (_, key)) in acc.iter().enumerate() {
        let source = if i == 2 {
            "x".repeat(300)
        } else {
            format!("q{i}")
        };
        calls.push(groups.submit(flip(key, source), CommitGuard::new()));
    }
    let replies = futures_util::future::join_all(calls).await;
    let stats = groups.stats();
    assert!(
        replies.iter().all(|r| matches!(r, Ok(Reply::Alone))),
        "{replies:?}"
    );
    assert_eq!(stats.handed_back, 4, "{stats:?}");
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM consent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "nothing of the failed group written");
}

/// A request whose caller was answered at its deadline (its guard
/// expired) is never applied, whether it expired before its group ran or
/// while the group waited to run; its account's row stays as it was.
#[tokio::test]
async fn an_answered_request_is_never_applied() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let acc = accounts(&mut c, 2).await;
    let groups = setup(&db, 1);
    let answered = CommitGuard::new();
    assert!(answered.expire());
    let live = CommitGuard::new();
    let (a, b) = tokio::join!(
        groups.submit(flip(&acc[0].1, "late".into()), answered.clone()),
        groups.submit(flip(&acc[1].1, "live".into()), live.clone()),
    );
    assert!(matches!(a, Err(FlipError::Stopped)), "{a:?}");
    assert!(
        matches!(
            b,
            Ok(Reply::Done(FlipOutcome::Applied { recorded: true, .. }))
        ),
        "{b:?}"
    );
    // The committed request's guard stays claimed: a deadline now waits.
    assert!(!live.expire());
    let sources: Vec<String> = c.query("SELECT source FROM consent").await.unwrap();
    assert_eq!(sources, ["live"]);
}

/// Accounts held by another transaction are handed back at once; the
/// rest of their group commits while the holder still holds them.
#[tokio::test]
async fn busy_accounts_are_handed_back_and_the_rest_commits() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let acc = accounts(&mut c, 8).await;
    let groups = setup(&db, 2);
    let mut holder = db.conn().await;
    let mut tx = holder
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    for busy in [0, 5] {
        tx.exec_drop(
            "SELECT id FROM user WHERE id = ? FOR UPDATE",
            (acc[busy].0,),
        )
        .await
        .unwrap();
    }
    let calls = acc
        .iter()
        .map(|(_, key)| groups.submit(flip(key, "g".into()), CommitGuard::new()));
    let replies = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("no request waits for the held accounts");
    for (i, r) in replies.iter().enumerate() {
        if i == 0 || i == 5 {
            assert!(matches!(r, Ok(Reply::Alone)), "{i}: {r:?}");
        } else {
            assert!(
                matches!(r, Ok(Reply::Done(FlipOutcome::Applied { userid, recorded: true })) if *userid == acc[i].0),
                "{i}: {r:?}"
            );
        }
    }
    // Committed while the holder still holds its two accounts.
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM consent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 6);
    tx.rollback().await.unwrap();
    assert!(groups.stats().handed_back >= 2);
}
